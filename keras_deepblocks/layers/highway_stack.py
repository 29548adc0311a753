import keras
from keras import ops

from keras_deepblocks.initializers import highway_transform_bias
from keras_deepblocks.layers.highway import Highway
from keras_deepblocks.layers.highway import reject_width_argument
from keras_deepblocks.layers.highway import weight_args_config
from keras_deepblocks.layers.residual_stack import ResidualStack
from keras_deepblocks.utils import validation


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class HighwayStack(ResidualStack):
    """`num_layers` `Highway` layers as one layer over stacked weights.

    Computes what `num_layers` `Highway` layers in a row compute, with the
    same weights and the same initialization, but holds each weight stacked
    (`kernel`: `(num_layers, width, 2 * width)`, `bias`:
    `(num_layers, 2 * width)`) and runs the layers in one call. A 1000-layer
    highway network then builds in seconds, where 1000 separate layers
    take minutes and overflow Python's recursion in Keras's functional graph
    walk.

    Each layer maps `x` to `x + T(x) (H(x) - x)`, which is the Highway
    layer's `H(x) T(x) + x (1 - T(x))`. By default every gate bias starts at
    `highway_transform_bias(num_layers)`, `log(1 / num_layers)`: the stack
    as a whole starts close to the identity and keeps its signal and its
    gradient at any depth (a fixed bias such as -2 leaves none of either
    after a few hundred layers).

    Being a `ResidualStack` of highway updates `T(x) (H(x) - x)`, it also
    takes stochastic depth (a dropped layer passes its input) and gradient
    checkpointing, and gives `block_outputs`, `get_block_weights` and
    `set_block_weights` (`[kernel, bias]` of one layer).

    Args:
        num_layers: Number of highway layers, a positive int.
        activation: Activation of the transform `H`. Defaults to `"relu"`.
        transform_bias: Initial gate bias `b_t` of every layer, or `None`
            (default) for `highway_transform_bias(num_layers)`.
        kernel_initializer: Initializer of each layer's `W_h` and `W_t`, as in
            `Highway`. Defaults to `"he_normal"`.
        bias_initializer: Initializer of each layer's transform bias `b_h`.
        kernel_regularizer: Regularizer of each layer's fused kernel.
        bias_regularizer: Regularizer of each layer's fused bias.
        survival_probabilities: Stochastic depth, as in `ResidualStack`.
            Defaults to `None` (every layer runs).
        sampling: `"fixed_count"` (default) or `"independent"`.
        rescale: `"inference"` (default) or `"training"`.
        gradient_checkpointing: Whether training recomputes each layer's
            activations in the backward pass. Defaults to `False`.
        unroll: Whether the layers run as unrolled code, or (`False`, the
            default) as one `keras.ops.scan` over the stacked weights, which
            compiles one layer whatever the depth (XLA takes minutes to
            compile a few hundred unrolled layers).
        seed: Integer seed of the stochastic-depth draws, or `None`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: Tensor of shape `(..., width)`, rank >= 2.
        training: Python bool (or `None`), whether layers are dropped.

    Example:

    >>> stack = HighwayStack(1000, name="highway")
    >>> tuple(stack(np.ones((2, 16))).shape)
    (2, 16)
    >>> [(w.path, tuple(w.shape)) for w in stack.weights]
    [('highway/kernel', (1000, 16, 32)), ('highway/bias', (1000, 32))]
    """

    def __init__(
        self,
        num_layers,
        activation="relu",
        transform_bias=None,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        survival_probabilities=None,
        sampling="fixed_count",
        rescale="inference",
        gradient_checkpointing=False,
        unroll=False,
        seed=None,
        **kwargs,
    ):
        reject_width_argument("HighwayStack", "units", "width", "Dense({})", kwargs)
        num_layers = validation.positive_int(num_layers, "num_layers")
        if transform_bias is None:
            initial_bias = highway_transform_bias(num_layers)
        else:
            initial_bias = validation.finite_float(transform_bias, "transform_bias")
        layer = _HighwayUpdate(
            activation,
            transform_bias=initial_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            name="highway",
        )
        super().__init__(
            layer,
            num_layers,
            survival_probabilities=survival_probabilities,
            sampling=sampling,
            rescale=rescale,
            gradient_checkpointing=gradient_checkpointing,
            unroll=unroll,
            seed=seed,
            **kwargs,
        )
        self.transform_bias = None if transform_bias is None else initial_bias

    @property
    def num_layers(self):
        return self.num_blocks

    @property
    def initial_transform_bias(self):
        """The gate bias every layer starts with."""
        return self.block.transform_bias

    def get_config(self):
        config = super().get_config()
        for name in ("block", "num_blocks", "activation"):
            del config[name]
        config.update(
            {
                "num_layers": self.num_blocks,
                "activation": keras.activations.serialize(self.block.activation),
                "transform_bias": self.transform_bias,
                **weight_args_config(self.block),
            }
        )
        for name in ("kernel_constraint", "bias_constraint"):
            del config[name]
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _HighwayUpdate(Highway):
    """What a highway layer adds to its input: `T(x) (H(x) - x)`."""

    def call(self, inputs, training=None):  # `stateless_call` passes `training`
        fused = ops.add(ops.matmul(inputs, self.kernel), self.bias)
        transformed, gate = ops.split(fused, 2, axis=-1)
        # The negative of Highway's `T (x - H)`: `x + update` is bit-identical to it.
        return ops.multiply(ops.sigmoid(gate), ops.subtract(self.activation(transformed), inputs))
