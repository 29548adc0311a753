import math

import keras
import numpy as np
from keras import ops

from keras_deepblocks.initializers.advancing import advancing
from keras_deepblocks.layers.stochastic_depth import RESCALE_MODES
from keras_deepblocks.layers.stochastic_depth import fixed_count_keep_mask
from keras_deepblocks.layers.stochastic_depth import has_value
from keras_deepblocks.layers.stochastic_depth import kept_block_slots
from keras_deepblocks.utils import validation

SAMPLINGS = ("fixed_count", "independent")


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class ResidualStack(keras.layers.Layer):
    """`num_blocks` same-shaped residual blocks `x <- activation(x + f_l(x))` as one layer.

    The block's architecture `f` is given once, as a Keras layer or model (the
    template); the stack holds each of its weights stacked, with shape
    `(num_blocks, ...)`. Every copy is initialized by its own draw from the
    template's initializers and keeps its own BatchNormalization statistics,
    so the stack computes what `num_blocks` separate residual blocks would.

    With `survival_probabilities`, training uses stochastic depth (Huang et
    al. 2016) in a form that saves time also where the step is compiled by
    XLA (JAX, TensorFlow with `jit_compile=True`) and needs no conditional
    that waits on the host. The kept blocks are drawn by randomized
    systematic sampling (`fixed_count_keep_mask`): block `l` is kept with
    probability exactly `p_l`, as in the paper, and the number kept is
    always `floor(S)` or `ceil(S)`, `S = sum(p_l)`. The kept blocks then run,
    in their order, in `ceil(S)` fixed slots: each slot gathers its block's
    weights and runs the template on them (a slot left empty computes a
    block whose result and statistics are discarded). The step has no
    data-dependent control flow, so it compiles once, and a dropped block
    costs nothing: its weights get zero gradients and its BN statistics stay
    unchanged. `sampling="independent"` draws each block on its own (the
    paper's joint law; the depth then varies, so a compiled step computes
    all `num_blocks` slots and only eager steps skip the dropped blocks).

    In inference every block runs, scaled as in the paper:
    `x + p_l f_l(x)` (`rescale="inference"`), or `x + f_l(x)` when kept
    branches are divided by `p_l` in training instead (`rescale="training"`).
    A dropped block passes `x` through unchanged (in a post-activation ResNet
    `x` is already the output of a ReLU, so this equals `relu(x)`).

    Args:
        block: The residual branch `f`: a Keras layer or model mapping `x` to
            a tensor of the shape of `x`, e.g. conv-BN-ReLU-conv-BN for a
            post-activation ResNet (with `activation="relu"`) or
            BN-ReLU-conv-BN-ReLU-conv for a pre-activation one. Serialized
            with this layer; its own weights are never used.
        num_blocks: Number of blocks, a positive int.
        survival_probabilities: `None` (no stochastic depth, the default),
            one probability in `(0, 1]` for every block, or a sequence of
            `num_blocks` of them (see `linear_decay`).
        sampling: `"fixed_count"` (default) or `"independent"`, how kept
            blocks are drawn in training.
        rescale: `"inference"` (default) or `"training"`, as in
            `StochasticDepth`.
        activation: Applied to each block's sum `x + f(x)`: `"relu"` for
            post-activation ResNets; `None` (default) for pre-activation ones.
        gradient_checkpointing: Whether training calls recompute each block's
            activations in the backward pass (`keras.remat` per block) instead
            of keeping them. Defaults to `False`.
        unroll: Whether a call that runs every block (inference, or training
            without drops) runs them as unrolled code (`True`, the default:
            fastest for convolutional blocks on a CPU) or as one
            `keras.ops.scan` over the stacked weights (`False`: XLA then
            compiles one block, not `num_blocks`; a 300-block unrolled stack
            takes minutes to compile with JAX).
        seed: Integer seed of the draws in `[0, 2**31 - 1]`, or `None`.
        **kwargs: Base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: Input tensor `x`.
        training: Python bool (or `None`), whether BN uses batch statistics
            and whether blocks are dropped.

    Example:

    >>> branch = keras.Sequential(
    ...     [keras.layers.Dense(8, name="fc1"), keras.layers.ReLU(),
    ...      keras.layers.Dense(8, name="fc2")],
    ...     name="f",
    ... )
    >>> stack = ResidualStack(branch, 6, survival_probabilities=0.5, seed=1, name="stage")
    >>> tuple(stack(np.ones((2, 8)), training=True).shape)
    (2, 8)
    >>> [(v.path, tuple(v.shape)) for v in stack.weights[:2]]
    [('stage/fc1_kernel', (6, 8, 8)), ('stage/fc1_bias', (6, 8))]
    """

    def __init__(
        self,
        block,
        num_blocks,
        survival_probabilities=None,
        sampling="fixed_count",
        rescale="inference",
        activation=None,
        gradient_checkpointing=False,
        unroll=True,
        seed=None,
        **kwargs,
    ):
        if not isinstance(block, keras.layers.Layer):
            raise TypeError(
                "`block` must be a Keras layer or model mapping x to the shape of x, "
                f"received: {block!r} of type {type(block).__name__}."
            )
        super().__init__(**kwargs)
        self.num_blocks = validation.positive_int(num_blocks, "num_blocks")
        self.survival_probabilities = _checked_probabilities(
            survival_probabilities, self.num_blocks
        )
        self.sampling = validation.one_of(sampling, "sampling", SAMPLINGS)
        self.rescale = validation.one_of(rescale, "rescale", RESCALE_MODES)
        self.activation = validation.keras_object(activation, "activation", "activation")
        self.gradient_checkpointing = validation.boolean(
            gradient_checkpointing, "gradient_checkpointing"
        )
        self.unroll = validation.boolean(unroll, "unroll")
        self.seed = validation.seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed) if self._drops else None
        # The template runs on the stacked weights only: kept out of Keras's
        # (and torch.nn.Module's) tracking, so its own weights are not the model's.
        self._template = _Untracked(block)

    @property
    def block(self):
        """The template block `f` (its own weights are unused)."""
        return self._template.layer

    def __dir__(self):
        # Keras's `.keras` saving walks `dir(layer)` for the layers to save:
        # listed, the template would save (and load) its own, unused, weights.
        return [name for name in super().__dir__() if name != "block"]

    @property
    def _drops(self):
        probabilities = self.survival_probabilities
        return probabilities is not None and min(probabilities) < 1.0

    def build(self, input_shape):
        block = self.block
        if not block.built:
            block.build(input_shape)
        output_shape = tuple(block.compute_output_shape(input_shape))
        if output_shape != tuple(input_shape):
            raise ValueError(
                "`block` of ResidualStack must keep the shape of its input, received: "
                f"a block mapping shape {tuple(input_shape)} to {output_shape}."
            )
        template = block.trainable_weights + block.non_trainable_weights
        constrained = [v.path for v in template if v.constraint is not None]
        if constrained:
            raise ValueError(
                "`block` of ResidualStack must not have weight constraints (they would act "
                f"on the stacked weights), received: a constraint on {constrained[0]!r}."
            )
        # Seed generators (Dropout, GaussianNoise) are state that `stateless_call`
        # needs and the stack does not hold per block.
        if len(block.non_trainable_variables) != len(block.non_trainable_weights):
            raise ValueError(
                "`block` of ResidualStack must not draw random numbers (its state can only "
                "be weights and BN statistics), received: a block with a seed generator, "
                "as Dropout and GaussianNoise layers hold."
            )
        draws = _initial_value_draws(block, input_shape)
        paths = _paths_in_block(block)
        self.block_weight_paths = tuple(paths[id(v)] for v in template)
        self._stacked = [
            self.add_weight(
                shape=(self.num_blocks, *variable.shape),
                initializer=_stacked_initializer(draw, self.num_blocks),
                dtype=variable.dtype,
                trainable=variable.trainable,
                # BN keeps its variables in float32 under mixed precision (no autocast):
                # read as float16, its statistics came back float32 into float16 scatters.
                autocast=getattr(variable, "_autocast", True),
                regularizer=variable.regularizer,
                name=path.split("/", 1)[-1].replace("/", "_"),
            )
            for variable, draw, path in zip(template, draws, self.block_weight_paths)
        ]
        self._num_trainable = len(block.trainable_weights)

    def call(self, inputs, training=None):
        training = validation.training(training)
        if training and self._drops:
            return self._call_kept_blocks(inputs)
        return self._call_all_blocks(inputs, training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        probabilities = self.survival_probabilities
        config = {
            "block": keras.layers.serialize(self.block),
            "num_blocks": self.num_blocks,
            "survival_probabilities": None if probabilities is None else list(probabilities),
            "sampling": self.sampling,
            "rescale": self.rescale,
            "activation": keras.activations.serialize(self.activation),
            "gradient_checkpointing": self.gradient_checkpointing,
            "unroll": self.unroll,
            "seed": self.seed,
        }
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["block"] = keras.layers.deserialize(config["block"])
        return cls(**config)

    def block_outputs(self, inputs):
        """The output of every block in turn, in inference: a list of `num_blocks` tensors.

        What diagnostics look at inside the stack (the signal or the gates of
        each block); the last one is what calling the stack returns.
        """
        if not self.built:
            self.build(tuple(inputs.shape))
        inputs = ops.convert_to_tensor(inputs, self.compute_dtype)
        return self._call_all_blocks(inputs, False, all_outputs=True)

    def get_block_weights(self, index):
        """Block `index`'s weights as NumPy arrays, in the order of `block_weight_paths`."""
        index = validation.integer_in_range(index, "index", 0, self.num_blocks - 1)
        return [ops.convert_to_numpy(v.value[index]) for v in self._stacked]

    def set_block_weights(self, index, weights):
        """Sets block `index`'s weights from arrays in the order of `block_weight_paths`."""
        index = validation.integer_in_range(index, "index", 0, self.num_blocks - 1)
        if len(weights) != len(self._stacked):
            raise ValueError(
                f"`weights` must hold {len(self._stacked)} arrays "
                f"({', '.join(self.block_weight_paths)}), received: {len(weights)}."
            )
        for variable, value, path in zip(self._stacked, weights, self.block_weight_paths):
            value = ops.convert_to_numpy(value)  # nested lists and tensors too
            if tuple(value.shape) != tuple(variable.shape[1:]):
                raise ValueError(
                    f"`weights` for {path!r} must have shape {tuple(variable.shape[1:])}, "
                    f"received: {tuple(value.shape)}."
                )
            variable.assign(ops.scatter_update(variable.value, [[index]], value[None]))

    def _call_all_blocks(self, inputs, training, all_outputs=False):
        """Every block in turn: the last block's output, or the list of all of them."""
        stacked = [v.value for v in self._stacked]
        if training:
            # Copies of the statistics: on torch `unstack` gives views of the
            # variables, which the assignment below overwrites in place while a
            # checkpointed block's recomputation still needs their old values.
            stacked[self._num_trainable :] = [ops.copy(v) for v in stacked[self._num_trainable :]]
        scales = None
        if not training and self.survival_probabilities and self.rescale == "inference":
            scales = ops.convert_to_tensor(self.survival_probabilities, dtype="float32")
        run_blocks = self._unrolled_blocks if self.unroll else self._scanned_blocks
        last, every_output, states = run_blocks(inputs, stacked, training, scales)
        if training:
            for variable, state in zip(self._stacked[self._num_trainable :], states):
                variable.assign(state)
        return every_output() if all_outputs else last

    def _unrolled_blocks(self, inputs, stacked, training, scales):
        """The blocks as straight-line code, on weights sliced with static indices.

        Returns the last output, a function giving every block's output, and
        the blocks' new states stacked.
        """
        per_block = [ops.unstack(v, self.num_blocks, axis=0) for v in stacked]
        x, outputs, new_states = inputs, [], []
        for index in range(self.num_blocks):
            values = [weights[index] for weights in per_block]
            scale = 1.0 if scales is None else scales[index]
            x, state = self._run_block(x, values, training, scale)
            outputs.append(x)
            new_states.append(state)
        states = [ops.stack(state) for state in zip(*new_states)]
        return x, lambda: outputs, states

    def _scanned_blocks(self, inputs, stacked, training, scales):
        """The blocks as one `ops.scan` over the stacked weights: one block to compile."""

        def step(carry, values):
            weights, scale = values
            y, state = self._run_block(carry[0], list(weights), training, scale)
            return [y, *state], [y, *state]

        # The carry holds the last block's state too: Keras's TensorFlow scan
        # collects outputs of the carry's structure only.
        init = [inputs, *(ops.zeros_like(v[0]) for v in stacked[self._num_trainable :])]
        scales = ops.ones((self.num_blocks,)) if scales is None else scales
        (last, *_), (outputs, *states) = ops.scan(step, init, (stacked, scales))

        def every_output():
            # Indexed, not `ops.unstack`: on JAX eagerly, unstacking 1000 outputs takes 10 s.
            return [outputs[index] for index in range(self.num_blocks - 1)] + [last]

        return last, every_output, states

    def _call_kept_blocks(self, inputs):
        """The kept blocks in fixed slots: gathered weights, one scatter of the statistics."""
        probabilities = ops.convert_to_tensor(self.survival_probabilities, dtype="float32")
        if self.sampling == "fixed_count":
            keep = fixed_count_keep_mask(probabilities, seed=self.seed_generator)
            # The count is floor(S) or ceil(S); the margin absorbs rounding in S.
            num_slots = math.ceil(sum(self.survival_probabilities) - 1e-4)
        else:
            keep = keras.random.uniform((self.num_blocks,), seed=self.seed_generator)
            keep = keep < probabilities
            num_slots = _concrete_count(keep) or self.num_blocks
        # One slot at least, so that every weight has a (zero) gradient.
        num_slots = min(max(num_slots, 1), self.num_blocks)
        blocks, used = kept_block_slots(keep, num_slots)
        per_slot = [
            ops.unstack(ops.take(v.value, blocks, axis=0), num_slots, axis=0) for v in self._stacked
        ]
        gains = [1.0] * num_slots
        if self.rescale == "training":
            gains = ops.unstack(ops.take(1.0 / probabilities, blocks), num_slots)
        x, new_states = inputs, []
        for slot in range(num_slots):
            values = [weights[slot] for weights in per_slot]
            y, state = self._run_block(x, values, True, gains[slot])
            x = ops.where(used[slot], y, x)
            old_state = values[self._num_trainable :]
            new_states.append([ops.where(used[slot], n, o) for n, o in zip(state, old_state)])
        for k, variable in enumerate(self._stacked[self._num_trainable :]):
            updates = ops.stack([state[k] for state in new_states])
            variable.assign(ops.scatter_update(variable.value, blocks[:, None], updates))
        return x

    def _run_block(self, x, values, training, scale):
        """`activation(x + scale * f(x))` on one block's weights, and its new state."""
        num_trainable = self._num_trainable
        # A frozen stack's blocks are frozen layers: BN normalizes with (and keeps)
        # its moving statistics, as in frozen `ResidualUnit`s (Keras's fine-tuning rule).
        block_training = training and self.trainable

        def residual_block(x, *values):
            residual, state = self.block.stateless_call(
                list(values[:num_trainable]),
                list(values[num_trainable:]),
                x,
                training=block_training,
            )
            return (self.activation(x + _scaled(residual, scale)), *state)

        if training and self.gradient_checkpointing:
            residual_block = keras.remat(residual_block)
        outputs, *state = residual_block(x, *values)
        return outputs, state


class _Untracked:
    """Holds a layer where attribute tracking does not see it."""

    def __init__(self, layer):
        self.layer = layer


def _checked_probabilities(value, num_blocks):
    if value is None:
        return None
    if np.ndim(value) == 0:
        return [validation.survival_probability(value, "survival_probabilities")] * num_blocks
    if np.ndim(value) != 1:
        raise ValueError(
            "`survival_probabilities` must be None, a probability or a sequence of them, "
            f"received: {value!r}."
        )
    value = list(value)  # a NumPy array too, as `np.linspace(1.0, 0.5, n)` gives
    if len(value) != num_blocks:
        raise ValueError(
            f"`survival_probabilities` must hold one probability per block ({num_blocks}), "
            f"received: {len(value)} of them."
        )
    return [
        validation.survival_probability(p, f"survival_probabilities[{index}]")
        for index, p in enumerate(value)
    ]


def _initial_value_draws(block, input_shape):
    """For each weight of `block` (trainable, then not), a function drawing a new initial value.

    A copy of the block built in a `keras.StatelessScope` creates its variables
    without values and keeps their initializers: drawing from those is what
    building `num_blocks` copies would do, without building them (building is
    what made a ResNet-1202 take most of a minute to construct).
    """
    with keras.StatelessScope():  # which initializes the variables on exit
        # A built model's config can build the copy in `from_config`.
        copy = type(block).from_config(block.get_config())
        if not copy.built:
            copy.build(input_shape)
        copies = copy.trainable_weights + copy.non_trainable_weights
        initializers = [getattr(v, "_initializer", None) for v in copies]
    template = block.trainable_weights + block.non_trainable_weights
    if len(copies) != len(template) or not all(callable(i) for i in initializers):
        raise ValueError(
            "`block` of ResidualStack could not be re-initialized: a copy built from its "
            "config has other weights, or weights created without an initializer."
        )
    return [_draw(advancing(i), v.shape, v.dtype) for i, v in zip(initializers, template)]


def _draw(initializer, shape, dtype):
    return lambda: initializer(shape, dtype=dtype)


def _stacked_initializer(draw, num_blocks):
    def initializer(shape, dtype=None):
        return ops.stack([draw() for _ in range(num_blocks)])

    return initializer


def _paths_in_block(block):
    """`{id(variable): "f/conv1/kernel"}`: each weight's path from the block down.

    Made of the layers' names, not read from the variables' own paths: those
    start with the name scopes the block was built in (`stage/f/...` for a
    block built by the stack), and Keras builds the layers of a deserialized
    `Sequential` outside its scope (`conv1/kernel`, after `load_model`).
    """
    paths = {}

    def visit(layer, prefix):
        for child in layer._flatten_layers(include_self=False, recursive=False):
            visit(child, f"{prefix}/{child.name}")
        # After the children: a weight belongs to the deepest layer holding it.
        for variable in layer.weights:
            paths.setdefault(id(variable), f"{prefix}/{variable.name}")

    visit(block, block.name)
    return paths


def _concrete_count(keep):
    """How many blocks `keep` keeps, when its value is known (eager), else `None`."""
    if not has_value(keep):
        return None
    return int(ops.sum(ops.cast(keep, "int32")))


def _scaled(residual, scale):
    """`residual * scale` (a float or a scalar tensor), in float32 at least."""
    if isinstance(scale, float) and scale == 1.0:
        return residual
    dtype = keras.backend.standardize_dtype(residual.dtype)
    if dtype in ("float16", "bfloat16"):
        return ops.cast(ops.cast(residual, "float32") * scale, dtype)
    return residual * ops.cast(scale, dtype)
