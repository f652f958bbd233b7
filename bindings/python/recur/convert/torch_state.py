"""Reads PyTorch ``torch.save`` files (the zip format of PyTorch ≥ 1.6) without PyTorch.

The archive holds ``<name>/data.pkl`` (a pickle whose tensors refer to storages by key) and one raw,
little-endian file per storage, ``<name>/data/<key>``. Every member is read in bounded steps after its
declared size has been checked against the conversion's memory budget (``common.Budget``). The pickle is
read by :class:`_TensorUnpickler`, which executes nothing: ``find_class`` maps the handful of globals a state_dict needs to local stand-ins
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``, ``torch._utils._rebuild_parameter``,
``torch.FloatStorage`` and the other storage types) and refuses every other global with a
:class:`ConvertError` that names it. Tensors come back as read-only numpy views of their storage; elements
that several tensors read (tied weights, or a crafted file whose every tensor views one storage) are
charged to the budget once per extra reader, since each tensor becomes its own tensor of the output.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from typing import Optional

from .common import Budget, ConvertError, read_member, shape_bytes, zip_errors

# torch.<Name>Storage → numpy dtype (little-endian).
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}

_MAX_ELEMENTS = 1 << 32


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]

    @property
    def itemsize(self) -> int:
        return 2 if self.dtype == "bfloat16" else self.dtype.itemsize


class _Storage:
    """A storage's elements as a flat numpy array (float32 for bfloat16), and the element ranges
    [first, last + 1) and element counts of the tensors made from it."""

    def __init__(self, array: np.ndarray, key: str):
        self.array = array
        self.key = key
        self.spans: list = []
        self.elements = 0

    def shared_bytes(self) -> int:
        """Bytes the tensors of this storage read beyond the union of their ranges (0 when no element
        is read by two tensors)."""
        union, end = 0, -1
        for lo, hi in sorted(self.spans):
            if hi > end:
                union += hi - max(lo, end) if lo < end else hi - lo
                end = hi
        return (self.elements - union) * self.array.itemsize


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, _Storage):
        raise ConvertError("the pickle rebuilds a tensor from something that is not a storage")
    if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)):
        raise ConvertError("the pickle gives a tensor a malformed size or stride")
    shape_bytes(list(size), 1, "a tensor of the pickle")
    if (len(size) != len(stride) or isinstance(storage_offset, bool) or not isinstance(storage_offset, int)
            or any(isinstance(s, bool) or not isinstance(s, int) for s in stride)):
        raise ConvertError("the pickle gives a tensor a malformed size or stride")
    size, stride, offset = tuple(size), tuple(stride), storage_offset
    if any(s < 0 for s in stride) or offset < 0:
        raise ConvertError(f"tensor with size {list(size)} and stride {list(stride)} is malformed")
    flat = storage.array
    count = 1
    for n in size:
        count *= n
    if count == 0:
        return np.zeros(size, dtype=flat.dtype)
    if count > flat.shape[0]:
        raise ConvertError(f"a tensor of size {list(size)} has more elements than its storage '{storage.key}' "
                           f"({flat.shape[0]}); tensors with overlapping strides are not supported")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= flat.shape[0]:
        raise ConvertError(f"a tensor of size {list(size)} reaches element {last} of storage '{storage.key}', "
                           f"which has {flat.shape[0]} elements")
    storage.spans.append((offset, last + 1))
    storage.elements += count
    return np.lib.stride_tricks.as_strided(flat[offset:], shape=size,
                                           strides=tuple(s * flat.itemsize for s in stride), writeable=False)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *rest):
    return data


def _bfloat16_to_f32(raw: bytes) -> np.ndarray:
    u16 = np.frombuffer(raw, dtype="<u2")
    return (u16.astype(np.uint32) << 16).view(np.float32)


class _TensorUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, origin: str, budget: Budget):
        super().__init__(file)
        self.archive = archive
        self.prefix = prefix
        self.origin = origin
        self.budget = budget
        self.storages: dict = {}

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        hint = ""
        if module == "__main__" or module.startswith("torch.nn"):
            hint = "; the file holds a pickled object, not a state_dict: save model.state_dict() instead"
        raise ConvertError(f"{self.origin}: refused to load the pickled global '{module}.{name}' (only tensors, "
                           f"storages and OrderedDict are allowed){hint}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ConvertError(f"{self.origin}: unsupported persistent reference {str(pid)[:80]}")
        stype, key, _location, numel = pid[1], str(pid[2]), pid[3], pid[4]
        if not isinstance(stype, _StorageType):
            raise ConvertError(f"{self.origin}: storage '{key}' has an unknown storage type")
        if key in self.storages:
            return self.storages[key]
        if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0 or numel > _MAX_ELEMENTS:
            raise ConvertError(f"{self.origin}: storage '{key}' declares {str(numel)[:40]} elements")
        member = f"{self.prefix}data/{key}"
        need = numel * stype.itemsize
        try:
            declared = self.archive.getinfo(member).file_size
        except KeyError:
            raise ConvertError(f"{self.origin}: the archive has no '{member}' (a tensor's data is missing)") from None
        if declared < need:
            raise ConvertError(f"{self.origin}: '{member}' holds {declared} bytes; its storage needs {need}")
        raw = read_member(self.archive, member, self.budget, self.origin, limit=need)
        if stype.dtype == "bfloat16":
            self.budget.charge(2 * need, f"{self.origin}: storage '{key}' (bfloat16 widened to float32)")
            arr = _bfloat16_to_f32(raw)
        else:
            arr = np.frombuffer(raw, dtype=stype.dtype)
        st = _Storage(arr, key)
        self.storages[key] = st
        return st


def _load_pickle(archive: zipfile.ZipFile, origin: str, budget: Budget):
    names = archive.namelist()
    pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
        raise ConvertError(f"{origin}: not a torch.save archive (no single '<name>/data.pkl' entry)")
    prefix = pkl[0][: -len("data.pkl")]
    bo = prefix + "byteorder"
    if bo in names:
        order = bytes(read_member(archive, bo, budget, origin, limit=64)).decode("ascii", "replace").strip()
        if order == "big":
            raise ConvertError(f"{origin}: tensors are stored big-endian; only little-endian files are supported")
        if order != "little":
            raise ConvertError(f"{origin}: '{bo}' is {order[:20]!r}, not 'little' or 'big'")
    data = read_member(archive, pkl[0], budget, origin)
    budget.charge(len(data), f"{origin}: '{pkl[0]}' (the unpickler's copy)")
    up = _TensorUnpickler(io.BytesIO(data), archive, prefix, origin, budget)
    del data
    try:
        obj = up.load()
    except ConvertError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RecursionError, struct.error, UnicodeDecodeError, MemoryError, OverflowError) as e:
        raise ConvertError(f"{origin}: malformed pickle in '{pkl[0]}': {type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None
    for st in up.storages.values():
        budget.charge(st.shared_bytes(), f"{origin}: elements of storage '{st.key}' that several tensors view")
    return obj


_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")


def _tensor_dict(obj, origin: str, key: str | None) -> "collections.OrderedDict[str, np.ndarray]":
    """The name → array mapping inside what the pickle held (a state_dict, or a checkpoint dict holding one)."""
    if key is not None:
        for part in key.split("/"):
            if not isinstance(obj, dict) or part not in obj:
                raise ConvertError(f"{origin}: no entry '{part}' (from --key {key})")
            obj = obj[part]
    if not isinstance(obj, dict):
        raise ConvertError(f"{origin}: the file holds a {type(obj).__name__}, not a state_dict")

    def is_tensors(d):
        return isinstance(d, dict) and d and all(isinstance(v, np.ndarray) for v in d.values())

    if not is_tensors(obj):
        inner = [k for k in _NESTED_KEYS if is_tensors(obj.get(k))]
        if key is None and len(inner) >= 1:
            obj = obj[inner[0]]
        else:
            arrays = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
            if not arrays:
                raise ConvertError(f"{origin}: no tensors found at the top level (keys: "
                                   f"{', '.join(map(str, list(obj)[:8]))}); choose a nested dict with --key")
            obj = arrays
    out = collections.OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str):
            raise ConvertError(f"{origin}: a state_dict key is not a string ({k!r})")
        out[k.removeprefix("module.")] = v      # DataParallel prefix
    return out


def load(path: str, key: str | None = None, budget: Optional[Budget] = None):
    """Reads a ``torch.save`` file; returns an ordered dict name → numpy array."""
    budget = budget if budget is not None else Budget()
    origin = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ConvertError(f"cannot read {path}: {e.strerror or e}") from None
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80":
        raise ConvertError(f"{origin}: a legacy (PyTorch < 1.6) torch.save file; re-save it with a current PyTorch "
                           f"(torch.save(torch.load(f), g)) or export safetensors")
    try:
        archive = zipfile.ZipFile(path)
    except zip_errors() as e:
        raise ConvertError(f"{origin}: not a readable torch.save zip archive ({e})") from None
    with archive:
        obj = _load_pickle(archive, origin, budget)
    return _tensor_dict(obj, origin, key)
