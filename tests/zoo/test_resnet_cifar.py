"""The CIFAR ResNet builders: architecture, arguments, serialization, stochastic depth."""

import keras
import numpy as np
import pytest

from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.zoo import cifar_preprocess
from keras_deepblocks.zoo import resnet20
from keras_deepblocks.zoo import resnet32
from keras_deepblocks.zoo import resnet44
from keras_deepblocks.zoo import resnet56
from keras_deepblocks.zoo import resnet110
from keras_deepblocks.zoo import resnet1202
from keras_deepblocks.zoo import resnet_cifar
from keras_deepblocks.zoo.converters.resnet_cifar import assign_weights
from keras_deepblocks.zoo.converters.resnet_cifar import unit_weights
from keras_deepblocks.zoo.resnet_cifar_presets import RESNET_CIFAR_PRESETS
from residual_layers import residual_layers
from residual_layers import survival_probabilities


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def expected_count(depth, num_classes=10):
    """Parameters of the paper's network, counted from its definition."""
    n = (depth - 2) // 6
    count = 3 * 9 * 16 + 2 * 16  # stem conv + BN
    channels = 16
    for filters in (16, 32, 64):
        for _ in range(n):
            count += 9 * channels * filters + 9 * filters * filters + 4 * filters
            channels = filters
    return count + 64 * num_classes + num_classes


@pytest.mark.parametrize(
    "builder, depth, published_millions",
    [
        (resnet20, 20, 0.27),
        (resnet32, 32, 0.46),
        (resnet44, 44, 0.66),
        (resnet56, 56, 0.85),
        (resnet110, 110, 1.7),
    ],
)
def test_parameter_counts_match_the_paper(builder, depth, published_millions):
    model = builder()
    count = trainable_count(model)
    assert count == expected_count(depth)
    assert count == RESNET_CIFAR_PRESETS[f"resnet{depth}_cifar10"]["parameters"]
    digits = 1 if published_millions >= 1 else 2
    assert round(count / 1e6, digits) == published_millions
    assert len(survival_probabilities(model)) == 3 * (depth - 2) // 6
    assert model.output_shape == (None, 10)


def test_layout_follows_the_paper():
    model = resnet_cifar(14, include_preprocessing=False, stacked_stages=False)
    shapes = {layer.name: layer.output.shape for layer in model.layers}
    assert shapes["conv1"] == (None, 32, 32, 16)
    assert shapes["layer1_1"] == (None, 32, 32, 16)
    assert shapes["layer2_0"] == (None, 16, 16, 32)
    assert shapes["layer3_1"] == (None, 8, 8, 64)
    assert model.get_layer("layer2_0").strides == 2
    assert model.get_layer("layer2_1").strides == 1
    assert model.get_layer("linear").activation is keras.activations.linear


def test_stacked_stages_hold_the_same_shaped_units():
    model = resnet_cifar(20, include_preprocessing=False)
    layers = [(layer.name, type(layer).__name__) for layer in residual_layers(model)]
    assert layers == [
        ("layer1", "ResidualStack"),
        ("layer2_0", "ResidualUnit"),
        ("layer2", "ResidualStack"),
        ("layer3_0", "ResidualUnit"),
        ("layer3", "ResidualStack"),
    ]
    assert [model.get_layer(f"layer{s}").num_blocks for s in (1, 2, 3)] == [3, 2, 2]
    assert model.get_layer("layer3").output.shape == (None, 8, 8, 64)
    assert model.get_layer("layer2").get_weights()[0].shape == (2, 3, 3, 32, 32)


@pytest.mark.parametrize("preactivation", [False, True])
def test_stacked_stages_compute_what_separate_units_do(rng, preactivation):
    kwargs = dict(input_shape=(8, 8, 3), preactivation=preactivation, shortcut="B")
    stacked = resnet_cifar(14, **kwargs)
    separate = resnet_cifar(14, stacked_stages=False, **kwargs)
    weights = unit_weights(separate)
    # Random statistics too, so that a row assigned to the wrong unit shows.
    weights = {path: value + rng.uniform(0.5, 1.0, value.shape) for path, value in weights.items()}
    assign_weights(separate, weights, "random")
    assign_weights(stacked, weights, "random")
    images = rng.uniform(0, 255, (3, 8, 8, 3)).astype("float32")
    for training in (False, True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(stacked(images, training=training)),
            keras.ops.convert_to_numpy(separate(images, training=training)),
            rtol=1e-5,
            atol=1e-5,
        )
    # Both updated their BN statistics alike.
    after = unit_weights(stacked)
    for path, value in unit_weights(separate).items():
        np.testing.assert_allclose(after[path], value, rtol=1e-5, atol=1e-6, err_msg=path)


