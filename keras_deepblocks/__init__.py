"""keras-deepblocks: highway layers, residual units and stochastic depth for Keras 3.

Importing the package registers every serializable class it defines (layers,
initializers, metrics), so `keras.saving.load_model` can rebuild any model
made with them, zoo models included, on any backend:

    import keras
    import keras_deepblocks  # before loading

    model = keras.saving.load_model("resnet20.keras")

The one exception is the `deepblocks` command's own process: there the package
waits until its names are first used (PEP 562) or the command calls
`_load()` after parsing its arguments, so that `deepblocks --help` and argument
errors answer at once, without importing Keras and TensorFlow.

Keras looks custom classes up among the registered ones only (it imports the
module a file names just for its own packages: keras, keras_hub, ...), so
without this import loading fails with "Could not locate class 'Highway'".
"""

import os
import sys

__version__ = "0.1.0"

# Top-level names and the module each comes from.
_EXPORTS = {
    "initializers": None,
    "layers": None,
    "metrics": None,
    "CharCNN": "keras_deepblocks.layers",
    "CharacterIds": "keras_deepblocks.layers",
    "CheckpointedResidualUnit": "keras_deepblocks.layers",
    "Highway": "keras_deepblocks.layers",
    "HighwayConv2D": "keras_deepblocks.layers",
    "ResidualUnit": "keras_deepblocks.layers",
    "StochasticDepth": "keras_deepblocks.layers",
    "linear_decay": "keras_deepblocks.layers",
    "Perplexity": "keras_deepblocks.metrics",
}
__all__ = sorted(_EXPORTS)


def _load():
    """Imports the layers, initializers and metrics, registering every serializable class."""
    import importlib

    for name in ("initializers", "layers", "metrics"):
        importlib.import_module(f"keras_deepblocks.{name}")
    for name, module in _EXPORTS.items():
        if module is not None:
            globals()[name] = getattr(sys.modules[module], name)


def __getattr__(name):
    if name in _EXPORTS:
        _load()
        return globals()[name]
    raise AttributeError(f"module 'keras_deepblocks' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


def _started_by_the_command():
    """Whether this process is `deepblocks ...` or `python -m keras_deepblocks.cli ...`."""
    program = (getattr(sys, "argv", None) or [""])[0]
    if program == "-m":  # runpy imports the parent package before setting argv[0]
        argv = getattr(sys, "orig_argv", [])
        return any(
            flag == "-m" and module.startswith("keras_deepblocks.cli")
            for flag, module in zip(argv, argv[1:])
        )
    return os.path.basename(program).lower() in ("deepblocks", "deepblocks.exe")


if not _started_by_the_command():
    _load()
