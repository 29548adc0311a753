"""Shared helpers for the benchmarks: backend-specific gradient steps and interleaved timing."""

import statistics
import time

import keras
import numpy as np


def gradient_step(model, x):
    """A compiled callable doing one forward+backward pass of `sum(model(x)**2)`.

    It returns only after the device finished, so wall-clock timing is fair.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)

        @tf.function(jit_compile=False)
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(model(x, training=True)))
            grads = tape.gradient(loss, model.trainable_variables)
            # One scalar that depends on every gradient (IndexedSlices too).
            return tf.add_n([tf.reduce_sum(tf.convert_to_tensor(g)) for g in grads])

        return lambda: step().numpy()
    if backend == "jax":
        import jax

        x = jax.numpy.asarray(x)
        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def grads(trainable):
            def loss(trainable):
                y, _ = model.stateless_call(trainable, frozen, x, training=True)
                return (y**2).sum()

            return jax.grad(loss)(trainable)

        return lambda: jax.block_until_ready(grads(trainable))
    import torch

    x = torch.as_tensor(x)

    def step():
        model.zero_grad()
        loss = (model(x, training=True) ** 2).sum()
        loss.backward()

    return step


def interleaved_medians(steps, rounds=7, repeats=5, warmup=2):
    """Median seconds per call of each named step, timing them in turn.

    Rounds alternate between the steps so that machine noise hits all alike.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(repeats):
                step()
            samples[name].append((time.perf_counter() - start) / repeats)
    return {name: statistics.median(values) for name, values in samples.items()}


def random_inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")
