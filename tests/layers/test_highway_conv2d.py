import numpy as np
import pytest
from keras import ops

from keras_deepblocks.layers import HighwayConv2D
from layer_testing import run_layer_test


def numpy_conv_same(x, kernel):
    """Stride-1 'same' 2D convolution (cross-correlation), NHWC, odd kernels."""
    kh, kw = kernel.shape[:2]
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            window = padded[:, i : i + x.shape[1], j : j + x.shape[2], :]
            out += window @ kernel[i, j]
    return out


def numpy_highway_conv(x, kernel, bias):
    channels = x.shape[-1]
    fused = numpy_conv_same(x, kernel) + bias
    h = np.maximum(fused[..., :channels], 0)
    t = 1 / (1 + np.exp(-fused[..., channels:]))
    return h * t + x * (1 - t)


@pytest.mark.parametrize(
    "kernel_size, shape", [(3, (2, 6, 6, 4)), (5, (1, 7, 5, 3)), ((1, 3), (2, 4, 4, 2))]
)
def test_matches_numpy_formula(kernel_size, shape, rng):
    layer = HighwayConv2D(kernel_size=kernel_size, transform_bias=-1.5)
    x = rng.normal(size=shape).astype("float32")
    layer.build(shape)
    layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in layer.get_weights()])
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer(x)), numpy_highway_conv(x, kernel, bias), rtol=1e-4, atol=1e-4
    )


def test_channels_first_matches_numpy_on_any_shape(rng):
    """channels_first equals the NumPy formula on the transposed input, on every backend.

    On TensorFlow `ops.add` turned the channels-first bias into a `BiasAdd` on the
    last axis when the width equals `2 * channels`: (2, 3, 5, 6) was off by 0.75-0.95.
    """
    for shape in [(2, 3, 5, 6), (1, 2, 4, 4), (2, 3, 6, 5), (1, 3, 1, 1), (2, 3, 5, 5)]:
        first = HighwayConv2D(data_format="channels_first", transform_bias=-0.5)
        first.build(shape)
        weights = [rng.normal(0, 0.5, w.shape).astype("float32") for w in first.get_weights()]
        first.set_weights(weights)
        x = rng.normal(size=shape).astype("float32")
        x_last = np.transpose(x, (0, 2, 3, 1))
        expected = numpy_highway_conv(x_last, *weights)
        got = np.transpose(ops.convert_to_numpy(first(x)), (0, 2, 3, 1))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=str(shape))
        last = HighwayConv2D(data_format="channels_last", transform_bias=-0.5)
        last.build(x_last.shape)
        last.set_weights(weights)
        np.testing.assert_allclose(
            got, ops.convert_to_numpy(last(x_last)), rtol=1e-5, atol=1e-5, err_msg=str(shape)
        )


def test_gate_bias_extremes(rng):
    x = rng.normal(size=(1, 4, 4, 2)).astype("float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(HighwayConv2D(transform_bias=-1e4)(x)), x, atol=1e-6
    )
    opened = HighwayConv2D(transform_bias=1e4)
    y = ops.convert_to_numpy(opened(x))
    kernel = opened.get_weights()[0]
    np.testing.assert_allclose(
        y, np.maximum(numpy_conv_same(x, kernel[..., :2]), 0), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"kernel_size": 0}, ValueError, "kernel_size"),
        ({"kernel_size": (3, 3, 3)}, ValueError, "kernel_size"),
        ({"data_format": "nhwc"}, ValueError, "data_format"),
        ({"transform_bias": None}, TypeError, "transform_bias"),
        ({"kernel_size": 2}, ValueError, "odd"),
        ({"kernel_size": (3, 4)}, ValueError, "odd"),
        ({"kernel_initializer": None}, ValueError, "kernel_initializer"),
        ({"bias_regularizer": "nope"}, ValueError, "bias_regularizer"),
        ({"kernel_constraint": "nope"}, ValueError, "kernel_constraint"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        HighwayConv2D(**kwargs)


@pytest.mark.parametrize(
    "kwargs, input_shape",
    [
        ({}, (2, 6, 6, 4)),
        (
            {
                "kernel_size": (3, 1),
                "dilation_rate": (1, 2),
                "activation": "tanh",
                "transform_bias": -2.0,
                "kernel_regularizer": "l2",
                "bias_constraint": "non_neg",
            },
            (2, 5, 6, 3),
        ),
        ({"data_format": "channels_first", "transform_bias": -1.5}, (2, 3, 5, 5)),
    ],
    ids=["defaults", "options", "channels_first"],
)
def test_layer_contract(kwargs, input_shape):
    run_layer_test(
        HighwayConv2D,
        kwargs,
        input_shape=input_shape,
        expected_output_shape=input_shape,
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


@pytest.mark.parametrize(
    "args, kwargs, error, fix",
    [
        # The Conv2D habit: a filter count where the window goes (filter counts are even).
        ((16,), {}, ValueError, "HighwayConv2D(3)"),
        ((64,), {}, ValueError, "HighwayConv2D(3)"),
        ((16, 3), {}, TypeError, 'Conv2D(16, 3, padding="same")'),
        ((), {"filters": 16}, TypeError, 'Conv2D(16, 3, padding="same")'),
    ],
)
def test_filters_habit_says_that_channels_are_kept(args, kwargs, error, fix):
    with pytest.raises(error, match="keeps the channels of its input.*no `filters`") as info:
        HighwayConv2D(*args, **kwargs)
    assert fix in str(info.value)
