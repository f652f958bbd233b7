"""Reads TensorFlow 2 object checkpoints (``prefix.index`` + ``prefix.data-NNNNN-of-MMMMM``) without TensorFlow.

``prefix.index`` is a LevelDB-style table (SSTable):

- the last 48 bytes are the footer: the metaindex block handle and the index block handle (each two
  varints, offset and size), zero padding to 40 bytes, then the magic number 0xdb4775248b80fb57 (fixed64,
  little-endian);
- a block is a run of entries, then ``num_restarts`` fixed32 restart offsets and ``num_restarts`` itself,
  followed (outside the handle's size) by a 1-byte compression type and a 4-byte CRC-32C;
- an entry is varint ``shared``, varint ``non_shared``, varint ``value_length``, the ``non_shared`` key bytes
  that follow the ``shared`` bytes of the previous key, then the value;
- the index block maps the last key of each data block to that block's handle.

In the data blocks, key "" holds a ``BundleHeaderProto`` (1: num_shards, 2: endianness, 3: version) and every
other key a tensor's ``BundleEntryProto`` (1: dtype, 2: shape {2: dim {1: size}}, 3: shard_id, 4: offset,
5: size, 6: masked CRC-32C fixed32, 7: slices). The tensor's bytes are ``size`` bytes at ``offset`` in shard
``shard_id``, little-endian, row-major. Both protobufs are decoded by hand below.

The index and every shard are read whole, after their sizes have been charged to the conversion's memory
budget (``common.Budget``); tensors are read-only views of the shard's bytes. TensorFlow writes each
tensor to its own range of a shard, so entries whose ranges overlap are refused (they would make one range
count, and be CRC-checked, many times).
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict

import numpy as np

from typing import Optional

from .common import Budget, ConvertError, read_file, shape_bytes

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48

# tensorflow DataType enum → numpy dtype.
_DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"), 5: np.dtype("<i2"),
           6: np.dtype("i1"), 9: np.dtype("<i8"), 10: np.dtype("?"), 14: "bfloat16", 19: np.dtype("<f2")}
DT_STRING = 7


class _Reader:
    """Bounds-checked reading of varints and fixed-width integers from a bytes object."""

    def __init__(self, buf: bytes, start: int, end: int, what: str):
        self.buf, self.pos, self.end, self.what = buf, start, end, what

    def fail(self, msg: str):
        raise ConvertError(f"{self.what}: {msg}")

    def varint(self) -> int:
        shift = result = 0
        while True:
            if self.pos >= self.end:
                self.fail("truncated varint")
            b = self.buf[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                self.fail("varint longer than 10 bytes")

    def bytes(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            self.fail(f"a field of {n} bytes runs past the end")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def fixed32(self) -> int:
        return struct.unpack("<I", self.bytes(4))[0]

    def fixed64(self) -> int:
        return struct.unpack("<Q", self.bytes(8))[0]

    def done(self) -> bool:
        return self.pos >= self.end


def _fields(data: bytes, what: str):
    """Yields (field number, wire type, value) of a protobuf message; length-delimited values as bytes."""
    r = _Reader(data, 0, len(data), what)
    while not r.done():
        tag = r.varint()
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            yield num, wt, r.varint()
        elif wt == 1:
            yield num, wt, r.fixed64()
        elif wt == 2:
            yield num, wt, r.bytes(r.varint())
        elif wt == 5:
            yield num, wt, r.fixed32()
        else:
            r.fail(f"unsupported protobuf wire type {wt} (field {num})")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _parse_entry(data: bytes, what: str) -> dict:
    e = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "crc32c": None, "sliced": False}
    for num, wt, v in _fields(data, what):
        if num == 1 and wt == 0:
            e["dtype"] = v
        elif num == 2 and wt == 2:
            for n2, w2, v2 in _fields(v, what + " shape"):
                if n2 == 2 and w2 == 2:
                    size = 0
                    for n3, w3, v3 in _fields(v2, what + " dim"):
                        if n3 == 1 and w3 == 0:
                            size = _signed(v3)
                    e["shape"].append(size)
                elif n2 == 3 and w2 == 0 and v2:
                    raise ConvertError(f"{what}: tensor of unknown rank")
        elif num == 3 and wt == 0:
            e["shard_id"] = v
        elif num == 4 and wt == 0:
            e["offset"] = _signed(v)
        elif num == 5 and wt == 0:
            e["size"] = _signed(v)
        elif num == 6 and wt == 5:
            e["crc32c"] = v
        elif num == 7:
            e["sliced"] = True
    return e


def _block(buf: bytes, offset: int, size: int, what: str):
    """Yields (key, value) of the table block at [offset, offset + size)."""
    if offset < 0 or size < 4 or offset + size + 5 > len(buf):
        raise ConvertError(f"{what}: block [{offset}, {offset + size}) lies outside the file of {len(buf)} bytes")
    ctype = buf[offset + size]
    if ctype != 0:
        raise ConvertError(f"{what}: compressed blocks (type {ctype}) are not supported")
    (n_restarts,) = struct.unpack_from("<I", buf, offset + size - 4)
    end = offset + size - 4 - 4 * n_restarts
    if n_restarts == 0 or end < offset:
        raise ConvertError(f"{what}: block restart array is malformed ({n_restarts} restarts)")
    r = _Reader(buf, offset, end, what)
    key = b""
    while not r.done():
        shared, non_shared, vlen = r.varint(), r.varint(), r.varint()
        if shared > len(key):
            r.fail("an entry shares more key bytes than the previous key has")
        key = key[:shared] + r.bytes(non_shared)
        yield key, r.bytes(vlen)


def _handle(data: bytes, what: str):
    r = _Reader(data, 0, len(data), what)
    return r.varint(), r.varint()


def read_index(path: str, budget: Optional[Budget] = None) -> "OrderedDict[str, dict]":
    """Parses ``prefix.index``: returns name → entry dict (the header under the key "")."""
    what = os.path.basename(path)
    buf = read_file(path, budget if budget is not None else Budget(), what)
    if len(buf) < FOOTER_SIZE:
        raise ConvertError(f"{what}: too short for a checkpoint index ({len(buf)} bytes; truncated?)")
    (magic,) = struct.unpack_from("<Q", buf, len(buf) - 8)
    if magic != TABLE_MAGIC:
        raise ConvertError(f"{what}: not a TensorFlow checkpoint index (bad table magic; truncated?)")
    foot = _Reader(buf, len(buf) - FOOTER_SIZE, len(buf) - 8, what + " footer")
    foot.varint(), foot.varint()                     # metaindex handle (unused)
    idx_off, idx_size = foot.varint(), foot.varint()
    entries: OrderedDict = OrderedDict()
    for _, handle in _block(buf, idx_off, idx_size, what + " index block"):
        off, size = _handle(handle, what + " block handle")
        for key, value in _block(buf, off, size, what + " data block"):
            name = key.decode("utf-8", "replace")
            if name == "":
                hdr = {"num_shards": 1, "endianness": 0, "version": None}
                for num, wt, v in _fields(value, what + " header"):
                    if num == 1 and wt == 0:
                        hdr["num_shards"] = v
                    elif num == 2 and wt == 0:
                        hdr["endianness"] = v
                entries[""] = hdr
            else:
                entries[name] = _parse_entry(value, f"{what}: entry '{name}'")
    if "" not in entries:
        raise ConvertError(f"{what}: no bundle header entry")
    return entries


# CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, as TensorFlow checks tensor data with.
_CRC32C_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TensorFlow stores CRCs masked: rotate right by 15 bits, add 0xa282ead8 (mod 2^32)."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_CRC_LIMIT = 16 << 20    # tensors up to this size are checked (pure-Python CRC-32C is slow)


def prefix_of(path: str) -> str:
    """Accepts the prefix itself, ``prefix.index`` or a data shard's path."""
    if path.endswith(".index"):
        return path[: -len(".index")]
    i = path.rfind(".data-")
    if i > 0:
        return path[:i]
    return path


