"""Training-step time of a CIFAR ResNet with stochastic depth against the same net without.

    KERAS_BACKEND=tensorflow python benchmarks/stochastic_depth_speed.py [--depth 110]

Builds the zoo's CIFAR ResNet of He et al. (`build_model("resnet{depth}")`:
3x3 conv 16, three stages of n basic units with 16/32/64 filters and option-A
shortcuts, global pooling, dense; depth 6n+2) in these variants, and times `train_on_batch`
(forward, backward, SGD update, BN statistics) interleaved in one run:
- `plain`: no stochastic depth;
- `stochastic_depth`: p_L = 0.5 linear decay, `skip_strategy="auto"`;
- `skip` (with `--with-skip`): `skip_strategy="skip"`, which differs from
  "auto" only under JAX's jit and in TensorFlow graphs where TensorFlow sees
  a GPU; with `--jit-compile true` on a CPU-only machine TensorFlow's "auto"
  uses the conditional, so pass `skip_strategy="multiply"` there. Compiled by
  XLA, "skip" is a conditional per block, measured 11x (JAX) and 13x (TF)
  slower on CPU, 1.5-1.7x on an H100 -- why "auto" does not use it there;
- `compute_multiply`: the alternatives' approach (TF-Addons, KerasCV): the
  branch is always computed and multiplied by the draw
  (`skip_strategy="multiply"`). Where "auto" picks it (JAX's jit; TensorFlow
  graphs on a GPU), the two rows differ only by noise.
Ratios are against `plain`. Target on CPU with TensorFlow: <= 0.80.
"""

import argparse
import os
import sys
import time

import keras
import numpy as np

from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.zoo.registry import build_model
from keras_deepblocks.zoo.registry import resnet_units_per_stage

sys.path.insert(0, os.path.dirname(__file__))
from _timing import accelerator  # noqa: E402
from _timing import interleaved_medians  # noqa: E402


def cifar_resnet(depth, final_survival_probability=None, skip_strategy="auto", schedule="linear"):
    """The zoo's `resnet{depth}` (no preprocessing), its units set to `skip_strategy` and `schedule`.

    `schedule="uniform"` gives every unit `final_survival_probability` instead
    of the linear decay rule the zoo builds.
    """
    model = build_model(
        f"resnet{depth}",
        (32, 32, 3),
        10,
        include_preprocessing=False,
        final_survival_probability=final_survival_probability,
    )
    changes = {}
    if final_survival_probability is not None and skip_strategy != "auto":
        changes["skip_strategy"] = skip_strategy
    if final_survival_probability is not None and schedule == "uniform":
        changes["survival_probability"] = final_survival_probability
    if not changes:
        return model

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, ResidualUnit):
            config.update(changes)
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def main():
    device = accelerator()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=110 if device else 32)
    parser.add_argument("--batch-size", type=int, default=128 if device else 32)
    parser.add_argument("--final-survival-probability", type=float, default=0.5)
    parser.add_argument(
        "--schedule",
        choices=("linear", "uniform"),
        default="linear",
        help="linear decay to p_L (the paper), or p_L for every block",
    )
    parser.add_argument("--rounds", type=int, default=7 if device else 10)
    parser.add_argument("--repeats", type=int, default=4 if device else 1)
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall" if device else "cpu",
        help="wall time, or CPU time of this process (default on CPU: robust "
        "to other processes on a shared machine)",
    )
    parser.add_argument("--with-skip", action="store_true", help="also time skip_strategy='skip'")
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "true", "false"),
        default="auto",
        help="model.compile's jit_compile (auto: XLA on TF and JAX, eager on torch)",
    )
    args = parser.parse_args()
    try:
        resnet_units_per_stage(args.depth, "--depth")
    except ValueError as error:
        parser.error(str(error))

    backend = keras.backend.backend()
    variants = {
        "plain": (None, "auto"),
        "stochastic_depth": (args.final_survival_probability, "auto"),
    }
    if args.with_skip:
        variants["skip"] = (args.final_survival_probability, "skip")
    variants["compute_multiply"] = (args.final_survival_probability, "multiply")

    jit_compile = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=args.batch_size)
    steps = {}
    for name, (survival, strategy) in variants.items():
        model = cifar_resnet(args.depth, survival, strategy, args.schedule)
        model.compile(
            keras.optimizers.SGD(0.1, momentum=0.9),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit_compile,
        )
        steps[name] = lambda model=model: model.train_on_batch(x, y)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    medians, ratios = interleaved_medians(steps, args.rounds, args.repeats, warmup=3, clock=clock)

    print(
        f"backend={backend} device={device or 'CPU'} depth={args.depth} "
        f"batch={args.batch_size} p_L={args.final_survival_probability} "
        f"schedule={args.schedule} "
        f"jit_compile={model.jit_compile} clock={args.clock} "
        f"(median of {args.rounds} interleaved rounds x {args.repeats} steps)"
    )
    if not device and args.depth != 110:
        print(
            "  note: CPU defaults to depth 32, batch 32 so the run takes a couple "
            "of minutes; the ratio depends on the share of time in residual "
            "branches, not on depth. Use --depth 110 --batch-size 128 for the "
            "paper's setting."
        )
    if not device and args.schedule == "linear":
        print(
            "  note: on CPU the 16-channel first stage takes about half the step "
            "time (measured on TF: stages 47/27/15 %, equal FLOPs) and linear "
            "decay rarely drops its blocks, so the ideal ratio here is about "
            "0.82, not 0.75; --schedule uniform shows the skipping itself "
            "(ideal ~ p_L)."
        )
    for name, seconds in medians.items():
        print(
            f"  {name:<17} {seconds * 1e3:9.1f} {args.clock} ms/step   "
            f"ratio to plain {ratios[name]:5.2f} (median over rounds)"
        )


if __name__ == "__main__":
    main()