@pytest.mark.parametrize("depth", [21, 2, 0, 20.0, "20", True])
def test_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match=r"6n \+ 2"):
        resnet_cifar(depth)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"shortcut": "C"}, "shortcut"),
        ({"preactivation": 1}, "preactivation"),
        ({"gradient_checkpointing": "yes"}, "gradient_checkpointing"),
        ({"stacked_stages": "yes"}, "stacked_stages"),
        ({"stochastic_depth_sampling": "poisson"}, "stochastic_depth_sampling"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        resnet_cifar(8, **kwargs)


def test_preprocessing_is_the_checkpoints_normalization(rng):
    images = rng.integers(0, 256, (2, 16, 16, 3)).astype("uint8")
    with_preprocessing = resnet_cifar(8, input_shape=(16, 16, 3))
    without = resnet_cifar(8, input_shape=(16, 16, 3), include_preprocessing=False)
    without.set_weights(with_preprocessing.get_weights())
    expected = (images / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    preprocessed = keras.ops.convert_to_numpy(cifar_preprocess(images))
    np.testing.assert_allclose(preprocessed, expected, atol=1e-5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(with_preprocessing(images)),
        keras.ops.convert_to_numpy(without(expected.astype("float32"))),
        atol=1e-4,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"shortcut": "B", "preactivation": True},
        {"gradient_checkpointing": True, "classifier_activation": "softmax"},
    ],
)
def test_keras_file_round_trip(tmp_path, rng, kwargs):
    model = resnet_cifar(8, num_classes=5, input_shape=(8, 8, 3), **kwargs)
    images = rng.uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(images)), keras.ops.convert_to_numpy(model(images))
    )
    expected = kwargs.get("gradient_checkpointing", False)
    layers = residual_layers(restored)
    assert len(survival_probabilities(restored)) == 3
    assert all(layer.gradient_checkpointing == expected for layer in layers)


def test_preactivation_layout():
    model = resnet_cifar(8, preactivation=True, include_preprocessing=False)
    names = [layer.name for layer in model.layers]
    assert "bn1" not in names and names.index("final_bn") > names.index("layer3_0")
    assert model.get_layer("layer2_0").preactivation and model.get_layer("layer3_0").preactivation
    # Identity-shortcut units: BN-ReLU first in the branch, nothing after the sum.
    stack = model.get_layer("layer1")
    assert [layer.name for layer in stack.block.layers][:2] == ["preact_bn", "preact_relu"]
    assert stack.activation is keras.activations.linear


@pytest.mark.parametrize("stacked_stages", [True, False])
def test_stochastic_depth_follows_linear_decay(stacked_stages):
    model = resnet_cifar(
        20,
        final_survival_probability=0.5,
        include_preprocessing=False,
        stacked_stages=stacked_stages,
        stochastic_depth_sampling="independent",
    )
    expected = [1 - l / 9 * 0.5 for l in range(1, 10)]
    np.testing.assert_allclose(survival_probabilities(model), expected)
    stacks = [layer for layer in residual_layers(model) if isinstance(layer, ResidualStack)]
    assert all(stack.sampling == "independent" for stack in stacks)
    assert len(stacks) == (3 if stacked_stages else 0)
    # Beside stacks, the strided units have no conditional either.
    strategy = "multiply" if stacked_stages else "auto"
    assert model.get_layer("layer2_0").skip_strategy == strategy
    plain = resnet_cifar(8, stacked_stages=stacked_stages)
    assert survival_probabilities(plain) == [None] * 3


@pytest.mark.slow
def test_resnet1202_builds_with_19_4m_parameters_and_trains():
    model = resnet1202(input_shape=(8, 8, 3))
    assert trainable_count(model) == expected_count(1202)
    assert trainable_count(model) == RESNET_CIFAR_PRESETS["resnet1202_cifar10"]["parameters"]
    assert round(trainable_count(model) / 1e6, 1) == 19.4
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    kernel = model.get_layer("linear").kernel
    before = keras.ops.convert_to_numpy(kernel)
    history = model.fit(images, np.array([1, 2]), batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(keras.ops.convert_to_numpy(kernel), before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (32, 32)}, r"`input_shape` must be the shape of one image"),
        ({"input_shape": (32, 32, 3, 1)}, r"`input_shape` must be the shape of one image"),
        ({"input_shape": (32, 0, 3)}, r"`input_shape` must be the shape of one image"),
        ({"input_shape": "32x32"}, r"`input_shape` must be the shape of one image"),
        ({"input_shape": (32, 32, 1)}, r"`input_shape` must have 3 channels"),
        ({"input_shape": (32, 32, None)}, r"`input_shape` needs a known number of channels"),
        (
            {"input_shape": (32, 32, 3), "data_format": "channels_first"},
            r"`input_shape` must have 3 channels, \(channels, height, width\)",
        ),
    ],
)
def test_bad_input_shapes_name_input_shape(kwargs, message):
    # They ended in a backend BroadcastTo error from the normalization's 3-channel mean.
    with pytest.raises(ValueError, match=message):
        resnet_cifar(8, **kwargs)


def test_other_channel_counts_work_without_the_rgb_normalization(rng):
    model = resnet_cifar(8, input_shape=(8, 8, 1), include_preprocessing=False)
    images = rng.normal(size=(2, 8, 8, 1)).astype("float32")
    assert model.predict(images, verbose=0).shape == (2, 10)
    model = resnet_cifar(8, input_shape=(np.int64(8), None, 3), num_classes=np.int64(4))
    assert model.output_shape == (None, 4)
