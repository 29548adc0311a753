"""`ElmoLSTM`: the forward and backward LSTM stacks of ELMo against a NumPy reference.

`NumpyElmoLSTM` below reads the layer's cell weights and nothing else: per row,
the forward stack reads tokens 0..len-1 and the backward stack len-1..0, each
layer from a zero state (or, stateful, from the state that row ended its last
call with), residual around layers 2 and up, zeros at padding, [forward |
backward] in each layer's output.
"""

import json

import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks.layers import ElmoLSTM
from bilm_reference import lstmp_step
from layer_testing import SubclassedModel
from layer_testing import as_json
from layer_testing import assert_raises_naming

FEATURES = 3
TOL = dict(rtol=1e-5, atol=1e-5)


def to_numpy(x):
    return ops.convert_to_numpy(x)


class NumpyElmoLSTM:
    """The biLM's LSTMs, row by row, with per-row states kept for `rows` rows.

    Only the weights come from the layer; its options are the test's.
    """

    def __init__(self, layer, skip=False, cell_clip=None, projection_clip=None, rows=8):
        self.num_layers = len(layer.forward_layers)
        self.skip = skip
        self.clips = (cell_clip, projection_clip)
        self.weights = {}
        for direction, rnns in (
            ("forward", layer.forward_layers),
            ("backward", layer.backward_layers),
        ):
            self.weights[direction] = []
            for rnn in rnns:
                cell = rnn.cell
                values = {w.name: to_numpy(w).astype("float64") for w in cell.weights}
                self.weights[direction].append(
                    (
                        values["kernel"],
                        values["recurrent_kernel"],
                        values["bias"],
                        values.get("projection_kernel"),
                    )
                )
        self.width = self.weights["forward"][0][1].shape[0]  # the recurrent kernel's rows
        self.rows = rows
        self.reset()

    def reset(self):
        units = self.weights["forward"][0][2].shape[0] // 4
        self.states = {
            (direction, k, row): (np.zeros((1, self.width)), np.zeros((1, units)))
            for direction in ("forward", "backward")
            for k in range(self.num_layers)
            for row in [*range(self.rows), "zero"]
        }

    def __call__(self, x, lengths, stateful=False):
        batch, steps, _ = x.shape
        outputs = [np.zeros((batch, steps, 2 * self.width)) for _ in range(self.num_layers)]
        for row in range(batch):
            length = lengths[row]
            for side, direction in enumerate(("forward", "backward")):
                seq = x[row, :length].astype("float64")
                if direction == "backward":
                    seq = seq[::-1]
                for k, weights in enumerate(self.weights[direction]):
                    h, c = self.states[direction, k, row if stateful else "zero"]
                    out = np.zeros((length, self.width))
                    for t in range(length):
                        h, c, _, _ = lstmp_step(seq[t : t + 1], h, c, *weights, *self.clips)
                        out[t] = h[0]
                    if stateful:
                        self.states[direction, k, row] = (h, c)
                    if self.skip and k > 0:
                        out = out + seq
                    reading_order = out[::-1] if direction == "backward" else out
                    columns = slice(side * self.width, (side + 1) * self.width)
                    outputs[k][row, :length, columns] = reading_order
                    seq = out
        return outputs


def randomize(layer, rng, scale=0.7):
    """Every trainable weight redrawn (biases too, so that no gate sits at its default)."""
    for weight in layer.trainable_weights:
        weight.assign(rng.normal(scale=scale, size=weight.shape).astype("float32"))


def batch(rng, lengths, steps=5):
    """Token vectors with zeros at padding (for `keras.layers.Masking`) and the mask."""
    lengths = np.asarray(lengths)
    mask = np.arange(steps)[None, :] < lengths[:, None]
    x = rng.normal(size=(len(lengths), steps, FEATURES)).astype("float32")
    return x * mask[..., None], mask


def assert_layers_close(actual, expected, mask=None):
    assert len(actual) == len(expected)
    for k, (got, want) in enumerate(zip(actual, expected)):
        got = to_numpy(got)
        assert got.shape == want.shape, (k, got.shape)
        np.testing.assert_allclose(got, want, err_msg=f"layer {k}", **TOL)
        if mask is not None:
            assert np.all(got[~mask] == 0.0), f"layer {k} not zero at padding"


