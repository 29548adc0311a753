"""ELMo biLM inference throughput (tokens/s) on each Keras backend.

    python benchmarks/elmo_throughput.py                          # all backends, elmo_small
    python benchmarks/elmo_throughput.py --options elmo_original --backends jax
    python benchmarks/elmo_throughput.py --batch-size 4 --tokens 5 --rounds 1   # smoke run

Each backend runs in a process of its own: `elmo_bilm(options)` (random
weights: the published models' shapes, without the download) and its
character encoder alone, on one batch of `--batch-size` sentences of
`--tokens` words (plus `<S>` and `</S>`) with `predict_on_batch` (a
`tf.function` on TensorFlow, `jax.jit` on JAX, eager PyTorch). The two are
timed interleaved in one run; tokens/s counts words, the boundaries not
included. On a GPU each backend uses it.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _timing import BACKENDS  # noqa: E402
from _timing import accelerator  # noqa: E402
from _timing import interleaved_medians  # noqa: E402
from _timing import use_backend  # noqa: E402

OPTIONS = ("elmo_small", "elmo_medium", "elmo_original")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", default="elmo_small", choices=OPTIONS)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--batch-size", type=int, default=32, help="sentences (default: 32)")
    parser.add_argument("--tokens", type=int, default=20, help="words per sentence (default: 20)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default: 5)")
    parser.add_argument("--repeats", type=int, default=3, help="calls per round (default: 3)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # child process
    return parser.parse_args(argv)


def measure(args):
    """`{"bilm": tokens/s, "encoder": tokens/s, ...}` on the current backend."""
    import keras
    import numpy as np

    from keras_deepblocks.zoo.elmo import elmo_bilm

    bilm = elmo_bilm(args.options)
    encoder = keras.Model(bilm.input, bilm.get_layer("projection").output)
    rng = np.random.default_rng(0)
    # Random bytes as characters: every word of every sentence is real.
    shape = (args.batch_size, args.tokens + 2, bilm.input.shape[-1])
    ids = rng.integers(1, 262, size=shape).astype("int32")
    steps = {
        "bilm": lambda: bilm.predict_on_batch(ids),
        "encoder": lambda: encoder.predict_on_batch(ids),
    }
    seconds, _ = interleaved_medians(steps, rounds=args.rounds, repeats=args.repeats, warmup=2)
    words = args.batch_size * args.tokens
    return {
        "backend": keras.backend.backend(),
        "device": accelerator() or "CPU",
        **{f"{name}_tokens_per_s": words / s for name, s in seconds.items()},
        **{f"{name}_ms": 1000 * s for name, s in seconds.items()},
    }


def main(argv=None):
    args = parse_args(argv)
    if args.json:
        print(json.dumps(measure(args)))
        return
    print(
        f"{args.options}: batch of {args.batch_size} sentences x {args.tokens} words, "
        "predict_on_batch, random weights"
    )
    print(
        f"{'backend':<11} {'device':<8} {'biLM tokens/s':>14} {'biLM ms':>9} "
        f"{'encoder tokens/s':>17} {'encoder ms':>11}"
    )
    child = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--backends"]
    child = [a for a in child if a not in BACKENDS] + ["--json"]
    for backend in args.backends:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(
            [sys.executable, __file__, *child], env=env, capture_output=True, text=True
        )
        if result.returncode != 0:
            print(f"{backend:<11} failed: {result.stderr.strip().splitlines()[-1]}")
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{backend:<11} {row['device']:<8} {row['bilm_tokens_per_s']:>14.0f} "
            f"{row['bilm_ms']:>9.1f} {row['encoder_tokens_per_s']:>17.0f} {row['encoder_ms']:>11.1f}"
        )


if __name__ == "__main__":
    if "--json" in sys.argv:
        backend = os.environ.get("KERAS_BACKEND")
        use_backend(backend)
    main()
