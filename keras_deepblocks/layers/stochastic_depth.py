import keras
from keras import ops

from keras_deepblocks.utils import validation

DROP_MODES = ("batch", "sample")
RESCALE_MODES = ("inference", "training")
SKIP_STRATEGIES = ("auto", "skip", "multiply")


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class StochasticDepth(keras.layers.Layer):
    """Residual block with stochastic depth (Huang et al., 2016): `x + b * f(x)`.

    The layer owns its residual branch `f`, so a dropped branch is not
    computed at all (forward or backward), which is where the paper's
    training speed-up comes from. Wrappers that take `[shortcut, residual]`
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
      GPU each `if` waits for its draw to reach the host),
      `tf.cond` in a TensorFlow graph (with or without XLA), and
      `jax.lax.cond` with the branch's state passed out of the conditional
      under a JAX trace.
    - `"multiply"`: compute the branch and select `x + f(x)` or `x` with
      the draw; the branch's state is restored when dropped.
    - `"auto"` (default): `"skip"` where the step is not compiled by XLA
      (PyTorch eager, TensorFlow graphs with `jit_compile=False`, anything
      eager), `"multiply"` where it is (JAX's `jit`, TensorFlow's
      `jit_compile=True`) and under `torch.compile` (a data-dependent `if`
      splits its graph at every block). An XLA conditional per block made a
      CIFAR ResNet training step slower than computing every branch: about
      11x (JAX) and 13x (TensorFlow) on CPU, 1.5-1.7x on an H100 (JAX);
      see `benchmarks/stochastic_depth_speed.py`. Note that Keras compiles
      with XLA by default on JAX, and on TensorFlow only on a GPU.

    Args:
        branch: The residual branch `f`, a Keras layer (or model) mapping
            `x` to a tensor of the shape of `x`. It is serialized with this
            layer.
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

    >>> branch = keras.Sequential([keras.layers.Dense(8), keras.layers.ReLU()])
    >>> block = StochasticDepth(branch, survival_probability=0.8, seed=1)
    >>> block(np.ones((2, 8)), training=True).shape
    (2, 8)
    """

    def __init__(
        self,
        branch,
        survival_probability=0.5,
        drop_mode="batch",
        rescale="inference",
        skip_strategy="auto",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(branch, keras.layers.Layer):
            raise TypeError(
                "`branch` must be a Keras layer or model mapping x to the "
                f"shape of x, got {branch!r} of type {type(branch).__name__}."
            )
        self.branch = branch
        self.survival_probability = survival_probability_arg(survival_probability)
        self.drop_mode = validation.one_of(drop_mode, "drop_mode", DROP_MODES)
        self.rescale = validation.one_of(rescale, "rescale", RESCALE_MODES)
        self.skip_strategy = validation.one_of(skip_strategy, "skip_strategy", SKIP_STRATEGIES)
        self.seed = validation.seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def build(self, input_shape):
        # Build here: variables cannot be created inside a tf.cond branch.
        if not self.branch.built:
            self.branch.build(input_shape)
        output_shape = self.branch.compute_output_shape(input_shape)
        if tuple(output_shape) != tuple(input_shape):
            raise ValueError(
                "The `branch` of StochasticDepth must keep the shape of its "
                f"input; input shape {tuple(input_shape)} gives "
                f"{tuple(output_shape)}."
            )

    def call(self, inputs, training=None):
        training = validation.training(training)
        return stochastic_residual(
            lambda x: self.branch(x, training=training),
            inputs,
            inputs,
            self.survival_probability,
            training=training,
            seed_generator=self.seed_generator,
            drop_mode=self.drop_mode,
            rescale=self.rescale,
            skip_strategy=self.skip_strategy,
            branch_layers=[self.branch],
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "branch": keras.saving.serialize_keras_object(self.branch),
                "survival_probability": self.survival_probability,
                "drop_mode": self.drop_mode,
                "rescale": self.rescale,
                "skip_strategy": self.skip_strategy,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["branch"] = keras.saving.deserialize_keras_object(config["branch"])
        return cls(**config)


def survival_probability_arg(value, name="survival_probability"):
    """`value` as a float in `(0, 1]`, the range of a survival probability."""
    return validation.float_in_range(value, name, 0.0, 1.0, low_open=True)


def stochastic_residual(
    branch,
    branch_input,
    base,
    survival_probability,
    *,
    training,
    seed_generator,
    drop_mode="batch",
    rescale="inference",
    skip_strategy="auto",
    branch_layers=(),
):
    """`base + b * branch(branch_input)`, the sum of a stochastic-depth block.

    The one implementation behind `StochasticDepth` and `ResidualUnit`; see
    `StochasticDepth` for the semantics of the arguments.

    Args:
        branch: Callable computing the residual from `branch_input`.
        branch_input: Input of the branch.
        base: What the residual is added to (the shortcut).
        survival_probability: `p` in `(0, 1]`.
        training: Python bool.
        seed_generator: `keras.random.SeedGenerator` of the draws.
        drop_mode, rescale, skip_strategy: As in `StochasticDepth`.
        branch_layers: The layers `branch` runs. A dropped branch leaves
            their state (BN statistics, dropout seeds) unchanged and gives
            their weights zero gradients (not none, so that optimizers treat
            them alike on every backend).
    """
    p = survival_probability
    if not training:
        scale = p if rescale == "inference" else 1.0
        return _add_scaled(base, branch(branch_input), scale)
    gain = 1.0 / p if rescale == "training" else 1.0
    if drop_mode == "sample":
        residual = branch(branch_input)
        mask_shape = (ops.shape(residual)[0],) + (1,) * (len(residual.shape) - 1)
        keep = keras.random.uniform(mask_shape, seed=seed_generator) < p
        return base + _scaled(residual * ops.cast(keep, residual.dtype), gain)
    if p == 1.0:
        return _add_scaled(base, branch(branch_input), gain)
    keep = keras.random.uniform((), seed=seed_generator) < p
    state_variables = [v for layer in branch_layers for v in layer.non_trainable_variables]

    def kept():
        return _add_scaled(base, branch(branch_input), gain)

    method = _skip_method(keep, skip_strategy)
    if method == "python":
        if bool(keep):
            return kept()
        weights = [w for layer in branch_layers for w in layer.trainable_variables]
        return _with_zero_gradients(base, weights)
    if method == "tf.cond":
        import tensorflow as tf

        return tf.cond(keep, kept, lambda: tf.identity(base))
    if method == "jax.cond":
        return _jax_cond(keep, kept, base, state_variables)
    return _compute_and_select(keep, kept, base, state_variables)


def _add_scaled(base, residual, scale):
    return base + _scaled(residual, scale)


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


def _with_zero_gradients(base, weights):
    """`base`, exactly, but depending on `weights` with zero gradient."""
    if not weights:
        return base
    # Summed in float32: a float16 sum of many weights can overflow, and inf * 0 is NaN.
    link = sum(ops.sum(ops.cast(w, "float32")) for w in weights)
    return base + ops.cast(link * 0.0, base.dtype)


def _skip_method(keep, skip_strategy):
    """How to apply the draw `keep`: `"python"` (an `if` on its value),
    `"tf.cond"`, `"jax.cond"` or `"select"` (compute, then select)."""
    if skip_strategy == "multiply":
        return "select"
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.is_symbolic_tensor(keep):
            return "python"
        if skip_strategy == "auto" and _in_xla_context():
            return "select"
        return "tf.cond"
    if backend == "jax":
        import jax

        if not isinstance(keep, jax.core.Tracer):
            return "python"
        return "jax.cond" if skip_strategy == "skip" else "select"
    if backend == "torch":
        import torch

        if keep.device.type == "meta":  # shape inference
            return "select"
        # Under torch.compile an `if` on a tensor splits the graph at every
        # block; "auto" keeps one graph there.
        if skip_strategy == "auto" and torch.compiler.is_compiling():
            return "select"
    return "python"


def _in_xla_context():
    """Whether the TensorFlow graph being traced will be compiled by XLA."""
    from tensorflow.python.framework import ops as tf_ops
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph())


def _compute_and_select(keep, kept, base, state_variables):
    """Compute the branch, then select; restore the branch's state if dropped."""
    before = [ops.copy(v.value) for v in state_variables]
    outputs = ops.where(keep, kept(), base)
    for variable, old in zip(state_variables, before):
        variable.assign(ops.where(keep, variable.value, old))
    return outputs


def _jax_cond(keep, kept, base, state_variables):
    """`jax.lax.cond` over the branch; its state updates leave as outputs.

    Assigning a variable inside the conditional would leak the branch's
    tracers into the enclosing stateless scope (`UnexpectedTracerError`), so
    the new values are returned from the conditional and assigned outside.
    """
    import jax

    def run_kept():
        before = [v.value for v in state_variables]
        outputs = kept()
        after = [v.value for v in state_variables]
        for variable, old in zip(state_variables, before):
            variable.assign(old)
        return outputs, after

    def run_dropped():
        return base, [v.value for v in state_variables]

    outputs, after = jax.lax.cond(keep, run_kept, run_dropped)
    for variable, new in zip(state_variables, after):
        variable.assign(new)
    return outputs
