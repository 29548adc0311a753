"""Model zoo: builders, presets (published weights as data), the model registry and converters.

- `registry`: the zoo's models by name (`build_model("resnet110", ...)`),
  and the one check of the CIFAR ResNet depth `6n + 2`;
- `resnet_cifar` (builders), `resnet_cifar_presets` (published CIFAR-10
  weights: URL, SHA-256, parameters, errors), `resnet_cifar_weights` (loading
  them);
- `highway_nets`: highway and plain networks of the Highway paper;
- `char_cnn` (encoders), `char_cnn_presets` (named configs, ELMo weights and
  LSTM options), `elmo` (the ELMo biLM and embedder), `char_language_model`;
- `converters`: readers of weights published for other frameworks (PyTorch
  checkpoints, bilm-tf HDF5 files).

The layers these models are made of live in `keras_deepblocks.layers`; the
text data of the language model in `keras_deepblocks.text`.
"""

from keras_deepblocks.zoo.char_cnn import char_cnn_highway_encoder
from keras_deepblocks.zoo.char_cnn_presets import CHAR_CNN_CONFIGS
from keras_deepblocks.zoo.char_cnn_presets import ELMO_LSTM_CONFIGS
from keras_deepblocks.zoo.char_language_model import char_aware_language_model
from keras_deepblocks.zoo.converters.bilm import load_bilm_weights
from keras_deepblocks.zoo.elmo import elmo_bilm
from keras_deepblocks.zoo.elmo import elmo_embedder
from keras_deepblocks.zoo.highway_nets import highway_conv_net
from keras_deepblocks.zoo.highway_nets import highway_mlp
from keras_deepblocks.zoo.highway_nets import plain_conv_net
from keras_deepblocks.zoo.highway_nets import plain_mlp
from keras_deepblocks.zoo.registry import build_model
from keras_deepblocks.zoo.residual_mlp import residual_mlp
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
from keras_deepblocks.zoo.resnet_cifar_presets import RESNET_CIFAR_PRESETS

__all__ = [
    "build_model",
    "char_aware_language_model",
    "CHAR_CNN_CONFIGS",
    "char_cnn_highway_encoder",
    "cifar_preprocess",
    "elmo_bilm",
    "elmo_embedder",
    "ELMO_LSTM_CONFIGS",
    "get_builder",
    "highway_conv_net",
    "highway_mlp",
    "load_bilm_weights",
    "model_names",
    "plain_conv_net",
    "plain_mlp",
    "resnet110",
    "resnet1202",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet_cifar",
    "residual_mlp",
    "RESNET_CIFAR_PRESETS",
]
