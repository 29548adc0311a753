"""Training-step time of CIFAR ResNets with stochastic depth: stacked stages vs per-unit layers.

    python benchmarks/stochastic_depth_speed.py --backend jax          # jit (Keras's default)
    python benchmarks/stochastic_depth_speed.py --backend tensorflow   # graph (CPU default)
    python benchmarks/stochastic_depth_speed.py --backend tensorflow --jit-compile true  # XLA
    python benchmarks/stochastic_depth_speed.py --backend torch        # eager
    ... --schedule uniform                    # p_L for every unit
    ... --depth 20 --rounds 2 --cost-rounds 1 # smoke run (a minute)

On a GPU (defaults there: batch 128, wall clock, 7 rounds of 4 steps), where
a per-unit conditional also copies its predicate to the host and waits, and
the stack needs none:

    python benchmarks/stochastic_depth_speed.py --backend jax
    python benchmarks/stochastic_depth_speed.py --backend tensorflow   # XLA ("auto" on a GPU)

Builds the zoo's CIFAR ResNet of He et al. (`build_model("resnet{depth}")`,
default ResNet-110: 3x3 conv 16, three stages of n basic units with 16/32/64
filters and option-A shortcuts, global pooling, dense) and times
`train_on_batch` (forward, backward, SGD update, BN statistics) of these
variants interleaved in one run (`_timing.interleaved_samples`):
- `units`: `stacked_stages=False` (one `ResidualUnit` per unit), no
  stochastic depth;
- `units_sd`: the same with p_L linear decay and `--skip-strategy` (default
  `"auto"`: a `tf.cond` per unit in TensorFlow graphs on a CPU, also inside
  `--jit-compile true`, where XLA runs it about 10x slower; a Python `if` in
  eager torch; every branch computed and selected under JAX's jit);
- `stack`: `stacked_stages=True` (each stage's same-shaped units one
  `ResidualStack`; the strided first unit of stages 2 and 3 stays a
  `ResidualUnit`), no stochastic depth;
- `stack_sd`: the same with p_L linear decay, `sampling="fixed_count"`: the
  kept units run in ceil(S) static slots per stage, no control flow (the two
  strided units compute and select, as the zoo builds them beside stacks);
- `stack_independent` (`--with-independent`): `sampling="independent"`, the
  paper's joint law; a compiled step computes every slot, so it saves time
  only in eager torch.
`--skip-strategy multiply` gives the per-unit approach of TF-Addons and
KerasCV (branch always computed, multiplied by the draw; what "auto" does
under JAX's jit), `skip` a conditional per unit everywhere; it applies to
`units_sd` only. With TensorFlow and `--jit-compile true` on a CPU, "auto"
cannot tell that XLA compiles the step and uses `tf.cond`: `units_sd` then
shows what an XLA conditional per unit costs.

Ratios are medians over rounds of the per-round ratio. Targets (issue 12,
ResNet-110, batch 32, CPU, every backend and mode): `stack/units` <= 1.05;
`stack_sd/stack` <= 0.90 with linear decay to p_L = 0.5, <= 0.65 with
`--schedule uniform`.

Ideal ratios come from measured stage costs: a second, shorter interleaved
run (`--cost-rounds`, 0 skips it) times `stack` against copies of it with one
stage's stack replaced by the identity; stage s's share of the step is
`c_s = 1 - t(without s) / t(stack)`. Then
- `paper` = `1 - sum_s (1 - mean p over the stack's units) c_s`, the expected
  time of stochastic depth that skips every dropped unit;
- `slots` = `1 - sum_s (1 - ceil(S_s) / n_s) c_s`, what fixed-count
  sampling can reach: ceil(S_s) of the stack's n_s blocks always run.
Both count the stacks only: the two strided units (2 of 3n) are always
computed.
On this CPU the 16-channel first stage takes about half the step (equal
FLOPs per stage, lower arithmetic intensity) and linear decay rarely drops
its units, hence an ideal near 0.86 rather than the 0.75-0.78 of equal stage
costs (a GPU).

The CPU default clock is this process's CPU time, which other processes on a
shared machine barely disturb; but eager torch's threads spin while waiting
for a core another process holds, and that counts: run torch on an idle
machine (or with `--clock wall` and more `--rounds`).
"""

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _timing import BACKENDS  # noqa: E402
from _timing import accelerator  # noqa: E402
from _timing import interleaved_samples  # noqa: E402
from _timing import median_ratio  # noqa: E402
from _timing import use_backend  # noqa: E402

