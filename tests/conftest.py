import os
import pathlib

import keras
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_FIXTURES = pathlib.Path(
    os.environ.get("DEEPBLOCKS_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures")
)


@pytest.fixture
def shared_fixtures():
    """`../shared/fixtures`, or a clean skip where it is absent (a user's machine)."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)
