"""Model zoo: builders, weight presets, the model registry and converters.

The layers these models are made of live in `keras_deepblocks.layers`.
"""

from keras_deepblocks.zoo.char_cnn import CHAR_CNN_CONFIGS
from keras_deepblocks.zoo.char_cnn import char_cnn_highway_encoder
from keras_deepblocks.zoo.char_cnn import load_bilm_weights
from keras_deepblocks.zoo.char_language_model import char_aware_language_model
from keras_deepblocks.zoo.highway_nets import highway_conv_net
from keras_deepblocks.zoo.highway_nets import highway_mlp
from keras_deepblocks.zoo.highway_nets import plain_conv_net
from keras_deepblocks.zoo.highway_nets import plain_mlp
from keras_deepblocks.zoo.registry import build_model
from keras_deepblocks.zoo.registry import get_builder
from keras_deepblocks.zoo.registry import model_names
from keras_deepblocks.zoo.resnet_cifar import cifar_preprocess
from keras_deepblocks.zoo.resnet_cifar import resnet20
from keras_deepblocks.zoo.resnet_cifar import resnet32
from keras_deepblocks.zoo.resnet_cifar import resnet44
from keras_deepblocks.zoo.resnet_cifar import resnet56
from keras_deepblocks.zoo.resnet_cifar import resnet110
from keras_deepblocks.zoo.resnet_cifar import resnet1202
from keras_deepblocks.zoo.resnet_cifar import resnet_cifar
from keras_deepblocks.zoo.text_corpus import build_vocabulary
from keras_deepblocks.zoo.text_corpus import language_model_arrays
from keras_deepblocks.zoo.text_corpus import read_sentences
from keras_deepblocks.zoo.text_corpus import tiny_corpus
