"""Gradient flow, signal and gates through a deep plain and a deep highway MLP: why highways train.

A plain network of `depth` ReLU layers and a highway network of `depth`
highway layers (`keras_deepblocks.zoo.highway_nets`, the highway one with
its default depth-aware gate bias `highway_transform_bias(depth)`) train the
same way (SGD, momentum 0.9, gradients clipped to norm 1, as
`keras_deepblocks.training.compare`) while three diagnostics callbacks watch
them on a fixed probe batch, at initialization and after every epoch:

- `GradientFlow`: the mean absolute gradient of the loss for each layer's
  weights. Through a deep plain net the gradient reaching the first layers
  is a product of `depth` Jacobians and drifts away from the last layer's;
  through a highway net whose gates mostly carry, each layer's Jacobian is
  close to the identity and the first layer gets about what the last gets.
- `SignalRMS`: the root mean square of each layer's output, the forward
  view of the same products.
- `GateActivity`: the mean transform gate `T` of every highway layer and the
  fraction of its units that mostly carry (`T < 0.5`): the Highway paper's
  observation that a trained deep highway net keeps many of its layers
  close to the identity.

Example:

```python
from keras_deepblocks.experiments import gradients

results = gradients.run(small=True)
gradients.plot(results, "gradients.png")
print(gradients.summary(results))
```
"""

import keras
import numpy as np

from keras_deepblocks import datasets
from keras_deepblocks.callbacks import GateActivity
from keras_deepblocks.callbacks import GradientFlow
from keras_deepblocks.callbacks import SignalRMS
from keras_deepblocks.experiments._results import finite_or_none
from keras_deepblocks.experiments._results import nan_for_none
from keras_deepblocks.utils import validation
from keras_deepblocks.utils.figures import check_image_path
from keras_deepblocks.utils.figures import new_figure
from keras_deepblocks.utils.figures import save_figure
from keras_deepblocks.zoo.highway_nets import highway_mlp
from keras_deepblocks.zoo.highway_nets import plain_mlp

NETWORKS = {"plain": "plain (ReLU, He)", "highway": "highway"}
COLORS = {"plain": "tab:red", "highway": "tab:blue"}
FULL = {"depth": 50, "epochs": 15}
SMALL = {"depth": 50, "epochs": 2}
GATE_KEYS = ("mean_gate", "carry_fraction", "gate_bias")


