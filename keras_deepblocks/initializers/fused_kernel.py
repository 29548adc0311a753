import keras
from keras import ops

from keras_deepblocks.utils import validation


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class FusedKernel(keras.initializers.Initializer):
    """Initializes a kernel that fuses two layers along its last axis.

    A highway layer stores `[W_h | W_t]` as one kernel of shape
    `(..., n_in, 2 * n_out)`. Drawing it in one piece would show fan-based
    initializers (Glorot, He, LeCun) twice the real fan-out; this draws each
    half with the shape of one layer, `(..., n_in, n_out)`, and concatenates.

    Args:
        initializer: Initializer of each half. Defaults to `"he_normal"`.

    Example:

    >>> tuple(FusedKernel("glorot_uniform")((64, 128)).shape)
    (64, 128)
    """

    def __init__(self, initializer="he_normal"):
        self.initializer = validation.keras_object(initializer, "initializer", "initializer")

    def __call__(self, shape, dtype=None):
        half = half_shape(shape, "FusedKernel")
        first = self.initializer(half, dtype=dtype)
        second = _independent_copy(self.initializer)(half, dtype=dtype)
        return ops.concatenate([first, second], axis=-1)

    def get_config(self):
        return {"initializer": keras.initializers.serialize(self.initializer)}


def _independent_copy(initializer):
    """A copy of `initializer` whose random draw differs from the original's.

    Keras initializers seeded with an int (or unseeded, which fixes a random
    int at construction) repeat their draw on every call, so the copy takes
    the next seed: still deterministic, but the two halves differ. One seeded
    with a `SeedGenerator` draws anew at each call already: it is its own copy.
    """
    if isinstance(getattr(initializer, "seed", None), keras.random.SeedGenerator):
        return initializer
    config = initializer.get_config()
    if isinstance(config.get("seed"), int):
        config["seed"] += 1
    return initializer.__class__.from_config(config)


def half_shape(shape, initializer_name):
    """`shape` with its last dimension halved: the shape of each fused half."""
    *outer, size = shape
    if size % 2:
        raise ValueError(
            f"`shape` must have an even last dimension ({initializer_name} fills two halves), "
            f"received: {tuple(shape)}."
        )
    return (*outer, size // 2)
