import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks.layers.character_ids import char_ids
from keras_deepblocks.zoo.char_language_model import char_aware_language_model
from keras_deepblocks.metrics.perplexity import Perplexity
from keras_deepblocks.zoo.text_corpus import build_vocabulary
from keras_deepblocks.zoo.text_corpus import language_model_arrays
from keras_deepblocks.zoo.text_corpus import read_sentences
from keras_deepblocks.zoo.text_corpus import tiny_corpus

MAX_CHARS = 12
SMALL_ENCODER = {
    "embedding": {"dim": 8},
    "filters": [[1, 8], [2, 8], [3, 16]],
    "n_highway": 1,
    "activation": "tanh",
    "n_characters": 262,
    "max_characters_per_token": MAX_CHARS,
}


def test_perplexity_is_exp_of_masked_mean_cross_entropy(rng):
    probabilities = rng.dirichlet(np.ones(5), size=(2, 3)).astype("float32")
    targets = rng.integers(0, 5, size=(2, 3))
    weights = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    metric = Perplexity()
    metric.update_state(targets, probabilities, sample_weight=weights)
    picked = np.take_along_axis(probabilities, targets[..., None], axis=-1)[..., 0]
    expected = np.exp(-(np.log(picked) * weights).sum() / weights.sum())
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)
    clone = Perplexity.from_config(metric.get_config())
    assert clone.name == "perplexity" and not clone.from_logits


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


def test_language_model_perplexity_goes_down_and_round_trips(tmp_path):
    sentences = read_sentences(tiny_corpus(150))
    vocabulary = build_vocabulary(sentences)
    x, y = language_model_arrays(sentences, vocabulary, 8, max_characters_per_token=MAX_CHARS)
    model = char_aware_language_model(
        len(vocabulary), SMALL_ENCODER, lstm_units=24, num_lstm_layers=1, dropout=0.0
    )
    model.compile(
        keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy", metrics=[Perplexity()]
    )
    _, before = model.evaluate(x, y, batch_size=len(x), verbose=0)
    # An untrained softmax is close to uniform: perplexity near the vocabulary size.
    assert 0.7 * len(vocabulary) < before < 1.3 * len(vocabulary)
    assert len(x) % 33 == 0  # equal batches: one compiled train step under JAX
    model.fit(x, y, batch_size=33, epochs=4, verbose=0)
    _, after = model.evaluate(x, y, batch_size=len(x), verbose=0)
    assert after < 0.5 * before
    path = tmp_path / "lm.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # compiled, with its Perplexity metric
    np.testing.assert_allclose(
        restored.evaluate(x, y, batch_size=len(x), verbose=0), [np.log(after), after], rtol=1e-5
    )


def test_language_model_arguments_are_checked():
    with pytest.raises(ValueError, match="vocabulary_size"):
        char_aware_language_model(0, SMALL_ENCODER)
    with pytest.raises(ValueError, match="dropout"):
        char_aware_language_model(10, SMALL_ENCODER, dropout=1.0)
