"""Depth-scaled initialization against He's in a 100-block residual MLP: the slides' experiment.

Taki (2017) analyzes residual blocks `z_l = z_{l-1} + W_l relu(z_{l-1})`
without batch normalization. Going back through block `l`, the gradient
`g_{l-1} = dLoss/dz_{l-1} = g_l + D_l W_l^T g_l` (`D_l` the ReLU mask, on for
half the units) has its variance multiplied by `1 + n Var[w] / 2`, so

    Var[g_l] = Var[g_L] (1 + n Var[w] / 2)^(L - l).

He initialization (`n Var[w] = 2`) doubles it in every block: `2^(L-1)`
from the last block to the first. The depth-scaled one (`n Var[w] = 2 / L`)
keeps the whole stack's growth below `e`. With batch normalization in the
branch (BN-ReLU-Dense), the gradient through a branch is divided by the
variance `s_{l-1}` of the signal entering it (per unit, over the batch),
which every block raises by `n Var[w] Var[relu(u)] = 1 - 1/pi` (He, `u`
standard normal): `Var[g_{l-1}] = Var[g_l] (1 + 1 / s_{l-1})`, a power of
`L / l` (about `(L / l)^1.5`) instead of an exponential.

`run` builds `keras_deepblocks.zoo.residual_mlp` three times (He without BN,
depth-scaled without BN, He with BN), measures `Var[dLoss/dz_l]` at
initialization for every block output `z_l` (the gradient with respect to
the block's output, which the theory describes; the weights' gradients
`relu(z_{l-1})^T g_l` hide the explosion, since the forward signal shrinks
toward the input as fast as the gradient grows toward it), and trains the
three the same way (`keras_deepblocks.training.compare`). `plot` draws both,
`summary` tabulates them.

Example:

```python
from keras_deepblocks.experiments import init

results = init.run(small=True)
init.plot(results, "init.png")
print(init.summary(results))
```
"""

import math

import keras
import numpy as np
from keras import ops

from keras_deepblocks import datasets
from keras_deepblocks import training
from keras_deepblocks.experiments._results import finite_or_none
from keras_deepblocks.experiments._results import nan_for_none
from keras_deepblocks.utils import validation
from keras_deepblocks.utils.figures import check_image_path
from keras_deepblocks.utils.figures import new_figure
from keras_deepblocks.utils.figures import save_figure
from keras_deepblocks.utils.gradients import gradient_function
from keras_deepblocks.zoo.residual_mlp import residual_mlp

# Name -> (label, kernel initializer of the branches, batch normalization).
VARIANTS = {
    "he": ("He, no BN", "he_normal", False),
    "depth_scaled": ("depth-scaled, no BN", "depth_scaled", False),
    "he_bn": ("He, with BN", "he_normal", True),
}
COLORS = {"he": "tab:red", "depth_scaled": "tab:blue", "he_bn": "tab:green"}
FULL = {"num_blocks": 100, "epochs": 20}
SMALL = {"num_blocks": 50, "epochs": 3}


