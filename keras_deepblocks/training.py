"""The ResNet paper's CIFAR training recipe, and the training run of `deepblocks train`.

The recipe (`compile_recipe`), for any Keras classifier: SGD with momentum
0.9, weight decay 1e-4 (an L2 penalty on the kernels, whose gradient
`1e-4 * w` goes through the momentum as in the reference implementations,
unlike Keras's decoupled `weight_decay`), and a learning rate of 0.1 divided
by 10 at 50 % and 75 % of training.

The run (`train`): data from `keras_deepblocks.datasets`, a model from any
builder (such as `keras_deepblocks.zoo.registry.build_model`) behind a
normalization layer, the recipe, resumable training, and a saved model that
takes raw pixels; `evaluate` measures such a model. This module knows no
model by name: callers pass a builder.
"""

import contextlib
import dataclasses
import errno
import os
import zipfile

import keras
import numpy as np

from keras_deepblocks import datasets
from keras_deepblocks.layers import ResidualStack
from keras_deepblocks.utils import validation
from keras_deepblocks.utils.files import atomic_path
from keras_deepblocks.utils.files import check_output_directory
from keras_deepblocks.utils.files import check_output_file

# The paper: 64k iterations at batch 128, about 164 epochs of CIFAR's 50k images.
PAPER_EPOCHS = 164
PAPER_BATCH_SIZE = 128
PAPER_LEARNING_RATE = 0.1
PAPER_WARMUP_STEPS = 400
# The paper warms its ResNets of this depth and deeper up (110 and 1202 layers).
PAPER_WARMUP_DEPTH = 110
# The recipe is for CIFAR's 50,000 images. The offline digits have 1438, which
# batch 128 cuts into 12 steps an epoch, too few to leave the first chaotic
# steps at rate 0.1 behind: on digits, batch 16 and rate 0.05 by default.
DIGITS_BATCH_SIZE = 16
DIGITS_LEARNING_RATE = 0.05
# Runs of at most this many steps warm up for their first fifth.
SHORT_RUN_STEPS = 4 * PAPER_WARMUP_STEPS
# Batches of 128 over which the saved model's BN statistics are averaged after training.
BN_STATISTICS_BATCHES = 100
# Under `log_dir`: the model after the last finished epoch, a backup to resume
# from, and TensorBoard's logs.
LAST_EPOCH_FILE = "last_epoch.keras"
BACKUP_DIR = "backup"
TENSORBOARD_DIR = "tensorboard"


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
    layers = []
    for layer in model._flatten_layers(include_self=False):
        # A stack's blocks run its template's BN layers on their own statistics.
        inner = layer.block._flatten_layers() if isinstance(layer, ResidualStack) else [layer]
        layers += [
            inner_layer
            for inner_layer in inner
            if isinstance(inner_layer, keras.layers.BatchNormalization) and layer.trainable
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


@dataclasses.dataclass
class TrainingResult:
    """What `train` made.

    Attributes:
        model: The trained model (raw pixels in, probabilities out), as saved.
        accuracy: Its top-1 accuracy on the test split.
        history: The `keras.callbacks.History` of `model.fit`.
        output: Where the model was saved.
    """

    model: keras.Model
    accuracy: float
    history: keras.callbacks.History
    output: str


def train(
    build_model,
    dataset="digits",
    *,
    output,
    log_dir,
    epochs=PAPER_EPOCHS,
    steps_per_epoch=None,
    batch_size=None,
    learning_rate=None,
    momentum=0.9,
    weight_decay=1e-4,
    warmup_steps=None,
    depth=None,
    flat_inputs=False,
    augment=True,
    image_size=None,
    data_dir=None,
    distribute=False,
    seed=0,
    verbose=1,
    callbacks=(),
):
    """Trains a classifier on an image dataset with the ResNet paper's recipe and saves it.

    The data comes from `keras_deepblocks.datasets.load` with the paper's
    augmentation (4-pixel padding and random crops, flips on CIFAR); the model
    gets a `Normalization` layer with the training split's per-channel
    statistics in front, so that the saved model takes raw pixels in
    `[0, 255]`. It is compiled with `compile_recipe`. Under `log_dir`,
    training keeps a backup that lets an interrupted run resume after its last
    finished epoch when called again with the same arguments (`backup/`,
    removed when the run ends), the model after every epoch
    (`last_epoch.keras`) and TensorBoard logs (`tensorboard/`). After
    training, the BatchNormalization statistics are recomputed with the
    final weights (`recompute_batch_norm_statistics`: the moving averages lag
    behind in short runs), and the model is measured on the test split and
    saved to `output` in one rename (an interrupted save leaves no file).

    `output` and `log_dir` are checked before anything loads, and nothing is
    written before the model is built.

    Args:
        build_model: A function `(input_shape, num_classes) -> keras.Model`
            with softmax outputs, e.g.
            `functools.partial(keras_deepblocks.zoo.registry.build_model, "resnet20")`.
            It is called inside the distribution scope.
        dataset: A name of `keras_deepblocks.datasets.DATASETS`. Defaults to
            `"digits"` (offline).
        output: Path of the trained model; must end in `.keras`.
        log_dir: Folder for the backup, `last_epoch.keras` and TensorBoard.
        epochs: Training epochs. Defaults to the paper's 164.
        steps_per_epoch: Limit each epoch to this many batches (smoke runs).
        batch_size: Defaults to the paper's 128, and 16 on the digits.
        learning_rate: Initial rate. Defaults to the paper's 0.1, and 0.05 on
            the digits.
        momentum: SGD momentum. Defaults to `0.9`.
        weight_decay: L2 weight decay of the kernels. Defaults to `1e-4`.
        warmup_steps: Steps at a tenth of the rate first. Defaults to
            `default_warmup_steps(total_steps, depth)`.
        depth: The network's depth, for the default warm-up only (the paper
            warms ResNet-110 and -1202 up).
        flat_inputs: Whether the model flattens its input (an MLP): then the
            images are not augmented and keep their size by default.
        augment: Random crops (and CIFAR flips) of the training images.
        image_size: Resize images to this size. Defaults to
            `default_image_size(dataset, flat_inputs)`.
        data_dir: tensorflow-datasets data directory.
        distribute: Data parallel training on all local devices (JAX:
            `keras.distribution.DataParallel`; TensorFlow: `MirroredStrategy`).
        seed: Random seed of the weights, the shuffle and the digits split.
        verbose: Keras's progress mode; with a true value, one line about
            the model and the run is printed first.
        callbacks: More Keras callbacks, run after the built-in ones.

    Returns:
        A `TrainingResult`.

    Example:

    ```python
    import functools
    from keras_deepblocks.zoo import registry

    result = train(
        functools.partial(registry.build_model, "resnet20", include_preprocessing=False),
        "digits",
        epochs=1,
        output="resnet20.keras",
        log_dir="runs/resnet20",
    )
    print(result.accuracy)
    ```
    """
    validation.one_of(dataset, "dataset", datasets.DATASETS)
    epochs = validation.positive_int(epochs, "epochs")
    if steps_per_epoch is not None:
        steps_per_epoch = validation.positive_int(steps_per_epoch, "steps_per_epoch")
    check_output_file(output, "output", suffixes=(".keras",))
    check_output_directory(log_dir, "log_dir")
    batch_size, learning_rate = recipe_defaults(dataset, batch_size, learning_rate)
    if image_size is None:
        image_size = default_image_size(dataset, flat_inputs)
    keras.utils.set_random_seed(seed)
    scope, replicas = distribution_scope(distribute)
    data = datasets.load(
        dataset,
        batch_size=batch_size,
        image_size=image_size,
        augment=augment and not flat_inputs,
        normalize=False,
        data_dir=data_dir,
        drop_remainder=replicas > 1,
        seed=seed,
    )
    # Data parallel training drops the last, smaller batch.
    steps = (
        data.train_examples // batch_size if replicas > 1 else -(-data.train_examples // batch_size)
    )
    steps = min(steps, steps_per_epoch) if steps_per_epoch else steps
    total_steps = epochs * steps
    if warmup_steps is None:
        warmup_steps = default_warmup_steps(total_steps, depth)
    with scope:
        model = with_normalization(build_model(data.input_shape, data.num_classes), data)
        compile_recipe(
            model,
            total_steps=total_steps,
            learning_rate=learning_rate,
            momentum=momentum,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
        )
    if verbose:
        print(
            f"{model.name}: {model.count_params():,} parameters, {dataset} "
            f"{data.input_shape}, {epochs} epoch{'' if epochs == 1 else 's'} of {steps} steps"
            + (f", {replicas} replicas" if replicas > 1 else "")
        )
    history = model.fit(
        data.train.repeat() if steps_per_epoch else data.train,
        epochs=epochs,
        steps_per_epoch=steps if steps_per_epoch else None,
        validation_data=data.test,
        callbacks=[*_run_callbacks(log_dir), *callbacks],
        shuffle=False,  # the pipeline shuffles; fit cannot shuffle a tf.data.Dataset
        verbose=verbose,
    )
    # Batches of 128 (augmented as in training): few calls, and plenty of images per average.
    statistics_data = data.train.unbatch().batch(128)
    if recompute_batch_norm_statistics(model, statistics_data, max_batches=BN_STATISTICS_BATCHES):
        _, accuracy = model.evaluate(data.test, verbose=0)
    else:
        accuracy = history.history["val_accuracy"][-1] if history.history else float("nan")
    with atomic_path(output) as path:
        model.save(path)
    return TrainingResult(model, float(accuracy), history, os.fspath(output))


def recipe_defaults(dataset, batch_size=None, learning_rate=None):
    """`(batch_size, learning_rate)`, the paper's where left out, or the digits' own.

    >>> recipe_defaults("cifar10"), recipe_defaults("digits")
    ((128, 0.1), (16, 0.05))
    """
    digits = dataset == "digits"
    if batch_size is None:
        batch_size = DIGITS_BATCH_SIZE if digits else PAPER_BATCH_SIZE
    if learning_rate is None:
        learning_rate = DIGITS_LEARNING_RATE if digits else PAPER_LEARNING_RATE
    return batch_size, learning_rate


def default_warmup_steps(total_steps, depth=None):
    """Steps at a tenth of the learning rate for a run of `total_steps`.

    A short run (at most 1600 steps: a smoke run, a first look) spends its
    first fifth there: from a fresh initialization the full rate makes the
    first few dozen steps chaotic, and a short run has little else. A longer
    one warms up as the paper does: 400 steps for networks of 110 layers or
    more (`depth`), none otherwise.

    >>> default_warmup_steps(64000, depth=110), default_warmup_steps(64000, depth=56)
    (400, 0)
    >>> default_warmup_steps(90, depth=110)
    18
    """
    if total_steps > SHORT_RUN_STEPS:
        return PAPER_WARMUP_STEPS if depth is not None and depth >= PAPER_WARMUP_DEPTH else 0
    return total_steps // 5


def default_image_size(dataset, flat_inputs=False):
    """The digits are 8x8: convolutional models get them at CIFAR's 32x32; `None` keeps the size.

    >>> default_image_size("digits"), default_image_size("digits", flat_inputs=True)
    (32, None)
    """
    return datasets.CIFAR_SIZE if dataset == "digits" and not flat_inputs else None


def with_normalization(model, data):
    """`model` behind a normalization layer with the data's statistics: it takes raw pixels.

    `data` is a `keras_deepblocks.datasets.ImageData`.
    """
    inputs = keras.Input(data.input_shape, name="images")
    outputs = model(data.normalization_layer()(inputs))
    return keras.Model(inputs, outputs, name=model.name)


def distribution_scope(enabled):
    """`(scope, replicas)` for data parallel training on all local devices, if `enabled`."""
    if not enabled:
        return contextlib.nullcontext(), 1
    backend = keras.backend.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext(), len(devices)
    if backend == "tensorflow":
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
        return strategy.scope(), strategy.num_replicas_in_sync
    raise ValueError(
        "data parallel training (`distribute`) needs the jax or tensorflow backend, "
        f"received: {backend!r} (set KERAS_BACKEND)"
    )


def _run_callbacks(log_dir):
    os.makedirs(log_dir, exist_ok=True)
    return [
        keras.callbacks.BackupAndRestore(os.path.join(log_dir, BACKUP_DIR)),
        keras.callbacks.ModelCheckpoint(os.path.join(log_dir, LAST_EPOCH_FILE)),
        keras.callbacks.TensorBoard(os.path.join(log_dir, TENSORBOARD_DIR)),
    ]


def evaluate(
    model,
    dataset="digits",
    *,
    batch_size=256,
    image_size=None,
    normalize=False,
    limit=None,
    data_dir=None,
):
    """Top-1 accuracy of an image classifier on the test split of `dataset`.

    Images are fed as raw pixels in `[0, 255]`, which models from `train` and
    zoo models with their preprocessing normalize themselves, resized to the
    model's input size (the 8x8 digits to 32x32 for a convolutional model
    trained on them).

    Args:
        model: A Keras model of square images.
        dataset: A name of `keras_deepblocks.datasets.DATASETS`.
        batch_size: Examples per batch. Defaults to `256`.
        image_size: Resize images to this size instead of the model's.
        normalize: Normalize the images in the pipeline with the training
            split's statistics (for models that do not normalize themselves).
        limit: Evaluate on the first `limit` test images only.
        data_dir: tensorflow-datasets data directory.

    Returns:
        `(accuracy, number of test images)`.
    """
    validation.one_of(dataset, "dataset", datasets.DATASETS)
    input_shape = tuple(model.input_shape[1:])
    if len(input_shape) != 3:
        raise ValueError(f"expected a model of images, got input shape {input_shape}")
    height, width, channels = input_shape
    if height != width:
        raise ValueError(f"expected a model of square images, got input shape {input_shape}")
    (x_train, _), (x_test, y_test), _ = datasets.load_arrays(
        dataset, image_size=image_size or height, data_dir=data_dir
    )
    if x_test.shape[-1] != channels:
        raise ValueError(
            f"{dataset} images have {x_test.shape[-1]} channels, the model takes {channels}: "
            "evaluate it on the dataset it was trained on"
        )
    if limit is not None:
        limit = validation.positive_int(limit, "limit")
        x_test, y_test = x_test[:limit], y_test[:limit]
    stats = datasets.channel_stats(x_train) if normalize else (None, None)
    test = datasets.pipeline(x_test, y_test, batch_size, *stats)
    predictions = model.predict(test, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == y_test)), len(y_test)


