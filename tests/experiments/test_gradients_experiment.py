import json
import math

import keras
import numpy as np
import pytest

from keras_deepblocks.datasets import load_digits
from keras_deepblocks.experiments import gradients
from keras_deepblocks.utils.gradients import gradients as model_gradients
from keras_deepblocks.zoo.highway_nets import plain_mlp

SETTINGS = {"depth": 4, "width": 8, "epochs": 2, "probe_examples": 32, "seed": 3}


@pytest.fixture(scope="module")
def results():
    return gradients.run(small=True, **SETTINGS)


def test_results_are_json_with_one_value_per_layer(results):
    assert json.loads(json.dumps(results)) == results
    plain, highway = results["networks"]["plain"], results["networks"]["highway"]
    assert plain["layer_names"] == ["projection"] + [f"dense_{i}" for i in range(4)] + [
        "classifier"
    ]
    assert highway["layer_names"] == (
        ["projection"] + [f"highway/{i}" for i in range(4)] + ["classifier"]
    )
    for network in (plain, highway):
        assert network["epochs"] == [0, 1, 2]
        assert network["hidden"] == [1, 4]
        for key in ("gradient", "signal_rms"):
            assert [len(network[key][when]) for when in ("initialization", "end")] == [6, 6]
        assert len(network["train_loss"]) == 2
        first, last = (
            network["gradient"]["initialization"][1],
            network["gradient"]["initialization"][4],
        )
        assert network["gradient_ratio"]["initialization"] == pytest.approx(first / last)
        assert network["first_gradient"][0] == first and network["last_gradient"][-1] == (
            network["gradient"]["end"][4]
        )
    gates = highway["gates"]
    assert gates["layer_names"] == [f"highway/{i}" for i in range(4)]
    # highway_mlp's default, depth-aware gate bias: log(1 / depth).
    assert gates["gate_bias"]["initialization"] == pytest.approx([math.log(1 / 4)] * 4, rel=1e-5)
    assert gates["gate_bias"]["end"] != gates["gate_bias"]["initialization"]


def test_initial_gradients_are_those_of_the_seeded_plain_net_on_the_probe(results):
    (x_train, y_train), _ = load_digits(seed=SETTINGS["seed"])
    x, y = x_train[:32], y_train[:32]
    keras.utils.set_random_seed(SETTINGS["seed"])
    model = plain_mlp((64,), 10, depth=4, width=8)

    def loss(probabilities):
        return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, probabilities))

    grads = model_gradients(model, x, loss_fn=loss, training=False)
    expected = [
        (np.abs(grads[2 * i]).sum() + np.abs(grads[2 * i + 1]).sum())
        / (grads[2 * i].size + grads[2 * i + 1].size)
        for i in range(6)
    ]
    measured = results["networks"]["plain"]["gradient"]["initialization"]
    assert measured == pytest.approx(expected, rel=1e-4)


def test_plot_and_summary(results, tmp_path):
    path = gradients.plot(results, tmp_path / "gradients.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    text = gradients.summary(results)
    ratio = results["networks"]["highway"]["gradient_ratio"]["initialization"]
    assert f"{ratio:.3g}" in text.splitlines()[4]
    assert "of 4 layers mostly carry" in text
    with pytest.raises(ValueError, match="`path` must end in an image extension"):
        gradients.plot(results, tmp_path / "gradients.json")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depth": 0}, "`depth` must be a positive integer"),
        ({"dataset": "imagenet"}, "`dataset` must be one of"),
        ({"learning_rate": -1.0}, "`learning_rate` must be > 0"),
        ({"small": "yes"}, "`small` must be True or False"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gradients.run(**kwargs)
