"""Plain vs highway MLPs of growing depth on the built-in digits: the Highway paper's Figure 1.

Every network trains with one optimizer setting (`training.compare`: SGD with
momentum 0.9, the same seed and batches). The highway nets' gates start at
`highway_transform_bias(depth)`; their loss curves barely depend on depth,
while plain nets stop training from a few tens of layers. The experiment also
builds a 1000-layer highway MLP and measures, at initialization, how much of
the gradient reaches its first highway layer.
"""

import math
import time

import numpy as np

from keras_deepblocks import datasets
from keras_deepblocks import training
from keras_deepblocks.initializers import highway_transform_bias
from keras_deepblocks.utils import figures
from keras_deepblocks.utils import validation
from keras_deepblocks.zoo.highway_nets import highway_mlp
from keras_deepblocks.zoo.highway_nets import plain_mlp

FULL = {"depths": (10, 20, 50, 100), "highway_depths": (900,), "epochs": 15, "deep_stack": 1000}
SMALL = {"depths": (10, 20, 50), "highway_depths": (), "epochs": 8, "deep_stack": 1000}


def run(
    small=False,
    seed=0,
    dataset="digits",
    verbose=0,
    depths=None,
    highway_depths=None,
    width=50,
    epochs=None,
    batch_size=64,
    learning_rate=0.05,
    deep_stack=None,
    data_dir=None,
):
    """Trains plain and highway MLPs at each depth; measures a very deep highway stack.

    Args:
        small: The CI and tutorial size: depths 10, 20, 50 for 8 epochs
            (about a minute on one core) instead of 10, 20, 50, 100 (and a
            900-layer highway net) for 15 epochs.
        seed: Seed of the data split, the weights and the batches.
        dataset: `"digits"` (scikit-learn's 8x8 digits, built in; the
            default) or another name of `keras_deepblocks.datasets.DATASETS`
            (through tensorflow-datasets, images flattened).
        verbose: Keras's progress mode.
        depths: Depths of both kinds of network; defaults by `small`.
        highway_depths: Further depths for highway nets only.
        width: Units of every layer. Defaults to `50`, as in the paper.
        epochs, batch_size, learning_rate: The training of every network.
        deep_stack: Depth of the highway MLP whose build time and gradient
            are measured (`0` to skip); defaults to `1000`.
        data_dir: tensorflow-datasets data directory (datasets other than
            the digits), or `None` for its default.

    Returns:
        A dict of plain numbers: `runs`, one entry per network
        (`network`, `depth`, `transform_bias`, `losses` per epoch,
        `test_accuracy`), the settings, and `deep_stack` (`depth`,
        `build_seconds`, `gradient_ratio`: the first highway layer's mean
        absolute bias gradient over the last one's, and `signal_ratio`: the
        stack's output RMS over its input's).
    """
    validation.one_of(dataset, "dataset", datasets.DATASETS)
    size = SMALL if small else FULL
    depths = _depths(size["depths"] if depths is None else depths, "depths")
    highway_depths = _depths(
        size["highway_depths"] if highway_depths is None else highway_depths, "highway_depths"
    )
    epochs = validation.positive_int(size["epochs"] if epochs is None else epochs, "epochs")
    deep_stack = size["deep_stack"] if deep_stack is None else deep_stack
    deep_stack = validation.integer_in_range(deep_stack, "deep_stack", 0)
    *data, num_classes = datasets.load_vectors(dataset, data_dir, seed)
    shape = data[0][0].shape[1:]

    builders, networks = {}, []
    for network, network_depths in (("plain", depths), ("highway", depths + highway_depths)):
        for depth in network_depths:
            build = plain_mlp if network == "plain" else highway_mlp
            builders[f"{network} {depth}"] = _builder(build, shape, num_classes, depth, width)
            networks.append((network, depth))
    trained = training.compare(
        builders,
        data,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        verbose=verbose,
    )
    runs = []
    for (network, depth), (losses, accuracy) in zip(networks, trained.values()):
        bias = highway_transform_bias(depth) if network == "highway" else None
        runs.append(
            {
                "network": network,
                "depth": depth,
                "transform_bias": bias,
                "losses": [float(loss) for loss in losses],
                "test_accuracy": accuracy,
            }
        )
    return {
        "dataset": dataset,
        "width": width,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "runs": runs,
        "num_classes": num_classes,
        "deep_stack": (
            measure_deep_stack(deep_stack, data, num_classes, width, seed) if deep_stack else None
        ),
    }


