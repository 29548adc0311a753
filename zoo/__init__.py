"""Model zoo: builders, pretrained-weight registry and converters.

The layers these models use live in `keras_deepblocks.layers`; the names
re-exported here keep `from keras_deepblocks.zoo import char_ids` working.
"""

from keras_deepblocks.layers import CharCNN
from keras_deepblocks.layers import CharacterIds
from keras_deepblocks.layers import CheckpointedResidualUnit
from keras_deepblocks.layers import char_ids
from keras_deepblocks.metrics import Perplexity

from keras_deepblocks.zoo.resnet_cifar import cifar_preprocess
from keras_deepblocks.zoo.resnet_cifar import resnet20
from keras_deepblocks.zoo.resnet_cifar import resnet32
from keras_deepblocks.zoo.resnet_cifar import resnet44
from keras_deepblocks.zoo.resnet_cifar import resnet56
from keras_deepblocks.zoo.resnet_cifar import resnet110
from keras_deepblocks.zoo.resnet_cifar import resnet1202
from keras_deepblocks.zoo.resnet_cifar import resnet_cifar
from keras_deepblocks.zoo.char_cnn import CHAR_CNN_CONFIGS
from keras_deepblocks.zoo.char_cnn import char_cnn_highway_encoder
from keras_deepblocks.zoo.char_cnn import load_bilm_weights
from keras_deepblocks.zoo.char_language_model import char_aware_language_model
from keras_deepblocks.zoo.text_corpus import build_vocabulary
from keras_deepblocks.zoo.text_corpus import language_model_arrays
from keras_deepblocks.zoo.text_corpus import read_sentences
from keras_deepblocks.zoo.text_corpus import tiny_corpus
