"""Build time and first-step compile time of CIFAR ResNets: stacked stages against per-unit layers.

    python benchmarks/resnet_build_time.py               # TF, JAX, torch; ResNet-110 and 1202
    python benchmarks/resnet_build_time.py --backends tensorflow --depths 1202
    python benchmarks/resnet_build_time.py --depths 20 --first-step-depths 20   # smoke run

Each measurement runs in a fresh Python process (imports done before the
clock starts), so no build profits from another's caches:
- `build s`: `build_model("resnet{depth}", stacked_stages=...)` (no
  preprocessing), i.e. creating and initializing every layer and weight;
  `units` is `stacked_stages=False` (one `ResidualUnit` per unit, the layout
  before issue 12), `stack` the default (each stage's same-shaped units one
  `ResidualStack`);
- `rebuild s`: the same build again in that process, after
  `keras.backend.clear_session()`: without one-off costs (JAX compiles each
  new op shape once per process, e.g. the stacked initializers');
- on the backends of `--first-step-backends` (default JAX, whose `jit` traces
  and compiles the whole step with XLA) and the depths of
  `--first-step-depths`: `first step s`, the first `train_on_batch` (SGD with
  momentum, batch `--batch-size`), `later step s`, the median of steps 4 to
  6, and `compile s`, their difference: tracing and compiling the step
  (eager torch compiles nothing, but its first steps are slow too).
Target (issue 12): `resnet1202()` builds in <= 5 s on TensorFlow (per-unit:
40-50 s on a 2-core CPU).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _timing import BACKENDS  # noqa: E402
from _timing import use_backend  # noqa: E402

LAYOUTS = {"units": False, "stack": True}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="default: all"
    )
    parser.add_argument(
        "--depths", nargs="+", type=int, default=[110, 1202], help="6n+2 (default: 110 1202)"
    )
    parser.add_argument(
        "--layouts",
        nargs="+",
        choices=tuple(LAYOUTS),
        default=list(LAYOUTS),
        help="units: stacked_stages=False; stack: True (default: both)",
    )
    parser.add_argument(
        "--first-step-backends",
        nargs="*",
        choices=BACKENDS,
        default=["jax"],
        help="backends on which the first training step is timed too (default: jax)",
    )
    parser.add_argument(
        "--first-step-depths",
        nargs="*",
        type=int,
        default=[110],
        help="depths whose first training step is timed (default: 110)",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="of the steps (default: 8)")
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "true", "false"),
        default="auto",
        help="model.compile's jit_compile for the steps (default: auto)",
    )
    parser.add_argument(
        "--no-rebuild",
        action="store_true",
        help="skip the second build in each process (the `rebuild s` column)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="fresh processes per row, median (default: 1)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds per process (default: 1800)"
    )
    # One measurement in this process (what the parent runs in each fresh process).
    parser.add_argument(
        "--child", nargs=3, metavar=("BACKEND", "DEPTH", "LAYOUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--child-first-step", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        # The check imports Keras: with the backend the (first) measurement uses.
        use_backend(args.child[0] if args.child else args.backends[0])
        from keras_deepblocks.zoo.registry import resnet_units_per_stage

        for depth in args.depths + args.first_step_depths:
            resnet_units_per_stage(depth, "--depths")
    except ValueError as error:
        parser.error(str(error))
    if args.batch_size < 1 or args.repeats < 1:
        parser.error("--batch-size and --repeats must be positive")
    return args


def measure(backend, depth, layout, first_step, batch_size, jit_compile, rebuild=True):
    """One build (and first steps) in this process: a dict of seconds."""
    use_backend(backend)
    import keras
    import numpy as np

    from keras_deepblocks.zoo.registry import build_model

    def timed_build():
        keras.backend.clear_session()
        start = time.perf_counter()
        model = build_model(
            f"resnet{depth}",
            (32, 32, 3),
            10,
            include_preprocessing=False,
            stacked_stages=LAYOUTS[layout],
        )
        return model, time.perf_counter() - start

    model, seconds = timed_build()
    result = {"build_s": seconds, "params": model.count_params()}
    if rebuild:
        del model
        model, result["rebuild_s"] = timed_build()
    if first_step:
        model.compile(
            keras.optimizers.SGD(0.1, momentum=0.9),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile={"auto": "auto", "true": True, "false": False}[jit_compile],
        )
        rng = np.random.default_rng(0)
        x = rng.normal(size=(batch_size, 32, 32, 3)).astype("float32")
        y = rng.integers(0, 10, size=batch_size)
        times = []
        for _ in range(6):
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        # Eager torch takes two or three steps to warm up (it compiles nothing).
        later = statistics.median(times[3:])
        result.update(first_step_s=times[0], later_step_s=later, compile_s=times[0] - later)
        result["jit_compile"] = str(model.jit_compile)
    return result


def run_child(args, backend, depth, layout, first_step):
    """`measure` in a fresh process; the dict, or `{"error": last line}`."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        backend,
        str(depth),
        layout,
        "--batch-size",
        str(args.batch_size),
        "--jit-compile",
        args.jit_compile,
    ]
    if first_step:
        command.append("--child-first-step")
    if args.no_rebuild:
        command.append("--no-rebuild")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"over --timeout {args.timeout:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        backend, depth, layout = args.child
        result = measure(
            backend,
            int(depth),
            layout,
            args.child_first_step,
            args.batch_size,
            args.jit_compile,
            rebuild=not args.no_rebuild,
        )
        print(json.dumps(result))
        return

    print(
        f"fresh process per row; steps: batch {args.batch_size}, jit_compile={args.jit_compile}; "
        f"median of {args.repeats} process(es)"
    )
    columns = (
        ("build_s", "build s"),
        ("rebuild_s", "rebuild s"),
        ("first_step_s", "first step s"),
        ("later_step_s", "later step s"),
        ("compile_s", "compile s"),
    )
    print(
        f"{'backend':<11} {'depth':>5} {'layout':<6} {'params':>10}"
        + "".join(f" {title:>12}" for _, title in columns)
    )
    for backend in args.backends:
        for depth in args.depths:
            first_step = backend in args.first_step_backends and depth in args.first_step_depths
            rows = {}
            for layout in args.layouts:
                runs = [
                    run_child(args, backend, depth, layout, first_step) for _ in range(args.repeats)
                ]
                failed = [r for r in runs if "error" in r]
                if failed:
                    print(f"{backend:<11} {depth:>5} {layout:<6} failed: {failed[0]['error']}")
                    continue
                row = {
                    key: statistics.median(r[key] for r in runs)
                    for key, _ in columns
                    if key in runs[0]
                }
                rows[layout] = row
                print(
                    f"{backend:<11} {depth:>5} {layout:<6} {runs[0]['params']:>10,}"
                    + "".join(
                        f" {row[key]:>12.2f}" if key in row else f" {'-':>12}" for key, _ in columns
                    )
                )
            if len(rows) == 2:
                ratios = ", ".join(
                    f"{title.removesuffix(' s')} {rows['units'][key] / rows['stack'][key]:.1f}x"
                    for key, title in columns
                    if key in ("build_s", "rebuild_s", "compile_s")
                    and key in rows["stack"]
                    and rows["stack"][key] > 0
                )
                print(f"{'':<24} units/stack: {ratios}")
    print("target: resnet1202 (stack) builds in <= 5 s on tensorflow")


if __name__ == "__main__":
    main()
