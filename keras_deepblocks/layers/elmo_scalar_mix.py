import keras
from keras import ops

from keras_deepblocks.utils import validation


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class ElmoScalarMix(keras.layers.Layer):
    """ELMo's task-specific weighting of the biLM layers (Peters et al. 2018, eq. 1).

    `gamma * sum_k softmax(w)_k * h_k`: one learned scalar weight per layer,
    softmax-normalized, and a learned scale `gamma`. With `layer_norm=True`
    each layer is first normalized over all its unmasked entries in the
    batch (mean 0, variance 1), as AllenNLP's `ScalarMix(do_layer_norm=True)`.

    Args:
        num_layers: Number of tensors to mix; `None` to take it from the
            input at build time. Defaults to `None`.
        layer_norm: Normalize each layer first. Defaults to `False`.
        initial_weights: Starting values of the unnormalized weights `w`, one
            per layer; `None` for zeros (an equal mix). Defaults to `None`.
        initial_gamma: Starting value of `gamma`. Defaults to `1.0`.
        **kwargs: Base layer arguments such as `name`, `dtype` and
            `trainable` (`False` keeps the mix fixed).

    Call arguments:
        inputs: A list of tensors of the same shape `(batch, tokens, dim)`.
        mask: Optional boolean mask `(batch, tokens)` (or a list of them,
            the first is used): padding tokens are left out of the layer
            norm's statistics and zero in the output.

    Example:

    >>> layers = [np.ones((2, 3, 4)), 3 * np.ones((2, 3, 4))]
    >>> float(ops.convert_to_numpy(ElmoScalarMix()(layers))[0, 0, 0])
    2.0
    """

    def __init__(
        self, num_layers=None, layer_norm=False, initial_weights=None, initial_gamma=1.0, **kwargs
    ):
        super().__init__(**kwargs)
        if num_layers is not None:
            num_layers = validation.positive_int(num_layers, "num_layers")
        if initial_weights is not None:
            if not isinstance(initial_weights, (list, tuple)):
                raise TypeError(
                    "`initial_weights` must be None or a list of numbers, one per layer, "
                    f"received: {initial_weights!r}."
                )
            if not initial_weights:
                raise ValueError(
                    "`initial_weights` must be None or a non-empty list of numbers, one per "
                    "layer, received: []."
                )
            initial_weights = [
                validation.finite_float(w, f"initial_weights[{i}]")
                for i, w in enumerate(initial_weights)
            ]
            if num_layers is not None and len(initial_weights) != num_layers:
                raise ValueError(
                    f"`initial_weights` must have `num_layers={num_layers}` entries, "
                    f"received {len(initial_weights)}: {initial_weights!r}."
                )
            num_layers = len(initial_weights)
        self.num_layers = num_layers
        self.layer_norm = validation.boolean(layer_norm, "layer_norm")
        self.initial_weights = initial_weights
        self.initial_gamma = validation.finite_float(initial_gamma, "initial_gamma")
        self.supports_masking = True

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not all(
            isinstance(shape, (list, tuple)) for shape in input_shape
        ):
            raise ValueError(
                "ElmoScalarMix must be called on a list of tensors (the biLM layers), "
                f"received one input of shape {input_shape}."
            )
        if self.num_layers is not None and len(input_shape) != self.num_layers:
            raise ValueError(
                f"ElmoScalarMix was made for `num_layers={self.num_layers}` tensors, "
                f"received {len(input_shape)}."
            )
        if len({tuple(shape) for shape in input_shape}) > 1:
            raise ValueError(
                "ElmoScalarMix needs tensors of the same shape, received shapes "
                f"{[tuple(shape) for shape in input_shape]}."
            )
        self.num_layers = len(input_shape)
        initial = self.initial_weights or [0.0] * self.num_layers
        self.scalar_weights = self.add_weight(
            name="scalar_weights",
            shape=(self.num_layers,),
            initializer=keras.initializers.Constant(initial),
        )
        self.gamma = self.add_weight(
            name="gamma", shape=(), initializer=keras.initializers.Constant(self.initial_gamma)
        )

    def call(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        weights = ops.softmax(self.scalar_weights)
        mixed = 0.0
        for k, tensor in enumerate(inputs):
            if self.layer_norm:
                tensor = _masked_standardize(tensor, mask)
            mixed = mixed + weights[k] * tensor
        mixed = self.gamma * mixed
        if mask is not None:
            mixed = mixed * ops.cast(ops.expand_dims(mask, -1), mixed.dtype)
        return mixed

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            return mask[0]
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "layer_norm": self.layer_norm,
                "initial_weights": self.initial_weights,
                "initial_gamma": self.initial_gamma,
            }
        )
        return config


def _masked_standardize(tensor, mask):
    """`tensor` with mean 0 and variance 1 over all entries of unmasked tokens."""
    if mask is None:
        weight = ops.ones_like(tensor)
    else:
        weight = ops.broadcast_to(
            ops.cast(ops.expand_dims(mask, -1), tensor.dtype), ops.shape(tensor)
        )
    count = ops.sum(weight)
    mean = ops.sum(tensor * weight) / count
    variance = ops.sum(ops.square((tensor - mean) * weight)) / count
    return (tensor - mean) / ops.sqrt(variance + 1e-12)
