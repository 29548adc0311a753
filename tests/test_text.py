"""PTB-style text -> sentences, vocabulary, and the language model's inputs and next-word targets."""

import numpy as np
import pytest
from keras import ops

from keras_deepblocks.layers import char_ids
from keras_deepblocks.text import build_vocabulary
from keras_deepblocks.text import language_model_arrays
from keras_deepblocks.text import read_sentences
from keras_deepblocks.text import tiny_corpus

MAX_CHARS = 12


def test_corpus_reader_vocabulary_and_next_word_targets(tmp_path):
    path = tmp_path / "ptb.train.txt"
    path.write_text(" the cat sat \n\n the dog <unk> sat\nthe end\n", encoding="utf-8")
    sentences = read_sentences(path)
    assert sentences == [["the", "cat", "sat"], ["the", "dog", "<unk>", "sat"], ["the", "end"]]
    vocabulary = build_vocabulary(sentences, max_size=5)
    assert vocabulary == ["<unk>", "</s>", "the", "sat", "cat"]
    inputs, targets = language_model_arrays(
        sentences, vocabulary, sequence_length=4, max_characters_per_token=MAX_CHARS
    )
    stream = "the cat sat </s> the dog <unk> sat </s> the end </s>".split()
    assert inputs.shape == (2, 4, MAX_CHARS) and targets.shape == (2, 4)
    expected_targets = [vocabulary.index(w) if w in vocabulary else 0 for w in stream[1:9]]
    np.testing.assert_array_equal(targets.ravel(), expected_targets)  # "dog", "end" -> <unk>
    spelled = ops.convert_to_numpy(char_ids(stream[:8], max_characters_per_token=MAX_CHARS))
    np.testing.assert_array_equal(inputs.reshape(8, MAX_CHARS), spelled)  # OOV keeps its spelling
    with pytest.raises(ValueError, match="sequence_length"):
        language_model_arrays(sentences, vocabulary, sequence_length=40)


def test_tiny_corpus_is_deterministic_ptb_style_text():
    lines = tiny_corpus(50, seed=3)
    assert lines == tiny_corpus(50, seed=3) and lines != tiny_corpus(50, seed=4)
    assert len(lines) == 50 and all(line.endswith(" .") and "  " not in line for line in lines)
