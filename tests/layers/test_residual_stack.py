"""`ResidualStack`: n residual blocks as one layer over stacked weights (issue 12).

The references are separate `ResidualUnit`s (and NumPy compositions of their
branches) holding the stack's blocks' weights, copied by path with
`get_block_weights` / `block_weight_paths`.
"""

import math
import zipfile

import keras
import numpy as np
import pytest
from keras import layers
from keras import ops

from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.layers import ResidualUnit
from keras_deepblocks.layers import linear_decay
from keras_deepblocks.utils.gradients import gradient_function
from keras_deepblocks.utils.gradients import gradients
from layer_testing import run_layer_test

BACKEND = keras.backend.backend()
FILTERS = 4
SHAPE = (2, 5, 5, FILTERS)


def to_numpy(x):
    return ops.convert_to_numpy(x)


def conv_branch(filters=FILTERS, kernel_initializer="he_normal"):
    """`ResidualUnit(filters)`'s post-activation branch: conv-BN-ReLU-conv-BN."""

    def conv(name):
        return layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=kernel_initializer,
            name=name,
        )

    return keras.Sequential(
        [
            conv("conv1"),
            layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn1"),
            layers.ReLU(name="relu1"),
            conv("conv2"),
            layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn2"),
        ],
        name="branch",
    )


def conv_stack(num_blocks, rng, **kwargs):
    """A built post-activation stack with random BN weights and statistics (all must be read)."""
    stack = ResidualStack(conv_branch(), num_blocks, activation="relu", name="layer1", **kwargs)
    stack.build(SHAPE)
    for index in range(num_blocks):
        values = []
        for path, value in zip(stack.block_weight_paths, stack.get_block_weights(index)):
            if path.endswith(("gamma", "moving_variance")):
                value = rng.uniform(0.5, 1.5, value.shape)
            elif path.endswith(("beta", "moving_mean")):
                value = rng.normal(0.0, 0.2, value.shape)
            values.append(value.astype("float32"))
        stack.set_block_weights(index, values)
    return stack


def units_like(stack, blocks):
    """A Sequential of `ResidualUnit`s holding the weights of `blocks` of `stack`, in that order."""
    units = []
    for index in blocks:
        unit = ResidualUnit(FILTERS)
        unit.build(SHAPE)
        by_path = dict(zip(stack.block_weight_paths, stack.get_block_weights(index)))
        for variable in unit.weights:  # residual_unit_3/branch/conv1/kernel
            variable.assign(by_path.pop(variable.path.split("/", 1)[1]))
        assert not by_path, f"weights the unit lacks: {sorted(by_path)}"
        units.append(unit)
    return keras.Sequential([keras.Input(SHAPE[1:]), *units])


def block_state(stack):
    """The stack's BN statistics as arrays `(num_blocks, ...)`."""
    return [to_numpy(v) for v in stack.weights if "moving_" in v.path]


def unit_gradients_by_block(units, grads):
    """`gradients(units, ...)` regrouped as the stack's: one `(n, ...)` array per stacked weight."""
    by_path = {}
    for variable, grad in zip(units.trainable_variables, grads):
        by_path.setdefault(variable.path.split("/", 1)[1], []).append(grad)
    return by_path


def changed_blocks(before, after):
    """Blocks whose BN statistics changed from `before` to `after`, as a boolean `(n,)`."""
    changed = [
        np.any(a.reshape(len(a), -1) != b.reshape(len(b), -1), axis=1)
        for a, b in zip(after, before)
    ]
    return np.any(changed, axis=0)


def composed(units, blocks):
    """The units of `blocks`, in that order, as one model (the others are not run)."""
    return keras.Sequential([keras.Input(SHAPE[1:])] + [units.layers[i] for i in blocks])


def unit_states(stack, units):
    """The units' BN statistics, stacked like the stack's."""
    by_path = {}
    for unit in units.layers:
        for variable in unit.non_trainable_weights:
            by_path.setdefault(variable.path.split("/", 1)[1], []).append(to_numpy(variable))
    return [np.stack(by_path[path]) for path in stack.block_weight_paths[-4:]]