STAGES = ("layer1", "layer2", "layer3")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: KERAS_BACKEND, else Keras's default)",
    )
    parser.add_argument("--depth", type=int, default=110, help="6n+2 (default: 110)")
    parser.add_argument("--batch-size", type=int, help="default: 32 on CPU, 128 on a GPU")
    parser.add_argument("--final-survival-probability", type=float, default=0.5)
    parser.add_argument(
        "--schedule",
        choices=("linear", "uniform"),
        default="linear",
        help="linear decay to p_L (the paper), or p_L for every unit",
    )
    parser.add_argument("--rounds", type=int, help="default: 10 on CPU, 7 on a GPU")
    parser.add_argument("--repeats", type=int, help="steps per round (default: 1 CPU, 4 GPU)")
    parser.add_argument(
        "--cost-rounds",
        type=int,
        default=3,
        help="rounds of the stage-cost run behind the ideal ratios (0: skip it; default: 3)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        help="wall time, or CPU time of this process (default on CPU: robust "
        "to other processes on a shared machine)",
    )
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "true", "false"),
        default="auto",
        help="model.compile's jit_compile (auto: XLA on JAX, graph on TF (XLA on a GPU), "
        "eager torch)",
    )
    parser.add_argument(
        "--with-independent", action="store_true", help="also time sampling='independent'"
    )
    parser.add_argument(
        "--skip-strategy",
        choices=("auto", "skip", "multiply"),
        default="auto",
        help="skip_strategy of the per-unit model's ResidualUnits (default: auto)",
    )
    args = parser.parse_args(argv)
    try:
        use_backend(args.backend)
        from keras_deepblocks.zoo.registry import resnet_units_per_stage

        resnet_units_per_stage(args.depth, "--depth")
    except ValueError as error:
        parser.error(str(error))
    if not 0.0 < args.final_survival_probability <= 1.0:
        parser.error("--final-survival-probability must be in (0, 1]")
    return args


