import re

import pytest

from deepblocks import main


def test_demo_trains_both_networks_and_writes_the_plot(tmp_path, capsys):
    output = tmp_path / "curves.png"
    main(
        [
            "demo",
            "--depth",
            "8",
            "--width",
            "16",
            "--epochs",
            "2",
            "--verbose",
            "0",
            "--output",
            str(output),
        ]
    )
    printed = capsys.readouterr().out
    rows = {
        m.group(1): m.groups()[1:]
        for m in re.finditer(r"^(plain|highway)\s+(\d+)\s+(\S+)\s+(\S+)$", printed, re.M)
    }
    assert set(rows) == {"plain", "highway"}
    for depth, loss, accuracy in rows.values():
        assert depth == "8"
        assert float(loss) > 0 and 0.0 <= float(accuracy) <= 1.0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_rejects_a_bad_depth(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--depth", "0"])
    assert exit_info.value.code == 2
    assert "--depth: must be a positive integer, received: 0" in capsys.readouterr().err


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "demo" in capsys.readouterr().out
