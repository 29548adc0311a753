import keras
import numpy as np
import pytest
from keras import ops

from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.utils.gradients import gradient_function
from layer_testing import run_layer_test

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class TorchResidualUnit(nn.Module):
    """Reference of the same unit in PyTorch, written from the papers' definitions."""

    def __init__(self, in_channels, filters, stride, bottleneck, preactivation, shortcut):
        super().__init__()
        out_channels = filters * (4 if bottleneck else 1)
        if bottleneck:
            shapes = [
                (in_channels, filters, 1, 1),
                (filters, filters, 3, stride),
                (filters, out_channels, 1, 1),
            ]
        else:
            shapes = [(in_channels, filters, 3, stride), (filters, filters, 3, 1)]
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, k, stride=s, padding=k // 2, bias=False) for i, o, k, s in shapes
        )
        if preactivation:
            norm_channels = [in_channels] + [o for _, o, _, _ in shapes[:-1]]
        else:
            norm_channels = [o for _, o, _, _ in shapes]
        self.norms = nn.ModuleList(nn.BatchNorm2d(c, eps=1e-5, momentum=0.1) for c in norm_channels)
        self.preactivation = preactivation
        self.stride = stride
        self.out_channels = out_channels
        self.identity = stride == 1 and in_channels == out_channels
        self.kind = shortcut
        self.projection = None
        if not self.identity and shortcut == "B":
            layers = [nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)]
            if not preactivation:
                layers.append(nn.BatchNorm2d(out_channels, eps=1e-5))
            self.projection = nn.Sequential(*layers)

    def shortcut(self, x):
        if self.identity:
            return x
        if self.projection is not None:
            return self.projection(x)
        x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def forward(self, x):
        if self.preactivation:
            activated = F.relu(self.norms[0](x))
            out = activated
            for i, conv in enumerate(self.convs):
                if i > 0:
                    out = F.relu(self.norms[i](out))
                out = conv(out)
            return out + (x if self.identity else self.shortcut(activated))
        out = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if i > 0:
                out = F.relu(out)
            out = norm(conv(out))
        return F.relu(out + self.shortcut(x))


def keras_convs_and_norms(unit):
    count = 3 if unit.bottleneck else 2
    convs = [unit.branch.get_layer(f"conv{i}") for i in range(1, count + 1)]
    if unit.preactivation:
        norms = [unit.preact_norm] + [unit.branch.get_layer(f"bn{i}") for i in range(1, count)]
    else:
        norms = [unit.branch.get_layer(f"bn{i}") for i in range(1, count + 1)]
    return convs, norms


def copy_conv(keras_conv, torch_conv):
    kernel = ops.convert_to_numpy(keras_conv.kernel)
    torch_conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def randomize_and_copy_norm(keras_norm, torch_norm, rng):
    channels = keras_norm.gamma.shape[0]
    gamma, beta = rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.2, channels)
    mean, var = rng.normal(0, 0.2, channels), rng.uniform(0.5, 1.5, channels)
    keras_norm.set_weights([a.astype("float32") for a in (gamma, beta, mean, var)])
    for name, value in zip(
        ("weight", "bias", "running_mean", "running_var"), (gamma, beta, mean, var)
    ):
        getattr(torch_norm, name).data = torch.tensor(value, dtype=torch.float32)


CASES = [
    # (in_channels, filters, strides, bottleneck, shortcut)
    (8, 8, 1, False, "A"),
    (4, 8, 2, False, "A"),
    (4, 8, 2, False, "B"),
    (4, 8, 1, False, "B"),
    (16, 4, 1, True, "A"),
    (8, 4, 2, True, "A"),
    (8, 4, 2, True, "B"),
]


@pytest.mark.parametrize("preactivation", [False, True], ids=["post", "pre"])
@pytest.mark.parametrize("in_channels, filters, strides, bottleneck, shortcut", CASES)
def test_matches_pytorch_reference(
    in_channels, filters, strides, bottleneck, shortcut, preactivation, rng
):
    unit = ResidualUnit(
        filters,
        strides=strides,
        bottleneck=bottleneck,
        preactivation=preactivation,
        shortcut=shortcut,
    )
    # Odd spatial size: strided convolutions must pad like PyTorch (1 pixel on every side).
    x = rng.normal(size=(3, 7, 7, in_channels)).astype("float32")
    unit.build(x.shape)
    reference = TorchResidualUnit(
        in_channels, filters, strides, bottleneck, preactivation, shortcut
    )

    convs, norms = keras_convs_and_norms(unit)
    for keras_conv, torch_conv in zip(convs, reference.convs):
        copy_conv(keras_conv, torch_conv)
    for keras_norm, torch_norm in zip(norms, reference.norms):
        randomize_and_copy_norm(keras_norm, torch_norm, rng)
    if reference.projection is not None:
        copy_conv(unit.projection.get_layer("proj_conv"), reference.projection[0])
        if not preactivation:
            randomize_and_copy_norm(
                unit.projection.get_layer("proj_bn"), reference.projection[1], rng
            )

    x_torch = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    for training in (False, True):
        reference.train(training)
        with torch.no_grad():
            expected = reference(x_torch).numpy().transpose(0, 2, 3, 1)
        actual = ops.convert_to_numpy(unit(x, training=training))
        assert actual.shape == expected.shape
        assert np.abs(actual - expected).max() <= 1e-4, f"training={training}"


