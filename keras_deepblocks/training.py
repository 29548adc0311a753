"""The ResNet paper's CIFAR training recipe, for any Keras classifier.

SGD with momentum 0.9, weight decay 1e-4 (an L2 penalty on the kernels, whose
gradient `1e-4 * w` goes through the momentum as in the reference
implementations, unlike Keras's decoupled `weight_decay`), and a learning rate
of 0.1 divided by 10 at 50 % and 75 % of training.
"""

import keras

from keras_deepblocks.utils import validation


def step_decay(
    total_steps,
    initial_learning_rate=0.1,
    milestones=(0.5, 0.75),
    factor=0.1,
    warmup_steps=0,
):
    """A learning rate divided by 10 (`factor`) at 50 % and 75 % of training.

    With `warmup_steps`, the first steps run at a tenth of the rate: the
    ResNet paper trains ResNet-110 and ResNet-1202 at 0.01 for about 400
    iterations before 0.1, which is too large to start converging there.

    Args:
        total_steps: Optimizer steps of the whole training run.
        initial_learning_rate: Rate of the first phase. Defaults to `0.1`.
        milestones: Increasing fractions of `total_steps` where the rate drops.
        factor: Multiplier applied at each milestone. Defaults to `0.1`.
        warmup_steps: Steps at `initial_learning_rate * factor` before the
            schedule starts. Defaults to `0`.

    Returns:
        A `keras.optimizers.schedules.PiecewiseConstantDecay`: serializable,
        and driven by `optimizer.iterations`, so a resumed run gets the right
        rate.

    Example:

    >>> schedule = step_decay(total_steps=1000)
    >>> [round(float(schedule(step)), 4) for step in (0, 499, 500, 750)]
    [0.1, 0.1, 0.01, 0.001]
    """
    total_steps = validation.positive_int(total_steps, "total_steps")
    initial_learning_rate = validation.finite_float(initial_learning_rate, "initial_learning_rate")
    factor = validation.finite_float(factor, "factor")
    milestones = tuple(milestones)
    if not all(0 < m < 1 for m in milestones) or list(milestones) != sorted(set(milestones)):
        raise ValueError(
            f"`milestones` must be increasing fractions in (0, 1), got {milestones!r}."
        )
    # The schedule switches *after* a boundary, so step round(m * total) - 1 is
    # the last one at the old rate.
    boundaries = [max(0, round(m * total_steps) - 1) for m in milestones]
    values = [initial_learning_rate * factor**i for i in range(len(milestones) + 1)]
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"`warmup_steps` must be an integer >= 0, got {warmup_steps!r}.")
    if warmup_steps:
        if boundaries and warmup_steps > boundaries[0]:
            raise ValueError(
                f"`warmup_steps` ({warmup_steps}) must end before the first milestone "
                f"(step {boundaries[0] + 1})."
            )
        boundaries = [warmup_steps - 1] + boundaries
        values = [initial_learning_rate * factor] + values
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def add_weight_decay(model, weight_decay):
    """Puts an L2 penalty with gradient `weight_decay * w` on every kernel of `model`.

    Kernels are the trainable variables of rank 2 or more (dense and
    convolution kernels); biases and normalization parameters are left alone.
    Variables that already have a regularizer keep it. Returns the number of
    variables that got the penalty. The penalty is not saved with the model
    (it only matters for training).
    """
    weight_decay = validation.finite_float(weight_decay, "weight_decay")
    if weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}.")
    if weight_decay == 0:
        return 0
    # keras.regularizers.L2(l) adds l * sum(w ** 2), whose gradient is 2 * l * w.
    penalty = keras.regularizers.L2(weight_decay / 2)
    count = 0
    for variable in model.trainable_variables:
        if len(variable.shape) >= 2 and variable.regularizer is None:
            variable.regularizer = penalty
            count += 1
    return count


def compile_recipe(
    model,
    total_steps,
    learning_rate=0.1,
    momentum=0.9,
    weight_decay=1e-4,
    milestones=(0.5, 0.75),
    warmup_steps=0,
    **compile_kwargs,
):
    """Compiles a softmax classifier with the paper's CIFAR recipe.

    Args:
        model: A Keras model with softmax outputs and integer labels.
        total_steps: Optimizer steps of the whole run (for the schedule).
        learning_rate: Initial learning rate. Defaults to `0.1`.
        momentum: SGD momentum. Defaults to `0.9`.
        weight_decay: L2 weight decay of the kernels. Defaults to `1e-4`.
        milestones: Fractions of training where the rate is divided by 10;
            `()` keeps it constant.
        warmup_steps: Steps at a tenth of `learning_rate` first (the paper
            uses 400 for ResNet-110 and ResNet-1202). Defaults to `0`.
        **compile_kwargs: More `model.compile` arguments (e.g. `jit_compile`).
    """
    add_weight_decay(model, weight_decay)
    schedule = learning_rate
    if milestones or warmup_steps:
        schedule = step_decay(total_steps, learning_rate, milestones, warmup_steps=warmup_steps)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=momentum),
        loss="sparse_categorical_crossentropy",
        # Weighted, so that zero-weight padding (data parallel evaluation) does not count.
        weighted_metrics=["accuracy"],
        **compile_kwargs,
    )
    return model


def recompute_batch_norm_statistics(model, dataset, max_batches=100):
    """Sets every BatchNormalization layer's moving statistics to averages over `dataset`.

    During training, BN layers keep exponential moving averages of the batch
    statistics of recent, ever-changing weights. After a long run they settle;
    after a short one (a smoke run of a few dozen steps) they still describe
    the early weights, and the model in inference mode can do far worse than
    it does in training mode. This replaces them with plain averages of the
    batch statistics of the final weights ("precise BN", Wu & Johnson 2021).
    Weights are not changed.

    Args:
        model: A Keras model.
        dataset: Batches of inputs, or of `(inputs, labels, ...)` tuples, as
            seen in training (e.g. the augmented training pipeline): an
            iterable or a `tf.data.Dataset`.
        max_batches: The most batches to average over. Defaults to `100`.

    Returns:
        The number of batches averaged over (`0`: the model has no BN layer).
    """
    max_batches = validation.positive_int(max_batches, "max_batches")
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    if hasattr(dataset, "as_numpy_iterator"):  # tf.data: NumPy batches suit every backend
        dataset = dataset.as_numpy_iterator()
    count = 0
    try:
        for batch in dataset:
            if count == max_batches:
                break
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            # Batch k gets weight 1 / (k + 1): a running plain average.
            for layer in layers:
                layer.momentum = count / (count + 1.0)
            model(inputs, training=True)
            count += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return count
