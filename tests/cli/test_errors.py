"""The `deepblocks` command as a user meets it: fast help, one-line errors, no log noise.

Every check runs the command in a fresh process. Most user errors run in one
subprocess that calls `main()` once per argument list (one TensorFlow import
for all of them); a few run the installed `deepblocks` script itself.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")


def deepblocks_script():
    """The console script of this environment, or `None` when the package is not installed."""
    script = shutil.which("deepblocks", path=os.path.dirname(sys.executable))
    return script or shutil.which("deepblocks")


def run_command(argv, env=None, python_options=(), timeout=120):
    """Runs the real `deepblocks` script (or `python -m deepblocks` without it)."""
    script = deepblocks_script()
    command = [sys.executable, *python_options]
    command += [script] if script else ["-m", "deepblocks"]
    environment = dict(os.environ, **(env or {}))
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a user has: TensorFlow's default
    return subprocess.run(
        command + argv, capture_output=True, text=True, timeout=timeout, env=environment
    )


def imported_modules(importtime_log):
    """Top-level module names from the `-X importtime` lines."""
    names = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


USAGE_ERROR = (
    "deepblocks train: error: argument --learning-rate: must be a finite number > 0, "
    "received: -0.1 (see deepblocks train --help)"
)


@pytest.mark.parametrize(
    "argv, status, error",
    [
        (["--help"], 0, None),
        (["demo", "--help"], 0, None),
        (["train", "--help"], 0, None),
        (["evaluate", "--help"], 0, None),
        (["tune", "highway", "--help"], 0, None),
        (["tune", "resnet", "--help"], 0, None),
        (["convert", "--help"], 0, None),
        (["train", "resnet20", "--learning-rate", "-0.1"], 2, USAGE_ERROR),
    ],
)
def test_help_and_argument_errors_load_no_framework(argv, status, error):
    start = time.perf_counter()
    result = run_command(argv, python_options=["-X", "importtime"])
    elapsed = time.perf_counter() - start
    assert result.returncode == status, result.stderr[-2000:]
    modules = imported_modules(result.stderr)
    assert "deepblocks" in modules  # the log is what we think it is
    # Not even the package: importing it loads Keras.
    heavy = set(FRAMEWORKS) | {"keras_deepblocks", "numpy"}
    assert not modules & heavy, sorted(modules & heavy)
    # Loading TensorFlow alone takes 4-13 s; argparse answers in well under one.
    assert elapsed < 4, elapsed
    if error is None:
        assert "usage: deepblocks" in result.stdout
    else:
        lines = [line for line in result.stderr.splitlines() if not line.startswith("import time")]
        assert len(lines) == 1 and lines[0].startswith(error), lines


def test_train_help_names_every_zoo_model_and_dataset():
    """The help text keeps a copy of the names (the lists load Keras): it must name them all."""
    from keras_deepblocks.datasets import DATASETS
    from keras_deepblocks.zoo.registry import model_names

    result = run_command(["train", "--help"])
    assert result.returncode == 0, result.stderr[-2000:]
    text = " ".join(result.stdout.split())
    missing = [name for name in (*model_names(), *DATASETS) if name not in text]
    assert not missing, text


# One subprocess, many argument lists: (argv, exit status, text of the one error line).
# Paths: {tmp} is a scratch folder; {file} an existing plain file (so "{file}/x" cannot be
# created even by root); {garbage_keras} and {garbage_th} hold random bytes; {folder} is
# a folder named like a model file.
CASES = [
    # Values out of range: refused by the parser (status 2), before anything loads.
    (
        ["train", "resnet20", "--learning-rate", "-0.1"],
        2,
        "--learning-rate: must be a finite number > 0, received: -0.1",
    ),
    (
        ["train", "resnet20", "--learning-rate", "nan"],
        2,
        "--learning-rate: must be a finite number > 0, received: nan",
    ),
    (
        ["demo", "--learning-rate", "nan"],
        2,
        "--learning-rate: must be a finite number > 0, received: nan",
    ),
    (
        ["demo", "--transform-bias", "inf"],
        2,
        "--transform-bias: must be a finite number, received: inf",
    ),
    (
        ["train", "resnet20", "--epochs", "0"],
        2,
        "--epochs: must be a positive integer, received: 0",
    ),
    (
        ["train", "resnet20", "--batch-size", "0"],
        2,
        "--batch-size: must be a positive integer, received: 0",
    ),
    (
        ["train", "resnet20", "--momentum", "1.5"],
        2,
        "--momentum: must be a finite number >= 0 and < 1",
    ),
    (
        ["train", "resnet20", "--final-survival-probability", "1.5"],
        2,
        "must be a finite number > 0 and <= 1",
    ),
    (
        ["evaluate", "{model}", "--limit", "-5"],
        2,
        "--limit: must be a positive integer, received: -5",
    ),
    (
        ["evaluate", "{model}", "--limit", "0"],
        2,
        "--limit: must be a positive integer, received: 0",
    ),
    (["demo", "--depth", "0"], 2, "--depth: must be a positive integer, received: 0"),
    # Names and combinations: one line, status 1, from the package's lists and checks.
    (["train", "vgg16"], 1, "unknown model 'vgg16'; choose from resnet20, resnet32,"),
    (["train", "resnet21"], 1, "must be a CIFAR ResNet depth 6n + 2"),
    (["train", "resnet20", "--depth", "3"], 1, "--depth: not an option of resnet20"),
    (
        ["train", "highway_mlp", "--final-survival-probability", "0.5"],
        1,
        "--final-survival-probability: not an option of highway_mlp",
    ),
    # Before, ignored without a word (and trained).
    (
        ["train", "plain_mlp", "--transform-bias", "-2", "--epochs", "1", "--steps-per-epoch", "1"],
        1,
        "--transform-bias: not an option of plain_mlp",
    ),
    (["train", "resnet20", "--dataset", "imagenet"], 1, "{dataset_choices}"),
    (["evaluate", "{model}", "--dataset", "imagenet"], 1, "{dataset_choices}"),
    (["tune", "resnet", "--depth", "20", "21"], 1, "`--depth` must be a CIFAR ResNet depth 6n + 2"),
    (["evaluate", "vgg16"], 1, "'vgg16' is neither a .keras file nor a zoo ResNet name"),
    (["evaluate", "resnet20", "--dataset", "digits"], 1, "digits has grayscale ones"),
    (["evaluate", "resnet20", "--dataset", "cifar100"], 1, "not CIFAR-100's"),
    # Files: missing, garbage, unwritable. Outputs are checked before any training.
    (["evaluate", "{tmp}/missing.keras"], 1, "No such model file: {tmp}/missing.keras"),
    (["evaluate", "{garbage_keras}"], 1, "cannot load the model '{garbage_keras}'"),
    (
        ["evaluate", "resnet20", "--weights", "{tmp}/missing.th", "--dataset", "cifar10"],
        1,
        "No such weights file: {tmp}/missing.th",
    ),
    (
        ["evaluate", "resnet20", "--weights", "{garbage_th}", "--dataset", "cifar10"],
        1,
        "{garbage_th}",
    ),
    (
        ["train", "highway_mlp", "--output", "{file}/m.keras", "--log-dir", "{tmp}/runs"],
        1,
        "`--output`: cannot write in '{file}'",
    ),
    (
        ["train", "highway_mlp", "--output", "{tmp}/m.keras", "--log-dir", "{file}/runs"],
        1,
        "`--log-dir`: cannot write in '{file}/runs'",
    ),
    (
        ["train", "highway_mlp", "--output", "{tmp}/m.h5"],
        1,
        "`--output` must end in .keras, received: '{tmp}/m.h5'",
    ),
    (
        ["train", "highway_mlp", "--output", "{folder}", "--log-dir", "{tmp}/runs"],
        1,
        "`--output` must be a file, not the folder '{folder}'",
    ),
    (["demo", "--output", "{tmp}/curves.xyz"], 1, "--output must end in an image extension"),
    (["demo", "--output", "{file}/curves.png"], 1, "`--output`: cannot write in '{file}'"),
    # No network: the published weights cannot be downloaded (KERAS_HOME is empty).
    (["evaluate", "resnet56", "--dataset", "cifar10"], 1, "Could not download"),
    # Optional extras that are not installed (hidden from this process).
    (
        [
            "train",
            "resnet20",
            "--dataset",
            "cifar10",
            "--log-dir",
            "{tmp}/runs",
            "--output",
            "{tmp}/r.keras",
        ],
        1,
        "keras-deepblocks[datasets]",
    ),
]

RUNNER = textwrap.dedent("""
    import contextlib, io, json, sys, traceback
    sys.modules["tensorflow_datasets"] = None  # as if the [datasets] extra were not installed
    from deepblocks import main
    results = []
    for argv in json.loads(sys.argv[1]):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main(argv)
            except SystemExit as exit:
                status = exit.code
            except BaseException:
                status = "uncaught: " + traceback.format_exc()
        results.append([status, stderr.getvalue()])
    print(json.dumps(results))
    """)


def test_user_errors_print_one_line_and_exit_non_zero(tmp_path):
    from keras_deepblocks.datasets import DATASETS

    rng = __import__("random").Random(0)
    paths = {
        "tmp": str(tmp_path),
        "file": str(tmp_path / "plain.txt"),
        "garbage_keras": str(tmp_path / "garbage.keras"),
        "garbage_th": str(tmp_path / "garbage.th"),
        "model": str(tmp_path / "model.keras"),
        "folder": str(tmp_path / "folder.keras"),
        # The one list of datasets, as the package's validation shows it.
        "dataset_choices": f"`--dataset` must be one of {', '.join(map(repr, DATASETS))}",
    }
    os.mkdir(paths["folder"])
    pathlib.Path(paths["file"]).write_text("not a folder")
    for name in ("garbage_keras", "garbage_th", "model"):
        pathlib.Path(paths[name]).write_bytes(bytes(rng.randrange(256) for _ in range(300)))
    cases = [
        ([arg.format(**paths) for arg in argv], status, message.format(**paths))
        for argv, status, message in CASES
    ]
    keras_home = tmp_path / "keras_home"  # no cached weights: a download is attempted
    keras_home.mkdir()
    env = dict(os.environ, KERAS_HOME=str(keras_home), TFDS_DATA_DIR=str(tmp_path / "tfds"))
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps([argv for argv, _, _ in cases])],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    failures = []
    for (argv, status, message), (got_status, stderr) in zip(cases, outcomes):
        lines = stderr.strip().splitlines()
        command = f"deepblocks {argv[0]}"
        if (
            got_status != status
            or len(lines) != 1
            or not lines[0].startswith(f"{command}: error: ")
            or message not in lines[0]
        ):
            failures.append(f"{argv}: status {got_status!r}, stderr {stderr!r}")
    assert not failures, "\n".join(failures)
    # Nothing was trained or written on the way to these errors.
    prepared = {paths[name] for name in ("file", "garbage_keras", "garbage_th", "model")}
    prepared |= {paths["folder"], str(keras_home)}
    left = {str(p) for p in tmp_path.rglob("*") if keras_home not in p.parents}
    assert left == prepared  # not even an empty folder


def test_runtime_error_after_tensorflow_loads_is_one_line_without_log_noise(tmp_path):
    """A failure after TensorFlow loaded: TensorFlow's start-up lines are gone too."""
    garbage = tmp_path / "model.keras"
    garbage.write_bytes(b"\x00not a zip archive" * 20)
    result = run_command(["evaluate", str(garbage)])
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"deepblocks evaluate: error: cannot load the model '{garbage}': ")

    debug = run_command(["--debug", "evaluate", str(garbage)])
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "cannot load the model" in debug.stderr
