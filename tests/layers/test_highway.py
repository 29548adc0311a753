import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks.layers import Highway
from keras_deepblocks.utils.gradients import gradients
from layer_testing import run_layer_test


def numpy_highway(x, kernel, bias, activation=lambda z: np.maximum(z, 0)):
    width = x.shape[-1]
    w_h, w_t = kernel[:, :width], kernel[:, width:]
    b_h, b_t = bias[:width], bias[width:]
    h = activation(x @ w_h + b_h)
    t = 1 / (1 + np.exp(-(x @ w_t + b_t)))
    return h * t + x * (1 - t)


def randomize(layer, rng, scale=0.5):
    layer.set_weights(
        [rng.normal(0, scale, w.shape).astype("float32") for w in layer.get_weights()]
    )


@pytest.mark.parametrize("shape", [(4, 8), (3, 5, 6), (2, 3, 4, 7)])
def test_matches_numpy_formula_on_any_rank(shape, rng):
    layer = Highway()
    x = rng.normal(size=shape).astype("float32")
    layer.build(shape)
    randomize(layer, rng)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer(x)), numpy_highway(x, kernel, bias), rtol=1e-5, atol=1e-5
    )


def test_custom_activation_matches_numpy(rng):
    layer = Highway(activation="tanh", transform_bias=-2.0)
    x = rng.normal(size=(5, 6)).astype("float32")
    layer.build(x.shape)
    randomize(layer, rng)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer(x)),
        numpy_highway(x, kernel, bias, np.tanh),
        rtol=1e-5,
        atol=1e-5,
    )


def test_weights_shapes_and_gate_bias_initialization():
    layer = Highway(transform_bias=-2.5)
    layer.build((None, 6))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (6, 12)
    np.testing.assert_array_equal(bias[:6], 0.0)
    np.testing.assert_array_equal(bias[6:], -2.5)
    # Each half is drawn as one (6, 6) layer: the halves differ.
    assert not np.allclose(kernel[:, :6], kernel[:, 6:])


def test_gate_bias_extremes_give_identity_and_transform(rng):
    x = rng.normal(size=(4, 8)).astype("float32")
    closed = Highway(transform_bias=-1e4)
    np.testing.assert_allclose(ops.convert_to_numpy(closed(x)), x, atol=1e-6)

    opened = Highway(transform_bias=1e4)
    y = ops.convert_to_numpy(opened(x))
    kernel = opened.get_weights()[0]
    np.testing.assert_allclose(y, np.maximum(x @ kernel[:, :8], 0), rtol=1e-5, atol=1e-5)


def test_gradients_stay_finite_through_200_layers(rng):
    # A gate bias of -4 is the paper's range for very deep stacks.
    model = keras.Sequential(
        [keras.Input((16,))] + [Highway(transform_bias=-4.0) for _ in range(200)]
    )
    x = rng.normal(size=(8, 16)).astype("float32")
    grads = gradients(model, x)
    norms = [np.linalg.norm(g) for g in grads]
    assert all(np.isfinite(n) for n in norms)
    # The carry path keeps the first layer's gradient alive: within a factor
    # of 1000 of the last layer's after 200 layers.
    assert norms[0] > 1e-3 * norms[-2]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"transform_bias": "low"}, TypeError, "transform_bias"),
        ({"transform_bias": float("nan")}, ValueError, "transform_bias"),
        ({"activation": "no-such-activation"}, ValueError, "no-such-activation"),
        ({"activation": True}, ValueError, "`activation`"),
        ({"transform_bias": np.float32("inf")}, ValueError, "transform_bias"),
        ({"kernel_initializer": None}, ValueError, "`kernel_initializer`"),
        ({"bias_initializer": "nope"}, ValueError, "`bias_initializer`.*nope"),
        ({"kernel_regularizer": 3}, ValueError, "`kernel_regularizer`"),
        ({"bias_constraint": "nope"}, ValueError, "`bias_constraint`"),
        ({"activity_regularizer": "nope"}, ValueError, "`activity_regularizer`"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Highway(**kwargs)


@pytest.mark.parametrize("args, kwargs", [((50,), {}), ((50.0,), {}), ((), {"units": 50})])
def test_dense_habit_says_that_the_width_is_kept(args, kwargs):
    with pytest.raises(TypeError, match=r"keeps the width of its input.*`Dense\(50(\.0)?\)`"):
        Highway(*args, **kwargs)


def test_empty_batch_gives_empty_output():
    # TensorFlow's `ops.add` turned the gated sum into a BiasAdd, which failed on it.
    for shape in [(0, 4), (0, 3, 4), (3, 0, 4)]:
        assert tuple(Highway()(np.zeros(shape, "float32")).shape) == shape


def test_rank_one_input_is_rejected():
    with pytest.raises(ValueError, match="ndim"):
        Highway()(np.zeros((4,), "float32"))


def test_unknown_width_is_rejected():
    with pytest.raises(ValueError, match="known size"):
        Highway().build((None, None))


def test_layer_contract_with_defaults():
    run_layer_test(
        Highway,
        {},
        input_shape=(4, 8),
        expected_output_shape=(4, 8),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


def test_layer_contract_with_every_argument_set():
    run_layer_test(
        Highway,
        {
            "activation": "tanh",
            "transform_bias": -3.0,
            "kernel_initializer": "glorot_uniform",
            "bias_initializer": "ones",
            "kernel_regularizer": keras.regularizers.L2(1e-4),
            "bias_regularizer": "l1",
            "activity_regularizer": "l2",
            "kernel_constraint": "max_norm",
            "bias_constraint": "non_neg",
        },
        input_shape=(2, 3, 6),
        expected_output_shape=(2, 3, 6),
    )
    config = Highway(transform_bias=-3.0, activation="tanh").get_config()
    assert config["transform_bias"] == -3.0 and config["activation"] == "tanh"


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_policies(policy, rng):
    layer = Highway(dtype=policy)
    x = rng.normal(size=(4, 8)).astype("float32")
    y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == policy.split("_")[1]
    assert keras.backend.standardize_dtype(layer.kernel.dtype) == "float32"
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(
        ops.convert_to_numpy(ops.cast(y, "float32")), numpy_highway(x, kernel, bias), atol=0.05
    )
