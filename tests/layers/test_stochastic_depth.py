import math

import keras
import numpy as np
import pytest
from keras import layers

from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.layers import StochasticDepth
from keras_deepblocks.layers import linear_decay
from keras_deepblocks.layers.residual_unit import option_a_shortcut
from keras_deepblocks.layers.stochastic_depth import SKIP_STRATEGIES
from keras_deepblocks.layers.stochastic_depth import fixed_count_keep_mask
from keras_deepblocks.layers.stochastic_depth import kept_block_slots
from layer_testing import run_layer_test

BACKEND = keras.backend.backend()


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def dense_branch(width, rng, bias=None):
    """A Dense branch with known weights, so tests can compute `f(x)` in NumPy."""
    branch = layers.Dense(width)
    branch.build((None, width))
    kernel = rng.normal(size=(width, width)).astype("float32")
    bias = rng.normal(size=(width,)).astype("float32") if bias is None else bias
    branch.set_weights([kernel, bias])
    return branch, lambda x: x @ kernel + bias


def binomial_bounds(n, p, sigmas=4.5):
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


class CountingDense(layers.Dense):
    """Dense that counts how often its `call` really runs (eager only)."""

    calls = 0

    def call(self, inputs):
        CountingDense.calls += 1
        return super().call(inputs)


# ----------------------------------------------------------------- schedules


def test_linear_decay_matches_the_paper_formula():
    num_blocks, final = 54, 0.5
    expected = 1 - np.arange(1, num_blocks + 1) / num_blocks * (1 - final)
    got = [linear_decay(l, num_blocks, final) for l in range(1, num_blocks + 1)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert linear_decay(num_blocks, num_blocks, 0.2) == pytest.approx(0.2)
    assert linear_decay(3, 6, 1.0) == 1.0


@pytest.mark.parametrize(
    "args, match",
    [
        ((0, 5, 0.5), "block_index"),
        ((6, 5, 0.5), "block_index"),
        ((1, 0, 0.5), "num_blocks"),
        ((1, 5, 0.0), "final_survival_probability"),
        ((1, 5, 1.5), "final_survival_probability"),
    ],
)
def test_linear_decay_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        linear_decay(*args)


# ------------------------------------------------------------ StochasticDepth


@pytest.mark.parametrize("skip_strategy", SKIP_STRATEGIES)
def test_batch_mode_keeps_with_probability_p_and_drops_exactly(skip_strategy, rng):
    p, calls = 0.7, 300
    branch, reference = dense_branch(3, rng)
    block = StochasticDepth(branch, p, skip_strategy=skip_strategy, seed=7)
    x = rng.normal(size=(4, 3)).astype("float32")
    kept = 0
    for _ in range(calls):
        y = to_numpy(block(x, training=True))
        if np.array_equal(y, x):
            continue
        np.testing.assert_allclose(y, x + reference(x), atol=1e-5)
        kept += 1
    low, high = binomial_bounds(calls, p)
    assert low < kept < high


def test_dropped_branch_is_not_executed_eagerly(rng):
    branch = CountingDense(3)
    block = StochasticDepth(branch, 0.5, seed=3)
    x = rng.normal(size=(2, 3)).astype("float32")
    block(x, training=False)
    CountingDense.calls = 0
    kept = sum(not np.array_equal(to_numpy(block(x, training=True)), x) for _ in range(40))
    assert 0 < kept < 40
    assert CountingDense.calls == kept

    computing = StochasticDepth(CountingDense(3), 0.5, skip_strategy="multiply", seed=3)
    computing(x, training=False)
    CountingDense.calls = 0
    for _ in range(40):
        computing(x, training=True)
    assert CountingDense.calls == 40


def test_sample_mode_draws_per_example(rng):
    p, batch = 0.6, 2000
    branch, _ = dense_branch(2, rng, bias=np.ones(2, "float32"))
    branch.set_weights([np.zeros((2, 2), "float32"), np.ones(2, "float32")])
    block = StochasticDepth(branch, p, drop_mode="sample", seed=5)
    y = to_numpy(block(np.zeros((batch, 2), "float32"), training=True))
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert np.all(y[:, 0] == y[:, 1])  # one draw per example, not per value
    low, high = binomial_bounds(batch, p)
    assert low < y[:, 0].sum() < high

    inverted = StochasticDepth(branch, p, drop_mode="sample", rescale="training", seed=5)
    y = to_numpy(inverted(np.zeros((batch, 2), "float32"), training=True))
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / p], rtol=1e-6)


