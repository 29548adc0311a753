import keras
import numpy as np
import pytest
from keras import ops

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
