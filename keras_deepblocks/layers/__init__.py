from keras_deepblocks.layers.highway import Highway
from keras_deepblocks.layers.highway_conv2d import HighwayConv2D
from keras_deepblocks.layers.residual_unit import ResidualUnit

__all__ = ["Highway", "HighwayConv2D", "ResidualUnit"]