def cifar_resnet(
    depth,
    stacked,
    final_survival_probability=None,
    sampling="fixed_count",
    skip_strategy="auto",
    schedule="linear",
    without=None,
):
    """The zoo's `resnet{depth}` (no preprocessing) with the benchmark's changes.

    `schedule="uniform"` gives every unit `final_survival_probability`
    instead of the linear decay rule the zoo builds (in a stack: its
    `survival_probabilities`); `skip_strategy` applies to the per-unit
    model's `ResidualUnit`s; `without` names a layer replaced by the identity (a stage's stack).
    """
    import keras

    from keras_deepblocks.layers import ResidualStack
    from keras_deepblocks.layers import ResidualUnit
    from keras_deepblocks.zoo.registry import build_model

    model = build_model(
        f"resnet{depth}",
        (32, 32, 3),
        10,
        include_preprocessing=False,
        final_survival_probability=final_survival_probability,
        stacked_stages=stacked,
        stochastic_depth_sampling=sampling,
    )
    p = final_survival_probability
    uniform = p is not None and schedule == "uniform"
    skip_strategy = skip_strategy if p is not None else "auto"
    if not uniform and skip_strategy == "auto" and without is None:
        return model

    def clone(layer):
        if layer.name == without:
            return keras.layers.Identity(name=layer.name)
        config = layer.get_config()
        if isinstance(layer, ResidualUnit):
            if not stacked:  # beside stacks the zoo's strided units never branch
                config["skip_strategy"] = skip_strategy
            if uniform:
                config["survival_probability"] = p
        elif isinstance(layer, ResidualStack) and uniform:
            config["survival_probabilities"] = [p] * layer.num_blocks
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def train_step(model, x, y, jit_compile):
    """`train_on_batch` of `model` compiled with SGD and cross-entropy."""
    import keras

    model.compile(
        keras.optimizers.SGD(0.1, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return lambda: model.train_on_batch(x, y)


def stage_plan(model):
    """`{stack name: (n_s, mean p, ceil(S_s) slots)}` of a stacked model with stochastic depth."""
    plan = {}
    for name in STAGES:
        stack = model.get_layer(name)
        probabilities = stack.survival_probabilities or [1.0] * stack.num_blocks
        n = stack.num_blocks
        # As ResidualStack: ceil(S) slots, the margin absorbing rounding in S.
        slots = min(max(math.ceil(sum(probabilities) - 1e-4), 1), n)
        plan[name] = (n, sum(probabilities) / n, slots)
    return plan


def ideal_ratios(plan, shares):
    """`(paper, slots)` ideal ratios of the stacked model from stage cost shares."""
    paper = 1.0 - sum((1.0 - plan[s][1]) * shares[s] for s in STAGES)
    slots = 1.0 - sum((1.0 - plan[s][2] / plan[s][0]) * shares[s] for s in STAGES)
    return paper, slots


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np

    device = accelerator()
    batch_size = args.batch_size or (128 if device else 32)
    rounds = args.rounds or (7 if device else 10)
    repeats = args.repeats or (4 if device else 1)
    clock_name = args.clock or ("wall" if device else "cpu")
    clock = time.perf_counter if clock_name == "wall" else time.process_time
    jit_compile = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    p = args.final_survival_probability

    # (stacked, survival, sampling, skip_strategy); the first row is the ratios' reference.
    variants = {
        "units": (False, None, "fixed_count", "auto"),
        "units_sd": (False, p, "fixed_count", args.skip_strategy),
        "stack": (True, None, "fixed_count", "auto"),
        "stack_sd": (True, p, "fixed_count", args.skip_strategy),
    }
    if args.with_independent:
        variants["stack_independent"] = (True, p, "independent", args.skip_strategy)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=batch_size)
    models, steps = {}, {}
    for name, (stacked, survival, sampling, strategy) in variants.items():
        models[name] = cifar_resnet(
            args.depth, stacked, survival, sampling, strategy, args.schedule
        )
        steps[name] = train_step(models[name], x, y, jit_compile)
    samples = interleaved_samples(steps, rounds, repeats, warmup=3, clock=clock)

    print(
        f"backend={keras.backend.backend()} device={device or 'CPU'} depth={args.depth} "
        f"batch={batch_size} p_L={p} schedule={args.schedule} skip_strategy={args.skip_strategy} "
        f"jit_compile={models['units'].jit_compile} clock={clock_name} "
        f"(median of {rounds} interleaved rounds x {repeats} steps)"
    )
    for name in variants:
        seconds = statistics.median(samples[name])
        print(f"  {name:<18} {seconds * 1e3:9.1f} {clock_name} ms/step")

    plan = stage_plan(models["stack_sd"])
    paper = slots = None
    if args.cost_rounds > 0:
        cost_steps = {"stack": steps["stack"]}
        for stage in STAGES:
            model = cifar_resnet(args.depth, True, without=stage)
            cost_steps[f"without_{stage}"] = train_step(model, x, y, jit_compile)
        cost_samples = interleaved_samples(cost_steps, args.cost_rounds, repeats, 1, clock)
        shares = {s: 1.0 - median_ratio(cost_samples, f"without_{s}", "stack") for s in STAGES}
        paper, slots = ideal_ratios(plan, shares)
        print(
            f"stage costs (share of the `stack` step, {args.cost_rounds} rounds): "
            + ", ".join(
                f"{s} {shares[s]:.2f} ({plan[s][0]} blocks, mean p {plan[s][1]:.2f}, "
                f"{plan[s][2]} slots)"
                for s in STAGES
            )
            + f", rest {1.0 - sum(shares.values()):.2f}"
        )
        if min(shares.values()) <= 0.0 or sum(shares.values()) >= 1.0:
            print("  warning: stage costs drowned in noise; raise --cost-rounds")

    def ideal(value):
        return "    -" if value is None else f"{value:5.2f}"

    target = 0.65 if args.schedule == "uniform" else 0.90
    rows = [
        ("stack/units", "stack", "units", None, None, "<= 1.05"),
        ("stack_sd/stack", "stack_sd", "stack", paper, slots, f"<= {target:.2f}"),
        ("units_sd/units", "units_sd", "units", paper, None, ""),
    ]
    if args.with_independent:
        rows.append(("stack_independent/stack", "stack_independent", "stack", paper, None, ""))
    print(f"  {'ratio':<24} measured  ideal: paper  slots   target")
    for label, name, reference, paper_ideal, slots_ideal, goal in rows:
        measured = median_ratio(samples, name, reference)
        print(
            f"  {label:<24} {measured:8.2f}  {ideal(paper_ideal):>12}  "
            f"{ideal(slots_ideal)}   {goal}"
        )


if __name__ == "__main__":
    main()
