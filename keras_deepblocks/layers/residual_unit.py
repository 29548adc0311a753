import keras
from keras import layers
from keras import ops

from keras_deepblocks.layers.stochastic_depth import DROP_MODES
from keras_deepblocks.layers.stochastic_depth import RESCALE_MODES
from keras_deepblocks.layers.stochastic_depth import SKIP_STRATEGIES
from keras_deepblocks.layers.stochastic_depth import stochastic_residual
from keras_deepblocks.utils import validation

BOTTLENECK_EXPANSION = 4
SHORTCUTS = ("A", "B")


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class ResidualUnit(keras.layers.Layer):
    """Residual unit of a ResNet (He et al. 2015, 2016): `F(x) + shortcut(x)`.

    The residual branch `F` is either *basic* (two 3x3 conv+BN) or
    *bottleneck* (1x1, 3x3, 1x1 convs with BN; the last expands to
    `4 * filters` channels, the stride sits on the 3x3 conv). Two orderings:

    - post-activation (He 2015): `relu(F(x) + shortcut(x))`, with
      `F = conv-BN-ReLU-...-conv-BN`.
    - pre-activation (He 2016): `F(x) + shortcut(x)`, with
      `F = BN-ReLU-conv-...-BN-ReLU-conv`. When the shape changes, the
      shortcut takes the pre-activated input `relu(BN(x))`.

    The shortcut is the identity when input and output shapes match. When they
    differ (strides > 1 or a change of channels) it is:

    - `"A"`: parameter-free; strided subsampling `x[:, ::s, ::s]` and zero
      channels added evenly on both sides (the paper's CIFAR option).
    - `"B"`: a 1x1 strided projection (followed by BN in post-activation
      units).

    3x3 convolutions pad one pixel on every side, also when strided, as
    PyTorch does, so weights from PyTorch blocks give the same outputs.
    Convolutions have no bias (each is followed by BN).

    With a `survival_probability`, the unit uses stochastic depth (Huang et
    al. 2016, see `StochasticDepth`): in training the branch `F` is dropped
    (not computed) with probability `1 - p`, giving `relu(shortcut(x))`
    (post-activation) or `shortcut(x)`; at inference it is scaled by `p`.
    In pre-activation units with an identity shortcut the pre-activation BN
    only feeds `F` and is skipped with it.

    With `gradient_checkpointing=True`, a training call keeps only the unit's
    input for the backward pass and recomputes the branch's activations (conv,
    BN and ReLU outputs, about seven tensors per unit) when the gradient needs
    them: a deep stack then stores one activation per unit instead of several,
    for one more forward pass. Gradients and BN statistics are the same as
    without it. The unit runs as a pure function of its input and variable
    values under `keras.remat`, so the recomputation neither updates the BN
    statistics a second time nor draws new random numbers (`keras.remat` over
    the unit's stateful `call` does both).

    Args:
        filters: Channels of the branch. The output has `filters` channels
            (`4 * filters` for bottleneck units).
        strides: Stride of the unit, `1` or more. Defaults to `1`.
        bottleneck: Whether to use a bottleneck branch. Defaults to `False`.
        preactivation: Whether to use the pre-activation ordering. Defaults to
            `False`.
        shortcut: `"A"` or `"B"`, used where the shape changes. Defaults to
            `"A"`.
        kernel_initializer: Initializer of the conv kernels. Defaults to
            `"he_normal"`.
        kernel_regularizer: Regularizer of the conv kernels, e.g.
            `keras.regularizers.L2(1e-4)`.
        momentum: Momentum of the BN moving statistics, in `[0, 1]`.
            Defaults to `0.9` (PyTorch's `momentum=0.1`).
        epsilon: BN epsilon, `> 0`. Defaults to `1e-5` (PyTorch's default).
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        survival_probability: `None` (no stochastic depth, the default) or
            the probability `p` in `(0, 1]` to keep `F`; see `linear_decay`.
        drop_mode: `"batch"` or `"sample"`, as in `StochasticDepth`.
        rescale: `"inference"` or `"training"`, as in `StochasticDepth`.
        skip_strategy: `"auto"`, `"skip"` or `"multiply"`, as in
            `StochasticDepth`.
        seed: Integer seed of the drops in `[0, 2**31 - 1]`, or `None`.
            Give each unit its own.
        gradient_checkpointing: Whether training calls recompute the
            branch's activations in the backward pass instead of keeping them.
            Defaults to `False`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: 4D image tensor.
        training: Python bool (or `None`), whether BN uses batch statistics
            (and whether stochastic depth drops and gradients are checkpointed).

    Example:

    >>> x = keras.Input((32, 32, 16))
    >>> y = ResidualUnit(32, strides=2, shortcut="A")(x)
    >>> y.shape
    (None, 16, 16, 32)

    A stochastic-depth stack with the paper's linear decay:

    >>> from keras_deepblocks.layers import linear_decay
    >>> units = [ResidualUnit(16, survival_probability=linear_decay(l, 9, 0.5))
    ...          for l in range(1, 10)]
    >>> [round(unit.survival_probability, 3) for unit in units[:3]]
    [0.944, 0.889, 0.833]

    A unit that recomputes its activations in the backward pass:

    >>> ResidualUnit(32, strides=2, gradient_checkpointing=True)(x).shape
    (None, 16, 16, 32)
    """

    def __init__(
        self,
        filters,
        strides=1,
        bottleneck=False,
        preactivation=False,
        shortcut="A",
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        momentum=0.9,
        epsilon=1e-5,
        data_format=None,
        survival_probability=None,
        drop_mode="batch",
        rescale="inference",
        skip_strategy="auto",
        seed=None,
        gradient_checkpointing=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = validation.positive_int(filters, "filters")
        self.strides = validation.positive_int(strides, "strides")
        self.bottleneck = validation.boolean(bottleneck, "bottleneck")
        self.preactivation = validation.boolean(preactivation, "preactivation")
        self.shortcut = validation.one_of(shortcut, "shortcut", SHORTCUTS)
        self.kernel_initializer = validation.keras_object(
            kernel_initializer, "kernel_initializer", "initializer"
        )
        self.kernel_regularizer = validation.keras_object(
            kernel_regularizer, "kernel_regularizer", "regularizer"
        )
        self.momentum = validation.float_in_range(momentum, "momentum", 0.0, 1.0)
        self.epsilon = validation.float_in_range(epsilon, "epsilon", 0.0, low_open=True)
        self.data_format = validation.data_format(data_format)
        self.survival_probability = (
            None
            if survival_probability is None
            else validation.survival_probability(survival_probability)
        )
        self.drop_mode = validation.one_of(drop_mode, "drop_mode", DROP_MODES)
        self.rescale = validation.one_of(rescale, "rescale", RESCALE_MODES)
        self.skip_strategy = validation.one_of(skip_strategy, "skip_strategy", SKIP_STRATEGIES)
        self.seed = validation.seed(seed)
        self.seed_generator = (
            None if self.survival_probability is None else keras.random.SeedGenerator(self.seed)
        )
        self.gradient_checkpointing = validation.boolean(
            gradient_checkpointing, "gradient_checkpointing"
        )
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @property
    def output_channels(self):
        return self.filters * (BOTTLENECK_EXPANSION if self.bottleneck else 1)

    @property
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        channels = validation.known_channels(input_shape, self._channel_axis, "ResidualUnit")
        self.input_channels = channels
        self.has_identity_shortcut = self.strides == 1 and channels == self.output_channels
        if (
            not self.has_identity_shortcut
            and self.shortcut == "A"
            and channels > self.output_channels
        ):
            raise ValueError(
                "`shortcut` must be 'B' where a unit reduces channels "
                f"({channels} -> {self.output_channels}; option A can only add zero "
                "channels), received: 'A'."
            )
        self.preact_norm = self._norm("preact_bn") if self.preactivation else None
        self.branch = self.residual_branch()
        self.projection = None
        if not self.has_identity_shortcut and self.shortcut == "B":
            projection = [self._conv(self.output_channels, 1, self.strides, "proj_conv")]
            if not self.preactivation:
                projection.append(self._norm("proj_bn"))
            self.projection = keras.Sequential(projection, name="projection")

        if self.preact_norm is not None:
            self.preact_norm.build(input_shape)
        self.branch.build(input_shape)
        if self.projection is not None:
            self.projection.build(input_shape)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={self._channel_axis: channels})

    def call(self, inputs, training=None):
        training = validation.training(training)
        if self.gradient_checkpointing and training:
            return rematerialized_call(self, lambda x: self._forward(x, training), inputs)
        return self._forward(inputs, training)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        spatial = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for axis in spatial:
            if shape[axis] is not None:
                shape[axis] = -(-shape[axis] // self.strides)
        shape[self._channel_axis] = self.output_channels
        return tuple(shape)

    def get_config(self):
        base_config = super().get_config()
        config = {
            "filters": self.filters,
            "strides": self.strides,
            "bottleneck": self.bottleneck,
            "preactivation": self.preactivation,
            "shortcut": self.shortcut,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "data_format": self.data_format,
            "survival_probability": self.survival_probability,
            "drop_mode": self.drop_mode,
            "rescale": self.rescale,
            "skip_strategy": self.skip_strategy,
            "seed": self.seed,
            "gradient_checkpointing": self.gradient_checkpointing,
        }
        return {**base_config, **config}

    def _forward(self, inputs, training):
        # Pre-activation units feed the pre-activated input to a shortcut that
        # changes shape, and the raw input to an identity shortcut; then the
        # pre-activation belongs to the branch alone (and is skipped with it).
        shared_preactivation = self.preact_norm is not None and not self.has_identity_shortcut
        branch_input = inputs
        if shared_preactivation:
            branch_input = self._preactivate(inputs, training)
        shortcut = self._shortcut(branch_input, training)

        def residual(x):
            if self.preact_norm is not None and not shared_preactivation:
                x = self._preactivate(x, training)
            return self.branch(x, training=training)

        if self.survival_probability is None:
            outputs = ops.add(residual(branch_input), shortcut)
        else:
            branch_layers = [self.branch]
            if not shared_preactivation and self.preact_norm is not None:
                branch_layers.append(self.preact_norm)
            outputs = stochastic_residual(
                residual,
                branch_input,
                shortcut,
                self.survival_probability,
                training=training,
                seed_generator=self.seed_generator,
                drop_mode=self.drop_mode,
                rescale=self.rescale,
                skip_strategy=self.skip_strategy,
                state_layers=branch_layers,
            )
        return outputs if self.preactivation else ops.relu(outputs)

    def _preactivate(self, inputs, training):
        return ops.relu(self.preact_norm(inputs, training=training))

    def _shortcut(self, inputs, training):
        if self.has_identity_shortcut:
            return inputs
        if self.projection is not None:
            return self.projection(inputs, training=training)
        return option_a_shortcut(inputs, self.output_channels, self.strides, self.data_format)

    def residual_branch(self, include_preactivation=False):
        """A new, unbuilt `keras.Sequential` named `"branch"`: the layers of `F`.

        The branch this unit builds, and the template of a `ResidualStack` of
        such units (with `include_preactivation=True` for pre-activation
        units with an identity shortcut, whose BN-ReLU belongs to `F`).
        """
        layers_ = self._branch_layers()
        if include_preactivation and self.preactivation:
            layers_ = [self._norm("preact_bn"), layers.ReLU(name="preact_relu"), *layers_]
        return keras.Sequential(layers_, name="branch")

    def _branch_layers(self):
        """Layers of `F`, after the shared pre-activation if there is one."""
        if self.bottleneck:
            convs = [
                (self.filters, 1, 1),
                (self.filters, 3, self.strides),
                (self.output_channels, 1, 1),
            ]
        else:
            convs = [(self.filters, 3, self.strides), (self.filters, 3, 1)]
        branch = []
        for index, (filters, kernel_size, strides) in enumerate(convs, start=1):
            if index > 1:
                if self.preactivation:
                    branch.append(self._norm(f"bn{index - 1}"))
                branch.append(layers.ReLU(name=f"relu{index - 1}"))
            if kernel_size > 1 and strides > 1:
                branch.append(
                    layers.ZeroPadding2D(
                        kernel_size // 2, data_format=self.data_format, name=f"pad{index}"
                    )
                )
            branch.append(self._conv(filters, kernel_size, strides, f"conv{index}"))
            if not self.preactivation:
                branch.append(self._norm(f"bn{index}"))
        return branch

    def _conv(self, filters, kernel_size, strides, name):
        # Stride 1 "same" padding equals PyTorch's symmetric padding for odd
        # kernels; strided 3x3 convs get an explicit ZeroPadding2D instead.
        padding = "valid" if (strides > 1 or kernel_size == 1) else "same"
        return layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=False,
            data_format=self.data_format,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _norm(self, name):
        return layers.BatchNormalization(
            axis=self._channel_axis,
            momentum=self.momentum,
            epsilon=self.epsilon,
            dtype=self.dtype_policy,
            name=name,
        )


def option_a_shortcut(inputs, output_channels, strides, data_format):
    """Parameter-free shortcut: strided subsampling, then zero channels.

    The `output_channels - input_channels` zero channels are split evenly
    before and after the input's (the extra one, if odd, goes after).
    """
    channel_axis = -1 if data_format == "channels_last" else 1
    if strides > 1:
        if data_format == "channels_last":
            inputs = inputs[:, ::strides, ::strides, :]
        else:
            inputs = inputs[:, :, ::strides, ::strides]
    extra = output_channels - inputs.shape[channel_axis]
    if extra == 0:
        return inputs
    padding = [[0, 0]] * 4
    padding[channel_axis] = [extra // 2, extra - extra // 2]
    return ops.pad(inputs, padding)


def rematerialized_call(layer, call, inputs):
    """`call(inputs)` with gradient checkpointing: `keras.remat` over a pure function.

    The layer's call runs in a `keras.StatelessScope` on variable values given
    as inputs, and returns its state updates (BN statistics, seeds) as outputs,
    assigned afterwards. `keras.remat` can then recompute it in the backward
    pass without updating the state again or drawing new random numbers.
    """
    trainable = layer.trainable_variables
    non_trainable = layer.non_trainable_variables
    variables = trainable + non_trainable

    def forward(inputs, *values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            outputs = call(inputs)
        updates = []
        for variable, value in zip(non_trainable, values[len(trainable) :]):
            update = scope.get_current_value(variable)
            updates.append(value if update is None else update)
        return (outputs, *updates)

    # The recomputation reads these inputs again: copies of the state, since
    # the variables are updated in place below.
    values = [v.value for v in trainable] + [ops.copy(v.value) for v in non_trainable]
    outputs, *updates = keras.remat(forward)(inputs, *values)
    for variable, update in zip(non_trainable, updates):
        variable.assign(update)
    return outputs
