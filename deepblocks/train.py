"""Train a zoo model (resnet20..resnet1202, highway or plain nets) with the ResNet paper's CIFAR recipe.

Defaults follow He et al. (2015) on CIFAR: SGD with momentum 0.9, weight decay
1e-4, batch 128, learning rate 0.1 divided by 10 at 50 % and 75 % of training,
4-pixel padding with random crops and (CIFAR) horizontal flips, per-channel
normalization (inside the saved model, which therefore takes raw pixels).
The default data is scikit-learn's digits (offline; resized to 32x32 for
convolutional models); --dataset picks a tensorflow-datasets one. The digits
have only 1438 training images: there the defaults are batch 16 and rate 0.05,
so that one epoch already learns. Runs of at most 1600 steps spend their
first fifth at a tenth of the rate. After training, the BatchNormalization
statistics of the saved model are averaged over the training data with the
final weights (the moving averages lag behind in short runs).

Writes the trained model to --output, and under --log-dir: TensorBoard logs
(tensorboard/), the model after the last finished epoch (last_epoch.keras)
and a backup that lets an interrupted run resume where it stopped when run
again with the same arguments (backup/). The run is
keras_deepblocks.training.train, the model keras_deepblocks.zoo.registry's.
"""

import os

from deepblocks import finite_float
from deepblocks import nonnegative_float
from deepblocks import nonnegative_int
from deepblocks import number
from deepblocks import positive_float
from deepblocks import positive_int

# Shown in --help only: keras_deepblocks.zoo.registry.model_names() and
# keras_deepblocks.datasets.DATASETS are the lists (importing them loads Keras),
# and tests/cli/test_errors.py checks that the help names all of them.
MODEL_HELP = (
    "resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202 (any resnet{6n+2}), "
    "highway_mlp, plain_mlp, highway_conv_net, plain_conv_net"
)
DATASET_HELP = (
    "digits (offline, default), or from tensorflow-datasets: cifar10, cifar100, svhn_cropped, mnist"
)
# Options of the model builders: --flag -> builder argument.
MODEL_OPTIONS = (
    "depth",
    "width",
    "transform_bias",
    "final_survival_probability",
    "gradient_checkpointing",
)


def add_arguments(parser):
    parser.add_argument("model", help=MODEL_HELP)
    add_data_arguments(
        parser,
        batch_size=None,
        batch_size_help="batch size (default: 128; 16 on digits)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=164,
        help="training epochs (default: 164, the paper's 64k steps on CIFAR)",
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
        help="initial learning rate (default: 0.1; 0.05 on digits)",
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
        help="steps at a tenth of the learning rate first (default: 400 for ResNets of "
        "110+ layers, as in the paper, else 0; runs of at most 1600 steps: their first fifth)",
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
        help="TensorBoard logs, last_epoch.keras, backup (default: runs/MODEL)",
    )
    parser.add_argument(
        "--distribute",
        action="store_true",
        help="data parallel training on all local devices "
        "(JAX: keras.distribution; TensorFlow: MirroredStrategy)",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress bar mode"
    )


def add_data_arguments(parser, batch_size=128, batch_size_help=None):
    parser.add_argument(
        "--dataset",
        default="digits",
        metavar="DATASET",
        help=DATASET_HELP,
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


def run(args):
    import functools

    from keras_deepblocks import training
    from keras_deepblocks.utils import files
    from keras_deepblocks.zoo import registry

    options = model_options(args, registry)
    output = args.output or f"{args.model}.keras"
    log_dir = args.log_dir or os.path.join("runs", args.model)
    # Checked here to name the options; train() checks its arguments again.
    files.check_output_file(output, "--output", suffixes=(".keras",))
    files.check_output_directory(log_dir, "--log-dir")
    result = training.train(
        functools.partial(registry.build_model, args.model, **options),
        args.dataset,
        output=output,
        log_dir=log_dir,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        depth=registry.resnet_depth(args.model),
        # MLPs flatten their input: no crops, and the digits stay 8x8.
        flat_inputs=args.model.endswith("_mlp"),
        augment=args.augment,
        image_size=args.image_size,
        data_dir=args.data_dir,
        distribute=args.distribute,
        seed=args.seed,
        verbose=args.verbose,
    )
    print(f"test top-1 accuracy {result.accuracy:.4f}; model saved to {result.output}")
    return 0


def model_options(args, registry):
    """The builder arguments of the model options given, refusing those the model lacks.

    ResNets are built without their input preprocessing (the training run
    puts a normalization layer in front), with probabilities as outputs.
    """
    import inspect

    builder = registry.get_builder(args.model)  # refuses unknown names and depths
    given = [name for name in MODEL_OPTIONS if getattr(args, name) not in (None, False)]
    if registry.resnet_depth(args.model) is not None:
        accepted = ("final_survival_probability", "gradient_checkpointing")
        defaults = {"include_preprocessing": False, "classifier_activation": "softmax"}
    else:
        accepted = inspect.signature(builder).parameters
        defaults = {}
    refused = ["--" + name.replace("_", "-") for name in given if name not in accepted]
    if refused:
        raise ValueError(f"{', '.join(refused)}: not an option of {args.model}")
    return {**defaults, **{name: getattr(args, name) for name in given}}