# ------------------------------------------------- without stochastic depth


@pytest.mark.parametrize("unroll", [True, False], ids=["unrolled", "scan"])
def test_stack_equals_separate_units_exactly(rng, unroll):
    """Outputs, gradients and BN statistics of the stack are bit-identical to n ResidualUnits.

    Measured: identical on TensorFlow, JAX and PyTorch (CPU): the stack runs the
    same ops on the same values, `x + f(x)` adds in either order exactly; also
    as one `ops.scan` over the stacked weights, except on JAX, whose scan body
    XLA compiles (fused: equal to float32 rounding, 1e-4 for gradients through BN).
    """
    if unroll or BACKEND != "jax":
        assert_same = np.testing.assert_array_equal
    else:

        def assert_same(actual, desired, err_msg=""):
            np.testing.assert_allclose(actual, desired, rtol=1e-4, atol=1e-4, err_msg=err_msg)

    stack = conv_stack(3, rng, unroll=unroll)
    units = units_like(stack, range(3))
    x = rng.normal(size=SHAPE).astype("float32")
    for training in (False, True):
        assert_same(to_numpy(stack(x, training=training)), to_numpy(units(x, training=training)))
    assert_same(to_numpy(stack.block_outputs(x)[1]), to_numpy(units.layers[1](units.layers[0](x))))
    # The training call above updated both networks' statistics.
    state = dict(zip(stack.block_weight_paths[-4:], block_state(stack)))
    for index, unit in enumerate(units.layers):
        for variable in unit.non_trainable_weights:
            path = variable.path.split("/", 1)[1]
            assert_same(state[path][index], to_numpy(variable), err_msg=path)

    expected = unit_gradients_by_block(units, gradients(units, x))
    got = gradients(stack, x)
    assert len(got) == len(stack.trainable_variables) == 6
    for path, grad in zip(stack.block_weight_paths, got):
        assert_same(grad, np.stack(expected[path]), err_msg=path)
        assert np.all(np.abs(grad).reshape(3, -1).max(axis=1) > 0), path


def test_a_frozen_stack_equals_frozen_units(rng):
    """`trainable = False` (fine-tuning): BN normalizes with its moving statistics and keeps
    them in training calls, as in frozen ResidualUnits, with or without drops; also after
    a config round trip. The freeze did not reach the template's BN layers, which went on
    normalizing with batch statistics and updating the moving ones."""
    x = rng.normal(size=SHAPE).astype("float32")
    for probabilities in (None, [0.9, 0.5]):
        stack = conv_stack(2, rng, survival_probabilities=probabilities, seed=1)
        units = units_like(stack, range(2))
        stack.trainable = units.trainable = False
        before = block_state(stack)
        outputs = to_numpy(stack(x, training=True))
        for got, want in zip(block_state(stack), before):
            np.testing.assert_array_equal(got, want)
        if probabilities is None:
            np.testing.assert_array_equal(outputs, to_numpy(units(x, training=True)))
    clone = ResidualStack.from_config(stack.get_config())
    assert clone.trainable is False
    clone.build(SHAPE)
    before = block_state(clone)
    clone(x, training=True)
    for got, want in zip(block_state(clone), before):
        np.testing.assert_array_equal(got, want)
    stack.trainable = True  # and back
    before = block_state(stack)
    stack(x, training=True)
    assert changed_blocks(before, block_state(stack)).any()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_stack_equals_separate_units(policy, rng):
    """BN statistics stay float32 (read without autocast): a training call with drops failed
    on TensorFlow (float32 statistics scattered into float16 ones)."""
    x = rng.normal(size=SHAPE).astype("float32")
    keras.config.set_dtype_policy(policy)
    try:
        stack = conv_stack(2, rng)
        units = units_like(stack, range(2))
        for training in (False, True):
            np.testing.assert_array_equal(
                to_numpy(stack(x, training=training)), to_numpy(units(x, training=training))
            )
        assert all(v.dtype == "float32" for v in stack.weights)
        np.testing.assert_array_equal(
            np.concatenate([a.reshape(-1) for a in block_state(stack)]),
            np.concatenate([a.reshape(-1) for a in unit_states(stack, units)]),
        )
        dropping = conv_stack(3, rng, survival_probabilities=0.5, seed=2)
        before = block_state(dropping)
        outputs = dropping(x, training=True)
        assert keras.backend.standardize_dtype(outputs.dtype) == policy.split("_")[1]
        assert np.all(np.isfinite(to_numpy(outputs).astype("float32")))
        kept = changed_blocks(before, block_state(dropping))
        assert kept.sum() in (1, 2)
        assert all(a.dtype == "float32" for a in block_state(dropping))
    finally:
        keras.config.set_dtype_policy("float32")


