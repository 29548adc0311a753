"""Lesion and shuffle studies of residual networks (Veit et al. 2016).

Veit, Wilber and Belongie ("Residual networks behave like ensembles of
relatively shallow networks", 2016) delete single blocks of a trained ResNet
at test time, or swap the places of blocks, and measure the accuracy: deleting
one block barely hurts except where the block changes the shape (the
downsampling blocks, whose shortcut is not the identity), and swapping blocks
degrades the accuracy smoothly. `lesion_study` measures both on any Keras
model made of `ResidualUnit`s and `ResidualStack`s; `plot_lesion_study`
draws them.

A lesion changes weights, never the graph: deleting a block zeroes the weights
of the last layer of its residual branch (the BN scale and offset of a
post-activation unit, the last conv kernel of a pre-activation one), so that
the branch outputs zero and the block computes `activation(shortcut(x))`;
swapping two blocks exchanges their weights (BN statistics included). One
compiled predict function then serves every lesion, and the weights are
restored afterwards, also when an evaluation fails.
"""

import numbers
import re

import keras
import numpy as np
from keras import ops

from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.utils import validation
from keras_deepblocks.utils.figures import check_image_path
from keras_deepblocks.utils.figures import new_figure
from keras_deepblocks.utils.figures import save_figure

MODES = ("delete", "shuffle", "both")
# Numbers of swaps when `swaps=None` (those above the number of swappable pairs are left out).
DEFAULT_SWAPS = (1, 2, 4, 8, 16)
# A gate logit whose sigmoid is exactly 0 in float32 and float16 (and fits in float16): a
# highway layer with this gate carries its input unchanged.
CLOSED_GATE = -1.0e4
# Weightless layers that map zero to zero: they may follow the branch's last weighted layer.
_ZERO_KEEPING = (
    keras.layers.ReLU,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Identity,
)