def test_inference_rescales_by_p(rng):
    p = 0.3
    branch, reference = dense_branch(5, rng)
    x = rng.normal(size=(6, 5)).astype("float32")
    block = StochasticDepth(branch, p, seed=1)
    first = to_numpy(block(x, training=False))
    np.testing.assert_allclose(first, x + p * reference(x), atol=1e-6)
    np.testing.assert_array_equal(to_numpy(block(x)), first)  # deterministic


def test_inverted_rescale_scales_kept_branches_in_training(rng):
    p = 0.4
    branch, reference = dense_branch(5, rng)
    x = rng.normal(size=(6, 5)).astype("float32")
    block = StochasticDepth(branch, p, rescale="training", seed=2)
    np.testing.assert_allclose(to_numpy(block(x, training=False)), x + reference(x), atol=1e-6)
    outputs = [to_numpy(block(x, training=True)) for _ in range(20)]
    kept = [y for y in outputs if not np.array_equal(y, x)]
    assert 0 < len(kept) < 20
    for y in kept:
        np.testing.assert_allclose(y, x + reference(x) / p, atol=1e-5)


def test_same_seed_same_draws(rng):
    x = rng.normal(size=(2, 3)).astype("float32")

    def pattern(seed):
        block = StochasticDepth(layers.Dense(3, bias_initializer="ones"), 0.5, seed=seed)
        return [np.array_equal(to_numpy(block(x, training=True)), x) for _ in range(30)]

    assert pattern(11) == pattern(11)
    assert pattern(11) != pattern(12)


@pytest.mark.parametrize("skip_strategy", SKIP_STRATEGIES)
@pytest.mark.parametrize("jit_compile", [False, True])
def test_compiled_train_steps_touch_branch_only_when_kept(skip_strategy, jit_compile, rng):
    """In compiled `fit` steps a dropped branch keeps its BN statistics and
    its weights (zero gradient); a kept one updates both, BN as without the
    wrapper. Covers tf.cond with and without XLA, and JAX's conditional."""
    if BACKEND == "torch" and jit_compile:
        pytest.skip("torch.compile takes minutes on CPU; eager is the torch default")
    momentum, steps = 0.5, 14
    branch = keras.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(4, use_bias=False),
            layers.BatchNormalization(momentum=momentum),
        ]
    )
    block = StochasticDepth(branch, 0.5, skip_strategy=skip_strategy, seed=4)
    model = keras.Sequential([keras.Input((4,)), block])
    model.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=jit_compile)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 4)).astype("float32")
    dense, norm = branch.layers
    kept = []
    for _ in range(steps):
        kernel = to_numpy(dense.kernel)
        mean = to_numpy(norm.moving_mean)
        weights = [to_numpy(w) for w in branch.trainable_weights]
        model.train_on_batch(x, y)
        new_mean = to_numpy(norm.moving_mean)
        changed = [
            not np.array_equal(to_numpy(w), old)
            for w, old in zip(branch.trainable_weights, weights)
        ]
        if np.array_equal(new_mean, mean):
            assert not any(changed)
            kept.append(False)
        else:
            expected = momentum * mean + (1 - momentum) * (x @ kernel).mean(axis=0)
            np.testing.assert_allclose(new_mean, expected, rtol=1e-5, atol=1e-6)
            assert all(changed)
            kept.append(True)
    assert 0 < sum(kept) < steps  # draws change from step to step


def test_auto_strategy_skips_unless_xla_compiles_by_default(monkeypatch):
    """The documented choice: skip eagerly, under `torch` and in TF graphs on a
    CPU-only machine; compute and select under JAX's jit and in TF graphs where
    TensorFlow sees a GPU (where Keras's `jit_compile="auto"` means XLA)."""
    from keras_deepblocks.layers.stochastic_depth import _skip_method

    keep = keras.ops.convert_to_tensor(True)
    assert _skip_method(keep, "auto") == "python"
    assert _skip_method(keep, "multiply") == "select"
    seen = []
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def trace(jit_compile):
            def record(k):
                seen.append((_skip_method(k, "auto"), _skip_method(k, "skip")))
                return k

            tf.function(record, jit_compile=jit_compile)(keep)

        for jit_compile in (False, True):
            trace(jit_compile)
        gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
        cpus = tf.config.list_physical_devices("CPU")
        monkeypatch.setattr(tf.config, "list_physical_devices", lambda *args: cpus + [gpu])
        trace(False)
        assert seen == [("tf.cond", "tf.cond")] * 2 + [("select", "tf.cond")]
    elif BACKEND == "jax":
        import jax

        jax.jit(lambda k: seen.append((_skip_method(k, "auto"), _skip_method(k, "skip"))) or k)(
            keep
        )
        assert seen == [("select", "jax.cond")]


