"""Gradients of a Keras model's loss on any backend, for tests, benchmarks and tutorials.

Keras has no backend-neutral "gradient of this function" op: `fit` hides the
backend's own machinery (a `tf.GradientTape`, `jax.grad` over `stateless_call`,
torch autograd). This module is the one place that spells out the three.
"""

import keras
from keras import ops


def sum_of_squares(outputs):
    """The default loss: the sum of the squared outputs (of every output), in float32.

    Every output value gets a gradient of `2 * value`, so gradients depend on
    every weight that reaches the outputs; float32 keeps a float16 sum finite.
    """
    return sum(
        ops.sum(ops.square(ops.cast(output, "float32"))) for output in keras.tree.flatten(outputs)
    )


def gradient_function(model, loss_fn=None, *, training=True, compiled=False, jit_compile=False):
    """A callable `inputs -> gradients of loss_fn(model(inputs))`, one per trainable variable.

    The callable returns backend tensors, in the order of
    `model.trainable_variables`; a variable the loss does not reach gets
    zeros (not `None`), on every backend. Its state (BatchNormalization
    moving statistics, random seeds) advances as one forward pass with
    `training` advances it, on every backend (JAX's updates are assigned
    back). Regularization losses (`model.losses`) are not added.

    Args:
        model: A built Keras model (or layer).
        loss_fn: Function of the model's outputs returning a scalar, written
            with `keras.ops`. Defaults to `sum_of_squares`.
        training: Passed to the model's call. Defaults to `True`.
        compiled: Whether to compile the step: `tf.function` on TensorFlow,
            `jax.jit` on JAX; PyTorch always runs eagerly (`torch.compile`
            takes minutes on a CPU). Defaults to `False` (eager).
        jit_compile: With `compiled=True` on TensorFlow, whether XLA compiles
            the graph (JAX always compiles with XLA). Defaults to `False`.

    Returns:
        A function of the model's inputs.
    """
    loss_fn = sum_of_squares if loss_fn is None else loss_fn
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(model, loss_fn, training, compiled, jit_compile)
    if backend == "jax":
        return _jax(model, loss_fn, training, compiled)
    if backend == "torch":
        return _torch(model, loss_fn, training)
    raise ValueError(
        f"`gradients` supports the tensorflow, jax and torch backends, received: {backend!r}."
    )


def gradients(model, inputs, loss_fn=None, training=True):
    """Gradients of `loss_fn(model(inputs))` as NumPy arrays, one per trainable variable.

    Eager, on every backend; see `gradient_function` for a compiled step and
    for what happens to the model's state.

    Args:
        model: A built Keras model (or layer).
        inputs: What the model is called on.
        loss_fn: Function of the model's outputs returning a scalar, written
            with `keras.ops`. Defaults to `sum_of_squares`, the sum of the
            squared outputs.
        training: Passed to the model's call. Defaults to `True`.

    Returns:
        A list of NumPy arrays in the order of `model.trainable_variables`.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    >>> model.set_weights([np.array([[1.0], [2.0]])])
    >>> [g.tolist() for g in gradients(model, np.array([[1.0, 1.0]]))]  # d(x w)^2 / dw = 2 (x w) x
    [[[6.0], [6.0]]]
    """
    step = gradient_function(model, loss_fn, training=training)
    return [ops.convert_to_numpy(g) for g in step(inputs)]


def _tensorflow(model, loss_fn, training, compiled, jit_compile):
    import tensorflow as tf

    def step(inputs):
        # The tf.Variables: zeros for unconnected ones need a TF dtype, not Keras's string.
        variables = [v.value for v in model.trainable_variables]
        with tf.GradientTape() as tape:
            loss = loss_fn(model(inputs, training=training))
        grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        # Embeddings give IndexedSlices: dense, like the other backends' gradients.
        return [tf.convert_to_tensor(g) for g in grads]

    return tf.function(step, jit_compile=jit_compile) if compiled else step


def _jax(model, loss_fn, training, compiled):
    import jax

    def grads_and_state(trainable, non_trainable, inputs):
        def loss(trainable):
            outputs, state = model.stateless_call(
                trainable, non_trainable, inputs, training=training
            )
            return loss_fn(outputs), state

        return jax.grad(loss, has_aux=True)(trainable)

    if compiled:
        grads_and_state = jax.jit(grads_and_state)

    def step(inputs):
        # Read at each call: the weights may have changed since the last one.
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        grads, state = grads_and_state(trainable, non_trainable, inputs)
        for variable, value in zip(model.non_trainable_variables, state):
            variable.assign(value)
        return grads

    return step


def _torch(model, loss_fn, training):
    import torch

    def step(inputs):
        weights = [v.value for v in model.trainable_variables]
        loss = loss_fn(model(inputs, training=training))
        # `autograd.grad`, not `backward`: nothing accumulates in `.grad` between calls.
        return list(torch.autograd.grad(loss, weights, allow_unused=True, materialize_grads=True))

    return step
