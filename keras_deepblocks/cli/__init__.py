"""The `deepblocks` command: one module per subcommand.

Each subcommand module defines `add_arguments(parser)` and `run(args)`; its
docstring's first line is the subcommand's help. Modules are imported only
when their subcommand runs, so `deepblocks --help` stays fast.
"""

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "demo": "keras_deepblocks.cli.demo",
    "train": "keras_deepblocks.cli.train",
    "evaluate": "keras_deepblocks.cli.evaluate",
    "tune": "keras_deepblocks.cli.tune",
    "convert": "keras_deepblocks.cli.convert",
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="deepblocks",
        description="Very deep networks in Keras 3: highway, residual, stochastic depth.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        summary = (module.__doc__ or "").strip().splitlines()[0]
        sub = subparsers.add_parser(name, help=summary, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
