"""Read a PyTorch state dict saved in the legacy (pre-1.6, non-zip) format, without PyTorch.

The file is a sequence of pickles followed by raw tensor storages:

    magic number | protocol version | system info | the state dict | storage keys | storages...

where the state dict pickle refers to storages by persistent id, and each storage is an int64
element count followed by its little-endian data, in the order of the storage keys.

A pickle can run any Python function it names, so the state dict is read by an Unpickler that
resolves only the few globals a state dict needs (OrderedDict, `torch._utils._rebuild_tensor_v2`,
the storage types), each mapped to a function of ours that builds plain data. Any other global
stops the load before it is called.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafePickleError(pickle.UnpicklingError):
    """The file names a Python global that a state dict does not need: refused, never called."""


class TorchFileError(ValueError):
    """The file is not a legacy PyTorch state dict this reader understands."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self):
        return np.dtype(STORAGE_DTYPES[self.name]).newbyteorder("<")


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """Stands in for torch._utils._rebuild_tensor_v2: remembers where the tensor's values are."""
    if not isinstance(storage, _StorageRef):
        raise TorchFileError("a tensor refers to something other than a storage")
    return _TensorRef(storage, int(storage_offset), tuple(int(v) for v in size), tuple(int(v) for v in stride))


class _NoGlobals(pickle.Unpickler):
    """For the header pickles (numbers, a dict of type sizes, a list of keys): no global at all."""

    def find_class(self, module, name):
        raise UnsafePickleError(f"the file names the Python global {module}.{name}, which a PyTorch state "
                                "dict does not need; refusing to load it (it could run arbitrary code)")


class _StateDictUnpickler(_NoGlobals):
    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise TorchFileError(f"unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if view_metadata is not None:
            raise TorchFileError("storage views (saved by PyTorch before 0.4) are not supported")
        return _StorageRef(str(key), storage_type.dtype, int(numel))


def _read_storages(stream: io.BufferedIOBase, refs: dict[str, _StorageRef], keys: list) -> dict[str, np.ndarray]:
    out = {}
    for key in keys:
        ref = refs.get(str(key))
        if ref is None:
            raise TorchFileError(f"storage {key} is listed but no tensor uses it")
        header = stream.read(8)
        if len(header) != 8:
            raise TorchFileError("the file ends before all storages were read (truncated?)")
        (numel,) = struct.unpack("<q", header)
        if numel != ref.numel:
            raise TorchFileError(f"storage {key} holds {numel} values, the state dict says {ref.numel}")
        data = stream.read(numel * ref.dtype.itemsize)
        if len(data) != numel * ref.dtype.itemsize:
            raise TorchFileError("the file ends before all storages were read (truncated?)")
        out[ref.key] = np.frombuffer(data, dtype=ref.dtype)
    return out


def _materialize(t: _TensorRef, storage: np.ndarray) -> np.ndarray:
    """The tensor as a C-contiguous array: tensors may be saved with any strides (these files
    keep TensorFlow's channels-last order), so index the storage by them."""
    if any(s < 0 for s in t.stride) or any(n < 0 for n in t.shape) or len(t.stride) != len(t.shape):
        raise TorchFileError(f"tensor with invalid shape {t.shape} / stride {t.stride}")
    last = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.stride)) if all(t.shape) else t.offset - 1
    if t.offset < 0 or last >= len(storage):
        raise TorchFileError(f"tensor of shape {t.shape} reaches past its storage ({len(storage)} values)")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[t.offset:], shape=t.shape,
                                           strides=tuple(s * item for s in t.stride), writeable=False)
    return np.array(view, dtype=storage.dtype.newbyteorder("="), order="C")  # a copy; keeps 0-d tensors 0-d


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """{parameter name: numpy array} from a legacy-format PyTorch state dict file."""
    path = Path(path)
    with open(path, "rb") as stream:
        if stream.read(4) == b"PK\x03\x04":
            raise TorchFileError(f"{path.name} is a zip-format PyTorch file (torch >= 1.6); only the legacy "
                                 "format is supported")
        stream.seek(0)
        try:
            magic = _NoGlobals(stream).load()
            if magic != MAGIC_NUMBER:
                raise TorchFileError(f"{path.name} is not a legacy PyTorch file (wrong magic number)")
            if _NoGlobals(stream).load() != PROTOCOL_VERSION:
                raise TorchFileError(f"{path.name}: unsupported PyTorch file protocol")
            sys_info = _NoGlobals(stream).load()
            if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
                raise TorchFileError(f"{path.name}: only little-endian files are supported")
            state = _StateDictUnpickler(stream).load()
            keys = _NoGlobals(stream).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
            if isinstance(exc, TorchFileError):
                raise
            raise TorchFileError(f"{path.name} is not a readable PyTorch state dict: {exc}") from None
        if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
            raise TorchFileError(f"{path.name} does not hold a state dict of tensors")
        refs = {t.storage.key: t.storage for t in state.values()}
        storages = _read_storages(stream, refs, list(keys))
    missing = set(refs) - set(storages)
    if missing:
        raise TorchFileError(f"{path.name}: storages {sorted(missing)[:3]} are missing")
    return collections.OrderedDict((name, _materialize(t, storages[t.storage.key])) for name, t in state.items())