CONFIGS = [
    dict(units=4, num_layers=2),
    dict(
        units=5,
        projection_dim=3,
        num_layers=3,
        skip_connections=True,
        cell_clip=0.6,
        projection_clip=0.5,
    ),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["plain", "projection_skip_clips"])
def test_outputs_match_numpy_reference(rng, config):
    layer = ElmoLSTM(**config)
    lengths = [5, 3, 1, 0]
    x, mask = batch(rng, lengths)
    layer.build(x.shape)
    clips = "cell_clip" in config
    randomize(layer, rng, scale=1.5 if clips else 0.7)
    reference = NumpyElmoLSTM(
        layer,
        skip=config.get("skip_connections", False),
        cell_clip=config.get("cell_clip"),
        projection_clip=config.get("projection_clip"),
    )

    outputs = layer(x, mask=mask)
    expected = reference(x, lengths)
    assert_layers_close(outputs, expected, mask)
    width = 2 * (config.get("projection_dim") or config["units"])
    assert [tuple(o.shape) for o in outputs] == [(4, 5, width)] * config["num_layers"]
    if clips:  # the clips bite: the first layer (no residual) reaches them; unclipped differs
        assert np.abs(to_numpy(outputs[0])).max() == pytest.approx(config["projection_clip"])
        reference.clips = (None, None)
        assert np.abs(reference(x, lengths)[-1] - expected[-1]).max() > 0.1


def test_stateful_carry_matches_per_row_reference(rng):
    layer = ElmoLSTM(
        5, projection_dim=3, num_layers=2, skip_connections=True, stateful=True, max_batch_size=4
    )
    layer.build((None, None, FEATURES))
    randomize(layer, rng)
    reference = NumpyElmoLSTM(layer, skip=True, rows=4)
    # Call 3: row 0 is padding only and row 2 is beyond the batch: both keep
    # their states, which call 4 reads.
    for lengths in ([4, 2, 5], [1, 5, 3], [0, 2], [3, 4, 2]):
        x, mask = batch(rng, lengths)
        assert_layers_close(layer(x, mask=mask), reference(x, lengths, stateful=True), mask)
    # The kept states matter: a fresh start gives other outputs.
    stateless = NumpyElmoLSTM(layer, skip=True)(x, [3, 4, 2])
    assert np.abs(reference(x, [3, 4, 2], stateful=True)[-1] - stateless[-1]).max() > 1e-2

    layer.reset_states()
    assert all(np.all(to_numpy(v) == 0) for v in layer.non_trainable_weights)
    assert_layers_close(layer(x, mask=mask), stateless, mask)


def test_reset_states_of_a_stateless_layer_does_nothing(rng):
    layer = ElmoLSTM(4, num_layers=1)
    x, mask = batch(rng, [2, 5])
    before = to_numpy(layer(x, mask=mask)[0])
    layer.reset_states()
    assert layer.non_trainable_weights == []
    np.testing.assert_array_equal(to_numpy(layer(x, mask=mask)[0]), before)


def test_state_variables(rng):
    layer = ElmoLSTM(5, projection_dim=3, num_layers=2, stateful=True, max_batch_size=6)
    layer.build((None, None, FEATURES))
    states = {w.name: tuple(w.shape) for w in layer.non_trainable_weights}
    expected = {}
    for direction in ("forward", "backward"):
        for k in range(2):
            expected[f"{direction}_{k}_state_h"] = (6, 3)
            expected[f"{direction}_{k}_state_c"] = (6, 5)
    assert states == expected
    assert len(layer.trainable_weights) == 2 * 2 * 4
    # Not trained: no gradient reaches the kept states.
    assert not any(w.trainable for w in layer.non_trainable_weights)


def test_batch_larger_than_max_batch_size_fails(rng):
    layer = ElmoLSTM(4, stateful=True, max_batch_size=2)
    x, mask = batch(rng, [2, 3, 1])
    with pytest.raises(ValueError, match=r"`max_batch_size=2`.*batch of 3"):
        layer(x, mask=mask)
    # Only a stateful layer keeps rows.
    assert len(ElmoLSTM(4, max_batch_size=2)(x, mask=mask)) == 2


def masked_model(layer, steps=5):
    inputs = keras.Input((steps, FEATURES))
    outputs = layer(keras.layers.Masking(0.0)(inputs))
    return keras.Model(inputs, outputs)


