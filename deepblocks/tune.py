"""Search highway depth and gate bias (or ResNet depth and stochastic depth) with KerasTuner.

`deepblocks tune highway` searches a highway MLP's depth, gate bias, width,
activation and learning rate; `deepblocks tune resnet` a CIFAR ResNet's depth,
final survival probability and learning rate. Trials train on the dataset's
training split minus a held-out validation part (--validation-fraction), whose
accuracy is the objective. One line per finished trial shows its
hyperparameters, its score and the best so far (--quiet hides them); the best
trials are printed at the end.

The search lives in --directory/--project-name, with its settings
(deepblocks_settings.json). Running again with the same settings resumes it
(a larger --max-trials extends it); other settings are refused unless
--overwrite replaces the search.
"""

import argparse

from deepblocks import finite_float
from deepblocks import number
from deepblocks import positive_float
from deepblocks import positive_int

OBJECTIVE = "val_accuracy"
# The hypermodels' names, the default project names.
PROJECT_NAMES = {"highway": "highway_mlp", "resnet": "resnet_cifar"}
# The options that define each search space (besides the common ones in _settings).
SPACE_OPTIONS = {
    "highway": ("depth", "depth_step", "transform_bias", "width", "activation", "learning_rate"),
    "resnet": ("depth", "final_survival_probability", "learning_rate"),
}


class _Range(argparse.Action):
    """MIN MAX with MIN <= MAX (equal values fix the hyperparameter)."""

    def __call__(self, parser, namespace, values, option_string=None):
        low, high = values
        if low > high:
            parser.error(
                f"argument {option_string}: MIN must not exceed MAX, received: {low:g} {high:g}"
            )
        setattr(namespace, self.dest, (low, high))


def _nonempty(text):
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def add_arguments(parser):
    from deepblocks.train import add_data_arguments

    common = parser.__class__(add_help=False)
    add_data_arguments(common, batch_size=64)
    common.add_argument("--tuner", default="random", choices=("random", "hyperband", "bayesian"))
    common.add_argument(
        "--max-trials",
        type=positive_int,
        default=10,
        help="trials of random/bayesian search; a larger value extends a search (default: 10)",
    )
    common.add_argument(
        "--epochs",
        type=positive_int,
        default=10,
        help="epochs per trial (Hyperband: the most per trial) (default: 10)",
    )
    common.add_argument(
        "--steps-per-epoch",
        type=positive_int,
        default=None,
        help="limit each epoch to this many batches",
    )
    common.add_argument(
        "--validation-fraction",
        type=number(above=0, below=1),
        default=0.2,
        help="held-out part of the training split, in (0, 1) (default: 0.2)",
    )
    common.add_argument(
        "--directory", default="tuning", help="where KerasTuner keeps its trials (default: tuning)"
    )
    common.add_argument(
        "--project-name",
        type=_nonempty,
        default=None,
        help="search name (default: the hypermodel's)",
    )
    common.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the search in --directory/--project-name and start a new one",
    )
    common.add_argument(
        "--top", type=positive_int, default=5, help="best trials to print (default: 5)"
    )
    common.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    common.add_argument(
        "--quiet", action="store_true", help="no line per trial: print only the best trials"
    )
    common.add_argument(
        "--verbose",
        type=int,
        default=0,
        choices=(0, 1, 2),
        help="KerasTuner's report and Keras progress bars (default: 0, off)",
    )

    kinds = parser.add_subparsers(dest="hypermodel", required=True, metavar="HYPERMODEL")
    highway = kinds.add_parser(
        "highway", parents=[common], help="highway MLP: depth, gate bias, width, ..."
    )
    highway.add_argument(
        "--depth",
        type=positive_int,
        nargs=2,
        default=(2, 30),
        action=_Range,
        metavar=("MIN", "MAX"),
    )
    highway.add_argument(
        "--depth-step",
        type=positive_int,
        default=4,
        help="step of the depth range (default: 4)",
    )
    highway.add_argument(
        "--transform-bias",
        type=finite_float,
        nargs=2,
        default=(-4.0, 0.0),
        action=_Range,
        metavar=("MIN", "MAX"),
    )
    highway.add_argument(
        "--width",
        type=positive_int,
        nargs="+",
        default=[50],
        help="one width, or several to choose from",
    )
    highway.add_argument(
        "--activation", nargs="+", default=["relu"], help="one activation, or several"
    )
    highway.add_argument(
        "--learning-rate",
        type=positive_float,
        nargs=2,
        default=(1e-3, 1e-1),
        action=_Range,
        metavar=("MIN", "MAX"),
    )

    resnet = kinds.add_parser(
        "resnet", parents=[common], help="CIFAR ResNet: depth, survival probability, lr"
    )
    resnet.add_argument(
        "--depth",
        type=positive_int,
        nargs="+",
        default=[20, 32, 44, 56, 110],
        help="depths 6n+2",
    )
    resnet.add_argument(
        "--final-survival-probability",
        type=number(above=0, maximum=1),
        nargs=2,
        default=(0.5, 1.0),
        action=_Range,
        metavar=("MIN", "MAX"),
    )
    resnet.add_argument(
        "--learning-rate",
        type=positive_float,
        nargs=2,
        default=(0.01, 0.3),
        action=_Range,
        metavar=("MIN", "MAX"),
    )


