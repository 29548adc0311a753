"""Argument checks shared by the layers, initializers and model builders.

Each check raises a Keras-style error that names the argument, says what it
allows and shows what it received (`` `momentum` must be in [0, 1], received:
2.0``). NumPy scalars pass wherever Python numbers do and come back as Python
numbers, so that configs stay JSON-serializable; bools are not numbers here.
"""

import math
import numbers

import keras
import numpy as np

# The seeds every backend's `keras.random.SeedGenerator` accepts: JAX needs
# uint32, PyTorch int32.
MAX_SEED = 2**31 - 1

_KERAS_OBJECTS = {
    "activation": (keras.activations.get, "an activation (a function or a name such as 'relu')"),
    "initializer": (
        keras.initializers.get,
        "a Keras initializer (an instance, a name such as 'he_normal', or a config dict)",
    ),
    "regularizer": (
        keras.regularizers.get,
        "None or a Keras regularizer (an instance, a name such as 'l2', or a config dict)",
    ),
    "constraint": (
        keras.constraints.get,
        "None or a Keras constraint (an instance, a name such as 'non_neg', or a config dict)",
    ),
}


def _received(value):
    return f"received: {value!r} of type {type(value).__name__}"


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def finite_float(value, name):
    """`value` as a Python float; a `TypeError`/`ValueError` naming `name` otherwise."""
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a finite number, {_received(value)}.")
    try:
        as_float = float(value)
    except OverflowError:  # an int beyond float range
        as_float = math.inf
    if not math.isfinite(as_float):
        raise ValueError(f"`{name}` must be a finite number, received: {value!r}.")
    return as_float


def float_in_range(value, name, low=None, high=None, *, low_open=False, high_open=False):
    """`value` as a finite Python float in the interval from `low` to `high`.

    `low_open`/`high_open` exclude the bound; `None` leaves that side open.
    """
    value = finite_float(value, name)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        if low is not None and high is not None:
            interval = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            interval = f"{'>' if low_open else '>='} {low:g}"
        else:
            interval = f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"`{name}` must be {interval}, received: {value!r}.")
    return value


def integer_in_range(value, name, low=None, high=None):
    """`value` as a Python int in `[low, high]`; `TypeError` if it is no integer."""
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, {_received(value)}.")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"`{name}` must be an integer {bounds}, received: {value!r}.")
    return value


def positive_int(value, name):
    """`value` as a Python int >= 1.

    A `ValueError` also for a wrong type, as Keras's own layers do (`Dense(units="8")`),
    so that values read from config files fail the same way whatever is wrong.
    """
    if _is_bool(value) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, {_received(value)}.")
    return int(value)


def positive_pair(value, name, odd=False):
    """An int or a pair of ints, each positive (and odd if `odd`), as a tuple of 2 ints.

    Odd convolution windows centre on their pixel: "same" padding then keeps the
    output aligned with the input, which a gated sum with the input needs.
    """
    pair = (value, value) if isinstance(value, numbers.Integral) else value
    pair = tuple(pair) if isinstance(pair, (list, tuple)) else pair
    valid = (
        isinstance(pair, tuple)
        and len(pair) == 2
        and all(isinstance(v, numbers.Integral) and not _is_bool(v) for v in pair)
        and not _is_bool(value)
    )
    kind = "positive odd integer" if odd else "positive integer"
    allowed = f"a {kind} or a tuple of 2 {kind}s"
    if not valid:
        raise ValueError(f"`{name}` must be {allowed}, {_received(value)}.")
    pair = tuple(int(v) for v in pair)
    if not all(v > 0 and (v % 2 or not odd) for v in pair):
        raise ValueError(f"`{name}` must be {allowed}, received: {value!r}.")
    return pair


def shape(value, name, rank, meaning):
    """`value` as a tuple of `rank` sizes, each a positive int or `None`."""
    valid = isinstance(value, (list, tuple)) and len(value) == rank
    sizes = []
    for size in value if valid else ():
        if size is not None and (
            _is_bool(size) or not isinstance(size, numbers.Integral) or size < 1
        ):
            valid = False
            break
        sizes.append(None if size is None else int(size))
    if not valid:
        raise ValueError(
            f"`{name}` must be {meaning}: {rank} positive integers (or None), "
            f"received: {value!r}."
        )
    return tuple(sizes)


def survival_probability(value, name="survival_probability"):
    """`value` as a float in `(0, 1]`: the probability to keep a residual branch."""
    return float_in_range(value, name, 0.0, 1.0, low_open=True)


def one_of(value, name, allowed):
    """`value` if it is one of `allowed` (strings such as `"channels_last"`)."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {choices}, received: {value!r}.")
    return value


def boolean(value, name):
    """`value` as a Python bool; `True`, `False` or a NumPy bool only."""
    if not _is_bool(value):
        raise TypeError(f"`{name}` must be True or False, {_received(value)}.")
    return bool(value)


def seed(value):
    """`None` or an integer seed that every backend accepts, checked when a layer is made."""
    if value is None:
        return None
    return integer_in_range(value, "seed", 0, MAX_SEED)


def training(value):
    """The `training` call argument: `None`, a bool, or a scalar boolean tensor.

    Anything else (the string `"False"`, which is truthy) would silently pick a mode.
    """
    if value is None or _is_bool(value):
        return value
    dtype = getattr(value, "dtype", None)
    is_array = keras.ops.is_tensor(value) or isinstance(value, np.ndarray)
    if is_array and keras.backend.standardize_dtype(dtype) == "bool" and len(value.shape) == 0:
        return value
    raise TypeError(
        f"`training` must be True, False, None or a scalar boolean tensor, {_received(value)}."
    )


def keras_object(value, name, kind):
    """`value` resolved by Keras's `get` for `kind` (activation, initializer, ...).

    Keras's own message names the identifier only; this one names the argument.
    Initializers may not be `None`: the layer draws its weights with them.
    """
    get, allowed = _KERAS_OBJECTS[kind]
    try:
        resolved = get(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"`{name}` must be {allowed}, received: {value!r} ({error}).") from None
    if resolved is None and kind == "initializer":
        raise ValueError(f"`{name}` must be {allowed}, received: None.")
    return resolved


def known_channels(input_shape, axis, layer_name):
    """The size of `input_shape[axis]`, which the layer's weights depend on."""
    channels = input_shape[axis]
    if channels is None:
        raise ValueError(
            f"The input of {layer_name} must have a known size on axis {axis} (its weights "
            f"depend on it), received: input shape {tuple(input_shape)}."
        )
    return int(channels)


def data_format(value):
    """`value`, or Keras's image data format when `None`; checked."""
    return one_of(
        value or keras.config.image_data_format(),
        "data_format",
        ("channels_last", "channels_first"),
    )
