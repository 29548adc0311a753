import json

import pytest

pytest.importorskip("keras_tuner")

from keras_deepblocks.cli import main  # noqa: E402


def test_tune_highway_depth_and_gate_bias_reports_best_trial(tmp_path, capsys):
    argv = [
        "tune",
        "highway",
        "--depth",
        "1",
        "4",
        "--depth-step",
        "1",
        "--transform-bias",
        "-3",
        "-1",
        "--width",
        "8",
        "--learning-rate",
        "0.01",
        "0.1",
        "--max-trials",
        "2",
        "--epochs",
        "1",
        "--directory",
        str(tmp_path),
        "--project-name",
        "search",
        "--top",
        "2",
    ]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    header_index = next(
        i for i, line in enumerate(lines) if line.split()[:3] == ["rank", "trial", "val_accuracy"]
    )
    header = lines[header_index].split()
    rows = [dict(zip(header, line.split())) for line in lines[header_index + 1 :]]
    assert "best 2 trials of highway" in lines[header_index - 1]
    assert [row["rank"] for row in rows] == ["1", "2"]

    recorded = {}
    for trial_id in {row["trial"] for row in rows}:
        trial = json.loads((tmp_path / "search" / f"trial_{trial_id}" / "trial.json").read_text())
        recorded[trial_id] = trial
    best = max(recorded.values(), key=lambda t: t["score"])
    assert rows[0]["trial"] == best["trial_id"]
    assert float(rows[0]["val_accuracy"]) == pytest.approx(best["score"], abs=1e-4)
    values = best["hyperparameters"]["values"]
    assert int(rows[0]["depth"]) == values["depth"] and 1 <= values["depth"] <= 4
    assert float(rows[0]["transform_bias"]) == pytest.approx(values["transform_bias"], abs=1e-3)
    assert -3 <= values["transform_bias"] <= -1


def test_tune_rejects_bad_budget():
    with pytest.raises(SystemExit, match="--max-trials must be >= 1"):
        main(["tune", "highway", "--max-trials", "0"])
