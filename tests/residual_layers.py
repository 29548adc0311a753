"""The residual units of a `resnet_cifar` model, whether its stages are stacked or not."""

from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.layers import ResidualUnit


def residual_layers(model):
    """The model's `ResidualUnit`s and `ResidualStack`s, in order."""
    return [layer for layer in model.layers if isinstance(layer, (ResidualUnit, ResidualStack))]


def survival_probabilities(model):
    """Each residual unit's survival probability (`None` without stochastic depth), in order."""
    probabilities = []
    for layer in residual_layers(model):
        if isinstance(layer, ResidualUnit):
            probabilities.append(layer.survival_probability)
        else:
            probabilities += layer.survival_probabilities or [None] * layer.num_blocks
    return probabilities
