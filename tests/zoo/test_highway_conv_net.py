import keras
import numpy as np
import pytest

from keras_deepblocks.layers import HighwayConv2D
from keras_deepblocks.zoo.highway_nets import highway_conv_net
from keras_deepblocks.zoo.highway_nets import highway_mlp
from keras_deepblocks.zoo.highway_nets import plain_conv_net
from keras_deepblocks.zoo.highway_nets import plain_mlp


def test_highway_conv_net_layout(tmp_path, rng):
    model = highway_conv_net((8, 8, 3), 7, depth=4, filters=(4, 8), transform_bias=-2.5)
    highways = [layer for layer in model.layers if isinstance(layer, HighwayConv2D)]
    assert len(highways) == 4 and model.output_shape == (None, 7)
    # Two highway layers per stage, at 8 and 4 pixels.
    assert [h.output.shape[1:] for h in highways] == [(8, 8, 4)] * 2 + [(4, 4, 8)] * 2
    for layer in highways:
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer.bias)[layer.bias.shape[0] // 2 :], -2.5
        )
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)

    path = tmp_path / "net.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)), probabilities)


def test_plain_conv_net_has_convolutions_in_place_of_highways():
    model = plain_conv_net((8, 8, 1), 10, depth=3, filters=(4, 4, 4))
    assert not any(isinstance(layer, HighwayConv2D) for layer in model.layers)
    assert sum(layer.name.startswith("conv_") for layer in model.layers) == 3


def test_conv_net_checks_depth_and_filters():
    with pytest.raises(
        ValueError, match="`depth` must be a positive multiple of len\\(filters\\) = 3"
    ):
        highway_conv_net((8, 8, 1), 10, depth=4)
    with pytest.raises(ValueError, match="`filters`"):
        highway_conv_net((8, 8, 1), 10, filters=(4, 0))


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: highway_conv_net((8, 8, 1), 10, depth=True, filters=(4,)), "depth"),
        (lambda: highway_conv_net((8, 8, 1), 10, filters=(True, 4)), "filters"),
        (lambda: highway_conv_net((8, 8, 1), 0), "num_classes"),
        (lambda: highway_mlp((8,), 3, depth=True), "depth"),
        (lambda: highway_mlp((8,), 3, width=np.bool_(True)), "width"),
        (lambda: plain_mlp((8,), 0), "num_classes"),
    ],
)
def test_bad_arguments_name_themselves(build, name):
    # `depth=True` built a one-layer net: bools passed as integers.
    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        build()


def test_numpy_integers_are_sizes():
    model = highway_mlp((np.int64(8),), np.int64(3), depth=np.int64(2), width=np.int32(6))
    assert model.output_shape == (None, 3)
    assert model.get_layer("highway").num_layers == 2
    model = highway_conv_net((8, 8, 1), np.int64(5), depth=np.int64(2), filters=(np.int64(4),))
    assert model.output_shape == (None, 5)