def test_no_module_imports_tensorflow_internals():
    """`tensorflow.python` and `tf.__internal__` are not TensorFlow's public API."""
    import keras_deepblocks
    import pathlib

    package = pathlib.Path(keras_deepblocks.__file__).parent
    offenders = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if "tensorflow.python" in path.read_text(encoding="utf-8")
        or "tf.__internal__" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"survival_probability": 0.0}, ValueError, "survival_probability"),
        ({"survival_probability": 1.01}, ValueError, "survival_probability"),
        ({"survival_probability": -0.5}, ValueError, "survival_probability"),
        ({"survival_probability": float("nan")}, ValueError, "survival_probability"),
        ({"survival_probability": "0.5"}, TypeError, "survival_probability"),
        ({"drop_mode": "row"}, ValueError, "drop_mode"),
        ({"rescale": "never"}, ValueError, "rescale"),
        ({"skip_strategy": "cond"}, ValueError, "skip_strategy"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        StochasticDepth(layers.Dense(3), **kwargs)
    with pytest.raises(error, match=match):
        ResidualUnit(4, **{"survival_probability": 0.5, **kwargs})


def test_branch_must_be_a_shape_preserving_layer():
    with pytest.raises(TypeError, match="`layer` must be a Keras layer"):
        StochasticDepth(lambda x: x)
    with pytest.raises(ValueError, match="must keep the shape of its input"):
        StochasticDepth(layers.Dense(5))(np.zeros((2, 3), "float32"))


def conv_bn_relu():
    return keras.Sequential(
        [layers.Conv2D(3, 3, padding="same"), layers.BatchNormalization(), layers.ReLU()]
    )


def functional_branch():
    inputs = keras.Input((6,))
    return keras.Model(inputs, layers.Dense(6, activation="tanh")(inputs))


@pytest.mark.parametrize(
    "kwargs, input_shape, trainable, non_trainable",
    [
        (
            {"layer": conv_bn_relu(), "survival_probability": 0.8, "rescale": "training"},
            (2, 6, 6, 3),
            4,
            2,
        ),
        (
            {"layer": layers.Dense(6), "survival_probability": 0.6, "drop_mode": "sample"},
            (3, 6),
            2,
            0,
        ),
        (
            {
                "layer": functional_branch(),
                "skip_strategy": "multiply",
                "survival_probability": 0.9,
            },
            (3, 6),
            2,
            0,
        ),
    ],
    ids=["sequential_branch", "dense_branch", "functional_branch"],
)
def test_layer_contract(kwargs, input_shape, trainable, non_trainable):
    # Includes: the branch's weight paths are the same after `load_model`
    # (an unbuilt branch's lost their `stochastic_depth/` prefix).
    run_layer_test(
        StochasticDepth,
        kwargs,
        input_shape=input_shape,
        expected_output_shape=input_shape,
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
    )


def test_branch_weights_keep_their_paths_after_loading(tmp_path, rng):
    inputs = keras.Input((6,))
    x = StochasticDepth(keras.Sequential([layers.Dense(6, name="fc")], name="f"), name="sd1")(
        inputs
    )
    prebuilt = keras.Sequential([keras.Input((6,)), layers.Dense(6, name="fc2")], name="g")
    outputs = StochasticDepth(prebuilt, name="sd2")(x)
    model = keras.Model(inputs, outputs)
    paths = [v.path for v in model.weights]
    assert paths[:2] == ["sd1/f/fc/kernel", "sd1/f/fc/bias"]
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert [v.path for v in loaded.weights] == paths
    x = rng.normal(size=(2, 6)).astype("float32")
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))


def test_configs_of_version_0_1_0_name_the_branch_branch():
    block = StochasticDepth(layers.Dense(3), 0.7, seed=2)
    config = block.get_config()
    config["branch"] = config.pop("layer")
    restored = StochasticDepth.from_config(config)
    assert restored.get_config() == block.get_config()
    assert restored.branch is restored.layer


# ------------------------------------------------------- ResidualUnit + depth


