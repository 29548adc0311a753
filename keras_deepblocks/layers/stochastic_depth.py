"""Stochastic depth (Huang et al. 2016): the residual sum, its schedule, and the layer.

Shaped like timm's `layers/drop.py`: `stochastic_residual` is the maths, shared
by `StochasticDepth` and `ResidualUnit`; `linear_decay` is the paper's schedule
as a plain function; `StochasticDepth` is a thin `keras.layers.Wrapper` around
`stochastic_residual`.
"""

import copy

import keras
from keras import ops

from keras_deepblocks.utils import validation

DROP_MODES = ("batch", "sample")
RESCALE_MODES = ("inference", "training")
SKIP_STRATEGIES = ("auto", "skip", "multiply")


def linear_decay(block_index, num_blocks, final_survival_probability=0.5):
    """Linear decay rule of Huang et al. (2016): `p_l = 1 - l / L (1 - p_L)`.

    The input (block 0) is always kept; survival falls linearly to `p_L` at
    the last block.

    Args:
        block_index: `l`, the block's position, counted from `1` to
            `num_blocks` over all blocks of the network.
        num_blocks: `L`, the number of residual blocks.
        final_survival_probability: `p_L`, in `(0, 1]`. Defaults to `0.5`
            (the paper's choice).

    Returns:
        The survival probability `p_l` as a Python float.

    Example:

    >>> [linear_decay(l, 4, 0.5) for l in range(1, 5)]
    [0.875, 0.75, 0.625, 0.5]
    """
    num_blocks = validation.positive_int(num_blocks, "num_blocks")
    block_index = validation.positive_int(block_index, "block_index")
    block_index = validation.integer_in_range(block_index, "block_index", 1, num_blocks)
    final = validation.survival_probability(
        final_survival_probability, "final_survival_probability"
    )
    return 1.0 - block_index / num_blocks * (1.0 - final)


def fixed_count_keep_mask(survival_probabilities, seed=None):
    """Which blocks of a stack to keep: exact marginals, a depth that barely varies.

    Randomized systematic sampling (Madow 1949): the blocks are put in a
    random order, each covers an interval of length `p_l` on a line, and one
    uniform start `u` in `[0, 1)` keeps the blocks whose interval holds a
    point `u + j`. Each block is then kept with probability exactly `p_l`,
    as with the paper's independent draws, but the number kept is always
    `floor(S)` or `ceil(S)`, `S = sum(p_l)`: a compiled step can run the kept
    blocks in `ceil(S)` fixed slots (see `kept_block_slots`). Only the
    variance of the depth is gone; pairs of blocks are no longer independent.

    Written with `keras.ops` and no data-dependent control flow, so it runs
    the same eagerly and under `jit`/`tf.function` on every backend.

    Args:
        survival_probabilities: The `p_l`, each in `(0, 1]`: a Python
            sequence (checked) or a 1D tensor.
        seed: Integer seed, `keras.random.SeedGenerator` (a new draw per
            call) or `None`.

    Returns:
        A boolean tensor of shape `(n,)`, `True` for the blocks kept.

    Example:

    >>> mask = fixed_count_keep_mask([0.9, 0.8, 0.7, 0.6, 0.5], seed=1)
    >>> int(ops.sum(ops.cast(mask, "int32"))) in (3, 4)  # S = 3.5
    True
    """
    if isinstance(survival_probabilities, (list, tuple)):
        for index, probability in enumerate(survival_probabilities):
            validation.survival_probability(probability, f"survival_probabilities[{index}]")
    probabilities = ops.convert_to_tensor(survival_probabilities, dtype="float32")
    count = ops.shape(probabilities)[0]
    if isinstance(seed, keras.random.SeedGenerator):
        seeds = (seed, seed)
    else:
        seeds = (seed, None if seed is None else seed + 1)
    order = ops.argsort(keras.random.uniform((count,), seed=seeds[0]))
    start = keras.random.uniform((), seed=seeds[1], dtype="float32")
    ends = ops.cumsum(ops.take(probabilities, order))
    # Points u + j below each interval's end; a block holds one if the count rises.
    below = ops.floor(ends - start) + 1.0
    kept_in_order = (below - ops.concatenate([ops.zeros((1,)), below[:-1]])) > 0.5
    # Back from the random order to the blocks' own.
    return ops.take(kept_in_order, ops.argsort(order))


