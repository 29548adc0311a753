"""Read `torch.save` checkpoints into NumPy arrays without importing torch.

A checkpoint is a pickle, and unpickling can call any importable function.
This reader allows only the few globals a tensor checkpoint needs
(`collections.OrderedDict`, torch's tensor-rebuild functions and storage
types, all replaced by NumPy stand-ins here) and refuses everything else with
`UnsafeCheckpointError`, before anything from the file is called.

A file must not be able to harm the process either:

- every object the pickle can reach is immutable or made for this load only,
  so no file changes how later files load (pickle's BUILD and SETITEM opcodes
  set attributes and items on whatever object the pickle names);
- sizes come from the file, so each is checked against the file's own bytes
  before anything is allocated: storage sizes, zip members (which could
  inflate far past the tensors they hold), tensor strides and offsets (which
  could make a few stored bytes read as a huge array).

Every refusal is an `UnsafeCheckpointError` or a `CheckpointFormatError`
(both `ValueError`s) naming the file.

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
import math
import os
import pickle
import pickletools
import reprlib
import struct
import zipfile
import zlib

import numpy as np

try:
    import lzma
except ImportError:  # Python built without it: zipfile cannot read LZMA members either
    lzma = None

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
ZIP_MAGIC = b"PK\x03\x04"

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    # NumPy has no bfloat16: read as raw 16-bit words, returned as float32.
    "BFloat16Storage": np.uint16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

# Bounds on what a file may make the reader allocate. A zip checkpoint written
# by torch stores its members uncompressed, so it inflates by a factor of 1.
MAX_INFLATION = 16  # bytes inflated from a zip / bytes of the file
MAX_OUTPUT_RATIO = 2  # bytes of the returned arrays / bytes of the storages
SLACK_BYTES = 1 << 20
MAX_DIMS = 32


class UnsafeCheckpointError(pickle.UnpicklingError, ValueError):
    """A checkpoint's pickle asks for something a weights file never needs."""


class CheckpointFormatError(ValueError):
    """The file is not a checkpoint this reader understands, or is damaged."""


class _Refused(Exception):
    """Raised by the stand-ins (which do not know the path); becomes UnsafeCheckpointError."""


class _Malformed(Exception):
    """Raised by the stand-ins; becomes CheckpointFormatError."""


def load_torch_checkpoint(path):
    """Reads a `torch.save` file; tensors come back as NumPy arrays.

    Args:
        path: Path of the checkpoint (legacy or zip layout).

    Returns:
        The saved object (typically a dict), with every tensor replaced by a
        `numpy.ndarray` (tensors that shared a view of one storage share one
        array; bfloat16 tensors come back as float32).

    Raises:
        UnsafeCheckpointError: the pickle refers to a global other than the
            allowed ones (it could run code), or misuses an allowed one.
        CheckpointFormatError: the file is not a torch checkpoint, is
            truncated or damaged, or declares sizes its bytes do not hold.
        OSError: the file cannot be read.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        # As torch.load decides: a zip checkpoint starts with a local file header.
        if file.read(4) != ZIP_MAGIC:
            file.seek(0)
            return _load_legacy(file.read(), path)
    return _load_zip(path, os.path.getsize(path))


class _Frozen:
    """Base of the stand-ins a file can reach: nothing from a file can change them.

    `__setstate__` is what pickle's BUILD calls; without `__dict__` (slots) and
    with `__setattr__` refused, no opcode can alter a stand-in.
    """

    __slots__ = ()

    def __setattr__(self, name, value):
        raise _Refused(f"the pickle tries to set attribute {name!r} of {self!r}.")

    def __delattr__(self, name):
        raise _Refused(f"the pickle tries to delete attribute {name!r} of {self!r}.")

    def __setstate__(self, state):
        raise _Refused(f"the pickle tries to change {self!r} (BUILD).")


class _StorageType(_Frozen):
    """Stand-in for `torch.FloatStorage` and friends: only names a dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", np.dtype(STORAGE_DTYPES[name]))

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage(_Frozen):
    """One storage of this load; its bytes arrive after the pickle (`set_data`)."""

    __slots__ = ("key", "storage_type", "numel", "_data")

    def __init__(self, key, storage_type, numel):
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "storage_type", storage_type)
        object.__setattr__(self, "numel", numel)
        object.__setattr__(self, "_data", None)

    @property
    def dtype(self):
        return self.storage_type.dtype

    @property
    def nbytes(self):
        return self.numel * self.dtype.itemsize

    @property
    def data(self):
        return self._data

    def set_data(self, buffer):
        object.__setattr__(self, "_data", np.frombuffer(buffer, self.dtype))

    def __repr__(self):
        return f"storage {self.key!r} ({self.storage_type!r}, {self.numel} elements)"


