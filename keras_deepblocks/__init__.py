"""keras-deepblocks: highway layers, residual units and stochastic depth for Keras 3.

Importing the package registers every serializable class it defines (layers,
initializers, metrics, callbacks), so that `keras.saving.load_model` can
rebuild any model made with them, zoo models included, on any backend:

```python
import keras
import keras_deepblocks  # before loading

model = keras.saving.load_model("resnet20.keras")
```

Keras looks custom classes up among the registered ones only (it imports the
module a file names just for its own packages), so without this import
loading fails with "Could not locate class 'Highway'".
"""

from keras_deepblocks import callbacks
from keras_deepblocks import diagnostics
from keras_deepblocks import initializers
from keras_deepblocks import layers
from keras_deepblocks import metrics
from keras_deepblocks.callbacks import GateActivity
from keras_deepblocks.callbacks import GateMonitor
from keras_deepblocks.callbacks import GradientFlow
from keras_deepblocks.callbacks import SignalRMS
from keras_deepblocks.layers import CharCNN
from keras_deepblocks.layers import CharacterIds
from keras_deepblocks.layers import ElmoLSTM
from keras_deepblocks.layers import ElmoScalarMix
from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import HighwayConv2D
from keras_deepblocks.layers import HighwayStack
from keras_deepblocks.layers import ProjectedLSTMCell
from keras_deepblocks.layers import RemoveSentenceBoundaries
from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.layers import StochasticDepth
from keras_deepblocks.layers import linear_decay
from keras_deepblocks.metrics import Perplexity

__version__ = "0.1.0"

__all__ = [
    "callbacks",
    "diagnostics",
    "CharacterIds",
    "CharCNN",
    "ElmoLSTM",
    "ElmoScalarMix",
    "GateActivity",
    "GateMonitor",
    "GradientFlow",
    "Highway",
    "HighwayConv2D",
    "HighwayStack",
    "initializers",
    "layers",
    "linear_decay",
    "metrics",
    "Perplexity",
    "ProjectedLSTMCell",
    "RemoveSentenceBoundaries",
    "ResidualStack",
    "ResidualUnit",
    "SignalRMS",
    "StochasticDepth",
]
