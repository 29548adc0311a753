"""Training memory and step time of a CIFAR ResNet with and without gradient checkpointing.

    KERAS_BACKEND=jax python benchmarks/resnet_memory.py     # GPU target: ResNet-1202, batch 128, <= 4 GiB
    python benchmarks/resnet_memory.py                       # no GPU: ResNet-20, batch 32

Without an accelerator the defaults shrink to a CPU size (ResNet-20, batch
32, 3 steps); pass --depth 1202 --batch-size 128 --steps 5 for the GPU target
anyway. Every measurement runs in a fresh process; this one only reports.

Variants: `plain` is the zoo's `resnet{depth}`, `gradient_checkpointing` the
same with `gradient_checkpointing=True` (each residual unit keeps only its
input for the backward pass and recomputes the rest).

Peak memory: each variant runs `--steps` `train_on_batch` steps (SGD with
momentum, BN statistics) in a fresh process, since a peak is per process.
On a GPU it is the device's peak (JAX `memory_stats()["peak_bytes_in_use"]`,
PyTorch `max_memory_allocated`, TensorFlow `get_memory_info()["peak"]`); on
a CPU, how far the process's peak resident memory rose above its value
after building the model (`ru_maxrss`), which also counts compilation.
Step time: both variants built in one process and timed interleaved.
The PyTorch reference implementation needs about 16 GB for ResNet-1202 at
batch 128.
"""

import argparse
import json
import os
import resource
import subprocess
import sys

import numpy as np

from keras_deepblocks.zoo.registry import build_model
from keras_deepblocks.zoo.registry import resnet_units_per_stage

sys.path.insert(0, os.path.dirname(__file__))

VARIANTS = ("plain", "gradient_checkpointing")


# (depth, batch size, steps): the GPU target, and a size a CPU gets through quickly.
GPU_SIZE = (1202, 128, 5)
CPU_SIZE = (20, 32, 3)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--depth", type=int, default=None, help="6n+2 (default: 1202 on a GPU, 20 on a CPU)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: 128 on a GPU, 32 on a CPU"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per variant (default: 5 on a GPU, 3 on a CPU)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved timing rounds (default: 3)"
    )
    parser.add_argument("--no-timing", action="store_true", help="only measure memory")
    parser.add_argument("--worker", choices=VARIANTS + ("probe", "timing"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.depth is not None:
        try:
            resnet_units_per_stage(args.depth, "--depth")
        except ValueError as error:
            parser.error(str(error))
    return args


def choose_size(args):
    """Fills in the defaults the user left out: the GPU target, or a CPU size."""
    if None not in (args.depth, args.batch_size, args.steps):
        return
    # In a separate process: a JAX parent that touched the GPU would hold most
    # of its memory while the workers measure theirs.
    probe = run_worker("probe", args)
    size = GPU_SIZE if probe["accelerator"] else CPU_SIZE
    args.depth = args.depth or size[0]
    args.batch_size = args.batch_size or size[1]
    args.steps = args.steps or size[2]
    if not probe["accelerator"]:
        print(
            f"no GPU found ({probe['backend']} backend): CPU-sized defaults, ResNet-{args.depth} "
            f"at batch {args.batch_size}; the GPU target is --depth {GPU_SIZE[0]} "
            f"--batch-size {GPU_SIZE[1]} --steps {GPU_SIZE[2]}, far slower on a CPU",
            flush=True,
        )


def build(variant, args):
    import keras

    model = build_model(
        f"resnet{args.depth}",
        (32, 32, 3),
        10,
        gradient_checkpointing=variant == "gradient_checkpointing",
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (args.batch_size, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, args.batch_size)
    return lambda: model.train_on_batch(images, labels)


def rss_peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def device_peak_bytes():
    """The accelerator's peak allocation, or None on a CPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        return stats and stats.get("peak_bytes_in_use")
    if backend == "torch":
        import torch

        return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"]
    return None


def worker(args):
    import keras

    if args.worker == "probe":
        from _timing import accelerator

        result = {"backend": keras.backend.backend(), "accelerator": accelerator() is not None}
        print("RESULT " + json.dumps(result))
        return
    if args.worker == "timing":
        from _timing import interleaved_medians

        steps = {variant: build(variant, args) for variant in VARIANTS}
        times, _ = interleaved_medians(steps, rounds=args.rounds, repeats=1, warmup=1)
        print("RESULT " + json.dumps(times))
        return
    step = build(args.worker, args)
    rss_after_build = rss_peak_bytes()
    for _ in range(args.steps):
        step()
    device = device_peak_bytes()
    result = {
        "backend": keras.backend.backend(),
        "device_peak": device,
        "rss_rise": rss_peak_bytes() - rss_after_build,
    }
    print("RESULT " + json.dumps(result))


def run_worker(variant, args):
    """Runs this script as `--worker VARIANT` in a fresh process; returns its RESULT."""
    command = [sys.executable, __file__, "--worker", variant]
    for option in ("depth", "batch_size", "steps", "rounds"):
        value = getattr(args, option)
        if value is not None:
            command += ["--" + option.replace("_", "-"), str(value)]
    output = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
    if output.returncode or not lines:
        tail = (output.stderr or output.stdout)[-1500:]
        raise SystemExit(f"{variant} run failed (exit {output.returncode}):\n{tail}")
    return json.loads(lines[-1][len("RESULT ") :])


def measure_memory(args):
    results = {}
    for index, variant in enumerate(VARIANTS, start=1):
        print(
            f"[{index}/{len(VARIANTS) + 1}] peak memory of {variant}: {args.steps} training "
            "steps in a fresh process ...",
            flush=True,
        )
        results[variant] = run_worker(variant, args)
    return results


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    # The workers' TensorFlow notices would fill the tail shown when one fails.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    choose_size(args)
    memory = measure_memory(args)

    on_device = memory["plain"]["device_peak"] is not None
    key = "device_peak" if on_device else "rss_rise"
    label = "device peak" if on_device else "peak RSS rise"
    print(
        f"ResNet-{args.depth}, batch {args.batch_size}, {args.steps} training steps, "
        f"backend {memory['plain']['backend']}, memory = {label}"
    )
    for variant in VARIANTS:
        print(f"  {variant:<22} {memory[variant][key] / 2**30:8.3f} GiB")
    ratio = memory["gradient_checkpointing"][key] / memory["plain"][key]
    print(f"  gradient_checkpointing / plain memory: {ratio:.3f}")
    if args.no_timing:
        return
    print(
        f"[{len(VARIANTS) + 1}/{len(VARIANTS) + 1}] step time: {args.rounds} interleaved rounds "
        "in a fresh process ...",
        flush=True,
    )
    times = run_worker("timing", args)
    for variant in VARIANTS:
        print(f"  {variant:<22} {times[variant] * 1000:8.1f} ms/step (median, interleaved)")
    ratio = times["gradient_checkpointing"] / times["plain"]
    print(f"  gradient_checkpointing / plain step time: {ratio:.3f}")


if __name__ == "__main__":
    main()
