import keras
from keras import ops

from keras_deepblocks.utils import validation


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class ProjectedLSTMCell(keras.layers.Layer):
    """LSTM cell with a projected output and clipped states (an "LSTMP" cell).

    The cell of ELMo's language models (TensorFlow 1's `LSTMCell` with
    `num_proj`, `cell_clip` and `proj_clip`; Sak et al. 2014):

    ```
    i, f, g, o = split(x K + h R + b)
    c' = clip(sigmoid(f) * c + sigmoid(i) * tanh(g), cell_clip)
    h' = clip((sigmoid(o) * tanh(c')) P, projection_clip)
    ```

    The recurrent state `h` is the projected output, so a wide cell
    (`units`) costs a narrow recurrence (`projection_dim`). Gates are in
    Keras's order `i, f, g, o`; the forget-gate bias starts at 1 with
    `unit_forget_bias`, the constant TensorFlow 1 added at run time. Use it
    in `keras.layers.RNN`, like `keras.layers.LSTMCell`.

    Args:
        units: Width of the cell state `c`.
        projection_dim: Width of the output and of `h`; `None` for no
            projection (then `h` has `units` entries). Defaults to `None`.
        cell_clip: Clip the cell state to `[-cell_clip, cell_clip]`; `None`
            for no clipping. Defaults to `None`.
        projection_clip: Clip the output likewise. Defaults to `None`.
        kernel_initializer: Initializer of the input kernel `K`. Defaults to
            `"glorot_uniform"`.
        recurrent_initializer: Initializer of the recurrent kernel `R`.
            Defaults to `"orthogonal"`.
        projection_initializer: Initializer of the projection `P`. Defaults to
            `"glorot_uniform"`.
        bias_initializer: Initializer of the bias `b`. Defaults to `"zeros"`.
        unit_forget_bias: Add 1 to the forget-gate bias at initialization.
            Defaults to `True`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: Tensor of shape `(batch, input_dim)`: one time step.
        states: `[h, c]`, of shapes `(batch, output_dim)` and `(batch, units)`.

    Returns:
        `(h', [h', c'])`.

    Example:

    >>> rnn = keras.layers.RNN(ProjectedLSTMCell(32, projection_dim=8), return_sequences=True)
    >>> tuple(rnn(np.zeros((2, 5, 4))).shape)
    (2, 5, 8)
    """

    def __init__(
        self,
        units,
        projection_dim=None,
        cell_clip=None,
        projection_clip=None,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        projection_initializer="glorot_uniform",
        bias_initializer="zeros",
        unit_forget_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = validation.positive_int(units, "units")
        self.projection_dim = _optional(projection_dim, "projection_dim", validation.positive_int)
        self.cell_clip = _optional(cell_clip, "cell_clip", _positive_float)
        self.projection_clip = _optional(projection_clip, "projection_clip", _positive_float)
        self.kernel_initializer = validation.keras_object(
            kernel_initializer, "kernel_initializer", "initializer"
        )
        self.recurrent_initializer = validation.keras_object(
            recurrent_initializer, "recurrent_initializer", "initializer"
        )
        self.projection_initializer = validation.keras_object(
            projection_initializer, "projection_initializer", "initializer"
        )
        self.bias_initializer = validation.keras_object(
            bias_initializer, "bias_initializer", "initializer"
        )
        self.unit_forget_bias = validation.boolean(unit_forget_bias, "unit_forget_bias")
        self.output_size = self.projection_dim or self.units
        self.state_size = [self.output_size, self.units]

    def build(self, input_shape):
        input_dim = validation.known_channels(input_shape, -1, "ProjectedLSTMCell")
        gates = 4 * self.units
        self.kernel = self.add_weight(
            name="kernel", shape=(input_dim, gates), initializer=self.kernel_initializer
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.output_size, gates),
            initializer=self.recurrent_initializer,
        )
        self.bias = self.add_weight(name="bias", shape=(gates,), initializer=self._bias_init)
        if self.projection_dim is not None:
            self.projection_kernel = self.add_weight(
                name="projection_kernel",
                shape=(self.units, self.projection_dim),
                initializer=self.projection_initializer,
            )

    def call(self, inputs, states):
        h, c = states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel) + self.bias
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        if self.cell_clip is not None:
            c = ops.clip(c, -self.cell_clip, self.cell_clip)
        h = ops.sigmoid(o) * ops.tanh(c)
        if self.projection_dim is not None:
            h = ops.matmul(h, self.projection_kernel)
        if self.projection_clip is not None:
            h = ops.clip(h, -self.projection_clip, self.projection_clip)
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def get_build_config(self):
        # None: a loaded RNN builds its cell in its own name scope. Built from
        # this config while deserializing, the cell would lose the RNN's name
        # in its variable paths (`rnn/cell/kernel` loading as `cell/kernel`).
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "projection_dim": self.projection_dim,
                "cell_clip": self.cell_clip,
                "projection_clip": self.projection_clip,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "projection_initializer": keras.initializers.serialize(self.projection_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "unit_forget_bias": self.unit_forget_bias,
            }
        )
        return config

    def _bias_init(self, shape, dtype=None):
        bias = self.bias_initializer(shape, dtype=dtype)
        if not self.unit_forget_bias:
            return bias
        forget = ops.concatenate(
            [ops.zeros((self.units,)), ops.ones((self.units,)), ops.zeros((2 * self.units,))]
        )
        return bias + ops.cast(forget, bias.dtype)


def _optional(value, name, check):
    return None if value is None else check(value, name)


def _positive_float(value, name):
    return validation.float_in_range(value, name, 0.0, low_open=True)
