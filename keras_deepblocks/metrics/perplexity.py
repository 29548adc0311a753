import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class Perplexity(keras.metrics.MeanMetricWrapper):
    """Perplexity of a word-level language model: `exp(mean cross-entropy)`.

    The mean runs over every predicted token (a `(batch, time)` target gives
    one cross-entropy per step), weighted by `sample_weight` and by the mask
    of `y_pred`, so padding tokens do not count.

    Args:
        from_logits: Whether `y_pred` holds logits rather than probabilities.
            Defaults to `False`.
        name: Metric name. Defaults to `"perplexity"`.
        dtype: Dtype of the metric's state.

    Example:

    >>> metric = Perplexity()
    >>> metric.update_state(np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]]))
    >>> float(metric.result())
    2.0
    """

    def __init__(self, from_logits=False, name="perplexity", dtype=None):
        super().__init__(
            keras.losses.sparse_categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
        )
        self.from_logits = from_logits

    def result(self):
        return ops.exp(super().result())

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "from_logits": self.from_logits}
