"""Train a zoo model (resnet20..resnet1202, highway or plain nets) with the ResNet paper's CIFAR recipe.

Defaults follow He et al. (2015) on CIFAR: SGD with momentum 0.9, weight decay
1e-4, batch 128, learning rate 0.1 divided by 10 at 50 % and 75 % of training,
4-pixel padding with random crops and (CIFAR) horizontal flips, per-channel
normalization (inside the saved model, which therefore takes raw pixels).
The default data is scikit-learn's digits (offline; resized to 32x32 for
convolutional models); --dataset picks a tensorflow-datasets one. The digits
have only 1437 training images: there the defaults are batch 16 and rate 0.05,
so that one epoch already learns. Runs shorter than 1600 steps spend their
first fifth at a tenth of the rate. After training, the BatchNormalization
statistics of the saved model are averaged over the training data with the
final weights (the moving averages lag behind in short runs).

Writes the trained model to --output, and under --log-dir: TensorBoard logs
(tensorboard/), a checkpoint of the model after every epoch (checkpoint.keras)
and a backup that lets an interrupted run resume where it stopped when run
again with the same arguments (backup/).
"""

import contextlib
import os
import re

from keras_deepblocks.cli import check_output_directory
from keras_deepblocks.cli import check_output_file
from keras_deepblocks.cli import finite_float
from keras_deepblocks.cli import nonnegative_float
from keras_deepblocks.cli import nonnegative_int
from keras_deepblocks.cli import number
from keras_deepblocks.cli import positive_float
from keras_deepblocks.cli import positive_int

HIGHWAY_MODELS = ("highway_mlp", "plain_mlp", "highway_conv_net", "plain_conv_net")
MODEL_HELP = (
    "resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202 (any resnet{6n+2}), "
    + ", ".join(HIGHWAY_MODELS)
)
# keras_deepblocks.datasets.DATASETS, which cannot be imported here: it loads Keras.
DATASETS = ("digits", "cifar10", "cifar100", "svhn_cropped", "mnist")
# The paper: 64k iterations at batch 128, about 164 epochs of CIFAR's 50k images.
PAPER_EPOCHS = 164
PAPER_WARMUP_STEPS = 400
# The recipe is for CIFAR's 50,000 images. The offline digits have 1437, which
# batch 128 cuts into 12 steps an epoch, too few to leave the first chaotic
# steps at rate 0.1 behind: on digits, batch 16 and rate 0.05 by default.
DIGITS_BATCH_SIZE = 16
DIGITS_LEARNING_RATE = 0.05
# Runs shorter than this many steps warm up for their first fifth.
SHORT_RUN_STEPS = 4 * PAPER_WARMUP_STEPS
# Batches of 128 over which the saved model's BN statistics are averaged after training.
BN_STATISTICS_BATCHES = 100


def add_arguments(parser):
    parser.add_argument("model", help=MODEL_HELP)
    add_data_arguments(
        parser,
        batch_size=None,
        batch_size_help=f"batch size (default: 128; {DIGITS_BATCH_SIZE} on digits)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=PAPER_EPOCHS,
        help=f"training epochs (default: {PAPER_EPOCHS})",
    )
    parser.add_argument(
        "--steps-per-epoch",
        type=positive_int,
        default=None,
        help="limit each epoch to this many batches (smoke runs)",
    )
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=None,
        help=f"initial learning rate (default: 0.1; {DIGITS_LEARNING_RATE} on digits)",
    )
    parser.add_argument(
        "--momentum",
        type=number(minimum=0, below=1),
        default=0.9,
        help="SGD momentum (default: 0.9)",
    )
    parser.add_argument(
        "--weight-decay",
        type=nonnegative_float,
        default=1e-4,
        help="L2 weight decay (default: 1e-4)",
    )
    parser.add_argument(
        "--warmup-steps",
        type=nonnegative_int,
        default=None,
        help="steps at a tenth of the learning rate first "
        "(default: 400 for ResNets of 110+ layers, as in the paper; else 0)",
    )
    parser.add_argument(
        "--no-augment", dest="augment", action="store_false", help="no random crops or flips"
    )
    parser.add_argument(
        "--final-survival-probability",
        type=number(above=0, maximum=1),
        default=None,
        help="ResNets: stochastic depth with linear decay to this p_L (e.g. 0.5); off by default",
    )
    parser.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="ResNets: recompute activations to save memory",
    )
    parser.add_argument(
        "--depth", type=positive_int, default=None, help="highway/plain nets: number of layers"
    )
    parser.add_argument(
        "--width", type=positive_int, default=None, help="highway/plain MLPs: units per layer"
    )
    parser.add_argument(
        "--transform-bias", type=finite_float, default=None, help="highway nets: initial gate bias"
    )
    parser.add_argument(
        "--output", default=None, help="where to save the trained model (default: MODEL.keras)"
    )
    parser.add_argument(
        "--log-dir",
        default=None,
        help="TensorBoard logs, checkpoints, backup (default: runs/MODEL)",
    )
    parser.add_argument(
        "--distribute",
        action="store_true",
        help="data parallel training on all local devices (JAX: keras.distribution; TensorFlow: MirroredStrategy)",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress bar mode"
    )