class _PendingTensor(_Frozen):
    """A checked view of a storage, turned into an array once the bytes are read."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        for name, value in zip(self.__slots__, (storage, offset, size, stride)):
            object.__setattr__(self, name, value)

    @property
    def view_key(self):
        return (self.storage.key, self.offset, self.size, self.stride)

    def __repr__(self):
        return f"tensor of size {self.size} and stride {self.stride} at offset {self.offset}"


class _RebuildTensor(_Frozen):
    """Stand-in for `torch._utils._rebuild_tensor` and `_rebuild_tensor_v2`."""

    __slots__ = ("name",)

    def __init__(self, name):
        object.__setattr__(self, "name", name)

    def __repr__(self):
        return f"torch._utils.{self.name}"

    def __call__(self, *args):
        # v2 adds requires_grad, backward hooks (an empty OrderedDict) and metadata.
        if not 4 <= len(args) <= 7:
            raise _Malformed(f"{self!r} got {len(args)} arguments instead of 4 to 7.")
        storage, offset, size, stride = args[:4]
        if not isinstance(storage, _Storage):
            raise _Refused(f"{self!r} got {type(storage).__name__} instead of a storage.")
        return _checked_tensor(storage, offset, size, stride)


class _OrderedDictType(_Frozen):
    """Stand-in for `collections.OrderedDict`: a new dict per call.

    Torch pickles call it with no argument and fill it with SETITEMS; Python 2
    pickles pass a list of pairs. A list may seed one dict only, so a small
    file cannot copy one long list into many dicts.
    """

    __slots__ = ("_seeds",)

    def __init__(self):
        # id -> list, holding each seed alive so that its id is not reused.
        object.__setattr__(self, "_seeds", {})

    def __repr__(self):
        return "collections.OrderedDict"

    def __call__(self, *args):
        if not args:
            return collections.OrderedDict()
        if len(args) > 1 or not isinstance(args[0], list) or id(args[0]) in self._seeds:
            raise _Refused("collections.OrderedDict called with arguments torch never uses.")
        self._seeds[id(args[0])] = args[0]
        return collections.OrderedDict(args[0])


def _allowed_globals():
    """The stand-ins of one load: shared by nothing else."""
    allowed = {
        ("collections", "OrderedDict"): _OrderedDictType(),
        ("torch._utils", "_rebuild_tensor"): _RebuildTensor("_rebuild_tensor"),
        ("torch._utils", "_rebuild_tensor_v2"): _RebuildTensor("_rebuild_tensor_v2"),
    }
    allowed.update({("torch", name): _StorageType(name) for name in STORAGE_DTYPES})
    return allowed


ALLOWED_GLOBALS = tuple(f"{module}.{name}" for module, name in _allowed_globals())


def _checked_tensor(storage, offset, size, stride):
    """Validates a view of `storage` before any of its bytes exist."""
    for name, value in (("size", size), ("stride", stride)):
        if not isinstance(value, tuple) or not all(type(v) is int for v in value):
            raise _Malformed(f"tensor rebuild got a bad {name}: {_short(value)}.")
    if type(offset) is not int or offset < 0:
        raise _Malformed(f"tensor rebuild got a bad storage offset: {_short(offset)}.")
    if len(size) != len(stride) or len(size) > MAX_DIMS:
        raise _Malformed(f"tensor rebuild got size {size} and stride {stride}.")
    if any(n < 0 for n in size):
        raise _Malformed(f"tensor rebuild got a negative size: {size}.")
    tensor = _PendingTensor(storage, offset, size, stride)
    if 0 in size:
        return tensor
    # Dimensions of length 1 never step, whatever their stride. The others
    # must not overlap (an expanded tensor would turn a few stored bytes into
    # an array of any size): sorted by stride, each must step past the span
    # of the smaller ones. Every real weight tensor, transposed or sliced,
    # satisfies this.
    span = 1
    for n, s in sorted(((n, s) for n, s in zip(size, stride) if n > 1), key=lambda d: d[1]):
        if s < span:
            raise _Malformed(
                f"{tensor!r} overlaps itself (zero, negative or overlapping strides); "
                "save a `.contiguous()` copy."
            )
        span += (n - 1) * s
    if offset + span > storage.numel:
        raise _Malformed(f"{tensor!r} does not fit its {storage!r}.")
    return tensor


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path, storages):
        super().__init__(file)
        self.path = path
        self.storages = storages
        self.allowed = _allowed_globals()

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except (KeyError, TypeError):
            raise UnsafeCheckpointError(
                f"Refusing to load {self.path}: its pickle refers to "
                f"`{_short(module)}.{_short(name)}`, which a weights checkpoint does not need "
                "(loading it could run code from the file). Allowed: "
                + ", ".join(ALLOWED_GLOBALS)
                + "."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise _Refused(f"unexpected persistent id {_short(pid)}.")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType) or type(numel) is not int or numel < 0:
            raise _Refused(f"unexpected storage {_short(pid)}.")
        if not isinstance(key, (str, int)):
            raise _Malformed(f"unexpected storage key {_short(key)}.")
        if len(pid) > 5 and pid[5] is not None:
            raise _Malformed("storage views are not supported.")
        key = str(key)
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, storage_type, numel)
        elif storage.storage_type.name != storage_type.name or storage.numel != numel:
            raise _Malformed(
                f"storage {key!r} is declared both as {storage!r} and as "
                f"{storage_type!r} of {numel} elements."
            )
        return storage


# Everything the C unpickler raises on bytes that are not a valid pickle, or on
# a valid pickle that calls an allowed stand-in the wrong way.
_UNPICKLING_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    MemoryError,
    OverflowError,
    RecursionError,
    struct.error,
)


_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
# Protocol 5's out-of-band buffers: torch never writes them (it pickles with protocol 2).
_BUFFER_OPCODES = {"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"}


def _scan(stream):
    """Walks the opcodes of the pickle at `stream`'s position without running any.

    The C unpickler trusts sizes in the stream: `LONG_BINPUT 1000000000`
    (5 bytes) makes it allocate and zero a 16 GB memo table, and a long
    `BINBYTES8` is allocated before it is found to be truncated. pickletools
    reads arguments only as far as the stream holds them; memo indices must
    stay below the number of opcodes so far, as a pickler numbers them.
    Leaves `stream` where it was.
    """
    start = stream.tell()
    count = 0
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            count += 1
            if opcode.name in _MEMO_PUTS and not 0 <= arg <= count:
                raise _Malformed(f"its pickle stores memo entry {arg} after {count} opcodes.")
            if opcode.name in _BUFFER_OPCODES:
                raise _Refused(f"its pickle uses out-of-band buffers ({opcode.name}).")
    except ValueError as error:  # a truncated argument, an unknown opcode, no STOP
        raise _Malformed(_short(str(error))) from None
    stream.seek(start)


def _unpickle(stream, path, storages=None):
    try:
        _scan(stream)
        return _RestrictedUnpickler(stream, path, {} if storages is None else storages).load()
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except _Refused as error:
        raise UnsafeCheckpointError(f"Refusing to load {path}: {error}") from None
    except _Malformed as error:
        raise CheckpointFormatError(f"{path} is not a readable torch checkpoint: {error}") from None
    except MemoryError:
        raise CheckpointFormatError(
            f"{path} is not a readable torch checkpoint: its pickle declares an object "
            "larger than memory."
        ) from None
    except _UNPICKLING_ERRORS as error:
        raise CheckpointFormatError(
            f"{path} is not a readable torch checkpoint: {type(error).__name__}: "
            f"{_short(str(error))}"
        ) from None


def _load_legacy(data, path):
    file = io.BytesIO(data)  # shares `data`; every read is bounded by the file's bytes
    magic = _unpickle(file, path)
    if type(magic) is not int or magic != LEGACY_MAGIC_NUMBER:
        raise CheckpointFormatError(
            f"{path} is not a torch checkpoint (no torch.save magic number)."
        )
    protocol = _unpickle(file, path)
    if type(protocol) is not int or protocol != LEGACY_PROTOCOL_VERSION:
        raise CheckpointFormatError(f"{path}: unsupported torch.save protocol {_short(protocol)}.")
    sys_info = _unpickle(file, path)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian", True) is not True:
        raise CheckpointFormatError(f"{path}: only little-endian checkpoints are supported.")
    storages = {}
    result = _unpickle(file, path, storages)
    keys = _unpickle(file, path)
    if not isinstance(keys, list) or not all(isinstance(k, (str, int)) for k in keys):
        raise CheckpointFormatError(f"{path}: bad storage key list.")
    keys = [str(key) for key in keys]
    if len(set(keys)) != len(keys):
        raise CheckpointFormatError(f"{path}: a storage key is listed twice.")
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise CheckpointFormatError(f"{path}: storage {key!r} is not used by any tensor.")
        (count,) = struct.unpack("<q", _read_exactly(file, 8, path))
        if count != storage.numel:
            raise CheckpointFormatError(f"{path}: {storage!r} is stored with {count} elements.")
        start = file.tell()
        if storage.nbytes > len(data) - start:
            raise CheckpointFormatError(
                f"{path} is truncated: {storage!r} needs {storage.nbytes} bytes, "
                f"{len(data) - start} are left in the file."
            )
        storage.set_data(memoryview(data)[start : start + storage.nbytes])
        file.seek(start + storage.nbytes)
    return _materialize(result, path, storages)


def _load_zip(path, file_size):
    budget = MAX_INFLATION * file_size + SLACK_BYTES
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            pickles = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise CheckpointFormatError(f"{path} is a zip file but not a torch checkpoint.")
            prefix = pickles[0][: -len("data.pkl")]
            byteorder = infos.get(prefix + "byteorder")
            if byteorder is not None and byteorder.file_size < 16:
                if archive.read(byteorder).strip() not in (b"", b"little"):
                    raise CheckpointFormatError(
                        f"{path}: only little-endian checkpoints are supported."
                    )
            budget = _check_inflation(infos[pickles[0]], None, budget, path)
            storages = {}
            result = _unpickle(io.BytesIO(archive.read(pickles[0])), path, storages)
            for key, storage in storages.items():
                info = infos.get(f"{prefix}data/{key}")
                if info is None:
                    raise CheckpointFormatError(
                        f"{path}: storage file {prefix}data/{key} is missing."
                    )
                budget = _check_inflation(info, storage, budget, path)
                storage.set_data(archive.read(info))
    except (UnsafeCheckpointError, CheckpointFormatError, FileNotFoundError, PermissionError):
        raise
    except _ZIP_ERRORS as error:
        raise CheckpointFormatError(
            f"{path} is a damaged zip checkpoint: {type(error).__name__}: {_short(str(error))}"
        ) from None
    return _materialize(result, path, storages)


# BadZipFile: a bad header or CRC; RuntimeError: an encrypted member;
# NotImplementedError: an unknown compression method; zlib.error, OSError (bz2)
# and LZMAError: a damaged compressed member.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    OSError,
    struct.error,
    OverflowError,
    zlib.error,
) + ((lzma.LZMAError,) if lzma else ())


def _check_inflation(info, storage, budget, path):
    """The budget left after reading zip member `info`; refuses it before inflating."""
    if storage is not None and info.file_size != storage.nbytes:
        raise CheckpointFormatError(
            f"{path}: zip member {info.filename} holds {info.file_size} bytes, but its "
            f"{storage!r} needs {storage.nbytes}."
        )
    if info.file_size > budget:
        raise CheckpointFormatError(
            f"{path}: zip member {info.filename} inflates to {info.file_size} bytes, "
            f"far more than a {os.path.getsize(path)}-byte torch checkpoint holds."
        )
    return budget - info.file_size


def _read_exactly(file, size, path):
    data = file.read(size)
    if len(data) != size:
        raise CheckpointFormatError(f"{path} is truncated.")
    return data


def _materialize(value, path, storages):
    """Replaces every pending tensor in nested dicts/lists/tuples by an array."""
    storage_bytes = sum(s.nbytes for s in storages.values())
    state = {
        "arrays": {},  # view key -> array: one array per distinct view, as torch shares
        "done": {},  # id(container) -> result: a pickle's shared references stay shared
        "open": set(),
        "budget": MAX_OUTPUT_RATIO * storage_bytes + SLACK_BYTES,
        "path": path,
    }
    try:
        return _materialize_value(value, state)
    except RecursionError:
        raise CheckpointFormatError(f"{path}: the saved object is nested too deeply.") from None


def _materialize_value(value, state):
    if isinstance(value, _PendingTensor):
        return _to_numpy(value, state)
    if isinstance(value, _Frozen):
        # A storage or storage type outside a tensor: torch never saves one in a state_dict.
        raise CheckpointFormatError(f"{state['path']}: holds a bare {value!r}, not a tensor.")
    if not isinstance(value, (dict, list, tuple)):
        return value
    if id(value) in state["done"]:
        return state["done"][id(value)]
    if id(value) in state["open"]:
        raise CheckpointFormatError(f"{state['path']}: the saved object contains itself.")
    state["open"].add(id(value))
    if isinstance(value, dict):
        result = type(value)((k, _materialize_value(v, state)) for k, v in value.items())
    else:
        result = type(value)(_materialize_value(v, state) for v in value)
    state["open"].discard(id(value))
    state["done"][id(value)] = result
    return result


def _to_numpy(tensor, state):
    path = state["path"]
    known = state["arrays"].get(tensor.view_key)
    if known is not None:
        return known
    storage = tensor.storage
    data = storage.data
    if data is None:
        raise CheckpointFormatError(f"{path}: {storage!r} has no data.")
    itemsize = 4 if storage.storage_type.name == "BFloat16Storage" else data.itemsize
    nbytes = math.prod(tensor.size) * itemsize
    if nbytes > state["budget"]:
        raise CheckpointFormatError(
            f"{path}: its tensors add up to far more bytes than its storages hold."
        )
    state["budget"] -= nbytes
    if 0 in tensor.size:
        array = np.zeros(tensor.size, data.dtype)
    else:
        view = np.lib.stride_tricks.as_strided(
            data[tensor.offset :],
            shape=tensor.size,
            # A length-1 dimension never steps; its stride may be anything.
            strides=[s * data.itemsize if n > 1 else 0 for n, s in zip(tensor.size, tensor.stride)],
            writeable=False,
        )
        array = np.array(view)
    if storage.storage_type.name == "BFloat16Storage":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    state["arrays"][tensor.view_key] = array
    return array


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40


def _short(value, limit=80):
    """A bounded description of a value from the file, for messages."""
    text = value if isinstance(value, str) else _REPR.repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
