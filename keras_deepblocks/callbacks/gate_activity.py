import numpy as np
from keras import ops

from keras_deepblocks.callbacks._probes import LayerValues
from keras_deepblocks.callbacks._probes import ProbeCallback
from keras_deepblocks.callbacks._probes import ensure_graph
from keras_deepblocks.callbacks._probes import figure_grid
from keras_deepblocks.callbacks._probes import label_layers
from keras_deepblocks.callbacks._probes import plot_profiles
from keras_deepblocks.callbacks._probes import weighted_layers
from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import HighwayConv2D
from keras_deepblocks.layers import HighwayStack
from keras_deepblocks.utils.figures import save_figure

HIGHWAY_LAYERS = (Highway, HighwayConv2D, HighwayStack)


class GateActivity(ProbeCallback):
    """Records what the transform gates of a model's highway layers do on a probe batch.

    For every highway layer (`Highway`, `HighwayConv2D`, and each layer of a
    `HighwayStack`, named `"highway/0"`, `"highway/1"`, ...), in network
    order, the gate `T(x) = sigmoid(x W_t + b_t)` is computed from the layer's
    input on the probe batch and its weights, and averaged per unit (per
    channel for convolutions) over the batch (and positions). Each record
    gives, per layer:

    - `"mean_gate"`: the mean of `T` over units and examples;
    - `"carry_fraction"`: the fraction of units whose mean `T` is below 0.5,
      which mostly carry their input;
    - `"gate_bias"`: the mean gate bias `b_t`.

    This is the analysis of the Highway paper (Srivastava et al. 2015, Fig. 2):
    trained deep highway networks keep many gates closed, so that many layers
    mostly pass their input on.

    `self.epochs` lists the recorded epochs (0: before the first epoch; the
    end of training always included); `self.history` holds one
    `{name: {"mean_gate": ..., "carry_fraction": ..., "gate_bias": ...}}`
    dict of Python floats per recorded epoch; `self.unit_gates` and
    `self.unit_biases` the per-unit mean gates and gate biases of the last
    record (`{name: list}`), and `self.layer_names` the names in network order.

    Args:
        data: The probe batch: `x`, or a tuple `(x, y)` whose `y` is unused,
            evaluated in one call.
        frequency: Record every `frequency` epochs. Defaults to `1`.
        log_dir: Directory for TensorBoard summaries, or `None` (default):
            scalars `gate_activity/<name>/mean_gate`, `.../carry_fraction` and
            `.../gate_bias` and, with `histograms`, a histogram
            `gate_activity/<name>` of the per-unit mean gates, at step = epoch.
            Needs TensorFlow installed, on any backend.
        figure: Path of an image (`.png`, `.pdf`, `.svg`, ...) written at the
            end of training, or `None` (default).
        histograms: Whether TensorBoard gets histograms too. Defaults to
            `True`.
        training: The `training` argument of the model's call on the probe
            (the layers of a stack are always run in inference). Defaults to
            `False`.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), Highway(name="hw"), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> x, y = np.ones((16, 4)), np.ones((16, 1))
    >>> gates = GateActivity(x)
    >>> _ = model.fit(x, y, epochs=1, callbacks=[gates], verbose=0)
    >>> sorted(gates.history[0]["hw"])
    ['carry_fraction', 'gate_bias', 'mean_gate']
    """

    summary_prefix = "gate_activity"

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
        self.unit_gates = {}
        self.unit_biases = {}

    def _setup(self):
        model = self.model
        ensure_graph(model, "GateActivity")
        self._layers = [
            (name, layer)
            for name, layer in weighted_layers(model)
            if isinstance(layer, HIGHWAY_LAYERS)
        ]
        if not self._layers:
            raise ValueError(
                "GateActivity needs highway layers (Highway, HighwayConv2D or HighwayStack), "
                f"received: model {model.name!r} without any."
            )
        self._values = LayerValues(model, [layer for _, layer in self._layers])
        self.layer_names = [name for name, _ in self._gates_of_layers(dry=True)]

    def _gates_of_layers(self, dry=False):
        """`(name, gate logits function or None, gate bias)` for every highway layer."""
        values = {} if dry else self._values(self.x, training=self.training)
        for name, layer in self._layers:
            if isinstance(layer, HighwayStack):
                if dry:
                    yield from ((f"{name}/{i}", None) for i in range(layer.num_blocks))
                    continue
                inputs = values[id(layer)][0]
                outputs = layer.block_outputs(inputs)
                for index in range(layer.num_blocks):
                    kernel, bias = layer.get_block_weights(index)
                    block_input = inputs if index == 0 else outputs[index - 1]
                    yield f"{name}/{index}", _dense_gates(block_input, kernel, bias)
            elif dry:
                yield name, None
            else:
                inputs = values[id(layer)][0]
                kernel, bias = layer.kernel, layer.bias
                if isinstance(layer, Highway):
                    yield name, _dense_gates(inputs, kernel, bias)
                else:
                    yield name, _conv_gates(layer, inputs)

    def _measure(self):
        record, scalars, histograms = {}, {}, {}
        self.unit_gates, self.unit_biases = {}, {}
        for name, (unit_gates, unit_biases) in self._gates_of_layers():
            entry = {
                "mean_gate": float(np.mean(unit_gates)),
                "carry_fraction": float(np.mean(unit_gates < 0.5)),
                "gate_bias": float(np.mean(unit_biases)),
            }
            record[name] = entry
            self.unit_gates[name] = unit_gates.tolist()
            self.unit_biases[name] = unit_biases.tolist()
            scalars.update({f"{name}/{key}": value for key, value in entry.items()})
            histograms[name] = unit_gates
        return record, scalars, histograms

    def _draw(self, path):
        names = self.layer_names
        figure, axes = figure_grid(4, rows=2, width=6.0)
        mean, carry, bias, heatmap = axes
        rows = {
            key: [[record[n][key] for n in names] for record in self.history]
            for key in ("mean_gate", "carry_fraction", "gate_bias")
        }
        plot_profiles(
            mean,
            names,
            self.epochs,
            rows["mean_gate"],
            "mean transform gate T",
            log=True,  # gates that carry sit near 0, open ones near 1
            title="Mean gate output per layer",
        )
        mean.set_ylim(top=1)
        plot_profiles(
            carry,
            names,
            self.epochs,
            rows["carry_fraction"],
            "fraction of units with mean T < 0.5",
            log=False,
            title="Units that mostly carry",
        )
        carry.set_ylim(-0.02, 1.02)
        bias.ticklabel_format(axis="y", useOffset=False)
        plot_profiles(
            bias,
            names,
            self.epochs,
            rows["gate_bias"],
            "mean gate bias b_t",
            log=False,
            title="Gate bias per layer",
        )
        # The paper's view: every unit's mean gate, layer by layer, at the last record.
        width = max(len(v) for v in self.unit_gates.values())
        grid = np.full((len(names), width), np.nan)
        for row, name in enumerate(names):
            grid[row, : len(self.unit_gates[name])] = self.unit_gates[name]
        image = heatmap.imshow(
            grid.T,
            aspect="auto",
            origin="lower",
            cmap="viridis",
            vmin=0,
            vmax=1,
            interpolation="nearest",
            extent=(0.5, len(names) + 0.5, -0.5, width - 0.5),
        )
        label_layers(heatmap, names)
        heatmap.set_ylabel("unit (channel)")
        epoch = self.epochs[-1]
        heatmap.set_title(
            f"Mean gate per unit, {'initialization' if epoch == 0 else f'epoch {epoch}'}"
        )
        figure.colorbar(image, ax=heatmap).set_label("mean T")
        figure.suptitle("Highway gate activity on the probe batch")
        figure.tight_layout()
        return save_figure(figure, path)