def lesion_study(
    model,
    images,
    labels,
    mode="delete",
    trials=5,
    swaps=None,
    batch_size=128,
    seed=None,
    verbose=0,
):
    """Accuracy of a residual network with single blocks deleted, or with blocks swapped.

    The blocks are the model's `ResidualUnit`s, each block of its
    `ResidualStack`s, and its `Highway` layers (also inside `HighwayStack`s),
    in network order, also inside nested models. A stack named `"layer2"`
    that follows units `layer2_0`, ... numbers its blocks on from them, so a
    `resnet_cifar` model gives the same block names (`layer1_0`, ...,
    `layer3_{n-1}`) and the same results with stacked stages as with
    separate units.

    - `mode="delete"`: each block in turn is replaced by its shortcut: its
      residual branch outputs zero, so it computes `activation(shortcut(x))`
      (`x` itself where the shortcut is the identity: in a post-activation
      ResNet `x` is already a ReLU output). A highway layer's gate is closed,
      so it carries its input.
    - `mode="shuffle"`: for each `k` in `swaps`, `trials` times, `k` pairs of
      same-shaped blocks (same weights and shapes, identity shortcut) drawn at
      random without replacement exchange their weights, BN statistics
      included; the swaps apply in turn, so pairs that share a block move it
      further.
    - `mode="both"`: both, with one evaluation of the intact model.

    The weights are restored after each lesion and at the end, also when an
    evaluation fails: the model is unchanged by the study.

    Args:
        model: A built `keras.Model` with residual blocks, whose single
            output holds one score per class (logits or probabilities).
        images: The inputs, an array (or anything `model.predict` takes that
            has a length).
        labels: Integer class labels, shape `(n,)` or `(n, 1)`, or one-hot
            labels `(n, num_classes)`.
        mode: `"delete"` (default), `"shuffle"` or `"both"`.
        trials: Random draws per number of swaps, a positive int. Defaults
            to `5`.
        swaps: Numbers of swaps, an int or a sequence of ints `>= 0`, each at
            most the number of swappable pairs. Defaults to those of
            `(1, 2, 4, 8, 16)` that the model allows.
        batch_size: Images per predict batch. Defaults to `128`.
        seed: Integer seed of the swaps, or `None`.
        verbose: `0` (silent) or `1` (one line per evaluation).

    Returns:
        A dict of plain Python values:
        `"full"`: the accuracy of the intact model; `"blocks"`: the block
        names; `"downsampling"`: for each block, whether its shortcut is not
        the identity (a stride or a change of channels); `"num_examples"`,
        `"num_classes"`; with `mode="delete"`, `"delete"`: the accuracy with
        each block deleted, in block order; with `mode="shuffle"`,
        `"shuffle"`: `{k: mean accuracy over the trials}`, `"shuffle_trials"`:
        `{k: [accuracy of each trial]}`, `"swappable"`: the names of the
        blocks that can swap, and `"num_pairs"`: how many pairs can.

    Example:

    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    >>> x = ResidualUnit(8, name="unit_0")(x)
    >>> x = ResidualUnit(8, name="unit_1")(x)
    >>> x = ResidualUnit(16, strides=2, name="unit_2")(x)
    >>> x = keras.layers.GlobalAveragePooling2D()(x)
    >>> model = keras.Model(inputs, keras.layers.Dense(4)(x))
    >>> images = np.random.default_rng(0).normal(size=(32, 8, 8, 3))
    >>> labels = np.argmax(model.predict(images, verbose=0), axis=-1)
    >>> results = lesion_study(model, images, labels, mode="both", trials=2, seed=0)
    >>> results["full"], results["blocks"], results["downsampling"]
    (1.0, ['unit_0', 'unit_1', 'unit_2'], [False, False, True])
    >>> len(results["delete"]), list(results["shuffle"]), results["num_pairs"]
    (3, [1], 1)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model, received: {model!r} of type {type(model).__name__}."
        )
    mode = validation.one_of(mode, "mode", MODES)
    trials = validation.positive_int(trials, "trials")
    batch_size = validation.positive_int(batch_size, "batch_size")
    seed = validation.seed(seed)
    verbose = validation.one_of(verbose, "verbose", (0, 1))
    classes = _checked_labels(images, labels)
    if not model.built:
        model.predict(images[:1], verbose=0)
    blocks = find_blocks(model)
    if not blocks:
        raise ValueError(
            "`model` must contain residual blocks (ResidualUnit, ResidualStack or Highway "
            f"layers) for a lesion study, received: model {model.name!r} without any."
        )
    delete = mode in ("delete", "both")
    shuffle = mode in ("shuffle", "both")
    # Checked before any evaluation: a block that cannot be deleted fails at once.
    deletions = [block.deletion() for block in blocks] if delete else None
    pairs = swappable_pairs(blocks)
    if shuffle:
        swaps = _checked_swaps(swaps, len(pairs))

    def evaluate(what):
        accuracy = _accuracy(model, images, classes, batch_size)
        if verbose:
            print(f"lesion_study: {what}: accuracy {accuracy:.4f}")
        return accuracy

    originals = [block.get_weights() for block in blocks]
    changed = set()

    def place(destination, source):
        """Gives block `destination` block `source`'s original weights."""
        values = dict(zip(blocks[source].keys, originals[source]))
        blocks[destination].set_weights([values[key] for key in blocks[destination].keys])
        if destination == source:
            changed.discard(destination)
        else:
            changed.add(destination)

    results = {
        "full": None,
        "blocks": [block.name for block in blocks],
        "downsampling": [block.downsampling for block in blocks],
        "num_examples": len(classes),
        "num_classes": None,
    }
    try:
        full, results["num_classes"] = _accuracy(
            model, images, classes, batch_size, with_classes=True
        )
        if verbose:
            print(f"lesion_study: intact model: accuracy {full:.4f}")
        results["full"] = full
        if delete:
            results["delete"] = []
            for index, (block, edit) in enumerate(zip(blocks, deletions)):
                changed.add(index)
                block.set_weights(edit(originals[index]))
                results["delete"].append(evaluate(f"{block.name} deleted"))
                place(index, index)
        if shuffle:
            rng = np.random.default_rng(seed)
            results["shuffle"], results["shuffle_trials"] = {}, {}
            results["swappable"] = sorted(
                {blocks[i].name for pair in pairs for i in pair}, key=results["blocks"].index
            )
            results["num_pairs"] = len(pairs)
            for count in swaps:
                accuracies = []
                for trial in range(trials):
                    order = list(range(len(blocks)))
                    for pair in rng.choice(len(pairs), size=count, replace=False):
                        first, second = pairs[pair]
                        order[first], order[second] = order[second], order[first]
                    moved = [index for index, source in enumerate(order) if source != index]
                    for index in moved:
                        place(index, order[index])
                    accuracies.append(evaluate(f"{count} swaps, trial {trial + 1}"))
                    for index in moved:
                        place(index, index)
                results["shuffle_trials"][count] = accuracies
                results["shuffle"][count] = float(np.mean(accuracies))
    finally:
        for index in sorted(changed):
            blocks[index].set_weights(originals[index])
    return results


