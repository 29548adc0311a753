from keras_deepblocks.layers.highway import Highway
from keras_deepblocks.layers.highway_conv2d import HighwayConv2D
from keras_deepblocks.layers.residual_unit import ResidualUnit
from keras_deepblocks.layers.schedules import linear_decay
from keras_deepblocks.layers.stochastic_depth import StochasticDepth

__all__ = ["Highway", "HighwayConv2D", "ResidualUnit", "StochasticDepth", "linear_decay"]
