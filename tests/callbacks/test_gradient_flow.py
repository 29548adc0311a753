import keras
import numpy as np
import pytest

from keras_deepblocks.callbacks import GradientFlow
from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import HighwayStack


def two_layer_model():
    """relu(x W1 + b1) W2 + b2, compiled with mean squared error."""
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(5, activation="relu", name="hidden"),
            keras.layers.Dense(3, name="out"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def record_once(callback, model):
    """The callback's record of `model` now, as at the start of `fit` (without its compile)."""
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    return callback


def numpy_mean_abs_gradients(weights, x, y):
    """Mean |dL/dw| per layer of `two_layer_model` for L = mean((out - y)^2), by hand."""
    w1, b1, w2, b2 = weights
    z = x @ w1 + b1
    h = np.maximum(z, 0)
    out = h @ w2 + b2
    g_out = 2 * (out - y) / out.size
    g_w2, g_b2 = h.T @ g_out, g_out.sum(0)
    g_z = (g_out @ w2.T) * (z > 0)
    g_w1, g_b1 = x.T @ g_z, g_z.sum(0)

    def mean_abs(*grads):
        return sum(np.abs(g).sum() for g in grads) / sum(g.size for g in grads)

    return {"hidden": mean_abs(g_w1, g_b1), "out": mean_abs(g_w2, g_b2)}


def test_mean_absolute_gradients_match_numpy_at_initialization_and_end(rng):
    model = two_layer_model()
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.normal(size=(16, 3)).astype("float32")
    initial = [w.astype("float64") for w in model.get_weights()]
    flow = GradientFlow((x, y))
    model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[flow])

    assert flow.layer_names == ["hidden", "out"]
    assert flow.epochs == [0, 1, 2, 3]
    final = [w.astype("float64") for w in model.get_weights()]
    for record, weights in ((flow.history[0], initial), (flow.history[-1], final)):
        expected = numpy_mean_abs_gradients(weights, x.astype("float64"), y.astype("float64"))
        assert list(record) == ["hidden", "out"]
        for name, value in record.items():
            assert type(value) is float
            assert value == pytest.approx(expected[name], rel=1e-4)
    assert flow.history[0] != flow.history[-1]  # training changed them


def test_frequency_records_initialization_every_k_epochs_and_the_end(rng):
    model = two_layer_model()
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 3)).astype("float32")
    flow = GradientFlow((x, y), frequency=2)
    model.fit(x, y, epochs=5, verbose=0, callbacks=[flow])
    assert flow.epochs == [0, 2, 4, 5]
    assert len(flow.history) == 4
    # A second fit starts a new history.
    model.fit(x, y, epochs=2, verbose=0, callbacks=[flow])
    assert flow.epochs == [0, 2]


def test_stack_blocks_get_the_gradients_of_the_equal_separate_highway_layers(rng):
    depth, width = 4, 3
    stacked = keras.Sequential(
        [
            keras.Input((width,)),
            HighwayStack(depth, name="highway"),
            keras.layers.Dense(2, name="out"),
        ]
    )
    separate = keras.Sequential(
        [keras.Input((width,))]
        + [Highway(name=f"hw{i}") for i in range(depth)]
        + [keras.layers.Dense(2, name="out")]
    )
    stack = stacked.get_layer("highway")
    for index in range(depth):
        kernel = rng.normal(size=(width, 2 * width), scale=0.7)
        bias = rng.normal(size=(2 * width,), scale=0.5)
        stack.set_block_weights(index, [kernel, bias])
        separate.get_layer(f"hw{index}").set_weights([kernel, bias])
    separate.get_layer("out").set_weights(stacked.get_layer("out").get_weights())
    x = rng.normal(size=(8, width)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    results = []
    for model in (stacked, separate):
        model.compile(keras.optimizers.SGD(0.1), "mse")
        results.append(record_once(GradientFlow((x, y)), model))
    assert results[0].layer_names == [f"highway/{i}" for i in range(depth)] + ["out"]
    got, expected = results[0].history[0], results[1].history[0]
    for index in range(depth):
        assert got[f"highway/{index}"] == pytest.approx(expected[f"hw{index}"], rel=1e-4)
    assert len(set(got.values())) == depth + 1  # each block its own number


def test_training_mode_restores_the_batch_normalization_statistics(rng):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x = rng.normal(loc=3.0, size=(16, 4)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    flows = [GradientFlow((x, y), training=True), GradientFlow((x, y), training=False)]
    for flow in flows:
        record_once(flow, model)
    assert np.array_equal(model.get_layer("bn").moving_mean.numpy(), np.zeros(4))
    # Batch statistics (training) and the initial moving ones give other gradients.
    assert flows[0].history[0]["bn"] != pytest.approx(flows[1].history[0]["bn"], rel=1e-2)


def test_tensorboard_scalars_and_histograms_and_figure(rng, tmp_path, read_events):
    model = two_layer_model()
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 3)).astype("float32")
    figure = tmp_path / "flow.png"
    flow = GradientFlow((x, y), log_dir=tmp_path / "logs", figure=figure)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[flow])

    scalars, histograms = read_events(str(tmp_path / "logs"))
    assert set(scalars) == {"gradient_flow/hidden", "gradient_flow/out"}
    for name in ("hidden", "out"):
        expected = {epoch: record[name] for epoch, record in zip(flow.epochs, flow.history)}
        assert scalars[f"gradient_flow/{name}"] == pytest.approx(expected, rel=1e-6)
        assert sorted(histograms[f"gradient_flow/{name}"]) == [0, 1, 2]
    # 4 * 5 + 5 gradient values of the hidden layer, counted over the buckets.
    assert histograms["gradient_flow/hidden"][0][:, 2].sum() == pytest.approx(25)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_before_training_and_bad_arguments(rng, tmp_path):
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 3)).astype("float32")
    with pytest.raises(ValueError, match="recorded nothing"):
        GradientFlow((x, y)).plot(tmp_path / "f.png")
    with pytest.raises(ValueError, match=r"`data` of GradientFlow must be a tuple `\(x, y\)`"):
        GradientFlow(x)
    with pytest.raises(ValueError, match="`frequency` must be a positive integer"):
        GradientFlow((x, y), frequency=0)
    with pytest.raises(ValueError, match="`figure` must end in an image extension"):
        GradientFlow((x, y), figure=tmp_path / "flow.txt")
    with pytest.raises(TypeError, match="`log_dir` must be None or a directory path"):
        GradientFlow((x, y), log_dir=3)
    with pytest.raises(TypeError, match="`training` must be True or False"):
        GradientFlow((x, y), training="yes")
    with pytest.raises(ValueError, match="same number in every array"):
        GradientFlow((x, y[:4]))
    with pytest.raises(ValueError, match="a tuple of 4 items"):
        GradientFlow((x, y, y, y))


def test_a_model_compiled_without_loss_is_refused(rng):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.1), loss=None)
    x = rng.normal(size=(8, 4)).astype("float32")
    flow = GradientFlow((x, np.zeros((8, 3), "float32")))
    with pytest.raises(ValueError, match="compile the model with a `loss`"):
        record_once(flow, model)
