"""`CharacterIds` and `char_ids`: both schemes against an independent reference, sentence
boundaries, `tf.data`, empty and non-string inputs, arguments, and the layer contract."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_deepblocks.layers import CharacterIds
from keras_deepblocks.layers import char_ids
from layer_testing import run_layer_test


def ids(tokens, **kwargs):
    return ops.convert_to_numpy(char_ids(tokens, **kwargs))


def reference_elmo_ids(word, max_chars=50):
    """bilm-tf/AllenNLP's character ids, written from the fixture README."""
    if word == "<S>":
        codes = [258, 256, 259]
    elif word == "</S>":
        codes = [258, 257, 259]
    else:
        codes = [258, *word.encode("utf-8")[: max_chars - 2], 259]
    codes += [260] * (max_chars - len(codes))
    return [c + 1 for c in codes]


def test_elmo_ids_of_ascii_multibyte_and_long_tokens():
    words = ["cat", "naïve", "日本", "🙂!", "x" * 60, "a" * 47 + "é", "<S>", "</S>", "<s>"]
    result = ids(words)
    assert result.shape == (len(words), 50) and result.dtype == np.int32
    np.testing.assert_array_equal(result, [reference_elmo_ids(w) for w in words])
    # Spot checks against hand-written values, independent of the reference.
    np.testing.assert_array_equal(result[0, :6], [259, 100, 98, 117, 260, 261])
    nihon_utf8 = [0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC]  # "日本"
    np.testing.assert_array_equal(result[2, 1:7], [b + 1 for b in nihon_utf8])
    assert result[4, 48] == ord("x") + 1 and result[4, 49] == 260  # 48 bytes kept, then end-of-word
    assert (
        result[5, 48] == 0xC3 + 1 and result[5, 49] == 260
    )  # truncation splits "é" as bilm-tf does
    np.testing.assert_array_equal(result[6, :4], [259, 257, 260, 261])


def test_elmo_ids_of_the_published_vocabulary(shared_fixtures):
    words = (shared_fixtures / "elmo" / "vocab_test.txt").read_text(encoding="utf-8").split()
    np.testing.assert_array_equal(ids([words])[0], [reference_elmo_ids(w) for w in words])


def test_byte_scheme_and_padding_tokens():
    result = ids([["ab", "é", ""], ["abcdef", "", ""]], scheme="bytes", max_characters_per_token=4)
    np.testing.assert_array_equal(
        result,
        [
            [[98, 99, 0, 0], [0xC3 + 1, 0xA9 + 1, 0, 0], [0, 0, 0, 0]],
            [[98, 99, 100, 101], [0, 0, 0, 0], [0, 0, 0, 0]],
        ],
    )


@pytest.mark.parametrize("ragged", [False, True])
def test_sentence_boundaries_follow_each_sentence(ragged):
    if ragged:
        tokens = tf.ragged.constant([["The", "cat", "sat"], ["Hi"]])
    else:
        tokens = tf.constant([["The", "cat", "sat"], ["Hi", "", ""]])
    result = ops.convert_to_numpy(CharacterIds(sentence_boundaries=True)(tokens))
    expected_first = ["<S>", "The", "cat", "sat", "</S>"]
    np.testing.assert_array_equal(result[0], [reference_elmo_ids(w) for w in expected_first])
    expected_second = ["<S>", "Hi", "</S>"]
    np.testing.assert_array_equal(result[1, :3], [reference_elmo_ids(w) for w in expected_second])
    assert not result[1, 3:].any()  # padding tokens stay all zeros, after "</S>"


def test_character_ids_inside_tf_data():
    layer = CharacterIds(max_characters_per_token=10, sentence_boundaries=True)
    lines = tf.data.Dataset.from_tensor_slices(["the cat sat", "a dog"])
    dataset = lines.map(tf.strings.split).ragged_batch(2).map(layer)
    result = next(iter(dataset))
    assert isinstance(result, tf.Tensor) and result.shape == (2, 5, 10)
    np.testing.assert_array_equal(result.numpy()[1, 2], reference_elmo_ids("dog", 10))


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


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="`scheme` must be one of 'elmo', 'bytes'"):
        CharacterIds("unicode")
    with pytest.raises(ValueError, match="`max_characters_per_token` must be at least 3"):
        CharacterIds(max_characters_per_token=2)


@pytest.mark.parametrize(
    "scheme, sentence_boundaries", [("elmo", False), ("elmo", True), ("bytes", True)]
)
def test_layer_contract(scheme, sentence_boundaries):
    tokens = np.array([["naïve", "cat", ""], ["<S>", "Hi", "x" * 12]])
    run_layer_test(
        CharacterIds,
        {
            "scheme": scheme,
            "max_characters_per_token": 8,
            "sentence_boundaries": sentence_boundaries,
        },
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
