"""The torch-free reader of torch.save checkpoints: exact tensors, and refusal of code."""

import collections
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


# --- files crafted to attack the reader ---------------------------------------


def enc(value):
    """The pickle opcodes that push `value` (protocol 2, without PROTO and STOP)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def glob(module, name):
    return f"c{module}\n{name}\n".encode()


def storage_pid(numel, key="0", storage="FloatStorage"):
    """Pushes the storage a tensor refers to (BINPERSID of torch's storage tuple)."""
    fields = enc("storage") + glob("torch", storage) + enc(key) + enc("cpu") + enc(numel)
    return b"(" + fields + b"Nt" + b"Q"


def rebuilt_tensor(numel, offset, size, stride, key="0", storage="FloatStorage"):
    args = storage_pid(numel, key, storage) + enc(offset) + enc(size) + enc(stride)
    return glob("torch._utils", "_rebuild_tensor") + b"(" + args + b"tR"


def pickled(body):
    return b"\x80\x02" + body + b"."


def tensor_dict(*tensors):
    """Pickle of {"t0": tensor, "t1": ...} from `rebuilt_tensor` fragments."""
    items = b"".join(enc(f"t{i}") + fragment for i, fragment in enumerate(tensors))
    return pickled(b"}(" + items + b"u")


def legacy_with_storage(payload, count, data, key="0"):
    """A legacy file with one storage `key`: its element count, then `data`."""
    header = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}]
    pickles = b"".join(pickle.dumps(item, protocol=2) for item in header)
    return pickles + payload + pickle.dumps([key], protocol=2) + struct.pack("<q", count) + data


