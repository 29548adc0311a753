"""The settings record next to a real KerasTuner search: resume the same search, refuse another."""

import os
import subprocess
import sys

import pytest

keras_tuner = pytest.importorskip("keras_tuner")

from keras_deepblocks.datasets import load_digits  # noqa: E402
from keras_deepblocks.tuning import HighwayHyperModel  # noqa: E402
from keras_deepblocks.tuning import make_tuner  # noqa: E402
from keras_deepblocks.tuning import record  # noqa: E402

SETTINGS = {"--tuner": "random", "--depth": (1, 3), "--seed": 0, "--steps-per-epoch": None}


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """A finished one-trial KerasTuner search, as KerasTuner writes it."""
    directory = tmp_path_factory.mktemp("tuning")
    (x, y), (x_val, y_val) = load_digits(test_fraction=0.3)
    hypermodel = HighwayHyperModel((64,), 10, depth=(1, 3), depth_step=1, width=4)
    tuner = make_tuner("random", hypermodel, max_trials=1, directory=directory, project_name="p")
    tuner.search(x, y, epochs=1, batch_size=256, validation_data=(x_val, y_val), verbose=0)
    return record.project_dir(directory, "p")


def test_same_settings_resume_other_settings_are_refused(search):
    record.write(search, SETTINGS)
    # Read back from JSON (tuples become lists): still the same settings.
    assert record.check(search, dict(SETTINGS)) == "resume"
    with pytest.raises(ValueError) as error:
        record.check(search, {**SETTINGS, "--depth": (2, 10), "--tuner": "hyperband"})
    message = str(error.value)
    assert "--overwrite" in message.split("(")[0]  # what to do comes first
    assert "--depth: 1 3 there, 2 10 now; --tuner: random there, hyperband now" in message
    with pytest.raises(ValueError, match="--steps-per-epoch: unset there, 4 now"):
        record.check(search, {**SETTINGS, "--steps-per-epoch": 4})
    assert record.check(search, {**SETTINGS, "--depth": (2, 10)}, overwrite=True) == "new"


@pytest.mark.parametrize("content", [None, b"{not json", b"\xff\xfe", b'{"format": 99}'])
def test_a_search_without_readable_settings_is_not_resumed(search, content):
    """Its settings are unknown: resuming it could mix two searches."""
    path = search + "/" + record.SETTINGS_FILE
    try:
        if content is None:
            os.remove(path)
        else:
            with open(path, "wb") as file:
                file.write(content)
        with pytest.raises(ValueError, match="settings were not recorded.*pass --overwrite"):
            record.check(search, SETTINGS)
        assert record.check(search, SETTINGS, overwrite=True) == "new"
    finally:
        record.write(search, SETTINGS)


def test_no_search_yet_is_new(tmp_path):
    assert record.check(str(tmp_path / "absent"), SETTINGS) == "new"
    # A record whose first trial never ended: KerasTuner starts over there, and so do we.
    record.write(str(tmp_path / "interrupted"), {"--tuner": "bayesian"})
    assert record.check(str(tmp_path / "interrupted"), SETTINGS) == "new"


def test_overwrite_refuses_to_delete_a_folder_that_is_no_search(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="--overwrite would delete .* holds no KerasTuner search"):
        record.check(str(tmp_path), SETTINGS, overwrite=True)
    assert record.check(str(tmp_path / "empty"), SETTINGS, overwrite=True) == "new"


def test_an_interrupted_write_keeps_the_recorded_settings(tmp_path, monkeypatch):
    record.write(str(tmp_path), SETTINGS)

    def interrupted(obj, file, **kwargs):
        file.write('{"format": 1, "sett')
        raise KeyboardInterrupt

    monkeypatch.setattr(record.json, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        record.write(str(tmp_path), {**SETTINGS, "--seed": 1})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == [record.SETTINGS_FILE]  # no partial file left
    assert record.read(str(tmp_path)) == {**SETTINGS, "--depth": [1, 3]}  # the first record


def test_the_check_loads_without_keras_tuner():
    """`deepblocks tune` refuses a mismatch before loading KerasTuner (and its TensorFlow)."""
    # As the `deepblocks` process, where the package itself waits with Keras (fast).
    code = (
        "import sys; sys.argv[0] = 'deepblocks'; import keras_deepblocks.tuning.record; "
        "print('keras_tuner' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr[-2000:]
