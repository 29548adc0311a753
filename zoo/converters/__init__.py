"""Readers and converters of weights published for other frameworks."""

from keras_deepblocks.zoo.converters.torch_checkpoint import CheckpointFormatError
from keras_deepblocks.zoo.converters.torch_checkpoint import UnsafeCheckpointError
from keras_deepblocks.zoo.converters.torch_checkpoint import load_torch_checkpoint

__all__ = [
    "CheckpointFormatError",
    "load_torch_checkpoint",
    "UnsafeCheckpointError",
]
