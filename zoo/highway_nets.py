"""Highway and plain networks (fully connected and convolutional), as in the Highway paper."""

import keras

from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import HighwayConv2D
from keras_deepblocks.layers import HighwayStack
from keras_deepblocks.initializers import highway_transform_bias
from keras_deepblocks.utils import validation


def highway_mlp(
    input_shape,
    num_classes,
    depth=50,
    width=50,
    transform_bias=None,
    activation="relu",
    stacked=True,
    name="highway_mlp",
):
    """A classifier of `depth` `Highway` layers of `width` units.

    A Dense layer projects the flattened input to `width` (highway layers keep
    their width), then come the highway layers and a softmax classifier. By
    default the highway layers are one `HighwayStack` named `highway` (a
    1000-layer network builds in seconds) whose gates start at
    `highway_transform_bias(depth)`, which keeps the signal and the gradient
    through the stack at any depth.

    Args:
        input_shape: Shape of one example, without the batch axis.
        num_classes: Number of classes of the softmax output.
        depth: Number of highway layers. Defaults to `50`.
        width: Units of every layer. Defaults to `50`.
        transform_bias: Initial gate bias of every highway layer, or `None`
            (default) for `highway_transform_bias(depth)` (`-ln(depth)`).
        activation: Activation of the projection and highway transforms.
        stacked: Whether the highway layers are one `HighwayStack` (default)
            or `depth` separate `Highway` layers `highway_0`, `highway_1`, ...
            (the same network; a few hundred separate layers exceed Python's
            recursion limit in Keras's graph walk).
        name: Model name.

    Example:

    >>> model = highway_mlp((64,), 10, depth=1000)
    >>> [(w.path, tuple(w.shape)) for w in model.get_layer("highway").weights]
    [('highway/kernel', (1000, 50, 100)), ('highway/bias', (1000, 100))]
    """
    depth = validation.positive_int(depth, "depth")
    if transform_bias is None:
        transform_bias = highway_transform_bias(depth)
    if validation.boolean(stacked, "stacked"):
        layers = [HighwayStack(depth, activation, transform_bias=transform_bias, name="highway")]
    else:
        layers = [
            Highway(activation, transform_bias=transform_bias, name=f"highway_{i}")
            for i in range(depth)
        ]
    return _mlp(input_shape, num_classes, width, layers, activation, name)


def plain_mlp(input_shape, num_classes, depth=50, width=50, activation="relu", name="plain_mlp"):
    """The plain counterpart of `highway_mlp`: `depth` Dense layers of `width` units."""
    depth = validation.positive_int(depth, "depth")
    layers = [
        keras.layers.Dense(
            width, activation=activation, kernel_initializer="he_normal", name=f"dense_{i}"
        )
        for i in range(depth)
    ]
    return _mlp(input_shape, num_classes, width, layers, activation, name)


def _mlp(input_shape, num_classes, width, layers, activation, name):
    num_classes = validation.positive_int(num_classes, "num_classes")
    width = validation.positive_int(width, "width")
    # Functional, not Sequential: a loaded Sequential loses the model's name from
    # its weight paths (Keras 3.15), and its load error repeats the whole config.
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    x = keras.layers.Dense(
        width, activation=activation, kernel_initializer="he_normal", name="projection"
    )(x)
    for layer in layers:
        x = layer(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


def highway_conv_net(
    input_shape,
    num_classes,
    depth=9,
    filters=(16, 32, 64),
    transform_bias=None,
    activation="relu",
    name="highway_conv_net",
):
    """A convolutional highway classifier for small images such as CIFAR.

    A 3x3 convolution stem, then one stage per entry of `filters`: the first
    stage keeps the resolution, each later one starts with a strided 3x3
    convolution to its filters (halving height and width); every stage has
    `depth / len(filters)` `HighwayConv2D` layers. Global average pooling and
    a softmax classifier close the network.

    Args:
        input_shape: `(height, width, channels)` of one image.
        num_classes: Number of classes of the softmax output.
        depth: Number of highway layers in all; a multiple of `len(filters)`.
            Defaults to `9`.
        filters: Channels of each stage. Defaults to `(16, 32, 64)`.
        transform_bias: Initial gate bias of every highway layer, or `None`
            (default) for `highway_transform_bias(depth)` (`-ln(depth)`).
        activation: Activation of the convolutions and highway transforms.
        name: Model name.

    Example:

    >>> model = highway_conv_net((32, 32, 3), 10, depth=6)
    >>> model.output_shape
    (None, 10)
    """
    if transform_bias is None:
        transform_bias = highway_transform_bias(depth)
    return _conv_net(
        input_shape,
        num_classes,
        depth,
        filters,
        lambda stage, i: HighwayConv2D(
            3, activation, transform_bias=transform_bias, name=f"highway_{stage}_{i}"
        ),
        activation,
        name,
    )


def plain_conv_net(
    input_shape,
    num_classes,
    depth=9,
    filters=(16, 32, 64),
    activation="relu",
    name="plain_conv_net",
):
    """The plain counterpart of `highway_conv_net`: 3x3 convolutions in place of highway layers."""
    return _conv_net(
        input_shape,
        num_classes,
        depth,
        filters,
        lambda stage, i: keras.layers.Conv2D(
            filters[stage],
            3,
            padding="same",
            activation=activation,
            kernel_initializer="he_normal",
            name=f"conv_{stage}_{i}",
        ),
        activation,
        name,
    )


def _conv_net(input_shape, num_classes, depth, filters, make_layer, activation, name):
    num_classes = validation.positive_int(num_classes, "num_classes")
    filters = tuple(filters) if isinstance(filters, (list, tuple)) else (filters,)
    try:
        if not filters:
            raise ValueError
        filters = tuple(validation.positive_int(f, "filters") for f in filters)
    except ValueError:
        raise ValueError(
            f"`filters` must be one positive integer per stage, received: {filters!r}."
        ) from None
    try:
        valid_depth = validation.positive_int(depth, "depth") % len(filters) == 0
    except ValueError:
        valid_depth = False
    if not valid_depth:
        raise ValueError(
            f"`depth` must be a positive multiple of len(filters) = {len(filters)}, "
            f"received: {depth!r}."
        )
    depth = int(depth)
    inputs = keras.Input(input_shape)
    x = inputs
    for stage, stage_filters in enumerate(filters):
        x = keras.layers.Conv2D(
            stage_filters,
            3,
            strides=1 if stage == 0 else 2,
            padding="same",
            activation=activation,
            kernel_initializer="he_normal",
            name=f"stem_{stage}",
        )(x)
        for i in range(depth // len(filters)):
            x = make_layer(stage, i)(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)
