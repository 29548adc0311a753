"""Initializers that draw new values at each call (Keras's repeat theirs)."""

import copy

import keras


def advancing(initializer):
    """`initializer`, drawing new values at each call.

    Keras's random initializers draw the same values at every call (an unseeded
    one picks its seed once, when made); given a `SeedGenerator` (from their
    integer seed, if any) they draw anew each time, reproducibly. Initializers
    made of initializers (`FusedKernel`, `GateBias`) advance each part.
    """
    config = initializer.get_config() if hasattr(initializer, "get_config") else {}
    if "seed" in config:
        if isinstance(config["seed"], dict):  # already a SeedGenerator
            return initializer
        generator = keras.random.SeedGenerator(config["seed"])
        return type(initializer).from_config({**config, "seed": generator})
    parts = {
        name: value
        for name, value in vars(initializer).items()
        if isinstance(value, keras.initializers.Initializer)
    }
    if not parts:
        return initializer
    whole = copy.copy(initializer)
    for name, part in parts.items():
        setattr(whole, name, advancing(part))
    return whole