def run(
    small=False,
    seed=0,
    dataset="digits",
    verbose=0,
    num_blocks=None,
    width=64,
    epochs=None,
    batch_size=32,
    learning_rate=0.01,
    gradient_examples=256,
    data_dir=None,
):
    """Measures and trains residual MLPs under He and depth-scaled initialization.

    Every variant starts from the same seed. The gradients at initialization
    are those of the mean cross-entropy (computed from the logits, so that
    saturated softmax outputs still give gradients) over the first
    `gradient_examples` training examples, with BN on their batch
    statistics. Then each model trains with SGD (momentum 0.9, gradients
    clipped to norm 1, as `keras_deepblocks.training.compare` does) on the
    same batches.

    Args:
        small: A short run (50 blocks, 3 epochs), for tests and tutorials.
        seed: Seed of the weights, the data split and the shuffles.
        dataset: `"digits"` (offline, the default) or another name of
            `keras_deepblocks.datasets.DATASETS`, whose images are
            flattened and scaled to `[0, 1]`.
        verbose: Keras's progress mode for training.
        num_blocks: `L`, residual blocks of every model. Defaults to `100`
            (`50` when `small`).
        width: Units of every block. Defaults to `64`.
        epochs: Training epochs. Defaults to `20` (`3` when `small`).
        batch_size: Training batch size. Defaults to `32`.
        learning_rate: SGD learning rate. Defaults to `0.01`.
        gradient_examples: Examples in the batch whose gradients are
            measured. Defaults to `256`.
        data_dir: tensorflow-datasets data directory (datasets other than
            the digits).

    Returns:
        A dict of plain Python values (JSON has no NaN: a value that is not
        finite is `None`): the settings, and under `"variants"`, for `"he"`,
        `"depth_scaled"` and `"he_bn"`: `label`, `batch_norm`, `n_var_w`
        (`width` times the measured variance of the branch kernels),
        `input_variance` (of `z_0`, per unit over the batch),
        `gradient_variance` (`Var[dLoss/dz_l]` for `l = 1..L`),
        `gradient_ratio` (first block's over last block's), `theory` (the
        prediction for every block, scaled to the measured values' geometric
        mean) and `theory_ratio` (its first over last), `train_loss` (per
        epoch), `diverged_epoch` (first epoch with a loss that is not finite,
        or `None`), `final_loss` and `test_accuracy`.
    """
    defaults = SMALL if small else FULL
    small = validation.boolean(small, "small")
    validation.one_of(dataset, "dataset", datasets.DATASETS)
    num_blocks = validation.positive_int(
        defaults["num_blocks"] if num_blocks is None else num_blocks, "num_blocks"
    )
    width = validation.positive_int(width, "width")
    epochs = validation.positive_int(defaults["epochs"] if epochs is None else epochs, "epochs")
    batch_size = validation.positive_int(batch_size, "batch_size")
    learning_rate = validation.float_in_range(learning_rate, "learning_rate", 0.0, low_open=True)
    gradient_examples = validation.positive_int(gradient_examples, "gradient_examples")
    (x_train, y_train), (x_test, y_test), num_classes = datasets.load_vectors(
        dataset, data_dir, seed
    )
    x_probe, y_probe = x_train[:gradient_examples], y_train[:gradient_examples]

    def builder(initializer, batch_norm):
        return lambda: residual_mlp(
            x_train.shape[1:],
            num_classes,
            num_blocks=num_blocks,
            width=width,
            kernel_initializer=initializer,
            batch_norm=batch_norm,
        )

    builders = {name: builder(init, bn) for name, (_, init, bn) in VARIANTS.items()}
    variants = {}
    for name, (label, _, batch_norm) in VARIANTS.items():
        keras.utils.set_random_seed(seed)  # the draw `compare` trains from
        model = builders[name]()
        variance = block_gradient_variances(model, x_probe, y_probe)
        signal = ops.convert_to_numpy(model.get_layer("projection")(x_probe))
        input_variance = float(signal.var(axis=0).mean())
        n_var_w = float(width * np.var(branch_kernels(model)))
        theory = _theory(variance, n_var_w, batch_norm, input_variance)
        variants[name] = {
            "label": label,
            "batch_norm": batch_norm,
            "n_var_w": n_var_w,
            "input_variance": input_variance,
            "gradient_variance": [finite_or_none(v) for v in variance],
            "gradient_ratio": finite_or_none(variance[0] / variance[-1]),
            "theory": theory,
            "theory_ratio": None if theory is None else finite_or_none(theory[0] / theory[-1]),
        }
    trained = training.compare(
        builders,
        ((x_train, y_train), (x_test, y_test)),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        verbose=verbose,
    )
    for name, (losses, accuracy) in trained.items():
        losses = [finite_or_none(loss) for loss in losses]
        diverged = next((epoch for epoch, loss in enumerate(losses, 1) if loss is None), None)
        variants[name].update(
            train_loss=losses,
            diverged_epoch=diverged,
            final_loss=losses[-1],
            test_accuracy=finite_or_none(accuracy),
        )
    return {
        "experiment": "init",
        "dataset": dataset,
        "small": small,
        "seed": seed,
        "num_blocks": num_blocks,
        "width": width,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "gradient_examples": int(len(x_probe)),
        "variants": variants,
    }


