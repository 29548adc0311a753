"""The character-aware language model (Kim et al. 2016); `Perplexity` is tested in tests/metrics."""

import keras
import numpy as np
import pytest

from keras_deepblocks.metrics.perplexity import Perplexity
from keras_deepblocks.text import build_vocabulary
from keras_deepblocks.text import language_model_arrays
from keras_deepblocks.text import read_sentences
from keras_deepblocks.text import tiny_corpus
from keras_deepblocks.zoo.char_language_model import char_aware_language_model

MAX_CHARS = 12
SMALL_ENCODER = {
    "embedding": {"dim": 8},
    "filters": [[1, 8], [2, 8], [3, 16]],
    "n_highway": 1,
    "activation": "tanh",
    "n_characters": 262,
    "max_characters_per_token": MAX_CHARS,
}


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
