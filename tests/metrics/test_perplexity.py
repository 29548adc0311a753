import keras
import numpy as np
import pytest

from keras_deepblocks.metrics import Perplexity


def numpy_perplexity(probabilities, targets, weights):
    picked = np.take_along_axis(probabilities, targets[..., None], axis=-1)[..., 0]
    return np.exp(-(np.log(picked) * weights).sum() / weights.sum())


def test_perplexity_is_exp_of_the_weighted_mean_cross_entropy(rng):
    probabilities = rng.dirichlet(np.ones(5), size=(2, 3)).astype("float32")
    targets = rng.integers(0, 5, size=(2, 3))
    weights = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    metric = Perplexity()
    metric.update_state(targets, probabilities, sample_weight=weights)
    expected = numpy_perplexity(probabilities, targets, weights)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    # A second batch: the mean runs over every token seen, not over batches.
    metric.update_state(targets[:1], probabilities[:1])
    both = numpy_perplexity(
        np.concatenate([probabilities, probabilities[:1]]),
        np.concatenate([targets, targets[:1]]),
        np.concatenate([weights, np.ones((1, 3), "float32")]),
    )
    assert float(metric.result()) == pytest.approx(both, rel=1e-5)
    metric.reset_state()
    metric.update_state(targets, probabilities)
    assert float(metric.result()) == pytest.approx(
        numpy_perplexity(probabilities, targets, np.ones((2, 3))), rel=1e-5
    )


def test_from_logits_and_config_round_trip(rng):
    logits = rng.normal(size=(4, 6)).astype("float32")
    targets = rng.integers(0, 6, size=(4,))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    metric = Perplexity(from_logits=True, name="ppl")
    metric.update_state(targets, logits)
    expected = numpy_perplexity(probabilities, targets, np.ones(4))
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    clone = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(clone) is Perplexity
    assert clone.get_config() == metric.get_config()
    assert clone.name == "ppl" and clone.from_logits
    default = Perplexity.from_config(Perplexity().get_config())
    assert default.name == "perplexity" and not default.from_logits
