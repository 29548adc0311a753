"""`ElmoScalarMix` against the formula of Peters et al. (2018), eq. 1, in NumPy.

`gamma * sum_k softmax(w)_k h_k`, each `h_k` first standardized over all the
entries of the batch's unmasked tokens with `layer_norm` (AllenNLP's
`ScalarMix(do_layer_norm=True)`: one mean and one variance per tensor).
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks.layers import ElmoScalarMix
from keras_deepblocks.utils.gradients import gradients
from layer_testing import SubclassedModel
from layer_testing import as_json
from layer_testing import assert_raises_naming
from layer_testing import run_layer_test

SHAPE = (3, 5, 4)
LENGTHS = [5, 2, 4]


def to_numpy(x):
    return ops.convert_to_numpy(x)


def scalar_mix(tensors, weights, gamma, layer_norm=False, mask=None):
    """The reference, in float64; padding tokens are zero in the output."""
    tensors = [np.asarray(t, "float64") for t in tensors]
    tokens = np.ones(tensors[0].shape[:2], bool) if mask is None else np.asarray(mask, bool)
    softmax = np.exp(weights - np.max(weights))
    softmax /= softmax.sum()
    mixed = np.zeros_like(tensors[0])
    for share, tensor in zip(softmax, tensors):
        if layer_norm:
            entries = tensor[tokens]  # (unmasked tokens, dim): every entry counts once
            tensor = (tensor - entries.mean()) / np.sqrt(entries.var() + 1e-12)
        mixed += share * tensor
    return gamma * mixed * tokens[..., None]


def layers_and_mask(rng):
    """Three tensors of different means and scales, huge values at padding, and the mask."""
    mask = np.arange(SHAPE[1])[None, :] < np.array(LENGTHS)[:, None]
    tensors = []
    for k in range(3):
        tensor = rng.normal(loc=3.0 * k - 2.0, scale=k + 0.5, size=SHAPE)
        tensors.append(np.where(mask[..., None], tensor, 100.0 * (k + 1)).astype("float32"))
    return tensors, mask


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_numpy(rng, layer_norm, masked):
    tensors, mask = layers_and_mask(rng)
    mask = mask if masked else None
    layer = ElmoScalarMix(
        layer_norm=layer_norm, initial_weights=[0.5, -1.0, 2.0], initial_gamma=1.7
    )
    got = to_numpy(layer(tensors, mask=mask))
    expected = scalar_mix(tensors, np.array([0.5, -1.0, 2.0]), 1.7, layer_norm, mask)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(layer.scalar_weights), [0.5, -1.0, 2.0])
    assert float(to_numpy(layer.gamma)) == pytest.approx(1.7)
    assert layer.num_layers == 3
    if layer_norm and masked:  # the padding's huge values would move the statistics
        unmasked_stats = (
            scalar_mix(tensors, np.array([0.5, -1.0, 2.0]), 1.7, True) * mask[..., None]
        )
        assert np.abs(unmasked_stats - expected).max() > 0.5


def test_default_is_an_equal_mix_and_a_mask_list_uses_the_first(rng):
    tensors, mask = layers_and_mask(rng)
    layer = ElmoScalarMix(num_layers=3)
    masks = [mask, np.ones_like(mask), np.zeros_like(mask)]
    got = to_numpy(layer(tensors, mask=masks))
    np.testing.assert_allclose(got, scalar_mix(tensors, np.zeros(3), 1.0, mask=mask), rtol=1e-6)
    np.testing.assert_array_equal(to_numpy(layer.compute_mask(tensors, masks)), mask)


def masked_inputs_model(mix):
    inputs = [keras.Input(SHAPE[1:]) for _ in range(3)]
    masked = [keras.layers.Masking(0.0)(x) for x in inputs]
    return keras.Model(inputs, mix(masked))


def zero_padding(tensors, mask):
    return [t * mask[..., None] for t in tensors]


def test_mask_in_a_model_reaches_the_mix_and_the_next_layer(rng):
    tensors, mask = layers_and_mask(rng)
    tensors = zero_padding(tensors, mask)
    inputs = [keras.Input(SHAPE[1:]) for _ in range(3)]
    mixed = ElmoScalarMix(layer_norm=True, initial_gamma=2.0)(
        [keras.layers.Masking(0.0)(x) for x in inputs]
    )
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(mixed))
    reference = scalar_mix(tensors, np.zeros(3), 2.0, True, mask)
    expected = np.stack([reference[row, :n].mean(axis=0) for row, n in enumerate(LENGTHS)])
    np.testing.assert_allclose(to_numpy(model(tensors)), expected, rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_weights_and_gamma(rng):
    # The sum of squared outputs, differentiated by the backend and by central differences.
    tensors, mask = layers_and_mask(rng)
    tensors = zero_padding(tensors, mask)
    weights, gamma = np.array([0.3, -0.4, 0.8]), 1.3
    model = masked_inputs_model(
        ElmoScalarMix(layer_norm=True, initial_weights=list(weights), initial_gamma=gamma)
    )
    grad_w, grad_gamma = [to_numpy(g) for g in gradients(model, tensors)]

    def loss(w, g):
        return np.sum(scalar_mix(tensors, w, g, True, mask) ** 2)

    eps = 1e-5
    expected_w = [
        (loss(weights + eps * e, gamma) - loss(weights - eps * e, gamma)) / (2 * eps)
        for e in np.eye(3)
    ]
    expected_gamma = (loss(weights, gamma + eps) - loss(weights, gamma - eps)) / (2 * eps)
    np.testing.assert_allclose(grad_w, expected_w, rtol=1e-3, atol=1e-3)
    assert float(grad_gamma) == pytest.approx(expected_gamma, rel=1e-4)
    assert np.abs(grad_w).min() > 1e-2


@pytest.mark.parametrize("trainable", [True, False])
def test_fit_trains_the_mix_unless_frozen(rng, trainable):
    tensors, mask = layers_and_mask(rng)
    tensors = zero_padding(tensors, mask)
    mix = ElmoScalarMix(layer_norm=True, trainable=trainable)
    inputs = [keras.Input(SHAPE[1:]) for _ in range(3)]
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(mix([keras.layers.Masking(0.0)(x) for x in inputs])))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    assert len(mix.trainable_weights) == (2 if trainable else 0)
    assert len(mix.non_trainable_weights) == (0 if trainable else 2)
    before = [to_numpy(w) for w in mix.weights + dense.weights]
    target = rng.normal(size=(*SHAPE[:2], 2)).astype("float32")
    model.fit(tensors, target, batch_size=3, epochs=2, verbose=0)
    after = [to_numpy(w) for w in mix.weights + dense.weights]
    changed = [not np.allclose(a, b) for a, b in zip(after, before)]
    # scalar_weights, gamma, then the Dense kernel and bias (always trained).
    assert changed == [trainable, trainable, True, True]
    for a, b in zip(after[:2], before[:2]):
        if not trainable:
            np.testing.assert_array_equal(a, b)


def test_bad_inputs_fail():
    one = np.ones(SHAPE, "float32")
    cases = [
        (ElmoScalarMix(), one, "list of tensors"),
        (ElmoScalarMix(num_layers=3), [one] * 2, "`num_layers=3`.*received 2"),
        (ElmoScalarMix(initial_weights=[0.0] * 3), [one] * 2, "`num_layers=3`"),
        (ElmoScalarMix(), [one, np.ones((3, 5, 6), "float32")], "same shape"),
    ]
    for layer, tensors, message in cases:
        assert_raises_naming(lambda: layer(tensors), ValueError, message, message)


BAD_ARGUMENTS = [
    ({"initial_weights": "abc"}, TypeError, "`initial_weights`"),
    ({"initial_weights": 1.0}, TypeError, "`initial_weights`"),
    ({"initial_weights": [1.0, float("nan")]}, ValueError, r"`initial_weights\[1\]`"),
    ({"initial_weights": [1.0, "x"]}, TypeError, r"`initial_weights\[1\]`"),
    ({"num_layers": 2, "initial_weights": [0.0] * 3}, ValueError, "`num_layers=2`"),
    ({"num_layers": 0}, ValueError, "`num_layers`"),
    ({"layer_norm": "yes"}, TypeError, "`layer_norm`"),
    ({"initial_gamma": float("inf")}, ValueError, "`initial_gamma`"),
    ({"initial_gamma": None}, TypeError, "`initial_gamma`"),
]


def test_bad_arguments_name_the_argument():
    for kwargs, error, message in BAD_ARGUMENTS:
        assert_raises_naming(lambda: ElmoScalarMix(**kwargs), error, message, kwargs)


def test_empty_initial_weights_fail_when_made():
    with pytest.raises(ValueError, match="`initial_weights`"):
        ElmoScalarMix(initial_weights=[])


def test_layer_contract(rng, tmp_path):
    tensors, mask = layers_and_mask(rng)
    tensors = zero_padding(tensors, mask)
    kwargs = {"layer_norm": True, "initial_weights": [0.1, 0.2, -0.3], "initial_gamma": 0.5}
    # Build, weights, config round trip: the inputs are a list, which the models of
    # run_layer_test cannot hold; those are checked below.
    run_layer_test(
        ElmoScalarMix,
        kwargs,
        input_shape=(SHAPE,) * 3,
        expected_output_shape=SHAPE,
        input_data=tensors,
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
        run_model_checks=False,
    )
    functional = masked_inputs_model(ElmoScalarMix(**kwargs))
    expected = scalar_mix(tensors, np.array([0.1, 0.2, -0.3]), 0.5, True, mask)
    np.testing.assert_allclose(to_numpy(functional(tensors)), expected, rtol=1e-5, atol=1e-5)
    subclassed = SubclassedModel(ElmoScalarMix(**kwargs))
    np.testing.assert_allclose(
        to_numpy(subclassed(tensors)),
        scalar_mix(tensors, np.array([0.1, 0.2, -0.3]), 0.5, True),
        rtol=1e-5,
        atol=1e-5,
    )
    functional.save(tmp_path / "mix.keras")
    loaded = keras.saving.load_model(tmp_path / "mix.keras")
    np.testing.assert_array_equal(to_numpy(loaded(tensors)), to_numpy(functional(tensors)))
    assert as_json(loaded.get_config()) == as_json(functional.get_config())
    assert [v.path for v in loaded.weights] == [v.path for v in functional.weights]
    config = loaded.get_layer(index=-1).get_config()
    assert (config["num_layers"], config["initial_weights"]) == (3, [0.1, 0.2, -0.3])
