import keras
import numpy as np
from keras import ops

from keras_deepblocks.utils.gradients import gradient_function
from keras_deepblocks.utils.gradients import gradients


def test_gradients_match_the_closed_form_of_a_dense_layer(rng):
    # loss = sum((x W + b)^2): dW = 2 x^T y, db = 2 sum(y).
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2)(inputs)
    model = keras.Model(inputs, outputs)
    x = rng.normal(size=(4, 3)).astype("float32")
    kernel, bias = model.get_weights()
    y = x @ kernel + bias
    d_kernel, d_bias = gradients(model, x)
    np.testing.assert_allclose(d_kernel, 2 * x.T @ y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_bias, 2 * y.sum(axis=0), rtol=1e-5, atol=1e-5)


def test_custom_loss_zero_gradients_and_state_updates_on_every_backend(rng):
    # A two-output model whose loss ignores one output: that head's weights get zeros.
    inputs = keras.Input((3,))
    hidden = keras.layers.BatchNormalization(momentum=0.5)(keras.layers.Dense(3)(inputs))
    model = keras.Model(inputs, [keras.layers.Dense(1)(hidden), keras.layers.Dense(2)(hidden)])
    x = rng.normal(size=(8, 3)).astype("float32")
    norm = model.layers[2]
    mean_before = ops.convert_to_numpy(norm.moving_mean)
    kernel, bias = (ops.convert_to_numpy(w) for w in model.layers[1].weights)
    grads = gradients(model, x, loss_fn=lambda outputs: ops.mean(outputs[0]))
    assert len(grads) == len(model.trainable_variables)
    head = [v.path for v in model.trainable_variables].index(model.layers[4].kernel.path)
    np.testing.assert_array_equal(grads[head], np.zeros((3, 2)))
    assert np.abs(grads[0]).max() > 0
    # One training forward pass moved the statistics, on JAX too (assigned back).
    expected = 0.5 * mean_before + 0.5 * (x @ kernel + bias).mean(axis=0)
    np.testing.assert_allclose(ops.convert_to_numpy(norm.moving_mean), expected, atol=1e-5)


def test_compiled_step_gives_the_eager_gradients_and_sees_new_weights(rng):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="tanh")])
    x = rng.normal(size=(5, 3)).astype("float32")
    step = gradient_function(model, compiled=True)
    for _ in range(2):
        eager = gradients(model, x)
        np.testing.assert_allclose(
            [ops.convert_to_numpy(g) for g in step(x)][0], eager[0], rtol=1e-5, atol=1e-6
        )
        model.set_weights([w + 1.0 for w in model.get_weights()])
