"""`ProjectedLSTMCell`: one step and whole masked sequences against a NumPy LSTMP cell.

The reference below is written from the formulas (Sak et al. 2014, TensorFlow 1's
`LSTMCell(num_proj, cell_clip, proj_clip)`) in Keras's gate order i, f, g, o; it
reads the cell's weights and nothing else of the layer.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks.layers import ProjectedLSTMCell
from bilm_reference import lstmp_step
from layer_testing import SubclassedModel
from layer_testing import as_json
from layer_testing import assert_raises_naming
from layer_testing import run_layer_test

UNITS = 4
FEATURES = 3


def to_numpy(x):
    return ops.convert_to_numpy(x)


def cell_weights(cell):
    weights = [to_numpy(w).astype("float64") for w in cell.weights]
    kernel, recurrent, bias = weights[:3]
    projection = weights[3] if cell.projection_dim is not None else None
    return kernel, recurrent, bias, projection


def set_large_weights(cell, rng, scale=2.0):
    """Weights large enough that the clips below bite."""
    for weight in cell.weights:
        weight.assign(rng.normal(scale=scale, size=weight.shape).astype("float32"))


CASES = [
    # projection_dim, cell_clip, projection_clip
    (None, None, None),
    (3, None, None),
    (None, 0.5, 0.3),
    (3, 0.5, 0.3),
]


@pytest.mark.parametrize("projection_dim, cell_clip, projection_clip", CASES)
def test_one_step_matches_numpy(rng, projection_dim, cell_clip, projection_clip):
    cell = ProjectedLSTMCell(
        UNITS, projection_dim=projection_dim, cell_clip=cell_clip, projection_clip=projection_clip
    )
    cell.build((None, FEATURES))
    set_large_weights(cell, rng)
    out = projection_dim or UNITS
    x = rng.normal(size=(6, FEATURES)).astype("float32")
    h = rng.normal(size=(6, out)).astype("float32")
    c = rng.normal(scale=3.0, size=(6, UNITS)).astype("float32")

    output, (new_h, new_c) = cell(x, [h, c])
    expected_h, expected_c, raw_h, raw_c = lstmp_step(
        x, h, c, *cell_weights(cell), cell_clip, projection_clip
    )
    assert tuple(output.shape) == (6, out) and tuple(new_c.shape) == (6, UNITS)
    np.testing.assert_allclose(to_numpy(output), expected_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(new_h), expected_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(new_c), expected_c, rtol=1e-5, atol=1e-6)
    if cell_clip is not None:  # the clip bites, and the cell reaches it
        assert np.abs(raw_c).max() > 1.5 * cell_clip
        assert np.abs(to_numpy(new_c)).max() == pytest.approx(cell_clip)
    if projection_clip is not None:
        assert np.abs(raw_h).max() > 1.5 * projection_clip
        assert np.abs(to_numpy(output)).max() == pytest.approx(projection_clip)


@pytest.mark.parametrize("projection_dim, cell_clip, projection_clip", [CASES[0], CASES[3]])
def test_masked_sequence_in_rnn_matches_numpy(rng, projection_dim, cell_clip, projection_clip):
    cell = ProjectedLSTMCell(
        UNITS, projection_dim=projection_dim, cell_clip=cell_clip, projection_clip=projection_clip
    )
    rnn = keras.layers.RNN(
        cell, return_sequences=True, return_state=True, zero_output_for_mask=True
    )
    steps, lengths = 5, np.array([5, 3, 1, 4])
    x = rng.normal(size=(len(lengths), steps, FEATURES)).astype("float32")
    mask = np.arange(steps)[None, :] < lengths[:, None]
    rnn.build(x.shape)
    set_large_weights(cell, rng, scale=1.5)
    weights = cell_weights(cell)

    outputs, last_h, last_c = rnn(x, mask=mask)

    out = projection_dim or UNITS
    expected = np.zeros((len(lengths), steps, out))
    h, c = np.zeros((len(lengths), out)), np.zeros((len(lengths), UNITS))
    raw_cs, raw_hs = [], []
    for t in range(steps):
        new_h, new_c, raw_h, raw_c = lstmp_step(x[:, t], h, c, *weights, cell_clip, projection_clip)
        live = mask[:, t : t + 1]
        h, c = np.where(live, new_h, h), np.where(live, new_c, c)
        expected[:, t] = np.where(live, new_h, 0.0)
        raw_cs.append(raw_c[live[:, 0]])
        raw_hs.append(raw_h[live[:, 0]])
    np.testing.assert_allclose(to_numpy(outputs), expected, rtol=1e-5, atol=1e-5)
    # The final states are those of each row's last real step.
    np.testing.assert_allclose(to_numpy(last_h), h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(last_c), c, rtol=1e-5, atol=1e-5)
    if cell_clip is not None:
        assert np.abs(np.concatenate(raw_cs)).max() > 1.5 * cell_clip
        assert np.abs(to_numpy(last_c)).max() == pytest.approx(cell_clip)
    if projection_clip is not None:
        assert np.abs(np.concatenate(raw_hs)).max() > 1.5 * projection_clip
        assert np.abs(to_numpy(outputs)).max() == pytest.approx(projection_clip)


def test_weight_shapes_and_forget_bias():
    cell = ProjectedLSTMCell(UNITS, projection_dim=2)
    cell.build((None, FEATURES))
    shapes = {w.name: tuple(w.shape) for w in cell.weights}
    assert shapes == {
        "kernel": (FEATURES, 4 * UNITS),
        "recurrent_kernel": (2, 4 * UNITS),
        "bias": (4 * UNITS,),
        "projection_kernel": (UNITS, 2),
    }
    assert (cell.output_size, list(cell.state_size)) == (2, [2, UNITS])
    expected = np.concatenate([np.zeros(UNITS), np.ones(UNITS), np.zeros(2 * UNITS)])
    np.testing.assert_array_equal(to_numpy(cell.bias), expected)

    plain = ProjectedLSTMCell(UNITS, unit_forget_bias=False)
    plain.build((None, FEATURES))
    assert len(plain.weights) == 3 and tuple(plain.recurrent_kernel.shape) == (UNITS, 4 * UNITS)
    np.testing.assert_array_equal(to_numpy(plain.bias), np.zeros(4 * UNITS))

    # Documented: the forget gate's bias is the initializer's plus 1.
    shifted = ProjectedLSTMCell(UNITS, bias_initializer=keras.initializers.Constant(0.5))
    shifted.build((None, FEATURES))
    np.testing.assert_allclose(to_numpy(shifted.bias), 0.5 + expected)


BAD_ARGUMENTS = [
    ({"units": 0}, ValueError, "`units`"),
    ({"units": 2.5}, ValueError, "`units`"),
    ({"units": 4, "projection_dim": -1}, ValueError, "`projection_dim`"),
    ({"units": 4, "projection_dim": 0}, ValueError, "`projection_dim`"),
    ({"units": 4, "cell_clip": 0}, ValueError, "`cell_clip` must be > 0"),
    ({"units": 4, "cell_clip": -1.0}, ValueError, "`cell_clip`"),
    ({"units": 4, "cell_clip": "3"}, TypeError, "`cell_clip`"),
    ({"units": 4, "cell_clip": float("inf")}, ValueError, "`cell_clip`"),
    ({"units": 4, "projection_clip": 0.0}, ValueError, "`projection_clip`"),
    ({"units": 4, "projection_clip": True}, TypeError, "`projection_clip`"),
    ({"units": 4, "unit_forget_bias": "yes"}, TypeError, "`unit_forget_bias`"),
    ({"units": 4, "kernel_initializer": "nope"}, ValueError, "`kernel_initializer`"),
    ({"units": 4, "projection_initializer": None}, ValueError, "`projection_initializer`"),
]


def test_bad_arguments_name_the_argument():
    for kwargs, error, name in BAD_ARGUMENTS:
        assert_raises_naming(lambda: ProjectedLSTMCell(**kwargs), error, name, kwargs)


def test_config_round_trip():
    cell = ProjectedLSTMCell(
        UNITS,
        projection_dim=np.int64(3),
        cell_clip=np.float32(3),
        projection_clip=2,
        kernel_initializer=keras.initializers.GlorotNormal(seed=1),
        unit_forget_bias=False,
        name="cell",
    )
    config = cell.get_config()
    assert (config["projection_dim"], config["cell_clip"], config["projection_clip"]) == (3, 3, 2)
    assert type(config["cell_clip"]) is float and type(config["projection_dim"]) is int
    assert ProjectedLSTMCell.from_config(config).get_config() == config


@keras.saving.register_keras_serializable(package="deepblocks_tests")
class RNNOfCell(keras.layers.RNN):
    """`keras.layers.RNN`, whose `from_config` pops `cell` from the caller's dict: a copy."""

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return super().from_config(dict(config), custom_objects)


