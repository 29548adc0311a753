"""Tokens to padded character ids: the ELMo (bilm-tf) scheme and a plain byte scheme."""

import keras
import numpy as np

from keras_deepblocks.utils import validation

SCHEMES = ("elmo", "bytes")
BEGIN_SENTENCE = "<S>"
END_SENTENCE = "</S>"

# bilm-tf's character codes before the +1 shift that frees id 0 for "no token".
_ELMO_BOS, _ELMO_EOS, _ELMO_BOW, _ELMO_EOW, _ELMO_PAD = 256, 257, 258, 259, 260
# Rows of the character embedding each scheme needs (largest id + 1).
NUM_CHARACTERS = {"elmo": 262, "bytes": 257}


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class CharacterIds(keras.layers.Layer):
    """Maps string tokens to padded character ids, id 0 meaning "no token".

    Two schemes:

    - `"elmo"`: the scheme of bilm-tf/AllenNLP ELMo. A token's UTF-8 bytes,
      truncated to `max_characters_per_token - 2`, sit between a
      begin-of-word id and an end-of-word id and are padded with a padding
      id; the tokens `"<S>"` and `"</S>"` become single sentence-boundary
      "characters". Every id is shifted by +1, so ids run from 1 to 261 and 0
      is free for masking. Feed it to an encoder with 262 characters.
    - `"bytes"`: each UTF-8 byte `b` becomes `b + 1`, truncated to
      `max_characters_per_token` and padded with 0 (257 characters).

    The empty string is the padding token: all its ids are 0, so encoders
    mask it. The layer runs TensorFlow string ops (TensorFlow must be
    installed, whatever the Keras backend): inside `tf.data` it returns
    `tf.Tensor`s, eagerly a tensor of the current backend.

    Args:
        scheme: `"elmo"` or `"bytes"`. Defaults to `"elmo"`.
        max_characters_per_token: Length of the character axis. Defaults to
            `50` (ELMo's value).
        sentence_boundaries: Add `"<S>"` before and `"</S>"` after each
            sentence (the last axis of a rank-1 or rank-2 input; padding
            tokens `""` at the end of a dense batch stay after `"</S>"`).
            Defaults to `False`.
        **kwargs: Base layer arguments such as `name`.

    Call arguments:
        inputs: Strings: a token (rank 0), a sentence of tokens (rank 1), or a
            batch of sentences (rank 2, dense padded with `""`, ragged, or
            a Python list of lists of different lengths). Empty lists are
            empty sentences and batches: `[]` gives ids of shape
            `(0, max_characters_per_token)`, `[[]]` of shape
            `(1, 0, max_characters_per_token)`. Anything but strings (`None`,
            numbers) raises a `TypeError`.

    Returns:
        int32 ids of shape `inputs.shape + (max_characters_per_token,)`
        (ragged batches are padded to their longest sentence).

    Example:

    >>> ids = CharacterIds()([["The", "cat"], ["Hi"]])
    >>> tuple(ids.shape)
    (2, 2, 50)
    """

    def __init__(
        self,
        scheme="elmo",
        max_characters_per_token=50,
        sentence_boundaries=False,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "int32")
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        self.scheme = validation.one_of(scheme, "scheme", SCHEMES)
        self.max_characters_per_token = validation.positive_int(
            max_characters_per_token, "max_characters_per_token"
        )
        if scheme == "elmo" and self.max_characters_per_token < 3:
            raise ValueError(
                "`max_characters_per_token` must be at least 3 with the 'elmo' "
                "scheme (two word markers and one character), received: "
                f"{max_characters_per_token!r}."
            )
        self.sentence_boundaries = validation.boolean(sentence_boundaries, "sentence_boundaries")
        # Strings and Python lists go to `call` untouched: only TF holds strings.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def call(self, inputs):
        import tensorflow as tf

        tokens = _as_string_tensor(inputs)
        if self.sentence_boundaries:
            tokens = _add_sentence_boundaries(tokens)
        if isinstance(tokens, tf.RaggedTensor):
            tokens = tokens.to_tensor(default_value="")
        if self.scheme == "elmo":
            ids = _elmo_ids(tokens, self.max_characters_per_token)
        else:
            ids = _byte_ids(tokens, self.max_characters_per_token)
        if tf.executing_eagerly():
            return keras.ops.convert_to_tensor(ids.numpy())
        return ids

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if self.sentence_boundaries and shape and shape[-1] is not None:
            shape[-1] += 2  # "<S>" and "</S>"
        return (*shape, self.max_characters_per_token)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "scheme": self.scheme,
                "max_characters_per_token": self.max_characters_per_token,
                "sentence_boundaries": self.sentence_boundaries,
            }
        )
        return config