@pytest.mark.parametrize(
    "filters, strides, preactivation, shortcut",
    [(4, 1, False, "A"), (8, 2, False, "A"), (4, 1, True, "A"), (8, 2, True, "B")],
)
def test_residual_unit_drops_its_branch(filters, strides, preactivation, shortcut, rng):
    kwargs = dict(strides=strides, preactivation=preactivation, shortcut=shortcut)
    unit = ResidualUnit(filters, survival_probability=0.5, seed=1, **kwargs)
    plain = ResidualUnit(filters, **kwargs)
    x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    unit.build(x.shape)
    plain.build(x.shape)
    assert len(unit.weights) == len(plain.weights)
    branch_state = {id(v) for v in unit.branch.non_trainable_weights}
    if preactivation and unit.has_identity_shortcut:
        branch_state |= {id(v) for v in unit.preact_norm.non_trainable_weights}
    outcomes = set()
    for _ in range(12):
        if outcomes == {"kept", "dropped"}:
            break
        plain.set_weights(unit.get_weights())
        before = {id(v): to_numpy(v) for v in unit.non_trainable_weights}
        y = to_numpy(unit(x, training=True))
        expected_kept = to_numpy(plain(x, training=True))
        if np.allclose(y, expected_kept, atol=1e-5):
            outcomes.add("kept")
            for v, w in zip(unit.non_trainable_weights, plain.non_trainable_weights):
                np.testing.assert_allclose(to_numpy(v), to_numpy(w), atol=1e-6)
            continue
        outcomes.add("dropped")
        np.testing.assert_array_equal(y, dropped_reference(unit, x))
        for v in unit.non_trainable_weights:
            if id(v) in branch_state:
                np.testing.assert_array_equal(to_numpy(v), before[id(v)])
    assert outcomes == {"kept", "dropped"}


def dropped_reference(unit, x):
    """`shortcut(x)` (then ReLU if post-activation), in NumPy where possible."""
    if unit.has_identity_shortcut:
        shortcut = x
    elif unit.shortcut == "A":
        shortcut = to_numpy(
            option_a_shortcut(x, unit.output_channels, unit.strides, "channels_last")
        )
    else:  # projection of the pre-activated input: the unit's own layers
        preact = to_numpy(keras.ops.relu(unit.preact_norm(x, training=True)))
        shortcut = to_numpy(unit.projection(preact, training=True))
    return shortcut if unit.preactivation else np.maximum(shortcut, 0)


def test_residual_unit_inference_rescales_branch(rng):
    p = 0.35
    unit = ResidualUnit(4, survival_probability=p, seed=1)
    x = rng.normal(size=(2, 5, 5, 4)).astype("float32")
    unit.build(x.shape)
    residual = to_numpy(unit.branch(x, training=False))
    np.testing.assert_allclose(
        to_numpy(unit(x, training=False)), np.maximum(x + p * residual, 0), atol=1e-6
    )


def resnet(depth_units, final_survival_probability, input_shape=(8, 8, 3)):
    """A narrow CIFAR-style ResNet: few distinct shapes keep JAX's compiles short."""
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    total = 3 * depth_units
    index = 0
    for stage, filters in enumerate((4, 4, 8)):
        for block in range(depth_units):
            index += 1
            x = ResidualUnit(
                filters,
                strides=2 if stage and not block else 1,
                survival_probability=linear_decay(index, total, final_survival_probability),
            )(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10)(x))


