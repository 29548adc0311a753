"""Train a plain and a highway MLP of equal depth on scikit-learn's digits and compare them.

Shows the Highway paper's point in a few minutes on a CPU: at 50 layers, the
plain network barely trains while the highway network does. No download: the
data ships with scikit-learn.
"""

import os

from keras_deepblocks.cli import check_output_file
from keras_deepblocks.cli import finite_float
from keras_deepblocks.cli import nonnegative_int
from keras_deepblocks.cli import positive_float
from keras_deepblocks.cli import positive_int


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
        default=-3.0,
        help="initial highway gate bias (default: -3)",
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
    """Refuses an output file that cannot be written, before minutes of training."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    formats = sorted(FigureCanvasAgg.get_supported_filetypes())
    extension = os.path.splitext(args.output)[1].lower().lstrip(".")
    if extension not in formats:
        raise ValueError(
            f"--output must end in an image extension ({', '.join('.' + f for f in formats)}), "
            f"received: {args.output!r}"
        )
    check_output_file(args.output)


def run(args):
    import keras

    from keras_deepblocks.data import load_digits
    from keras_deepblocks.zoo.highway_nets import highway_mlp
    from keras_deepblocks.zoo.highway_nets import plain_mlp

    check(args)  # again: run() may be called without main()
    (x_train, y_train), (x_test, y_test) = load_digits(seed=args.seed)
    builders = {
        "plain": lambda: plain_mlp(x_train.shape[1:], 10, args.depth, args.width),
        "highway": lambda: highway_mlp(
            x_train.shape[1:], 10, args.depth, args.width, transform_bias=args.transform_bias
        ),
    }
    results = {}
    for name, build in builders.items():
        print(f"\n{name} network, {args.depth} layers of {args.width} units")
        keras.utils.set_random_seed(args.seed)  # both start from the same draw
        model = build()
        model.compile(
            # Clipping keeps one bad early step from sending either net to NaN.
            optimizer=keras.optimizers.SGD(args.learning_rate, momentum=0.9, clipnorm=1.0),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        history = model.fit(
            x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=args.verbose
        )
        _, accuracy = model.evaluate(x_test, y_test, verbose=0)
        results[name] = (history.history["loss"], accuracy)

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
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    fig.savefig(args.output, dpi=100)
    plt.close(fig)
