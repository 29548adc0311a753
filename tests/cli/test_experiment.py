"""`deepblocks experiment NAME`: run as a user runs it, in a fresh process."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from deepblocks import main


def run_deepblocks(argv, cwd):
    script = shutil.which("deepblocks", path=os.path.dirname(sys.executable))
    command = [sys.executable, script] if script else [sys.executable, "-m", "deepblocks"]
    return subprocess.run(
        command + argv, capture_output=True, text=True, timeout=600, cwd=cwd, env=dict(os.environ)
    )


def written(folder, name):
    with open(folder / f"{name}.png", "rb") as image:
        assert image.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(folder / f"{name}.json", encoding="utf-8") as numbers:
        return json.load(numbers)


def test_init_experiment_writes_its_figure_and_numbers_offline(tmp_path):
    result = run_deepblocks(["experiment", "init", "--small", "--output-dir", "out"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = written(tmp_path / "out", "init")
    assert numbers["dataset"] == "digits"
    assert "experiment init (small)" in result.stdout and "depth-scaled" in result.stdout
    assert not [p for p in os.listdir(tmp_path / "out") if "partial" in p]


def test_lesion_experiment_on_the_published_resnet56(tmp_path, shared_fixtures):
    """The published checkpoint and real CIFAR-10 images, as files a user points to."""
    checkpoint = shared_fixtures / "resnet_cifar_torch" / "resnet56-4bfd9763.th"
    images = shared_fixtures / "cifar10_partial" / "cifar10_train_4660.npz"
    argv = ["experiment", "lesion", "--small", "--weights", str(checkpoint)]
    result = run_deepblocks(argv + ["--images", str(images), "--output-dir", "."], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = written(tmp_path, "lesion")
    assert numbers["full"] > 0.9 and len(numbers["delete"]) == 27


@pytest.mark.parametrize(
    "argv, message",
    [
        (["experiment", "depth", "--weights", "w.th"], "--weights is an option of the lesion"),
        (["experiment", "lesion", "--images", "missing.npz"], "No such file: missing.npz"),
        (["experiment", "depth", "--dataset", "imagenet"], "`--dataset` must be one of"),
    ],
)
def test_mistakes_are_one_line_errors(argv, message, capsys, tmp_path):
    assert main(argv + ["--output-dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert message in error and error.startswith("deepblocks experiment: error:")


def test_an_unknown_experiment_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "width"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'width'" in capsys.readouterr().err
