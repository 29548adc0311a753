"""Reading the architecture of a CIFAR ResNet from its weights (what `deepblocks convert` builds)."""

import keras
import pytest

from keras_deepblocks.zoo import resnet_cifar
from keras_deepblocks.zoo.converters.resnet_cifar import WeightsMismatchError
from keras_deepblocks.zoo.converters.resnet_cifar import architecture
from keras_deepblocks.zoo.converters.resnet_cifar import unit_weights
from keras_deepblocks.zoo.resnet_cifar_weights import convert_checkpoint


def keras_weights(model):
    return unit_weights(model)


@pytest.mark.parametrize(
    "name, depth", [("resnet20-12fca82f.th", 20), ("resnet56-4bfd9763.th", 56)]
)
def test_published_checkpoints(shared_fixtures, name, depth):
    weights = convert_checkpoint(shared_fixtures / "resnet_cifar_torch" / name)
    assert architecture(weights, name) == (depth, 10, "A")


def test_any_depth_classes_and_shortcut():
    model = resnet_cifar(14, num_classes=5, shortcut="B", input_shape=(8, 8, 3))
    assert architecture(keras_weights(model), "model") == (14, 5, "B")


def test_weights_of_no_cifar_resnet_are_refused():
    weights = keras_weights(resnet_cifar(14, input_shape=(8, 8, 3)))
    uneven = {path: value for path, value in weights.items() if not path.startswith("layer3_1/")}
    with pytest.raises(WeightsMismatchError, match="uneven.npz holds stages of 2, 2, 1 residual"):
        architecture(uneven, "uneven.npz")
    no_classifier = {path: value for path, value in weights.items() if "linear" not in path}
    with pytest.raises(WeightsMismatchError, match="other.npz holds no CIFAR ResNet"):
        architecture(no_classifier, "other.npz")