def test_stochastic_depth_resnet_fits_saves_and_loads(tmp_path, rng):
    model = resnet(1, 0.5)
    probabilities = [l.survival_probability for l in model.layers if isinstance(l, ResidualUnit)]
    np.testing.assert_allclose(probabilities, [5 / 6, 4 / 6, 0.5])
    model.compile(
        keras.optimizers.SGD(0.05, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = rng.normal(size=(16, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 10, size=16)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    path = tmp_path / "resnet.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    unit = loaded.layers[2]
    assert unit.get_config()["survival_probability"] == pytest.approx(5 / 6)


# ---------------------------------------------------------- mixed precision


def float16_branch(width, rng, scale):
    """A float16 Dense branch with known weights and its float64 NumPy reference."""
    branch = layers.Dense(width, dtype="mixed_float16")
    branch.build((None, width))
    kernel = rng.normal(0, scale, size=(width, width)).astype("float32")
    branch.set_weights([kernel, np.zeros(width, "float32")])
    return branch, lambda x: x.astype("float64") @ kernel


@pytest.mark.parametrize("drop_mode", ["sample", "batch"])
def test_tiny_survival_probability_under_mixed_float16(drop_mode, rng, monkeypatch):
    # 1 / p = 1e5 overflows float16 (largest 65504): dropped samples were 0 * inf = NaN.
    p = 1e-5
    branch, reference = float16_branch(4, rng, scale=1e-3)
    block = StochasticDepth(
        branch, p, drop_mode=drop_mode, rescale="training", seed=3, dtype="mixed_float16"
    )
    x = rng.normal(size=(8, 4)).astype("float32")
    dropped = to_numpy(block(x, training=True))  # P(any keep) = 8e-5
    np.testing.assert_array_equal(dropped, x.astype("float16"))
    # Every draw below p: each branch is kept and scaled by 1 / p (here about 1e2).
    monkeypatch.setattr(keras.random, "uniform", lambda shape, **kwargs: keras.ops.zeros(shape))
    kept = to_numpy(block(x, training=True)).astype("float64")
    expected = x + reference(x) / p
    assert np.abs(expected - x).max() > 100
    np.testing.assert_allclose(kept, expected, rtol=1e-2, atol=1.0)


def test_dropped_block_under_mixed_float16_is_its_input_whatever_the_weights(rng):
    # The zero-gradient link summed the float32 weights in float16: 4 * 4 * 5000 = 8e4
    # overflowed to inf, and inf * 0 made the output NaN.
    branch = layers.Dense(
        4, kernel_initializer=keras.initializers.Constant(5000.0), dtype="mixed_float16"
    )
    block = StochasticDepth(branch, 1e-6, skip_strategy="skip", seed=1, dtype="mixed_float16")
    x = rng.normal(size=(3, 4)).astype("float32")
    np.testing.assert_array_equal(to_numpy(block(x, training=True)), x.astype("float16"))


# Fixed-count sampling: the draw of a stacked stage (issue 12).
SURVIVAL = [linear_decay(l, 18, 0.5) for l in range(1, 19)]  # S = 13.25


def _keep_masks(probabilities, draws, seed=11):
    generator = keras.random.SeedGenerator(seed)
    return np.stack(
        [
            keras.ops.convert_to_numpy(fixed_count_keep_mask(probabilities, generator))
            for _ in range(draws)
        ]
    )


def test_each_block_is_kept_with_its_survival_probability():
    masks = _keep_masks(SURVIVAL, 2000)
    p = np.array(SURVIVAL)
    sigma = np.sqrt(p * (1 - p) / len(masks))
    assert np.all(np.abs(masks.mean(axis=0) - p) <= 4 * sigma + 1e-9), masks.mean(axis=0) - p
    # Not independent draws: the depth varies by at most one block.
    assert set(masks.sum(axis=1)) == {13, 14}
    # And the draws do vary: no block pattern is the same every time.
    assert len({row.tobytes() for row in masks}) > 100


@pytest.mark.parametrize(
    "probabilities, counts",
    [
        ([1.0] * 5, {5}),
        ([0.5, 0.5], {1}),  # an integer S is kept exactly
        ([0.25] * 4 + [1.0], {2}),
        ([0.3, 0.9, 0.6, 1.0, 0.45], {3, 4}),
        ([1e-3] * 3, {0, 1}),
    ],
)
def test_the_number_kept_is_the_floor_or_ceiling_of_the_sum(probabilities, counts):
    masks = _keep_masks(probabilities, 200, seed=5)
    assert set(masks.sum(axis=1)) <= counts
    assert np.all(masks[:, np.array(probabilities) == 1.0])  # p = 1 is always kept


def test_an_integer_seed_repeats_its_draw_and_bad_probabilities_are_refused():
    first = keras.ops.convert_to_numpy(fixed_count_keep_mask(SURVIVAL, seed=3))
    again = keras.ops.convert_to_numpy(fixed_count_keep_mask(SURVIVAL, seed=3))
    np.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match=r"`survival_probabilities\[1\]` must be"):
        fixed_count_keep_mask([0.5, 0.0], seed=1)


def test_kept_blocks_fill_the_slots_in_their_order():
    masks = _keep_masks(SURVIVAL, 50, seed=2)
    for mask in masks:
        blocks, used = kept_block_slots(mask, 14)
        blocks, used = keras.ops.convert_to_numpy(blocks), keras.ops.convert_to_numpy(used)
        kept = np.flatnonzero(mask)
        assert blocks[: len(kept)].tolist() == kept.tolist()
        assert used.tolist() == [True] * len(kept) + [False] * (14 - len(kept))
        assert not mask[blocks[len(kept) :]].any()  # spare slots name dropped blocks


def test_fixed_count_sampling_traces_into_a_compiled_function():
    backend = keras.backend.backend()
    if backend == "torch":
        pytest.skip("torch.compile of a tiny function costs more than the test is worth")
    if backend == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(lambda: fixed_count_keep_mask(SURVIVAL, seed=4), jit_compile=True)
    else:
        import jax

        compiled = jax.jit(lambda: fixed_count_keep_mask(SURVIVAL, seed=4))
    mask = keras.ops.convert_to_numpy(compiled())
    assert mask.shape == (18,) and mask.sum() in (13, 14)
