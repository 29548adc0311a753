"""keras-deepblocks: highway layers, residual units and stochastic depth for Keras 3."""

from keras_deepblocks import initializers
from keras_deepblocks import layers
from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import HighwayConv2D
from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.layers import StochasticDepth
from keras_deepblocks.layers import linear_decay

__version__ = "0.1.0"
