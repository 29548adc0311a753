import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks.initializers import DepthScaled
from keras_deepblocks.initializers import FusedKernel
from keras_deepblocks.initializers import GateBias


def test_fused_kernel_draws_each_half_with_one_layers_fans():
    kernel = ops.convert_to_numpy(FusedKernel("he_normal")((256, 512)))
    for half in (kernel[:, :256], kernel[:, 256:]):
        # He normal: truncated normal with std sqrt(2 / fan_in), fan_in = 256.
        assert half.std() == pytest.approx(np.sqrt(2 / 256), rel=0.05)
    assert np.corrcoef(kernel[:, :256].ravel(), kernel[:, 256:].ravel())[0, 1] < 0.05


def test_fused_kernel_with_a_seed_is_reproducible_and_halves_differ():
    first = ops.convert_to_numpy(FusedKernel(keras.initializers.GlorotUniform(seed=3))((4, 8)))
    second = ops.convert_to_numpy(FusedKernel(keras.initializers.GlorotUniform(seed=3))((4, 8)))
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first[:, :4], first[:, 4:])


def test_gate_bias_values_and_odd_size_error():
    bias = ops.convert_to_numpy(GateBias(-2.0, "ones")((6,)))
    np.testing.assert_array_equal(bias, [1, 1, 1, -2, -2, -2])
    np.testing.assert_array_equal(GateBias(transform_bias=-3.0)((2,)), [0, -3])
    with pytest.raises(ValueError, match=r"`shape` must have an even last dimension.*\(5,\)"):
        GateBias()((5,))
    with pytest.raises(ValueError, match="`shape` must have an even last dimension"):
        FusedKernel()((4, 5))


def test_gate_bias_configs_of_version_0_1_0_name_the_bias_gate_value():
    restored = GateBias.from_config({"gate_value": -2.5, "transform_initializer": "ones"})
    assert restored.get_config()["transform_bias"] == -2.5
    assert "gate_value" not in restored.get_config()


@pytest.mark.parametrize("initializer", [FusedKernel("glorot_uniform"), GateBias(-3.0, "zeros")])
def test_serializable(initializer):
    restored = keras.initializers.deserialize(keras.initializers.serialize(initializer))
    assert type(restored) is type(initializer)
    assert restored.get_config() == initializer.get_config()


@pytest.mark.parametrize(
    "mode, fan", [("fan_in", 9 * 32), ("fan_out", 9 * 64), ("fan_avg", 9 * 48)]
)
def test_depth_scaled_variance_is_scale_over_fan_times_depth(mode, fan):
    kernel = ops.convert_to_numpy(DepthScaled(40, scale=3.0, mode=mode, seed=1)((3, 3, 32, 64)))
    assert kernel.var() == pytest.approx(3.0 / (fan * 40), rel=0.05)
    uniform = ops.convert_to_numpy(DepthScaled(40, distribution="uniform", seed=1)((256, 256)))
    assert np.abs(uniform).max() <= np.sqrt(3 * 2.0 / (256 * 40))  # uniform in [-limit, limit]


def test_depth_scaled_keeps_a_deep_residual_stack_without_bn_stable():
    """`x <- x + W2 relu(W1 x)` for 64 blocks: He explodes the signal, depth scaling does not."""
    width, depth = 64, 64
    x0 = np.random.default_rng(0).normal(size=(128, width))

    def growth(initializer):
        x = x0
        for _ in range(depth):
            w1, w2 = (ops.convert_to_numpy(initializer((width, width))) for _ in range(2))
            x = x + np.maximum(x @ w1, 0.0) @ w2
        return np.sqrt(np.mean(x**2) / np.mean(x0**2))

    he = growth(keras.initializers.HeNormal(seed=keras.random.SeedGenerator(1)))
    scaled = growth(DepthScaled(depth, seed=keras.random.SeedGenerator(1)))
    # Per block the variance grows by 1 + n^2 Var[w1] Var[w2] / 2: 3x with He (2/n each),
    # 1 + 2/L^2 depth-scaled (2/(nL) each), so RMS growth ~3^(L/2) against ~e^(1/L).
    assert he > 1e6
    assert 1.0 < scaled < 1.1


def test_depth_scaled_config_round_trip_and_bad_arguments():
    initializer = DepthScaled(12, scale=1.5, mode="fan_avg", distribution="uniform", seed=4)
    config = keras.initializers.serialize(initializer)
    restored = keras.initializers.deserialize(config)
    assert isinstance(restored, DepthScaled) and restored.get_config() == initializer.get_config()
    assert restored.get_config()["num_blocks"] == 12 and restored.get_config()["scale"] == 1.5
    np.testing.assert_array_equal(restored((4, 4)), initializer((4, 4)))
    for kwargs, name in (
        ({"num_blocks": 0}, "num_blocks"),
        ({"num_blocks": 4, "scale": 0.0}, "scale"),
        ({"num_blocks": 4, "mode": "fan"}, "mode"),
        ({"num_blocks": 4, "distribution": "normal"}, "distribution"),
    ):
        with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
            DepthScaled(**kwargs)
