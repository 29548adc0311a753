"""A deep residual MLP without (or with) batch normalization: the model of Taki (2017)."""

import keras

from keras_deepblocks.initializers import DepthScaled
from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.utils import validation

DEPTH_SCALED = "depth_scaled"


def residual_mlp(
    input_shape,
    num_classes,
    num_blocks=100,
    width=64,
    kernel_initializer="he_normal",
    batch_norm=False,
    name="residual_mlp",
):
    """A classifier of `num_blocks` residual blocks `z_l = z_{l-1} + W_l relu(z_{l-1})`.

    The simplified ResNet of Taki (2017), "Deep residual networks and weight
    initialization": a linear Dense projection of the flattened input to
    `width` units (`z_0`), then `num_blocks` blocks whose branch is one
    pre-activation layer, ReLU-Dense (BN-ReLU-Dense with `batch_norm`), then a
    ReLU (BN-ReLU) and a softmax classifier. The blocks are one
    `ResidualStack` named `"blocks"` (1000 blocks build in seconds).

    Without batch normalization the variance of the signal, and that of the
    gradient going back, is multiplied by `1 + n Var[w] / 2` in every block
    (`n = width`): by 2 under He initialization, `2^L` over the stack, while
    `"depth_scaled"` (`Var[w] = 2 / (n L)`) keeps the whole stack's growth
    under `e`. With batch normalization a block adds a variance of about 1
    to the signal, so the gradient grows like `L / l` only, whatever the
    initialization.

    Args:
        input_shape: Shape of one example, without the batch axis.
        num_classes: Number of classes of the softmax output.
        num_blocks: `L`, the number of residual blocks. Defaults to `100`.
        width: Units of the projection and of every block. Defaults to `64`.
        kernel_initializer: Initializer of the kernels in the residual
            branches: `"depth_scaled"` (`DepthScaled(num_blocks)`, i.e.
            `Var[w] = 2 / (width * num_blocks)`), or any Keras initializer
            (an instance, a name or a config). Defaults to `"he_normal"`
            (`Var[w] = 2 / width`). The projection is He-initialized and the
            classifier Glorot-initialized in every case.
        batch_norm: Whether each branch, and the head, start with
            BatchNormalization. Defaults to `False`.
        name: Model name.

    Returns:
        A functional `keras.Model` with softmax outputs.

    Example:

    >>> model = residual_mlp((64,), 10, num_blocks=100, kernel_initializer="depth_scaled")
    >>> model.output_shape
    (None, 10)
    >>> tuple(model.get_layer("blocks").trainable_weights[0].shape)  # the stacked kernels
    (100, 64, 64)
    """
    num_classes = validation.positive_int(num_classes, "num_classes")
    num_blocks = validation.positive_int(num_blocks, "num_blocks")
    width = validation.positive_int(width, "width")
    batch_norm = validation.boolean(batch_norm, "batch_norm")
    if isinstance(kernel_initializer, str) and kernel_initializer == DEPTH_SCALED:
        kernel_initializer = DepthScaled(num_blocks)
    else:
        kernel_initializer = validation.keras_object(
            kernel_initializer, "kernel_initializer", "initializer"
        )
    branch = [keras.layers.BatchNormalization(name="bn")] if batch_norm else []
    branch += [
        keras.layers.ReLU(name="relu"),
        keras.layers.Dense(width, kernel_initializer=kernel_initializer, name="dense"),
    ]
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    # Linear: z_0 is symmetric about 0, as the variance analysis assumes.
    x = keras.layers.Dense(width, kernel_initializer="he_normal", name="projection")(x)
    x = ResidualStack(keras.Sequential(branch, name="branch"), num_blocks, name="blocks")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="final_bn")(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)