def kept_block_slots(keep_mask, num_slots):
    """The kept blocks, in their order, in `num_slots` fixed slots.

    Args:
        keep_mask: Boolean tensor `(n,)`, e.g. from `fixed_count_keep_mask`.
        num_slots: Python int, at least the number of blocks kept
            (`ceil(sum(p_l))` for `fixed_count_keep_mask`).

    Returns:
        `(blocks, used)`: int32 `(num_slots,)` block indices in increasing
        order, then (in unused slots) indices of dropped blocks; and a boolean
        `(num_slots,)` telling which slots hold a kept block.

    Example:

    >>> blocks, used = kept_block_slots(np.array([True, False, True, True]), 3)
    >>> ops.convert_to_numpy(blocks).tolist(), ops.convert_to_numpy(used).tolist()
    ([0, 2, 3], [True, True, True])
    """
    keep_mask = ops.convert_to_tensor(keep_mask, dtype="bool")
    count = ops.shape(keep_mask)[0]
    positions = ops.arange(count, dtype="int32")
    # Kept blocks sort first, each group in the blocks' own order.
    order = ops.argsort(ops.where(keep_mask, positions, positions + count))[:num_slots]
    used = ops.arange(num_slots, dtype="int32") < ops.sum(ops.cast(keep_mask, "int32"))
    return ops.cast(order, "int32"), used


