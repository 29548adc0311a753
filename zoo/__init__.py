"""Model zoo: builders, pretrained-weight registry and converters."""

from keras_deepblocks.zoo.checkpointed_residual_unit import CheckpointedResidualUnit
from keras_deepblocks.zoo.resnet_cifar import cifar_preprocess
from keras_deepblocks.zoo.resnet_cifar import resnet20
from keras_deepblocks.zoo.resnet_cifar import resnet32
from keras_deepblocks.zoo.resnet_cifar import resnet44
from keras_deepblocks.zoo.resnet_cifar import resnet56
from keras_deepblocks.zoo.resnet_cifar import resnet110
from keras_deepblocks.zoo.resnet_cifar import resnet1202
from keras_deepblocks.zoo.resnet_cifar import resnet_cifar
