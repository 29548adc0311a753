import keras
from keras import ops

from keras_deepblocks.utils import validation


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class CharCNN(keras.layers.Layer):
    """Character CNN: one vector per token from its character ids.

    Embeds each character, runs parallel convolutions of several widths along
    the characters of each token, takes the max over character positions and
    applies `activation` to the pooled result (for a monotonic activation
    such as ReLU or tanh this equals pooling the activated maps, as in Kim et
    al. 2016 and bilm-tf). The output width is the total number of filters.

    Tokens are folded into the batch axis and convolved with `Conv1D` layers
    (`benchmarks/char_cnn_layout.py`: faster than `(1, width)` Conv2D kernels
    over `(batch, tokens, characters, embedding)` on the JAX and TensorFlow
    backends). Id 0 marks a padding token: a token whose ids are all 0 is
    masked in the output mask.

    Args:
        filters: List of `(width, num_filters)` pairs, e.g. ELMo's
            `[[1, 32], [2, 32], ..., [7, 1024]]`.
        embedding_dim: Size of the character embedding. Defaults to `16`.
        num_characters: Rows of the character embedding (largest id + 1).
            Defaults to `262` (the ELMo scheme).
        activation: Applied to the pooled features. Defaults to `"relu"`.
        embeddings_initializer: Initializer of the character embedding.
        kernel_initializer: Initializer of the convolution kernels.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: int tensor of character ids, shape
            `(batch, tokens, characters)`, with at least as many characters as
            the widest filter.

    Example:

    >>> layer = CharCNN([[1, 4], [2, 8]], embedding_dim=4)
    >>> tuple(layer(np.ones((2, 3, 10), "int32")).shape)
    (2, 3, 12)
    """

    def __init__(
        self,
        filters,
        embedding_dim=16,
        num_characters=262,
        activation="relu",
        embeddings_initializer="uniform",
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _checked_filters(filters)
        self.embedding_dim = validation.positive_int(embedding_dim, "embedding_dim")
        self.num_characters = validation.positive_int(num_characters, "num_characters")
        self.activation = validation.keras_object(activation, "activation", "activation")
        self.embeddings_initializer = validation.keras_object(
            embeddings_initializer, "embeddings_initializer", "initializer"
        )
        self.kernel_initializer = validation.keras_object(
            kernel_initializer, "kernel_initializer", "initializer"
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)
        self.supports_masking = True

    def build(self, input_shape):
        num_chars = input_shape[-1]
        widest = max(width for width, _ in self.filters)
        if num_chars is not None and num_chars < widest:
            raise ValueError(
                f"The input of CharCNN must have at least {widest} characters per token "
                f"(its widest filter), received: input shape {tuple(input_shape)}."
            )
        self.embedding = keras.layers.Embedding(
            self.num_characters,
            self.embedding_dim,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name="char_embed",
        )
        self.embedding.build((None, num_chars))
        embedded_shape = (None, num_chars, self.embedding_dim)
        self.convolutions = []
        for i, (width, num_filters) in enumerate(self.filters):
            conv = keras.layers.Conv1D(
                num_filters,
                width,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name=f"conv_{i}",
            )
            conv.build(embedded_shape)
            self.convolutions.append(conv)

    def call(self, inputs):
        batch, tokens, num_chars = ops.shape(inputs)
        embedded = self.embedding(ops.reshape(inputs, (-1, num_chars)))
        pooled = [ops.max(conv(embedded), axis=1) for conv in self.convolutions]
        features = self.activation(ops.concatenate(pooled, axis=-1))
        return ops.reshape(features, (batch, tokens, features.shape[-1]))

    def compute_mask(self, inputs, mask=None):
        return ops.any(ops.not_equal(inputs, 0), axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], sum(n for _, n in self.filters))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": [list(pair) for pair in self.filters],
                "embedding_dim": self.embedding_dim,
                "num_characters": self.num_characters,
                "activation": keras.activations.serialize(self.activation),
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


def _checked_filters(filters):
    """`filters` as a list of `(width, num_filters)` tuples of Python ints."""
    message = (
        "`filters` must be a non-empty list of (width, num_filters) pairs of "
        f"positive integers, e.g. [[1, 32], [2, 64]]; received: {filters!r}."
    )
    if not isinstance(filters, (list, tuple)) or not filters:
        raise ValueError(message)
    checked = []
    for pair in filters:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(message)
        try:
            checked.append(tuple(validation.positive_int(v, "filters") for v in pair))
        except ValueError:
            raise ValueError(message) from None
    return checked
