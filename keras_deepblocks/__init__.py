"""keras-deepblocks: highway layers, residual units and stochastic depth for Keras 3.

Importing the package registers every serializable class it defines (layers,
initializers, metrics), so `keras.saving.load_model` can rebuild any model
made with them.
"""

from keras_deepblocks import initializers
from keras_deepblocks import layers
from keras_deepblocks import metrics
from keras_deepblocks.layers import CharCNN
from keras_deepblocks.layers import CharacterIds
from keras_deepblocks.layers import CheckpointedResidualUnit
from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import HighwayConv2D
from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.layers import StochasticDepth
from keras_deepblocks.layers import linear_decay
from keras_deepblocks.metrics import Perplexity

__version__ = "0.1.0"
