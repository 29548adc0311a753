"""bilm-tf HDF5 weight files (ELMo) -> `char_cnn_highway_encoder` and `elmo_bilm` models.

bilm-tf (github.com/allenai/bilm-tf) and AllenNLP publish ELMo weights as
HDF5 files holding the character CNN (`char_embed`, `CNN/W_cnn_i`), its
highway layers (`CNN_high_k/W_carry`, `W_transform`), the projection
(`CNN_proj/W_proj`) and the LSTMs of the forward (`RNN_0`) and backward
(`RNN_1`) language models (`RNN_d/RNN/MultiRNNCell/Cell{i}/LSTMCell/W_0`,
`B`, `W_P_0`). An encoder reads the first three; a biLM reads all.
"""

import os

import numpy as np

from keras_deepblocks.layers import ElmoLSTM
from keras_deepblocks.layers import Highway


def load_bilm_weights(model, path):
    """Loads a bilm-tf HDF5 weight file into an encoder or biLM `model`.

    bilm-tf stores matrices as `(inputs, outputs)`, the orientation of Keras
    kernels. Its highway "carry" weights feed the gate applied to the
    transformed path, so `[W_transform | W_carry]` becomes our fused
    `[W_h | W_t]`. `char_embed` lacks the padding row 0, which is set to
    zeros. Each LSTM's `W_0` is `[input; recurrent]` rows with TensorFlow's
    gate order `i, j, f, o`, which becomes Keras's `i, f, j, o`, and the
    forget bias gains the 1 TensorFlow added at run time. All arrays are
    checked before any weight is assigned; a missing key or a wrong shape
    raises a `ValueError` naming the key.

    Args:
        model: A model from `char_cnn_highway_encoder` or `elmo_bilm` (the
            LSTMs are read if it has an `ElmoLSTM` layer).
        path: Path of the HDF5 file.
    """
    import h5py

    path = os.fspath(path)
    try:
        with h5py.File(path, "r") as file:
            reader = _ArrayReader(file, path)
            values = _char_cnn_values(reader, model.get_layer("char_cnn"))
            highways = [layer for layer in model.layers if isinstance(layer, Highway)]
            values += _highway_values(reader, highways)
            values += _projection_values(reader, _optional_layer(model, "projection"))
            for lstm in (layer for layer in model.layers if isinstance(layer, ElmoLSTM)):
                values += _lstm_values(reader, lstm)
    except BilmWeightsError:
        raise
    except FileNotFoundError:
        raise
    except (OSError, KeyError, RuntimeError, TypeError, ValueError) as error:
        # h5py's messages for a truncated or foreign file do not name it.
        raise DamagedBilmFileError(
            f"Could not read the bilm-tf weight file {path}: {type(error).__name__}: {error}. "
            "It is truncated or not an HDF5 file; get it again."
        ) from error
    for variable, value in values:
        variable.assign(value)


class BilmWeightsError(ValueError):
    """A bilm-tf weight file is damaged or does not fit the encoder (the message names it)."""


class DamagedBilmFileError(BilmWeightsError):
    """The file itself cannot be read (as opposed to not fitting the config)."""


def _char_cnn_values(reader, char_cnn):
    rows = (char_cnn.num_characters - 1, char_cnn.embedding_dim)
    embedding = reader.read("char_embed", rows)
    padding_row = np.zeros_like(embedding[:1])
    values = [(char_cnn.embedding.embeddings, np.concatenate([padding_row, embedding]))]
    for i, conv in enumerate(char_cnn.convolutions):
        # bilm-tf's Conv2D kernels are (1, width, embedding, filters).
        kernel = reader.read(f"CNN/W_cnn_{i}", (1, *conv.kernel.shape))[0]
        values.append((conv.kernel, kernel))
        values.append((conv.bias, reader.read(f"CNN/b_cnn_{i}", conv.bias.shape)))
    reader.expect_absent(f"CNN/W_cnn_{len(char_cnn.convolutions)}", "config['filters']")
    return values


def _highway_values(reader, highways):
    values = []
    for i, highway in enumerate(highways):
        width = highway.kernel.shape[0]
        parts = ("transform", "carry")  # -> [W_h | W_t]
        kernel = [reader.read(f"CNN_high_{i}/W_{part}", (width, width)) for part in parts]
        bias = [reader.read(f"CNN_high_{i}/b_{part}", (width,)) for part in parts]
        values.append((highway.kernel, np.concatenate(kernel, axis=1)))
        values.append((highway.bias, np.concatenate(bias)))
    reader.expect_absent(f"CNN_high_{len(highways)}/W_carry", "config['n_highway']")
    return values


def _projection_values(reader, projection):
    if projection is None:
        reader.expect_absent("CNN_proj/W_proj", "config['projection_dim']")
        return []
    return [
        (projection.kernel, reader.read("CNN_proj/W_proj", projection.kernel.shape)),
        (projection.bias, reader.read("CNN_proj/b_proj", projection.bias.shape)),
    ]


def _lstm_values(reader, lstm):
    values = []
    for direction, rnns in enumerate((lstm.forward_layers, lstm.backward_layers)):
        for i, rnn in enumerate(rnns):
            cell, prefix = rnn.cell, f"RNN_{direction}/RNN/MultiRNNCell/Cell{i}/LSTMCell"
            inputs, gates = cell.kernel.shape
            fused = reader.read(f"{prefix}/W_0", (inputs + cell.output_size, gates))
            bias = _keras_gate_order(reader.read(f"{prefix}/B", (gates,)))
            bias[cell.units : 2 * cell.units] += 1.0  # TensorFlow's forget_bias
            values += [
                (cell.kernel, _keras_gate_order(fused[:inputs])),
                (cell.recurrent_kernel, _keras_gate_order(fused[inputs:])),
                (cell.bias, bias),
            ]
            if cell.projection_dim is None:
                reader.expect_absent(f"{prefix}/W_P_0", "options['lstm']['projection_dim']")
            else:
                shape = cell.projection_kernel.shape
                values.append((cell.projection_kernel, reader.read(f"{prefix}/W_P_0", shape)))
        extra_layer = f"RNN_{direction}/RNN/MultiRNNCell/Cell{len(rnns)}/LSTMCell/W_0"
        reader.expect_absent(extra_layer, "options['lstm']['n_layers']")
    return values


def _keras_gate_order(array):
    """TensorFlow's gate blocks `i, j, f, o` (last axis) as Keras's `i, f, j, o`."""
    i, j, f, o = np.split(array, 4, axis=-1)
    return np.concatenate([i, f, j, o], axis=-1)


class _ArrayReader:
    def __init__(self, file, path):
        self.file = file
        self.path = path

    def read(self, key, shape):
        dataset = self.file.get(key)
        if dataset is None:
            raise BilmWeightsError(f"bilm-tf weight file {self.path} has no array {key!r}.")
        if not hasattr(dataset, "shape") or not np.issubdtype(dataset.dtype, np.number):
            raise BilmWeightsError(
                f"{key!r} of bilm-tf weight file {self.path} is not a numeric array."
            )
        if tuple(dataset.shape) != tuple(shape):
            raise BilmWeightsError(
                f"Array {key!r} of {self.path} has shape {tuple(dataset.shape)}; the encoder "
                f"config needs {tuple(shape)}."
            )
        return dataset[...].astype("float32")

    def expect_absent(self, key, option):
        if key in self.file:
            raise BilmWeightsError(
                f"bilm-tf weight file {self.path} holds {key!r}, which the model has no "
                f"place for: check {option}."
            )


def _optional_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None