def zip_checkpoint(payload, members=(), compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        archive.writestr("archive/data.pkl", payload)
        for name, data in members:
            archive.writestr(f"archive/data/{name}", data)
    return buffer.getvalue()


def assert_same_as_torch(path):
    loaded = load_torch_checkpoint(path)["state_dict"]
    for key, tensor in torch.load(path, weights_only=True)["state_dict"].items():
        np.testing.assert_array_equal(loaded[key], tensor.numpy(), err_msg=key)


def test_both_errors_are_value_errors():
    # The CLI and users catch ValueError for bad input files.
    assert issubclass(UnsafeCheckpointError, ValueError)
    assert issubclass(CheckpointFormatError, ValueError)
    assert issubclass(UnsafeCheckpointError, pickle.UnpicklingError)


def test_a_file_cannot_change_how_later_files_load(tmp_path):
    # BUILD sets attributes on the object below it; the reader used to hand
    # out shared stand-ins, so this file turned every later float32 storage
    # into int8 bytes.
    retype_floats = pickled(glob("torch", "FloatStorage") + enc({"dtype": "b"}) + b"b")
    targets = {
        "storage_type": glob("torch", "FloatStorage"),
        "rebuild_function": glob("torch._utils", "_rebuild_tensor"),
        "ordered_dict_class": glob("collections", "OrderedDict"),
        "storage": storage_pid(4),
        "checked_tensor": rebuilt_tensor(4, 0, (4,), (1,)),
    }
    states = [
        {"dtype": "b", "numel": 10**9, "size": (9**9,), "__defaults__": (0,)},
        (None, {"dtype": "b", "numel": 10**9, "size": (9**9,), "__defaults__": (0,)}),
    ]
    for name, target in targets.items():
        for index, state in enumerate(states):  # BUILD with a dict, and with slot state
            path = tmp_path / f"{name}_{index}.th"
            path.write_bytes(legacy_with_storage(pickled(target + enc(state) + b"b"), 4, bytes(16)))
            with pytest.raises((UnsafeCheckpointError, CheckpointFormatError), match=path.name):
                load_torch_checkpoint(path)
    path = tmp_path / "retype_floats.th"
    path.write_bytes(legacy_file(retype_floats))
    with pytest.raises(UnsafeCheckpointError, match="retype_floats"):
        load_torch_checkpoint(path)
    for zip_format in (True, False):
        path = tmp_path / f"genuine_{zip_format}.th"
        torch.save(sample_state(), path, _use_new_zipfile_serialization=zip_format)
        assert_same_as_torch(path)


def resource_attacks():
    """name -> (file bytes, what the message says): each once made the reader misbehave."""
    ones = np.ones(1, np.float32).tobytes()
    zeros = bytes(24 << 20)
    return {
        # 4 bytes read as a 4096 x 4096 array: 64 MiB.
        "zero_strides": (
            legacy_with_storage(tensor_dict(rebuilt_tensor(1, 0, (4096, 4096), (0, 0))), 1, ones),
            "overlaps itself",
        ),
        "overlapping_strides": (
            legacy_with_storage(
                tensor_dict(rebuilt_tensor(8192, 0, (4096, 4096), (1, 1))), 8192, bytes(32768)
            ),
            "overlaps itself",
        ),
        "huge_storage_count": (
            legacy_with_storage(tensor_dict(rebuilt_tensor(1, 0, (1,), (1,))), 2**40, ones),
            "stored with 1099511627776 elements",
        ),
        "huge_storage": (
            legacy_with_storage(tensor_dict(rebuilt_tensor(2**40, 0, (1,), (1,))), 2**40, ones),
            "truncated",
        ),
        "inflating_storage": (
            zip_checkpoint(tensor_dict(rebuilt_tensor(1, 0, (1,), (1,))), [("0", zeros)]),
            "holds 25165824 bytes",
        ),
        "storage_larger_than_member": (
            zip_checkpoint(tensor_dict(rebuilt_tensor(2**30, 0, (1,), (1,))), [("0", ones)]),
            "needs 4294967296",
        ),
        "inflating_pickle": (
            zip_checkpoint(pickled(b"N0" * (12 << 20) + b"N")),
            "inflates to",
        ),
        "negative_size": (
            legacy_with_storage(tensor_dict(rebuilt_tensor(4, 0, (-4,), (1,))), 4, bytes(16)),
            "negative size",
        ),
        "negative_offset": (
            legacy_with_storage(tensor_dict(rebuilt_tensor(4, -1, (4,), (1,))), 4, bytes(16)),
            "storage offset",
        ),
        "scalar_past_the_end": (
            legacy_with_storage(tensor_dict(rebuilt_tensor(1, 5, (), ())), 1, ones),
            "does not fit",
        ),
        "huge_bytes_object": (
            legacy_file(b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc."),
            "not a readable",
        ),
        # 5 bytes that make the C unpickler allocate and zero a 128 MiB memo table
        # (LONG_BINPUT 10**9: 16 GB).
        "huge_memo_index": (legacy_file(pickled(b"N" + b"r" + struct.pack("<I", 2**23))), "memo"),
        "cycle": (legacy_file(pickled(b"]q\x00h\x00a")), "contains itself"),
        "two_dtypes_one_storage": (
            legacy_with_storage(
                tensor_dict(
                    rebuilt_tensor(2, 0, (2,), (1,)),
                    rebuilt_tensor(2, 0, (2,), (1,), storage="LongStorage"),
                ),
                2,
                bytes(8),
            ),
            "declared both",
        ),
        # One list copied into many dicts: a small file, a huge object.
        "copied_list": (
            legacy_file(
                pickled(
                    enc([(i, i) for i in range(1000)])
                    + b"q\x07("
                    + (glob("collections", "OrderedDict") + b"h\x07\x85R") * 500
                    + b"l"
                )
            ),
            "OrderedDict",
        ),
    }


def test_files_that_claim_more_than_they_hold_are_refused_cheaply(tmp_path):
    """Each crafted file: our error naming the file, and no big allocation."""
    import tracemalloc

    problems = []
    for name, (data, message) in resource_attacks().items():
        path = tmp_path / f"{name}.th"
        path.write_bytes(data)
        tracemalloc.start()
        try:
            load_torch_checkpoint(path)
            problems.append(f"{name}: loaded")
        except (UnsafeCheckpointError, CheckpointFormatError) as error:
            if str(path) not in str(error) or message not in str(error):
                problems.append(f"{name}: message {error}")
        except Exception as error:  # noqa: BLE001 - any other type is the failure
            problems.append(f"{name}: {type(error).__name__}: {error}")
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        if peak > 4 << 20:
            problems.append(f"{name}: allocated {peak / 2**20:.0f} MiB")
    assert problems == []


def test_shared_references_stay_shared_and_cheap(tmp_path):
    # Each level holds the one below twice: 2**depth paths to the same list.
    def nested(depth):
        return pickled(b"]" + b"q\x00(h\x00h\x00lq\x00" * depth)

    path = tmp_path / "shared.th"
    path.write_bytes(legacy_file(nested(8)))
    loaded = load_torch_checkpoint(path)
    assert loaded[0] is loaded[1]
    # 2**200 paths: only keeping the sharing makes it readable.
    path.write_bytes(legacy_file(nested(200)))
    loaded = load_torch_checkpoint(path)
    assert loaded[0] is loaded[1] and loaded[0][0] is loaded[1][1]


@pytest.mark.parametrize("layout", ["legacy", "zip", "deflated_zip"])
def test_damaged_checkpoints_raise_only_checkpoint_errors(tmp_path, layout):
    """Truncations and bit flips: a correct load or one of our two errors, nothing else."""
    source = tmp_path / "source.th"
    state = sample_state()
    state["state_dict"]["bn.num_batches_tracked"] = torch.tensor(7)
    torch.save(state, source, _use_new_zipfile_serialization=layout != "legacy")
    data = source.read_bytes()
    if layout == "deflated_zip":  # torch stores; a user may re-zip with compression
        with zipfile.ZipFile(source) as original, zipfile.ZipFile(
            tmp_path / "deflated.th", "w", zipfile.ZIP_DEFLATED
        ) as deflated:
            for name in original.namelist():
                deflated.writestr(name, original.read(name))
        data = (tmp_path / "deflated.th").read_bytes()
        assert_same_as_torch(tmp_path / "deflated.th")
    rng = np.random.default_rng(len(layout))
    damaged = [data[:cut] for cut in np.linspace(0, len(data) - 1, 60).astype(int)]
    for position in rng.integers(0, len(data), 150):
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(0, 8))
        damaged.append(bytes(flipped))
    path = tmp_path / "damaged.th"
    outcomes = collections.Counter()
    for content in damaged:
        path.write_bytes(content)
        try:
            load_torch_checkpoint(path)
            outcomes["loaded"] += 1
        except (UnsafeCheckpointError, CheckpointFormatError) as error:
            assert str(path) in str(error)
            outcomes[type(error).__name__] += 1
    assert outcomes["CheckpointFormatError"] > 50, outcomes
