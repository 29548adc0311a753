"""Every public layer and initializer checks its arguments when it is made.

Bad values fail in `__init__` with an error that names the argument (not as
NaN outputs or a backend error at call time); NumPy scalars pass where Python
numbers do and leave plain Python numbers in the config.
"""

import json

import keras
import numpy as np
import pytest

from keras_deepblocks.initializers import FusedKernel
from keras_deepblocks.initializers import GateBias
from keras_deepblocks.layers import CharacterIds
from keras_deepblocks.layers import CharCNN
from keras_deepblocks.layers import ElmoLSTM
from keras_deepblocks.layers import ElmoScalarMix
from keras_deepblocks.layers import Highway
from keras_deepblocks.layers import HighwayConv2D
from keras_deepblocks.layers import ProjectedLSTMCell
from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.layers import StochasticDepth
from keras_deepblocks.layers import linear_decay


def python_numbers_only(value):
    """Whether `value` holds no NumPy scalar (a config that `json` and Keras's loader take)."""
    if isinstance(value, dict):
        return all(python_numbers_only(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(python_numbers_only(v) for v in value)
    return not isinstance(value, np.generic)


NUMPY_SCALAR_LAYERS = [
    lambda: Highway(transform_bias=np.float32(-2)),
    lambda: HighwayConv2D(
        kernel_size=np.int64(3), dilation_rate=(np.int32(1), 2), transform_bias=np.float16(-1)
    ),
    lambda: ResidualUnit(
        np.int64(8),
        strides=np.int32(2),
        momentum=np.float32(0.5),
        epsilon=np.float64(1e-3),
        survival_probability=np.float32(0.75),
        seed=np.int64(3),
        bottleneck=np.bool_(False),
    ),
    lambda: ResidualUnit(np.int64(4), momentum=np.float32(0.5), gradient_checkpointing=True),
    lambda: StochasticDepth(
        keras.layers.Dense(3), survival_probability=np.float64(0.8), seed=np.uint8(1)
    ),
    lambda: CharCNN([[np.int64(1), np.int32(4)]], embedding_dim=np.int16(4)),
    lambda: CharacterIds(max_characters_per_token=np.int64(10)),
    lambda: ProjectedLSTMCell(
        np.int64(4),
        projection_dim=np.int32(2),
        cell_clip=np.float32(3),
        projection_clip=np.float64(1.5),
        unit_forget_bias=np.bool_(False),
    ),
    lambda: ElmoLSTM(
        np.int64(4),
        projection_dim=np.int16(2),
        num_layers=np.int64(2),
        cell_clip=np.float32(3),
        skip_connections=np.bool_(True),
        stateful=np.bool_(True),
        max_batch_size=np.int32(8),
    ),
    lambda: ElmoScalarMix(
        num_layers=np.int64(2),
        layer_norm=np.bool_(True),
        initial_weights=[np.float32(0.5), np.int64(1)],
        initial_gamma=np.float16(2),
    ),
]


@pytest.mark.parametrize("make", NUMPY_SCALAR_LAYERS)
def test_numpy_scalars_are_accepted_and_stored_as_python_numbers(make):
    layer = make()
    config = layer.get_config()
    assert python_numbers_only(config), config
    json.dumps(keras.saving.serialize_keras_object(layer))
    assert type(layer).from_config(config).get_config() == config


def test_numpy_scalar_values_are_kept():
    assert Highway(transform_bias=np.float32(-2)).get_config()["transform_bias"] == -2.0
    unit = ResidualUnit(np.int64(8), momentum=np.float32(0.5), seed=np.int64(3))
    assert (unit.filters, unit.momentum, unit.seed) == (8, 0.5, 3)
    assert type(unit.filters) is int and type(unit.momentum) is float and type(unit.seed) is int
    assert HighwayConv2D(np.int64(5)).kernel_size == (5, 5)
    assert GateBias(np.float32(-2)).get_config()["transform_bias"] == -2.0
    assert linear_decay(np.int64(2), np.int64(4), np.float32(0.5)) == 0.75


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: ResidualUnit(4, momentum=2.0), ValueError, r"`momentum` must be in \[0, 1\]"),
        (lambda: ResidualUnit(4, momentum=-0.1), ValueError, r"`momentum` must be in \[0, 1\]"),
        (lambda: ResidualUnit(4, epsilon=-1.0), ValueError, "`epsilon` must be > 0"),
        (lambda: ResidualUnit(4, epsilon=0.0), ValueError, "`epsilon` must be > 0"),
        (
            lambda: ResidualUnit(4, gradient_checkpointing="yes"),
            TypeError,
            "`gradient_checkpointing`",
        ),
        (lambda: ResidualUnit(4, kernel_initializer=None), ValueError, "`kernel_initializer`"),
        (lambda: ResidualUnit(4, kernel_regularizer="nope"), ValueError, "`kernel_regularizer`"),
        (lambda: GateBias(float("nan")), ValueError, "`transform_bias` must be a finite number"),
        (lambda: GateBias(np.float32("-inf")), ValueError, "`transform_bias`"),
        (lambda: GateBias("low"), TypeError, "`transform_bias`"),
        (lambda: GateBias(-1.0, None), ValueError, "`transform_initializer`"),
        (lambda: FusedKernel(None), ValueError, "`initializer`"),
        (lambda: FusedKernel("nope"), ValueError, "`initializer`.*nope"),
        (lambda: CharCNN([[1, 4]], activation="nope"), ValueError, "`activation`"),
        (lambda: CharCNN([[1, 4]], kernel_initializer=None), ValueError, "`kernel_initializer`"),
    ],
)
def test_bad_values_fail_when_the_layer_is_made(make, error, message):
    with pytest.raises(error, match=message):
        make()


