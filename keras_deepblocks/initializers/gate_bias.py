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
