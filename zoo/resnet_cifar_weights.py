"""Pretrained CIFAR-10 ResNet weights: registry, download, one-time conversion, loading.

The published checkpoints of the PyTorch reference implementation
(github.com/akamaster/pytorch_resnet_cifar10, BSD-2-Clause) are downloaded
with `keras.utils.get_file` into the Keras cache (`$KERAS_HOME/models`,
`~/.keras/models` by default), checked against their SHA-256, read without
torch (`converters.torch_checkpoint`), converted to Keras layout once and
cached next to the checkpoint as `NAME.weights.npz` (arrays keyed by Keras
variable path, so the same file serves models with or without preprocessing
or gradient checkpointing). Every file is written under a temporary name and
renamed when complete: a failed download or conversion leaves nothing behind.
"""

import collections
import hashlib
import os
import tempfile

import numpy as np

from keras_deepblocks.zoo.converters import resnet_cifar as converter
from keras_deepblocks.zoo.converters.torch_checkpoint import load_torch_checkpoint

BASE_URL = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"
DATASET = "cifar10"
TORCH_SUFFIXES = (".th", ".pt", ".pth")
KERAS_SUFFIXES = (".weights.h5",)
CONVERTED_SUFFIX = ".weights.npz"

Checkpoint = collections.namedtuple("Checkpoint", ["filename", "sha256"])

# Full SHA-256 where known; otherwise the file name's 8 hex digits are the
# digest's start, and only that prefix is checked.
CHECKPOINTS = {
    20: Checkpoint(
        "resnet20-12fca82f.th",
        "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8",
    ),
    32: Checkpoint(
        "resnet32-d509ac18.th",
        "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850",
    ),
    44: Checkpoint(
        "resnet44-014dd654.th",
        "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4",
    ),
    56: Checkpoint(
        "resnet56-4bfd9763.th",
        "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367",
    ),
    110: Checkpoint("resnet110-1d1ed7c2.th", None),
    1202: Checkpoint("resnet1202-f3b1deed.th", None),
}


class WeightsUnavailableError(OSError):
    """Pretrained weights could not be downloaded or verified."""


def check_compatible(weights, depth, num_classes, shortcut, preactivation):
    """Raises a clear error before building a model `weights` cannot fit."""
    if weights == DATASET:
        if depth not in CHECKPOINTS:
            raise ValueError(
                f"`weights='{DATASET}'` exists for depth in {sorted(CHECKPOINTS)}, "
                f"got depth={depth}."
            )
        for name, value, expected in (
            ("num_classes", num_classes, 10),
            ("shortcut", shortcut, "A"),
            ("preactivation", preactivation, False),
        ):
            if value != expected:
                raise ValueError(
                    f"`weights='{DATASET}'` needs `{name}={expected!r}` (the "
                    f"published networks), got {name}={value!r}."
                )
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"`weights` must be None, '{DATASET}' or a file path, got "
            f"{weights!r} of type {type(weights).__name__}."
        )
    path = os.fspath(weights)
    if not path.endswith(TORCH_SUFFIXES + KERAS_SUFFIXES + (CONVERTED_SUFFIX,)):
        raise ValueError(
            f"`weights` must be None, '{DATASET}', a PyTorch checkpoint "
            f"({', '.join(TORCH_SUFFIXES)}) or a Keras weights file "
            f"({', '.join(KERAS_SUFFIXES + (CONVERTED_SUFFIX,))}); got {path!r}."
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`weights` file not found: {path!r}.")


def load_weights(model, weights, depth):
    """Loads `weights` (see `check_compatible`) into a `resnet_cifar` model."""
    if weights == DATASET:
        path = converted_weights(depth, model)
        converter.assign_weights(model, read_converted(path), path)
        return
    path = os.fspath(weights)
    if path.endswith(KERAS_SUFFIXES):
        model.load_weights(path)
    elif path.endswith(CONVERTED_SUFFIX):
        converter.assign_weights(model, read_converted(path), path)
    else:
        converter.assign_weights(model, convert_checkpoint(path), path)


def convert_checkpoint(path):
    """`{keras_variable_path: array}` from a reference PyTorch checkpoint file."""
    state_dict = converter.state_dict_from_checkpoint(load_torch_checkpoint(path))
    return converter.keras_weights_from_state_dict(state_dict)


def converted_weights(depth, model=None):
    """Path of the converted cached weights for `depth`, made once.

    Downloads the checkpoint if needed. With `model`, the conversion is
    checked against it before the cache file is written.
    """
    checkpoint_path = fetch_checkpoint(depth)
    target = checkpoint_path[: -len(".th")] + CONVERTED_SUFFIX
    if os.path.exists(target):
        return target
    weights = convert_checkpoint(checkpoint_path)
    if model is not None:
        converter.assign_weights(model, weights, checkpoint_path)
    write_converted(weights, target)
    return target


def fetch_checkpoint(depth):
    """The verified local copy of the published checkpoint for `depth`."""
    import keras

    entry = CHECKPOINTS[depth]
    url = BASE_URL + entry.filename
    cache_dir = cache_directory()
    target = os.path.join(cache_dir, "models", entry.filename)
    try:
        path = keras.utils.get_file(
            entry.filename,
            url,
            file_hash=entry.sha256,
            hash_algorithm="sha256",
            cache_subdir="models",
            cache_dir=cache_dir,
        )
    except (Exception, KeyboardInterrupt) as error:
        # get_file removes a failed download but keeps a corrupted one.
        _remove(target)
        if isinstance(error, KeyboardInterrupt):
            raise
        raise WeightsUnavailableError(
            f"Could not get the pretrained ResNet-{depth} weights from {url}: "
            f"{error}. Without network access, download {entry.filename} on "
            f"another machine and pass `weights='/path/to/{entry.filename}'`, "
            f"or put it in {os.path.dirname(target)}."
        ) from error
    prefix = entry.filename.rsplit("-", 1)[1][: -len(".th")]
    digest = sha256(path)
    if not digest.startswith(prefix):
        _remove(path)
        raise WeightsUnavailableError(
            f"{url} downloaded with SHA-256 {digest}, which does not start with "
            f"{prefix} as its name promises; the file was deleted."
        )
    return path


def cache_directory():
    """`$KERAS_HOME` or `~/.keras`, created; like `get_file`, a temp folder if not writable."""
    directory = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        os.makedirs(os.path.join(directory, "models"), exist_ok=True)
    except OSError:
        pass
    if not os.access(directory, os.W_OK):
        directory = os.path.join(tempfile.gettempdir(), ".keras")
    return directory


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_converted(path):
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def write_converted(weights, target):
    """Writes `{path: array}` to `target` atomically (temporary file, then rename)."""
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **weights)
        os.replace(temporary, target)
    except BaseException:
        _remove(temporary)
        raise


def _remove(path):
    if os.path.exists(path):
        os.remove(path)
