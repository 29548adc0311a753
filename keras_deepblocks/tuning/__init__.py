"""KerasTuner HyperModels: search highway depth and gate bias, or ResNet depth and stochastic depth.

Needs keras-tuner (`pip install 'keras-deepblocks[tuner]'`). The HyperModels
work with every KerasTuner tuner (`RandomSearch`, `Hyperband`,
`BayesianOptimization`); `run_search` runs one as `deepblocks tune` does,
recording its settings so that it resumes only the same search.

Names are imported on first use, so `keras_deepblocks.tuning.record` (standard
library only) loads without keras-tuner.
"""

import importlib

_EXPORTS = {
    "HighwayHyperModel": "keras_deepblocks.tuning.highway_hypermodel",
    "ResNetCifarHyperModel": "keras_deepblocks.tuning.resnet_hypermodel",
    "SearchFailedError": "keras_deepblocks.tuning.search",
    "TUNERS": "keras_deepblocks.tuning.search",
    "best_trials": "keras_deepblocks.tuning.search",
    "format_trials": "keras_deepblocks.tuning.search",
    "make_tuner": "keras_deepblocks.tuning.search",
    "planned_trials": "keras_deepblocks.tuning.search",
    "run_search": "keras_deepblocks.tuning.search",
    "search_space": "keras_deepblocks.tuning.search",
    "trial_line": "keras_deepblocks.tuning.search",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
