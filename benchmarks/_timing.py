"""What the benchmarks share: a compiled gradient step, the device in use, and one timer."""

import statistics
import time

import keras

from keras_deepblocks.utils.gradients import gradient_function


def gradient_step(model, x):
    """A callable doing one compiled forward+backward pass of `sum(model(x)**2)`.

    The step is `keras_deepblocks.utils.gradients.gradient_function(model,
    compiled=True)` (`tf.function`, `jax.jit`; eager PyTorch). The callable
    returns only after the device finished, so wall-clock timing is fair:
    reading one value of the first variable's gradient, the last one the
    backward pass computes, waits for the whole step.
    """
    step = gradient_function(model, compiled=True)
    x = keras.ops.convert_to_tensor(x)

    def run():
        gradients = step(x)
        keras.ops.convert_to_numpy(keras.ops.sum(gradients[0]))

    return run


def accelerator():
    """The accelerator the Keras backend computes on (a GPU's name), or `None` on a CPU."""
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


def interleaved_medians(steps, rounds=7, repeats=5, warmup=2, clock=time.perf_counter):
    """Median seconds per call of each named step, and its median ratio to the first step.

    Every round calls each step `repeats` times, in turn, in an order rotated
    from round to round, and ratios are taken within a round: machine noise
    and slow drifts of load on a shared machine hit all steps alike.

    Args:
        steps: `{name: callable}`; the first is the reference of the ratios.
        rounds: Timed rounds.
        repeats: Calls of each step per round.
        warmup: Untimed calls of each step first (compilation, caches).
        clock: `time.perf_counter` (wall time), or `time.process_time` (CPU
            seconds of this process, all threads), which other processes on
            a shared CPU barely disturb.

    Returns:
        `(seconds, ratios)`: dicts by name.
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
    seconds = {name: statistics.median(samples[name]) for name in names}
    ratios = {
        name: statistics.median(t / base for t, base in zip(samples[name], samples[names[0]]))
        for name in names
    }
    return seconds, ratios
