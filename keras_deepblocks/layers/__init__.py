from keras_deepblocks.layers.char_cnn import CharCNN
from keras_deepblocks.layers.character_ids import CharacterIds
from keras_deepblocks.layers.character_ids import char_ids
from keras_deepblocks.layers.elmo_lstm import ElmoLSTM
from keras_deepblocks.layers.elmo_scalar_mix import ElmoScalarMix
from keras_deepblocks.layers.highway import Highway
from keras_deepblocks.layers.highway_conv2d import HighwayConv2D
from keras_deepblocks.layers.highway_stack import HighwayStack
from keras_deepblocks.layers.projected_lstm_cell import ProjectedLSTMCell
from keras_deepblocks.layers.residual_stack import ResidualStack
from keras_deepblocks.layers.residual_unit import ResidualUnit
from keras_deepblocks.layers.sentence_boundaries import RemoveSentenceBoundaries
from keras_deepblocks.layers.stochastic_depth import StochasticDepth
from keras_deepblocks.layers.stochastic_depth import linear_decay

__all__ = [
    "CharCNN",
    "CharacterIds",
    "ElmoLSTM",
    "ElmoScalarMix",
    "Highway",
    "HighwayConv2D",
    "HighwayStack",
    "ProjectedLSTMCell",
    "RemoveSentenceBoundaries",
    "ResidualStack",
    "ResidualUnit",
    "StochasticDepth",
    "char_ids",
    "linear_decay",
]
