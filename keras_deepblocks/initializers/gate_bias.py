import keras
from keras import ops

from keras_deepblocks.utils import validation


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class GateBias(keras.initializers.Initializer):
    """Bias of a fused `[transform | gate]` layer: the last axis is split in two.

    The first half comes from `transform_initializer`; the second half, the
    gate bias `b_t` of a highway layer, is the constant `gate_value`.

    Args:
        gate_value: Initial gate bias. Negative values make a highway layer
            start close to the identity.
        transform_initializer: Initializer of the first half. Defaults to
            `"zeros"`.

    Example:

    >>> GateBias(-2.0)((4,))
    [0., 0., -2., -2.]
    """

    def __init__(self, gate_value=-1.0, transform_initializer="zeros"):
        self.gate_value = validation.finite_float(gate_value, "gate_value")
        self.transform_initializer = validation.keras_object(
            transform_initializer, "transform_initializer", "initializer"
        )

    def __call__(self, shape, dtype=None):
        *outer, size = shape
        if size % 2:
            raise ValueError(
                f"GateBias needs an even last dimension to split in two; got shape {shape}."
            )
        half = (*outer, size // 2)
        transform = self.transform_initializer(half, dtype=dtype)
        gate = ops.full(half, self.gate_value, dtype=dtype)
        return ops.concatenate([transform, gate], axis=-1)

    def get_config(self):
        return {
            "gate_value": self.gate_value,
            "transform_initializer": keras.initializers.serialize(self.transform_initializer),
        }
