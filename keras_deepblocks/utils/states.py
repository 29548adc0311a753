"""Resetting the states that stateful layers carry from call to call."""


def reset_states(model):
    """Resets every stateful layer in `model` (nested models included); returns their count.

    Keras 3 models have no `reset_states()`; this calls the layers' own:
    `ElmoLSTM.reset_states()` and Keras RNNs' `reset_state()` (which are
    no-ops when the layer is not stateful).

    Example:

    >>> from keras_deepblocks.zoo import elmo_bilm
    >>> reset_states(elmo_bilm("elmo_small", stateful=True))
    1
    """
    count = 0
    # `_flatten_layers` also finds layers held by custom layers, which
    # `model.layers` does not list.
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if not getattr(layer, "stateful", False):
            continue
        reset = getattr(layer, "reset_states", None) or getattr(layer, "reset_state", None)
        if reset is not None:
            reset()
            count += 1
    return count
