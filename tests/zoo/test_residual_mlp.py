import keras
import numpy as np
import pytest

from keras_deepblocks.initializers import DepthScaled
from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.zoo.residual_mlp import residual_mlp


def _numpy(variable):
    return keras.ops.convert_to_numpy(variable)


def _branch_kernels(model):
    stack = model.get_layer("blocks")
    (index,) = [i for i, p in enumerate(stack.block_weight_paths) if p == "branch/dense/kernel"]
    return _numpy(stack.weights[index])


def test_layout_and_forward_pass_match_numpy(rng):
    """z_0 = x P + p, z_l = z_{l-1} + relu(z_{l-1}) W_l + b_l, softmax(relu(z_L) C + c)."""
    model = residual_mlp((4, 3), 7, num_blocks=5, width=6)
    assert model.output_shape == (None, 7)
    stack = model.get_layer("blocks")
    assert isinstance(stack, ResidualStack) and stack.num_blocks == 5
    assert [tuple(v.shape) for v in stack.weights] == [(5, 6, 6), (5, 6)]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    # Random biases too, so that a bias in the wrong place changes the result.
    for variable in model.weights:
        variable.assign(rng.normal(scale=0.3, size=variable.shape).astype("float32"))
    x = rng.normal(size=(3, 4, 3)).astype("float32")
    kernel, bias = (_numpy(v) for v in model.get_layer("projection").weights)
    z = x.reshape(3, 12) @ kernel + bias
    kernels, biases = (_numpy(v) for v in stack.weights)
    for w, b in zip(kernels, biases):
        z = z + np.maximum(z, 0.0) @ w + b
    kernel, bias = (_numpy(v) for v in model.get_layer("classifier").weights)
    logits = np.maximum(z, 0.0) @ kernel + bias
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(_numpy(model(x)), expected, rtol=1e-4, atol=1e-6)


def test_batch_norm_starts_every_branch_and_the_head():
    model = residual_mlp((10,), 3, num_blocks=4, width=8, batch_norm=True)
    paths = model.get_layer("blocks").block_weight_paths
    assert paths[:3] == ("branch/bn/gamma", "branch/bn/beta", "branch/dense/kernel")
    assert isinstance(model.get_layer("final_bn"), keras.layers.BatchNormalization)


def test_kernel_initializer_sets_the_branch_variance():
    """Var[w] of the stacked branch kernels, measured: 2/n (He), 2/(nL) (depth-scaled)."""
    width, num_blocks = 64, 50
    he = residual_mlp((8,), 2, num_blocks=num_blocks, width=width)
    scaled = residual_mlp(
        (8,), 2, num_blocks=num_blocks, width=width, kernel_initializer="depth_scaled"
    )
    assert _branch_kernels(he).var() == pytest.approx(2 / width, rel=0.03)
    assert _branch_kernels(scaled).var() == pytest.approx(2 / (width * num_blocks), rel=0.03)
    # Every block has its own draw.
    assert not np.allclose(_branch_kernels(scaled)[0], _branch_kernels(scaled)[1])
    # Only the branches: the projection stays He-initialized (fan-in 8).
    projection = _numpy(scaled.get_layer("projection").kernel)
    assert projection.var() == pytest.approx(2 / 8, rel=0.1)
    custom = residual_mlp(
        (8,), 2, num_blocks=3, width=4, kernel_initializer=keras.initializers.Constant(0.5)
    )
    np.testing.assert_array_equal(_branch_kernels(custom), 0.5)
    named = residual_mlp((8,), 2, num_blocks=3, width=4, kernel_initializer="zeros")
    np.testing.assert_array_equal(_branch_kernels(named), 0.0)


def test_saved_and_loaded_model_computes_the_same(tmp_path, rng):
    model = residual_mlp(
        (6,), 3, num_blocks=4, width=5, kernel_initializer="depth_scaled", batch_norm=True
    )
    x = rng.normal(size=(4, 6)).astype("float32")
    # Every weight, BN statistics too, away from its initial value (variances stay positive).
    for variable in model.weights:
        value = rng.normal(scale=0.5, size=variable.shape)
        if "variance" in variable.path:
            value = np.abs(value) + 0.5
        variable.assign(value.astype("float32"))
    outputs = _numpy(model(x))
    assert outputs.min() > 1e-3  # not saturated: a weight loaded wrong would show
    model.save(tmp_path / "mlp.keras")
    restored = keras.saving.load_model(tmp_path / "mlp.keras")
    np.testing.assert_allclose(_numpy(restored(x)), outputs, rtol=1e-6)
    dense = restored.get_layer("blocks").block.get_layer("dense")
    assert isinstance(dense.kernel_initializer, DepthScaled)
    assert dense.kernel_initializer.num_blocks == 4


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_blocks": 0}, ValueError, "`num_blocks` must be"),
        ({"width": 2.5}, ValueError, "`width` must be a positive integer"),
        ({"batch_norm": "yes"}, TypeError, "`batch_norm` must be True or False"),
        ({"kernel_initializer": "depth_scale"}, ValueError, "`kernel_initializer` must be"),
        ({"kernel_initializer": None}, ValueError, "`kernel_initializer` must be"),
        ({"num_classes": -1}, ValueError, "`num_classes` must be"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    arguments = {"input_shape": (4,), "num_classes": 2, "num_blocks": 2, "width": 3, **kwargs}
    with pytest.raises(error, match=message):
        residual_mlp(**arguments)
