import keras
from keras import ops

from keras_deepblocks.initializers import FusedKernel
from keras_deepblocks.initializers import GateBias
from keras_deepblocks.utils import validation
from keras_deepblocks.layers.highway import gated_mix
from keras_deepblocks.layers.highway import weight_args_config


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class HighwayConv2D(keras.layers.Layer):
    """Convolutional highway layer, as used for CIFAR in Srivastava et al. 2015.

    `y = H(x) * T(x) + x * (1 - T(x))` where `H` and `T` are 2D convolutions
    with "same" padding and stride 1, so height, width and channels are
    preserved: `H(x) = activation(conv(x, W_h) + b_h)` and
    `T(x) = sigmoid(conv(x, W_t) + b_t)`. Both are computed by one convolution
    with `2 * channels` output channels (`[W_h | W_t]` on the last kernel
    axis). `b_t` starts at `transform_bias`.

    Args:
        kernel_size: Int or tuple of 2 ints, the convolution window. Defaults
            to `3`.
        activation: Activation of the transform `H`. Defaults to `"relu"`.
        transform_bias: Initial value of the gate bias. Defaults to `-1.0`.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        dilation_rate: Int or tuple of 2 ints. Defaults to `1`.
        kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, activity_regularizer, kernel_constraint,
        bias_constraint: As in `Highway`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: 4D tensor, `(batch, height, width, channels)` for
            `"channels_last"`.

    Example:

    >>> x = keras.Input((32, 32, 16))
    >>> y = HighwayConv2D(kernel_size=3, transform_bias=-2.0)(x)
    >>> y.shape
    (None, 32, 32, 16)
    """

    def __init__(
        self,
        kernel_size=3,
        activation="relu",
        transform_bias=-1.0,
        data_format=None,
        dilation_rate=1,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.activation = keras.activations.get(activation)
        self.transform_bias = validation.finite_float(
            transform_bias, "transform_bias"
        )
        self.data_format = validation.data_format(data_format)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @property
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        channels = validation.known_channels(
            input_shape, self._channel_axis, "HighwayConv2D"
        )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, channels, 2 * channels),
            initializer=FusedKernel(self.kernel_initializer),
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = self.add_weight(
            name="bias",
            shape=(2 * channels,),
            initializer=GateBias(self.transform_bias, self.bias_initializer),
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )
        self.input_spec = keras.layers.InputSpec(
            ndim=4, axes={self._channel_axis: channels}
        )

    def call(self, inputs):
        fused = ops.conv(
            inputs,
            self.kernel,
            strides=1,
            padding="same",
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        if self.data_format == "channels_last":
            fused = ops.add(fused, self.bias)
        else:
            fused = ops.add(fused, ops.reshape(self.bias, (1, -1, 1, 1)))
        transformed, gate = ops.split(fused, 2, axis=self._channel_axis)
        return gated_mix(inputs, self.activation(transformed), gate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "activation": keras.activations.serialize(self.activation),
                "transform_bias": self.transform_bias,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                **weight_args_config(self),
            }
        )
        return config


def _pair(value, name):
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    value = tuple(value) if isinstance(value, (list, tuple)) else value
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValueError(
            f"`{name}` must be a positive int or a tuple of 2 positive ints, got {value!r}."
        )
    return value
