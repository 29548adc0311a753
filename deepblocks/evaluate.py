"""Print the top-1 test accuracy of a saved .keras model or a zoo ResNet with weights.

MODEL is a `.keras` file (e.g. written by `deepblocks train`) or a zoo name
such as resnet56, built with --weights (default: the published "cifar10"
checkpoint, downloaded once; or a local checkpoint path). Images are fed as
raw pixels in [0, 255], which models from `deepblocks train` and zoo models
normalize themselves; --normalize normalizes them in the pipeline instead.
Images are resized to the model's input size when it differs (the 8x8 digits
to 32x32 for the convolutional models `deepblocks train` makes of them).
"""

import errno
import os
import zipfile

from keras_deepblocks.cli import positive_int

# Datasets of grayscale images: the zoo's published weights take RGB ones.
GRAYSCALE = ("digits", "mnist")


def add_arguments(parser):
    from keras_deepblocks.cli.train import add_data_arguments

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
    """Refuses what cannot work before Keras loads: missing files, unknown names, wrong data."""
    from keras_deepblocks.cli.train import check_dataset
    from keras_deepblocks.cli.train import resnet_depth

    if args.dataset is not None:
        check_dataset("evaluate", args.dataset)
    if is_model_file(args.model):
        if os.path.isdir(args.model):
            raise ValueError(f"MODEL must be a .keras file, not the folder {args.model!r}")
        if not os.path.isfile(args.model):
            raise FileNotFoundError(errno.ENOENT, "No such model file", args.model)
        return
    depth = resnet_depth(args.model)
    if depth is None:
        raise ValueError(
            f"{args.model!r} is neither a .keras file nor a zoo ResNet name "
            "(resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202)"
        )
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"ResNet depth must be 6n+2 (20, 32, 44, 56, 110, 1202), got {depth}")
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
    import numpy as np

    from keras_deepblocks import datasets

    check(args)  # again: run() may be called without main()
    model, dataset = load_model(args)
    input_shape = tuple(model.input_shape[1:])
    if len(input_shape) != 3:
        raise ValueError(f"expected a model of images, got input shape {input_shape}")
    height, width, channels = input_shape
    if height != width:
        raise ValueError(f"expected a model of square images, got input shape {input_shape}")
    (x_train, _), (x_test, y_test), _ = datasets.load_arrays(
        dataset, image_size=args.image_size or height, data_dir=args.data_dir
    )
    if x_test.shape[-1] != channels:
        raise ValueError(
            f"{dataset} images have {x_test.shape[-1]} channels, the model takes {channels}: "
            "evaluate it on the dataset it was trained on (--dataset)"
        )
    if args.limit:
        x_test, y_test = x_test[: args.limit], y_test[: args.limit]
    stats = datasets.channel_stats(x_train) if args.normalize else (None, None)
    test = datasets.pipeline(x_test, y_test, args.batch_size, *stats)
    predictions = model.predict(test, verbose=0)
    accuracy = float(np.mean(np.argmax(predictions, axis=-1) == y_test))
    print(f"{model.name} on {dataset} test ({len(y_test)} images): top-1 accuracy {accuracy:.4f}")
    return 0


def load_model(args):
    """`(model, dataset name)` from a .keras path or a zoo name."""
    import keras

    import keras_deepblocks  # noqa: F401  (registers the layers for loading)
    from keras_deepblocks.cli.train import build_model

    if is_model_file(args.model):
        if args.model.endswith(".keras") and not zipfile.is_zipfile(args.model):
            # Keras would say "File not found" of a file that is there.
            raise ValueError(
                f"cannot load the model {args.model!r}: not a .keras file (which is a zip "
                "archive); it is damaged or of another kind"
            )
        try:
            model = keras.saving.load_model(args.model)
        except Exception as error:  # whatever the reason, this file does not load
            kind = OSError if isinstance(error, OSError) else ValueError
            raise kind(
                f"cannot load the model {args.model!r}: {type(error).__name__}: {error}"
            ) from error
        return model, args.dataset or "digits"
    dataset = args.dataset or "cifar10"
    image_size = args.image_size or 32
    model = build_model(
        args.model,
        (image_size, image_size, 3),
        100 if dataset == "cifar100" else 10,
        weights=args.weights,
        include_preprocessing=True,
    )
    return model, dataset
