"""What the experiments share to keep their results JSON: no NaN or infinity in, NaN back out."""

import math

import numpy as np


def finite_or_none(value):
    """`value` as a Python float, or `None` if it is NaN or infinite (JSON has neither)."""
    value = float(value)
    return value if math.isfinite(value) else None


def nan_for_none(values):
    """A float64 array of `values`, NaN where they hold `None`: for plotting."""
    return np.array([np.nan if v is None else v for v in values], dtype="float64")