class Block:
    """One residual block of a model: its name, its weights, and how to delete it.

    Attributes:
        name: The block's name (`layer2_0`; `layer1_3` for block 3 of stack
            `layer1`).
        downsampling: Whether its shortcut is not the identity.
        keys: A name for each weight, as in `get_weights()`, the same for a
            `ResidualUnit` and a block of a `ResidualStack` of its branch
            (`"conv1/kernel"`, `"bn2/moving_mean"`).
        shapes: The shape of each weight.
    """

    def __init__(self, name, root, branch, variables, downsampling, get, set_):
        self.name = name
        self.branch = branch
        self.downsampling = downsampling
        self._variables = variables
        self._get, self._set = get, set_
        names = _weight_names(root)
        self.keys = _unique([names.get(id(v), v.name) for v in variables])
        self.shapes = [tuple(v.shape) for v in variables]

    def get_weights(self):
        return self._get()

    def set_weights(self, arrays):
        self._set(arrays)

    @property
    def signature(self):
        """What two blocks must share to exchange weights."""
        return tuple(sorted(zip(self.keys, self.shapes)))

    def deletion(self):
        """A function of the block's weights giving those of the block with its branch off.

        Raises:
            ValueError: where zeroing weights cannot silence the branch.
        """
        edits = _deletion_edits(self.branch, self.name)
        positions = {id(v): index for index, v in enumerate(self._variables)}

        def delete(arrays):
            arrays = [np.array(a, copy=True) for a in arrays]
            for variable, edit in edits:
                index = positions[id(variable)]
                arrays[index] = edit(arrays[index])
            return arrays

        return delete


def find_blocks(model):
    """The residual blocks of `model`, in network order: a list of `Block`s.

    `ResidualUnit`s, the blocks of `ResidualStack`s and `Highway` layers,
    also inside nested models and layers; each layer counts once.
    """
    blocks, seen = [], set()

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, ResidualUnit):
            blocks.append(_unit_block(layer))
        elif isinstance(layer, ResidualStack):
            blocks.extend(_stack_blocks(layer, [b.name for b in blocks]))
        elif isinstance(layer, Highway):
            blocks.append(_layer_block(layer, layer, layer.name, False))
        else:
            children = layer.layers if isinstance(layer, keras.Model) else None
            if children is None:
                children = layer._flatten_layers(include_self=False, recursive=False)
            for child in children:
                visit(child)

    visit(model)
    return blocks


def _unit_block(unit):
    if not unit.built:
        raise ValueError(
            f"`model` must be built (called on data) for a lesion study, received: a model "
            f"whose ResidualUnit {unit.name!r} is not built."
        )
    return _layer_block(unit, unit.branch, unit.name, not unit.has_identity_shortcut)


def _layer_block(layer, branch, name, downsampling):
    return Block(
        name, layer, branch, layer.weights, downsampling, layer.get_weights, layer.set_weights
    )


