"""The torch-free reader of torch.save checkpoints: exact tensors, and refusal of code."""

import io
import pickle
import struct
import zipfile

import numpy as np
import pytest

from keras_deepblocks.zoo.converters import CheckpointFormatError
from keras_deepblocks.zoo.converters import UnsafeCheckpointError
from keras_deepblocks.zoo.converters import load_torch_checkpoint

torch = pytest.importorskip("torch")


def sample_state():
    generator = torch.Generator().manual_seed(0)
    return {
        "best_prec1": 91.5,
        "state_dict": {
            "conv.weight": torch.randn(4, 3, 3, 3, generator=generator),
            "linear.weight": torch.randn(5, 6, generator=generator).t(),  # not contiguous
            "half": torch.randn(7, generator=generator).half(),
            "steps": torch.tensor(12345678901, dtype=torch.int64),
            "shared_view": torch.arange(10.0)[2:8],  # offset into a storage
        },
    }


@pytest.mark.parametrize("zip_format", [False, True])
def test_reads_tensors_exactly_like_torch(tmp_path, zip_format):
    path = tmp_path / "checkpoint.th"
    torch.save(sample_state(), path, _use_new_zipfile_serialization=zip_format)
    loaded = load_torch_checkpoint(path)
    reference = torch.load(path, weights_only=True)
    assert loaded["best_prec1"] == 91.5
    assert list(loaded["state_dict"]) == list(reference["state_dict"])
    for key, tensor in reference["state_dict"].items():
        array = loaded["state_dict"][key]
        assert array.dtype == tensor.numpy().dtype, key
        np.testing.assert_array_equal(array, tensor.numpy(), err_msg=key)


def test_reads_the_published_checkpoint(shared_fixtures):
    path = shared_fixtures / "resnet_cifar_torch" / "resnet20-12fca82f.th"
    loaded = load_torch_checkpoint(path)["state_dict"]
    reference = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert list(loaded) == list(reference)
    for key, tensor in reference.items():
        np.testing.assert_array_equal(loaded[key], tensor.numpy(), err_msg=key)


class RunsCode:
    """Unpickling this would execute `open(MARKER, "w")`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def legacy_file(payload):
    """A legacy torch.save layout whose object pickle is `payload`."""
    header = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}]
    pickles = [pickle.dumps(item, protocol=2) for item in header]
    return b"".join(pickles) + payload + pickle.dumps([], protocol=2)


def test_refuses_a_legacy_checkpoint_that_runs_code(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.th"
    path.write_bytes(legacy_file(pickle.dumps({"state_dict": RunsCode(marker)}, protocol=2)))
    with pytest.raises(UnsafeCheckpointError, match=r"\.exec`"):
        load_torch_checkpoint(path)
    assert not marker.exists()
    # The same file really runs code with a plain unpickler.
    with open(path, "rb") as file:
        for _ in range(3):
            pickle.load(file)
        pickle.load(file)
    assert marker.exists()


def test_refuses_a_zip_checkpoint_that_runs_code(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(RunsCode(marker), protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="exec"):
        load_torch_checkpoint(path)
    assert not marker.exists()


def test_refuses_calling_an_allowed_global_with_a_foreign_object(tmp_path):
    # torch._utils._rebuild_tensor is allowed, but only on a storage:
    # _rebuild_tensor(0, 0, (), ()).
    payload = b"\x80\x02ctorch._utils\n_rebuild_tensor\n(K\x00K\x00))tR."
    path = tmp_path / "evil.th"
    path.write_bytes(legacy_file(payload))
    with pytest.raises(UnsafeCheckpointError, match="int instead of a storage"):
        load_torch_checkpoint(path)


def test_truncated_and_foreign_files_get_clear_errors(tmp_path):
    path = tmp_path / "checkpoint.th"
    torch.save(sample_state(), path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    with pytest.raises(CheckpointFormatError, match="truncated"):
        load_torch_checkpoint(path)
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointFormatError, match="not a torch checkpoint"):
        load_torch_checkpoint(path)
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointFormatError):
        load_torch_checkpoint(path)
