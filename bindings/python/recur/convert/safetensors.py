"""Reads ``.safetensors`` files without the safetensors package.

Layout: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON, then the data. The JSON
maps each tensor name to ``{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}`` (offsets
relative to the start of the data) and may hold ``"__metadata__"`` (string → string). As in the format's
reference reader, the tensors' byte ranges, sorted, must tile the data exactly: no range overlaps another
(so no tensor is read twice), none leaves a hole, and the last one ends where the file ends. Tensors are
returned as read-only views of the file's bytes, which are read once.
"""

from __future__ import annotations

import collections
import os
import struct
from typing import Optional

import numpy as np

from .common import Budget, ConvertError, load_json, read_file, shape_bytes

_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": "bfloat16",
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_MAX_HEADER = 100 << 20


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def load(path: str, budget: Optional[Budget] = None):
    """Returns (ordered dict name → numpy array in file order of the header, the ``__metadata__`` dict)."""
    budget = budget if budget is not None else Budget()
    origin = os.path.basename(path)
    blob = read_file(path, budget, origin)
    if len(blob) < 8:
        raise ConvertError(f"{origin}: too short for a safetensors file ({len(blob)} bytes)")
    (n,) = struct.unpack_from("<Q", blob, 0)
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise ConvertError(f"{origin}: header length {n} does not fit in the file of {len(blob)} bytes")
    header = load_json(memoryview(blob)[8:8 + n], f"{origin}: the header")
    if not isinstance(header, dict):
        raise ConvertError(f"{origin}: the header is not a JSON object")
    data = memoryview(blob)[8 + n:]
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ConvertError(f"{origin}: __metadata__ is not an object of strings")
    entries = []
    for name, info in header.items():
        what = f"{origin}: tensor '{name}'"
        if not isinstance(info, dict):
            raise ConvertError(f"{what}: entry is not an object")
        dt = _DTYPES.get(info.get("dtype")) if isinstance(info.get("dtype"), str) else None
        if dt is None:
            raise ConvertError(f"{what}: unsupported dtype {str(info.get('dtype'))[:40]!r}")
        shape, offs = info.get("shape"), info.get("data_offsets")
        if not isinstance(offs, list) or len(offs) != 2 or not all(_int(o) for o in offs):
            raise ConvertError(f"{what}: malformed data_offsets")
        itemsize = 2 if dt == "bfloat16" else dt.itemsize
        nbytes = shape_bytes(shape, itemsize, what)
        begin, end = offs
        if not 0 <= begin <= end <= len(data):
            raise ConvertError(f"{what}: data [{begin}, {end}) lies outside the {len(data)} data bytes")
        if end - begin != nbytes:
            raise ConvertError(f"{what}: holds {end - begin} bytes; shape {shape} needs {nbytes}")
        entries.append((begin, end, name, dt, shape))
    # The ranges must tile the data (the format's rule; it also means no byte is read for two tensors).
    pos, prev = 0, None
    for begin, end, name, _, _ in sorted(entries, key=lambda e: (e[0], e[1])):
        if begin != pos:
            if begin < pos:
                raise ConvertError(f"{origin}: tensor '{name}' overlaps the data of tensor '{prev}' (bytes from "
                                   f"{begin}); each tensor must have its own bytes")
            raise ConvertError(f"{origin}: no tensor holds data bytes [{pos}, {begin}) (tensor '{name}' starts at "
                               f"{begin}); the ranges must cover the data without holes")
        pos, prev = end, name
    if pos != len(data):
        raise ConvertError(f"{origin}: the tensors end at data byte {pos} but the file holds {len(data)}")
    out = collections.OrderedDict()
    for begin, end, name, dt, shape in entries:
        raw = data[begin:end]
        if dt == "bfloat16":
            budget.charge(2 * (end - begin), f"{origin}: tensor '{name}' (bfloat16 widened to float32)")
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=dt)
        out[name] = arr.reshape(shape)
    return out, dict(meta)