# ----------------------------------------------------------------- inference


def numpy_reference(stack, x, scales):
    """`x <- relu(x + scale_l f_l(x))` block by block in float64; `f_l` is the branch of a
    `ResidualUnit` holding block l's weights."""
    units = units_like(stack, range(stack.num_blocks))
    x = x.astype("float64")
    for unit, scale in zip(units.layers, scales):
        residual = to_numpy(unit.branch(x.astype("float32"), training=False))
        x = np.maximum(x + scale * residual.astype("float64"), 0.0)
    return x


def test_inference_scales_each_branch_by_its_survival_probability(rng):
    probabilities = [0.9, 0.6, 0.3]
    stack = conv_stack(3, rng, survival_probabilities=probabilities, seed=1)
    x = rng.normal(size=SHAPE).astype("float32")
    expected = numpy_reference(stack, x, probabilities)
    np.testing.assert_allclose(to_numpy(stack(x, training=False)), expected, rtol=0, atol=1e-5)
    # Not what the blocks give unscaled: the check can tell.
    assert np.abs(numpy_reference(stack, x, [1.0] * 3) - expected).max() > 1e-2

    inverted = conv_stack(3, rng, survival_probabilities=probabilities, rescale="training", seed=1)
    np.testing.assert_allclose(
        to_numpy(inverted(x, training=False)),
        numpy_reference(inverted, x, [1.0] * 3),
        rtol=0,
        atol=1e-5,
    )


# ------------------------------------------------------------------ sampling

SURVIVAL = [linear_decay(l, 8, 0.5) for l in range(1, 9)]  # S = 5.75
DRAWS = 2000


def bit_stack(probabilities, **kwargs):
    """A stack whose block l adds `2**l` to its input: the output of 0 spells the kept set."""
    stack = ResidualStack(
        layers.Dense(1, name="bit"),
        len(probabilities),
        survival_probabilities=probabilities,
        **kwargs,
    )
    stack.build((1, 1))
    for index in range(len(probabilities)):
        stack.set_block_weights(index, [np.zeros((1, 1), "float32"), np.full((1,), 2.0**index)])
    return stack


def kept_sets(stack, draws):
    """`(draws, n)` booleans: the blocks kept by `draws` training calls (compiled but on torch)."""
    x = np.zeros((1, 1), "float32")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        call = tf.function(lambda: stack(x, training=True))
        outputs = [call() for _ in range(draws)]
    elif BACKEND == "jax":
        import jax

        trainable = [v.value for v in stack.trainable_variables]

        @jax.jit
        def call(state):
            return stack.stateless_call(trainable, state, x, training=True)

        state, outputs = [v.value for v in stack.non_trainable_variables], []
        for _ in range(draws):
            output, state = call(state)
            outputs.append(output)
    else:
        outputs = [stack(x, training=True) for _ in range(draws)]
    sums = np.array([to_numpy(y).item() for y in outputs]).astype("int64")
    return (sums[:, None] >> np.arange(stack.num_blocks)) & 1 == 1