BOOLS_WHERE_NUMBERS_GO = [
    (lambda: GateBias(False), TypeError, "transform_bias"),  # was taken as 0.0
    (lambda: Highway(transform_bias=True), TypeError, "transform_bias"),
    (lambda: HighwayConv2D(kernel_size=True), ValueError, "kernel_size"),
    (lambda: ResidualUnit(True), ValueError, "filters"),
    (lambda: ResidualUnit(4, strides=np.bool_(True)), ValueError, "strides"),
    (lambda: ResidualUnit(4, momentum=True), TypeError, "momentum"),
    (lambda: StochasticDepth(keras.layers.Dense(3), seed=True), TypeError, "seed"),
    (
        lambda: StochasticDepth(keras.layers.Dense(3), survival_probability=True),
        TypeError,
        "survival_probability",
    ),
    (lambda: CharCNN([[1, 4]], embedding_dim=True), ValueError, "embedding_dim"),
    (lambda: CharacterIds(max_characters_per_token=True), ValueError, "max_characters"),
    (lambda: linear_decay(True, 4), ValueError, "block_index"),
    (lambda: ProjectedLSTMCell(True), ValueError, "units"),
    (lambda: ProjectedLSTMCell(4, projection_dim=True), ValueError, "projection_dim"),
    (lambda: ProjectedLSTMCell(4, cell_clip=True), TypeError, "cell_clip"),
    (lambda: ElmoLSTM(4, num_layers=True), ValueError, "num_layers"),
    (lambda: ElmoLSTM(4, max_batch_size=np.bool_(True)), ValueError, "max_batch_size"),
    (lambda: ElmoLSTM(4, projection_clip=False), TypeError, "projection_clip"),
    (lambda: ElmoScalarMix(initial_gamma=True), TypeError, "initial_gamma"),
    (lambda: ElmoScalarMix(initial_weights=[True, 0.0]), TypeError, "initial_weights"),
    (lambda: ElmoScalarMix(num_layers=True), ValueError, "num_layers"),
]


def test_bools_are_not_numbers():
    for make, error, name in BOOLS_WHERE_NUMBERS_GO:
        with pytest.raises(error, match=name):
            make()


@pytest.mark.parametrize("seed", [-1, 2**31, 2**40])
def test_seeds_out_of_every_backends_range_fail_when_the_layer_is_made(seed):
    # JAX took -1 and failed at the first training call (uint32), PyTorch 2**31 (int32).
    with pytest.raises(ValueError, match=r"`seed` must be an integer in \[0, 2147483647\]"):
        StochasticDepth(keras.layers.Dense(3), seed=seed)
    with pytest.raises(ValueError, match="`seed`"):
        ResidualUnit(4, survival_probability=0.5, seed=seed)
    for valid in (0, 2**31 - 1):  # the ends of the range train on every backend
        block = StochasticDepth(keras.layers.Dense(3), drop_mode="sample", seed=valid)
        assert tuple(block(np.ones((2, 3), "float32"), training=True).shape) == (2, 3)


def residual_unit():
    return ResidualUnit(4), np.ones((2, 4, 4, 4), "float32")


def checkpointed_unit():
    return ResidualUnit(4, gradient_checkpointing=True), np.ones((2, 4, 4, 4), "float32")


def stochastic_depth_block():
    block = StochasticDepth(keras.layers.Dense(3), survival_probability=1e-6, seed=1)
    return block, np.ones((2, 3), "float32")


LAYERS_WITH_TRAINING = [residual_unit, checkpointed_unit, stochastic_depth_block]


@pytest.mark.parametrize("make", LAYERS_WITH_TRAINING)
def test_training_must_be_a_bool(make):
    layer, x = make()
    # The string "False" is truthy: it trained (dropped the branch, updated BN statistics).
    for training in ("False", "True", 0, 1.0, [False]):
        with pytest.raises(TypeError, match="`training` must be True, False, None"):
            layer(x, training=training)
    expected = keras.ops.convert_to_numpy(layer(x, training=False))
    for flag in (np.bool_(False), keras.ops.convert_to_tensor(False)):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=flag)), expected)
