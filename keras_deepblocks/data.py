"""Built-in offline data: scikit-learn's handwritten digits (no download)."""

import numpy as np


def load_digits(test_fraction=0.2, seed=0, images=False):
    """scikit-learn's 8x8 handwritten digits, scaled to [0, 1], split in two.

    Args:
        test_fraction: Fraction of the 1797 examples held out for testing.
        seed: Seed of the shuffle before the split.
        images: Return `(n, 8, 8, 1)` images instead of `(n, 64)` vectors.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, float32 inputs and int32
        labels.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as error:
        raise ImportError(
            "The built-in digits data needs scikit-learn: pip install scikit-learn"
        ) from error
    digits = sklearn_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    if images:
        x = x.reshape(-1, 8, 8, 1)
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(round(len(x) * (1 - test_fraction)))
    train, test = order[:split], order[split:]
    return (x[train], y[train]), (x[test], y[test])