def assert_frequencies(kept, probabilities):
    p = np.array(probabilities)
    sigma = np.sqrt(p * (1 - p) / len(kept))
    deviation = kept.mean(axis=0) - p
    assert np.all(np.abs(deviation) <= 4 * sigma + 1e-9), deviation / np.maximum(sigma, 1e-9)


def test_fixed_count_sampling_keeps_each_block_with_its_probability():
    kept = kept_sets(bit_stack(SURVIVAL, seed=3), DRAWS)
    assert_frequencies(kept, SURVIVAL)
    assert set(kept.sum(axis=1)) == {5, 6}  # floor(S), ceil(S)
    assert len({row.tobytes() for row in kept}) > 20  # the sets do vary


def test_independent_sampling_keeps_each_block_on_its_own():
    kept = kept_sets(bit_stack(SURVIVAL, sampling="independent", seed=3), DRAWS)
    assert_frequencies(kept, SURVIVAL)
    counts = kept.sum(axis=1)
    # Binomial-like depths: variance sum p(1 - p) = 1.34 (fixed count: at most 0.25).
    assert counts.min() <= 3 and counts.max() >= 8
    assert 1.0 < counts.var() < 1.7


# ------------------------------------------------------- dropped and kept blocks


def per_block_nonzero(grads):
    """Blocks with a non-zero gradient in any stacked weight, as a boolean `(n,)`."""
    return np.any([np.any(g.reshape(len(g), -1) != 0, axis=1) for g in grads], axis=0)


def test_dropped_blocks_are_untouched_and_kept_blocks_run_in_order(rng):
    """Each training call equals the composition of ResidualUnits of just the kept blocks.

    Kept blocks are read twice, independently: from the BN statistics that
    changed and from the gradients that are non-zero; the two must agree, number
    floor(S) or ceil(S), and match the units' outputs, gradients and statistics
    (dropped blocks: zero gradients, statistics bit-identical).
    """
    probabilities = [0.9, 0.5, 0.5, 0.3, 0.3]  # S = 2.5: 2 or 3 kept, in 3 slots
    stack = conv_stack(5, rng, survival_probabilities=probabilities, seed=2)
    x = rng.normal(size=SHAPE).astype("float32")
    counts = set()
    for _ in range(4):
        units, before = units_like(stack, range(5)), block_state(stack)
        grads = gradients(stack, x)
        kept = changed_blocks(before, block_state(stack))
        np.testing.assert_array_equal(per_block_nonzero(grads), kept)
        counts.add(int(kept.sum()))
        reference = composed(units, np.flatnonzero(kept))
        expected = unit_gradients_by_block(reference, gradients(reference, x))
        for path, grad in zip(stack.block_weight_paths, grads):
            np.testing.assert_array_equal(grad[kept], np.stack(expected[path]), err_msg=path)
            np.testing.assert_array_equal(grad[~kept], 0.0, err_msg=path)
        for path, got, want in zip(
            stack.block_weight_paths[-4:], block_state(stack), unit_states(stack, units)
        ):
            np.testing.assert_array_equal(got, want, err_msg=path)

        # A forward call, against the units of the blocks it kept.
        units, before = units_like(stack, range(5)), block_state(stack)
        outputs = to_numpy(stack(x, training=True))
        kept = changed_blocks(before, block_state(stack))
        counts.add(int(kept.sum()))
        reference = composed(units, np.flatnonzero(kept))
        np.testing.assert_array_equal(outputs, to_numpy(reference(x, training=True)))
    assert counts == {2, 3}  # both a full and a partly empty set of slots


