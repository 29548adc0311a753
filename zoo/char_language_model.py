"""Character-aware neural language model (Kim et al. 2016)."""

import keras

from keras_deepblocks.utils import validation
from keras_deepblocks.zoo.char_cnn import char_cnn_highway_encoder


def char_aware_language_model(
    vocabulary_size,
    encoder="kim_small",
    lstm_units=300,
    num_lstm_layers=2,
    dropout=0.5,
    name="char_aware_language_model",
):
    """Char-CNN-highway encoder -> LSTM stack -> softmax over a word vocabulary.

    Each input word is read from its characters; the model predicts the next
    word. Dropout sits between the LSTM layers and before the softmax, as in
    Kim et al. 2016 (their small model: `"kim_small"`, 2 x 300 units; large:
    `"kim_large"`, 2 x 650). Padding tokens (all character ids 0) are masked,
    so they count neither in the loss nor in `Perplexity`.

    Args:
        vocabulary_size: Number of words of the softmax.
        encoder: A config for `char_cnn_highway_encoder` (name, dict or
            options path) or an encoder model already built (e.g. with ELMo
            weights). Defaults to `"kim_small"`.
        lstm_units: Units of each LSTM layer. Defaults to `300`.
        num_lstm_layers: Defaults to `2`.
        dropout: Dropout rate. Defaults to `0.5`.
        name: Model name.

    Returns:
        A functional `keras.Model` from character ids
        `(batch, time, max_characters_per_token)` to next-word probabilities
        `(batch, time, vocabulary_size)`.

    Example (data from `keras_deepblocks.text`):

    >>> from keras_deepblocks.metrics import Perplexity
    >>> from keras_deepblocks.text import build_vocabulary, language_model_arrays
    >>> from keras_deepblocks.text import read_sentences, tiny_corpus
    >>> sentences = read_sentences(tiny_corpus(40))
    >>> vocabulary = build_vocabulary(sentences)
    >>> x, y = language_model_arrays(sentences, vocabulary, sequence_length=10,
    ...                              max_characters_per_token=21)
    >>> model = char_aware_language_model(len(vocabulary), lstm_units=16, num_lstm_layers=1)
    >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=[Perplexity()])
    >>> history = model.fit(x, y, epochs=1, verbose=0)
    >>> model.output_shape == (None, None, len(vocabulary))
    True
    """
    validation.positive_int(vocabulary_size, "vocabulary_size")
    validation.positive_int(lstm_units, "lstm_units")
    validation.positive_int(num_lstm_layers, "num_lstm_layers")
    dropout = validation.finite_float(dropout, "dropout")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1), got {dropout}.")
    if not isinstance(encoder, keras.Model):
        encoder = char_cnn_highway_encoder(encoder)
    ids = keras.Input(encoder.input_shape[1:], dtype="int32", name="char_ids")
    x = encoder(ids)
    for i in range(num_lstm_layers):
        if i > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
        x = keras.layers.LSTM(lstm_units, return_sequences=True, name=f"lstm_{i}")(x)
    x = keras.layers.Dropout(dropout, name="output_dropout")(x)
    probabilities = keras.layers.Dense(
        vocabulary_size, activation="softmax", dtype="float32", name="word_softmax"
    )(x)
    return keras.Model(ids, probabilities, name=name)
