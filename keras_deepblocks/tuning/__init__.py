"""KerasTuner HyperModels: search highway depth and gate bias, or ResNet depth and stochastic depth.

Needs keras-tuner (`pip install 'keras-deepblocks[tuner]'`). The HyperModels
work with every KerasTuner tuner (`RandomSearch`, `Hyperband`,
`BayesianOptimization`).
"""

from keras_deepblocks.tuning.highway_hypermodel import HighwayHyperModel
from keras_deepblocks.tuning.resnet_hypermodel import ResNetCifarHyperModel
from keras_deepblocks.tuning.search import TUNERS
from keras_deepblocks.tuning.search import best_trials
from keras_deepblocks.tuning.search import format_trials
from keras_deepblocks.tuning.search import make_tuner

__all__ = [
    "HighwayHyperModel",
    "ResNetCifarHyperModel",
    "TUNERS",
    "best_trials",
    "format_trials",
    "make_tuner",
]
