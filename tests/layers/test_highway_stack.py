"""`HighwayStack` and the depth-aware gate bias (issue 13).

The references are separate `Highway` layers holding the stack's layers'
weights (`get_block_weights`), and NumPy for the signal through the stack.
"""

import math
import time

import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks.initializers import highway_transform_bias
from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import HighwayStack
from keras_deepblocks.utils.gradients import gradients
from keras_deepblocks.zoo.highway_nets import highway_mlp
from layer_testing import run_layer_test

WIDTH = 6


def to_numpy(x):
    return ops.convert_to_numpy(x)


def separate_layers(stack):
    """`Highway` layers holding the stack's weights, layer by layer, as one model."""
    inputs = keras.Input((WIDTH,))
    x = inputs
    for index in range(stack.num_layers):
        layer = Highway(transform_bias=stack.initial_transform_bias)
        x = layer(x)
        layer.set_weights(stack.get_block_weights(index))
    return keras.Model(inputs, x)


def test_stack_equals_separate_highway_layers_exactly(rng):
    stack = HighwayStack(7, transform_bias=-0.5)
    stack.build((None, WIDTH))
    for index in range(7):  # gates of every sign, so the test sees T away from 0
        kernel, bias = stack.get_block_weights(index)
        stack.set_block_weights(index, [kernel, rng.normal(size=bias.shape)])
    x = rng.normal(size=(5, WIDTH)).astype("float32")
    reference = separate_layers(stack)

    # x + T (H - x) is Highway's x - T (x - H) with the signs moved: no rounding differs.
    np.testing.assert_array_equal(to_numpy(stack(x)), to_numpy(reference(x)))
    stack_grads = gradients(stack, x)
    reference_grads = gradients(reference, x)
    for name, index in (("kernel", 0), ("bias", 1)):
        expected = np.stack(reference_grads[index::2])
        np.testing.assert_allclose(stack_grads[index], expected, rtol=1e-6, atol=1e-7, err_msg=name)
    outputs = [to_numpy(y) for y in stack.block_outputs(x)]
    partial = keras.Model(reference.input, [layer.output for layer in reference.layers[1:]])
    for ours, theirs in zip(outputs, partial(x)):
        np.testing.assert_array_equal(ours, to_numpy(theirs))


@pytest.mark.parametrize("depth, expected", [(1, 0.0), (10, -2.302585), (100, -4.605170)])
def test_the_default_gate_bias_is_minus_log_depth(depth, expected):
    assert highway_transform_bias(depth) == pytest.approx(expected, abs=1e-6)
    stack = HighwayStack(depth)
    stack.build((None, WIDTH))
    bias = to_numpy(stack.weights[1])
    np.testing.assert_allclose(bias[:, WIDTH:], expected, atol=1e-6)  # [b_h | b_t] per layer
    np.testing.assert_array_equal(bias[:, :WIDTH], 0.0)
    # Each gate starts at T = 1 / (L + 1): the stack carries (L / (L + 1))^L > 1/e of x.
    gate = 1 / (1 + math.exp(-expected))
    assert gate == pytest.approx(1 / (depth + 1)) and (1 - gate) ** depth > math.exp(-1)
    assert highway_transform_bias(10, total_transform=2.0) == pytest.approx(math.log(0.2))


def test_every_layer_is_its_own_draw_and_each_half_its_own(rng):
    stack = HighwayStack(200)
    stack.build((None, 32))
    kernel = to_numpy(stack.weights[0])
    transform, gate = kernel[..., :32], kernel[..., 32:]
    assert not np.array_equal(kernel[0], kernel[1]) and not np.array_equal(transform, gate)
    # He normal for each (32, 32) half: Var[w] = 2 / 32, measured over 200 x 1024 draws.
    for half in (transform, gate):
        assert half.var() == pytest.approx(2 / 32, rel=0.02)
    first = HighwayStack(3, kernel_initializer=keras.initializers.HeNormal(seed=7))
    second = HighwayStack(3, kernel_initializer=keras.initializers.HeNormal(seed=7))
    first.build((None, 4)), second.build((None, 4))
    np.testing.assert_array_equal(to_numpy(first.weights[0]), to_numpy(second.weights[0]))
    kernel = to_numpy(first.weights[0])
    assert not np.array_equal(kernel[0], kernel[1])
    assert not np.array_equal(kernel[0, :, :4], kernel[0, :, 4:])