def test_batch_larger_than_max_batch_size_fails_in_predict_after_a_smaller_one(rng):
    model = masked_model(ElmoLSTM(4, stateful=True, max_batch_size=2))
    x, _ = batch(rng, [2, 3, 1])
    model.predict(x[:2], batch_size=2, verbose=0)
    # TF retraces predict for any batch size: the check runs in the graph, whose
    # errors are TF's own.
    errors = (ValueError,)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        errors += (tf.errors.InvalidArgumentError,)
    with pytest.raises(errors, match="`max_batch_size=2`"):
        model.predict(x, batch_size=3, verbose=0)


def test_cells_draw_distinct_weights_and_seeds_reproduce():
    def weights(layer):
        layer.build((None, None, 4))
        cells = [rnn.cell for rnn in layer.forward_layers + layer.backward_layers]
        return {
            name: [to_numpy(getattr(cell, name)) for cell in cells]
            for name in ("kernel", "recurrent_kernel", "projection_kernel")
        }

    def assert_all_distinct(drawn):
        for name, values in drawn.items():
            for a in range(len(values)):
                for b in range(a + 1, len(values)):
                    assert not np.allclose(values[a], values[b]), (name, a, b)

    # Input and output widths alike, so that every cell's kernels have one shape.
    unseeded = weights(ElmoLSTM(6, projection_dim=4, num_layers=3))
    assert_all_distinct(unseeded)

    def seeded():
        return ElmoLSTM(
            6,
            projection_dim=4,
            num_layers=3,
            kernel_initializer=keras.initializers.GlorotUniform(seed=5),
            recurrent_initializer=keras.initializers.Orthogonal(seed=6),
            projection_initializer=keras.initializers.GlorotNormal(seed=7),
        )

    first = weights(seeded())
    assert_all_distinct(first)
    keras.random.normal((3,))  # the global generator moves on: no matter to a seeded layer
    again = weights(seeded())
    clone = weights(ElmoLSTM.from_config(seeded().get_config()))
    for name in first:
        for a, b, c in zip(first[name], again[name], clone[name]):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
    other = weights(ElmoLSTM(6, projection_dim=4, num_layers=3))
    assert not np.allclose(other["kernel"][0], unseeded["kernel"][0])


def test_mask_propagates_to_following_layers(rng):
    lengths = [5, 2, 3]
    x, mask = batch(rng, lengths)
    layer = ElmoLSTM(4, projection_dim=3, num_layers=2)
    masks = layer.compute_mask(x, mask)
    assert len(masks) == 2 and all(m is mask for m in masks)

    inputs = keras.Input((5, FEATURES))
    layers = layer(keras.layers.Masking(0.0)(inputs))
    pooled = [keras.layers.GlobalAveragePooling1D()(y) for y in layers]
    model = keras.Model(inputs, pooled)
    randomize(layer, rng)
    expected = NumpyElmoLSTM(layer)(x, lengths)
    for got, want in zip(model(x), expected):
        # The mean over each row's real tokens only.
        means = np.stack([want[row, :n].mean(axis=0) for row, n in enumerate(lengths)])
        np.testing.assert_allclose(to_numpy(got), means, **TOL)


def test_stateful_carry_inside_predict(rng):
    # JAX: jitted, states returned from the step; TF: a traced graph; torch: eager.
    layer = ElmoLSTM(4, projection_dim=3, num_layers=2, stateful=True, max_batch_size=3)
    model = masked_model(layer)
    randomize(layer, rng)
    reference = NumpyElmoLSTM(layer, rows=3)
    for lengths in ([5, 2, 3], [3, 0, 4], [1, 5, 2]):
        x, mask = batch(rng, lengths)
        got = model.predict(x, batch_size=3, verbose=0)
        assert_layers_close(got, reference(x, lengths, stateful=True), mask)
    assert layer.stateful
    layer.reset_states()
    got = model.predict(x, batch_size=3, verbose=0)
    assert_layers_close(got, NumpyElmoLSTM(layer)(x, [1, 5, 2]))


