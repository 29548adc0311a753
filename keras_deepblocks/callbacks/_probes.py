"""What the diagnostics callbacks share: the probed layers, their values on a probe batch, the
recording schedule, TensorBoard summaries and the per-layer figure.

A diagnostics callback looks at a model through one fixed batch (the probe), at the start of
training and every `frequency` epochs. The layers it reports on are the model's leaf layers that
hold weights, in network order (nested functional and Sequential models are entered, their
layers named `outer/inner`); a `ResidualStack` (`HighwayStack` too) counts as one entry per
block, named `stack/0`, `stack/1`, ... The values a layer computes on the probe are read from the
model's graph, through a functional sub-model.
"""

import os

import keras
import numpy as np
from keras import ops

from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.utils import validation
from keras_deepblocks.utils.figures import check_image_path
from keras_deepblocks.utils.figures import new_figure


def weighted_layers(model, prefix=""):
    """`[(name, layer)]`: the leaf layers of `model` that hold weights, in network order.

    Nested functional and Sequential models are entered (`outer/inner` names);
    any other layer, a `ResidualUnit`, a `ResidualStack` or a subclassed
    model, is a leaf.
    """
    found = []
    for layer in model.layers:
        if has_graph(layer):
            found.extend(weighted_layers(layer, f"{prefix}{layer.name}/"))
        elif layer.weights:
            found.append((f"{prefix}{layer.name}", layer))
    return found


def block_names(name, layer):
    """The names of a layer's entries: one per block of a stack, else the layer's own."""
    if isinstance(layer, ResidualStack):
        return [f"{name}/{index}" for index in range(layer.num_blocks)]
    return [name]


def has_graph(model):
    """Whether `model` is a functional or Sequential model whose graph is known."""
    if not isinstance(model, keras.Model):
        return False
    try:
        return bool(model.inputs) and bool(model.outputs)
    except AttributeError:  # subclassed, or a Sequential not built yet
        return False


def ensure_built(model, x):
    """Builds a model that builds on its first batch (a Sequential without `Input`).

    A Sequential gets its graph, with a free batch size, from the probe's shape.
    """
    if isinstance(model, keras.Sequential) and not has_graph(model):
        model.build((None, *tuple(keras.tree.flatten(x)[0].shape[1:])))
    if not model.built:
        model(x)


def ensure_graph(model, callback_name):
    """Refuses models whose layers' values cannot be read from a graph."""
    if not has_graph(model):
        raise ValueError(
            f"{callback_name} reads each layer's values from the model's graph: the model must "
            f"be functional or Sequential, received: {type(model).__name__} {model.name!r} "
            "(a subclassed model)."
        )


class LayerValues:
    """Evaluates chosen layers of a graph model on a batch: `{id(layer): (inputs, outputs)}`.

    One functional sub-model per graph model (the model and each nested graph
    model holding a chosen layer) returns the chosen layers' inputs and outputs
    and the nested models' inputs, from which their own sub-model continues.
    """

    def __init__(self, model, layers):
        wanted = {id(layer) for layer in layers}
        self._plan = _plan(model, wanted)

    def __call__(self, x, training=False):
        values = {}
        _evaluate(self._plan, x, training, values)
        return values


def _plan(model, wanted):
    """`(sub-model, [(layer, is_nested, nested plan)])` for the layers of `model` in `wanted`."""
    entries, tensors = [], []
    for layer in model.layers:
        if has_graph(layer):
            nested = _plan(layer, wanted)
            if not nested[1]:
                continue
            entries.append((layer, nested))
            tensors.append([layer.input])
        elif id(layer) in wanted:
            entries.append((layer, None))
            tensors.append([layer.input, layer.output])
    if not entries:
        return None, []
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    submodel = keras.Model(inputs, keras.tree.flatten(tensors))
    return (submodel, tensors), entries


def _evaluate(plan, x, training, values):
    (submodel, structure), entries = plan
    flat = submodel(x, training=training)
    flat = list(flat) if isinstance(flat, (list, tuple)) else [flat]
    packed = keras.tree.pack_sequence_as(structure, flat)
    for (layer, nested), tensors in zip(entries, packed):
        if nested is None:
            values[id(layer)] = (tensors[0], tensors[1])
        else:
            _evaluate(nested, tensors[0], training, values)


def flat_float32(values):
    """The tensors of a (possibly nested) structure as flat float32 tensors."""
    return [ops.reshape(ops.cast(v, "float32"), (-1,)) for v in keras.tree.flatten(values)]


