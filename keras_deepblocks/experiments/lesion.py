"""Lesion and shuffle study of the published ResNet-56: Veit et al. (2016) on CIFAR-10.

Veit, Wilber and Belongie ("Residual networks behave like ensembles of
relatively shallow networks", 2016) found that a trained ResNet survives the
deletion of almost any single block at test time, except the downsampling
blocks (whose shortcut is not the identity), and that swapping blocks
degrades it smoothly: its paths behave like an ensemble of shallower
networks rather than one deep pipeline. `run` repeats both studies on the
published CIFAR-10 ResNet-56 (`resnet_cifar(56, weights="cifar10")`, the
PyTorch reference's checkpoint) with `keras_deepblocks.diagnostics.lesion_study`.

The images are the CIFAR-10 test split (`dataset="cifar10"`, through
tensorflow-datasets) or any `.npz` file with `images` (uint8, NHWC, raw
pixels) and `labels`, such as the 4,660 real CIFAR-10 training images of the
project's fixtures (`cifar10_partial/cifar10_train_4660.npz`), which the
published network classifies almost perfectly. The model normalizes the
pixels itself, as the published weights need.
"""

import os

import numpy as np

from keras_deepblocks import datasets
from keras_deepblocks.diagnostics.lesion import find_blocks
from keras_deepblocks.diagnostics.lesion import lesion_study
from keras_deepblocks.diagnostics.lesion import plot_lesion_study
from keras_deepblocks.diagnostics.lesion import swappable_pairs
from keras_deepblocks.utils import validation
from keras_deepblocks.zoo.resnet_cifar import resnet_cifar

# The full run, and the small one (under a minute on one core) that still shows the claim.
FULL = {"num_images": None, "trials": 5, "swaps": (1, 2, 4, 8, 16)}
SMALL = {"num_images": 200, "trials": 2, "swaps": (2, 8)}


def run(
    small=False,
    seed=0,
    dataset="cifar10",
    verbose=0,
    weights=None,
    images=None,
    depth=56,
    num_images=None,
    trials=None,
    swaps=None,
    batch_size=250,
    data_dir=None,
):
    """Deletes each block of a published CIFAR ResNet, and shuffles its blocks.

    Args:
        small: A short run for tests and tutorials: 200 images, 2 trials of 2
            and 8 swaps (instead of every image and 5 trials of 1, 2, 4, 8,
            16 swaps).
        seed: Seed of the image subset and of the swaps.
        dataset: `"cifar10"` (default; the test split, through
            tensorflow-datasets) or the path of a `.npz` file with `images`
            and `labels`.
        verbose: `0` (silent) or `1` (a line per evaluation).
        weights: The network's weights: `None` (default) for the published
            preset (`weights="cifar10"`, downloaded once into the Keras
            cache), or the path of the checkpoint
            (`resnet56-4bfd9763.th`) or of a Keras weights file.
        images: Overrides `dataset`: the path of a `.npz` file with `images`
            and `labels`, or a pair `(images, labels)` of arrays.
        depth: Depth of the CIFAR ResNet, `6n + 2`. Defaults to `56`.
        num_images: How many images (a random subset); `None` for all (200
            when `small`).
        trials: Random draws per number of swaps (default 5; 2 when `small`).
        swaps: Numbers of swaps (default: those of `(1, 2, 4, 8, 16)`, or
            of `(2, 8)` when `small`, that the network has pairs for).
        batch_size: Images per predict batch. Defaults to `250`.
        data_dir: tensorflow-datasets data directory for `"cifar10"`.

    Returns:
        The dict of `lesion_study(mode="both")` (`"full"`, `"blocks"`,
        `"downsampling"`, `"delete"`, `"shuffle"`, `"shuffle_trials"`, ...),
        plus `"depth"`, `"images"` (where the images came from),
        `"weights"` and `"most_harmful"` (the block whose deletion costs
        the most), in plain Python values.
    """
    settings = SMALL if small else FULL
    seed = validation.seed(seed)
    depth = validation.positive_int(depth, "depth")
    if num_images is not None:
        num_images = validation.positive_int(num_images, "num_images")
    else:
        num_images = settings["num_images"]
    x, y, source = load_images(dataset, images, data_dir)
    if num_images is not None and num_images < len(x):
        chosen = np.sort(np.random.default_rng(seed).permutation(len(x))[:num_images])
        x, y = x[chosen], y[chosen]
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            "`weights` must be None (the published preset) or the path of a checkpoint or "
            f"weights file, received: {weights!r} of type {type(weights).__name__}."
        )
    model = resnet_cifar(depth, weights="cifar10" if weights is None else os.fspath(weights))
    if swaps is None:  # those the network allows: ResNet-20 has 5 pairs to swap, ResNet-56 84
        pairs = len(swappable_pairs(find_blocks(model)))
        swaps = [k for k in settings["swaps"] if k <= pairs]
    results = lesion_study(
        model,
        x,
        y,
        mode="both",
        trials=settings["trials"] if trials is None else trials,
        swaps=swaps,
        batch_size=batch_size,
        seed=seed,
        verbose=verbose,
    )
    worst = int(np.argmin(results["delete"]))
    results.update(
        {
            "depth": depth,
            "images": source,
            "weights": "cifar10" if weights is None else os.fspath(weights),
            "most_harmful": results["blocks"][worst],
        }
    )
    return results


