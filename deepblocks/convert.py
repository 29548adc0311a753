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
import shutil

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
    from keras_deepblocks.training import check_output_file
    from keras_deepblocks.zoo import resnet_cifar_weights as registry
    from keras_deepblocks.zoo.resnet_cifar import resnet_cifar

    output = args.output or _default_output(args.checkpoint)
    check_output_file(output, "--output", OUTPUT_SUFFIXES)
    weights = registry.convert_checkpoint(args.checkpoint)
    depth, num_classes, shortcut = _architecture(weights, args.checkpoint)
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
    registry.converter.assign_weights(model, weights, args.checkpoint)
    _save(model, weights, output)
    parameters = model.count_params()
    print(f"ResNet-{depth} ({num_classes} classes, {parameters:,} parameters) -> {output}")
    if args.cache:
        print(f"installed in the Keras cache: {_install_in_cache(args.checkpoint, depth, weights)}")


def _default_output(checkpoint):
    return os.path.splitext(checkpoint)[0] + ".keras"


def _architecture(weights, checkpoint):
    units = {path.split("/", 1)[0] for path in weights if path.startswith("layer1_")}
    if "linear/bias" not in weights or not units:
        raise ValueError(f"{checkpoint} holds no CIFAR ResNet (no linear/bias or layer1 units)")
    shortcut = "B" if any("/projection/" in path for path in weights) else "A"
    return 6 * len(units) + 2, int(weights["linear/bias"].shape[0]), shortcut


def _save(model, weights, output):
    from keras_deepblocks.utils.files import atomic_path
    from keras_deepblocks.zoo import resnet_cifar_weights as registry

    if output.endswith(".weights.npz"):
        registry.write_converted(weights, output)
        return
    # An interrupted conversion leaves no partial file.
    with atomic_path(output) as path:
        if output.endswith(".keras"):
            model.save(path)
        else:
            model.save_weights(path)


def _install_in_cache(checkpoint, depth, weights):
    from keras_deepblocks.utils import download
    from keras_deepblocks.utils.files import atomic_path
    from keras_deepblocks.zoo import resnet_cifar_weights as registry

    entry = registry.CHECKPOINTS.get(depth)
    if entry is None:
        raise ValueError(f"--cache: there is no published ResNet-{depth} to cache")
    expected = registry.expected_sha256(entry)
    if not download.file_matches(checkpoint, expected):
        raise ValueError(
            f"--cache: {checkpoint} is not the published {entry.filename} "
            f"(SHA-256 {download.file_sha256(checkpoint)}); not cached"
        )
    target = os.path.join(registry.cache_directory(), "models", entry.filename)
    with atomic_path(target) as path:
        shutil.copyfile(checkpoint, path)
    registry.write_converted(weights, registry.converted_path(target))
    return target
