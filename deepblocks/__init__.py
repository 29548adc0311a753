"""The `deepblocks` command: parses arguments, then calls keras-deepblocks.

One module per subcommand, each with `add_arguments(parser)` and `run(args)`,
and optionally `check(args)`: argument checks that need no Keras (files that
must exist, options that exclude each other), so that such mistakes answer
at once. The subcommand modules import only the standard library at module
level: `deepblocks --help`, every subcommand's `--help` and usage errors load
no Keras. Once the arguments have parsed, `main` imports
Keras and `keras_deepblocks` (which registers its classes), and `run` calls
the package (`keras_deepblocks.training`, `keras_deepblocks.zoo.registry`, ...);
the subcommand module's docstring is its help.

Expected failures (a missing file, no network, a bad value, a missing optional
package) end in one line, `deepblocks COMMAND: error: ...`, and exit status 1;
`--debug` shows the traceback and TensorFlow's log messages instead.
"""

import argparse
import contextlib
import importlib
import importlib.util
import math
import os
import pickle
import sys
import tempfile

SUBCOMMANDS = {
    "demo": "deepblocks.demo",
    "train": "deepblocks.train",
    "evaluate": "deepblocks.evaluate",
    "tune": "deepblocks.tune",
    "convert": "deepblocks.convert",
    "experiment": "deepblocks.experiment",
}
# Optional packages and the extra of keras-deepblocks that installs them.
EXTRAS = {
    "tensorflow_datasets": "datasets",
    "importlib_resources": "datasets",
    "keras_tuner": "tuner",
}
# A message longer than this (Keras's can hold a whole model config) is cut.
MAX_MESSAGE = 600


class ArgumentParser(argparse.ArgumentParser):
    """Usage errors in one line that says where the usage is, not the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = ArgumentParser(
        prog="deepblocks",
        description="Very deep networks in Keras 3: highway, residual, stochastic depth.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show tracebacks and TensorFlow's log messages",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        summary = (module.__doc__ or "").strip().splitlines()[0]
        sub = subparsers.add_parser(
            name,
            help=summary,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        # SUPPRESS: a subcommand that does not see --debug keeps the global one's value.
        sub.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show tracebacks and TensorFlow's log messages",
        )
        sub.set_defaults(run=module.run, check=getattr(module, "check", None))
    return parser


def main(argv=None):
    """Runs `deepblocks ARGV`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        # Checks that need no Keras come first, so that mistakes fail at once.
        if args.check is not None:
            args.check(args)
        _load_keras(quiet=not args.debug)
        if getattr(args, "dataset", None) is not None:
            from keras_deepblocks import datasets
            from keras_deepblocks.utils import validation

            validation.one_of(args.dataset, "--dataset", datasets.DATASETS)
        return args.run(args) or 0
    except KeyboardInterrupt:
        if args.debug:
            raise
        resume = (
            "; the same command resumes after the last finished epoch"
            if args.command == "train"
            else ""
        )
        print(f"deepblocks {args.command}: interrupted{resume}", file=sys.stderr)
        return 130
    # UnpicklingError: a file that is no checkpoint, or an unsafe one.
    except (ValueError, TypeError, OSError, ImportError, pickle.UnpicklingError) as error:
        if args.debug:
            raise
        print(f"deepblocks {args.command}: error: {describe(error)}", file=sys.stderr)
        return 1


def describe(error):
    """A one-line account of an expected error, with what to do where we know it."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        message = f"{error.strerror}: {error.filename}"  # without the "[Errno 2]"
    else:
        message = str(error) or type(error).__name__
    if isinstance(error, ImportError) and "pip install" not in message:
        package = (error.name or "").split(".")[0]
        if package in EXTRAS:
            message += f' (pip install "keras-deepblocks[{EXTRAS[package]}]")'
    if "Could not locate class" in message:
        # Keras appends the whole object config; the class name is what matters.
        message = message.split(". Make sure custom classes", 1)[0] + (
            ": the model uses a custom class that neither Keras nor keras-deepblocks defines"
        )
    message = " ".join(message.split())
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " ... (--debug shows all)"
    return message


def _load_keras(quiet):
    """Imports Keras and keras_deepblocks, which registers its classes for loading models.

    TensorFlow comes too (the data pipelines use it). Quiet: TensorFlow's C++
    log level defaults to errors only, and what it prints while it loads
    (before its logging honours that level: oneDNN and CUDA notices) is
    dropped unless the import fails.
    """
    if quiet:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _stderr_dropped() if quiet else contextlib.nullcontext():
        import keras_deepblocks  # noqa: F401  (imports Keras)

        if importlib.util.find_spec("tensorflow") is not None:
            import tensorflow  # noqa: F401
    if quiet:
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        with contextlib.suppress(ImportError):
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)


@contextlib.contextmanager
def _stderr_dropped():
    """Sends file descriptor 2 to a temporary file; replays it if the block fails."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# Argument types: range errors at parse time, before anything is loaded.


def number(kind=float, minimum=None, maximum=None, above=None, below=None):
    """An argparse type for a finite `kind` number within the given bounds."""
    bounds = [
        f">= {minimum}" if minimum is not None else None,
        f"> {above}" if above is not None else None,
        f"<= {maximum}" if maximum is not None else None,
        f"< {below}" if below is not None else None,
    ]
    bounds = [bound for bound in bounds if bound]
    if kind is int and bounds == [">= 1"]:
        wanted = "a positive integer"
    else:
        wanted = ("an integer" if kind is int else "a finite number") + " and".join(
            f" {bound}" for bound in bounds
        )

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (
            value is None
            or not math.isfinite(value)
            or (minimum is not None and value < minimum)
            or (above is not None and value <= above)
            or (maximum is not None and value > maximum)
            or (below is not None and value >= below)
        ):
            raise argparse.ArgumentTypeError(f"must be {wanted}, received: {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


positive_int = number(int, minimum=1)
nonnegative_int = number(int, minimum=0)
positive_float = number(above=0)
nonnegative_float = number(minimum=0)
finite_float = number()
