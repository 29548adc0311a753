import json

import keras
import numpy as np
import pytest

keras_tuner = pytest.importorskip("keras_tuner")

from keras_deepblocks.datasets import load_digits  # noqa: E402
from keras_deepblocks.layers import HighwayStack  # noqa: E402
from keras_deepblocks.tuning import HighwayHyperModel  # noqa: E402
from keras_deepblocks.tuning import ResNetCifarHyperModel  # noqa: E402
from keras_deepblocks.tuning import best_trials  # noqa: E402
from keras_deepblocks.tuning import make_tuner  # noqa: E402
from residual_layers import survival_probabilities  # noqa: E402


def fixed(**values):
    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp


def test_highway_hypermodel_builds_what_the_hyperparameters_say():
    hypermodel = HighwayHyperModel(
        (64,), 10, depth=(2, 10), width=[8, 16], activation=["relu", "tanh"]
    )
    model = hypermodel.build(
        fixed(depth=6, width=16, transform_bias=-2.5, activation="tanh", learning_rate=0.02)
    )
    stack = model.get_layer("highway")
    assert isinstance(stack, HighwayStack) and stack.num_layers == 6
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in stack.weights)
    assert kernel.shape == (6, 16, 32)
    np.testing.assert_allclose(bias[:, 16:], -2.5)  # the gate half of each layer's bias
    assert stack.block.activation is keras.activations.tanh
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)
    assert model.output_shape == (None, 10)


def test_search_space_from_ranges_choices_and_fixed_values():
    hp = keras_tuner.HyperParameters()
    HighwayHyperModel(
        (64,), 10, depth=(2, 30), depth_step=4, width=[8, 16], activation="relu"
    ).build(hp)
    space = {p.name: p for p in hp.space}
    assert (space["depth"].min_value, space["depth"].max_value, space["depth"].step) == (2, 30, 4)
    assert space["width"].values == [8, 16]
    assert isinstance(space["activation"], keras_tuner.engine.hyperparameters.Fixed)
    assert (space["transform_bias"].min_value, space["transform_bias"].max_value) == (-4.0, 0.0)
    assert space["learning_rate"].sampling == "log"


def test_bad_search_space_names_the_argument():
    with pytest.raises(ValueError, match="`depth` as a range"):
        HighwayHyperModel((64,), 10, depth=(30, 2)).build(keras_tuner.HyperParameters())
    with pytest.raises(TypeError, match="`width`"):
        HighwayHyperModel((64,), 10, width="wide").build(keras_tuner.HyperParameters())
    # The zoo registry's one check of the ResNet depth, with its message.
    with pytest.raises(ValueError, match=r"`depth` must be a CIFAR ResNet depth 6n \+ 2.*: 21"):
        ResNetCifarHyperModel(depth=[20, 21])
    with pytest.raises(ValueError, match=r"`depth` must be a CIFAR ResNet depth.*not a range"):
        ResNetCifarHyperModel(depth=(20, 56))


def test_resnet_hypermodel_depth_and_stochastic_depth():
    hypermodel = ResNetCifarHyperModel((16, 16, 3), 10, depth=[8, 14], total_steps=100)
    model = hypermodel.build(fixed(depth=14, final_survival_probability=0.5, learning_rate=0.05))
    # The linear decay rule over 6 units ((14 - 2) / 6 = 2 in each of 3 stages) down to p_L = 0.5.
    expected = [1 - l / 6 * 0.5 for l in range(1, 7)]
    np.testing.assert_allclose(survival_probabilities(model), expected)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)  # before the first drop
    plain = hypermodel.build(fixed(depth=8, final_survival_probability=1.0, learning_rate=0.05))
    assert survival_probabilities(plain) == [None] * 3


@pytest.mark.parametrize("kind", ["random", "hyperband", "bayesian"])
def test_each_tuner_searches_depth_and_gate_bias(kind, tmp_path):
    (x, y), (x_val, y_val) = load_digits(test_fraction=0.3)
    hypermodel = HighwayHyperModel(
        (64,),
        10,
        depth=(1, 3),
        depth_step=1,
        width=8,
        transform_bias=(-3.0, -1.0),
        learning_rate=0.05,
    )
    tuner = make_tuner(
        kind, hypermodel, max_trials=2, max_epochs=2, directory=tmp_path, project_name=kind
    )
    tuner.search(x, y, epochs=1, batch_size=128, validation_data=(x_val, y_val), verbose=0)
    trials = best_trials(tuner, 10)
    assert trials and all(1 <= t["hyperparameters"]["depth"] <= 3 for t in trials)
    assert all(-3.0 <= t["hyperparameters"]["transform_bias"] <= -1.0 for t in trials)
    scores = [t["score"] for t in trials]
    assert scores == sorted(scores, reverse=True)
    # The best score is the validation accuracy KerasTuner recorded for that trial.
    recorded = json.loads(
        (tmp_path / kind / f"trial_{trials[0]['trial_id']}" / "trial.json").read_text()
    )
    assert recorded["score"] == pytest.approx(trials[0]["score"])
