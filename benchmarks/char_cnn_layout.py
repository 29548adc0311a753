"""Forward+backward time of `CharCNN` (tokens folded into the batch, Conv1D) against Conv2D.

    python benchmarks/char_cnn_layout.py [--batch-size 32] [--tokens 20] [--config elmo_original]

`CharCNN` folds tokens into the batch axis and runs `Conv1D`. The alternative
keeps `(batch, tokens, characters, embedding)` and convolves with `(1, width)`
`Conv2D` kernels, bilm-tf's layout. Both run with the same weights (outputs
checked equal; embeddings frozen), interleaved in one run on the current Keras
backend. A ratio below 1 means the folded layout is faster.
"""

import argparse
import os
import sys

import keras
import numpy as np
from keras import ops

sys.path.insert(0, os.path.dirname(__file__))
from _timing import gradient_step  # noqa: E402
from _timing import interleaved_medians  # noqa: E402

from keras_deepblocks.layers import CharCNN  # noqa: E402
from keras_deepblocks.zoo.char_cnn_presets import CHAR_CNN_CONFIGS  # noqa: E402


class Conv2DCharCNN(keras.layers.Layer):
    """The same computation in bilm-tf's layout: (1, width) Conv2D kernels."""

    def __init__(self, filters, embedding_dim, num_characters, activation, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(num_characters, embedding_dim)
        self.convolutions = [keras.layers.Conv2D(n, (1, width)) for width, n in filters]
        self.activation = keras.activations.get(activation)

    def call(self, ids):
        embedded = self.embedding(ids)
        pooled = [ops.max(conv(embedded), axis=2) for conv in self.convolutions]
        return self.activation(ops.concatenate(pooled, axis=-1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--config", default="elmo_original", choices=sorted(CHAR_CNN_CONFIGS))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    config = CHAR_CNN_CONFIGS[args.config]
    chars = config["max_characters_per_token"]
    arguments = (
        config["filters"],
        config["embedding"]["dim"],
        config["n_characters"],
        config["activation"],
    )
    shape = (args.batch_size, args.tokens, chars)
    ids = np.random.default_rng(0).integers(1, config["n_characters"], size=shape).astype("int32")
    models = {}
    layers = {"char_cnn_folded": CharCNN(*arguments), "conv2d_layout": Conv2DCharCNN(*arguments)}
    for name, layer in layers.items():
        models[name] = keras.Sequential([keras.Input(shape[1:], dtype="int32"), layer])
    for layer in layers.values():
        # Frozen embeddings: the layouts differ in the convolutions only.
        layer.embedding.trainable = False
    _share_weights(layers["char_cnn_folded"], layers["conv2d_layout"])
    outputs = [ops.convert_to_numpy(model(ids)) for model in models.values()]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-4)

    steps = {name: gradient_step(model, ids) for name, model in models.items()}
    medians, _ = interleaved_medians(steps, rounds=args.rounds)
    print(
        f"backend={keras.backend.backend()} config={args.config} "
        f"ids={shape} filters={sum(n for _, n in config['filters'])}"
    )
    for name, seconds in medians.items():
        print(f"  {name:<16} {seconds * 1e3:8.2f} ms per forward+backward (median)")
    ratio = medians["char_cnn_folded"] / medians["conv2d_layout"]
    print(f"  ratio char_cnn_folded / conv2d_layout = {ratio:.2f}")


def _share_weights(char_cnn, conv2d_layout):
    conv2d_layout.embedding.embeddings.assign(char_cnn.embedding.embeddings)
    for conv1d, conv2d in zip(char_cnn.convolutions, conv2d_layout.convolutions):
        conv2d.kernel.assign(ops.expand_dims(conv1d.kernel, axis=0))
        conv2d.bias.assign(conv1d.bias)


if __name__ == "__main__":
    main()
