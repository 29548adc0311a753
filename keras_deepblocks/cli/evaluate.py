"""Print the top-1 test accuracy of a saved .keras model or a zoo ResNet with weights.

MODEL is a `.keras` file (e.g. written by `deepblocks train`) or a zoo name
such as resnet56, built with --weights (default: the published "cifar10"
checkpoint, downloaded once; or a local checkpoint path). Images are fed as
raw pixels in [0, 255], which models from `deepblocks train` and zoo models
normalize themselves; --normalize normalizes them in the pipeline instead.
Images are resized to the model's input size when it differs.
"""

import os


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
        "--limit", type=int, default=None, help="evaluate on the first N test images only"
    )


def run(args):
    import numpy as np

    from keras_deepblocks import datasets

    from keras_deepblocks.cli.train import check_dataset

    if args.dataset is not None:
        check_dataset("evaluate", args.dataset)
    model, dataset = load_model(args)
    input_shape = tuple(model.input_shape[1:])
    if len(input_shape) != 3:
        raise SystemExit(
            f"deepblocks evaluate: expected a model of images, got input shape {input_shape}"
        )
    height, width, channels = input_shape
    if height != width:
        raise SystemExit(f"deepblocks evaluate: expected square input images, got {input_shape}")
    (x_train, _), (x_test, y_test), _ = datasets.load_arrays(
        dataset, image_size=args.image_size or height, data_dir=args.data_dir
    )
    if x_test.shape[-1] != channels:
        raise SystemExit(
            f"deepblocks evaluate: {dataset} images have {x_test.shape[-1]} channels, "
            f"the model takes {channels}"
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
    from keras_deepblocks.cli.train import resnet_depth

    if args.model.endswith(".keras") or os.path.exists(args.model):
        if not os.path.isfile(args.model):
            raise SystemExit(f"deepblocks evaluate: no model file {args.model!r}")
        return keras.saving.load_model(args.model), args.dataset or "digits"
    if resnet_depth(args.model) is None:
        raise SystemExit(
            f"deepblocks evaluate: {args.model!r} is neither a .keras file nor a zoo ResNet name"
        )
    dataset = args.dataset or "cifar10"
    image_size = args.image_size or 32
    channels = 1 if dataset in ("digits", "mnist") else 3
    model = build_model(
        args.model,
        (image_size, image_size, channels),
        100 if dataset == "cifar100" else 10,
        weights=args.weights,
        include_preprocessing=True,
    )
    return model, dataset