def run(args):
    import functools

    import keras

    from keras_deepblocks import datasets
    from keras_deepblocks import tuning
    from keras_deepblocks.zoo import registry

    # Argument checks that need Keras, before the data loads.
    _check_activations(args)
    if args.hypermodel == "resnet":
        for depth in args.depth:
            registry.resnet_units_per_stage(depth, "--depth")
    # Before the data: its random crops and flips take their seeds from it.
    keras.utils.set_random_seed(args.seed)
    data = datasets.load(
        args.dataset,
        batch_size=args.batch_size,
        image_size=_image_size(args),
        augment=args.hypermodel == "resnet",
        validation_fraction=args.validation_fraction,
        data_dir=args.data_dir,
        seed=args.seed,
    )
    trials = tuning.run_search(
        _hypermodel(args, data),
        data.train.repeat() if args.steps_per_epoch else data.train,
        validation_data=data.validation,
        tuner=args.tuner,
        max_trials=args.max_trials,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        objective=OBJECTIVE,
        directory=args.directory,
        project_name=args.project_name or PROJECT_NAMES[args.hypermodel],
        overwrite=args.overwrite,
        seed=args.seed,
        settings=_settings(args),
        top=args.top,
        progress=None if args.quiet else functools.partial(print, flush=True),
        verbose=args.verbose,
        overwrite_option="--overwrite",
    )
    print(
        f"\nbest {len(trials)} trials of {args.hypermodel} ({args.tuner} search, {args.dataset}):"
    )
    print(tuning.format_trials(trials, objective=OBJECTIVE))
    return 0


def _image_size(args):
    from keras_deepblocks.training import default_image_size

    return args.image_size or default_image_size(args.dataset, args.hypermodel == "highway")


def _check_activations(args):
    import keras

    for name in getattr(args, "activation", ()):
        try:
            keras.activations.get(name)
        except ValueError:
            raise ValueError(
                "`--activation` must name Keras activations (e.g. relu, tanh, gelu), "
                f"received: {name!r}"
            ) from None


def _settings(args):
    """Everything that defines the search: a run with other settings is another search.

    Not here: --max-trials (a budget: more trials extend the search), and
    what only changes the output or where data lies.
    """
    settings = {
        "hypermodel": args.hypermodel,
        "--tuner": args.tuner,
        "objective": OBJECTIVE,
        "--dataset": args.dataset,
        "--image-size": _image_size(args),
        "--validation-fraction": args.validation_fraction,
        "--batch-size": args.batch_size,
        "--epochs": args.epochs,
        "--steps-per-epoch": args.steps_per_epoch,
        "--seed": args.seed,
    }
    for name in SPACE_OPTIONS[args.hypermodel]:
        settings["--" + name.replace("_", "-")] = getattr(args, name)
    return settings


def _range_or_value(values):
    return values[0] if len(values) == 1 else list(values)


def _low_high_or_value(values):
    return values[0] if values[0] == values[1] else tuple(values)


def _hypermodel(args, data):
    from keras_deepblocks import tuning

    if args.hypermodel == "highway":
        return tuning.HighwayHyperModel(
            data.input_shape,
            data.num_classes,
            depth=_low_high_or_value(args.depth),
            depth_step=args.depth_step,
            width=_range_or_value(args.width),
            transform_bias=_low_high_or_value(args.transform_bias),
            activation=_range_or_value(args.activation),
            learning_rate=_low_high_or_value(args.learning_rate),
        )
    steps = args.steps_per_epoch or -(-data.train_examples // args.batch_size)
    return tuning.ResNetCifarHyperModel(
        data.input_shape,
        data.num_classes,
        depth=_range_or_value(args.depth),
        final_survival_probability=_low_high_or_value(args.final_survival_probability),
        learning_rate=_low_high_or_value(args.learning_rate),
        total_steps=args.epochs * steps,
    )
