import io
import os
import pathlib
import socket
import tarfile

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


def _write_cifar10_download(data_dir, train, test):
    """Puts a CIFAR-10 binary archive where tensorflow-datasets caches its cifar10 download.

    The archive has the official layout (`cifar-10-batches-bin/data_batch_1..5.bin`,
    `test_batch.bin`: per image one label byte and 3072 pixel bytes, channel by channel),
    so tfds prepares `cifar10` from it with its own code, as from the 170 MB file.
    """
    tfds = pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.core.download import resource

    ((url, url_info),) = tfds.builder("cifar10").url_infos.items()
    archive = data_dir / "downloads" / "cifar10" / resource.get_dl_fname(url, url_info.checksum)
    archive.parent.mkdir(parents=True)

    def records(images, labels):
        pixels = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
        return np.concatenate([labels[:, None], pixels], axis=1).astype("uint8").tobytes()

    files = {"batches.meta.txt": "\n".join(f"class{i}" for i in range(10)).encode()}
    for index, part in enumerate(np.array_split(np.arange(len(train[0])), 5)):
        files[f"data_batch_{index + 1}.bin"] = records(train[0][part], train[1][part])
    files["test_batch.bin"] = records(*test)
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    resource.write_info_file(url, archive, "cifar10", "cifar-10-binary.tar.gz", url_info)


@pytest.fixture
def write_cifar10_download():
    """`write(data_dir, (images, labels), (images, labels))`: see `_write_cifar10_download`."""
    pytest.importorskip("tensorflow_datasets")
    return _write_cifar10_download


@pytest.fixture
def offline(monkeypatch):
    """Every download goes through a proxy at a closed local port, as on a machine offline."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, f"http://127.0.0.1:{port}")
    for variable in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
