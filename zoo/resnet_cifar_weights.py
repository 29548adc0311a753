"""Loading weights into `resnet_cifar` models: published presets, PyTorch checkpoints, Keras files.

`weights="cifar10"` takes the preset of the model's depth
(`resnet_cifar_presets`): its checkpoint is downloaded into the Keras cache
(`$KERAS_HOME/models`, `~/.keras/models` by default) by
`keras_deepblocks.utils.download`, which checks its SHA-256 (and fetches a
damaged cached copy again); read without torch
(`converters.torch_checkpoint`); converted to Keras layout once and cached
next to it as `NAME.weights.npz` (arrays keyed by Keras variable path, so one
file serves models with or without preprocessing or gradient checkpointing).
A cached conversion that cannot be read or does not fit the network (a
damaged file: its zip members carry CRC-32 checksums) is converted again.
Files are written through `keras_deepblocks.utils.files.atomic_path`: a failed
download or conversion leaves nothing behind.
"""

import os
import pathlib
import warnings
import zipfile
import zlib

import numpy as np

from keras_deepblocks.utils import download
from keras_deepblocks.utils.files import atomic_path
from keras_deepblocks.zoo.converters import resnet_cifar as converter
from keras_deepblocks.zoo.converters.torch_checkpoint import load_torch_checkpoint
from keras_deepblocks.zoo.resnet_cifar_presets import RESNET_CIFAR_PRESETS

TORCH_SUFFIXES = (".th", ".pt", ".pth")
KERAS_SUFFIXES = (".weights.h5",)
CONVERTED_SUFFIX = ".weights.npz"

# Pretrained weights could not be downloaded or verified (a `ConnectionError`
# when offline, a `ValueError` too when the download does not match its hash).
WeightsUnavailableError = download.DownloadError


class WeightsFileError(ValueError):
    """A weights file cannot be read: damaged, truncated or of another kind."""


def datasets():
    """The names `weights=` takes for published weights (`"cifar10"`)."""
    return sorted({preset["dataset"] for preset in RESNET_CIFAR_PRESETS.values()})


def find_preset(depth, dataset):
    """The preset of published `dataset` weights for `depth`, or `None`."""
    for preset in RESNET_CIFAR_PRESETS.values():
        if preset["depth"] == depth and preset["dataset"] == dataset:
            return preset
    return None


def check_compatible(weights, depth, num_classes, shortcut, preactivation):
    """Raises a clear error before building a model `weights` cannot fit."""
    if isinstance(weights, str) and weights in datasets():
        if find_preset(depth, weights) is None:
            published = sorted(p["depth"] for p in RESNET_CIFAR_PRESETS.values())
            raise ValueError(
                f"`weights='{weights}'` exists for depth in {published}, got depth={depth}."
            )
        for name, value, expected in (
            ("num_classes", num_classes, 10),
            ("shortcut", shortcut, "A"),
            ("preactivation", preactivation, False),
        ):
            if value != expected:
                raise ValueError(
                    f"`weights='{weights}'` needs `{name}={expected!r}` (the "
                    f"published networks), got {name}={value!r}."
                )
        return
    named = " or ".join(repr(name) for name in datasets())
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"`weights` must be None, {named} or a file path, got "
            f"{weights!r} of type {type(weights).__name__}."
        )
    path = os.fspath(weights)
    if not path.endswith(TORCH_SUFFIXES + KERAS_SUFFIXES + (CONVERTED_SUFFIX,)):
        raise ValueError(
            f"`weights` must be None, {named}, a PyTorch checkpoint "
            f"({', '.join(TORCH_SUFFIXES)}) or a Keras weights file "
            f"({', '.join(KERAS_SUFFIXES + (CONVERTED_SUFFIX,))}); got {path!r}."
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`weights` file not found: {path!r}.")


def load_weights(model, weights, depth):
    """Loads `weights` (see `check_compatible`) into a `resnet_cifar` model."""
    if isinstance(weights, str) and weights in datasets():
        load_published(model, find_preset(depth, weights))
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


def load_published(model, preset):
    """Loads the weights of `preset`, downloaded and converted once."""
    checkpoint_path = fetch_checkpoint(preset)
    target = converted_path(checkpoint_path)
    if os.path.exists(target):
        try:
            converter.assign_weights(model, read_converted(target), target)
            return
        except ValueError as error:
            # The checkpoint was just verified by its SHA-256, so a cached
            # conversion that does not read or fit is damaged: redo it.
            warnings.warn(
                f"The cached converted weights {target} were damaged ({error}); they are "
                f"converted again from {checkpoint_path}.",
                stacklevel=2,
            )
    weights = convert_checkpoint(checkpoint_path)
    converter.assign_weights(model, weights, checkpoint_path)
    write_converted(weights, target)


def converted_path(checkpoint_path):
    """Where the conversion of a cached checkpoint is cached."""
    return os.path.splitext(checkpoint_path)[0] + CONVERTED_SUFFIX


def fetch_checkpoint(preset):
    """The verified local copy of the checkpoint of `preset`, downloaded once."""
    filename = preset["url"].rsplit("/", 1)[-1]
    return download.get_file(
        preset["url"],
        sha256=preset["sha256"],
        description=f"the pretrained ResNet-{preset['depth']} weights",
        local_hint=(
            f"pass `weights='/path/to/{filename}'` "
            f"(`--weights /path/to/{filename}` on the command line)"
        ),
    )


def install_in_cache(checkpoint, depth, dataset="cifar10"):
    """Puts a local copy of a published checkpoint where `weights=dataset` finds it.

    The file must be the published one (its SHA-256 is checked); it is
    copied into the Keras cache and converted there, so that
    `resnet_cifar(depth, weights=dataset)` then works without network access.

    Returns:
        The path of the cached checkpoint.

    Raises:
        ValueError: no published checkpoint of `depth`, or `checkpoint` is
            another file.
    """
    preset = find_preset(depth, dataset)
    if preset is None:
        raise ValueError(f"there is no published ResNet-{depth} for {dataset!r} to cache")
    filename = preset["url"].rsplit("/", 1)[-1]
    if not download.file_matches(checkpoint, preset["sha256"]):
        raise ValueError(
            f"{checkpoint} is not the published {filename} "
            f"(SHA-256 {download.file_sha256(checkpoint)}); not cached"
        )
    # A download from the local file: the cache's own check, name and atomic write.
    path = download.get_file(
        pathlib.Path(checkpoint).resolve().as_uri(),
        filename,
        sha256=preset["sha256"],
        description=f"the pretrained ResNet-{depth} weights",
    )
    write_converted(convert_checkpoint(path), converted_path(path))
    return path


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
    """Writes `{path: array}` to the `.weights.npz` file `target`, atomically."""
    with atomic_path(target) as path:
        np.savez(path, **weights)