def run(
    small=False,
    seed=0,
    dataset="digits",
    verbose=0,
    depth=None,
    width=50,
    epochs=None,
    batch_size=64,
    learning_rate=0.05,
    probe_examples=256,
    data_dir=None,
):
    """Trains a plain and a highway MLP and records their gradients, signal and gates per layer.

    Both networks start from the same seed and train on the same batches.
    The probe batch is the first `probe_examples` training examples; the
    callbacks run the model in inference on it, and take the gradient of
    the mean cross-entropy.

    Args:
        small: A short run (2 epochs), for tests and tutorials; the measures
            at initialization are those of the full run.
        seed: Seed of the weights, the data split and the shuffles.
        dataset: `"digits"` (offline, the default) or another name of
            `keras_deepblocks.datasets.DATASETS`, whose images are flattened
            and scaled to `[0, 1]`.
        verbose: Keras's progress mode for training.
        depth: Hidden layers of each network. Defaults to `50`.
        width: Units of every layer. Defaults to `50`.
        epochs: Training epochs. Defaults to `15` (`2` when `small`).
        batch_size: Training batch size. Defaults to `64`.
        learning_rate: SGD learning rate. Defaults to `0.05`.
        probe_examples: Examples in the probe batch. Defaults to `256`.
        data_dir: tensorflow-datasets data directory (datasets other than
            the digits).

    Returns:
        A dict of plain Python values (a value that is not finite is
        `None`): the settings, and under `"networks"`, for `"plain"` and
        `"highway"`: `label`; `layer_names` (in network order: the
        projection, the `depth` hidden layers, the classifier) and `hidden`
        (the indices of the first and last hidden layer in it); `epochs`
        (the recorded epochs, 0 = initialization); `gradient` and
        `signal_rms`, each `{"initialization": [...], "end": [...]}` with
        one value per layer; `first_gradient` and `last_gradient` (of the
        first and last hidden layer, per recorded epoch); `gradient_ratio`
        (`{"initialization": ..., "end": ...}`, first hidden layer's mean
        gradient over the last one's); `train_loss` (per epoch),
        `final_loss` and `test_accuracy`. The highway network also has
        `gates`: `layer_names` and, for `mean_gate`, `carry_fraction` and
        `gate_bias`, `{"initialization": [...], "end": [...]}` per highway
        layer, and `carrying_layers` (`{"initialization": n, "end": n}`, the
        highway layers where most units mostly carry).
    """
    small = validation.boolean(small, "small")
    defaults = SMALL if small else FULL
    validation.one_of(dataset, "dataset", datasets.DATASETS)
    depth = validation.positive_int(defaults["depth"] if depth is None else depth, "depth")
    width = validation.positive_int(width, "width")
    epochs = validation.positive_int(defaults["epochs"] if epochs is None else epochs, "epochs")
    batch_size = validation.positive_int(batch_size, "batch_size")
    learning_rate = validation.float_in_range(learning_rate, "learning_rate", 0.0, low_open=True)
    probe_examples = validation.positive_int(probe_examples, "probe_examples")
    (x_train, y_train), (x_test, y_test), num_classes = datasets.load_vectors(
        dataset, data_dir, seed
    )
    probe = (x_train[:probe_examples], y_train[:probe_examples])
    shape = x_train.shape[1:]
    builders = {
        "plain": lambda: plain_mlp(shape, num_classes, depth=depth, width=width),
        "highway": lambda: highway_mlp(shape, num_classes, depth=depth, width=width),
    }
    networks = {}
    for name, build in builders.items():
        keras.utils.set_random_seed(seed)  # the same draw and batches for both
        model = build()
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9, clipnorm=1.0),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        flow, signal = GradientFlow(probe), SignalRMS(probe)
        callbacks = [flow, signal]
        if name == "highway":
            gates = GateActivity(probe)
            callbacks.append(gates)
        history = model.fit(
            x_train,
            y_train,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
        )
        _, accuracy = model.evaluate(x_test, y_test, verbose=0)
        first, last = flow.layer_names[1], flow.layer_names[-2]  # the hidden layers
        losses = [finite_or_none(loss) for loss in history.history["loss"]]
        network = {
            "label": NETWORKS[name],
            "layer_names": list(flow.layer_names),
            "hidden": [1, len(flow.layer_names) - 2],
            "epochs": list(flow.epochs),
            "gradient": _ends(flow.history, flow.layer_names),
            "signal_rms": _ends(signal.history, signal.layer_names),
            "first_gradient": [finite_or_none(record[first]) for record in flow.history],
            "last_gradient": [finite_or_none(record[last]) for record in flow.history],
            "gradient_ratio": {
                key: _ratio(flow.history[index][first], flow.history[index][last])
                for key, index in (("initialization", 0), ("end", -1))
            },
            "train_loss": losses,
            "final_loss": losses[-1],
            "test_accuracy": finite_or_none(accuracy),
        }
        if name == "highway":
            names = gates.layer_names
            network["gates"] = {
                "layer_names": list(names),
                **{
                    key: {
                        "initialization": [finite_or_none(gates.history[0][n][key]) for n in names],
                        "end": [finite_or_none(gates.history[-1][n][key]) for n in names],
                    }
                    for key in GATE_KEYS
                },
                "carrying_layers": {
                    "initialization": _carrying(gates.history[0]),
                    "end": _carrying(gates.history[-1]),
                },
            }
        networks[name] = network
    return {
        "experiment": "gradients",
        "dataset": dataset,
        "small": small,
        "seed": seed,
        "depth": depth,
        "width": width,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "probe_examples": int(len(probe[0])),
        "networks": networks,
    }


def _ends(history, names):
    """`{"initialization": [...], "end": [...]}`: the first and last record, in `names` order."""
    return {
        "initialization": [finite_or_none(history[0][n]) for n in names],
        "end": [finite_or_none(history[-1][n]) for n in names],
    }


def _carrying(record):
    """How many highway layers have most of their units mostly carrying (`T < 0.5`)."""
    return sum(1 for entry in record.values() if entry["carry_fraction"] > 0.5)


def _ratio(numerator, denominator):
    if denominator == 0:
        return None
    return finite_or_none(numerator / denominator)