def test_a_stack_that_drops_every_block_passes_its_input_with_zero_gradients(rng):
    """Nothing kept (S = 2e-5, below the slots' rounding margin: no slot is needed): the
    output is `x` itself, and every weight still gets a gradient, zeros, not None
    (optimizers treat such weights alike on every backend)."""
    stack = conv_stack(2, rng, survival_probabilities=1e-5, seed=4)
    x = rng.normal(size=SHAPE).astype("float32")  # negative values: no ReLU is applied
    before = block_state(stack)
    np.testing.assert_array_equal(to_numpy(stack(x, training=True)), x)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = ops.sum(stack(x, training=True))
        grads = tape.gradient(loss, [v.value for v in stack.trainable_variables])
    elif BACKEND == "torch":
        import torch

        loss = ops.sum(stack(x, training=True))
        weights = [v.value for v in stack.trainable_variables]
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
    else:  # jax.grad gives arrays for every argument
        grads = gradients(stack, x)
    assert all(g is not None for g in grads)
    assert all(np.all(to_numpy(g) == 0) for g in grads)
    for got, want in zip(block_state(stack), before):
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------- compilation


def block_weights(stack):
    return [to_numpy(v) for v in stack.trainable_weights]


class Snapshots(keras.callbacks.Callback):
    """The stack's weights and BN statistics after each training step."""

    def __init__(self, stack):
        super().__init__()
        self.stack, self.steps = stack, [(block_weights(stack), block_state(stack))]

    def on_train_batch_end(self, batch, logs=None):
        if BACKEND == "jax":  # JAX's fit holds the new values outside the variables
            self.model.jax_state_sync()
        self.steps.append((block_weights(self.stack), block_state(self.stack)))


@pytest.mark.parametrize("sampling", ["fixed_count", "independent"])
def test_compiled_training_steps_drop_blocks_and_compile_once(sampling, rng):
    """`fit` under XLA (JAX's default jit, TF `jit_compile=True`).

    Each step's dropped blocks keep their weights (SGD: zero gradient) and BN
    statistics bit for bit; the kept ones change both. The step is traced once:
    the draws come from the seed generator's state, not from retracing.
    PyTorch runs the same checks eagerly (torch.compile takes minutes on a CPU).
    """
    probabilities = [0.8, 0.6, 0.5, 0.5]  # S = 2.4
    stack = conv_stack(4, rng, survival_probabilities=probabilities, sampling=sampling, seed=6)
    traces = []
    kept_blocks_call = stack._call_kept_blocks

    def counted(inputs):
        traces.append(1)
        return kept_blocks_call(inputs)

    stack._call_kept_blocks = counted
    model = keras.Sequential([keras.Input(SHAPE[1:]), stack])
    model.compile(keras.optimizers.SGD(0.05), "mse", jit_compile=BACKEND != "torch")
    x = rng.normal(size=SHAPE).astype("float32")
    snapshots = Snapshots(stack)
    history = model.fit(
        x, np.zeros(SHAPE, "float32"), batch_size=2, epochs=6, verbose=0, callbacks=[snapshots]
    )
    assert np.all(np.isfinite(history.history["loss"]))
    kept_sets = []
    for (weights, state), (new_weights, new_state) in zip(snapshots.steps, snapshots.steps[1:]):
        kept = changed_blocks(state, new_state)
        np.testing.assert_array_equal(changed_blocks(weights, new_weights), kept)
        kept_sets.append(tuple(kept))
    assert len(kept_sets) == 6
    counts = {sum(kept) for kept in kept_sets}
    if sampling == "fixed_count":
        assert counts <= {2, 3}, counts
    assert len(set(kept_sets)) > 1  # new draws at each step
    if BACKEND != "torch":
        assert len(traces) == 1, f"the training step was traced {len(traces)} times"