def load_model(path):
    """`keras.saving.load_model(path)`, with an error that says what is wrong with the file.

    Raises:
        FileNotFoundError: There is no file at `path`.
        ValueError: It is a folder, no `.keras` archive, or does not load
            (an `OSError` where reading it failed).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"a model must be a .keras file, not the folder {path!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, "No such model file", path)
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        # Keras would say "File not found" of a file that is there.
        raise ValueError(
            f"cannot load the model {path!r}: not a .keras file (which is a zip "
            "archive); it is damaged or of another kind"
        )
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # whatever the reason, this file does not load
        kind = OSError if isinstance(error, OSError) else ValueError
        raise kind(f"cannot load the model {path!r}: {type(error).__name__}: {error}") from error


def compare(builders, data, *, epochs, batch_size, learning_rate, seed=0, verbose=1):
    """Trains every model of `builders` the same way and measures it: the Highway paper's test.

    Each model starts from the same seed and trains with SGD (momentum 0.9,
    gradients clipped to norm 1 so that one bad early step cannot send a deep
    plain net to NaN) on the same batches.

    Args:
        builders: `{name: function () -> keras.Model}`, models with softmax
            outputs (compiled here).
        data: `((x_train, y_train), (x_test, y_test))` arrays, integer labels.
        epochs, batch_size, learning_rate: The training of every model.
        seed: The seed every model's weights and shuffle start from.
        verbose: Keras's progress mode; with a true value, each model's name
            is printed before it trains.

    Returns:
        `{name: (training loss of each epoch, test accuracy)}`.
    """
    (x_train, y_train), (x_test, y_test) = data
    results = {}
    for name, build in builders.items():
        if verbose:
            print(f"\n{name}")
        keras.utils.set_random_seed(seed)  # every model starts from the same draw
        model = build()
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9, clipnorm=1.0),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose)
        _, accuracy = model.evaluate(x_test, y_test, verbose=0)
        results[name] = (history.history["loss"], float(accuracy))
    return results
