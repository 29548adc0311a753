"""`RemoveSentenceBoundaries` against NumPy: each row's words, without `<S>` and `</S>`."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks.layers import RemoveSentenceBoundaries
from layer_testing import run_layer_test


def to_numpy(x):
    return ops.convert_to_numpy(x)


def remove_boundaries(x, lengths):
    """AllenNLP's remove_sentence_boundaries in NumPy: words of each row, shifted left."""
    words = np.zeros((x.shape[0], x.shape[1] - 2, *x.shape[2:]), x.dtype)
    mask = np.zeros(words.shape[:2], bool)
    for row, length in enumerate(lengths):
        count = max(length - 2, 0)
        words[row, :count] = x[row, 1 : 1 + count]
        mask[row, :count] = True
    return words, mask


@pytest.mark.parametrize("shape", [(4, 6, 3), (4, 6, 2, 3), (4, 6)])
def test_matches_numpy_with_a_mask(rng, shape):
    # Rows: full, shorter, <S></S> only, padding only.
    lengths = [6, 4, 2, 0]
    x = rng.normal(size=shape).astype("float32") + 5.0  # no zero among the values
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    layer = RemoveSentenceBoundaries()
    words, words_mask = remove_boundaries(x, lengths)

    got = to_numpy(layer(x, mask=mask))
    np.testing.assert_array_equal(got, words)
    np.testing.assert_array_equal(to_numpy(layer.compute_mask(x, mask)), words_mask)
    assert layer.compute_output_shape(shape) == (4, 4, *shape[2:])


def test_without_a_mask_every_row_is_full(rng):
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    layer = RemoveSentenceBoundaries()
    np.testing.assert_array_equal(to_numpy(layer(x)), x[:, 1:-1])
    assert layer.compute_mask(x, None) is None


def test_mask_reaches_the_next_layer(rng):
    # In a model: Masking -> RemoveSentenceBoundaries -> mask-aware pooling over words only.
    lengths = [6, 3, 5]
    x = rng.normal(size=(3, 6, 4)).astype("float32") + 5.0
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    x = x * mask[..., None]
    inputs = keras.Input((None, 4))
    words = RemoveSentenceBoundaries()(keras.layers.Masking(0.0)(inputs))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(words))
    expected = np.stack([x[row, 1 : n - 1].mean(axis=0) for row, n in enumerate(lengths)])
    np.testing.assert_allclose(to_numpy(model(x)), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6)


def test_fewer_than_two_tokens_fail():
    for shape in [(2, 1, 3), (2, 0, 3), (3,)]:
        with pytest.raises(ValueError, match=r"tokens >= 2"):
            RemoveSentenceBoundaries()(np.zeros(shape, "float32"))


def test_fewer_than_two_tokens_fail_on_symbolic_inputs():
    with pytest.raises(ValueError, match=r"RemoveSentenceBoundaries.*tokens >= 2"):
        RemoveSentenceBoundaries()(keras.Input((1, 4)))
    # Unknown lengths pass; their outputs have unknown lengths.
    assert tuple(RemoveSentenceBoundaries()(keras.Input((None, 4))).shape) == (None, None, 4)


def test_layer_contract():
    run_layer_test(
        RemoveSentenceBoundaries,
        {},
        input_shape=(2, 5, 3),
        expected_output_shape=(2, 3, 3),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
    )