# ----------------------------------------------------- gradient checkpointing


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("probabilities", [None, [0.9, 0.5, 0.4]], ids=["all", "drops"])
def test_gradient_checkpointing_changes_nothing_but_memory(probabilities, compiled, rng):
    """Same seed, same draws: outputs, gradients and BN statistics as without checkpointing.

    Measured: bit-identical on TensorFlow, JAX and PyTorch, eager and compiled.
    """
    if compiled and BACKEND == "torch":
        pytest.skip("PyTorch steps run eagerly (torch.compile takes minutes on a CPU)")
    kwargs = {"survival_probabilities": probabilities, "seed": 8}
    plain = conv_stack(3, rng, **kwargs)
    checkpointed = conv_stack(3, rng, gradient_checkpointing=True, **kwargs)
    checkpointed.set_weights(plain.get_weights())
    x = rng.normal(size=SHAPE).astype("float32")
    steps = {stack: gradient_function(stack, compiled=compiled) for stack in (plain, checkpointed)}
    for _ in range(2):  # draws change from step to step
        expected = [to_numpy(g) for g in steps[plain](x)]
        got = [to_numpy(g) for g in steps[checkpointed](x)]
        for path, want, have in zip(plain.block_weight_paths, expected, got):
            np.testing.assert_array_equal(have, want, err_msg=path)
        for want, have in zip(block_state(plain), block_state(checkpointed)):
            np.testing.assert_array_equal(have, want)
    np.testing.assert_array_equal(
        to_numpy(checkpointed(x, training=True)), to_numpy(plain(x, training=True))
    )


# ------------------------------------------------------------ initialization

WIDE = (None, 4, 4, 16)  # conv kernels 3x3x16x16: 2304 draws each, fan-in 144


def wide_stack(num_blocks, kernel_initializer="he_normal"):
    stack = ResidualStack(conv_branch(16, kernel_initializer), num_blocks, activation="relu")
    stack.build(WIDE)
    return stack


def stacked(stack, path):
    return to_numpy(stack.weights[stack.block_weight_paths.index(path)])


def test_each_block_is_its_own_draw_from_the_templates_initializers():
    stack = wide_stack(4)
    template = stack.block.get_layer("conv1").kernel
    # He normal, truncated at two standard deviations of the underlying normal.
    std = math.sqrt(2.0 / 144)
    for path in ("branch/conv1/kernel", "branch/conv2/kernel"):
        kernels = stacked(stack, path).reshape(4, -1)
        for index, kernel in enumerate(kernels):
            assert abs(kernel.std() / std - 1) < 0.1, (path, index, kernel.std(), std)
            assert abs(kernel.mean()) < 4 * std / math.sqrt(kernel.size), (path, index)
            assert np.abs(kernel).max() <= 2 * std / 0.87962566103423978 + 1e-6
            assert not np.allclose(kernel, to_numpy(template).reshape(-1))
        correlations = np.corrcoef(kernels)[np.triu_indices(4, 1)]
        assert np.abs(correlations).max() < 0.1, correlations  # independent draws
    # Constant initializers: BN starts as the template's does.
    for path, value in [
        ("gamma", 1.0),
        ("beta", 0.0),
        ("moving_mean", 0.0),
        ("moving_variance", 1.0),
    ]:
        np.testing.assert_array_equal(stacked(stack, f"branch/bn2/{path}"), value)

    uniform = wide_stack(3, keras.initializers.RandomUniform(-0.5, 0.5))
    kernels = stacked(uniform, "branch/conv1/kernel").reshape(3, -1)
    assert kernels.min() >= -0.5 and kernels.max() < 0.5
    assert np.all(np.abs(kernels.std(axis=1) / math.sqrt(1 / 12) - 1) < 0.1)
    assert np.abs(np.corrcoef(kernels)[np.triu_indices(3, 1)]).max() < 0.1


def test_integer_seeded_initializers_give_reproducible_distinct_blocks():
    first = wide_stack(3, keras.initializers.HeNormal(seed=7))
    keras.utils.set_random_seed(99)  # the integer seed alone decides
    again = wide_stack(3, keras.initializers.HeNormal(seed=7))
    other = wide_stack(3, keras.initializers.HeNormal(seed=8))
    for path in ("branch/conv1/kernel", "branch/conv2/kernel"):
        kernels = stacked(first, path)
        np.testing.assert_array_equal(stacked(again, path), kernels)
        assert not np.array_equal(stacked(other, path), kernels)
        assert not np.array_equal(kernels[0], kernels[1])
        assert not np.array_equal(kernels[1], kernels[2])


