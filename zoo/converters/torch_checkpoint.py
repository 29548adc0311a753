"""Read `torch.save` checkpoints into NumPy arrays without importing torch.

A checkpoint is a pickle, and unpickling can call any importable function.
This reader allows only the few globals a tensor checkpoint needs
(`collections.OrderedDict`, torch's tensor-rebuild functions and storage
types, all replaced by NumPy stand-ins here) and refuses everything else with
`UnsafeCheckpointError`, before anything from the file is called.

Two layouts are read:

- the legacy one (torch < 1.6, and `_use_new_zipfile_serialization=False`):
  five pickles in a row (magic number, protocol version, system info, the
  object, the storage keys) followed by each storage's raw bytes, prefixed by
  its element count;
- the zip one (torch >= 1.6): `ARCHIVE/data.pkl` plus one `ARCHIVE/data/KEY`
  file per storage.
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle asks for something a weights file never needs."""


class CheckpointFormatError(ValueError):
    """The file is not a checkpoint this reader understands."""


def load_torch_checkpoint(path):
    """Reads a `torch.save` file; tensors come back as NumPy arrays.

    Args:
        path: Path of the checkpoint (legacy or zip layout).

    Returns:
        The saved object (typically a dict), with every tensor replaced by a
        `numpy.ndarray`.

    Raises:
        UnsafeCheckpointError: the pickle refers to a global other than the
            allowed ones (it could run code), or misuses an allowed one.
        CheckpointFormatError: the file is not a torch checkpoint, or is
            truncated.
    """
    path = str(path)
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    with open(path, "rb") as file:
        return _load_legacy(file, path)


class _StorageType:
    """Stand-in for `torch.FloatStorage` and friends: only names a dtype."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage:
    def __init__(self, key, dtype, numel):
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.data = None


class _PendingTensor:
    """A tensor whose storage bytes come after the pickle (legacy layout)."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride

    def to_numpy(self, path):
        data = self.storage.data
        if data is None:
            raise CheckpointFormatError(f"{path}: storage {self.storage.key!r} has no data.")
        if not self.size:
            return data[self.offset].copy() if data.size > self.offset else np.zeros((), data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, data.dtype)
        if self.offset < 0 or min(self.stride) < 0 or last >= data.size:
            raise CheckpointFormatError(
                f"{path}: tensor of size {self.size} and stride {self.stride} at "
                f"offset {self.offset} does not fit its storage of {data.size} elements."
            )
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=[s * data.itemsize for s in self.stride],
            writeable=False,
        )
        return np.array(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError(
            f"tensor rebuild got {type(storage).__name__} instead of a storage."
        )
    for name, value in (("size", size), ("stride", stride)):
        if not isinstance(value, tuple) or not all(isinstance(v, int) for v in value):
            raise UnsafeCheckpointError(f"tensor rebuild got a bad {name}: {value!r}.")
    if not isinstance(storage_offset, int) or len(size) != len(stride):
        raise UnsafeCheckpointError("tensor rebuild got a bad offset or stride.")
    return _PendingTensor(storage, storage_offset, size, stride)


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    # v2 adds requires_grad, backward hooks (an empty OrderedDict) and metadata.
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
}
ALLOWED_GLOBALS.update(
    {("torch", name): _StorageType(name) for name in STORAGE_DTYPES}
)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path, storages):
        super().__init__(file)
        self.path = path
        self.storages = storages

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"Refusing to load {self.path}: its pickle refers to "
                f"`{module}.{name}`, which a weights checkpoint does not need "
                "(loading it could run code from the file). Allowed: "
                + ", ".join(f"{m}.{n}" for m, n in ALLOWED_GLOBALS)
                + "."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafeCheckpointError(f"{self.path}: unexpected persistent id {pid!r}.")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int):
            raise UnsafeCheckpointError(f"{self.path}: unexpected storage {pid!r}.")
        if len(pid) > 5 and pid[5] is not None:
            raise CheckpointFormatError(f"{self.path}: storage views are not supported.")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype, numel)
        return self.storages[key]


def _unpickle(file, path, storages=None):
    try:
        return _RestrictedUnpickler(file, path, {} if storages is None else storages).load()
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, ValueError) as error:
        # TypeError/AttributeError: an allowed object called with arguments a
        # real checkpoint never uses.
        raise CheckpointFormatError(
            f"{path} is not a readable torch checkpoint: {error}"
        ) from error


def _load_legacy(file, path):
    magic = _unpickle(file, path)
    if magic != LEGACY_MAGIC_NUMBER:
        raise CheckpointFormatError(
            f"{path} is not a torch checkpoint (no torch.save magic number)."
        )
    protocol = _unpickle(file, path)
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise CheckpointFormatError(f"{path}: unsupported torch.save protocol {protocol!r}.")
    sys_info = _unpickle(file, path)
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise CheckpointFormatError(f"{path}: only little-endian checkpoints are supported.")
    storages = {}
    result = _unpickle(file, path, storages)
    keys = _unpickle(file, path)
    if not isinstance(keys, list):
        raise CheckpointFormatError(f"{path}: bad storage key list.")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise CheckpointFormatError(f"{path}: storage {key!r} is not used by any tensor.")
        (count,) = struct.unpack("<q", _read_exactly(file, 8, path))
        size = count * storage.dtype.itemsize
        storage.data = np.frombuffer(_read_exactly(file, size, path), storage.dtype)
    return _materialize(result, path)


def _load_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointFormatError(f"{path} is a zip file but not a torch checkpoint.")
        prefix = pickles[0][: -len("data.pkl")]
        storages = {}
        result = _unpickle(io.BytesIO(archive.read(pickles[0])), path, storages)
        for key, storage in storages.items():
            member = f"{prefix}data/{key}"
            if member not in names:
                raise CheckpointFormatError(f"{path}: storage file {member} is missing.")
            storage.data = np.frombuffer(archive.read(member), storage.dtype)
    return _materialize(result, path)


def _read_exactly(file, size, path):
    data = file.read(size)
    if len(data) != size:
        raise CheckpointFormatError(f"{path} is truncated.")
    return data


def _materialize(value, path):
    """Replaces every pending tensor in nested dicts/lists/tuples by an array."""
    if isinstance(value, _PendingTensor):
        return value.to_numpy(path)
    if isinstance(value, dict):
        return type(value)((k, _materialize(v, path)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_materialize(v, path) for v in value)
    if isinstance(value, _Storage):
        raise CheckpointFormatError(f"{path}: bare storages are not supported.")
    return value