def signal_and_gradient_ratio(transform_bias, depth=1000, width=16, batch=64, seed=0):
    """The stack's output RMS over its input's, and the first layer's mean |gradient| over the
    last one's at initialization, for its bias (the kernel's gradient also scales with the
    layer's input, which vanishes going up when the gradient vanishes going down)."""
    keras.utils.set_random_seed(seed)
    stack = HighwayStack(depth, transform_bias=transform_bias)
    x = np.random.default_rng(seed).normal(size=(batch, width)).astype("float32")
    rms = float(np.sqrt(np.mean(to_numpy(stack(x)) ** 2)))
    # A loss linear in the output: its gradient at the top does not shrink with the signal.
    direction = ops.convert_to_tensor(np.random.default_rng(1).normal(size=x.shape), "float32")
    grads = gradients(stack, x, loss_fn=lambda y: ops.sum(y * direction))
    bias_grad = np.abs(grads[1]).mean(axis=1)
    return rms / float(np.sqrt(np.mean(x**2))), bias_grad[0] / bias_grad[-1]


def test_a_1000_layer_stack_keeps_its_signal_and_gradient_with_the_depth_aware_bias():
    rms, ratio = signal_and_gradient_ratio(None)
    assert rms > 0.1 and ratio >= 1e-3, (rms, ratio)
    # A fixed bias that suits 10 layers leaves nothing after 1000 (the measurement).
    rms, ratio = signal_and_gradient_ratio(-2.0)
    assert rms < 1e-6 and ratio < 1e-6, (rms, ratio)


def test_a_1000_layer_highway_mlp_builds_without_recursion_and_trains_a_step():
    started = time.perf_counter()
    model = highway_mlp((64,), 10, depth=1000)
    # A generous bound for a loaded CI machine; separate layers took minutes and then
    # failed with RecursionError (the benchmark reports the real time).
    assert time.perf_counter() - started < 120
    assert model.count_params() == 64 * 50 + 50 + 1000 * (50 * 100 + 100) + 50 * 10 + 10
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(8, 64)).astype("float32")
    loss = model.train_on_batch(x, np.arange(8) % 10)
    assert np.isfinite(loss)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_layers": 3},
        {
            "num_layers": 4,
            "activation": "tanh",
            "transform_bias": -1.0,
            "kernel_regularizer": "l2",
            "survival_probabilities": 0.75,
            "seed": 2,
            "gradient_checkpointing": True,
        },
    ],
    ids=["default", "options"],
)
def test_layer_contract(kwargs):
    """Sequential, functional and subclassed models, config round trip, `.keras` in process, fit."""
    run_layer_test(
        HighwayStack,
        kwargs,
        input_shape=(3, WIDTH),
        expected_output_shape=(3, WIDTH),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


def test_config_keeps_the_depth_rule_rather_than_its_value():
    stack = HighwayStack(20, name="hw")
    config = stack.get_config()
    assert config["transform_bias"] is None and config["num_layers"] == 20
    assert "block" not in config and "num_blocks" not in config
    restored = HighwayStack.from_config({**config, "num_layers": 40})
    assert restored.initial_transform_bias == pytest.approx(-math.log(40))


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: HighwayStack("relu"), "num_layers"),
        (lambda: HighwayStack(0), "num_layers"),
        (lambda: HighwayStack(3, transform_bias="low"), "transform_bias"),
        (lambda: HighwayStack(3, transform_bias=float("nan")), "transform_bias"),
        (lambda: HighwayStack(3, units=8), "units"),
        (lambda: HighwayStack(3, activation="nope"), "activation"),
        (lambda: HighwayStack(3, survival_probabilities=0.0), "survival_probabilities"),
        (lambda: highway_transform_bias(0), "depth"),
        (lambda: highway_transform_bias(10, total_transform=0.0), "total_transform"),
    ],
)
def test_bad_arguments_are_clear_errors(build, name):
    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        build()