def to_float(value):
    """A scalar tensor as a Python float."""
    return float(ops.convert_to_numpy(value))


def probe_data(data, callback_name, needs_targets=False):
    """`(x, y, sample_weight)` of a probe batch given as `x` or a tuple `(x, y[, weights])`."""
    if data is None:
        raise ValueError(
            f"`data` of {callback_name} must be a probe batch `x` or a tuple `(x, y)`, "
            "received: None."
        )
    try:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    except ValueError:
        raise ValueError(
            f"`data` of {callback_name} must be a probe batch `x` or a tuple `(x, y)` or "
            f"`(x, y, sample_weight)`, received: a tuple of {len(data)} items."
        ) from None
    if needs_targets and y is None:
        raise ValueError(
            f"`data` of {callback_name} must be a tuple `(x, y)` (the loss needs the "
            f"targets), received: {_describe(data)}."
        )
    try:
        x, y, sample_weight = keras.tree.map_structure(
            lambda v: None if v is None else ops.convert_to_numpy(v), (x, y, sample_weight)
        )
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`data` of {callback_name} must hold arrays or tensors, received: "
            f"{_describe(data)} ({error})."
        ) from None
    arrays = [v for v in keras.tree.flatten((x, y)) if v is not None]
    if not all(np.ndim(v) for v in arrays):
        raise TypeError(
            f"`data` of {callback_name} must hold arrays or tensors with a batch axis, "
            f"received: {_describe(data)}."
        )
    sizes = {np.shape(v)[0] for v in arrays}
    if 0 in sizes or len(sizes) != 1:
        raise ValueError(
            f"`data` of {callback_name} must hold one or more examples, the same number in "
            f"every array, received: batch sizes {sorted(sizes)}."
        )
    return x, y, sample_weight


def _describe(data):
    shapes = keras.tree.map_structure(lambda v: tuple(np.shape(v)), data)
    return f"{type(data).__name__} of shape {shapes}"


class SummaryWriter:
    """TensorBoard scalars and histograms through `tf.summary`, as Keras's TensorBoard writes
    them, on every backend (TensorFlow runs eagerly beside JAX or PyTorch)."""

    def __init__(self, log_dir):
        try:
            import tensorflow as tf
        except ImportError as error:
            raise ImportError(
                "Writing TensorBoard summaries (`log_dir`) needs TensorFlow: "
                "pip install tensorflow-cpu"
            ) from error
        self._tf = tf
        self._writer = tf.summary.create_file_writer(os.fspath(log_dir))

    def write(self, step, scalars, histograms):
        with self._writer.as_default(step=step):
            for tag, value in scalars.items():
                self._tf.summary.scalar(tag, value)
            for tag, values in histograms.items():
                self._tf.summary.histogram(tag, np.asarray(values, dtype="float32"))
        self._writer.flush()

    def close(self):
        self._writer.close()