def stochastic_residual(
    branch,
    branch_input,
    shortcut,
    survival_probability,
    *,
    training,
    seed_generator,
    drop_mode="batch",
    rescale="inference",
    skip_strategy="auto",
    state_layers=(),
):
    """`shortcut + b * branch(branch_input)`, the output of a stochastic-depth block.

    The one implementation behind `StochasticDepth` and `ResidualUnit`; see
    `StochasticDepth` for the semantics of `drop_mode`, `rescale` and
    `skip_strategy`. Written with `keras.ops` except where a dropped branch is
    skipped: that needs the backend's own conditional (`tf.cond`,
    `jax.lax.cond`) or a Python `if`.

    Args:
        branch: Callable computing the residual from `branch_input`.
        branch_input: Input of the branch.
        shortcut: What the residual is added to.
        survival_probability: `p` in `(0, 1]`.
        training: Python bool.
        seed_generator: `keras.random.SeedGenerator` of the draws.
        drop_mode: `"batch"` or `"sample"`.
        rescale: `"inference"` or `"training"`.
        skip_strategy: `"auto"`, `"skip"` or `"multiply"`.
        state_layers: The layers `branch` runs. A dropped branch leaves their
            state (BN statistics, dropout seeds) unchanged and gives their
            weights zero gradients (not none, so that optimizers treat them
            alike on every backend).

    Returns:
        The block's output, a tensor of the shape of `shortcut`.
    """
    p = survival_probability
    if not training:
        scale = p if rescale == "inference" else 1.0
        return shortcut + _scaled(branch(branch_input), scale)
    gain = 1.0 / p if rescale == "training" else 1.0
    if drop_mode == "sample":
        residual = branch(branch_input)
        mask_shape = (ops.shape(residual)[0],) + (1,) * (len(residual.shape) - 1)
        keep = keras.random.uniform(mask_shape, seed=seed_generator) < p
        return shortcut + _scaled(residual * ops.cast(keep, residual.dtype), gain)
    if p == 1.0:
        return shortcut + _scaled(branch(branch_input), gain)
    keep = keras.random.uniform((), seed=seed_generator) < p
    state = [v for layer in state_layers for v in layer.non_trainable_variables]

    def kept():
        return shortcut + _scaled(branch(branch_input), gain)

    method = _skip_method(keep, skip_strategy)
    if method == "python":
        if bool(keep):
            return kept()
        weights = [w for layer in state_layers for w in layer.trainable_variables]
        return _with_zero_gradients(shortcut, weights)
    if method == "select":
        return _compute_and_select(keep, kept, shortcut, state)
    return _cond(method, keep, kept, shortcut, state)


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class StochasticDepth(keras.layers.Wrapper):
    """Residual block with stochastic depth (Huang et al., 2016): `x + b * f(x)`.

    The layer wraps its residual branch `f`, so a dropped branch is not
    computed at all (forward or backward), which is where the paper's
    training speed-up comes from. Layers that take `[shortcut, residual]`
    receive `f(x)` already computed and can only multiply it by zero.

    - Training, `drop_mode="batch"` (the paper): one draw
      `b ~ Bernoulli(p)` per call; kept gives `x + f(x)`, dropped gives `x`.
      A dropped branch also leaves its state (BatchNormalization moving
      statistics, seeds of its dropout layers) untouched.
    - Training, `drop_mode="sample"` (DropPath in timm): one draw per
      example; the branch is always computed and its BN statistics updated.
    - Inference: `x + p * f(x)` (`rescale="inference"`, the paper), or
      `x + f(x)` with the inverted convention `rescale="training"`, which
      instead divides a kept branch by `p` during training.

    How a dropped branch is skipped (`skip_strategy`):

    - `"skip"`: never compute a dropped branch. A Python `if` when the draw
      is a concrete value (PyTorch, TensorFlow eager, JAX without jit; on a
      GPU each `if` waits for its draw to reach the host), `tf.cond` in a
      TensorFlow graph (with or without XLA), and `jax.lax.cond` under a JAX
      trace.
    - `"multiply"`: compute the branch and select `x + f(x)` or `x` with
      the draw; the branch's state is restored when dropped.
    - `"auto"` (default): `"skip"`, except where the step is compiled by XLA,
      where an XLA conditional per block made a CIFAR ResNet training step
      slower than computing every branch (about 11x with JAX and 13x with
      TensorFlow on CPU, 1.5-1.7x on an H100 with JAX; see
      `benchmarks/stochastic_depth_speed.py`); there it is `"multiply"`. JAX
      traces and `torch.compile` show this directly (`"multiply"` under
      `jax.jit`, and under `torch.compile`, where a data-dependent `if`
      splits the graph at every block). TensorFlow has no public way to tell
      whether a graph is being compiled by XLA, so `"auto"` follows Keras's
      own `jit_compile="auto"` rule: `"multiply"` in TensorFlow graphs when
      TensorFlow sees a GPU or TPU (where Keras compiles with XLA), `tf.cond`
      when it sees CPUs only (where Keras does not). With a `jit_compile`
      other than Keras's default, choose explicitly: `"multiply"` for
      `jit_compile=True` on a CPU, `"skip"` for `jit_compile=False` on a GPU.

    Where a network has several same-shaped blocks in a row, `ResidualStack`
    holds them as one layer and skips dropped blocks also under XLA, with no
    conditional at all.

    Args:
        layer: The residual branch `f`, a Keras layer (or model) mapping `x`
            to a tensor of the shape of `x`. Serialized with this layer. Pass
            it unbuilt (or a model built from an `Input`): an unbuilt branch
            is built by this layer and its weights are named under this
            layer's name (`stochastic_depth/dense/kernel`), also after
            `keras.saving.load_model`.
        survival_probability: `p`, the probability to keep the branch, in
            `(0, 1]`. Defaults to `0.5`. See `linear_decay` for the paper's
            schedule over a stack of blocks.
        drop_mode: `"batch"` or `"sample"`. Defaults to `"batch"`.
        rescale: `"inference"` or `"training"`. Defaults to `"inference"`.
        skip_strategy: `"auto"`, `"skip"` or `"multiply"`. Defaults to
            `"auto"`.
        seed: Integer seed of the draws in `[0, 2**31 - 1]` (the range
            every backend accepts), or `None`. Give each block of a stack its
            own seed (or `None`), or they drop together.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: Input tensor `x`.
        training: Python bool (or `None`), whether to drop (and whether the
            branch runs in training mode).

    Example:

    >>> branch = keras.Sequential(
    ...     [keras.layers.Dense(8, name="fc"), keras.layers.ReLU()], name="f"
    ... )
    >>> block = StochasticDepth(branch, survival_probability=0.8, seed=1, name="block")
    >>> tuple(block(np.ones((2, 8)), training=True).shape)
    (2, 8)
    >>> [v.path for v in block.trainable_weights]
    ['block/f/fc/kernel', 'block/f/fc/bias']
    """

    def __init__(
        self,
        layer,
        survival_probability=0.5,
        drop_mode="batch",
        rescale="inference",
        skip_strategy="auto",
        seed=None,
        **kwargs,
    ):
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                "`layer` must be a Keras layer or model mapping x to the shape of x, "
                f"received: {layer!r} of type {type(layer).__name__}."
            )
        super().__init__(layer, **kwargs)
        self.survival_probability = validation.survival_probability(survival_probability)
        self.drop_mode = validation.one_of(drop_mode, "drop_mode", DROP_MODES)
        self.rescale = validation.one_of(rescale, "rescale", RESCALE_MODES)
        self.skip_strategy = validation.one_of(skip_strategy, "skip_strategy", SKIP_STRATEGIES)
        self.seed = validation.seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        # Whether `build` builds the branch, in this layer's name scope.
        self._builds_branch = not layer.built

    @property
    def branch(self):
        """The residual branch `f` (the wrapped `layer`).

        Saved files store the branch's weights under this name (Keras visits
        attributes in alphabetical order), as files of version 0.1.0 did.
        """
        return self.layer

    def build(self, input_shape):
        # Built here, not in `call`: variables cannot be created inside a tf.cond branch.
        super().build(input_shape)
        output_shape = tuple(self.layer.compute_output_shape(input_shape))
        if output_shape != tuple(input_shape):
            raise ValueError(
                "`layer` (the branch) of StochasticDepth must keep the shape of its input, "
                f"received: a layer mapping shape {tuple(input_shape)} to {output_shape}."
            )

    def call(self, inputs, training=None):
        training = validation.training(training)
        return stochastic_residual(
            lambda x: self.layer(x, training=training),
            inputs,
            inputs,
            self.survival_probability,
            training=training,
            seed_generator=self.seed_generator,
            drop_mode=self.drop_mode,
            rescale=self.rescale,
            skip_strategy=self.skip_strategy,
            state_layers=[self.layer],
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        # Keras's loader builds each layer as soon as it reads its config,
        # outside the name scope of the layer that holds it: the branch's
        # weights would lose their `stochastic_depth/...` prefix. Without
        # their build configs, nested layers are built inside their parents'
        # `build`, as they were at first; so is the branch itself when this
        # layer built it.
        base_config["layer"] = _unbuilt(base_config["layer"], keep_own=not self._builds_branch)
        config = {
            "survival_probability": self.survival_probability,
            "drop_mode": self.drop_mode,
            "rescale": self.rescale,
            "skip_strategy": self.skip_strategy,
            "seed": self.seed,
        }
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # A copy: Keras's loaders pop keys from the configs they read.
        config = copy.deepcopy(config)
        if "branch" in config:  # files saved by version 0.1.0
            config["layer"] = config.pop("branch")
        return super().from_config(config, custom_objects=custom_objects)


def _unbuilt(layer_config, keep_own=False):
    """A serialized layer without the build configs of the layers it holds.

    With `keep_own=False`, also without its own build config and without the
    `InputLayer`s that `Sequential`s add when they are built: the layer then
    loads as it was before it was built.
    """
    if isinstance(layer_config, list):
        return [_unbuilt(item) for item in layer_config]
    if not isinstance(layer_config, dict):
        return layer_config
    unbuilt = {
        key: value if keep_own and key == "build_config" else _unbuilt(value)
        for key, value in layer_config.items()
        if key not in ("build_config", "build_input_shape") or keep_own
    }
    if not keep_own and unbuilt.get("class_name") == "Sequential":
        layers = unbuilt["config"]["layers"]
        unbuilt["config"]["layers"] = [
            item for item in layers if item["class_name"] != "InputLayer"
        ]
    return unbuilt


def _scaled(residual, scale):
    """`residual * scale`, multiplied in float32 at least.

    In float16 (`mixed_float16`) `1 / p` overflows for `p < 1.5e-5` and a
    small `p` loses its precision; an infinite gain made every output NaN.
    """
    if scale == 1.0:
        return residual
    dtype = keras.backend.standardize_dtype(residual.dtype)
    if dtype in ("float16", "bfloat16"):
        return ops.cast(ops.multiply(ops.cast(residual, "float32"), scale), dtype)
    return ops.multiply(residual, scale)


def _with_zero_gradients(shortcut, weights):
    """`shortcut`, exactly, but depending on `weights` with zero gradient."""
    if not weights:
        return shortcut
    # Summed in float32: a float16 sum of many weights can overflow, and inf * 0 is NaN.
    link = sum(ops.sum(ops.cast(w, "float32")) for w in weights)
    return shortcut + ops.cast(link * 0.0, shortcut.dtype)


def _skip_method(keep, skip_strategy):
    """How to apply the draw `keep`: `"python"` (an `if` on its value),
    `"tf.cond"`, `"jax.cond"` or `"select"` (compute, then select)."""
    if skip_strategy == "multiply":
        return "select"
    backend = keras.backend.backend()
    if not has_value(keep):
        if backend == "tensorflow":
            if skip_strategy == "auto" and _tensorflow_sees_an_accelerator():
                return "select"
            return "tf.cond"
        if backend == "jax":
            return "jax.cond" if skip_strategy == "skip" else "select"
        return "select"  # torch's shape inference
    if backend == "torch":
        import torch

        # Under torch.compile an `if` on a tensor splits the graph at every
        # block; "auto" keeps one graph there.
        if skip_strategy == "auto" and torch.compiler.is_compiling():
            return "select"
    return "python"


def has_value(tensor):
    """Whether `tensor` holds a value Python can read now (eager), rather than
    being symbolic: in a TensorFlow graph, a JAX trace, torch's shape inference."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.is_symbolic_tensor(tensor)
    if backend == "jax":
        import jax

        return not isinstance(tensor, jax.core.Tracer)
    if backend == "torch":
        return tensor.device.type != "meta"
    return True


def _tensorflow_sees_an_accelerator():
    """Keras's test for `jit_compile="auto"` on TensorFlow: XLA unless only CPUs."""
    import tensorflow as tf

    return any(device.device_type != "CPU" for device in tf.config.list_physical_devices())


def _compute_and_select(keep, kept, shortcut, state):
    """Compute the branch, then select; restore the branch's state if dropped."""
    before = [ops.copy(v.value) for v in state]
    outputs = ops.where(keep, kept(), shortcut)
    for variable, old in zip(state, before):
        variable.assign(ops.where(keep, variable.value, old))
    return outputs


def _cond(method, keep, kept, shortcut, state):
    """`tf.cond` or `jax.lax.cond` over the branch; its state updates leave as outputs.

    A variable assigned inside the conditional would hold a value of the
    conditional's own graph: under a JAX trace, or inside the stateless
    recomputation of gradient checkpointing, that value would escape its
    scope. So each branch returns the new state and it is assigned outside.
    """

    # Read outside the conditional: a value made in one branch cannot be used in the other.
    before = [ops.copy(v.value) for v in state]

    def run_kept():
        outputs = kept()
        after = [ops.copy(v.value) for v in state]
        for variable, old in zip(state, before):
            variable.assign(old)
        return outputs, after

    def run_dropped():
        return shortcut, before

    if method == "tf.cond":
        import tensorflow as tf

        outputs, after = tf.cond(keep, run_kept, run_dropped)
    else:
        import jax

        outputs, after = jax.lax.cond(keep, run_kept, run_dropped)
    for variable, new in zip(state, after):
        variable.assign(new)
    return outputs
