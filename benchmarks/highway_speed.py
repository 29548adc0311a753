"""Forward+backward time of `Highway` against Dense layers of the same FLOPs.

    python benchmarks/highway_speed.py [--width 1024] [--batch-size 1024]

Compares, interleaved in one run on the current Keras backend:
- `Highway(width)`: one fused matmul against `[W_h | W_t]`;
- `Dense(2 * width)`: the same matmul FLOPs, no gating (the speed of light);
- a naive highway: two separate `Dense(width)` layers and the formula.
Targets: Highway <= 1.1x Dense(2 * width) and <= 0.8x the naive form.
"""

import argparse
import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import gradient_step  # noqa: E402
from _timing import interleaved_medians  # noqa: E402

from keras_deepblocks.layers import Highway  # noqa: E402


class NaiveHighway(keras.layers.Layer):
    """The same math written as users would without a fused layer."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.transform = keras.layers.Dense(width, activation="relu")
        self.gate = keras.layers.Dense(width, activation="sigmoid")

    def call(self, x):
        t = self.gate(x)
        return self.transform(x) * t + x * (1.0 - t)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    x = np.random.default_rng(0).normal(size=(args.batch_size, args.width)).astype("float32")
    layers = {
        "highway": Highway(),
        "dense_2x": keras.layers.Dense(2 * args.width),
        "naive_highway": NaiveHighway(args.width),
    }
    steps = {}
    for name, layer in layers.items():
        model = keras.Sequential([keras.Input((args.width,)), layer])
        steps[name] = gradient_step(model, x)
    medians, _ = interleaved_medians(steps, rounds=args.rounds)

    print(f"backend={keras.backend.backend()} width={args.width} batch={args.batch_size}")
    for name, seconds in medians.items():
        print(f"  {name:<14} {seconds * 1e3:8.2f} ms per forward+backward (median)")
    vs_dense = medians["highway"] / medians["dense_2x"]
    vs_naive = medians["highway"] / medians["naive_highway"]
    print(f"highway / Dense({2 * args.width}):  {vs_dense:.3f}  (target <= 1.10)")
    print(f"highway / naive two-Dense: {vs_naive:.3f}  (target <= 0.80)")


if __name__ == "__main__":
    main()
