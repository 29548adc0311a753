import keras
from keras import ops

from keras_deepblocks.initializers import FusedKernel
from keras_deepblocks.initializers import GateBias
from keras_deepblocks.utils import validation
from keras_deepblocks.layers.highway import gated_mix
from keras_deepblocks.layers.highway import is_number
from keras_deepblocks.layers.highway import reject_width_argument
from keras_deepblocks.layers.highway import set_weight_args
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
        kernel_size: Odd int or tuple of 2 odd ints, the convolution window
            (odd, so that "same" padding centres it on its pixel). Defaults to
            `3`. The layer keeps its input's channels: it has no `filters`.
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
        # `HighwayConv2D(16, 3)`, as `Conv2D(filters, kernel_size)`.
        habit = kernel_size if is_number(activation) else None
        conv_before = 'Conv2D({}, 3, padding="same")'
        reject_width_argument("HighwayConv2D", "filters", "channels", conv_before, kwargs, habit)
        activity_regularizer = validation.keras_object(
            activity_regularizer, "activity_regularizer", "regularizer"
        )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.kernel_size = _kernel_size(kernel_size)
        self.dilation_rate = validation.positive_pair(dilation_rate, "dilation_rate")
        self.activation = validation.keras_object(activation, "activation", "activation")
        self.transform_bias = validation.finite_float(transform_bias, "transform_bias")
        self.data_format = validation.data_format(data_format)
        set_weight_args(
            self,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            kernel_constraint,
            bias_constraint,
        )
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @property
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        channels = validation.known_channels(input_shape, self._channel_axis, "HighwayConv2D")
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
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={self._channel_axis: channels})

    def call(self, inputs):
        if inputs.shape[0] == 0:
            # TensorFlow's CPU convolution gives an empty batch the input's
            # channels, not the kernel's; the output of no images is no images.
            return inputs
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
            # Not `ops.add`: on TensorFlow it turns this sum into a `BiasAdd`
            # whose channel axis it guesses from the sizes, the last one when
            # the width equals `2 * channels`.
            fused = ops.subtract(fused, ops.reshape(ops.negative(self.bias), (1, -1, 1, 1)))
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


def _kernel_size(value):
    """The window, odd on both axes: "same" padding then centres it on its pixel,
    keeping the transform aligned with the input it is mixed with.

    This also catches the Conv2D habit `HighwayConv2D(16)`: filter counts are even.
    """
    try:
        return validation.positive_pair(value, "kernel_size", odd=True)
    except ValueError as error:
        raise ValueError(
            f"{error} HighwayConv2D keeps the channels of its input and takes no `filters` "
            "argument: its first argument is the window, e.g. `HighwayConv2D(3)`."
        ) from None
