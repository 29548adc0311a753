"""CIFAR ResNets of He et al. (2015): depth 6n+2, from ResNet-20 to ResNet-1202.

The architecture is the paper's CIFAR one, laid out like the PyTorch
reference implementation whose checkpoints `weights="cifar10"` loads
(github.com/akamaster/pytorch_resnet_cifar10): a 3x3 conv with 16 filters,
BN and ReLU; three stages of `n` basic residual units with 16, 32 and 64
filters (the first unit of stages 2 and 3 has stride 2); global average
pooling; a dense classifier (the reference's `linear`). Layer names follow
the reference's state_dict keys (`conv1`, `bn1`, `layer2_0`, `linear`).
"""

import keras

from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.layers import linear_decay
from keras_deepblocks.layers.residual_stack import SAMPLINGS
from keras_deepblocks.utils import validation
from keras_deepblocks.zoo.registry import resnet_units_per_stage

STAGE_FILTERS = (16, 32, 64)
# ImageNet's per-channel mean and std, applied after x / 255: the normalization
# the published CIFAR-10 weights were trained with (not CIFAR-10's own values).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resnet_cifar(
    depth,
    num_classes=10,
    shortcut="A",
    preactivation=False,
    final_survival_probability=None,
    weights=None,
    input_shape=None,
    include_preprocessing=True,
    classifier_activation=None,
    gradient_checkpointing=False,
    kernel_regularizer=None,
    data_format=None,
    stacked_stages=True,
    stochastic_depth_sampling="fixed_count",
    name=None,
):
    """A CIFAR ResNet of `depth = 6n + 2` layers.

    Args:
        depth: `6n + 2` for `n >= 1`: 20, 32, 44, 56, 110 and 1202 are the
            paper's.
        num_classes: Units of the classifier. Defaults to `10`.
        shortcut: `"A"` (parameter-free: subsampling and zero channels, the
            paper's CIFAR choice) or `"B"` (1x1 projection), used where the
            shape changes. Defaults to `"A"`.
        preactivation: Whether to use pre-activation units (He et al. 2016);
            the stem then has no BN-ReLU, and a final BN-ReLU precedes the
            pooling. Defaults to `False`.
        final_survival_probability: `p_L` of stochastic depth with the linear
            decay rule over all `3n` units (unit `l` survives with
            `1 - l / 3n (1 - p_L)`). `None` (default) disables it. The
            published checkpoints were trained without it. With stacked
            stages, see `stochastic_depth_sampling`.
        weights: `None` (random initialization), `"cifar10"` (the published
            weights of this depth, see `resnet_cifar_presets`: the PyTorch
            checkpoint is downloaded once and converted once into the Keras
            cache), the path of a PyTorch checkpoint (`.th`,
            `.pt`, `.pth`) of the reference implementation, or the path of a
            Keras weights file (`.weights.h5`, or `.weights.npz` from
            `deepblocks convert`).
        input_shape: Shape of one image, `(height, width, channels)` (or
            `(channels, height, width)` for channels_first). Defaults to
            `(32, 32, 3)` (or `(3, 32, 32)`); any size works, and any number
            of channels with `include_preprocessing=False` (3 otherwise).
        include_preprocessing: Whether the model starts with the
            normalization the published weights were trained with,
            `(x / 255 - IMAGENET_MEAN) / IMAGENET_STD`, so that it takes raw
            pixels in `[0, 255]`. Defaults to `True`. With `False`, feed
            `cifar_preprocess(images)`.
        classifier_activation: Activation of the classifier; `None` (default)
            returns logits, as the reference does. `"softmax"` for
            probabilities.
        gradient_checkpointing: Whether residual units recompute their
            activations in the backward pass instead of storing them
            (`ResidualUnit(gradient_checkpointing=True)`): only each unit's
            input is kept, which cuts training memory several times for
            about one more forward pass. Gradients are unchanged. Defaults
            to `False`.
        kernel_regularizer: Regularizer of the conv kernels, e.g.
            `keras.regularizers.L2(1e-4)` for the paper's weight decay.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        stacked_stages: Whether each stage's same-shaped units (all of stage
            1, units 1 to n-1 of stages 2 and 3) are one `ResidualStack`
            (`layer1`, `layer2`, `layer3`, with weights stacked per unit)
            rather than separate `ResidualUnit`s (`layer1_0`, ...). The
            outputs are the same. Stacks build in a fraction of the time (a
            ResNet-1202 in seconds) and, with stochastic depth, save training
            time also where XLA compiles the step (the two strided units then
            compute their branch and select, `skip_strategy="multiply"`, so
            that the step has no conditional). Defaults to `True`.
        stochastic_depth_sampling: How stacked stages draw the units to keep:
            `"fixed_count"` (default; each unit kept with its probability,
            the number kept nearly fixed) or `"independent"` (the paper's
            independent draws). See `ResidualStack`.
        name: Model name. Defaults to `"resnet{depth}"`.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> model = resnet_cifar(20)
    >>> model.output_shape
    (None, 10)
    """
    units_per_stage = resnet_units_per_stage(depth)
    num_classes = validation.positive_int(num_classes, "num_classes")
    shortcut = validation.one_of(shortcut, "shortcut", ("A", "B"))
    preactivation = validation.boolean(preactivation, "preactivation")
    include_preprocessing = validation.boolean(include_preprocessing, "include_preprocessing")
    gradient_checkpointing = validation.boolean(gradient_checkpointing, "gradient_checkpointing")
    stacked_stages = validation.boolean(stacked_stages, "stacked_stages")
    stochastic_depth_sampling = validation.one_of(
        stochastic_depth_sampling, "stochastic_depth_sampling", SAMPLINGS
    )
    data_format = validation.data_format(data_format)
    validation.keras_object(kernel_regularizer, "kernel_regularizer", "regularizer")
    validation.keras_object(classifier_activation, "classifier_activation", "activation")
    if weights is not None:
        from keras_deepblocks.zoo import resnet_cifar_weights

        resnet_cifar_weights.check_compatible(weights, depth, num_classes, shortcut, preactivation)

    channel_axis = -1 if data_format == "channels_last" else 1
    input_shape = _checked_input_shape(input_shape, data_format, include_preprocessing)
    inputs = keras.Input(input_shape, name="images")
    x = inputs
    if include_preprocessing:
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
        x = keras.layers.Normalization(
            axis=channel_axis,
            mean=IMAGENET_MEAN,
            variance=[s**2 for s in IMAGENET_STD],
            name="normalization",
        )(x)
    x = keras.layers.Conv2D(
        STAGE_FILTERS[0],
        3,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=kernel_regularizer,
        data_format=data_format,
        name="conv1",
    )(x)
    if not preactivation:
        x = _batch_norm(channel_axis, "bn1")(x)
        x = keras.layers.ReLU(name="relu1")(x)

    survival = _survival_probabilities(3 * units_per_stage, final_survival_probability)
    for stage, filters in enumerate(STAGE_FILTERS, start=1):
        first = (stage - 1) * units_per_stage
        stage_survival = survival[first : first + units_per_stage]
        unit_kwargs = dict(
            filters=filters,
            preactivation=preactivation,
            shortcut=shortcut,
            kernel_regularizer=kernel_regularizer,
            data_format=data_format,
            gradient_checkpointing=gradient_checkpointing,
        )
        # The strided first unit of stages 2 and 3 changes the shape: a unit of its own.
        separate = units_per_stage if not stacked_stages else int(stage > 1)
        for index in range(separate):
            x = _residual_unit(
                unit_kwargs,
                2 if (stage > 1 and index == 0) else 1,
                stage_survival[index],
                # Beside stacks, no conditional anywhere (an XLA conditional
                # per unit costs more than computing these two units).
                skip_strategy="multiply" if stacked_stages else "auto",
                name=f"layer{stage}_{index}",
            )(x)
        if separate < units_per_stage:
            x = _residual_stack(
                unit_kwargs,
                units_per_stage - separate,
                stage_survival[separate:],
                stochastic_depth_sampling,
                name=f"layer{stage}",
            )(x)

    if preactivation:
        x = _batch_norm(channel_axis, "final_bn")(x)
        x = keras.layers.ReLU(name="final_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(data_format=data_format, name="avgpool")(x)
    outputs = keras.layers.Dense(num_classes, activation=classifier_activation, name="linear")(x)
    model = keras.Model(inputs, outputs, name=name or f"resnet{depth}")

    if weights is not None:
        from keras_deepblocks.zoo import resnet_cifar_weights

        resnet_cifar_weights.load_weights(model, weights, depth)
    return model


# The paper's depths. Parameter counts, published errors and weights:
# `resnet_cifar_presets.RESNET_CIFAR_PRESETS`.


def resnet20(**kwargs):
    """The paper's ResNet-20: `resnet_cifar(20, **kwargs)`."""
    return resnet_cifar(20, **kwargs)


def resnet32(**kwargs):
    """The paper's ResNet-32: `resnet_cifar(32, **kwargs)`."""
    return resnet_cifar(32, **kwargs)


def resnet44(**kwargs):
    """The paper's ResNet-44: `resnet_cifar(44, **kwargs)`."""
    return resnet_cifar(44, **kwargs)


def resnet56(**kwargs):
    """The paper's ResNet-56: `resnet_cifar(56, **kwargs)`."""
    return resnet_cifar(56, **kwargs)


def resnet110(**kwargs):
    """The paper's ResNet-110: `resnet_cifar(110, **kwargs)`."""
    return resnet_cifar(110, **kwargs)


def resnet1202(**kwargs):
    """The paper's ResNet-1202: `resnet_cifar(1202, **kwargs)`.

    Pass `gradient_checkpointing=True` to train it at batch 128 on one GPU.
    """
    return resnet_cifar(1202, **kwargs)


def cifar_preprocess(images):
    """Normalizes raw pixels as the published weights expect (for `include_preprocessing=False`).

    Args:
        images: Channels-last images with raw pixel values in `[0, 255]`.

    Returns:
        `(images / 255 - IMAGENET_MEAN) / IMAGENET_STD` as float32: ImageNet's
        per-channel mean `(0.485, 0.456, 0.406)` and std `(0.229, 0.224, 0.225)`.

    Example:

    >>> x = cifar_preprocess(np.full((1, 2, 2, 3), 255, "uint8"))
    >>> np.round(ops.convert_to_numpy(x[0, 0, 0]), 3)
    array([2.249, 2.429, 2.64 ], dtype=float32)
    """
    images = keras.ops.cast(images, "float32") / 255.0
    return (images - keras.ops.array(IMAGENET_MEAN)) / keras.ops.array(IMAGENET_STD)


def _checked_input_shape(input_shape, data_format, include_preprocessing):
    """The shape of one image, `(height, width, channels)` or channels first."""
    layout = "(height, width, channels)"
    default = (32, 32, 3)
    if data_format == "channels_first":
        layout, default = "(channels, height, width)", (3, 32, 32)
    if input_shape is None:
        return default
    input_shape = validation.shape(
        input_shape, "input_shape", 3, f"the shape of one image, {layout} for {data_format}"
    )
    channels = input_shape[-1 if data_format == "channels_last" else 0]
    if channels is None:
        raise ValueError(
            f"`input_shape` needs a known number of channels, {layout}; received: {input_shape}."
        )
    if include_preprocessing and channels != len(IMAGENET_MEAN):
        raise ValueError(
            f"`input_shape` must have 3 channels, {layout}, when `include_preprocessing=True` "
            "(its normalization has one mean and std per RGB channel); received: "
            f"{input_shape}. Pass `include_preprocessing=False` for other channel counts and "
            "normalize the images yourself."
        )
    return input_shape


def _survival_probabilities(num_units, final_survival_probability):
    if final_survival_probability is None:
        return [None] * num_units
    return [
        linear_decay(index, num_units, final_survival_probability)
        for index in range(1, num_units + 1)
    ]


def _residual_unit(unit_kwargs, strides, survival_probability, skip_strategy, name):
    return ResidualUnit(
        **unit_kwargs,
        strides=strides,
        survival_probability=survival_probability,
        skip_strategy=skip_strategy,
        name=name,
    )


def _residual_stack(unit_kwargs, num_blocks, survival_probabilities, sampling, name):
    """`num_blocks` identity-shortcut units of `unit_kwargs` as one `ResidualStack`."""
    unit_kwargs = dict(unit_kwargs)
    gradient_checkpointing = unit_kwargs.pop("gradient_checkpointing")
    template = ResidualUnit(**unit_kwargs).residual_branch(include_preactivation=True)
    if survival_probabilities[0] is None:
        survival_probabilities = None
    return ResidualStack(
        template,
        num_blocks,
        survival_probabilities=survival_probabilities,
        sampling=sampling,
        activation=None if unit_kwargs["preactivation"] else "relu",
        gradient_checkpointing=gradient_checkpointing,
        name=name,
    )


def _batch_norm(channel_axis, name):
    return keras.layers.BatchNormalization(axis=channel_axis, momentum=0.9, epsilon=1e-5, name=name)