def plot(results, path):
    """Draws `run`'s results in four panels.

    Gradient flow (mean |dL/dw| per layer) and signal RMS per layer, plain
    against highway, at initialization (solid) and at the end (dashed), on
    log axes; the highway net's gate activity per layer (mean gate and
    fraction of carrying units); and the training loss of both.

    Args:
        results: What `run` returned.
        path: Image file to write (`.png`, `.pdf`, `.svg`, ...).

    Returns:
        `path`.
    """
    path = check_image_path(path, "path")
    figure, axes = new_figure(2, 2, figsize=(13, 9))
    (flow, signal), (gates, losses) = axes
    networks = results["networks"]
    end_label = f"after epoch {results['epochs']}"
    for name, network in networks.items():
        color = COLORS.get(name)
        layers = np.arange(1, len(network["layer_names"]) + 1)
        for when, style in (("initialization", "-"), ("end", "--")):
            label = (
                f"{network['label']}, {'initialization' if when == 'initialization' else end_label}"
            )
            values = nan_for_none(network["gradient"][when])
            flow.plot(
                layers,
                np.where(values > 0, values, np.nan),
                style,
                color=color,
                label=f"{label}: first/last hidden {_number(network['gradient_ratio'][when])}",
            )
            values = nan_for_none(network["signal_rms"][when])
            signal.plot(
                layers, np.where(values > 0, values, np.nan), style, color=color, label=label
            )
        loss = nan_for_none(network["train_loss"])
        losses.plot(
            np.arange(1, len(loss) + 1),
            loss,
            "o-",
            color=color,
            markersize=3,
            label=f"{network['label']}: final {_number(network['final_loss'])}, "
            f"test accuracy {_number(network['test_accuracy'])}",
        )
    depth, width = results["depth"], results["width"]
    flow.set(
        yscale="log",
        xlabel="layer (1: projection, last: classifier)",
        ylabel="mean |dL/dw| on the probe batch",
        title=f"Gradient flow through {depth} layers of {width} units",
    )
    signal.set(
        yscale="log",
        xlabel="layer (1: projection, last: classifier)",
        ylabel="RMS of the layer's output",
        title="Signal RMS per layer",
    )
    highway = networks.get("highway", {}).get("gates")
    carrying = gates.twinx()  # the fractions on their own, linear, axis
    if highway:
        positions = np.arange(1, len(highway["layer_names"]) + 1)
        for when, style in (("initialization", "-"), ("end", "--")):
            suffix = "initialization" if when == "initialization" else end_label
            gates.plot(
                positions,
                nan_for_none(highway["mean_gate"][when]),
                style,
                color="tab:blue",
                label=f"mean gate T, {suffix}",
            )
            carrying.plot(
                positions,
                nan_for_none(highway["carry_fraction"][when]),
                style,
                color="tab:orange",
                label=f"units with mean T < 0.5, {suffix}",
            )
    gates.set(
        yscale="log",
        xlabel="highway layer",
        ylabel="mean transform gate T (blue)",
        title="Highway gates on the probe batch",
    )
    carrying.set(ylim=(-0.02, 1.02), ylabel="fraction of units that mostly carry (orange)")
    handles = gates.get_legend_handles_labels()
    more = carrying.get_legend_handles_labels()
    if handles[0]:
        # Below the axis: the lines fill it from the bottom (T) to the top (fractions).
        gates.legend(
            handles[0] + more[0],
            handles[1] + more[1],
            fontsize=8,
            ncol=2,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
        )
    losses.set(
        yscale="log",
        xlabel="epoch",
        ylabel="training loss (cross-entropy)",
        title=(
            f"Training on {results['dataset']} (SGD, rate {results['learning_rate']:g}, "
            f"batch {results['batch_size']})"
        ),
    )
    for axis in (flow, signal, losses):
        axis.legend(fontsize=8)
    for axis in (flow, signal, gates, losses):
        axis.grid(True, which="major", alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def summary(results):
    """A text table of `run`'s results: gradient ratio, signal, loss and gates per network."""
    lines = [
        f"plain vs highway MLP, {results['depth']} layers of {results['width']} units, "
        f"{results['epochs']} epochs on {results['dataset']}",
        "",
        f"{'network':<10}{'grad first/last':>17}{'(end)':>11}{'RMS last/first':>16}"
        f"{'final loss':>12}{'test acc':>10}",
    ]
    for name, network in results["networks"].items():
        first, last = network["hidden"]
        rms = network["signal_rms"]["initialization"]
        rms_ratio = _ratio(rms[last], rms[first]) if None not in (rms[last], rms[first]) else None
        ratio = network["gradient_ratio"]
        lines.append(
            f"{name:<10}{_number(ratio['initialization']):>17}{_number(ratio['end']):>11}"
            f"{_number(rms_ratio):>16}{_number(network['final_loss']):>12}"
            f"{_number(network['test_accuracy']):>10}"
        )
    gates = results["networks"].get("highway", {}).get("gates")
    if gates:
        count = len(gates["layer_names"])
        mean_gate = [v for v in gates["mean_gate"]["end"] if v is not None]
        lines += [
            "",
            f"highway gates at the end: mean T {_number(np.mean(mean_gate) if mean_gate else None)}"
            f", {gates['carrying_layers']['end']} of {count} layers mostly carry "
            f"({gates['carrying_layers']['initialization']} at initialization)",
        ]
    return "\n".join(lines)


def _number(value):
    """A short form of a number for tables and legends (`None`: not finite)."""
    if value is None:
        return "n/a"
    value = float(value)
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.2e}"
