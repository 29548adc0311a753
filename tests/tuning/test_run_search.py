"""`run_search` from Python: a real tiny search on the digits, recorded, refused, resumed."""

import json

import keras
import pytest

keras_tuner = pytest.importorskip("keras_tuner")

from keras_deepblocks.datasets import load_digits  # noqa: E402
from keras_deepblocks.tuning import HighwayHyperModel  # noqa: E402
from keras_deepblocks.tuning import SearchFailedError  # noqa: E402
from keras_deepblocks.tuning import record  # noqa: E402
from keras_deepblocks.tuning import run_search  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return load_digits(test_fraction=0.3)


def search(digits, directory, hypermodel=None, **kwargs):
    (x, y), (x_val, y_val) = digits
    hypermodel = hypermodel or HighwayHyperModel((64,), 10, depth=(1, 3), depth_step=1, width=4)
    lines = []
    options = dict(max_trials=2, epochs=1, batch_size=256, directory=directory, seed=1)
    trials = run_search(
        hypermodel,
        x,
        y,
        validation_data=(x_val, y_val),
        progress=lines.append,
        **{**options, **kwargs},
    )
    return trials, lines


def trial_files(project):
    return {p.parent.name: json.loads(p.read_text()) for p in project.glob("trial_*/trial.json")}


def test_run_search_refuses_other_settings_and_resumes_the_same(digits, tmp_path):
    project = tmp_path / "highway_mlp"
    trials, lines = search(digits, tmp_path)
    assert lines[0].startswith(
        f"new random search of highway_mlp in {project}: 2 trials of 1 epoch"
    )
    assert [line.split(":")[0] for line in lines[1:]] == ["trial 1 of 2", "trial 2 of 2"]
    # The best trials, best first, as KerasTuner recorded them.
    recorded = trial_files(project)
    assert len(recorded) == 2 and len(trials) == 2
    best = max(recorded.values(), key=lambda trial: trial["score"])
    assert trials[0]["score"] == pytest.approx(best["score"])
    assert trials[0]["hyperparameters"] == best["hyperparameters"]["values"]
    assert trials[0]["score"] >= trials[1]["score"]
    snapshot = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}

    # Another space, or another number of epochs: refused from Python too, nothing touched.
    other = HighwayHyperModel((64,), 10, depth=(2, 6), depth_step=1, width=4)
    with pytest.raises(ValueError) as error:
        search(digits, tmp_path, hypermodel=other, max_trials=3)
    message = str(error.value)
    assert message.startswith(
        f"{project} holds a search with other settings: pass `overwrite=True`"
    )
    assert "depth (hyperparameter): Int(min_value=1, max_value=3" in message
    assert "Int(min_value=2, max_value=6" in message
    with pytest.raises(ValueError, match="epochs: 1 there, 2 now"):
        search(digits, tmp_path, epochs=2)
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == snapshot

    # The same settings resume it: a larger max_trials adds one trial, the others stay.
    trials, lines = search(digits, tmp_path, max_trials=3)
    assert lines[0] == (
        f"resuming the search in {project} (same settings, 2 of 3 trials done); "
        "`overwrite=True` starts a new one"
    )
    assert [line.split(":")[0] for line in lines[1:]] == ["trial 3 of 3"]
    after = trial_files(project)
    assert {name: after[name] for name in recorded} == recorded and len(after) == 3
    assert len(trials) == 3

    # overwrite=True replaces it with the new space.
    trials, lines = search(digits, tmp_path, hypermodel=other, overwrite=True)
    assert lines[0].startswith("new random search")
    assert len(trial_files(project)) == 2
    assert all(2 <= trial["hyperparameters"]["depth"] <= 6 for trial in trials)
    assert "depth (hyperparameter)" in json.dumps(record.read(str(project)))


class FailingHyperModel(keras_tuner.HyperModel):
    """Every trial fails in training, as with a model too large for the device."""

    def build(self, hp):
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(hp.Int("units", 1, 4))])
        model.compile("sgd", "mse")
        return model

    def fit(self, hp, model, *args, **kwargs):
        raise ValueError("out of memory")


def test_consecutive_failed_trials_raise_one_clear_error(digits, tmp_path):
    with pytest.raises(SearchFailedError) as error:
        search(digits, tmp_path, hypermodel=FailingHyperModel(name="failing"), max_trials=5)
    message = str(error.value)
    # KerasTuner's first line and the trials' last error, without its tracebacks.
    assert message.startswith("Number of consecutive failures")
    assert message.endswith("The last error: ValueError: out of memory")
    assert "\n" not in message
    # What `deepblocks` prints as one line (a ValueError), and what KerasTuner raised.
    assert isinstance(error.value, ValueError) and isinstance(error.value, RuntimeError)
