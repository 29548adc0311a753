import pytest


def _load_problems(paths, load):
    """What went wrong loading damaged files: each must raise a ValueError that names its path."""
    problems = []
    for path in paths:
        try:
            load(path)
            problems.append(f"{path.name}: loaded")
        except ValueError as error:
            if str(path) not in str(error):
                problems.append(f"{path.name}: {type(error).__name__}: {error}")
        except Exception as error:  # noqa: BLE001 - any other type is the failure
            problems.append(f"{path.name}: {type(error).__name__}: {error}")
    return problems


@pytest.fixture
def load_problems():
    """`load_problems(paths, load)`: the damaged files `load` did not refuse by name."""
    return _load_problems


@pytest.fixture
def edited_copy(tmp_path):
    """`edited_copy(source, edit)`: a new copy of HDF5 file `source` after `edit(h5)` changed it."""
    h5py = pytest.importorskip("h5py")
    copies = []

    def make(source, edit):
        path = tmp_path / f"edited_{len(copies)}.hdf5"
        path.write_bytes(source.read_bytes())
        with h5py.File(path, "r+") as h5:
            edit(h5)
        copies.append(path)
        return path

    return make
