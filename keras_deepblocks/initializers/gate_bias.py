import math

import keras
from keras import ops

from keras_deepblocks.initializers.fused_kernel import half_shape
from keras_deepblocks.utils import validation


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class GateBias(keras.initializers.Initializer):
    """Bias of a fused `[transform | gate]` layer: the last axis is split in two.

    The first half comes from `transform_initializer`; the second half, the
    transform-gate bias `b_t` of a highway layer, is the constant
    `transform_bias`.

    Args:
        transform_bias: Initial transform-gate bias `b_t`. Negative values make
            a highway layer start close to the identity. Defaults to `-1.0`.
        transform_initializer: Initializer of the first half. Defaults to
            `"zeros"`.

    Example:

    >>> ops.convert_to_numpy(GateBias(-2.0)((4,))).tolist()
    [0.0, 0.0, -2.0, -2.0]
    """

    def __init__(self, transform_bias=-1.0, transform_initializer="zeros"):
        self.transform_bias = validation.finite_float(transform_bias, "transform_bias")
        self.transform_initializer = validation.keras_object(
            transform_initializer, "transform_initializer", "initializer"
        )

    def __call__(self, shape, dtype=None):
        half = half_shape(shape, "GateBias")
        transform = self.transform_initializer(half, dtype=dtype)
        gate = ops.full(half, self.transform_bias, dtype=dtype)
        return ops.concatenate([transform, gate], axis=-1)

    def get_config(self):
        return {
            "transform_bias": self.transform_bias,
            "transform_initializer": keras.initializers.serialize(self.transform_initializer),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "gate_value" in config:  # files saved by version 0.1.0
            config["transform_bias"] = config.pop("gate_value")
        return cls(**config)


def highway_transform_bias(depth, total_transform=1.0):
    """The transform-gate bias that lets a stack of `depth` highway layers carry its signal.

    A fresh highway layer maps `x` to about `T H(x) + (1 - T) x`. With `T`
    fixed, a stack of `L` layers keeps a fraction `(1 - T)^L` of its input on
    the carry path, and for an `H(x)` unaligned with `x` each layer scales the
    signal by about `sqrt(T^2 + (1 - T)^2)`: a bias that suits 10 layers
    (`-1` to `-3`, as in the Highway paper) leaves nothing of the signal, or
    of the gradient, at 100 or 1000 layers. This bias,
    `b_t = log(total_transform / depth)`, opens each gate to
    `T = c / (L + c)` (`c = total_transform`): the stack as a whole transforms
    by `sum(T_l) ~ c` and carries `prod(1 - T_l) = (L / (L + c))^L > e^{-c}`
    of its input, whatever the depth. For 10 layers it gives -2.3, in the
    paper's range; -4.6 for 100 and -6.9 for 1000.

    Args:
        depth: Number of highway layers in the stack, a positive int.
        total_transform: `c`, the sum of the initial gate values over the
            stack, a positive number. Defaults to `1.0`.

    Returns:
        The initial gate bias, a float, for every layer of the stack.

    Example:

    >>> round(highway_transform_bias(100), 3)
    -4.605
    >>> from keras_deepblocks.layers import Highway
    >>> model = keras.Sequential(
    ...     [keras.Input((8,))]
    ...     + [Highway(transform_bias=highway_transform_bias(20)) for _ in range(20)]
    ... )
    """
    depth = validation.positive_int(depth, "depth")
    total_transform = validation.float_in_range(
        total_transform, "total_transform", 0.0, None, low_open=True
    )
    return math.log(total_transform / depth)
