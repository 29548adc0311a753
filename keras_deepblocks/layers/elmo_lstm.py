import keras
from keras import ops

from keras_deepblocks.initializers.advancing import advancing
from keras_deepblocks.layers.projected_lstm_cell import ProjectedLSTMCell
from keras_deepblocks.utils import validation


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class ElmoLSTM(keras.layers.Layer):
    """The two language-model LSTMs of ELMo: forward and backward stacks side by side.

    A forward and a backward stack of `num_layers` `ProjectedLSTMCell` RNNs
    read the same token vectors independently (unlike `Bidirectional`, the
    backward stack never sees the forward one), as in bilm-tf and AllenNLP.
    With `skip_connections`, every layer after the first adds its input to
    its output. The backward stack reads each sequence from its last real
    token to its first: padding at the end is skipped in both directions.

    With `stateful=True` the layer keeps, for each of the first
    `max_batch_size` rows, the states each stack ended a call with, and the
    next call starts from them: feeding a long text as consecutive batches
    of sentences, row `k` of each batch continues row `k` of the previous
    one, the behaviour the published ELMo activations were computed with.
    Rows beyond a smaller batch and rows of padding only keep their states.
    `reset_states()` sets them to zero.

    Args:
        units: Width of each cell state (ELMo's `lstm.dim`).
        projection_dim: Width of each layer's output per direction; `None`
            for no projection. Defaults to `None`.
        num_layers: Layers per direction. Defaults to `2`.
        cell_clip: See `ProjectedLSTMCell`. Defaults to `None`.
        projection_clip: See `ProjectedLSTMCell`. Defaults to `None`.
        skip_connections: Residual connections around layers 2 and up.
            Defaults to `False`.
        stateful: Carry the states from call to call. Defaults to `False`.
        max_batch_size: Rows of state kept with `stateful=True`; larger
            batches raise a `ValueError`. Defaults to `128` (bilm-tf's value).
        kernel_initializer: Initializer of the input kernels.
        recurrent_initializer: Initializer of the recurrent kernels.
        projection_initializer: Initializer of the projections.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: Token vectors of shape `(batch, tokens, features)`.
        mask: Optional boolean mask `(batch, tokens)`, False on padding
            tokens, which must come after every real token of their row.

    Returns:
        A list of `num_layers` tensors of shape `(batch, tokens, 2 * width)`,
        the forward then the backward output of each layer, zero (and
        masked) at padding tokens.

    Example:

    >>> layer = ElmoLSTM(32, projection_dim=8, num_layers=2, skip_connections=True)
    >>> [tuple(y.shape) for y in layer(np.zeros((2, 5, 8)))]
    [(2, 5, 16), (2, 5, 16)]
    """

    def __init__(
        self,
        units,
        projection_dim=None,
        num_layers=2,
        cell_clip=None,
        projection_clip=None,
        skip_connections=False,
        stateful=False,
        max_batch_size=128,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        projection_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_layers = validation.positive_int(num_layers, "num_layers")
        self.skip_connections = validation.boolean(skip_connections, "skip_connections")
        self.stateful = validation.boolean(stateful, "stateful")
        self.max_batch_size = validation.positive_int(max_batch_size, "max_batch_size")
        self.kernel_initializer = validation.keras_object(
            kernel_initializer, "kernel_initializer", "initializer"
        )
        self.recurrent_initializer = validation.keras_object(
            recurrent_initializer, "recurrent_initializer", "initializer"
        )
        self.projection_initializer = validation.keras_object(
            projection_initializer, "projection_initializer", "initializer"
        )
        # Shared by all cells, each drawing anew: Keras's initializers repeat
        # their draws, which would give every cell the same weights.
        cell_args = dict(
            units=units,
            projection_dim=projection_dim,
            cell_clip=cell_clip,
            projection_clip=projection_clip,
            kernel_initializer=advancing(self.kernel_initializer),
            recurrent_initializer=advancing(self.recurrent_initializer),
            projection_initializer=advancing(self.projection_initializer),
        )
        self.forward_layers = [self._rnn(cell_args, "forward", i) for i in range(self.num_layers)]
        self.backward_layers = [self._rnn(cell_args, "backward", i) for i in range(self.num_layers)]
        cell = self.forward_layers[0].cell
        self.units = cell.units
        self.projection_dim = cell.projection_dim
        self.cell_clip = cell.cell_clip
        self.projection_clip = cell.projection_clip
        self.output_width = cell.output_size
        self.states = None
        self.supports_masking = True

    def _rnn(self, cell_args, direction, index):
        cell = ProjectedLSTMCell(**cell_args, name=f"{direction}_cell_{index}")
        return keras.layers.RNN(
            cell,
            return_sequences=True,
            return_state=True,
            go_backwards=direction == "backward",
            zero_output_for_mask=True,
            name=f"{direction}_{index}",
        )

    def build(self, input_shape):
        features = validation.known_channels(input_shape, -1, "ElmoLSTM")
        for rnns in (self.forward_layers, self.backward_layers):
            width = features
            for rnn in rnns:
                rnn.build((input_shape[0], input_shape[1], width))
                width = self.output_width
        if self.stateful:
            self.states = [
                self.add_weight(
                    name=f"{rnn.name}_state_{part}",
                    shape=(self.max_batch_size, size),
                    initializer="zeros",
                    trainable=False,
                )
                for rnn in self.forward_layers + self.backward_layers
                for part, size in zip("hc", rnn.cell.state_size)
            ]

    def call(self, inputs, mask=None):
        if mask is not None:
            mask = ops.cast(mask, "bool")
        batch_size = self._checked_batch_size(inputs)
        initial_states = self._initial_states(batch_size)
        final_states = []
        stacks = []  # the forward, then the backward layers' outputs
        for rnns in (self.forward_layers, self.backward_layers):
            x, layers = inputs, []
            for rnn in rnns:
                h, *state = rnn(x, initial_state=next(initial_states), mask=mask)
                if rnn.go_backwards:
                    h = ops.flip(h, axis=1)  # Keras gives the outputs in reading order
                if self.skip_connections and layers:
                    h = h + x
                final_states += state
                layers.append(h)
                x = h
            stacks.append(layers)
        if self.stateful:
            self._keep_states(final_states, batch_size)
        # Zero at padding: the RNNs give zeros there, and residuals add zeros.
        return [ops.concatenate(pair, axis=-1) for pair in zip(*stacks)]

    def _checked_batch_size(self, inputs):
        batch_size = inputs.shape[0]
        message = (
            f"A stateful ElmoLSTM keeps states for `max_batch_size={self.max_batch_size}` rows, "
            "received a batch of {}. Pass a larger `max_batch_size`."
        )
        if self.stateful and batch_size is not None and batch_size > self.max_batch_size:
            raise ValueError(message.format(batch_size))
        if self.stateful and batch_size is None and keras.backend.backend() == "tensorflow":
            # A graph traced for any batch size (TF retraces `predict` so)
            # checks when it runs.
            import tensorflow as tf

            tf.debugging.assert_less_equal(
                tf.shape(inputs)[0], self.max_batch_size, message=message.format("more")
            )
        return ops.shape(inputs)[0]

    def _initial_states(self, batch_size):
        """`[h, c]` for each RNN in order: zeros, or the kept states of the first rows."""
        for i in range(2 * self.num_layers):
            if self.states is None:
                yield None
            else:
                # Copies: PyTorch's autograd refuses views of variables that
                # `_keep_states` assigns before the backward pass.
                yield [
                    ops.copy(ops.convert_to_tensor(v)[:batch_size])
                    for v in self.states[2 * i : 2 * i + 2]
                ]

    def _keep_states(self, final_states, batch_size):
        for variable, state in zip(self.states, final_states):
            kept = ops.convert_to_tensor(variable)[batch_size:]
            variable.assign(ops.concatenate([ops.stop_gradient(state), kept], axis=0))

    def reset_states(self):
        """Sets the kept states to zero (with `stateful=True`; otherwise does nothing)."""
        for variable in self.states or ():
            variable.assign(ops.zeros(variable.shape, variable.dtype))

    def compute_mask(self, inputs, mask=None):
        return [mask] * self.num_layers

    def compute_output_shape(self, input_shape):
        return [(*input_shape[:-1], 2 * self.output_width)] * self.num_layers

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "projection_dim": self.projection_dim,
                "num_layers": self.num_layers,
                "cell_clip": self.cell_clip,
                "projection_clip": self.projection_clip,
                "skip_connections": self.skip_connections,
                "stateful": self.stateful,
                "max_batch_size": self.max_batch_size,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "projection_initializer": keras.initializers.serialize(self.projection_initializer),
            }
        )
        return config
