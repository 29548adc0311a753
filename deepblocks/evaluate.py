"""Print the top-1 test accuracy of a saved .keras model or a zoo ResNet with weights.

MODEL is a `.keras` file (e.g. written by `deepblocks train`) or a zoo name
such as resnet56, built with --weights (default: the published "cifar10"
checkpoint, downloaded once; or a local checkpoint path). Images are fed as
raw pixels in [0, 255], which models from `deepblocks train` and zoo models
normalize themselves; --normalize normalizes them in the pipeline instead.
Images are resized to the model's input size when it differs (the 8x8 digits
to 32x32 for the convolutional models `deepblocks train` makes of them).
The measurement is keras_deepblocks.training.evaluate.
"""

import errno
import os

from deepblocks import positive_int

# Datasets of grayscale images: the zoo's published weights take RGB ones.
GRAYSCALE = ("digits", "mnist")


def add_arguments(parser):
    from deepblocks.train import add_data_arguments

    parser.add_argument("model", help="a .keras file, or a zoo ResNet name (resnet20..resnet1202)")
    parser.add_argument(
        "--weights",
        default="cifar10",
        help='zoo models: "cifar10" (published checkpoint) or a checkpoint path (default: cifar10)',
    )
    add_data_arguments(parser, batch_size=256)
    parser.set_defaults(dataset=None)
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="normalize images in the pipeline (models that expect it)",
    )
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="evaluate on the first N test images only"
    )


def is_model_file(model):
    return model.endswith(".keras") or os.path.exists(model)


def check(args):
    """Refuses what these arguments cannot do, before Keras loads: a zoo model on grayscale data,
    the CIFAR-10 weights on CIFAR-100, a missing weights file."""
    if is_model_file(args.model):
        return
    dataset = args.dataset or "cifar10"
    if dataset in GRAYSCALE:
        raise ValueError(
            f"zoo ResNets take CIFAR's 32x32 RGB images; {dataset} has grayscale ones. "
            f"Evaluate a model trained on {dataset} instead: deepblocks train {args.model} "
            f"--dataset {dataset}, then deepblocks evaluate {args.model}.keras "
            f"--dataset {dataset}"
        )
    if dataset == "cifar100" and args.weights == "cifar10":
        raise ValueError(
            "the published weights are CIFAR-10's (10 classes), not CIFAR-100's: "
            "pass --weights with a CIFAR-100 checkpoint"
        )
    if args.weights != "cifar10" and not os.path.isfile(args.weights):
        raise FileNotFoundError(errno.ENOENT, "No such weights file", args.weights)


def run(args):
    from keras_deepblocks import training

    model, dataset = load_model(args)
    accuracy, count = training.evaluate(
        model,
        dataset,
        batch_size=args.batch_size,
        image_size=args.image_size,
        normalize=args.normalize,
        limit=args.limit,
        data_dir=args.data_dir,
    )
    print(f"{model.name} on {dataset} test ({count} images): top-1 accuracy {accuracy:.4f}")
    return 0


def load_model(args):
    """`(model, dataset name)` from a .keras path or a zoo name."""
    from keras_deepblocks import training
    from keras_deepblocks.zoo import registry

    if is_model_file(args.model):
        return training.load_model(args.model), args.dataset or "digits"
    if registry.resnet_depth(args.model) is None:
        raise ValueError(
            f"{args.model!r} is neither a .keras file nor a zoo ResNet name "
            "(resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202)"
        )
    dataset = args.dataset or "cifar10"
    image_size = args.image_size or 32
    model = registry.build_model(
        args.model,
        (image_size, image_size, 3),
        100 if dataset == "cifar100" else 10,
        weights=args.weights,
        include_preprocessing=True,
    )
    return model, dataset