@pytest.mark.parametrize(
    "kwargs, input_shape, output_shape, params",
    [
        # Option A adds no parameters: 2 convs + 2 BNs.
        (
            {"filters": 32, "strides": 2},
            (8, 8, 16),
            (4, 4, 32),
            16 * 32 * 9 + 32 * 32 * 9 + 4 * 32 * 2,
        ),
        ({"filters": 16}, (8, 8, 16), (8, 8, 16), 2 * 16 * 16 * 9 + 2 * 4 * 16),
        (
            {"filters": 8, "bottleneck": True},
            (5, 5, 32),
            (5, 5, 32),
            32 * 8 + 8 * 8 * 9 + 8 * 32 + 4 * (8 + 8 + 32),
        ),
    ],
)
def test_shapes_and_parameter_counts(kwargs, input_shape, output_shape, params):
    inputs = keras.Input(input_shape)
    unit = ResidualUnit(**kwargs)
    outputs = unit(inputs)
    assert tuple(outputs.shape[1:]) == output_shape
    assert unit.count_params() == params


def test_option_a_keeps_the_input_in_the_middle_channels(rng):
    unit = ResidualUnit(8, strides=2, shortcut="A")
    x = rng.normal(size=(1, 4, 4, 4)).astype("float32")
    unit.build(x.shape)
    # Zero branch (BN gamma = 0): the output is relu(shortcut(x)).
    for norm in keras_convs_and_norms(unit)[1]:
        norm.gamma.assign(np.zeros(norm.gamma.shape, "float32"))
    y = ops.convert_to_numpy(unit(x, training=False))
    expected = np.zeros((1, 2, 2, 8), "float32")
    expected[..., 2:6] = np.maximum(x[:, ::2, ::2, :], 0)
    np.testing.assert_allclose(y, expected, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"filters": 0}, ValueError, "filters"),
        ({"filters": 8, "strides": 0}, ValueError, "strides"),
        ({"filters": 8, "shortcut": "C"}, ValueError, "shortcut"),
        ({"filters": 8, "bottleneck": "yes"}, TypeError, "bottleneck"),
        ({"filters": 8, "data_format": "NHWC"}, ValueError, "data_format"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ResidualUnit(**kwargs)


def test_option_a_cannot_reduce_channels():
    with pytest.raises(ValueError, match="`shortcut` must be 'B' where a unit reduces channels"):
        ResidualUnit(8, strides=2, shortcut="A").build((None, 8, 8, 16))


@pytest.mark.parametrize(
    "kwargs, input_shape, output_shape, trainable, non_trainable",
    [
        ({"filters": 4}, (2, 6, 6, 4), (2, 6, 6, 4), 2 + 2 * 2, 2 * 2),
        (
            {"filters": 8, "strides": 2, "preactivation": True, "shortcut": "B"},
            (2, 6, 6, 4),
            (2, 3, 3, 8),
            3 + 2 * 2,
            2 * 2,
        ),
        (
            {"filters": 2, "bottleneck": True, "momentum": 0.8, "epsilon": 1e-3},
            (2, 5, 5, 8),
            (2, 5, 5, 8),
            3 + 3 * 2,
            3 * 2,
        ),
        (
            {"filters": 4, "survival_probability": 0.5, "seed": 1, "kernel_regularizer": "l2"},
            (2, 6, 6, 4),
            (2, 6, 6, 4),
            2 + 2 * 2,
            2 * 2,
        ),
        (
            {"filters": 8, "strides": 2, "gradient_checkpointing": True, "shortcut": "B"},
            (2, 6, 6, 4),
            (2, 3, 3, 8),
            3 + 3 * 2,
            3 * 2,
        ),
    ],
    ids=["identity", "preactivation_b", "bottleneck", "stochastic_depth", "checkpointing"],
)
def test_layer_contract(kwargs, input_shape, output_shape, trainable, non_trainable):
    run_layer_test(
        ResidualUnit,
        kwargs,
        input_shape=input_shape,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
    )


CHECKPOINTING_CASES = {
    "post_a": {"filters": 8, "strides": 2},
    "pre_b_bottleneck": {"filters": 2, "preactivation": True, "shortcut": "B", "bottleneck": True},
    "depth_auto": {"filters": 4, "preactivation": True, "survival_probability": 0.5},
    "depth_skip": {"filters": 4, "survival_probability": 0.5, "skip_strategy": "skip"},
    "depth_multiply": {"filters": 4, "survival_probability": 0.5, "skip_strategy": "multiply"},
    "depth_sample": {"filters": 4, "survival_probability": 0.5, "drop_mode": "sample"},
}


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("kwargs", CHECKPOINTING_CASES.values(), ids=CHECKPOINTING_CASES.keys())
def test_gradient_checkpointing_gives_the_same_gradients_and_statistics(kwargs, compiled, rng):
    """Gradients, BN statistics and draws agree with the unit without checkpointing.

    `keras.remat` over the unit's own `call` updated the BN statistics twice
    (TensorFlow, PyTorch), leaked tracers (JAX) and drew again in the
    recomputation; compiled TensorFlow steps run the `tf.cond` skip inside it.
    """
    x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    plain = ResidualUnit(**kwargs, seed=5)
    checkpointed = ResidualUnit(**kwargs, seed=5, gradient_checkpointing=True)
    for unit in (plain, checkpointed):
        unit.build(x.shape)
    checkpointed.set_weights(plain.get_weights())
    steps = {unit: gradient_function(unit, compiled=compiled) for unit in (plain, checkpointed)}
    for _ in range(4):  # draws change from step to step
        expected = [ops.convert_to_numpy(g) for g in steps[plain](x)]
        got = [ops.convert_to_numpy(g) for g in steps[checkpointed](x)]
        for want, have, variable in zip(expected, got, plain.trainable_variables):
            np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-5, err_msg=variable.path)
        for want, have in zip(plain.non_trainable_variables, checkpointed.non_trainable_variables):
            np.testing.assert_allclose(
                ops.convert_to_numpy(have), ops.convert_to_numpy(want), atol=1e-6, err_msg=want.path
            )