def load_images(dataset="cifar10", images=None, data_dir=None):
    """`(images, labels, source)`: raw uint8 pixels, int labels, and where they came from."""
    if images is not None:
        if isinstance(images, (tuple, list)) and len(images) == 2:
            return np.asarray(images[0]), np.asarray(images[1]), "given images"
        if _is_npz_path(images):
            return _npz_images(os.fspath(images))
        raise (TypeError if not isinstance(images, (str, os.PathLike)) else ValueError)(
            "`images` must be None, the path of a .npz file with `images` and `labels`, or a "
            f"pair (images, labels), received: {_describe(images)}."
        )
    if _is_npz_path(dataset):
        return _npz_images(os.fspath(dataset))
    if dataset == "cifar10":
        _, (x, y), _ = datasets.load_arrays("cifar10", data_dir=data_dir)
        return x, y, "CIFAR-10 test split"
    raise ValueError(
        "`dataset` must be 'cifar10' (the CIFAR-10 test split, through tensorflow-datasets) "
        "or the path of a .npz file with `images` and `labels` (such as the fixture "
        "cifar10_partial/cifar10_train_4660.npz): the lesion study runs a CIFAR-10 ResNet, "
        f"received: {dataset!r}."
    )


def _is_npz_path(value):
    return isinstance(value, (str, os.PathLike)) and os.fspath(value).endswith(".npz")


def _describe(value):
    if isinstance(value, (str, os.PathLike)):
        return repr(os.fspath(value))
    return f"a {type(value).__name__}"


def _npz_images(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No .npz file of images at {path!r}.")
    with np.load(path) as data:
        missing = [key for key in ("images", "labels") if key not in data.files]
        if missing:
            raise ValueError(
                f"The .npz file {path!r} must hold arrays `images` and `labels`, "
                f"received: one with {sorted(data.files)}."
            )
        x, y = data["images"], data["labels"]
    if x.ndim != 4 or x.shape[-1] != 3 or len(x) != len(y):
        raise ValueError(
            f"The .npz file {path!r} must hold `images` of shape (n, height, width, 3) and n "
            f"`labels`, received: images {x.shape} and labels {y.shape}."
        )
    return x, y.astype("int64"), os.path.basename(path)


def plot(results, path):
    """Writes the lesion figure (deleted blocks, shuffled blocks) to `path`."""
    depth = results.get("depth", 56)
    title = (
        f"ResNet-{depth} (published CIFAR-10 weights): lesion study on "
        f"{results['num_examples']:,} images ({results.get('images', 'CIFAR-10')})"
    )
    return plot_lesion_study(results, path, title=title)


def summary(results):
    """A text table: the accuracy with each block deleted, and after random swaps."""
    full = results["full"]
    heading = (
        f"ResNet-{results.get('depth', 56)} on {results['num_examples']} images "
        f"({results.get('images', '')}): intact accuracy {full:.4f}"
    )
    lines = [
        heading,
        f"{'deleted block':<16}{'accuracy':>10}{'change':>10}",
    ]
    for name, down, accuracy in zip(results["blocks"], results["downsampling"], results["delete"]):
        label = name + (" (down)" if down else "")
        lines.append(f"{label:<16}{accuracy:>10.4f}{accuracy - full:>+10.4f}")
    worst = int(np.argmin(results["delete"]))
    lines.append(
        f"most harmful deletion: {results['blocks'][worst]} "
        f"({results['delete'][worst]:.4f}, {results['delete'][worst] - full:+.4f})"
    )
    others = [a for a, down in zip(results["delete"], results["downsampling"]) if not down]
    if others:
        lines.append(f"other blocks: mean {np.mean(others):.4f}, worst {min(others):.4f}")
    trials = results.get("shuffle_trials", {})
    if "shuffle" in results:
        draws = len(next(iter(trials.values()))) if trials else "?"
        lines.append(f"{'swaps':<16}{'accuracy':>10}{'std':>10}   ({draws} draws each)")
        for count, mean in sorted((int(k), v) for k, v in results["shuffle"].items()):
            values = trials.get(count, trials.get(str(count), [mean]))
            lines.append(f"{count:<16}{mean:>10.4f}{float(np.std(values)):>10.4f}")
    return "\n".join(lines)
