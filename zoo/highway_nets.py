"""Fully connected highway and plain networks, as in the Highway paper's depth experiments."""

import keras

from keras_deepblocks.layers import Highway


def highway_mlp(
    input_shape,
    num_classes,
    depth=50,
    width=50,
    transform_bias=-2.0,
    activation="relu",
    name="highway_mlp",
):
    """A classifier of `depth` `Highway` layers of `width` units.

    A Dense layer projects the flattened input to `width` (highway layers keep
    their width), then come the highway layers and a softmax classifier.

    Args:
        input_shape: Shape of one example, without the batch axis.
        num_classes: Number of classes of the softmax output.
        depth: Number of highway layers. Defaults to `50`.
        width: Units of every layer. Defaults to `50`.
        transform_bias: Initial gate bias of every highway layer. Defaults to
            `-2.0`.
        activation: Activation of the projection and highway transforms.
        name: Model name.
    """
    return _mlp(
        input_shape,
        num_classes,
        depth,
        width,
        lambda i: Highway(activation, transform_bias=transform_bias, name=f"highway_{i}"),
        activation,
        name,
    )


def plain_mlp(input_shape, num_classes, depth=50, width=50, activation="relu", name="plain_mlp"):
    """The plain counterpart of `highway_mlp`: `depth` Dense layers of `width` units."""
    return _mlp(
        input_shape,
        num_classes,
        depth,
        width,
        lambda i: keras.layers.Dense(
            width, activation=activation, kernel_initializer="he_normal", name=f"dense_{i}"
        ),
        activation,
        name,
    )


def _mlp(input_shape, num_classes, depth, width, make_layer, activation, name):
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"`depth` must be a positive integer, got {depth!r}.")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"`width` must be a positive integer, got {width!r}.")
    model = keras.Sequential(name=name)
    model.add(keras.Input(input_shape))
    if len(input_shape) > 1:
        model.add(keras.layers.Flatten())
    model.add(
        keras.layers.Dense(
            width, activation=activation, kernel_initializer="he_normal", name="projection"
        )
    )
    for i in range(depth):
        model.add(make_layer(i))
    model.add(keras.layers.Dense(num_classes, activation="softmax", name="classifier"))
    return model