class ProbeCallback(keras.callbacks.Callback):
    """Records `self._measure()` on the start of training and every `frequency` epochs.

    Subclasses set `summary_prefix` and define `_setup()` (checks the model,
    at the start of training), `_measure()` -> `(record, scalars, histograms)`
    and `_draw(path)`.
    """

    summary_prefix = ""

    def __init__(
        self,
        data,
        frequency=1,
        log_dir=None,
        figure=None,
        histograms=True,
        training=False,
        needs_targets=False,
    ):
        super().__init__()
        name = type(self).__name__
        self.x, self.y, self.sample_weight = probe_data(data, name, needs_targets)
        self.frequency = validation.positive_int(frequency, "frequency")
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(
                f"`log_dir` must be None or a directory path, received: {log_dir!r} "
                f"of type {type(log_dir).__name__}."
            )
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.figure = None if figure is None else check_image_path(figure, "figure")
        self.histograms = validation.boolean(histograms, "histograms")
        self.training = validation.boolean(training, "training")
        self.epochs = []
        self.history = []
        self._writer = None
        self._started = False
        self._last_epoch = None

    def on_train_begin(self, logs=None):
        # A new fit starts a new history (as keras.callbacks.History does).
        self.epochs, self.history = [], []
        self._started, self._last_epoch = False, None
        ensure_built(self.model, self.x)
        self._setup()
        if self.log_dir is not None:
            self._writer = SummaryWriter(self.log_dir)

    def on_epoch_begin(self, epoch, logs=None):
        if not self._started:  # the state before this fit's first epoch
            self._started = True
            self.record(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch + 1
        if (epoch + 1) % self.frequency == 0:
            self.record(epoch + 1)

    def on_train_end(self, logs=None):
        try:
            if self._last_epoch is not None and self.epochs[-1:] != [self._last_epoch]:
                self.record(self._last_epoch)
            if self.figure is not None and self.history:
                self.plot(self.figure)
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def record(self, epoch):
        """Measures the model on the probe now and files the result under `epoch`."""
        # Measuring runs the model: BatchNormalization statistics and seeds
        # (with `training=True`) advance, so they are put back after.
        state = [ops.copy(v.value) for v in self.model.non_trainable_variables]
        try:
            record, scalars, histograms = self._measure()
        finally:
            for variable, value in zip(self.model.non_trainable_variables, state):
                variable.assign(value)
        self.epochs.append(int(epoch))
        self.history.append(record)
        if self._writer is not None:
            prefix = self.summary_prefix
            self._writer.write(
                int(epoch),
                {f"{prefix}/{tag}": value for tag, value in scalars.items()},
                {f"{prefix}/{tag}": v for tag, v in histograms.items()} if self.histograms else {},
            )

    def plot(self, path):
        """Writes the figure of the recorded history to `path` (format from its extension)."""
        path = check_image_path(path, "path")
        if not self.history:
            raise ValueError(
                f"{type(self).__name__} has recorded nothing yet: train the model with it "
                "(`model.fit(..., callbacks=[...])`) before plotting."
            )
        return self._draw(path)

    def _setup(self):
        raise NotImplementedError

    def _measure(self):
        raise NotImplementedError

    def _draw(self, path):
        raise NotImplementedError


def epoch_colormap():
    """Viridis without its lightest yellow, which hardly shows on white."""
    import matplotlib

    colors = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, 256))
    return matplotlib.colors.ListedColormap(colors, name="epochs")


def epoch_colors(epochs):
    """One color per recorded epoch, from a sequential colormap (dark: early, light: late)."""
    colormap = epoch_colormap()
    last = max(max(epochs), 1)
    return [colormap(epoch / last) for epoch in epochs]


def plot_profiles(axis, names, epochs, rows, ylabel, log=True, title=None):
    """Draws one line per recorded epoch of a per-layer quantity: x = layer, y = value.

    Args:
        axis: A Matplotlib axis.
        names: The layer (or block) names, in network order.
        epochs: The recorded epochs, one per row.
        rows: One list of values (one per name) per recorded epoch.
        ylabel: Label of the y axis.
        log: Whether the y axis is logarithmic.
        title: Title of the axis.
    """
    positions = np.arange(1, len(names) + 1)
    colors = epoch_colors(epochs)
    for epoch, row, color in zip(epochs, rows, colors):
        label = "initialization" if epoch == 0 else f"epoch {epoch}"
        values = np.asarray(row, dtype=float)
        if log:  # a zero has no place on a log axis: drawn as a gap
            values = np.where(values > 0, values, np.nan)
        axis.plot(
            positions, values, color=color, marker="." if len(names) <= 20 else None, label=label
        )
    if log:
        axis.set_yscale("log")
    label_layers(axis, names)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title)
    epoch_legend(axis, epochs)
    axis.grid(True, which="major", alpha=0.3)


def label_layers(axis, names):
    """Layer names as ticks when they fit, else layer numbers."""
    if len(names) <= 16:
        axis.set_xticks(np.arange(1, len(names) + 1))
        axis.set_xticklabels(names, rotation=45, ha="right", fontsize="small")
        axis.set_xlabel("layer")
    else:
        axis.set_xlabel("layer (in network order)")


def epoch_legend(axis, epochs):
    """A legend for a few epochs, a colorbar over the epochs for many."""
    if len(epochs) <= 8:
        axis.legend(fontsize="small")
        return
    import matplotlib

    last = max(max(epochs), 1)
    mappable = matplotlib.cm.ScalarMappable(
        norm=matplotlib.colors.Normalize(0, last), cmap=epoch_colormap()
    )
    colorbar = axis.figure.colorbar(mappable, ax=axis)
    colorbar.set_label("epoch")


def figure_grid(panels, rows=1, width=6.0, height=4.2):
    """A figure of `panels` axes of `width` x `height` inches each, in `rows` rows."""
    columns = -(-panels // rows)
    figure, axes = new_figure(
        rows, columns, figsize=(width * columns, height * rows), squeeze=False
    )
    return figure, list(axes.ravel())[:panels]