BAD_ARGUMENTS = [
    ({"units": 0}, ValueError, "`units`"),
    ({"units": 4, "projection_dim": -1}, ValueError, "`projection_dim`"),
    ({"units": 4, "num_layers": 0}, ValueError, "`num_layers`"),
    ({"units": 4, "num_layers": 1.5}, ValueError, "`num_layers`"),
    ({"units": 4, "max_batch_size": 0}, ValueError, "`max_batch_size`"),
    ({"units": 4, "stateful": "yes"}, TypeError, "`stateful`"),
    ({"units": 4, "skip_connections": 1}, TypeError, "`skip_connections`"),
    ({"units": 4, "cell_clip": 0}, ValueError, "`cell_clip`"),
    ({"units": 4, "projection_clip": "3"}, TypeError, "`projection_clip`"),
    ({"units": 4, "kernel_initializer": None}, ValueError, "`kernel_initializer`"),
    ({"units": 4, "recurrent_initializer": "nope"}, ValueError, "`recurrent_initializer`"),
]


def test_bad_arguments_name_the_argument():
    for kwargs, error, name in BAD_ARGUMENTS:
        assert_raises_naming(lambda: ElmoLSTM(**kwargs), error, name, kwargs)


def test_unknown_feature_size_fails_at_build():
    with pytest.raises(ValueError, match="ElmoLSTM"):
        ElmoLSTM(4).build((None, 5, None))


def test_layer_contract(rng, tmp_path):
    """run_layer_test's checks by hand (the layer returns a list of tensors), stateful.

    (A stateless layer repeating itself: test_reset_states_of_a_stateless_layer_does_nothing.)
    """
    kwargs = dict(
        units=5,
        projection_dim=3,
        num_layers=2,
        cell_clip=3.0,
        projection_clip=2.0,
        skip_connections=True,
        stateful=True,
        max_batch_size=4,
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
    )
    x, mask = batch(rng, [5, 3])
    layer = ElmoLSTM(**kwargs)
    layer.build(x.shape)
    assert len(layer.trainable_weights) == 16
    assert len(layer.non_trainable_weights) == 8
    assert [tuple(s) for s in layer.compute_output_shape(x.shape)] == [(2, 5, 6)] * 2
    symbolic = ElmoLSTM(**kwargs)(keras.Input((None, FEATURES)))
    assert [tuple(y.shape) for y in symbolic] == [(None, None, 6)] * 2
    weights = layer.get_weights()
    reference = NumpyElmoLSTM(layer, skip=True, cell_clip=3.0, projection_clip=2.0)
    direct = [to_numpy(y) for y in layer(x, mask=mask)]
    assert_layers_close(direct, reference(x, [5, 3]), mask)

    config = layer.get_config()
    json.dumps(keras.saving.serialize_keras_object(layer))
    clone = ElmoLSTM.from_config(config)
    assert clone.get_config() == config
    clone.build(x.shape)
    clone.set_weights(weights)
    # A subclassed model, no mask: every token is real.
    subclassed = SubclassedModel(clone)
    assert_layers_close(subclassed(x), reference(x, [5, 5]))

    functional = masked_model(ElmoLSTM(**kwargs))
    functional.set_weights(weights)
    first = [to_numpy(y) for y in functional(x)]
    assert_layers_close(first, direct, mask)
    functional.save(tmp_path / "model.keras")
    expected = [to_numpy(y) for y in functional(x)]
    # The next call continues from the states the file holds.
    assert np.abs(expected[-1] - first[-1]).max() > 1e-3
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    for got, want in zip(loaded(x), expected):
        np.testing.assert_array_equal(to_numpy(got), want)
    assert as_json(loaded.get_config()) == as_json(functional.get_config())
    assert [v.path for v in loaded.weights] == [v.path for v in functional.weights]


@pytest.mark.parametrize("stateful", [False, True])
def test_fit_trains_the_cells(rng, stateful):
    layer = ElmoLSTM(5, projection_dim=3, num_layers=2, stateful=stateful, max_batch_size=4)
    model = masked_model(layer)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = [to_numpy(w) for w in model.trainable_weights]
    x, _ = batch(rng, [5, 3])
    model.fit(x, [np.ones((2, 5, 6), "float32")] * 2, batch_size=2, epochs=1, verbose=0)
    after = [to_numpy(w) for w in model.trainable_weights]
    assert len(after) == 16
    assert all(not np.array_equal(a, b) for a, b in zip(after, before))
    # Training calls carry the states too.
    assert all(np.any(to_numpy(w) != 0) for w in model.non_trainable_weights)
