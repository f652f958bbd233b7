"""Reads ``.safetensors`` files without the safetensors package.

Layout: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON, then the data. The JSON
maps each tensor name to ``{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}`` (offsets
relative to the start of the data) and may hold ``"__metadata__"`` (string → string).
"""

from __future__ import annotations

import collections
import json
import os
import struct

import numpy as np

from .common import ConvertError

_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": "bfloat16",
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_MAX_HEADER = 100 << 20


def load(path: str):
    """Returns (ordered dict name → numpy array in file order of the header, the ``__metadata__`` dict)."""
    origin = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise ConvertError(f"cannot read {path}: {e.strerror or e}") from None
    if len(blob) < 8:
        raise ConvertError(f"{origin}: too short for a safetensors file ({len(blob)} bytes)")
    (n,) = struct.unpack_from("<Q", blob, 0)
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise ConvertError(f"{origin}: header length {n} does not fit in the file of {len(blob)} bytes")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=collections.OrderedDict)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"{origin}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{origin}: the header is not a JSON object")
    data = memoryview(blob)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = collections.OrderedDict()
    for name, info in header.items():
        what = f"{origin}: tensor '{name}'"
        if not isinstance(info, dict):
            raise ConvertError(f"{what}: entry is not an object")
        dt = _DTYPES.get(info.get("dtype"))
        if dt is None:
            raise ConvertError(f"{what}: unsupported dtype {info.get('dtype')!r}")
        shape, offs = info.get("shape"), info.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape)
                or not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)):
            raise ConvertError(f"{what}: malformed shape or data_offsets")
        begin, end = offs
        itemsize = 2 if dt == "bfloat16" else dt.itemsize
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not 0 <= begin <= end <= len(data):
            raise ConvertError(f"{what}: data [{begin}, {end}) lies outside the {len(data)} data bytes")
        if end - begin != count * itemsize:
            raise ConvertError(f"{what}: holds {end - begin} bytes; shape {shape} needs {count * itemsize}")
        raw = bytes(data[begin:end])
        if dt == "bfloat16":
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=dt)
        out[name] = arr.reshape(shape).copy()
    return out, dict(meta)