def char_ids(tokens, scheme="elmo", max_characters_per_token=50, sentence_boundaries=False):
    """Character ids of `tokens`: a one-call form of `CharacterIds`.

    Example:

    >>> ops.convert_to_numpy(char_ids(["naïve"], max_characters_per_token=10))[0].tolist()
    [259, 111, 98, 196, 176, 119, 102, 260, 261, 261]
    """
    layer = CharacterIds(scheme, max_characters_per_token, sentence_boundaries)
    return layer(tokens)


def _as_string_tensor(inputs):
    """`inputs` as a `tf.string` tensor, ragged when sentences differ in length.

    Empty lists are empty sentences or batches, not float tensors: `[]` gives
    ids of shape `(0, max_characters_per_token)`, `[[]]` of shape `(1, 0, ...)`.
    """
    import tensorflow as tf

    if isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
        if inputs.dtype != tf.string:
            raise TypeError(
                f"CharacterIds needs string tokens, received a tensor of dtype {inputs.dtype!r}."
            )
        return inputs
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "US":
        return tf.constant(inputs)
    if not _holds_only_strings(inputs):
        raise TypeError(
            "CharacterIds needs string tokens: a string, a list of strings (a sentence), a "
            "list of lists of strings (a batch), or a tf.string tensor; received: "
            f"{_short_repr(inputs)} of type {type(inputs).__name__}."
        )
    try:
        tensor = tf.constant(inputs)
        if tensor.dtype == tf.string:
            return tensor
    except ValueError:  # sentences of different lengths
        pass
    # Lists that hold no string (`[]`, `[[], []]`) or differ in length. Not
    # `tf.constant(..., dtype=tf.string)`: it turns `[[], ["a"]]` into shape (2, 0).
    try:
        tensor = tf.ragged.constant(inputs, dtype=tf.string)
    except ValueError as error:  # e.g. ["a", ["b"]]
        raise TypeError(f"CharacterIds needs evenly nested lists of strings; {error}") from None
    if isinstance(tensor, tf.RaggedTensor):
        dense = tensor.to_tensor(default_value="")
        if int(tf.size(dense)) == int(tf.size(tensor.flat_values)):
            return dense  # equal lengths: a dense batch, whose "" pads stay at the end
    return tensor


def _holds_only_strings(value):
    """Whether `value` is a string or (nested) lists of strings, empty lists included."""
    if isinstance(value, (str, bytes, np.str_, np.bytes_)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_holds_only_strings(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "USO" and all(_holds_only_strings(v) for v in value.flat)
    return False


def _short_repr(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _add_sentence_boundaries(tokens):
    import tensorflow as tf

    if tokens.shape.rank == 1:
        return tf.concat([[BEGIN_SENTENCE], tokens, [END_SENTENCE]], axis=0)
    if tokens.shape.rank != 2:
        raise ValueError(
            "With `sentence_boundaries=True`, the input must be a sentence (rank 1) or a "
            f"batch of sentences (rank 2), received: rank {tokens.shape.rank}."
        )
    if isinstance(tokens, tf.Tensor):
        tokens = tf.RaggedTensor.from_tensor(tokens, padding="")
    batch = tokens.nrows()
    begin = tf.fill([batch, 1], BEGIN_SENTENCE)
    end = tf.fill([batch, 1], END_SENTENCE)
    return tf.concat([begin, tokens, end], axis=1)


def _elmo_ids(tokens, max_chars):
    """bilm-tf ids: [bow, bytes..., eow, pad, ...] + 1; specials for <S>, </S>."""
    import tensorflow as tf

    inner = max_chars - 2
    raw = tf.cast(tf.io.decode_raw(tokens, tf.uint8, fixed_length=inner), tf.int32)
    length = tf.minimum(tf.strings.length(tokens), inner)[..., None]
    position = tf.range(max_chars)
    edge = tf.zeros_like(raw[..., :1])
    shifted = tf.concat([edge, raw, edge], axis=-1)  # byte i at position i + 1
    ids = tf.where(
        position == 0,
        _ELMO_BOW,
        tf.where(
            position <= length,
            shifted,
            tf.where(position == length + 1, _ELMO_EOW, _ELMO_PAD),
        ),
    )
    for token, code in ((BEGIN_SENTENCE, _ELMO_BOS), (END_SENTENCE, _ELMO_EOS)):
        special = _elmo_special(code, max_chars)
        ids = tf.where((tokens == token)[..., None], special, ids)
    ids = ids + 1
    return tf.where((tokens == "")[..., None], 0, ids)


def _elmo_special(code, max_chars):
    import tensorflow as tf

    return tf.constant([_ELMO_BOW, code, _ELMO_EOW] + [_ELMO_PAD] * (max_chars - 3))


def _byte_ids(tokens, max_chars):
    import tensorflow as tf

    raw = tf.cast(tf.io.decode_raw(tokens, tf.uint8, fixed_length=max_chars), tf.int32)
    length = tf.minimum(tf.strings.length(tokens), max_chars)[..., None]
    return tf.where(tf.range(max_chars) < length, raw + 1, 0)