def add_data_arguments(parser, batch_size=128, batch_size_help=None):
    parser.add_argument(
        "--dataset",
        default="digits",
        choices=DATASETS,
        metavar="DATASET",
        help="digits (offline, default), or from tensorflow-datasets: " + ", ".join(DATASETS[1:]),
    )
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    parser.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="resize images to this size (default: 32 for digits in conv nets)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=batch_size,
        help=batch_size_help or f"batch size (default: {batch_size})",
    )


def run(args, callbacks=()):
    """Trains as `args` says; `callbacks` are added after the built-in ones (tests use this)."""
    import keras

    from keras_deepblocks import datasets
    from keras_deepblocks.training import compile_recipe
    from keras_deepblocks.training import recompute_batch_norm_statistics

    check(args)  # again: run() may be called without main()
    apply_dataset_defaults(args)
    keras.utils.set_random_seed(args.seed)
    scope, replicas = distribution_scope(args.distribute)
    data = datasets.load(
        args.dataset,
        batch_size=args.batch_size,
        image_size=args.image_size or default_image_size(args.model, args.dataset),
        augment=args.augment and not is_mlp(args.model),
        normalize=False,
        data_dir=args.data_dir,
        drop_remainder=replicas > 1,
        seed=args.seed,
    )
    steps_per_epoch = _steps_per_epoch(data.train_examples, args, replicas)
    log_dir = log_directory(args)
    output = output_path(args)
    with scope:
        model = with_normalization(
            build_model(args.model, data.input_shape, data.num_classes, args), data
        )
        total_steps = args.epochs * steps_per_epoch
        compile_recipe(
            model,
            total_steps=total_steps,
            learning_rate=args.learning_rate,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            warmup_steps=_warmup_steps(args, total_steps),
        )
    print(
        f"{model.name}: {model.count_params():,} parameters, {args.dataset} "
        f"{data.input_shape}, {args.epochs} epochs of {steps_per_epoch} steps"
        + (f", {replicas} replicas" if replicas > 1 else "")
    )
    history = model.fit(
        data.train.repeat() if args.steps_per_epoch else data.train,
        epochs=args.epochs,
        steps_per_epoch=steps_per_epoch if args.steps_per_epoch else None,
        validation_data=data.test,
        callbacks=[*training_callbacks(log_dir), *callbacks],
        shuffle=False,  # the pipeline shuffles; fit cannot shuffle a tf.data.Dataset
        verbose=args.verbose,
    )
    # Moving BN statistics lag behind the weights in short runs: average the
    # final weights' batch statistics instead, then measure what is saved.
    # Batches of 128 (augmented as in training): few calls, and plenty of images per average.
    statistics_data = data.train.unbatch().batch(128)
    if recompute_batch_norm_statistics(model, statistics_data, max_batches=BN_STATISTICS_BATCHES):
        _, accuracy = model.evaluate(data.test, verbose=0)
    else:
        accuracy = history.history["val_accuracy"][-1] if history.history else float("nan")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    model.save(output)
    print(f"test top-1 accuracy {accuracy:.4f}; model saved to {output}")
    return 0


def _steps_per_epoch(examples, args, replicas):
    # Data parallel training drops the last, smaller batch.
    steps = examples // args.batch_size if replicas > 1 else -(-examples // args.batch_size)
    return min(steps, args.steps_per_epoch) if args.steps_per_epoch else steps


def apply_dataset_defaults(args):
    """Fills in the batch size and learning rate left out: the paper's, or the digits' own."""
    digits = args.dataset == "digits"
    if args.batch_size is None:
        args.batch_size = DIGITS_BATCH_SIZE if digits else 128
    if args.learning_rate is None:
        args.learning_rate = DIGITS_LEARNING_RATE if digits else 0.1
    return args


