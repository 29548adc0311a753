"""bilm-tf's biLM in NumPy, read straight from a bilm-tf HDF5 weight file.

An independent reference for the encoder, `ElmoLSTM` and `elmo_bilm` (and, in
Keras's layout, `lstmp_step` for `ProjectedLSTMCell` and `ElmoLSTM`): it
follows bilm-tf's own graph (TensorFlow 1 `LSTMCell` with `num_proj`, gate
order `i, j, f, o` and `forget_bias=1` added at run time; `dynamic_rnn` with
sequence lengths; `tf.reverse_sequence` for the backward model; residual
connections from layer 2 up; states kept per row in `max_batch_size` rows).
"""

import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_elmo_encoder(ids, h5):
    """The character encoder: ids `(..., chars)` -> token vectors `(..., dim)`."""
    shape = ids.shape[:-1]
    ids = ids.reshape(-1, ids.shape[-1])
    kernel_shapes = [h5[f"CNN/W_cnn_{i}"].shape for i in range(len(h5["CNN"]) // 2)]
    table = np.concatenate([np.zeros((1, h5["char_embed"].shape[1])), h5["char_embed"][...]])
    embedded = table[ids]  # (words, chars, dim)
    pooled = []
    for i, (_, width, _, _) in enumerate(kernel_shapes):
        kernel, bias = h5[f"CNN/W_cnn_{i}"][0], h5[f"CNN/b_cnn_{i}"][...]
        positions = embedded.shape[1] - width + 1
        maps = sum(embedded[:, k : k + positions] @ kernel[k] for k in range(width)) + bias
        pooled.append(np.maximum(maps.max(axis=1), 0))
    x = np.concatenate(pooled, axis=-1)
    k = 0
    while f"CNN_high_{k}" in h5:
        layer = h5[f"CNN_high_{k}"]
        transformed = np.maximum(x @ layer["W_transform"][...] + layer["b_transform"][...], 0)
        gate = sigmoid(x @ layer["W_carry"][...] + layer["b_carry"][...])
        x = gate * transformed + (1 - gate) * x
        k += 1
    x = x @ h5["CNN_proj/W_proj"][...] + h5["CNN_proj/b_proj"][...]
    return x.reshape(*shape, -1)


def lstm_cell(x, h, c, W, B, P, cell_clip, proj_clip):
    """One step of TensorFlow 1's `LSTMCell(num_proj=...)`: returns `(h, c)`."""
    i, j, f, o = np.split(np.concatenate([x, h]) @ W + B, 4)
    c = sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(j)
    if cell_clip:
        c = np.clip(c, -cell_clip, cell_clip)
    h = sigmoid(o) * np.tanh(c)
    if P is not None:
        h = h @ P
    if proj_clip:
        h = np.clip(h, -proj_clip, proj_clip)
    return h, c


def lstmp_step(x, h, c, kernel, recurrent, bias, projection=None, cell_clip=None, proj_clip=None):
    """One step of `ProjectedLSTMCell` in Keras's layout (gates `i, f, g, o`, forget bias in
    `bias`): `(h', c')` and the unclipped `(h', c')`."""
    u = c.shape[-1]
    z = x @ kernel + h @ recurrent + bias
    i, f = sigmoid(z[:, :u]), sigmoid(z[:, u : 2 * u])
    g, o = np.tanh(z[:, 2 * u : 3 * u]), sigmoid(z[:, 3 * u :])
    raw_c = f * c + i * g
    new_c = raw_c if cell_clip is None else np.clip(raw_c, -cell_clip, cell_clip)
    raw_h = o * np.tanh(new_c)
    if projection is not None:
        raw_h = raw_h @ projection
    new_h = raw_h if proj_clip is None else np.clip(raw_h, -proj_clip, proj_clip)
    return new_h, new_c, raw_h, raw_c


class NumpyBiLM:
    """bilm-tf's biLM over batches of character ids; stateful like bilm-tf.

    `layers(ids)` returns bilm-tf's `lm_embeddings` without `<S>`/`</S>`:
    `(batch, n_layers + 1, words, 2 * projection_dim)`, zero after each row.
    """

    def __init__(self, h5, options, max_batch_size=128, stateful=True):
        self.h5 = h5
        self.lstm = options["lstm"]
        self.stateful = stateful
        self.cells = {}
        for d in range(2):
            for i in range(self.lstm["n_layers"]):
                cell = h5[f"RNN_{d}/RNN/MultiRNNCell/Cell{i}/LSTMCell"]
                P = cell["W_P_0"][...] if "W_P_0" in cell else None
                self.cells[d, i] = (cell["W_0"][...], cell["B"][...], P)
        width = self.lstm["projection_dim"]
        self.states = {
            key: (np.zeros((max_batch_size, width)), np.zeros((max_batch_size, self.lstm["dim"])))
            for key in self.cells
        }

    def layers(self, ids):
        ids = np.asarray(ids)
        batch, tokens = ids.shape[:2]
        lengths = (ids > 0).any(axis=-1).sum(axis=1)
        embedding = numpy_elmo_encoder(ids, self.h5).astype("float64")
        outputs = {0: [], 1: []}
        for d in range(2):
            x = embedding if d == 0 else _reverse_sequence(embedding, lengths)
            for i in range(self.lstm["n_layers"]):
                y = self._run(d, i, x, lengths)
                if self.lstm["use_skip_connections"] and i > 0:
                    y = y + x * _mask(lengths, tokens)[..., None]
                outputs[d].append(y if d == 0 else _reverse_sequence(y, lengths))
                x = y
        layers = [np.concatenate([embedding, embedding], axis=-1)]
        layers += [np.concatenate(pair, axis=-1) for pair in zip(outputs[0], outputs[1])]
        words = np.zeros((batch, len(layers), tokens - 2, layers[0].shape[-1]))
        for b, length in enumerate(lengths):
            for k, layer in enumerate(layers):
                words[b, k, : max(length - 2, 0)] = layer[b, 1 : length - 1]
        return words

    def _run(self, d, i, x, lengths):
        W, B, P = self.cells[d, i]
        h_all, c_all = self.states[d, i]
        y = np.zeros(x.shape[:2] + (h_all.shape[1],))
        new_h, new_c = h_all.copy(), c_all.copy()
        for b in range(x.shape[0]):
            h, c = (h_all[b], c_all[b]) if self.stateful else (0 * h_all[b], 0 * c_all[b])
            for t in range(lengths[b]):
                h, c = lstm_cell(
                    x[b, t], h, c, W, B, P, self.lstm["cell_clip"], self.lstm["proj_clip"]
                )
                y[b, t] = h
            new_h[b], new_c[b] = h, c
        if self.stateful:
            self.states[d, i] = (new_h, new_c)
        return y


def _reverse_sequence(x, lengths):
    """`tf.reverse_sequence`: each row's first `length` steps reversed, the rest kept."""
    y = x.copy()
    for b, length in enumerate(lengths):
        y[b, :length] = x[b, :length][::-1]
    return y


def _mask(lengths, tokens):
    return np.arange(tokens)[None, :] < np.asarray(lengths)[:, None]