def test_set_random_seed_makes_construction_reproducible():
    kernels = []
    for seed in (5, 5, 6):
        keras.utils.set_random_seed(seed)
        kernels.append(stacked(wide_stack(3), "branch/conv1/kernel"))
    np.testing.assert_array_equal(kernels[1], kernels[0])
    assert not np.array_equal(kernels[2], kernels[0])


# ---------------------------------------------------------- models and files


def dense_branch():
    """A pre-activation-like template without its own input (built by the stack)."""
    return keras.Sequential(
        [layers.BatchNormalization(name="bn"), layers.ReLU(), layers.Dense(6, name="fc")], name="f"
    )


@pytest.mark.parametrize(
    "kwargs, input_shape, trainable, non_trainable",
    [
        (
            {
                "block": conv_branch(),
                "num_blocks": 3,
                "activation": "relu",
                "survival_probabilities": [0.9, 0.7, 0.5],
                "seed": 3,
                "gradient_checkpointing": True,
            },
            SHAPE,
            6,
            4,
        ),
        (
            {
                "block": dense_branch(),
                "num_blocks": 4,
                "survival_probabilities": 0.6,
                "sampling": "independent",
                "rescale": "training",
            },
            (3, 6),
            4,
            2,
        ),
    ],
    ids=["conv", "dense"],
)
def test_layer_contract(kwargs, input_shape, trainable, non_trainable):
    """Sequential, functional and subclassed models, config round trip, `.keras` in process, fit."""
    run_layer_test(
        ResidualStack,
        kwargs,
        input_shape=input_shape,
        expected_output_shape=input_shape,
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
    )


def test_only_the_stacked_weights_are_counted_and_saved(tmp_path):
    h5py = pytest.importorskip("h5py")
    inputs = keras.Input(SHAPE[1:])
    stack = ResidualStack(conv_branch(), 5, activation="relu")
    model = keras.Model(inputs, stack(inputs))
    per_block = 2 * 3 * 3 * FILTERS * FILTERS + 2 * 4 * FILTERS  # two convs, two BNs
    assert stack.block.count_params() == per_block
    assert stack.count_params() == model.count_params() == 5 * per_block
    model.save(tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        archive.extract("model.weights.h5", tmp_path)
    sizes = []
    with h5py.File(tmp_path / "model.weights.h5", "r") as file:
        file.visititems(lambda _, item: sizes.append(item.size) if hasattr(item, "size") else None)
    assert len(sizes) == 10 and sum(sizes) == 5 * per_block, sizes


def test_the_templates_regularizers_act_on_every_block():
    template = keras.Sequential(
        [layers.Dense(6, kernel_regularizer=keras.regularizers.L2(0.1), name="fc")], name="f"
    )
    stack = ResidualStack(template, 3)
    stack.build((2, 6))
    expected = sum(
        0.1 * np.sum(stack.get_block_weights(i)[0].astype("float64") ** 2) for i in range(3)
    )
    assert len(stack.losses) == 1
    np.testing.assert_allclose(float(to_numpy(stack.losses[0])), expected, rtol=1e-6)


def test_weight_paths_are_the_blocks_own_after_loading_too(tmp_path):
    """Paths name stacked weights in converted checkpoints: `<stack>/<layer>_<weight>`.

    They came from the variables' paths, which held `f/` inside the scope name
    `stage_of/` (read as the block's) and lost the block's layer names after
    `load_model` (Keras builds a deserialized Sequential's layers outside its scope).
    """
    inputs = keras.Input((6,))
    model = keras.Model(inputs, ResidualStack(dense_branch(), 2, name="stage_of")(inputs))
    block_paths = ("f/bn/gamma", "f/bn/beta", "f/fc/kernel", "f/fc/bias")
    block_paths += ("f/bn/moving_mean", "f/bn/moving_variance")
    paths = [
        "stage_of/bn_gamma",
        "stage_of/bn_beta",
        "stage_of/fc_kernel",
        "stage_of/fc_bias",
        "stage_of/bn_moving_mean",
        "stage_of/bn_moving_variance",
    ]
    assert model.layers[1].block_weight_paths == block_paths
    assert [v.path for v in model.weights] == paths
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.layers[1].block_weight_paths == block_paths
    assert [v.path for v in loaded.weights] == paths
    x = np.random.default_rng(1).normal(size=(3, 6)).astype("float32")
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))