def _stack_blocks(stack, names_so_far):
    if not stack.built:
        raise ValueError(
            f"`model` must be built (called on data) for a lesion study, received: a model "
            f"whose ResidualStack {stack.name!r} is not built."
        )
    # Units `layer2_0`, ... before stack `layer2` are its first blocks: number on from them.
    pattern = re.compile(re.escape(stack.name) + r"_\d+")
    offset = sum(1 for name in names_so_far if pattern.fullmatch(name))
    template = stack.block
    variables = template.trainable_weights + template.non_trainable_weights
    blocks = []
    for index in range(stack.num_blocks):
        blocks.append(
            Block(
                f"{stack.name}_{offset + index}",
                template,
                template,
                variables,
                False,
                lambda index=index: stack.get_block_weights(index),
                lambda arrays, index=index: stack.set_block_weights(index, arrays),
            )
        )
    return blocks


def _weight_names(root):
    """`{id(variable): "conv1/kernel"}`: each weight of `root` named by its layer and its name.

    The innermost layer holding a weight names it; the root's own weights go
    by their name alone. A unit's `branch/conv1/kernel` and a stack template's
    `conv1/kernel` then have one name.
    """
    names = {}

    def visit(layer, is_root):
        for child in layer._flatten_layers(include_self=False, recursive=False):
            visit(child, False)
        for variable in layer.weights:
            names.setdefault(
                id(variable), variable.name if is_root else f"{layer.name}/{variable.name}"
            )

    visit(root, True)
    return names


def _unique(keys):
    seen, unique = {}, []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        unique.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return unique


def _deletion_edits(branch, name):
    """`[(variable, edit)]`: the weight edits that make `branch` output zero."""
    if isinstance(branch, Highway):
        # Close the gate: T = sigmoid(-1e4) = 0 exactly, and the layer carries x.
        width = branch.kernel.shape[0]

        def close_kernel(kernel):
            kernel[..., width:] = 0.0
            return kernel

        def close_bias(bias):
            bias[..., width:] = CLOSED_GATE
            return bias

        return [(branch.kernel, close_kernel), (branch.bias, close_bias)]
    last = _last_weighted_layer(branch, name)
    gamma, beta = getattr(last, "gamma", None), getattr(last, "beta", None)
    if _is_variable(gamma) and _is_variable(beta):
        return [(gamma, np.zeros_like), (beta, np.zeros_like)]
    kernel = getattr(last, "kernel", None)
    if _is_variable(kernel) and _keeps_zero(getattr(last, "activation", None)):
        bias = getattr(last, "bias", None)
        edits = [(kernel, np.zeros_like)]
        return edits + ([(bias, np.zeros_like)] if _is_variable(bias) else [])
    raise ValueError(
        f"lesion_study cannot delete block {name!r}: the last weighted layer of its residual "
        f"branch, {last.name!r} ({type(last).__name__}), is neither a normalization with a "
        "scale and an offset nor a layer with a kernel and a zero-preserving activation, so "
        "zeroing its weights would not make the branch output zero. Use mode='shuffle'."
    )


def _last_weighted_layer(branch, name):
    if not isinstance(branch, keras.Model):
        return branch
    for layer in reversed(branch.layers):
        if layer.weights:
            return _last_weighted_layer(layer, name)
        if isinstance(layer, keras.layers.InputLayer):
            continue
        activation = getattr(layer, "activation", None)
        if not (isinstance(layer, _ZERO_KEEPING) or (activation and _keeps_zero(activation))):
            raise ValueError(
                f"lesion_study cannot delete block {name!r}: its residual branch ends in "
                f"{layer.name!r} ({type(layer).__name__}), which may not map zero to zero, so "
                "zeroing the weights before it would not make the branch output zero."
            )
    raise ValueError(
        f"lesion_study cannot delete block {name!r}: its residual branch has no weights."
    )


def _keeps_zero(activation):
    if activation is None:
        return True
    try:
        value = activation(ops.zeros((1,)))
    except Exception:  # noqa: BLE001 - an activation that cannot run on a vector
        return False
    return float(ops.convert_to_numpy(value)[0]) == 0.0


def _is_variable(value):
    return isinstance(value, keras.Variable)


def swappable_pairs(blocks):
    """`[(i, j)]`, `i < j`: the pairs of same-shaped blocks (identity shortcut, same weights)."""
    pairs = []
    for first, block in enumerate(blocks):
        if block.downsampling:
            continue
        for second in range(first + 1, len(blocks)):
            other = blocks[second]
            if not other.downsampling and other.signature == block.signature:
                pairs.append((first, second))
    return pairs


