"""`CharacterIds` as a Keras layer, and `char_ids` on empty and non-string inputs."""

import keras
import numpy as np
import pytest

from keras_deepblocks.layers import CharacterIds
from keras_deepblocks.layers import char_ids
from layer_testing import run_layer_test


def ids(tokens, **kwargs):
    return keras.ops.convert_to_numpy(char_ids(tokens, **kwargs))


def test_empty_sentences_and_batches_give_empty_ids():
    # They were float32 tensors to TensorFlow, and a TypeError about dtype float32.
    cases = [
        ([], (0, 50)),
        ([[]], (1, 0, 50)),
        ([[], []], (2, 0, 50)),
        (np.array([], str), (0, 50)),
    ]
    for tokens, shape in cases:
        result = ids(tokens)
        assert result.shape == shape and result.dtype == np.int32, tokens


def test_an_empty_sentence_in_a_batch_is_all_padding():
    # `tf.constant([[], ["a"]], dtype=tf.string)` has shape (2, 0): the "a" would vanish.
    np.testing.assert_array_equal(ids([[], ["a"]]), ids([[""], ["a"]]))
    np.testing.assert_array_equal(ids([[], ["a"]])[1, 0], ids("a"))


def test_empty_sentences_with_boundaries_hold_the_markers():
    markers = ids(["<S>", "</S>"])
    np.testing.assert_array_equal(ids([], sentence_boundaries=True), markers)
    np.testing.assert_array_equal(ids([[], []], sentence_boundaries=True), [markers, markers])


def test_non_strings_are_a_type_error():
    # None, a dict and mixed nesting ended in raw TensorFlow errors.
    for tokens in [None, {"a": 1}, [["a"], [1]], ["a", ["b"]], 3, [1, 2], np.array([1.0])]:
        with pytest.raises(TypeError, match="CharacterIds needs"):
            char_ids(tokens)


@pytest.mark.parametrize("sentence_boundaries", [False, True])
def test_layer_contract(sentence_boundaries):
    tokens = np.array([["naïve", "cat", ""], ["<S>", "Hi", "x" * 12]])
    run_layer_test(
        CharacterIds,
        {"max_characters_per_token": 8, "sentence_boundaries": sentence_boundaries},
        input_shape=tokens.shape,
        # compute_output_shape left out the two boundary tokens.
        expected_output_shape=(2, 5 if sentence_boundaries else 3, 8),
        input_data=tokens,
        input_dtype="string",
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        run_training_check=False,
        # Only TensorFlow tensors hold strings: models of it run on TensorFlow.
        run_model_checks=keras.backend.backend() == "tensorflow",
    )
