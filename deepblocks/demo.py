"""Train a plain and a highway MLP of equal depth on scikit-learn's digits and compare them.

Shows the Highway paper's point in a few minutes on a CPU: at 50 or 100
layers, the plain network stays at chance while the highway network trains
as well as a 10-layer one. The highway gates start at -ln(depth)
(keras_deepblocks.initializers.highway_transform_bias). No download: the
data ships with scikit-learn. The training is keras_deepblocks.training.compare.
"""

import os

from deepblocks import finite_float
from deepblocks import nonnegative_int
from deepblocks import positive_float
from deepblocks import positive_int


def add_arguments(parser):
    parser.add_argument(
        "--depth", type=positive_int, default=50, help="hidden layers of each network (default: 50)"
    )
    parser.add_argument(
        "--width", type=positive_int, default=50, help="units per layer (default: 50)"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=15, help="training epochs (default: 15)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="batch size (default: 64)"
    )
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=0.05,
        help="SGD learning rate (default: 0.05)",
    )
    parser.add_argument(
        "--transform-bias",
        type=finite_float,
        default=None,
        help="initial highway gate bias (default: -ln(depth), which keeps the signal at any depth)",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--output",
        default="deepblocks_demo.png",
        help="image file for the loss curves (.png, .pdf, .svg, ...)",
    )
    parser.add_argument(
        "--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress bar mode"
    )


def check(args):
    """Refuses an output that is no image file, before Keras loads."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    formats = sorted(FigureCanvasAgg.get_supported_filetypes())
    extension = os.path.splitext(args.output)[1].lower().lstrip(".")
    if extension not in formats:
        raise ValueError(
            f"--output must end in an image extension ({', '.join('.' + f for f in formats)}), "
            f"received: {args.output!r}"
        )


def run(args):
    from keras_deepblocks import datasets
    from keras_deepblocks import training
    from keras_deepblocks.initializers import highway_transform_bias
    from keras_deepblocks.utils import files
    from keras_deepblocks.zoo.highway_nets import highway_mlp
    from keras_deepblocks.zoo.highway_nets import plain_mlp

    files.check_output_file(args.output, "--output")  # before minutes of training
    data = datasets.load_digits(seed=args.seed)
    shape = data[0][0].shape[1:]
    builders = {
        "plain": lambda: plain_mlp(shape, 10, args.depth, args.width),
        "highway": lambda: highway_mlp(shape, 10, args.depth, args.width, transform_bias=bias),
    }
    bias = args.transform_bias
    if bias is None:
        bias = highway_transform_bias(args.depth)
    print(
        f"plain and highway networks, {args.depth} layers of {args.width} units "
        f"(highway gate bias {bias:.2f})"
    )
    results = training.compare(
        builders,
        data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        verbose=args.verbose,
    )
    print(_table(args.depth, results))
    _plot(results, args)
    print(f"loss curves written to {args.output}")


def _table(depth, results):
    lines = ["", f"{'network':<10}{'depth':>7}{'final train loss':>19}{'test accuracy':>16}"]
    for name, (losses, accuracy) in results.items():
        lines.append(f"{name:<10}{depth:>7}{losses[-1]:>19.4f}{accuracy:>16.4f}")
    return "\n".join(lines)


def _plot(results, args):
    import matplotlib

    from keras_deepblocks.utils.files import atomic_path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (losses, _) in results.items():
        ax.plot(range(1, len(losses) + 1), losses, label=f"{name} ({args.depth} layers)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.set_title(f"Plain vs highway MLP, {args.depth} layers of {args.width} units (digits)")
    ax.legend()
    fig.tight_layout()
    with atomic_path(args.output) as path:
        fig.savefig(path, dpi=100, format=os.path.splitext(args.output)[1].lstrip(".").lower())
    plt.close(fig)