# ------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"block": "conv"}, TypeError, "`block` must be a Keras layer"),
        ({"block": lambda x: x}, TypeError, "`block` must be a Keras layer"),
        ({"num_blocks": 0}, ValueError, "`num_blocks`"),
        ({"num_blocks": 2.5}, ValueError, "`num_blocks` must be a positive integer"),
        ({"survival_probabilities": [0.5, 0.5]}, ValueError, r"one probability per block \(3\)"),
        ({"survival_probabilities": [0.5, 1.5, 0.5]}, ValueError, r"`survival_probabilities\[1\]`"),
        ({"survival_probabilities": [0.5, 0.5, 0.0]}, ValueError, r"`survival_probabilities\[2\]`"),
        ({"survival_probabilities": 0.0}, ValueError, "`survival_probabilities`"),
        ({"survival_probabilities": [[0.5] * 3]}, ValueError, "a sequence of them"),
        ({"sampling": "systematic"}, ValueError, "`sampling` must be one of 'fixed_count'"),
        ({"rescale": "never"}, ValueError, "`rescale` must be one of 'inference'"),
        ({"activation": "no_such_activation"}, ValueError, "activation"),
        ({"gradient_checkpointing": "yes"}, TypeError, "`gradient_checkpointing`"),
        ({"seed": -1}, ValueError, "`seed`"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    arguments = {"block": layers.Dense(6), "num_blocks": 3, **kwargs}
    with pytest.raises(error, match=match):
        ResidualStack(**arguments)


def test_survival_probabilities_may_be_a_numpy_array():
    stack = ResidualStack(layers.Dense(6), 3, survival_probabilities=np.linspace(1.0, 0.5, 3))
    assert stack.get_config()["survival_probabilities"] == [1.0, 0.75, 0.5]
    assert all(type(p) is float for p in stack.survival_probabilities)  # JSON-serializable


@pytest.mark.parametrize(
    "block, match",
    [
        (layers.Dense(4), r"must keep the shape of its input.*\(2, 6\) to \(2, 4\)"),
        (layers.Dense(6, kernel_constraint="non_neg"), "must not have weight constraints"),
        (keras.Sequential([layers.Dense(6), layers.Dropout(0.5)]), "must not draw random numbers"),
    ],
    ids=["shape", "constraint", "dropout"],
)
def test_blocks_the_stack_cannot_hold_are_refused_when_built(block, match):
    with pytest.raises(ValueError, match=match):
        ResidualStack(block, 3)(np.ones((2, 6), "float32"))


def test_block_weights_are_set_and_read_by_block_and_checked():
    stack = ResidualStack(layers.Dense(2, name="fc"), 3, name="stage")
    stack.build((1, 2))
    stack.set_block_weights(1, [[[1.0, 2.0], [3.0, 4.0]], [0.5, -0.5]])  # lists too
    kernel, bias = stack.get_block_weights(1)
    np.testing.assert_array_equal(kernel, [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(to_numpy(stack.weights[1])[1], [0.5, -0.5])
    assert not np.array_equal(stack.get_block_weights(0)[0], kernel)  # one block only
    with pytest.raises(ValueError, match=r"must hold 2 arrays \(fc/kernel, fc/bias\)"):
        stack.set_block_weights(0, [kernel])
    with pytest.raises(ValueError, match=r"'fc/kernel' must have shape \(2, 2\)"):
        stack.set_block_weights(0, [np.ones((2, 3)), bias])
    with pytest.raises(ValueError, match="`index`"):
        stack.get_block_weights(3)
