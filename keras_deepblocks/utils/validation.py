"""Argument checks shared by the layers: errors name the argument and what it allows."""

import math

import keras


def finite_float(value, name):
    """`value` as a Python float; a `TypeError`/`ValueError` naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"`{name}` must be a finite number, got {value!r} "
            f"of type {type(value).__name__}."
        )
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    return float(value)


def positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return value


def one_of(value, name, allowed):
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {choices}; got {value!r}.")
    return value


def known_channels(input_shape, axis, layer_name):
    """The size of `input_shape[axis]`, which the layer's weights depend on."""
    channels = input_shape[axis]
    if channels is None:
        raise ValueError(
            f"{layer_name} needs a known size on axis {axis} of its input "
            f"(its weights depend on it); got input shape {tuple(input_shape)}."
        )
    return int(channels)


def boolean(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    return value


def data_format(value):
    """`value`, or Keras's image data format when `None`; checked."""
    return one_of(
        value or keras.config.image_data_format(),
        "data_format",
        ("channels_last", "channels_first"),
    )