def block_gradients(model, x, y):
    """`dLoss/dz_l` for the output `z_l` of every block of a `residual_mlp`, at its weights.

    The loss is the mean sparse cross-entropy of the logits (the classifier
    before its softmax) over the batch `x`, labels `y`, with BN (if any) on
    the batch statistics. A zero "probe" added to each block's output has
    the gradient of that output; the model is left as it was (BN moving
    statistics included). Works on every backend.

    Args:
        model: A model from `keras_deepblocks.zoo.residual_mlp`.
        x: A batch of inputs.
        y: Their integer labels.

    Returns:
        A NumPy array of shape `(num_blocks, batch, width)`.
    """
    x = ops.convert_to_tensor(np.asarray(x, dtype="float32"))
    y = ops.convert_to_tensor(np.asarray(y, dtype="int32"))
    probed = _Probed(model, batch_size=int(x.shape[0]))
    probed.build(tuple(x.shape))

    def loss(logits):
        return ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))

    state = [ops.copy(v.value) for v in model.non_trainable_variables]
    try:
        (gradients,) = gradient_function(probed, loss, training=True)(x)
    finally:
        for variable, value in zip(model.non_trainable_variables, state):
            variable.assign(value)
    return ops.convert_to_numpy(gradients)


def block_gradient_variances(model, x, y):
    """`Var[dLoss/dz_l]` over the batch and the units, for every block `l` (see `block_gradients`)."""
    gradients = block_gradients(model, x, y).astype("float64")
    return [float(v) for v in gradients.reshape(len(gradients), -1).var(axis=1)]


def branch_kernels(model):
    """The stacked kernels of a `residual_mlp`'s residual branches: `(num_blocks, width, width)`."""
    stack = model.get_layer("blocks")
    (index,) = [i for i, p in enumerate(stack.block_weight_paths) if p.endswith("dense/kernel")]
    return ops.convert_to_numpy(stack.weights[index])


class _Probed(keras.layers.Layer):
    """A `residual_mlp`'s forward pass to the logits, with a zero probe added to each block output.

    Its only variable is the probes, `(num_blocks, batch, width)`: their
    gradient is that of the block outputs. The model is held untracked, so
    its weights are read, not differentiated. The blocks run as the stack
    runs them (`block.stateless_call` on each block's slice of the stacked
    weights); the test checks that the logits match the model's.
    """

    def __init__(self, model, batch_size, **kwargs):
        super().__init__(**kwargs)
        self._model = _Held(model)
        self.batch_size = batch_size

    def build(self, input_shape):
        stack = self._model.value.get_layer("blocks")
        width = self._model.value.get_layer("projection").units
        self.probes = self.add_weight(
            shape=(stack.num_blocks, self.batch_size, width), initializer="zeros", name="probes"
        )

    def call(self, x, training=True):
        model = self._model.value
        stack = model.get_layer("blocks")
        z = model.get_layer("projection")(x)
        trainable = [v.value for v in stack.trainable_weights]
        non_trainable = [v.value for v in stack.non_trainable_weights]
        for index in range(stack.num_blocks):
            residual, _ = stack.block.stateless_call(
                [w[index] for w in trainable],
                [w[index] for w in non_trainable],
                z,
                training=training,
            )
            z = stack.activation(z + residual) + self.probes[index]
        names = [layer.name for layer in model.layers]
        for name in names[names.index("blocks") + 1 : names.index("classifier")]:
            z = model.get_layer(name)(z, training=training)
        classifier = model.get_layer("classifier")
        return ops.matmul(z, classifier.kernel) + classifier.bias


class _Held:
    """Holds a model where Keras's attribute tracking does not see it."""

    def __init__(self, value):
        self.value = value


def _theory(measured, n_var_w, batch_norm, input_variance):
    """The predicted `Var[g_l]` for `l = 1..L`, matched to the `measured` ones.

    The theory predicts how the variance grows from block to block, not its
    scale: the prediction is scaled to the measured values' geometric mean.

    Going back through block `l + 1` multiplies the variance by
    `1 + (n Var[w] / 2) / s_l`: `s_l = 1` without BN (the signal's scale
    cancels out), and with BN `s_l` is the per-unit variance of `z_l` over
    the batch, which BN divides out; each block adds `n Var[w] Var[relu(u)]`
    to it (`u` standard normal: `1/2 - 1/(2 pi)`), starting from the
    measured `input_variance` of `z_0`.
    """
    num_blocks = len(measured)
    steps = np.arange(num_blocks)  # s_0 .. s_{L-1}
    if batch_norm:
        signal = input_variance + steps * n_var_w * (0.5 - 0.5 / math.pi)
        factors = 1.0 + (n_var_w / 2.0) / signal
    else:
        factors = np.full(num_blocks, 1.0 + n_var_w / 2.0)
    # Var[g_l] / Var[g_L] = prod_{k=l}^{L-1} factors[k], for l = 1..L.
    log_growth = np.append(np.cumsum(np.log(factors[:0:-1]))[::-1], 0.0)
    log_measured = np.log(np.asarray(measured, dtype="float64"))
    if not np.all(np.isfinite(log_measured)):
        return None
    offset = np.mean(log_measured - log_growth)
    return [finite_or_none(np.exp(offset + g)) for g in log_growth]


