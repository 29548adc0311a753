from keras_deepblocks.layers.char_cnn import CharCNN
from keras_deepblocks.layers.character_ids import CharacterIds
from keras_deepblocks.layers.character_ids import char_ids
from keras_deepblocks.layers.checkpointed_residual_unit import CheckpointedResidualUnit
from keras_deepblocks.layers.highway import Highway
from keras_deepblocks.layers.highway_conv2d import HighwayConv2D
from keras_deepblocks.layers.residual_unit import ResidualUnit
from keras_deepblocks.layers.schedules import linear_decay
from keras_deepblocks.layers.stochastic_depth import StochasticDepth

__all__ = [
    "CharCNN",
    "CharacterIds",
    "CheckpointedResidualUnit",
    "Highway",
    "HighwayConv2D",
    "ResidualUnit",
    "StochasticDepth",
    "char_ids",
    "linear_decay",
]