def _checked_swaps(swaps, num_pairs):
    if swaps is None:
        swaps = [k for k in DEFAULT_SWAPS if k <= num_pairs]
        if not swaps:
            raise ValueError(
                "`model` must have at least two same-shaped residual blocks for "
                "mode='shuffle', received: a model without any pair of them."
            )
        return swaps
    values = [swaps] if isinstance(swaps, numbers.Number) else swaps
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"`swaps` must be an int or a sequence of ints >= 0, received: {swaps!r}.")
    values = [validation.integer_in_range(k, "swaps", 0) for k in values]
    if not values:
        raise ValueError("`swaps` must hold at least one number of swaps, received: [].")
    too_many = [k for k in values if k > num_pairs]
    if too_many:
        raise ValueError(
            f"`swaps` must be at most the number of pairs of same-shaped blocks that can swap "
            f"({num_pairs} in this model), received: {too_many[0]}."
        )
    return list(dict.fromkeys(values))


def _checked_labels(images, labels):
    """`labels` as a 1-D int array of class indices, checked against `images`."""
    if not hasattr(images, "__len__") or not hasattr(images, "__getitem__"):
        raise TypeError(
            "`images` must be an array of inputs (with a length), "
            f"received: {type(images).__name__}."
        )
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:  # one-hot
        labels = np.argmax(labels, axis=1)
    elif labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            "`labels` must be integer class labels, shape (n,) or (n, 1), or one-hot labels, "
            f"received: an array of dtype {labels.dtype} and shape {labels.shape}."
        )
    if len(labels) != len(images):
        raise ValueError(
            "`images` and `labels` must have the same length, received: "
            f"{len(images)} images and {len(labels)} labels."
        )
    if len(labels) == 0:
        raise ValueError("`images` must hold at least one image, received: none.")
    return labels


def _accuracy(model, images, labels, batch_size, with_classes=False):
    """The fraction of `images` whose highest score is their label (one `model.predict`)."""
    scores = model.predict(images, batch_size=batch_size, verbose=0)
    if not isinstance(scores, np.ndarray) or scores.ndim != 2 or scores.shape[1] < 2:
        shape = getattr(scores, "shape", type(scores).__name__)
        raise ValueError(
            "`model` must have one output of shape (batch, num_classes), num_classes >= 2, "
            f"for a lesion study, received: an output of shape {shape}."
        )
    accuracy = float(np.mean(np.argmax(scores, axis=-1) == labels))
    return (accuracy, int(scores.shape[1])) if with_classes else accuracy


def plot_lesion_study(results, path, title=None):
    """Draws the results of `lesion_study` and writes the figure to `path`.

    Deleted blocks: the accuracy with each block deleted, one bar per block
    in network order, downsampling blocks in red, with the intact model's
    accuracy (dashed) and chance (dotted). Shuffled blocks: the mean accuracy
    (and the spread over trials) against the number of swaps. Results of
    `mode="both"` give both panels side by side.

    Args:
        results: The dict `lesion_study` returns (also after a JSON round
            trip).
        path: Where to write the figure; the extension picks the format
            (`.png`, `.pdf`, `.svg`, ...).
        title: Title of the figure. Defaults to one naming the number of
            images.

    Returns:
        `path`.

    Example:

    >>> results = {"full": 0.9, "blocks": ["a_0", "a_1", "b_0"],
    ...            "downsampling": [False, False, True], "num_classes": 10,
    ...            "num_examples": 100, "delete": [0.85, 0.88, 0.3]}
    >>> plot_lesion_study(results, "lesion.png")
    'lesion.png'
    """
    check_image_path(path, "path")
    return save_figure(lesion_figure(results, title), path)