def plot(results, path):
    """Draws `run`'s results: gradient variance per block, and training loss per epoch.

    Both panels have log y axes. A dashed line of each variant's color is
    the theory's prediction; a loss that stopped being finite ends in an
    `x` and the legend says at which epoch.

    Args:
        results: What `run` returned.
        path: Image file to write (`.png`, `.pdf`, `.svg`, ...).

    Returns:
        `path`.
    """
    path = check_image_path(path, "path")
    figure, (gradients, losses) = new_figure(1, 2, figsize=(12, 4.5))
    num_blocks = results["num_blocks"]
    blocks = np.arange(1, num_blocks + 1)
    for name, variant in results["variants"].items():
        color = COLORS.get(name)
        measured = nan_for_none(variant["gradient_variance"])
        label = f"{variant['label']}: first/last {_number(variant['gradient_ratio'])}"
        if variant.get("theory_ratio") is not None:
            label += f" (theory {_number(variant['theory_ratio'])})"
        gradients.plot(blocks, measured, color=color, label=label)
        if variant.get("theory") is not None:
            gradients.plot(blocks, nan_for_none(variant["theory"]), "--", color=color, linewidth=1)
        loss = nan_for_none(variant["train_loss"])
        epochs = np.arange(1, len(loss) + 1)
        label = f"{variant['label']}: final {_number(variant['final_loss'])}"
        if variant["diverged_epoch"] is not None:
            label = f"{variant['label']}: not finite from epoch {variant['diverged_epoch']}"
        label += f", test accuracy {_number(variant['test_accuracy'])}"
        losses.plot(epochs, loss, "o-", color=color, markersize=3, label=label)
        finite = np.flatnonzero(np.isfinite(loss))
        if variant["diverged_epoch"] is not None and len(finite):
            losses.plot(epochs[finite[-1]], loss[finite[-1]], "x", color=color, markersize=10)
    gradients.plot([], [], "--", color="grey", linewidth=1, label="theory (mean field)")
    gradients.set(
        yscale="log",
        xlabel="residual block l",
        ylabel="Var[dLoss / dz_l] at initialization",
        title=f"Gradient variance per block ({num_blocks} blocks, width {results['width']})",
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
    gradients.legend(fontsize=8)
    losses.legend(fontsize=8)
    for axes in (gradients, losses):
        axes.grid(True, which="major", alpha=0.3)
    losses.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(
        f"Residual MLP of {num_blocks} blocks z_l = z_(l-1) + W_l relu(z_(l-1)): "
        "He vs depth-scaled initialization (Taki 2017)"
    )
    return save_figure(figure, path)


def summary(results):
    """A small text table of `run`'s results, one row per variant.

    >>> print(summary(
    ...     {"num_blocks": 2, "variants": {"he": {
    ...         "label": "He, no BN", "n_var_w": 2.0, "gradient_ratio": 2.1, "theory_ratio": 2.0,
    ...         "final_loss": 0.5, "diverged_epoch": None, "test_accuracy": 0.9}}}
    ... ))
    variant      n Var[w]  grad var first/last  theory  final loss  test accuracy
    He, no BN        2.00                2.10    2.00        0.50           0.90
    """
    header = ("variant", "n Var[w]", "grad var first/last", "theory", "final loss", "test accuracy")
    rows = []
    for variant in results["variants"].values():
        loss = _number(variant["final_loss"])
        if variant["diverged_epoch"] is not None:
            loss = f"not finite from epoch {variant['diverged_epoch']}"
        rows.append(
            (
                variant["label"],
                _number(variant["n_var_w"]),
                _number(variant["gradient_ratio"]),
                _number(variant.get("theory_ratio")),
                loss,
                _number(variant["test_accuracy"]),
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _number(value):
    """`value` in 2 decimals, or in scientific notation beyond `[0.01, 1000)`; `"-"` if `None`."""
    if value is None:
        return "-"
    if value != 0 and not 0.01 <= abs(value) < 1000:
        return f"{value:.2e}"
    return f"{value:.2f}"
