"""Pretrained CIFAR-10 ResNet weights: registry, download, one-time conversion, loading.

The published checkpoints of the PyTorch reference implementation
(github.com/akamaster/pytorch_resnet_cifar10, BSD-2-Clause) are downloaded
into the Keras cache (`$KERAS_HOME/models`, `~/.keras/models` by default)
with `keras_deepblocks.utils.download`, which checks their SHA-256 (and
fetches a damaged cached copy again), read without torch
(`converters.torch_checkpoint`), converted to Keras layout once and cached
next to the checkpoint as `NAME.weights.npz` (arrays keyed by Keras variable
path, so the same file serves models with or without preprocessing or
gradient checkpointing). A cached conversion that cannot be read or does not
fit the network (a damaged file: its zip members carry CRC-32 checksums) is
converted again. Every file is written under a temporary name and renamed
when complete: a failed download or conversion leaves nothing behind.
"""

import collections
import os
import tempfile
import warnings
import zipfile
import zlib

import numpy as np

from keras_deepblocks.utils import download
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


# Pretrained weights could not be downloaded or verified (a `ConnectionError`
# when offline, a `ValueError` too when the download does not match its hash).
WeightsUnavailableError = download.DownloadError


class WeightsFileError(ValueError):
    """A weights file cannot be read: damaged, truncated or of another kind."""


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
        load_published(model, depth)
        return
    path = os.fspath(weights)
    if path.endswith(KERAS_SUFFIXES):
        try:
            model.load_weights(path)
        except (OSError, ValueError, KeyError, TypeError) as error:
            # h5py's messages for a damaged file do not name it.
            raise WeightsFileError(
                f"Could not load the Keras weights file {path!r} into {model.name!r}: "
                f"{type(error).__name__}: {error}"
            ) from error
    elif path.endswith(CONVERTED_SUFFIX):
        converter.assign_weights(model, read_converted(path), path)
    else:
        converter.assign_weights(model, convert_checkpoint(path), path)


def convert_checkpoint(path):
    """`{keras_variable_path: array}` from a reference PyTorch checkpoint file."""
    state_dict = converter.state_dict_from_checkpoint(load_torch_checkpoint(path))
    return converter.keras_weights_from_state_dict(state_dict)


def load_published(model, depth):
    """Loads the published weights for `depth`, downloaded and converted once."""
    checkpoint_path = fetch_checkpoint(depth)
    target = converted_path(checkpoint_path)
    if os.path.exists(target):
        try:
            converter.assign_weights(model, read_converted(target), target)
            return
        except ValueError as error:
            # The checkpoint was just verified by its SHA-256, so a cached
            # conversion that does not read or fit is damaged: redo it.
            _remove(target)
            warnings.warn(
                f"The cached converted weights {target} were damaged ({error}); the file "
                f"was removed and is converted again from {checkpoint_path}.",
                stacklevel=2,
            )
    weights = convert_checkpoint(checkpoint_path)
    converter.assign_weights(model, weights, checkpoint_path)
    write_converted(weights, target)


def converted_path(checkpoint_path):
    """Where the conversion of a cached checkpoint is cached."""
    return os.path.splitext(checkpoint_path)[0] + CONVERTED_SUFFIX


def fetch_checkpoint(depth):
    """The verified local copy of the published checkpoint for `depth`."""
    entry = CHECKPOINTS[depth]
    return download.get_file(
        BASE_URL + entry.filename,
        entry.filename,
        sha256=expected_sha256(entry),
        cache_subdir="models",
        cache_dir=cache_directory(),
        description=f"the pretrained ResNet-{depth} weights",
        local_hint=(
            f"pass `weights='/path/to/{entry.filename}'` "
            f"(`--weights /path/to/{entry.filename}` on the command line)"
        ),
    )


def expected_sha256(entry):
    """The full SHA-256, or the 8 hex digits in the file name (its digest's start)."""
    return entry.sha256 or os.path.splitext(entry.filename)[0].rsplit("-", 1)[1]


def cache_directory():
    """`$KERAS_HOME` or `~/.keras`, created; like `get_file`, a temp folder if not writable."""
    return download.default_cache_dir()


def sha256(path):
    return download.file_sha256(path)


def read_converted(path):
    """`{keras_variable_path: array}` from a `.weights.npz` file.

    Raises:
        WeightsFileError: the file is not a readable `.npz` of numeric arrays
            (the message names it).
    """
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not arrays by variable path")
        with data:
            weights = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise WeightsFileError(
            f"{path} is not a readable .weights.npz file ({type(error).__name__}: {error})."
        ) from error
    odd = [k for k, v in weights.items() if not np.issubdtype(v.dtype, np.number)]
    if not weights or odd:
        raise WeightsFileError(
            f"{path} holds no weights arrays"
            + (f" ({odd[0]!r} has dtype {weights[odd[0]].dtype})" if odd else "")
            + "."
        )
    return weights


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
