"""Convert a PyTorch ResNet-CIFAR checkpoint into a Keras model or weights file, offline.

Reads a checkpoint of the PyTorch reference implementation
(github.com/akamaster/pytorch_resnet_cifar10, e.g. resnet56-4bfd9763.th)
without torch and without running code from it, infers the depth and number
of classes, and writes OUTPUT by its extension: `.keras` (whole model, with
input preprocessing), `.weights.h5` (Keras weights) or `.weights.npz` (arrays
by variable path). With --cache, a published checkpoint (SHA-256 checked) is
also installed in the Keras cache so that `resnet56(weights="cifar10")` works
on a machine without network access.
"""

import errno
import os

OUTPUT_SUFFIXES = (".keras", ".weights.h5", ".weights.npz")


def add_arguments(parser):
    parser.add_argument("checkpoint", help="PyTorch checkpoint file (.th, .pt, .pth)")
    parser.add_argument(
        "-o",
        "--output",
        help="output file: .keras, .weights.h5 or .weights.npz "
        "(default: the checkpoint's name with .keras)",
    )
    parser.add_argument(
        "--depth", type=int, help="expected depth 6n+2 (default: read from the checkpoint)"
    )
    parser.add_argument(
        "--no-preprocessing",
        action="store_true",
        help="build the model without its x/255 and mean/std normalization layers",
    )
    parser.add_argument(
        "--cache",
        action="store_true",
        help="also install a published checkpoint in the Keras cache for weights='cifar10'",
    )


def check(args):
    """Refuses a missing checkpoint before Keras loads."""
    if os.path.isdir(args.checkpoint):
        raise ValueError(f"CHECKPOINT must be a file, not the folder {args.checkpoint!r}")
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(errno.ENOENT, "No such checkpoint file", args.checkpoint)


def run(args):
    from keras_deepblocks.utils.files import check_output_file
    from keras_deepblocks.zoo import resnet_cifar_weights
    from keras_deepblocks.zoo.converters import resnet_cifar as converter
    from keras_deepblocks.zoo.resnet_cifar import resnet_cifar

    output = args.output or _default_output(args.checkpoint)
    check_output_file(output, "--output", OUTPUT_SUFFIXES)
    weights = resnet_cifar_weights.convert_checkpoint(args.checkpoint)
    depth, num_classes, shortcut = converter.architecture(weights, args.checkpoint)
    if args.depth is not None and args.depth != depth:
        raise ValueError(
            f"{args.checkpoint} holds a ResNet-{depth}, not the ResNet-{args.depth} asked for "
            "with --depth"
        )
    model = resnet_cifar(
        depth,
        num_classes=num_classes,
        shortcut=shortcut,
        include_preprocessing=not args.no_preprocessing,
    )
    converter.assign_weights(model, weights, args.checkpoint)
    _save(model, weights, output)
    parameters = model.count_params()
    print(f"ResNet-{depth} ({num_classes} classes, {parameters:,} parameters) -> {output}")
    if args.cache:
        cached = resnet_cifar_weights.install_in_cache(args.checkpoint, depth)
        print(f"installed in the Keras cache: {cached}")


def _default_output(checkpoint):
    return os.path.splitext(checkpoint)[0] + ".keras"


def _save(model, weights, output):
    """Writes `output` by its extension; an interrupted conversion leaves no partial file."""
    from keras_deepblocks.utils.files import atomic_path
    from keras_deepblocks.zoo import resnet_cifar_weights

    if output.endswith(".weights.npz"):
        resnet_cifar_weights.write_converted(weights, output)  # atomic too
        return
    with atomic_path(output) as path:
        if output.endswith(".keras"):
            model.save(path)
        else:
            model.save_weights(path)