@pytest.mark.parametrize("projection_dim, weights", [(3, 4), (None, 3)])
def test_layer_contract_inside_rnn(tmp_path, projection_dim, weights):
    def make():
        cell = ProjectedLSTMCell(
            UNITS, projection_dim=projection_dim, cell_clip=3.0, projection_clip=2.0
        )
        return RNNOfCell(cell, return_sequences=True)

    # Build, shapes, weight counts, config round trip with the same outputs.
    run_layer_test(
        RNNOfCell,
        make().get_config() | {"cell": make().cell},
        input_shape=(2, 5, FEATURES),
        expected_output_shape=(2, 5, projection_dim or UNITS),
        expected_num_trainable_weights=weights,
        expected_num_non_trainable_weights=0,
        run_model_checks=False,
    )
    # Models by hand: a loaded `keras.layers.RNN(cell)` names its weights without
    # the RNN's prefix (Keras builds the cell while deserializing it, also for
    # `LSTMCell`), which `run_layer_test` checks; names are saving_roundtrip's.
    x = np.random.default_rng(1).normal(size=(2, 5, FEATURES)).astype("float32")
    inputs = keras.Input((None, FEATURES))
    functional = keras.Model(inputs, keras.layers.RNN(make().cell, return_sequences=True)(inputs))
    sequential = keras.Sequential([keras.Input((None, FEATURES)), make()])
    subclassed = SubclassedModel(make())
    for model in (functional, sequential, subclassed):
        expected = to_numpy(model(x))
        assert expected.shape == (2, 5, projection_dim or UNITS)
        if model is subclassed:
            continue
        model.save(tmp_path / "model.keras")
        loaded = keras.saving.load_model(tmp_path / "model.keras")
        np.testing.assert_array_equal(to_numpy(loaded(x)), expected)
        assert as_json(loaded.get_config()) == as_json(model.get_config())
    functional.compile(keras.optimizers.SGD(0.1), "mse")
    before = [to_numpy(w) for w in functional.trainable_weights]
    functional.fit(x, np.zeros((2, 5, projection_dim or UNITS)), epochs=1, verbose=0)
    after = [to_numpy(w) for w in functional.trainable_weights]
    assert all(not np.array_equal(a, b) for a, b in zip(after, before))


def test_a_loaded_rnn_keeps_its_variable_paths(tmp_path):
    inputs = keras.Input((None, FEATURES))
    rnn = keras.layers.RNN(ProjectedLSTMCell(UNITS, projection_dim=2), name="lm")
    model = keras.Model(inputs, rnn(inputs))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert [v.path for v in loaded.weights] == [v.path for v in model.weights]