def load(path: str, budget: Optional[Budget] = None) -> "OrderedDict[str, np.ndarray]":
    """Reads every numeric tensor of a checkpoint: name → numpy array (strings such as the object graph
    are skipped)."""
    budget = budget if budget is not None else Budget()
    prefix = prefix_of(path)
    index_path = prefix + ".index"
    if not os.path.exists(index_path):
        raise ConvertError(f"no checkpoint index '{index_path}'")
    entries = read_index(index_path, budget)
    hdr = entries.pop("")
    if hdr["endianness"] != 0:
        raise ConvertError(f"{os.path.basename(index_path)}: big-endian checkpoints are not supported")
    shards = int(hdr["num_shards"])
    if not 1 <= shards <= 100000:
        raise ConvertError(f"{os.path.basename(index_path)}: header gives {shards} shards")
    blobs: dict = {}
    spans: dict = {}
    found = []
    for name, e in entries.items():
        if e["dtype"] == DT_STRING:
            continue
        dt = _DTYPES.get(e["dtype"])
        if dt is None:
            raise ConvertError(f"checkpoint tensor '{name}' has unsupported dtype code {e['dtype']}")
        if e["sliced"]:
            raise ConvertError(f"checkpoint tensor '{name}' is saved in slices (partitioned); not supported")
        sid = e["shard_id"]
        if not 0 <= sid < shards:
            raise ConvertError(f"checkpoint tensor '{name}' is in shard {sid} of {shards}")
        if sid not in blobs:
            shard_path = f"{prefix}.data-{sid:05d}-of-{shards:05d}"
            if not os.path.exists(shard_path):
                raise ConvertError(f"cannot read the checkpoint data file {shard_path}: no such file")
            blobs[sid] = memoryview(read_file(shard_path, budget, os.path.basename(shard_path)))
            spans[sid] = []
        blob = blobs[sid]
        shape = e["shape"]
        itemsize = 2 if dt == "bfloat16" else dt.itemsize
        nbytes = shape_bytes(shape, itemsize, f"checkpoint tensor '{name}'")
        off, size = e["offset"], e["size"]
        if size != nbytes:
            raise ConvertError(f"checkpoint tensor '{name}': {size} bytes for shape {shape}")
        if off < 0 or off + size > len(blob):
            raise ConvertError(f"checkpoint tensor '{name}': bytes [{off}, {off + size}) lie outside the data file "
                               f"of {len(blob)} bytes (truncated?)")
        spans[sid].append((off, off + size, name))
        found.append((name, e, dt, blob[off:off + size], shape))
    for sid, sp in spans.items():
        end, last = 0, None
        for lo, hi, name in sorted(sp):
            if lo < end and hi > lo:
                raise ConvertError(f"checkpoint tensors '{last}' and '{name}' share bytes of data shard {sid}; "
                                   f"each tensor must have its own")
            if hi >= end:
                end, last = hi, name
    out: OrderedDict = OrderedDict()
    for name, e, dt, raw, shape in found:
        if e["crc32c"] is not None and len(raw) <= _CRC_LIMIT and masked_crc32c(raw) != e["crc32c"]:
            raise ConvertError(f"checkpoint tensor '{name}': CRC-32C mismatch (the data file is damaged)")
        if dt == "bfloat16":
            budget.charge(2 * len(raw), f"checkpoint tensor '{name}' (bfloat16 widened to float32)")
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=dt)
        out[name] = arr.reshape(shape)
    return out


OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _scalar_string(raw: bytes, crc, what: str) -> bytes:
    """A scalar DT_STRING tensor as TensorFlow's bundle writer stores it: varint length, the masked
    CRC-32C of the length (as a little-endian integer), then the string's bytes. The entry's CRC covers
    the length as that integer, the 4 checksum bytes and the string."""
    r = _Reader(raw, 0, len(raw), what)
    n = r.varint()
    mark = r.pos
    length_crc = r.fixed32()
    data = r.bytes(n)
    if not r.done():
        r.fail("bytes after the string")
    # TensorFlow checksums the length as a uint32 (lengths below 2^32), older writers as a uint64.
    widths = [w for w in (struct.pack("<I", n) if n < 1 << 32 else None, struct.pack("<Q", n))
              if w is not None and masked_crc32c(w) == length_crc]
    if not widths:
        r.fail("CRC-32C mismatch of the string length (the data file is damaged)")
    if crc is not None and masked_crc32c(widths[0] + raw[mark:mark + 4] + data) != crc:
        r.fail("CRC-32C mismatch (the data file is damaged)")
    return data


def object_graph(path: str, budget: Optional[Budget] = None) -> Optional[list]:
    """The checkpoint's object graph (``TrackableObjectGraph``): a list of nodes, each
    ``{"children": [(node_id, local_name)], "attributes": [(name, checkpoint_key)]}``, node 0 the root; None
    when the checkpoint has none (TF1 name-based checkpoints)."""
    budget = budget if budget is not None else Budget()
    prefix = prefix_of(path)
    index_path = prefix + ".index"
    if not os.path.exists(index_path):
        raise ConvertError(f"no checkpoint index '{index_path}'")
    entries = read_index(index_path, budget)
    hdr = entries.pop("")
    e = entries.get(OBJECT_GRAPH_KEY)
    if e is None:
        return None
    what = f"{os.path.basename(prefix)}: the object graph"
    if e["dtype"] != DT_STRING or e["shape"]:
        raise ConvertError(f"{what} is not a scalar string")
    shards = int(hdr["num_shards"])
    sid = e["shard_id"]
    if not 0 <= sid < max(shards, 1):
        raise ConvertError(f"{what} is in shard {sid} of {shards}")
    shard_path = f"{prefix}.data-{sid:05d}-of-{shards:05d}"
    if not os.path.exists(shard_path):
        raise ConvertError(f"cannot read the checkpoint data file {shard_path}: no such file")
    off, size = e["offset"], e["size"]
    file_size = os.path.getsize(shard_path)
    if off < 0 or size < 0 or off + size > file_size:
        raise ConvertError(f"{what}: bytes [{off}, {off + size}) lie outside the data file (truncated?)")
    budget.charge(size, what)               # only the graph's own bytes are read (the tensors were already)
    try:
        with open(shard_path, "rb") as f:
            f.seek(off)
            raw = f.read(size)
    except OSError as err:
        raise ConvertError(f"cannot read the checkpoint data file {shard_path}: {err.strerror or err}") from None
    if len(raw) != size:
        raise ConvertError(f"{what}: the data file ends inside it (truncated?)")
    data = _scalar_string(raw, e["crc32c"] if size <= _CRC_LIMIT else None, what)
    nodes = []
    for num, wt, v in _fields(data, what):
        if num != 1 or wt != 2:
            continue
        node = {"children": [], "attributes": []}
        for n2, w2, v2 in _fields(v, what):
            if n2 == 1 and w2 == 2:                  # ObjectReference: 1 node_id, 2 local_name
                nid, name = None, ""
                for n3, w3, v3 in _fields(v2, what):
                    if n3 == 1 and w3 == 0:
                        nid = v3
                    elif n3 == 2 and w3 == 2:
                        name = v3.decode("utf-8", "replace")
                if nid is not None:
                    node["children"].append((int(nid), name))
            elif n2 == 2 and w2 == 2:                # SerializedTensor: 1 name, 2 full_name, 3 checkpoint_key
                name = key = ""
                for n3, w3, v3 in _fields(v2, what):
                    if n3 == 1 and w3 == 2:
                        name = v3.decode("utf-8", "replace")
                    elif n3 == 3 and w3 == 2:
                        key = v3.decode("utf-8", "replace")
                node["attributes"].append((name, key))
        nodes.append(node)
    for node in nodes:
        for nid, name in node["children"]:
            if nid >= len(nodes):
                raise ConvertError(f"{what}: child '{name}' refers to node {nid} of {len(nodes)}")
    return nodes or None
