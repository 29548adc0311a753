"""`utils.reset_states`: every stateful layer of a model back to zero states, nested ones too."""

import keras
import numpy as np
from keras import ops

from keras_deepblocks.layers import ElmoLSTM
from keras_deepblocks.utils.states import reset_states
from layer_testing import SubclassedModel

BATCH, STEPS, FEATURES = 2, 4, 3


def to_numpy(x):
    return ops.convert_to_numpy(x)


def outputs(model, x):
    return [to_numpy(y) for y in keras.tree.flatten(model(x))]


def assert_outputs_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)


def assert_outputs_differ(a, b):
    assert max(np.abs(x - y).max() for x, y in zip(a, b)) > 1e-3


def data(rng):
    x = rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    x[1, 3:] = 0.0  # a padding token for Masking
    return x


def elmo(stateful=True):
    return ElmoLSTM(4, projection_dim=3, num_layers=1, stateful=stateful, max_batch_size=BATCH)


def check_reset(model, x, expected_count):
    """Two calls differ (states carried); after the reset the first call's outputs return."""
    first = outputs(model, x)
    assert_outputs_differ(outputs(model, x), first)
    assert reset_states(model) == expected_count
    assert all(not np.any(to_numpy(w)) for w in model.non_trainable_weights)
    assert_outputs_equal(outputs(model, x), first)


def test_resets_an_elmo_lstm_in_a_functional_model(rng):
    inputs = keras.Input((STEPS, FEATURES))
    model = keras.Model(inputs, elmo()(keras.layers.Masking(0.0)(inputs)))
    check_reset(model, data(rng), 1)


def test_resets_layers_in_nested_models(rng):
    # ElmoLSTM in a functional model, a stateful Keras LSTM in a Sequential, both nested.
    inner_in = keras.Input((STEPS, FEATURES))
    inner = keras.Model(inner_in, elmo()(inner_in)[0], name="inner")
    recurrent = keras.Sequential(
        [keras.Input(batch_shape=(BATCH, STEPS, 6)), keras.layers.LSTM(3, stateful=True)],
        name="recurrent",
    )
    inputs = keras.Input(batch_shape=(BATCH, STEPS, FEATURES))
    model = keras.Model(inputs, recurrent(inner(inputs)))
    check_reset(model, data(rng), 2)


def test_resets_a_layer_held_by_a_subclassed_model(rng):
    model = SubclassedModel(elmo())
    check_reset(model, data(rng), 1)


def test_resets_a_stateful_keras_lstm(rng):
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(BATCH, STEPS, FEATURES)),
            keras.layers.LSTM(3, stateful=True, return_sequences=True),
        ]
    )
    check_reset(model, data(rng), 1)


def test_stateless_models_count_zero(rng):
    inputs = keras.Input((STEPS, FEATURES))
    x = elmo(stateful=False)(inputs)[0]
    model = keras.Model(inputs, keras.layers.LSTM(2)(x))
    x = data(rng)
    before = outputs(model, x)
    assert reset_states(model) == 0
    assert_outputs_equal(outputs(model, x), before)
    assert reset_states(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])) == 0