def measure_deep_stack(depth, data, num_classes, width=50, seed=0, batch_size=64):
    """Builds a `depth`-layer highway MLP and measures its gradient at initialization.

    Returns `{"depth", "build_seconds", "gradient_ratio", "signal_ratio"}`:
    the gradient of the cross-entropy on one batch of `data` with respect to
    each highway layer's bias, mean absolute value, first layer over last
    (a layer's kernel gradient also scales with its input, so the bias shows
    the back-propagated signal alone), and the RMS of the stack's output over
    that of its input.
    """
    import keras
    from keras import ops

    from keras_deepblocks.utils.gradients import gradients

    keras.utils.set_random_seed(seed)
    (x_train, y_train), _ = data
    started = time.perf_counter()
    model = highway_mlp(x_train.shape[1:], num_classes, depth=depth, width=width)
    build_seconds = time.perf_counter() - started
    stack = model.get_layer("highway")
    x, labels = x_train[:batch_size], ops.convert_to_tensor(y_train[:batch_size])
    grads = gradients(
        model,
        x,
        loss_fn=lambda p: ops.mean(keras.losses.sparse_categorical_crossentropy(labels, p)),
    )
    position = [id(v) for v in model.trainable_variables].index(id(stack.weights[1]))
    bias_grad = np.abs(grads[position]).mean(axis=1)
    stack_input = model.get_layer("projection").output
    probe = keras.Model(model.input, [stack_input, stack.output])
    before, after = (ops.convert_to_numpy(t) for t in probe(x))
    return {
        "depth": depth,
        "build_seconds": build_seconds,
        "gradient_ratio": float(bias_grad[0] / bias_grad[-1]),
        "signal_ratio": float(np.sqrt(np.mean(after**2) / np.mean(before**2))),
    }


def plot(results, path):
    """Training loss per epoch, plain nets left and highway nets right, one line per depth."""
    fig, axes = figures.new_figure(1, 2, figsize=(11, 4.2), sharey=True)
    all_depths = sorted({run["depth"] for run in results["runs"]})
    colors = _depth_colors(all_depths)
    for ax, network in zip(axes, ("plain", "highway")):
        for run in (r for r in results["runs"] if r["network"] == network):
            epochs = range(1, len(run["losses"]) + 1)
            losses = [loss if math.isfinite(loss) else np.nan for loss in run["losses"]]
            label = f"{run['depth']} layers"
            if run["transform_bias"] is not None:
                label += f" (b_T = {run['transform_bias']:.1f})"
            ax.plot(
                epochs, losses, marker="o", markersize=3, color=colors[run["depth"]], label=label
            )
        chance = math.log(results["num_classes"])  # the cross-entropy of a uniform guess
        ax.axhline(chance, color="gray", linestyle="--", linewidth=1, label="chance")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(f"{network} networks")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training loss (cross-entropy)")
    fig.suptitle(
        f"Plain vs highway MLPs of {results['width']} units on {results['dataset']}, SGD lr "
        f"{results['learning_rate']:g} (momentum 0.9): highway nets train at any depth"
    )
    return figures.save_figure(fig, path)


def summary(results):
    """One row per network: depth, gate bias, final training loss, test accuracy."""
    lines = [f"{'network':<9}{'depth':>6}{'b_T':>8}{'final loss':>12}{'test accuracy':>15}"]
    for run in results["runs"]:
        bias = "" if run["transform_bias"] is None else f"{run['transform_bias']:.2f}"
        lines.append(
            f"{run['network']:<9}{run['depth']:>6}{bias:>8}{run['losses'][-1]:>12.4f}"
            f"{run['test_accuracy']:>15.4f}"
        )
    deep = results["deep_stack"]
    if deep:
        lines.append(
            f"\n{deep['depth']}-layer highway MLP: built in {deep['build_seconds']:.1f} s; at "
            f"initialization the first layer's gradient is {deep['gradient_ratio']:.3g} x the "
            f"last layer's and the signal keeps {deep['signal_ratio']:.3g} of its RMS."
        )
    return "\n".join(lines)


def _builder(build, shape, num_classes, depth, width):
    return lambda: build(shape, num_classes, depth=depth, width=width)


def _depths(values, name):
    try:
        return tuple(validation.positive_int(v, name) for v in values)
    except TypeError:
        raise TypeError(
            f"`{name}` must be a sequence of positive integers, received: {values!r}."
        ) from None


def _depth_colors(depths):
    import matplotlib

    colormap = matplotlib.colormaps["viridis"]
    span = max(len(depths) - 1, 1)
    return {depth: colormap(0.85 * index / span) for index, depth in enumerate(depths)}
