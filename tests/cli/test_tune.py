import json
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("keras_tuner")

from deepblocks import main  # noqa: E402

TINY = ["--width", "4", "--steps-per-epoch", "1", "--batch-size", "16", "--seed", "3"]
PROGRESS = re.compile(
    r"^trial (\d+) of (\d+): (.*) -> val_accuracy ([0-9.e-]+) \(best so far: ([0-9.e-]+), "
    r"trial (\d+)\)$"
)


def tune(directory, *argv):
    command = [sys.executable, "-m", "deepblocks", "tune", "highway", *argv, *TINY]
    command += ["--directory", str(directory)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def trial_files(project):
    """KerasTuner's trial records: {folder name: parsed trial.json}."""
    return {
        path.parent.name: json.loads(path.read_text())
        for path in sorted(project.glob("trial_*/trial.json"))
    }


def progress_lines(stdout):
    return [PROGRESS.match(line) for line in stdout.splitlines() if line.startswith("trial ")]


def check_progress(lines, trials, planned):
    """Each line matches its trial.json: hyperparameters, score and the best score so far (over
    every trial up to it, those of an earlier run of a resumed search too)."""
    by_number = {int(name.split("_")[1]) + 1: trial for name, trial in trials.items()}
    for line in lines:
        assert line, "a progress line does not have the documented form"
        number, of, shown, score = int(line[1]), int(line[2]), line[3], float(line[4])
        trial = by_number[number]
        assert of == planned
        assert f"depth={trial['hyperparameters']['values']['depth']}," in shown
        assert score == pytest.approx(trial["score"], abs=1e-3)
        best = None
        for earlier in sorted(n for n in by_number if n <= number):
            if best is None or by_number[earlier]["score"] > by_number[best]["score"]:
                best = earlier
        assert float(line[5]) == pytest.approx(by_number[best]["score"], abs=1e-3)
        assert int(line[6]) == best


def test_tune_refuses_other_settings_overwrites_and_resumes(tmp_path):
    project = tmp_path / "highway_mlp"
    # A Hyperband search first (2 trials at --epochs 2), as in the report.
    first = tune(tmp_path, "--tuner", "hyperband", "--epochs", "2", "--depth", "14", "22")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "new hyperband search of highway" in first.stdout
    hyperband = trial_files(project)
    assert len(hyperband) == 2
    check_progress(progress_lines(first.stdout), hyperband, planned=2)
    snapshot = {path: path.read_bytes() for path in project.rglob("*") if path.is_file()}

    # Other settings: refused, naming what differs and --overwrite; nothing touched.
    random = ["--tuner", "random", "--epochs", "1", "--depth", "2", "10", "--depth-step", "1"]
    refused = tune(tmp_path, *random, "--max-trials", "2")
    assert refused.returncode != 0
    message = refused.stderr.strip().splitlines()[-1]
    assert "--overwrite" in message and "--depth: 14 22 there, 2 10 now" in message
    assert "--tuner: hyperband there, random now" in message
    assert "trial " not in refused.stdout
    after = {path: path.read_bytes() for path in project.rglob("*") if path.is_file()}
    assert after == snapshot

    # --overwrite: a new search, every trial in the new ranges, none of the old ones.
    fresh = tune(tmp_path, *random, "--max-trials", "2", "--overwrite", "--quiet")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert fresh.stdout.lstrip().startswith("best 2 trials of highway")  # --quiet: the table only
    trials = trial_files(project)
    assert len(trials) == 2 and not set(trials) & set(hyperband)
    assert all(2 <= t["hyperparameters"]["values"]["depth"] <= 10 for t in trials.values())
    assert not any("tuner/epochs" in t["hyperparameters"]["values"] for t in trials.values())

    # The same settings resume it: a larger --max-trials adds one trial, the others stay.
    resumed = tune(tmp_path, *random, "--max-trials", "3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming the search" in resumed.stdout and "2 of 3 trials done" in resumed.stdout
    lines = progress_lines(resumed.stdout)
    assert [int(line[1]) for line in lines] == [3]
    all_trials = trial_files(project)
    assert {name: all_trials[name] for name in trials} == trials
    assert 2 <= all_trials["trial_2"]["hyperparameters"]["values"]["depth"] <= 10
    check_progress(lines, all_trials, planned=3)
    # The final table: the best trial first, as KerasTuner recorded it.
    table = resumed.stdout.split("\nbest ")[1].splitlines()[1:]
    header = table[0].split()
    best_row = dict(zip(header, table[1].split()))
    best = max(all_trials.values(), key=lambda t: t["score"])
    assert int(best_row["trial"]) == int(best["trial_id"]) + 1
    assert float(best_row["val_accuracy"]) == pytest.approx(best["score"], abs=1e-3)
    assert int(best_row["depth"]) == best["hyperparameters"]["values"]["depth"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--depth", "10", "2"], "--depth: MIN must not exceed MAX, received: 10 2"),
        (["--learning-rate", "0.1", "0.01"], "--learning-rate: MIN must not exceed MAX"),
        (["--learning-rate", "0", "0.1"], "--learning-rate: must be a finite number > 0"),
        (["--transform-bias", "nan", "0"], "--transform-bias: must be a finite number"),
        (["--max-trials", "0"], "--max-trials: must be a positive integer, received: 0"),
        (["--epochs", "-3"], "--epochs: must be a positive integer, received: -3"),
        (["--width", "8", "-1"], "--width: must be a positive integer"),
        (["--depth-step", "two"], "--depth-step: must be a positive integer, received: two"),
        (
            ["--validation-fraction", "1"],
            "--validation-fraction: must be a finite number > 0 and < 1, received: 1",
        ),
    ],
)
def test_tune_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", "highway", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_tune_resnet_rejects_a_survival_probability_out_of_range(capsys):
    # Depths 6n+2 are checked by the zoo's registry after Keras loads (tests/cli/test_errors.py).
    with pytest.raises(SystemExit):
        main(["tune", "resnet", "--final-survival-probability", "0", "1"])
    assert "must be a finite number > 0 and <= 1" in capsys.readouterr().err


def test_tune_checks_values_before_searching(tmp_path):
    from deepblocks import build_parser

    argv = ["tune", "highway", "--activation", "relu", "sigmoidal", "--directory", str(tmp_path)]
    args = build_parser().parse_args(argv)
    with pytest.raises(ValueError, match="`--activation` must name Keras activations"):
        args.run(args)
    assert not list(tmp_path.iterdir())  # refused before anything was written