def _dense_gates(inputs, kernel, bias):
    """Per-unit mean of `sigmoid(x W_t + b_t)` over all but the last axis, and `b_t`."""
    width = kernel.shape[0]
    logits = ops.add(ops.matmul(inputs, kernel[:, width:]), bias[width:])
    gates = ops.sigmoid(ops.cast(logits, "float32"))
    gates = ops.reshape(gates, (-1, width))
    return ops.convert_to_numpy(ops.mean(gates, axis=0)), ops.convert_to_numpy(bias[width:])


def _conv_gates(layer, inputs):
    """Per-channel mean of a `HighwayConv2D`'s gate over examples and positions, and `b_t`."""
    channels = layer.kernel.shape[-1] // 2
    channels_last = layer.data_format == "channels_last"
    logits = ops.conv(
        inputs,
        layer.kernel[..., channels:],
        strides=1,
        padding="same",
        data_format=layer.data_format,
        dilation_rate=layer.dilation_rate,
    )
    gate_bias = layer.bias[channels:]
    shape = (1, 1, 1, channels) if channels_last else (1, channels, 1, 1)
    # Not `ops.add`: TensorFlow would take the sum for a `BiasAdd` and guess its channel axis.
    logits = ops.subtract(logits, ops.reshape(ops.negative(gate_bias), shape))
    gates = ops.sigmoid(ops.cast(logits, "float32"))
    axes = (0, 1, 2) if channels_last else (0, 2, 3)
    return ops.convert_to_numpy(ops.mean(gates, axis=axes)), ops.convert_to_numpy(gate_bias)
