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