def lesion_figure(results, title=None):
    """The Matplotlib figure `plot_lesion_study` writes."""
    if not isinstance(results, dict) or "full" not in results:
        raise TypeError(
            "`results` must be the dict lesion_study returns, received: "
            f"{type(results).__name__}."
        )
    panels = [name for name in ("delete", "shuffle") if name in results]
    if not panels:
        raise ValueError(
            "`results` must hold 'delete' or 'shuffle' results of lesion_study, received "
            f"keys: {sorted(results)}."
        )
    widths = [
        max(6.0, 0.28 * len(results.get("blocks", ())) + 1.5) if p == "delete" else 5.0
        for p in panels
    ]
    figure, axes = new_figure(
        1,
        len(panels),
        figsize=(sum(widths), 4.6),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    for axis, panel in zip(axes[0], panels):
        (_draw_deletions if panel == "delete" else _draw_shuffles)(axis, results)
    examples = results.get("num_examples")
    figure.suptitle(
        title or f"Lesion study of a residual network ({examples:,} images)", fontsize=12
    )
    figure.tight_layout()
    return figure


def _reference_lines(axis, results):
    full = results["full"]
    axis.axhline(
        full, color="black", linestyle="--", linewidth=1.2, label=f"intact model ({full:.2%})"
    )
    classes = results.get("num_classes")
    if classes:
        axis.axhline(
            1.0 / classes,
            color="grey",
            linestyle=":",
            linewidth=1.2,
            label=f"chance ({1.0 / classes:.0%})",
        )
    axis.set_ylim(0.0, 1.02)
    axis.set_ylabel("accuracy")
    axis.grid(axis="y", alpha=0.3)


def _draw_deletions(axis, results):
    from matplotlib.patches import Patch

    accuracies = results["delete"]
    names = results.get("blocks") or [str(i) for i in range(len(accuracies))]
    downsampling = results.get("downsampling") or [False] * len(accuracies)
    colors = ["tab:red" if down else "tab:blue" for down in downsampling]
    axis.bar(range(len(accuracies)), accuracies, color=colors, width=0.75)
    # The deletions that cost more than 2 points, written in their bars: near the top, bars
    # look alike.
    for index, accuracy in enumerate(accuracies):
        if accuracy < results["full"] - 0.02:
            axis.annotate(
                f"{accuracy:.1%}",
                (index, accuracy),
                xytext=(0, -3),
                textcoords="offset points",
                ha="center",
                va="top",
                color="white",
                fontsize=7,
                rotation=90,
            )
    _reference_lines(axis, results)
    axis.set_xticks(range(len(accuracies)))
    axis.set_xticklabels(names, rotation=90, fontsize=7)
    for label, color in zip(axis.get_xticklabels(), colors):
        label.set_color("tab:red" if color == "tab:red" else "black")
    axis.set_xlim(-0.7, len(accuracies) - 0.3)
    axis.set_xlabel("deleted block (network order)")
    axis.set_title("Deleting one block")
    handles, _ = axis.get_legend_handles_labels()
    handles = (
        [Patch(color="tab:blue", label="block deleted")]
        + (
            [Patch(color="tab:red", label="downsampling block deleted")]
            if any(downsampling)
            else []
        )
        + handles
    )
    axis.legend(handles=handles, loc="lower left", fontsize=8)


def _draw_shuffles(axis, results):
    trials = {int(k): v for k, v in results.get("shuffle_trials", {}).items()}
    means = {int(k): v for k, v in results["shuffle"].items()}
    # The curve starts at the intact model: no swap.
    means.setdefault(0, results["full"])
    counts = sorted(means)
    spread = [float(np.std(trials[k])) if k in trials else 0.0 for k in counts]
    draws = len(next(iter(trials.values()))) if trials else None
    label = "mean accuracy" + (f" over {draws} draws (bars: std)" if draws else "")
    axis.errorbar(
        counts,
        [means[k] for k in counts],
        yerr=spread,
        marker="o",
        capsize=3,
        color="tab:green",
        label=label,
    )
    _reference_lines(axis, results)
    axis.set_xlabel("number of random swaps of same-shaped blocks")
    axis.set_title("Shuffling blocks")
    axis.legend(loc="lower left", fontsize=8)


__all__ = [
    "Block",
    "find_blocks",
    "lesion_figure",
    "lesion_study",
    "plot_lesion_study",
    "swappable_pairs",
]
