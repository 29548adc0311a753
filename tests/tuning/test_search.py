"""Progress of a search: the number of trials a tuner plans, and one line per finished trial."""

import re
import types

import pytest

keras_tuner = pytest.importorskip("keras_tuner")

from keras_deepblocks.tuning import planned_trials  # noqa: E402
from keras_deepblocks.tuning import trial_line  # noqa: E402


def run_oracle(oracle, tmp_path, scores):
    """Drives KerasTuner's own oracle to the end with scores from `scores`; the progress lines."""
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.verbose = 0
    hp = keras_tuner.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle.update_space(hp)
    tuner = types.SimpleNamespace(oracle=oracle)
    lines = []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            return tuner, lines
        score = next(scores)
        if score is None:
            trial.status, trial.message = "FAILED", "Traceback ...\nValueError: out of memory"
        else:
            oracle.update_trial(trial.trial_id, {"val_accuracy": score})
            trial.status = "COMPLETED"
        oracle.end_trial(trial)
        lines.append(trial_line(tuner, oracle.get_trial(trial.trial_id)))


@pytest.mark.parametrize("max_epochs, iterations", [(1, 1), (3, 2), (10, 1)])
def test_planned_trials_is_what_hyperband_runs(max_epochs, iterations, tmp_path):
    oracle = keras_tuner.oracles.HyperbandOracle(
        objective="val_accuracy", max_epochs=max_epochs, hyperband_iterations=iterations, seed=0
    )
    tuner, lines = run_oracle(oracle, tmp_path, iter(lambda: 0.5, None))
    assert planned_trials(tuner) == len(oracle.trials) == len(lines)


def test_one_line_per_trial_with_the_best_so_far(tmp_path):
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=4, seed=0)
    _, lines = run_oracle(oracle, tmp_path, iter([0.5, 0.75, None, 0.625]))
    values = [oracle.trials[trial_id].hyperparameters.values["x"] for trial_id in "0123"]
    expected = [
        "trial 1 of 4: x={:.4g} -> val_accuracy 0.5 (best so far: 0.5, trial 1)",
        "trial 2 of 4: x={:.4g} -> val_accuracy 0.75 (best so far: 0.75, trial 2)",
        "trial 3 of 4: x={:.4g} -> failed (ValueError: out of memory) (best so far: 0.75, trial 2)",
        "trial 4 of 4: x={:.4g} -> val_accuracy 0.625 (best so far: 0.75, trial 2)",
    ]
    assert lines == [line.format(value) for line, value in zip(expected, values)]
    assert not any(re.search(r"tuner/", line) for line in lines)


def test_a_first_failed_trial_has_no_best_yet(tmp_path):
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=2, seed=0)
    _, lines = run_oracle(oracle, tmp_path, iter([None, 0.5]))
    assert lines[0].endswith("-> failed (ValueError: out of memory) (best so far: none)")
    assert lines[1].endswith("-> val_accuracy 0.5 (best so far: 0.5, trial 2)")