def _warmup_steps(args, total_steps):
    if args.warmup_steps is not None:
        return args.warmup_steps
    if total_steps > SHORT_RUN_STEPS:
        # The paper warms ResNet-110 and -1202 up for about 400 iterations.
        depth = resnet_depth(args.model)
        return PAPER_WARMUP_STEPS if depth and depth >= 110 else 0
    # A short run (a smoke run, a first look) spends a fifth of its steps at a
    # tenth of the rate: from a fresh initialization, the full rate makes
    # the first few dozen steps chaotic, and a short run has little else.
    return total_steps // 5


def training_callbacks(log_dir):
    import importlib.util

    import keras

    os.makedirs(log_dir, exist_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(log_dir, "backup")),
        keras.callbacks.ModelCheckpoint(os.path.join(log_dir, "checkpoint.keras")),
    ]
    # Keras writes TensorBoard summaries through the tensorboard package,
    # which TensorFlow no longer installs.
    if importlib.util.find_spec("tensorboard") is not None:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(log_dir, "tensorboard")))
    else:
        print("TensorBoard logs skipped: pip install tensorboard to get them")
    return callbacks


def build_model(name, input_shape, num_classes, args=None, **resnet_kwargs):
    """A zoo model by name, with probabilities as outputs.

    `args` may carry `depth`, `width`, `transform_bias` (highway and plain
    nets), `final_survival_probability` and `gradient_checkpointing` (ResNets).
    ResNets are built without their input preprocessing; `resnet_kwargs` go to
    `resnet_cifar` (e.g. `weights`, `include_preprocessing=True`).
    """
    depth = resnet_depth(name)
    options = vars(args) if args is not None else {}
    if depth is not None:
        from keras_deepblocks.zoo.resnet_cifar import resnet_cifar

        resnet_kwargs.setdefault("include_preprocessing", False)
        return resnet_cifar(
            depth,
            num_classes=num_classes,
            input_shape=tuple(input_shape),
            final_survival_probability=options.get("final_survival_probability"),
            gradient_checkpointing=bool(options.get("gradient_checkpointing")),
            classifier_activation="softmax",
            **resnet_kwargs,
        )
    from keras_deepblocks.zoo import highway_nets

    builder = getattr(highway_nets, name)
    kwargs = {
        k: options[k] for k in ("depth", "width", "transform_bias") if options.get(k) is not None
    }
    if name.startswith("plain"):
        kwargs.pop("transform_bias", None)
    if name.endswith("conv_net"):
        kwargs.pop("width", None)
    return builder(tuple(input_shape), num_classes, **kwargs)


def with_normalization(model, data):
    """`model` behind a normalization layer with the data's statistics: it takes raw pixels."""
    import keras

    inputs = keras.Input(data.input_shape, name="images")
    outputs = model(data.normalization_layer()(inputs))
    return keras.Model(inputs, outputs, name=model.name)


def distribution_scope(enabled):
    """`(scope, replicas)` for data parallel training on all local devices."""
    import keras

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
        f"--distribute needs the jax or tensorflow backend, not {backend!r} (set KERAS_BACKEND)"
    )


def resnet_depth(name):
    """`n` of a `resnet{n}` name, else `None`."""
    match = re.fullmatch(r"resnet(\d+)", name)
    return int(match.group(1)) if match else None


def is_mlp(name):
    return name.endswith("_mlp")


def default_image_size(name, dataset):
    """Digits are 8x8: convolutional models get them at CIFAR's 32x32."""
    return 32 if dataset == "digits" and not is_mlp(name) else None


def check_dataset(command, dataset):
    """Refuses an unknown dataset name (`command` is kept for callers that pass it)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")


def check(args):
    """Refuses bad arguments and unwritable outputs before any data or model loads."""
    check_dataset("train", args.dataset)
    depth = resnet_depth(args.model)
    if depth is None and args.model not in HIGHWAY_MODELS:
        raise ValueError(f"unknown model {args.model!r}; choose from {MODEL_HELP}")
    if depth is not None and (depth < 8 or (depth - 2) % 6):
        raise ValueError(f"ResNet depth must be 6n+2 (20, 32, 44, 56, 110, 1202), got {depth}")
    if depth is not None and any(
        getattr(args, n) is not None for n in ("depth", "width", "transform_bias")
    ):
        raise ValueError("--depth/--width/--transform-bias are for highway and plain nets")
    if depth is None and (
        args.final_survival_probability is not None or args.gradient_checkpointing
    ):
        raise ValueError("--final-survival-probability/--gradient-checkpointing are for ResNets")
    check_output_file(output_path(args), suffixes=(".keras",), option="--output")
    check_output_directory(log_directory(args), option="--log-dir")


def output_path(args):
    return args.output or f"{args.model}.keras"


def log_directory(args):
    return args.log_dir or os.path.join("runs", args.model)
