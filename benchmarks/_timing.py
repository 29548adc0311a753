"""What the benchmarks share: the backend, a compiled gradient step, the device, one timer.

Keras is imported inside the functions, so that a script can pick its backend
(`use_backend`) after parsing its arguments.
"""

import os
import statistics
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")


def use_backend(name):
    """Makes `name` (or `None`: `KERAS_BACKEND`, else Keras's default) the Keras backend.

    Keras reads `KERAS_BACKEND` once, when first imported, so this must run
    before anything imports it.
    """
    if name is None:
        return
    if name not in BACKENDS:
        raise ValueError(f"`backend` must be one of {', '.join(BACKENDS)}, received: {name!r}.")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise ValueError(
                f"`backend` {name!r} cannot be selected: Keras was already imported with "
                f"{keras.backend.backend()!r}. Set KERAS_BACKEND={name} instead."
            )
    os.environ["KERAS_BACKEND"] = name


def gradient_step(model, x):
    """A callable doing one compiled forward+backward pass of `sum(model(x)**2)`.

    The step is `keras_deepblocks.utils.gradients.gradient_function(model,
    compiled=True)` (`tf.function`, `jax.jit`; eager PyTorch). The callable
    returns only after the device finished, so wall-clock timing is fair:
    reading one value of the first variable's gradient, the last one the
    backward pass computes, waits for the whole step.
    """
    import keras

    from keras_deepblocks.utils.gradients import gradient_function

    step = gradient_function(model, compiled=True)
    x = keras.ops.convert_to_tensor(x)

    def run():
        gradients = step(x)
        keras.ops.convert_to_numpy(keras.ops.sum(gradients[0]))

    return run


def accelerator():
    """The accelerator the Keras backend computes on (a GPU's name), or `None` on a CPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return None if device.platform == "cpu" else device.device_kind
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name() if torch.cuda.is_available() else None
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return gpus[0].name if gpus else None


def interleaved_samples(steps, rounds=7, repeats=5, warmup=2, clock=time.perf_counter):
    """Seconds per call of each named step in each round, timed interleaved.

    Every round calls each step `repeats` times, in turn, in an order rotated
    from round to round, so that machine noise and slow drifts of load on a
    shared machine hit all steps alike; compare steps by ratios taken within
    a round (`median_ratio`).

    Args:
        steps: `{name: callable}`.
        rounds: Timed rounds.
        repeats: Calls of each step per round.
        warmup: Untimed calls of each step first (compilation, caches).
        clock: `time.perf_counter` (wall time), or `time.process_time` (CPU
            seconds of this process, all threads), which other processes on
            a shared CPU barely disturb.

    Returns:
        `{name: [seconds per call in round 0, round 1, ...]}`.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    names = list(steps)
    samples = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = clock()
            for _ in range(repeats):
                steps[name]()
            samples[name].append((clock() - start) / repeats)
    return samples


def median_ratio(samples, name, reference):
    """Median over rounds of `name`'s time over `reference`'s in the same round."""
    return statistics.median(t / base for t, base in zip(samples[name], samples[reference]))


def interleaved_medians(steps, rounds=7, repeats=5, warmup=2, clock=time.perf_counter):
    """Median seconds per call of each named step, and its median ratio to the first step.

    Timed by `interleaved_samples` (same arguments); ratios are taken within
    a round.

    Returns:
        `(seconds, ratios)`: dicts by name.
    """
    samples = interleaved_samples(steps, rounds, repeats, warmup, clock)
    names = list(steps)
    seconds = {name: statistics.median(samples[name]) for name in names}
    ratios = {name: median_ratio(samples, name, names[0]) for name in names}
    return seconds, ratios
