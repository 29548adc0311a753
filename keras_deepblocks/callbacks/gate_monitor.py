import keras
from keras import ops

from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import HighwayConv2D
from keras_deepblocks.layers import HighwayStack


class GateMonitor(keras.callbacks.Callback):
    """Logs the mean transform-gate bias of a model's highway layers after each epoch.

    A fresh highway layer starts with its transform-gate bias `b_t` at
    `transform_bias` (negative: mostly carry). Watching where training moves
    the biases shows which layers learn to transform and which keep carrying
    their input. The mean over all highway layers goes into the epoch logs as
    `transform_bias`; the per-layer means of every epoch are kept in
    `self.history`, by layer name (`"highway/3"` for layer 3 of a
    `HighwayStack` named `highway`).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), Highway(name="hw"), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> monitor = GateMonitor()
    >>> history = model.fit(
    ...     np.ones((8, 4)), np.ones((8, 1)), epochs=2, callbacks=[monitor], verbose=0
    ... )
    >>> list(monitor.history[-1])  # {layer name: mean transform-gate bias}
    ['hw']
    >>> len(history.history["transform_bias"])
    2
    """

    def __init__(self):
        super().__init__()
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        biases = {}
        for layer in self.model._flatten_layers(include_self=False):
            if isinstance(layer, HighwayStack):
                means = ops.convert_to_numpy(ops.mean(transform_bias(layer), axis=-1))
                biases.update({f"{layer.name}/{i}": float(m) for i, m in enumerate(means)})
            elif isinstance(layer, (Highway, HighwayConv2D)):
                biases[layer.name] = float(ops.convert_to_numpy(ops.mean(transform_bias(layer))))
        if not biases:
            return
        self.history.append(biases)
        if logs is not None:
            logs["transform_bias"] = sum(biases.values()) / len(biases)


def transform_bias(layer):
    """The transform-gate half `b_t` of a highway layer's fused bias `[b_h | b_t]`.

    For a `HighwayStack`, whose bias is `(num_layers, 2 * width)`, each
    layer's: `(num_layers, width)`.
    """
    bias = layer.weights[1] if isinstance(layer, HighwayStack) else layer.bias
    width = bias.shape[-1] // 2
    return bias[..., width:]
