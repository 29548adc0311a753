import keras

from keras_deepblocks.layers.residual_unit import ResidualUnit
from keras_deepblocks.utils import validation


@keras.saving.register_keras_serializable(package="keras_deepblocks")
class CheckpointedResidualUnit(ResidualUnit):
    """A `ResidualUnit` that recomputes its activations in the backward pass.

    Gradient checkpointing: in training, only the unit's input is kept for the
    backward pass; the branch's intermediate activations (conv, BN and ReLU
    outputs, about seven tensors per unit) are recomputed from it when the
    gradient is needed. A deep stack then stores one activation per unit
    instead of several, for one more forward pass of compute. Gradients are
    the same as `ResidualUnit`'s.

    The unit runs as a pure function of its input and variable values inside
    `jax.checkpoint`, `tf.recompute_grad` or `torch.utils.checkpoint`, so the
    recomputation neither updates the BN moving statistics a second time nor
    draws new random numbers. (`keras.RematScope` wraps `call` directly,
    which breaks on the `training` argument under TF and JAX and updates BN
    statistics twice under PyTorch.) On TensorFlow, units with a
    `survival_probability` run without checkpointing: their `tf.cond` skip
    cannot run inside the stateless recomputation.

    Args:
        **kwargs: The arguments of `ResidualUnit`.

    Call arguments:
        inputs: 4D image tensor.
        training: Python bool (or `None`), whether BN uses batch statistics. Only
            training calls are checkpointed.

    Example:

    >>> x = keras.Input((32, 32, 16))
    >>> y = CheckpointedResidualUnit(32, strides=2)(x)
    >>> y.shape
    (None, 16, 16, 32)
    """

    def call(self, inputs, training=None):
        training = validation.training(training)
        if not training or self._tf_stochastic_depth:
            return super().call(inputs, training=training)
        trainable = self.trainable_variables
        non_trainable = self.non_trainable_variables
        variables = trainable + non_trainable

        def forward(inputs, *values):
            mapping = list(zip(variables, values))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                outputs = ResidualUnit.call(self, inputs, training=training)
            updates = []
            for variable, value in zip(non_trainable, values[len(trainable) :]):
                update = scope.get_current_value(variable)
                updates.append(value if update is None else update)
            return (outputs, *updates)

        # The checkpoint keeps its inputs for the recomputation: copies of the
        # moving statistics, since the variables are updated in place below.
        values = [v.value for v in trainable] + [keras.ops.copy(v.value) for v in non_trainable]
        outputs, *updates = _checkpoint(forward)(inputs, *values)
        for variable, update in zip(non_trainable, updates):
            variable.assign(update)
        return outputs

    @property
    def _tf_stochastic_depth(self):
        # A branch skipped with tf.cond updates its BN statistics inside the
        # cond's graph, which cannot leave a stateless recomputation.
        return (
            keras.backend.backend() == "tensorflow"
            and getattr(self, "survival_probability", None) is not None
        )


def _checkpoint(function):
    """The backend's gradient checkpointing of a pure, positional-only function."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.checkpoint(function)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.recompute_grad(function)
    if backend == "torch":
        from torch.utils import checkpoint

        return lambda *args: checkpoint.checkpoint(function, *args, use_reentrant=False)
    return function
