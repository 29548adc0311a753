import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class RemoveSentenceBoundaries(keras.layers.Layer):
    """Drops the `<S>` and `</S>` positions that `char_ids(..., sentence_boundaries=True)` added.

    Each row holds `<S>`, its words, `</S>`, then padding. The output keeps
    the words only, shifted to the start: `(batch, tokens - 2, ...)`, zero and
    masked after each row's last word (AllenNLP's
    `remove_sentence_boundaries`). Without a mask every row is taken to be
    full.

    Call arguments:
        inputs: Tensor of shape `(batch, tokens, ...)`.
        mask: Optional boolean mask `(batch, tokens)`, True on the
            boundaries and words.

    Example:

    >>> x = np.arange(8, dtype="float32").reshape(2, 4, 1)
    >>> mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)
    >>> ops.convert_to_numpy(RemoveSentenceBoundaries()(x, mask=mask))[..., 0].tolist()
    [[1.0, 2.0], [5.0, 0.0]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) < 2 or (input_shape[1] is not None and input_shape[1] < 2):
            raise ValueError(
                "RemoveSentenceBoundaries needs inputs of shape (batch, tokens, ...) with "
                f"tokens >= 2 (`<S>` and `</S>`), received: input shape {tuple(input_shape)}."
            )

    def call(self, inputs, mask=None):
        words = inputs[:, 1:-1]
        if mask is None:
            return words
        keep = self.compute_mask(inputs, mask)
        for _ in inputs.shape[2:]:
            keep = keep[..., None]
        return words * ops.cast(keep, inputs.dtype)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        num_words = ops.sum(ops.cast(mask, "int32"), axis=1) - 2
        # 0, 1, ..., tokens - 3 in each row (an arange needs the length known)
        positions = ops.cumsum(ops.ones_like(mask[:, 2:], dtype="int32"), axis=1) - 1
        return positions < num_words[:, None]

    def compute_output_shape(self, input_shape):
        tokens = None if input_shape[1] is None else input_shape[1] - 2
        return (input_shape[0], tokens, *input_shape[2:])
