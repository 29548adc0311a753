import keras
import numpy as np
import pytest

from keras_deepblocks.callbacks import GateActivity
from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import HighwayConv2D
from keras_deepblocks.layers import HighwayStack
from keras_deepblocks.zoo.highway_nets import highway_mlp


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_highway(x, kernel, bias):
    """The highway layer `x + T (relu(x W_h + b_h) - x)`, and its gate `T`."""
    width = x.shape[-1]
    fused = x @ kernel + bias
    gate = sigmoid(fused[:, width:])
    return x + gate * (np.maximum(fused[:, :width], 0) - x), gate


def gate_summary(gate, bias):
    """What GateActivity reports for a layer, from its gate values `(examples, units)`."""
    unit_means = gate.mean(axis=0)
    width = gate.shape[-1]
    return {
        "mean_gate": unit_means.mean(),
        "carry_fraction": (unit_means < 0.5).mean(),
        "gate_bias": bias[width:].mean(),
    }


def record_once(callback, model):
    """The callback's record of `model` now, as at the start of `fit` (without its compile)."""
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    return callback


def random_highway_weights(rng, width):
    """Weights whose gates are open for some units and closed for others."""
    kernel = rng.normal(size=(width, 2 * width), scale=0.6)
    bias = np.concatenate([rng.normal(size=width, scale=0.3), rng.normal(size=width, scale=1.5)])
    return [kernel, bias]


def test_gates_of_separate_highway_layers_match_numpy_at_initialization_and_end(rng):
    width = 5
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(width, name="projection"),
            Highway(name="hw0"),
            Highway(name="hw1"),
            keras.layers.Dense(2, name="out"),
        ]
    )
    for name in ("hw0", "hw1"):
        model.get_layer(name).set_weights(random_highway_weights(rng, width))
    model.compile(keras.optimizers.SGD(0.5), "mse")
    x = rng.normal(size=(32, 3)).astype("float32")
    y = rng.normal(size=(32, 2)).astype("float32")

    def expected():
        projection_kernel, projection_bias = model.get_layer("projection").get_weights()
        h = x.astype("float64") @ projection_kernel + projection_bias
        summaries = {}
        for name in ("hw0", "hw1"):
            kernel, bias = (w.astype("float64") for w in model.get_layer(name).get_weights())
            h, gate = numpy_highway(h, kernel, bias)
            summaries[name] = gate_summary(gate, bias)
        return summaries

    at_initialization = expected()
    gates = GateActivity((x, y), frequency=2)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[gates])

    assert gates.epochs == [0, 2, 3]
    assert gates.layer_names == ["hw0", "hw1"]
    for record, reference in (
        (gates.history[0], at_initialization),
        (gates.history[-1], expected()),
    ):
        assert list(record) == ["hw0", "hw1"]
        for name in ("hw0", "hw1"):
            for key, value in reference[name].items():
                assert type(record[name][key]) is float
                assert record[name][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (name, key)
    fractions = [gates.history[0][name]["carry_fraction"] for name in ("hw0", "hw1")]
    assert any(0 < f < 1 for f in fractions)  # the reference tells open from closed units
    assert gates.history[0] != gates.history[-1]


def test_every_layer_of_a_highway_stack_gets_its_gates_from_its_own_input(rng):
    width, depth = 4, 3
    model = keras.Sequential([keras.Input((width,)), HighwayStack(depth, name="highway")])
    stack = model.get_layer("highway")
    layers = [random_highway_weights(rng, width) for _ in range(depth)]
    for index, weights in enumerate(layers):
        stack.set_block_weights(index, weights)
    x = rng.normal(size=(16, width)).astype("float32")

    gates = record_once(GateActivity(x), model)

    assert gates.layer_names == ["highway/0", "highway/1", "highway/2"]
    h = x.astype("float64")
    for index, (kernel, bias) in enumerate(layers):
        h, gate = numpy_highway(h, kernel, bias)
        for key, value in gate_summary(gate, bias).items():
            assert gates.history[0][f"highway/{index}"][key] == pytest.approx(value, rel=1e-4)
        assert gates.unit_gates[f"highway/{index}"] == pytest.approx(gate.mean(0), rel=1e-4)


def test_convolutional_gates_are_averaged_over_examples_and_positions(rng):
    channels = 2
    layer = HighwayConv2D(3, name="hwconv")
    model = keras.Sequential([keras.Input((5, 5, channels)), layer])
    kernel = rng.normal(size=(3, 3, channels, 2 * channels), scale=0.5)
    bias = np.array([0.0, 0.0, 1.5, -1.5])
    layer.set_weights([kernel, bias])
    x = rng.normal(size=(3, 5, 5, channels)).astype("float32")

    gates = record_once(GateActivity(x), model)

    padded = np.pad(x.astype("float64"), ((0, 0), (1, 1), (1, 1), (0, 0)))
    logits = np.zeros((3, 5, 5, channels)) + bias[channels:]
    for i in range(3):
        for j in range(3):
            logits += np.einsum("nhwc,cd->nhwd", padded[:, i : i + 5, j : j + 5], kernel[i, j])[
                ..., channels:
            ]
    unit_means = sigmoid(logits).mean(axis=(0, 1, 2))
    record = gates.history[0]["hwconv"]
    assert gates.unit_gates["hwconv"] == pytest.approx(unit_means, rel=1e-4)
    assert record["mean_gate"] == pytest.approx(unit_means.mean(), rel=1e-4)
    assert record["carry_fraction"] == (unit_means < 0.5).mean() == 0.5


def test_zoo_highway_mlp_tensorboard_and_figure(rng, tmp_path, read_events):
    model = highway_mlp((6,), 3, depth=3, width=4)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    x = rng.normal(size=(16, 6)).astype("float32")
    y = rng.integers(0, 3, size=16)
    figure = tmp_path / "gates.png"
    gates = GateActivity((x, y), log_dir=tmp_path / "logs", figure=figure)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[gates])

    assert gates.layer_names == ["highway/0", "highway/1", "highway/2"]
    scalars, histograms = read_events(str(tmp_path / "logs"))
    assert len(scalars) == 9
    for name in gates.layer_names:
        for key in ("mean_gate", "carry_fraction", "gate_bias"):
            expected = {e: record[name][key] for e, record in zip(gates.epochs, gates.history)}
            assert scalars[f"gate_activity/{name}/{key}"] == pytest.approx(expected, rel=1e-6)
        # One count per unit (the per-unit mean gates).
        assert histograms[f"gate_activity/{name}"][0][:, 2].sum() == pytest.approx(4)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.highway = Highway()

    def call(self, inputs):
        return self.highway(inputs)


def test_models_it_cannot_read_and_bad_arguments(rng, tmp_path):
    x = rng.normal(size=(4, 3)).astype("float32")
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="GateActivity needs highway layers"):
        record_once(GateActivity(x), plain)
    subclassed = Subclassed()
    subclassed(x)
    with pytest.raises(ValueError, match="must be functional or Sequential"):
        record_once(GateActivity(x), subclassed)
    with pytest.raises(ValueError, match="`frequency` must be a positive integer"):
        GateActivity(x, frequency=1.5)
    with pytest.raises(ValueError, match="`figure` must end in an image extension"):
        GateActivity(x, figure=tmp_path / "gates")
    with pytest.raises(ValueError, match="`data` of GateActivity must be a probe batch"):
        GateActivity(None)
    with pytest.raises(TypeError, match="`histograms` must be True or False"):
        GateActivity(x, histograms=1)
