"""One test harness for every public layer, in the spirit of Keras's `run_layer_test`.

`run_layer_test(layer_cls, init_kwargs, input_shape, expected_output_shape)`
checks what a Keras user relies on when writing `model.add(Layer(...))`:

- `build` and an eager call give the expected output shape, and so do
  `compute_output_shape` and a symbolic call on `keras.Input`;
- the layer has the expected numbers of trainable and non-trainable weights;
- `get_config` is JSON-serializable, and `from_config` gives a layer with the
  same config and, with the same weights, the same outputs;
- the layer works in a `Sequential`, a functional and a subclassed model, and
  the first two save to `.keras` and load (in this process) with identical
  outputs, configs and variable paths;
- optionally, a training call runs and `fit` changes the weights.

Fresh-process loading on every backend is `tests/test_saving.py`'s.
"""

import json
import pathlib
import re
import tempfile

import keras
import numpy as np
import pytest
from keras import ops


class SubclassedModel(keras.Model):
    """A user's subclassed model around one layer (with a `training` argument)."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, inputs, training=None):
        return self.inner(inputs, training=training)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_shape,
    expected_output_shape,
    *,
    input_data=None,
    input_dtype="float32",
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    run_training_check=True,
    run_model_checks=True,
):
    """Runs the checks above on `layer_cls(**init_kwargs)`; see the module docstring.

    Args:
        layer_cls: The layer class.
        init_kwargs: Arguments of the layer. Layers given as arguments (a
            `StochasticDepth` branch) are rebuilt from their config for each
            new instance, so that instances share no weights.
        input_shape: Shape of the test input, batch size included.
        expected_output_shape: Shape of the output, batch size included.
        input_data: The input, or `None` for random normal values of
            `input_shape`.
        input_dtype: dtype of the symbolic input.
        expected_num_trainable_weights: Checked when given.
        expected_num_non_trainable_weights: Checked when given.
        run_training_check: Whether to check a training call and one `fit` step.
        run_model_checks: Whether to check models, saving and training (off
            for layers whose inputs only TensorFlow tensors can hold).
    """
    input_shape = tuple(input_shape)
    expected_output_shape = tuple(expected_output_shape)
    x = input_data
    if x is None:
        x = np.random.default_rng(0).normal(size=input_shape).astype(input_dtype)

    def make():
        return layer_cls(**_fresh(init_kwargs))

    layer = make()
    layer.build(input_shape)
    _check_weight_counts(layer, expected_num_trainable_weights, expected_num_non_trainable_weights)
    assert tuple(layer.compute_output_shape(input_shape)) == expected_output_shape
    outputs = ops.convert_to_numpy(layer(x, training=False))
    assert outputs.shape == expected_output_shape, outputs.shape

    config = layer.get_config()
    json.dumps(keras.saving.serialize_keras_object(layer))
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    clone.build(input_shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(ops.convert_to_numpy(clone(x, training=False)), outputs)
    if run_training_check:
        assert tuple(layer(x, training=True).shape) == expected_output_shape

    if not run_model_checks:
        return
    batch_shape = (None, *input_shape[1:])
    symbolic = make()(keras.Input(batch_shape=batch_shape, dtype=input_dtype))
    assert tuple(symbolic.shape) == (None, *expected_output_shape[1:])

    inputs = keras.Input(batch_shape=batch_shape, dtype=input_dtype)
    functional = keras.Model(inputs, make()(inputs))
    sequential = keras.Sequential([keras.Input(batch_shape=batch_shape, dtype=input_dtype), make()])
    subclassed = SubclassedModel(make())
    for model in (functional, sequential, subclassed):
        got = ops.convert_to_numpy(model(x, training=False))
        assert got.shape == expected_output_shape, (type(model).__name__, got.shape)
    for model in (functional, sequential):
        _check_saved_and_loaded(model, x)
    if run_training_check and layer.trainable_weights:
        _check_one_fit_step(functional, x, expected_output_shape)


def assert_raises_naming(make, error, pattern, label):
    """`make()` raises `error` whose message matches `pattern`; failures name the case."""
    try:
        make()
    except error as raised:
        assert re.search(pattern, str(raised)), f"{label}: {raised}"
        return
    except Exception as raised:  # the wrong kind of error
        pytest.fail(f"{label}: {type(raised).__name__}: {raised}")
    pytest.fail(f"{label}: no error")


def _fresh(init_kwargs):
    """`init_kwargs` with each layer argument replaced by a new layer of its config."""
    return {
        key: (
            keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(value))
            if isinstance(value, keras.layers.Layer)
            else value
        )
        for key, value in init_kwargs.items()
    }


def _check_weight_counts(layer, trainable, non_trainable):
    if trainable is not None:
        assert len(layer.trainable_weights) == trainable, [w.path for w in layer.trainable_weights]
    if non_trainable is not None:
        assert len(layer.non_trainable_weights) == non_trainable, [
            w.path for w in layer.non_trainable_weights
        ]


def _check_saved_and_loaded(model, x):
    expected = ops.convert_to_numpy(model(x, training=False))
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)  # safe_mode=True
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x, training=False)), expected)
    assert as_json(loaded.get_config()) == as_json(model.get_config())
    if isinstance(model, keras.Sequential):
        return  # Keras's own loader drops a nested Sequential's name from its paths
    assert [v.path for v in loaded.weights] == [v.path for v in model.weights]


def as_json(config):
    """`config` as its file holds it (tuples become lists)."""
    return json.loads(json.dumps(config))


def _check_one_fit_step(model, x, expected_output_shape):
    model.compile(keras.optimizers.SGD(0.01), "mse")
    before = [ops.convert_to_numpy(w) for w in model.trainable_weights]
    target = np.zeros(expected_output_shape, "float32")
    # Three steps: a stochastic-depth branch may be dropped (zero gradient) in one.
    history = model.fit(x, target, batch_size=len(x), epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    after = [ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(after, before))
