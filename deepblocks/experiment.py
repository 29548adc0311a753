"""Run one of the experiments that show why depth works; write its figure and its numbers.

  depth      plain vs highway MLPs at 10-100 layers (and a 900-layer highway
             net) with one SGD setting: the Highway paper's Figure 1; and a
             1000-layer highway MLP's build time and gradient at initialization
  init       a 100-block residual MLP without batch normalization under He vs
             depth-scaled initialization (and with BN): gradient variance per
             block and training loss
  gradients  gradient flow, signal RMS and highway gate activity per layer of a
             plain and a highway MLP over training
  lesion     the published ResNet-56 with one block deleted at a time, and with
             blocks shuffled (Veit et al. 2016)

Writes OUTPUT_DIR/NAME.png and OUTPUT_DIR/NAME.json and prints a table. Offline by
default (the built-in digits; lesion reads CIFAR-10 through tensorflow-datasets
or --images); --small runs the size the tutorial and CI run. The experiments
are keras_deepblocks.experiments.NAME.
"""

import os

from deepblocks import nonnegative_int

EXPERIMENTS = ("depth", "init", "gradients", "lesion")


def add_arguments(parser):
    parser.add_argument("name", choices=EXPERIMENTS, metavar="NAME", help=", ".join(EXPERIMENTS))
    parser.add_argument(
        "--output-dir",
        default="deepblocks_experiments",
        help="folder for NAME.png and NAME.json (default: deepblocks_experiments)",
    )
    parser.add_argument(
        "--small", action="store_true", help="the small size that CI and the tutorial run"
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="digits (default: offline) or a tensorflow-datasets name (cifar10, ...); "
        "lesion: cifar10 (default)",
    )
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    parser.add_argument(
        "--weights",
        default=None,
        help="lesion: a ResNet-56 checkpoint path (default: the published one, downloaded once)",
    )
    parser.add_argument(
        "--images",
        default=None,
        help="lesion: a .npz file of CIFAR-10 images and labels to use instead of --dataset",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--verbose", type=int, default=0, choices=(0, 1, 2), help="Keras progress bar mode"
    )


def check(args):
    """Refuses what no experiment can use, before Keras loads."""
    lesion_only = [flag for flag in ("weights", "images") if getattr(args, flag) is not None]
    if lesion_only and args.name != "lesion":
        raise ValueError(f"--{lesion_only[0]} is an option of the lesion experiment only")
    if args.images is not None and not os.path.isfile(args.images):
        raise FileNotFoundError(2, "No such file", args.images)


def run(args):
    import importlib
    import json

    from keras_deepblocks.utils import files
    from keras_deepblocks.utils.files import atomic_path

    experiment = importlib.import_module(f"keras_deepblocks.experiments.{args.name}")
    figure = os.path.join(args.output_dir, f"{args.name}.png")
    numbers = os.path.join(args.output_dir, f"{args.name}.json")
    for path in (figure, numbers):
        files.check_output_file(path, "--output-dir")  # before minutes of work
    options = {"data_dir": args.data_dir, "weights": args.weights, "images": args.images}
    options = {name: value for name, value in options.items() if value is not None}
    if args.dataset is not None:
        options["dataset"] = args.dataset
    print(f"experiment {args.name}{' (small)' if args.small else ''}")
    results = experiment.run(small=args.small, seed=args.seed, verbose=args.verbose, **options)
    print(experiment.summary(results))
    experiment.plot(results, figure)
    with atomic_path(numbers) as path, open(path, "w", encoding="utf-8") as file:
        json.dump(results, file, indent=1)
    print(f"figure written to {figure}, numbers to {numbers}")
