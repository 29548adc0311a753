"""Search highway depth and gate bias (or ResNet depth and stochastic depth) with KerasTuner.

`deepblocks tune highway` searches a highway MLP's depth, gate bias, width,
activation and learning rate; `deepblocks tune resnet` a CIFAR ResNet's depth,
final survival probability and learning rate. Trials train on the dataset's
training split minus a held-out validation part (--validation-fraction), whose
accuracy is the objective; the best trials are printed at the end. Re-running
with the same --directory and --project-name continues a search.
"""


def add_arguments(parser):
    from keras_deepblocks.cli.train import add_data_arguments

    common = parser.__class__(add_help=False)
    add_data_arguments(common, batch_size=64)
    common.add_argument("--tuner", default="random", choices=("random", "hyperband", "bayesian"))
    common.add_argument(
        "--max-trials", type=int, default=10, help="trials of random/bayesian search (default: 10)"
    )
    common.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="epochs per trial (Hyperband: the most per trial) (default: 10)",
    )
    common.add_argument(
        "--steps-per-epoch", type=int, default=None, help="limit each epoch to this many batches"
    )
    common.add_argument(
        "--validation-fraction",
        type=float,
        default=0.2,
        help="held-out part of the training split (default: 0.2)",
    )
    common.add_argument(
        "--directory", default="tuning", help="where KerasTuner keeps its trials (default: tuning)"
    )
    common.add_argument(
        "--project-name", default=None, help="search name (default: the hypermodel's)"
    )
    common.add_argument(
        "--overwrite", action="store_true", help="start over instead of continuing a search"
    )
    common.add_argument("--top", type=int, default=5, help="best trials to print (default: 5)")
    common.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    common.add_argument(
        "--verbose", type=int, default=0, choices=(0, 1, 2), help="KerasTuner/Keras verbosity"
    )

    kinds = parser.add_subparsers(dest="hypermodel", required=True, metavar="HYPERMODEL")
    highway = kinds.add_parser(
        "highway", parents=[common], help="highway MLP: depth, gate bias, width, ..."
    )
    highway.add_argument("--depth", type=int, nargs=2, default=(2, 30), metavar=("MIN", "MAX"))
    highway.add_argument(
        "--depth-step", type=int, default=4, help="step of the depth range (default: 4)"
    )
    highway.add_argument(
        "--transform-bias", type=float, nargs=2, default=(-4.0, 0.0), metavar=("MIN", "MAX")
    )
    highway.add_argument(
        "--width", type=int, nargs="+", default=[50], help="one width, or several to choose from"
    )
    highway.add_argument(
        "--activation", nargs="+", default=["relu"], help="one activation, or several"
    )
    highway.add_argument(
        "--learning-rate", type=float, nargs=2, default=(1e-3, 1e-1), metavar=("MIN", "MAX")
    )

    resnet = kinds.add_parser(
        "resnet", parents=[common], help="CIFAR ResNet: depth, survival probability, lr"
    )
    resnet.add_argument(
        "--depth", type=int, nargs="+", default=[20, 32, 44, 56, 110], help="depths 6n+2"
    )
    resnet.add_argument(
        "--final-survival-probability",
        type=float,
        nargs=2,
        default=(0.5, 1.0),
        metavar=("MIN", "MAX"),
    )
    resnet.add_argument(
        "--learning-rate", type=float, nargs=2, default=(0.01, 0.3), metavar=("MIN", "MAX")
    )


def run(args):
    import keras

    from keras_deepblocks import datasets
    from keras_deepblocks import tuning
    from keras_deepblocks.cli.train import check_dataset
    from keras_deepblocks.cli.train import default_image_size

    check_dataset("tune", args.dataset)
    for name in ("max_trials", "epochs", "batch_size", "steps_per_epoch", "top"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(
                f"deepblocks tune: --{name.replace('_', '-')} must be >= 1, got {value}"
            )
    keras.utils.set_random_seed(args.seed)
    conv = args.hypermodel == "resnet"
    data = datasets.load(
        args.dataset,
        batch_size=args.batch_size,
        image_size=args.image_size
        or default_image_size("resnet" if conv else "highway_mlp", args.dataset),
        augment=conv,
        validation_fraction=args.validation_fraction,
        data_dir=args.data_dir,
        seed=args.seed,
    )
    try:
        hypermodel = _hypermodel(args, data)
    except ValueError as error:
        raise SystemExit(f"deepblocks tune: {error}")
    tuner = tuning.make_tuner(
        args.tuner,
        hypermodel,
        max_trials=args.max_trials,
        max_epochs=args.epochs,
        directory=args.directory,
        project_name=args.project_name,
        overwrite=args.overwrite,
        seed=args.seed,
    )
    train = data.train.repeat() if args.steps_per_epoch else data.train
    tuner.search(
        train,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        validation_data=data.validation,
        shuffle=False,  # the pipeline shuffles
        verbose=args.verbose,
    )
    try:
        trials = tuning.best_trials(tuner, args.top)
    except RuntimeError as error:
        raise SystemExit(f"deepblocks tune: {error}")
    print(
        f"\nbest {len(trials)} trials of {args.hypermodel} ({args.tuner} search, {args.dataset}):"
    )
    print(tuning.format_trials(trials))
    return 0


def _range_or_value(values):
    return values[0] if len(values) == 1 else list(values)


def _hypermodel(args, data):
    from keras_deepblocks import tuning

    if args.hypermodel == "highway":
        return tuning.HighwayHyperModel(
            data.input_shape,
            data.num_classes,
            depth=tuple(args.depth) if args.depth[0] != args.depth[1] else args.depth[0],
            depth_step=args.depth_step,
            width=_range_or_value(args.width),
            transform_bias=(
                tuple(args.transform_bias)
                if args.transform_bias[0] != args.transform_bias[1]
                else args.transform_bias[0]
            ),
            activation=_range_or_value(args.activation),
            learning_rate=tuple(args.learning_rate),
        )
    steps = args.steps_per_epoch or -(-data.train_examples // args.batch_size)
    return tuning.ResNetCifarHyperModel(
        data.input_shape,
        data.num_classes,
        depth=_range_or_value(args.depth),
        final_survival_probability=tuple(args.final_survival_probability),
        learning_rate=tuple(args.learning_rate),
        total_steps=args.epochs * steps,
    )
