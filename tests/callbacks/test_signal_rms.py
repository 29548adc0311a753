import keras
import numpy as np
import pytest

from keras_deepblocks.callbacks import SignalRMS
from keras_deepblocks.layers import HighwayStack


def rms(values):
    return np.sqrt(np.mean(np.square(values)))


def record_once(callback, model):
    """The callback's record of `model` now, as at the start of `fit` (without its compile)."""
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    return callback


def test_output_rms_per_layer_matches_numpy_at_initialization_and_end(rng):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, activation="relu", name="hidden"),
            keras.layers.Dropout(0.5),  # no weights: not an entry
            keras.layers.Dense(2, name="out"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.2), "mse")
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.normal(loc=3.0, size=(16, 2)).astype("float32")

    def expected():
        w1, b1, w2, b2 = (w.astype("float64") for w in model.get_weights())
        hidden = np.maximum(x @ w1 + b1, 0)  # inference: Dropout passes its input
        return {"hidden": rms(hidden), "out": rms(hidden @ w2 + b2)}

    at_initialization = expected()
    signal = SignalRMS((x, y))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[signal])

    assert signal.layer_names == ["hidden", "out"]
    assert signal.epochs == [0, 1, 2]
    for record, reference in (
        (signal.history[0], at_initialization),
        (signal.history[-1], expected()),
    ):
        assert list(record) == ["hidden", "out"]
        for name, value in reference.items():
            assert type(record[name]) is float
            assert record[name] == pytest.approx(value, rel=1e-5)
    assert signal.history[-1]["out"] > signal.history[0]["out"]  # it learns the offset 3


def test_every_block_of_a_stack_and_the_layers_of_a_nested_model(rng):
    width, depth = 4, 3
    inner = keras.Sequential(
        [keras.Input((width,)), keras.layers.Dense(width, name="d")], name="inner"
    )
    inputs = keras.Input((width,))
    outputs = inner(HighwayStack(depth, name="highway")(inputs))
    model = keras.Model(inputs, outputs)
    stack = model.get_layer("highway")
    layers = []
    for index in range(depth):
        kernel = rng.normal(size=(width, 2 * width), scale=0.6)
        bias = rng.normal(size=(2 * width,))
        stack.set_block_weights(index, [kernel, bias])
        layers.append((kernel, bias))
    x = rng.normal(size=(8, width)).astype("float32")

    signal = record_once(SignalRMS(x), model)

    assert signal.layer_names == ["highway/0", "highway/1", "highway/2", "inner/d"]
    h = x.astype("float64")
    for index, (kernel, bias) in enumerate(layers):
        fused = h @ kernel + bias
        gate = 1 / (1 + np.exp(-fused[:, width:]))
        h = h + gate * (np.maximum(fused[:, :width], 0) - h)
        assert signal.history[0][f"highway/{index}"] == pytest.approx(rms(h), rel=1e-5)
    kernel, bias = inner.get_layer("d").get_weights()
    assert signal.history[0]["inner/d"] == pytest.approx(rms(h @ kernel + bias), rel=1e-5)


def test_tensorboard_scalars_histograms_and_figure(rng, tmp_path, read_events):
    model = keras.Sequential([keras.layers.Dense(3, name="a"), keras.layers.Dense(1, name="b")])
    model.compile(keras.optimizers.SGD(0.1), "mse")  # built by the first batch
    x = rng.normal(size=(8, 5)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    figure = tmp_path / "signal.svg"
    signal = SignalRMS(x, log_dir=tmp_path / "logs", figure=figure, frequency=3)
    model.fit(x, y, epochs=4, verbose=0, callbacks=[signal])

    assert signal.epochs == [0, 3, 4]
    scalars, histograms = read_events(str(tmp_path / "logs"))
    assert set(scalars) == {"signal_rms/a", "signal_rms/b"}
    for name in ("a", "b"):
        expected = {e: record[name] for e, record in zip(signal.epochs, signal.history)}
        assert scalars[f"signal_rms/{name}"] == pytest.approx(expected, rel=1e-6)
    assert histograms["signal_rms/a"][4][:, 2].sum() == pytest.approx(8 * 3)  # every output
    assert b"<svg" in figure.read_bytes()[:400]


def test_without_histograms_and_bad_arguments(rng, tmp_path, read_events):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="a")])
    x = np.ones((4, 2), "float32")
    signal = record_once(SignalRMS(x, log_dir=tmp_path, histograms=False), model)
    signal.on_train_end()
    scalars, histograms = read_events(str(tmp_path))
    assert list(scalars) == ["signal_rms/a"] and not histograms
    with pytest.raises(ValueError, match="recorded nothing"):
        SignalRMS(x).plot(tmp_path / "signal.png")
    with pytest.raises(ValueError, match="`path` must end in an image extension"):
        signal.plot(tmp_path / "signal.csv")
    with pytest.raises(ValueError, match="one or more examples"):
        SignalRMS(np.ones((0, 2)))
    with pytest.raises(TypeError, match="`data` of SignalRMS must hold arrays or tensors"):
        SignalRMS(["a", "b"])
