from keras_deepblocks.layers.char_cnn import CharCNN
from keras_deepblocks.layers.character_ids import CharacterIds
from keras_deepblocks.layers.character_ids import char_ids
from keras_deepblocks.layers.highway import Highway
from keras_deepblocks.layers.highway_conv2d import HighwayConv2D
from keras_deepblocks.layers.highway_stack import HighwayStack
from keras_deepblocks.layers.residual_stack import ResidualStack
from keras_deepblocks.layers.residual_unit import ResidualUnit
from keras_deepblocks.layers.stochastic_depth import StochasticDepth
from keras_deepblocks.layers.stochastic_depth import linear_decay

__all__ = [
    "CharCNN",
    "CharacterIds",
    "Highway",
    "HighwayConv2D",
    "HighwayStack",
    "ResidualStack",
    "ResidualUnit",
    "StochasticDepth",
    "char_ids",
    "linear_decay",
]
