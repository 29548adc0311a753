import numbers

import keras
import numpy as np
from keras import ops

from keras_deepblocks.initializers import FusedKernel
from keras_deepblocks.initializers import GateBias
from keras_deepblocks.utils import validation


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class Highway(keras.layers.Layer):
    """Dense highway layer (Srivastava et al., 2015).

    Mixes a transform of the input with the input itself through a learned
    gate:

    `y = H(x) * T(x) + x * (1 - T(x))`, with
    `H(x) = activation(x W_h + b_h)` and `T(x) = sigmoid(x W_t + b_t)`.

    `H` and `T` are computed with one matmul against a fused kernel
    `[W_h | W_t]` of shape `(width, 2 * width)`. The gate bias `b_t` starts at
    `transform_bias`: a negative value (the paper uses -1 to -3) makes a fresh
    layer mostly carry its input, which is what lets very deep stacks train.
    The layer acts on the last axis of inputs of any rank >= 2 and keeps their
    shape; the width is taken from the input.

    Args:
        activation: Activation of the transform `H`. Defaults to `"relu"`.
        transform_bias: Initial value of the gate bias `b_t`. Defaults to
            `-1.0`.
        kernel_initializer: Initializer of `W_h` and `W_t`, each drawn as a
            `(width, width)` matrix (so fan-based initializers see the fans of
            one layer, not of the fused kernel). Defaults to `"he_normal"`,
            which keeps the scale of `H(x)` through a ReLU.
        bias_initializer: Initializer of the transform bias `b_h` (the gate
            bias always starts at `transform_bias`).
        kernel_regularizer: Regularizer of the fused kernel.
        bias_regularizer: Regularizer of the fused bias `[b_h | b_t]`.
        activity_regularizer: Regularizer of the output.
        kernel_constraint: Constraint on the fused kernel.
        bias_constraint: Constraint on the fused bias.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: Tensor of shape `(..., width)`, rank >= 2.

    Example:

    >>> model = keras.Sequential([keras.Input((8,)), Highway(), Highway()])
    >>> tuple(model(np.zeros((2, 8))).shape)
    (2, 8)
    """

    def __init__(
        self,
        activation="relu",
        transform_bias=-1.0,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        habit = activation if is_number(activation) else None
        reject_width_argument("Highway", "units", "width", "Dense({})", kwargs, habit)
        activity_regularizer = validation.keras_object(
            activity_regularizer, "activity_regularizer", "regularizer"
        )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.activation = validation.keras_object(activation, "activation", "activation")
        self.transform_bias = validation.finite_float(transform_bias, "transform_bias")
        set_weight_args(
            self,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            kernel_constraint,
            bias_constraint,
        )
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape):
        width = validation.known_channels(input_shape, -1, "Highway")
        self.kernel = self.add_weight(
            name="kernel",
            shape=(width, 2 * width),
            initializer=FusedKernel(self.kernel_initializer),
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = self.add_weight(
            name="bias",
            shape=(2 * width,),
            initializer=GateBias(self.transform_bias, self.bias_initializer),
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: width})

    def call(self, inputs):
        fused = ops.add(ops.matmul(inputs, self.kernel), self.bias)
        transformed, gate = ops.split(fused, 2, axis=-1)
        return gated_mix(inputs, self.activation(transformed), gate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "activation": keras.activations.serialize(self.activation),
                "transform_bias": self.transform_bias,
                **weight_args_config(self),
            }
        )
        return config


def gated_mix(inputs, transformed, gate_logits):
    """`transformed * T + inputs * (1 - T)` with `T = sigmoid(gate_logits)`.

    Written as `inputs - T * (inputs - transformed)`: one multiply fewer. Not
    with `ops.add`: on TensorFlow it turns a sum whose second operand has one
    dimension above 1 into a `BiasAdd`, which fails on an empty batch.
    """
    gate = ops.sigmoid(gate_logits)
    return ops.subtract(inputs, ops.multiply(gate, ops.subtract(inputs, transformed)))


def reject_width_argument(layer_name, width_name, what, fix, kwargs, habit=None):
    """A clear error for the Dense/Conv2D habit of giving a highway layer a width.

    A highway layer adds its transform to its input, so it keeps the input's
    `what` (width, channels): `Highway(50)` would otherwise fail as an unknown
    activation `50`. `habit` is the value such a call put where the width goes
    (or `None`); `fix` formats the layer to put before, e.g. `"Dense({})"`.
    """
    if width_name in kwargs:
        habit = kwargs[width_name]
    if habit is None:
        return
    raise TypeError(
        f"{layer_name} keeps the {what} of its input and takes no `{width_name}` argument, "
        f"received: {habit!r}. To change the {what}, put a layer before it, e.g. "
        f"`{fix.format(habit)}` then `{layer_name}()`."
    )


def is_number(value):
    """Whether `value` is a number, the sign of a width given as first argument."""
    return isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))


def set_weight_args(
    layer,
    kernel_initializer,
    bias_initializer,
    kernel_regularizer,
    bias_regularizer,
    kernel_constraint,
    bias_constraint,
):
    """Checks and sets the usual initializer/regularizer/constraint arguments."""
    for name, value, kind in (
        ("kernel_initializer", kernel_initializer, "initializer"),
        ("bias_initializer", bias_initializer, "initializer"),
        ("kernel_regularizer", kernel_regularizer, "regularizer"),
        ("bias_regularizer", bias_regularizer, "regularizer"),
        ("kernel_constraint", kernel_constraint, "constraint"),
        ("bias_constraint", bias_constraint, "constraint"),
    ):
        setattr(layer, name, validation.keras_object(value, name, kind))


def weight_args_config(layer):
    """Config entries of the usual initializer/regularizer/constraint args."""
    return {
        "kernel_initializer": keras.initializers.serialize(layer.kernel_initializer),
        "bias_initializer": keras.initializers.serialize(layer.bias_initializer),
        "kernel_regularizer": keras.regularizers.serialize(layer.kernel_regularizer),
        "bias_regularizer": keras.regularizers.serialize(layer.bias_regularizer),
        "kernel_constraint": keras.constraints.serialize(layer.kernel_constraint),
        "bias_constraint": keras.constraints.serialize(layer.bias_constraint),
    }
