"""`atomic_path` and the output checks, on real files."""

import os
import stat

import pytest

from keras_deepblocks.utils.files import atomic_path
from keras_deepblocks.utils.files import check_output_file


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_finished_write_appears_whole_with_a_normal_files_mode(tmp_path, umask_022):
    target = tmp_path / "new" / "weights.npz"
    with atomic_path(target) as path:
        assert path.endswith(".npz") and os.path.dirname(path) == str(target.parent)
        with open(path, "w") as file:
            file.write("done")
    assert target.read_text() == "done"
    assert os.listdir(target.parent) == ["weights.npz"]
    # As if written with open(): mkstemp's 0600 would hide results from other users.
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as path:
            with open(path, "w") as file:
                file.write("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_output_checks_name_the_option_and_create_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"`--output` must end in \.keras, received: 'm\.h5'"):
        check_output_file("m.h5", "--output", suffixes=(".keras",))
    with pytest.raises(ValueError, match="must be a file, not the folder"):
        check_output_file(str(tmp_path), "--output")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError, match="--output"):
        check_output_file(str(blocker / "sub" / "m.keras"), "--output")
    check_output_file(str(tmp_path / "a" / "b" / "m.keras"), "--output")
    assert not (tmp_path / "a").exists()
