import numpy as np
from keras import ops

from keras_deepblocks.callbacks._probes import LayerValues
from keras_deepblocks.callbacks._probes import ProbeCallback
from keras_deepblocks.callbacks._probes import block_names
from keras_deepblocks.callbacks._probes import ensure_graph
from keras_deepblocks.callbacks._probes import figure_grid
from keras_deepblocks.callbacks._probes import flat_float32
from keras_deepblocks.callbacks._probes import plot_profiles
from keras_deepblocks.callbacks._probes import weighted_layers
from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.utils.figures import save_figure


class SignalRMS(ProbeCallback):
    """Records the root mean square of each layer's output on a probe batch over training.

    For every layer holding weights, in network order (a `ResidualStack` or
    `HighwayStack` gives one entry per block, `"highway/0"`, ...), the RMS
    `sqrt(mean(y^2))` of its output on the probe batch. A signal that shrinks
    or grows geometrically with depth is what keeps a deep network from
    training: a highway stack whose gates are too open for its depth lets its
    signal fall to 0, a residual stack without normalization and with He
    initialization lets it explode.

    `self.epochs` lists the recorded epochs (0: before the first epoch; the
    end of training always included); `self.history` holds one
    `{name: rms}` dict of Python floats per recorded epoch, and
    `self.layer_names` the names in network order.

    Args:
        data: The probe batch: `x`, or a tuple `(x, y)` whose `y` is unused,
            evaluated in one call.
        frequency: Record every `frequency` epochs. Defaults to `1`.
        log_dir: Directory for TensorBoard summaries, or `None` (default):
            a scalar `signal_rms/<name>` per entry and, with `histograms`, a
            histogram of the output values, at step = epoch. Needs TensorFlow
            installed, on any backend.
        figure: Path of an image (`.png`, `.pdf`, `.svg`, ...) written at the
            end of training, or `None` (default).
        histograms: Whether TensorBoard gets histograms too. Defaults to
            `True`.
        training: The `training` argument of the model's call on the probe
            (the blocks of a stack are always run in inference). Defaults to
            `False`.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a")])
    >>> model.compile("sgd", "mse")
    >>> x, y = np.ones((16, 4)), np.ones((16, 3))
    >>> rms = SignalRMS(x)
    >>> _ = model.fit(x, y, epochs=1, callbacks=[rms], verbose=0)
    >>> rms.layer_names, len(rms.history)
    (['a'], 2)
    """

    summary_prefix = "signal_rms"

    def __init__(
        self, data, frequency=1, log_dir=None, figure=None, histograms=True, training=False
    ):
        super().__init__(
            data,
            frequency=frequency,
            log_dir=log_dir,
            figure=figure,
            histograms=histograms,
            training=training,
        )
        self.layer_names = []

    def _setup(self):
        ensure_graph(self.model, "SignalRMS")
        self._layers = weighted_layers(self.model)
        if not self._layers:
            raise ValueError(f"SignalRMS found no layer with weights in model {self.model.name!r}.")
        self._values = LayerValues(self.model, [layer for _, layer in self._layers])
        self.layer_names = [n for name, layer in self._layers for n in block_names(name, layer)]

    def _measure(self):
        values = self._values(self.x, training=self.training)
        record, histograms = {}, {}
        for name, layer in self._layers:
            inputs, outputs = values[id(layer)]
            if isinstance(layer, ResidualStack):
                entries = zip(block_names(name, layer), layer.block_outputs(inputs))
            else:
                entries = [(name, outputs)]
            for entry, output in entries:
                flat = flat_float32(output)
                total = sum(ops.sum(ops.square(v)) for v in flat)
                count = sum(int(v.shape[0]) for v in flat)
                record[entry] = float(np.sqrt(float(ops.convert_to_numpy(total)) / count))
                if self.log_dir is not None and self.histograms:
                    histograms[entry] = np.concatenate([ops.convert_to_numpy(v) for v in flat])
        return record, dict(record), histograms

    def _draw(self, path):
        figure, (axis,) = figure_grid(1, width=7.0)
        names = self.layer_names
        plot_profiles(
            axis,
            names,
            self.epochs,
            [[record[n] for n in names] for record in self.history],
            "RMS of the output",
            title="Signal RMS per layer on the probe batch",
        )
        figure.tight_layout()
        return save_figure(figure, path)
