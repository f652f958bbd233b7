"""Reader and writer for `.recur` model files, in pure Python and numpy.

This module is an independent implementation of ``docs/FORMAT.md``: it does not load the Recur library.
It reads a file into its version, typed metadata and tensors, applying every check of the specification
(a malformed file raises :class:`FormatError`, never an ``IndexError`` or a huge allocation), and writes
files byte for byte as the Swift writer does for the same metadata and tensors in the same order.

    >>> from recur import format as rf
    >>> data = rf.read("tiny.recur")
    >>> data.version, data.metadata["model.task"], data.tensors["layer.0.embeddings"].shape
    ((1, 0), 'generate', (96, 32))
    >>> rf.write("copy.recur", data.typed_metadata(), data.raw_tensors())

Metadata values map to Python types as follows (type codes of the file in brackets):
int [1], float [2], bool [3], str [4], list[str] [5], list[int] [6], list[float] [7]. A value whose type
cannot be inferred (an empty list) or that should be stored as another type (the float 2.0 given as the
int 2) is wrapped in :class:`Typed`, e.g. ``Typed(MetaType.INTS, [])`` or ``Typed.floats([])``.
"""

from __future__ import annotations

import enum
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

__all__ = [
    "MAGIC", "VERSION_MAJOR", "VERSION_MINOR", "HEADER_SIZE", "ALIGNMENT", "CHECKSUM_OFFSET",
    "MAX_KEY_BYTES", "MAX_STRING_BYTES", "MAX_METADATA_COUNT", "MAX_TENSOR_COUNT", "MAX_RANK",
    "MAX_DIMENSION", "FormatError", "UnsupportedVersionError", "ChecksumError", "DType", "MetaType",
    "Typed", "TensorInfo", "RawTensor", "RecurFileData", "read", "write", "serialize", "quantize",
    "dequantize", "crc32_of_file",
]

# --- Constants (docs/FORMAT.md, "Header" and "Validation") ----------------------------------------

MAGIC = b"\x89RCR\r\n\x1a\n"
VERSION_MAJOR = 6   # the newest major version written (the lowest that describes each file: see write)
READABLE_MAJORS = (1, 2, 3, 4, 5, 6)
VERSION_MINOR = 0
HEADER_SIZE = 64
ALIGNMENT = 64
CHECKSUM_OFFSET = 56

MAX_KEY_BYTES = 256
MAX_STRING_BYTES = 64 << 20
MAX_METADATA_COUNT = 1 << 20
MAX_TENSOR_COUNT = 1 << 16
MAX_RANK = 4
MAX_DIMENSION = 1 << 31

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT32_MAX = (1 << 32) - 1


class FormatError(ValueError):
    """The bytes are not a valid `.recur` file (or a value cannot be written as one)."""


class UnsupportedVersionError(FormatError):
    """The file's major format version is not one this module reads."""


class ChecksumError(FormatError):
    """The CRC-32 stored in the header does not match the file's bytes."""


# --- Element types -------------------------------------------------------------------------------

class DType(enum.IntEnum):
    """Tensor element types; the values are the codes stored in the tensor directory."""

    F32 = 0
    F16 = 1
    Q8 = 2
    Q4 = 3
    Q8R = 4     # format version 2
    Q8RI = 5    # format version 4: q8r with rows interleaved in groups of 16
    Q4I = 6     # format version 4: q4 with rows interleaved in groups of 16

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: Union["DType", str, int]) -> "DType":
        if isinstance(value, DType):
            return value
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise FormatError(f"unknown dtype '{value}' (known: f32, f16, q8, q4, q8r, q8ri, q4i)") from None
        try:
            return cls(int(value))
        except ValueError:
            raise FormatError(f"unknown dtype code {value}") from None

    @property
    def block_size(self) -> int:
        return 32 if self in (DType.Q8, DType.Q4, DType.Q8R, DType.Q8RI, DType.Q4I) else 1

    @property
    def quantizes_activations(self) -> bool:
        """Whether products with a matrix of this type quantize the vector (recur_kernels.h)."""
        return self.block_size > 1

    @property
    def per_vector(self) -> bool:
        """Whether that quantization is one scale for the whole vector (q8r, q8ri) rather than per block."""
        return self in (DType.Q8R, DType.Q8RI)

    @property
    def row_group(self) -> int:
        """Rows stored together: 16 for q8ri and q4i (interleaved), else 1 (row-major)."""
        return 16 if self in (DType.Q8RI, DType.Q4I) else 1

    def row_bytes(self, cols: int) -> int:
        """Bytes of one row of ``cols`` elements (the last dimension)."""
        if self is DType.F32:
            return 4 * cols
        if self is DType.F16:
            return 2 * cols
        blocks = (cols + 31) // 32
        if self is DType.Q8R:
            return 4 + blocks * 32
        if self is DType.Q8RI:
            return 8 + blocks * 32     # scale and row sum, in the group's header
        return blocks * 4 + blocks * (32 if self is DType.Q8 else 16)

    def byte_count(self, shape: Sequence[int]) -> int:
        """Exact byte size of a tensor of ``shape`` (an unbounded Python int), rows padded to ``row_group``."""
        rows = 1
        for d in shape[:-1]:
            rows *= d
        g = self.row_group
        return -(-rows // g) * g * self.row_bytes(shape[-1])


class MetaType(enum.IntEnum):
    """Metadata value type codes."""

    INT = 1
    FLOAT = 2
    BOOL = 3
    STRING = 4
    STRINGS = 5
    INTS = 6
    FLOATS = 7


@dataclass(frozen=True)
class Typed:
    """A metadata value with an explicit type, for values whose type cannot be inferred."""

    type: MetaType
    value: Any

    @staticmethod
    def int(v: int) -> "Typed":
        return Typed(MetaType.INT, v)

    @staticmethod
    def float(v: float) -> "Typed":
        return Typed(MetaType.FLOAT, v)

    @staticmethod
    def bool(v: bool) -> "Typed":
        return Typed(MetaType.BOOL, v)

    @staticmethod
    def string(v: str) -> "Typed":
        return Typed(MetaType.STRING, v)

    @staticmethod
    def strings(v: Iterable[str]) -> "Typed":
        return Typed(MetaType.STRINGS, list(v))

    @staticmethod
    def ints(v: Iterable[int]) -> "Typed":
        return Typed(MetaType.INTS, list(v))

    @staticmethod
    def floats(v: Iterable[float]) -> "Typed":
        return Typed(MetaType.FLOATS, list(v))


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor directory."""

    name: str
    dtype: DType
    shape: tuple
    offset: int      # from the start of the data section
    nbytes: int


@dataclass(frozen=True)
class RawTensor:
    """A tensor already encoded in its dtype's byte layout (written as is)."""

    dtype: DType
    shape: tuple
    data: bytes


# --- Quantized layouts (docs/FORMAT.md, "Tensor data") --------------------------------------------

def _round_half_away(x: np.ndarray) -> np.ndarray:
    """Rounds float32 values to the nearest integer, halves away from zero (exact: done in float64)."""
    d = x.astype(np.float64)
    return np.where(d >= 0, np.floor(d + 0.5), np.ceil(d - 0.5))


def quantize(values: np.ndarray, dtype: Union[DType, str]) -> bytes:
    """Encodes an array in ``dtype``'s layout, rows along the last dimension.

    f32 and f16 round from float32 (values are first converted to float32, then to binary16 with
    round-to-nearest-even). q8: per block of 32, scale = max|w| / 127, q = round(w / scale) (halves away
    from zero) clamped to ±127. q4: the block's largest-magnitude value w* (the first one on ties) gives
    scale = w* / −8, q = clamp(round(w / scale) + 8, 0, 15); padding elements encode nibble 8 (zero).
    q8r: per row, scale = max|w| / 127, q = round(w / scale) (halves away from zero) clamped to ±127,
    zero padding to a multiple of 32. q8ri: q8r's scales and codes, interleaved (``interleave_rows``);
    q4i: q4's scales and nibbles, interleaved (``interleave_nibbles``).
    The arithmetic is float32 throughout, so the bytes equal those of the Swift writer.
    """
    dt = DType.parse(dtype)
    v = np.asarray(values, dtype=np.float32)
    if v.ndim == 0:
        v = v.reshape(1)
    if dt is DType.F32:
        return v.astype("<f4").tobytes()
    if dt is DType.F16:
        return v.astype("<f2").tobytes()
    if not np.isfinite(v).all():
        raise FormatError(f"cannot quantize non-finite values to {dt.label}")
    cols = v.shape[-1]
    rows = v.reshape(-1, cols)
    nb = (cols + 31) // 32
    padded = np.zeros((rows.shape[0], nb * 32), dtype=np.float32)
    padded[:, :cols] = rows
    blocks = padded.reshape(rows.shape[0], nb, 32)
    mask = np.zeros(nb * 32, dtype=bool)
    mask[:cols] = True
    mask = mask.reshape(nb, 32)
    if dt is DType.Q8RI:
        return interleave_rows(quantize(rows, DType.Q8R), rows.shape[0], cols)
    if dt is DType.Q4I:
        return interleave_nibbles(quantize(rows, DType.Q4), rows.shape[0], cols)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if dt is DType.Q8R:
            amax = np.abs(rows).max(axis=1) if cols else np.zeros(rows.shape[0], np.float32)
            scale = (amax.astype(np.float32) / np.float32(127)).astype(np.float32)
            inv = np.where(scale > 0, np.float32(1) / scale, np.float32(0)).astype(np.float32)
            q = np.clip(_round_half_away((padded * inv[:, None]).astype(np.float32)), -127, 127).astype(np.int8)
            out = np.empty((rows.shape[0], 4 + nb * 32), dtype=np.uint8)
            out[:, :4] = scale.astype("<f4").view(np.uint8).reshape(rows.shape[0], 4)
            out[:, 4:] = q.view(np.uint8)
            return out.tobytes()
        if dt is DType.Q8:
            amax = np.abs(blocks).max(axis=2)                                   # (rows, nb), float32
            scale = (amax / np.float32(127)).astype(np.float32)
            inv = np.where(scale > 0, np.float32(1) / scale, np.float32(0)).astype(np.float32)
            q = _round_half_away((blocks * inv[:, :, None]).astype(np.float32))
            q = np.clip(q, -127, 127).astype(np.int8)
            q = np.where(mask[None, :, :], q, np.int8(0)).astype(np.int8)
            out = np.empty((rows.shape[0], nb * 36), dtype=np.uint8)
            out[:, : nb * 4] = scale.astype("<f4").view(np.uint8).reshape(rows.shape[0], nb * 4)
            out[:, nb * 4:] = q.reshape(rows.shape[0], nb * 32).view(np.uint8)
            return out.tobytes()
        # q4: the signed value of largest magnitude, first one on ties.
        mags = np.abs(blocks)
        masked = np.where(mask[None, :, :], mags, np.float32(-1))
        first = np.argmax(masked, axis=2)                                          # first max
        signed = np.take_along_axis(blocks, first[:, :, None], axis=2)[:, :, 0]
        amax = np.take_along_axis(mags, first[:, :, None], axis=2)[:, :, 0]
        signed = np.where(amax > 0, signed, np.float32(0)).astype(np.float32)     # all zero: +0
        scale = (signed / np.float32(-8)).astype(np.float32)
        inv = np.where(scale != 0, np.float32(1) / scale, np.float32(0)).astype(np.float32)
        q = _round_half_away((blocks * inv[:, :, None]).astype(np.float32)) + 8
        q = np.clip(q, 0, 15).astype(np.uint8)
        q = np.where(mask[None, :, :], q, np.uint8(8)).astype(np.uint8)
        packed = (q[:, :, :16] | (q[:, :, 16:] << 4)).astype(np.uint8)          # (rows, nb, 16)
        out = np.empty((rows.shape[0], nb * 20), dtype=np.uint8)
        out[:, : nb * 4] = scale.astype("<f4").view(np.uint8).reshape(rows.shape[0], nb * 4)
        out[:, nb * 4:] = packed.reshape(rows.shape[0], nb * 16)
        return out.tobytes()


def interleave_rows(q8r: bytes, rows: int, cols: int) -> bytes:
    """q8r rows → q8ri: groups of 16 rows (the last padded with zero rows), each 16 f32 scales, 16 int32
    sums of the rows' codes, then for every 4 columns the 16 rows' 4 codes (docs/FORMAT.md §7)."""
    n = (cols + 31) // 32 * 32
    groups = -(-rows // 16)
    r = np.zeros((groups * 16, 4 + n), dtype=np.uint8)
    r[:rows] = np.frombuffer(q8r, dtype=np.uint8).reshape(rows, 4 + n)
    r = r.reshape(groups, 16, 4 + n)
    codes = r[:, :, 4:].view(np.int8)
    sums = codes.astype("<i4").sum(axis=2).astype("<i4")
    chunks = codes.reshape(groups, 16, n // 4, 4).transpose(0, 2, 1, 3).reshape(groups, 16 * n)
    out = np.concatenate([r[:, :, :4].reshape(groups, 64), sums.view(np.uint8).reshape(groups, 64),
                          chunks.view(np.uint8)], axis=1)
    return out.tobytes()


def _q4i_order(nb: int) -> np.ndarray:
    """For each (row in group i, column c < 32·nb): the byte of a q4i group and whether the high nibble."""
    c = np.arange(32 * nb)
    b, j = c // 32, c % 32
    i = np.arange(16)[:, None]
    byte = 320 * b[None, :] + 64 + 64 * (j // 8)[None, :] + 4 * i + (j % 4)[None, :]
    return byte, np.broadcast_to(((j % 8) >= 4)[None, :], byte.shape)


def interleave_nibbles(q4: bytes, rows: int, cols: int) -> bytes:
    """q4 rows → q4i: groups of 16 rows (the last padded with zero rows: scale 0, nibble 8), each block of 32
    columns as 16 f32 scales then 4 vectors of 64 bytes, byte 4i + j of vector m holding row i's columns
    8m + j (low nibble) and 8m + 4 + j (high nibble) of the block (docs/FORMAT.md §7)."""
    nb = (cols + 31) // 32
    groups = -(-rows // 16)
    src = np.frombuffer(q4, dtype=np.uint8).reshape(rows, 20 * nb)
    packed = src[:, 4 * nb:].reshape(rows, nb, 16)
    nib = np.full((groups * 16, nb * 32), 8, dtype=np.uint8)
    nib[:rows] = np.concatenate([packed & 0x0F, packed >> 4], axis=2).reshape(rows, nb * 32)
    scales = np.zeros((groups * 16, nb * 4), dtype=np.uint8)
    scales[:rows] = src[:, :4 * nb]
    out = np.zeros((groups, 320 * nb), dtype=np.uint8)
    byte, high = _q4i_order(nb)
    for g in range(groups):
        n = nib[16 * g:16 * g + 16]
        o = out[g]
        np.add.at(o, byte[~high], n[~high])
        np.add.at(o, byte[high], (n[high] << 4).astype(np.uint8))
        sc = scales[16 * g:16 * g + 16].reshape(16, nb, 4)
        for b in range(nb):
            o[320 * b:320 * b + 64] = sc[:, b, :].reshape(64)
    return out.tobytes()


def dequantize(raw: Union[bytes, memoryview], dtype: Union[DType, str], shape: Sequence[int]) -> np.ndarray:
    """Decodes a tensor's bytes to float32 (f16 is widened exactly; q8/q4/q8r are scale · q in float32)."""
    dt = DType.parse(dtype)
    shape = tuple(int(d) for d in shape)
    if len(raw) != dt.byte_count(shape):
        raise FormatError(f"{dt.label} {list(shape)} needs {dt.byte_count(shape)} bytes, got {len(raw)}")
    if dt is DType.F32:
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    if dt is DType.F16:
        return np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(shape)
    cols = shape[-1]
    nb = (cols + 31) // 32
    if dt is DType.Q4I:
        nrows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
        g = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 320 * nb)
        byte, high = _q4i_order(nb)
        vals = g[:, byte]                                                    # (groups, 16, 32·nb)
        nib = np.where(high[None], vals >> 4, vals & 0x0F).astype(np.float32) - np.float32(8)
        sc = np.stack([g[:, 320 * b:320 * b + 64].copy().view("<f4") for b in range(nb)], axis=2)  # (groups, 16, nb)
        w = (nib.reshape(-1, 16, nb, 32) * sc[:, :, :, None]).astype(np.float32).reshape(-1, nb * 32)
        return np.ascontiguousarray(w[:nrows, :cols]).reshape(shape)
    if dt is DType.Q8RI:
        nrows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
        g = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 128 + 16 * nb * 32)
        scale = g[:, :64].copy().view("<f4").reshape(-1, 16, 1)
        q = g[:, 128:].view(np.int8).reshape(-1, nb * 8, 16, 4).transpose(0, 2, 1, 3).reshape(-1, 16, nb * 32)
        w = (q[:, :, :cols].astype(np.float32) * scale).astype(np.float32).reshape(-1, cols)[:nrows]
        return np.ascontiguousarray(w).reshape(shape)
    nrows = dt.byte_count(shape) // dt.row_bytes(cols)
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(nrows, dt.row_bytes(cols))
    if dt is DType.Q8R:
        scale = rows[:, :4].copy().view("<f4").astype(np.float32)                # (rows, 1)
        w = (rows[:, 4:4 + cols].view(np.int8).astype(np.float32) * scale).astype(np.float32)
        return np.ascontiguousarray(w).reshape(shape)
    scales = rows[:, : nb * 4].copy().view("<f4").astype(np.float32)            # (rows, nb)
    body = rows[:, nb * 4:]
    if dt is DType.Q8:
        q = body.view(np.int8).reshape(nrows, nb, 32).astype(np.float32)
    else:
        b = body.reshape(nrows, nb, 16)
        q = np.concatenate([b & 0x0F, b >> 4], axis=2).astype(np.float32) - np.float32(8)
    w = (q * scales[:, :, None]).astype(np.float32).reshape(nrows, nb * 32)[:, :cols]
    return np.ascontiguousarray(w).reshape(shape)


# --- Reading -------------------------------------------------------------------------------------

class _Cursor:
    """Bounds-checked little-endian reads over buf[start:end]."""

    __slots__ = ("buf", "pos", "end", "context")

    def __init__(self, buf: memoryview, start: int, end: int, context: str):
        self.buf, self.pos, self.end, self.context = buf, start, end, context

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def need(self, n: int, what: str) -> None:
        if n < 0 or n > self.remaining:
            raise FormatError(f"{self.context}: truncated while reading {what} at byte {self.pos} "
                              f"(needs {n} bytes, {max(self.remaining, 0)} left)")

    def _unpack(self, fmt: str, n: int, what: str):
        self.need(n, what)
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += n
        return v

    def u8(self, what: str) -> int:
        return self._unpack("<B", 1, what)

    def u16(self, what: str) -> int:
        return self._unpack("<H", 2, what)

    def u32(self, what: str) -> int:
        return self._unpack("<I", 4, what)

    def u64(self, what: str) -> int:
        return self._unpack("<Q", 8, what)

    def i64(self, what: str) -> int:
        return self._unpack("<q", 8, what)

    def f64(self, what: str) -> float:
        return self._unpack("<d", 8, what)

    def utf8(self, n: int, what: str) -> str:
        self.need(n, what)
        try:
            s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{self.context}: {what} at byte {self.pos} is not valid UTF-8") from None
        self.pos += n
        return s


class RecurFileData:
    """A parsed file: version, metadata (in file order), tensors (in directory order).

    ``tensors`` maps names to numpy arrays: f32 as float32, f16 as float16, q8 and q4 dequantized to
    float32. ``raw(name)`` gives any tensor's encoded bytes, ``info[name]`` its directory entry.
    """

    def __init__(self, *, version, metadata, metadata_types, info, buffer, data_offset, checksum, file_size):
        self.version: tuple = version
        self.metadata: dict = metadata
        self.metadata_types: dict = metadata_types
        self.info: dict = info
        self.data_offset: int = data_offset
        self.checksum: int = checksum
        self.file_size: int = file_size
        self._buffer = buffer
        self.tensors: dict = {}
        for name, t in info.items():
            raw = self.raw(name)
            if t.dtype is DType.F32:
                arr = np.frombuffer(raw, dtype="<f4").reshape(t.shape)
            elif t.dtype is DType.F16:
                arr = np.frombuffer(raw, dtype="<f2").reshape(t.shape)
            else:
                arr = dequantize(raw, t.dtype, t.shape)
            self.tensors[name] = arr

    def raw(self, name: str) -> memoryview:
        """The encoded bytes of tensor ``name`` (a read-only view of the file)."""
        t = self.info[name]
        start = self.data_offset + t.offset
        return self._buffer[start:start + t.nbytes]

    def typed_metadata(self) -> dict:
        """The metadata with every value wrapped in :class:`Typed` (round-trips exactly, empty lists too)."""
        return {k: Typed(self.metadata_types[k], v) for k, v in self.metadata.items()}

    def raw_tensors(self) -> dict:
        """Every tensor as a :class:`RawTensor`, so writing them back reproduces the bytes."""
        return {n: RawTensor(t.dtype, t.shape, bytes(self.raw(n))) for n, t in self.info.items()}

    def __repr__(self) -> str:
        return (f"RecurFileData(version={self.version[0]}.{self.version[1]}, "
                f"{len(self.metadata)} metadata keys, {len(self.info)} tensors, {self.file_size} bytes)")


def crc32_of_file(buf: Union[bytes, bytearray, memoryview]) -> int:
    """zlib's CRC-32 of a whole file with the 4 checksum bytes at offset 56 taken as zero."""
    mv = memoryview(buf)
    c = zlib.crc32(mv[:CHECKSUM_OFFSET])
    c = zlib.crc32(b"\0\0\0\0", c)
    return zlib.crc32(mv[CHECKSUM_OFFSET + 4:], c) & 0xFFFFFFFF


def read(source: Union[str, os.PathLike, bytes, bytearray, memoryview], verify_checksum: bool = True,
         name: str | None = None) -> RecurFileData:
    """Parses a `.recur` file from a path or from bytes.

    Raises :class:`FormatError` (or its subclasses :class:`UnsupportedVersionError`,
    :class:`ChecksumError`) for malformed input, ``OSError`` when a path cannot be read.
    ``verify_checksum=False`` skips the CRC-32 pass; every structural check still applies.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "buffer"
    else:
        label = name or os.fspath(source)
        with open(source, "rb") as f:
            data = f.read()
    return _parse(data, label, verify_checksum)


def _parse(data: bytes, name: str, verify_checksum: bool) -> RecurFileData:
    size = len(data)
    if size == 0:
        raise FormatError(f"{name}: empty (0 bytes); a .recur file has at least a {HEADER_SIZE}-byte header")
    if size < HEADER_SIZE:
        k = min(size, 8)
        if data[:k] != MAGIC[:k]:
            raise FormatError(f"{name}: not a .recur file (bad magic)")
        raise FormatError(f"{name}: truncated: {size} bytes, smaller than the {HEADER_SIZE}-byte header")
    if data[:8] != MAGIC:
        raise FormatError(f"{name}: not a .recur file (bad magic)")
    buf = memoryview(data)
    (major, minor, flags, file_size, meta_count, tensor_count, meta_offset, dir_offset, data_offset,
     stored_crc, reserved) = struct.unpack_from("<HHIQIIQQQII", data, 8)
    if major not in READABLE_MAJORS:
        raise UnsupportedVersionError(
            f"{name}: format version {major}.{minor} is not supported; this library reads version 1.x, 2.x, "
            f"3.x, 4.x, 5.x and 6.x (it writes 1.0, or 2.0, 3.0, 4.0, 5.0 or 6.0 for files that need them)")
    if flags != 0 or reserved != 0:
        raise FormatError(f"{name}: reserved header fields are not zero (flags {flags}, reserved {reserved})")
    if file_size != size:
        if file_size > size:
            raise FormatError(f"{name}: truncated: header says {file_size} bytes, file has {size}")
        raise FormatError(f"{name}: header says {file_size} bytes, file has {size} (trailing bytes)")
    if not (meta_offset == HEADER_SIZE and meta_offset <= dir_offset <= data_offset <= file_size):
        raise FormatError(f"{name}: section offsets out of order or past the end (metadata {meta_offset}, "
                          f"tensors {dir_offset}, data {data_offset}, file {file_size})")
    if data_offset % ALIGNMENT != 0:
        raise FormatError(f"{name}: data section offset {data_offset} is not a multiple of {ALIGNMENT}")
    if meta_count > MAX_METADATA_COUNT:
        raise FormatError(f"{name}: metadata count {meta_count} exceeds the cap of {MAX_METADATA_COUNT}")
    if tensor_count > MAX_TENSOR_COUNT:
        raise FormatError(f"{name}: tensor count {tensor_count} exceeds the cap of {MAX_TENSOR_COUNT}")
    if verify_checksum:
        computed = crc32_of_file(buf)
        if computed != stored_crc:
            raise ChecksumError(f"{name}: checksum mismatch (stored 0x{stored_crc:08x}, computed "
                                f"0x{computed:08x}): the file is corrupt")

    # Metadata section.
    m = _Cursor(buf, meta_offset, dir_offset, name + " metadata")
    if meta_count * 4 > m.remaining:
        raise FormatError(f"{name}: metadata count {meta_count} cannot fit in {m.remaining} bytes")
    metadata: dict = {}
    types: dict = {}
    for i in range(meta_count):
        klen = m.u16(f"key length of entry {i}")
        if klen == 0 or klen > MAX_KEY_BYTES:
            raise FormatError(f"{name}: metadata entry {i} has key length {klen} (must be 1...{MAX_KEY_BYTES})")
        key = m.utf8(klen, f"key of entry {i}")
        code = m.u8(f"type of '{key}'")
        value = _read_value(m, code, key, name)
        if key in metadata:
            raise FormatError(f"{name}: duplicate metadata key '{key}'")
        metadata[key] = value
        types[key] = MetaType(code)
    if m.remaining != 0:
        raise FormatError(f"{name}: {m.remaining} unexpected bytes after the metadata")

    # Tensor directory.
    d = _Cursor(buf, dir_offset, data_offset, name + " tensor directory")
    data_size = file_size - data_offset
    if tensor_count * 24 > d.remaining:
        raise FormatError(f"{name}: tensor count {tensor_count} cannot fit in {d.remaining} bytes")
    info: dict = {}
    for i in range(tensor_count):
        nlen = d.u16(f"name length of tensor {i}")
        if nlen == 0 or nlen > MAX_KEY_BYTES:
            raise FormatError(f"{name}: tensor {i} has name length {nlen} (must be 1...{MAX_KEY_BYTES})")
        tname = d.utf8(nlen, f"name of tensor {i}")
        code = d.u8(f"dtype of '{tname}'")
        if code not in DType._value2member_map_:
            raise FormatError(f"{name}: tensor '{tname}' has unknown dtype code {code}")
        dtype = DType(code)
        if dtype is DType.Q8R and major < 2:
            raise FormatError(f"{name}: tensor '{tname}' has dtype q8r (code 4), which needs format version 2; "
                              f"the file says {major}.{minor}")
        if dtype in (DType.Q8RI, DType.Q4I) and major < 4:
            raise FormatError(f"{name}: tensor '{tname}' has dtype {dtype.label} (code {int(dtype)}), which needs format version 4; "
                              f"the file says {major}.{minor}")
        rank = d.u8(f"rank of '{tname}'")
        pad = d.u16(f"reserved field of '{tname}'")
        if rank < 1 or rank > MAX_RANK:
            raise FormatError(f"{name}: tensor '{tname}' has rank {rank} (must be 1...{MAX_RANK})")
        if pad != 0:
            raise FormatError(f"{name}: tensor '{tname}' has a non-zero reserved field")
        shape = []
        for k in range(rank):
            dim = d.u64(f"dimension {k} of '{tname}'")
            if dim == 0 or dim > MAX_DIMENSION:
                raise FormatError(f"{name}: tensor '{tname}' dimension {k} is {dim} (must be 1...{MAX_DIMENSION})")
            shape.append(dim)
        off = d.u64(f"offset of '{tname}'")
        length = d.u64(f"byte length of '{tname}'")
        expected = dtype.byte_count(shape)
        if expected > _INT64_MAX:
            raise FormatError(f"{name}: tensor '{tname}' shape {shape} overflows its byte size")
        if length != expected:
            raise FormatError(f"{name}: tensor '{tname}' has byte length {length}, but {dtype.label} {shape} "
                              f"needs {expected}")
        if off % ALIGNMENT != 0:
            raise FormatError(f"{name}: tensor '{tname}' offset {off} is not a multiple of {ALIGNMENT}")
        if off > data_size or length > data_size - off:
            raise FormatError(f"{name}: tensor '{tname}' (offset {off}, {length} bytes) extends past the end "
                              f"of the data section ({data_size} bytes)")
        if tname in info:
            raise FormatError(f"{name}: duplicate tensor name '{tname}'")
        info[tname] = TensorInfo(tname, dtype, tuple(shape), off, length)
    if d.remaining >= ALIGNMENT or any(buf[d.pos:d.end]):
        raise FormatError(f"{name}: {d.remaining} unexpected bytes after the tensor directory")

    return RecurFileData(version=(major, minor), metadata=metadata, metadata_types=types, info=info,
                         buffer=buf, data_offset=data_offset, checksum=stored_crc, file_size=file_size)


def _read_value(m: _Cursor, code: int, key: str, name: str):
    if code == 1:
        return m.i64(f"value of '{key}'")
    if code == 2:
        return m.f64(f"value of '{key}'")
    if code == 3:
        v = m.u8(f"value of '{key}'")
        if v > 1:
            raise FormatError(f"{name}: boolean '{key}' has value {v}")
        return v == 1
    if code == 4:
        n = m.u32(f"length of '{key}'")
        if n > MAX_STRING_BYTES:
            raise FormatError(f"{name}: string '{key}' is {n} bytes, over the cap of {MAX_STRING_BYTES}")
        return m.utf8(n, f"value of '{key}'")
    if code == 5:
        count = m.u32(f"count of '{key}'")
        if count > m.remaining // 4:
            raise FormatError(f"{name}: string array '{key}' claims {count} items, more than its section can hold")
        out = []
        for i in range(count):
            n = m.u32(f"length of item {i} of '{key}'")
            if n > MAX_STRING_BYTES:
                raise FormatError(f"{name}: item {i} of '{key}' is {n} bytes, over the cap")
            out.append(m.utf8(n, f"item {i} of '{key}'"))
        return out
    if code in (6, 7):
        count = m.u32(f"count of '{key}'")
        if count > m.remaining // 8:
            raise FormatError(f"{name}: array '{key}' claims {count} items, more than its section can hold")
        m.need(8 * count, f"items of '{key}'")
        arr = np.frombuffer(m.buf, dtype="<i8" if code == 6 else "<f8", count=count, offset=m.pos)
        m.pos += 8 * count
        return [int(x) for x in arr] if code == 6 else [float(x) for x in arr]
    raise FormatError(f"{name}: metadata '{key}' has unknown type code {code}")


# --- Writing -------------------------------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_float(v) -> bool:
    return isinstance(v, (float, np.floating))


def _infer(key: str, v) -> Typed:
    if isinstance(v, Typed):
        return v
    if isinstance(v, (bool, np.bool_)):
        return Typed(MetaType.BOOL, bool(v))
    if _is_int(v):
        return Typed(MetaType.INT, int(v))
    if _is_float(v):
        return Typed(MetaType.FLOAT, float(v))
    if isinstance(v, str):
        return Typed(MetaType.STRING, v)
    if isinstance(v, np.ndarray):
        if v.ndim != 1:
            raise FormatError(f"metadata '{key}': arrays must be one-dimensional (got shape {v.shape})")
        if v.dtype.kind in "iu":
            return Typed(MetaType.INTS, [int(x) for x in v])
        if v.dtype.kind == "f":
            return Typed(MetaType.FLOATS, [float(x) for x in v])
        if v.dtype.kind == "U":
            return Typed(MetaType.STRINGS, [str(x) for x in v])
        raise FormatError(f"metadata '{key}': cannot store a numpy array of {v.dtype}")
    if isinstance(v, (list, tuple)):
        if not v:
            raise FormatError(f"metadata '{key}': the type of an empty list is ambiguous; wrap it, "
                              f"e.g. Typed.strings([]), Typed.ints([]) or Typed.floats([])")
        if all(isinstance(x, str) for x in v):
            return Typed(MetaType.STRINGS, list(v))
        if all(_is_int(x) for x in v):
            return Typed(MetaType.INTS, [int(x) for x in v])
        if all(_is_int(x) or _is_float(x) for x in v):
            return Typed(MetaType.FLOATS, [float(x) for x in v])
        raise FormatError(f"metadata '{key}': a list must hold only strings, only integers or only numbers")
    raise FormatError(f"metadata '{key}': cannot store a value of type {type(v).__name__}")


def _utf8(s, what: str) -> bytes:
    if not isinstance(s, str):
        raise FormatError(f"{what} must be a string (got {type(s).__name__})")
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError(f"{what} is not encodable as UTF-8") from None


def _string_bytes(s, what: str) -> bytes:
    u = _utf8(s, what)
    if len(u) > MAX_STRING_BYTES:
        raise FormatError(f"{what} is {len(u)} bytes, over the cap of {MAX_STRING_BYTES}")
    return struct.pack("<I", len(u)) + u


def _encode_value(key: str, t: Typed) -> bytes:
    ty = MetaType(t.type)
    v = t.value
    try:
        if ty is MetaType.INT:
            if not _is_int(v):
                raise FormatError(f"metadata '{key}': {v!r} is not an integer")
            if not _INT64_MIN <= int(v) <= _INT64_MAX:
                raise FormatError(f"metadata '{key}': {v} does not fit in a signed 64-bit integer")
            return struct.pack("<Bq", ty, int(v))
        if ty is MetaType.FLOAT:
            if not (_is_int(v) or _is_float(v)):
                raise FormatError(f"metadata '{key}': {v!r} is not a number")
            return struct.pack("<Bd", ty, float(v))
        if ty is MetaType.BOOL:
            if not isinstance(v, (bool, np.bool_)):
                raise FormatError(f"metadata '{key}': {v!r} is not a boolean")
            return struct.pack("<BB", ty, 1 if v else 0)
        if ty is MetaType.STRING:
            return struct.pack("<B", ty) + _string_bytes(v, f"metadata '{key}'")
        items = list(v)
        if len(items) > _UINT32_MAX:
            raise FormatError(f"metadata '{key}': {len(items)} items do not fit in a 32-bit count")
        head = struct.pack("<BI", ty, len(items))
        if ty is MetaType.STRINGS:
            return head + b"".join(_string_bytes(s, f"item {i} of metadata '{key}'") for i, s in enumerate(items))
        if ty is MetaType.INTS:
            for x in items:
                if not _is_int(x) or not _INT64_MIN <= int(x) <= _INT64_MAX:
                    raise FormatError(f"metadata '{key}': {x!r} is not a signed 64-bit integer")
            return head + np.array([int(x) for x in items], dtype="<i8").tobytes()
        for x in items:
            if not (_is_int(x) or _is_float(x)):
                raise FormatError(f"metadata '{key}': {x!r} is not a number")
        return head + np.array([float(x) for x in items], dtype="<f8").tobytes()
    except (TypeError, OverflowError) as e:
        raise FormatError(f"metadata '{key}': {e}") from None


def _pairs(items) -> list:
    if isinstance(items, Mapping):
        return list(items.items())
    return [tuple(p) for p in items]


def _encode_tensor(name: str, value, dtype) -> RawTensor:
    if isinstance(value, RawTensor):
        dt = DType.parse(value.dtype)
        shape = tuple(int(d) for d in value.shape)
        data = bytes(value.data)
        if dtype is not None and DType.parse(dtype) is not dt:
            raise FormatError(f"tensor '{name}' is already encoded as {dt.label}, not {DType.parse(dtype).label}")
    else:
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiu":
            raise FormatError(f"tensor '{name}': cannot store an array of {arr.dtype}")
        if dtype is None:
            dt = DType.F16 if arr.dtype == np.float16 else DType.F32
        else:
            dt = DType.parse(dtype)
        shape = tuple(int(d) for d in arr.shape)
        data = None
    if not 1 <= len(shape) <= MAX_RANK:
        raise FormatError(f"tensor '{name}' has rank {len(shape)} (must be 1...{MAX_RANK})")
    for k, d in enumerate(shape):
        if not 1 <= d <= MAX_DIMENSION:
            raise FormatError(f"tensor '{name}' dimension {k} is {d} (must be 1...{MAX_DIMENSION})")
    if data is None:
        data = quantize(arr, dt)
    if len(data) != dt.byte_count(shape):
        raise FormatError(f"tensor '{name}': {len(data)} bytes, but {dt.label} {list(shape)} needs "
                          f"{dt.byte_count(shape)}")
    return RawTensor(dt, shape, data)


def serialize(metadata, tensors, dtypes: Mapping[str, Union[DType, str]] | None = None) -> bytes:
    """The bytes of a file holding ``metadata`` and ``tensors`` in the given order.

    ``metadata``: a mapping (or a sequence of pairs) of key → value (plain Python value or :class:`Typed`).
    ``tensors``: a mapping (or pairs) of name → numpy array or :class:`RawTensor`. Arrays are written as
    f32 (float16 arrays as f16) unless ``dtypes[name]`` names another type; they are converted to float32
    first, then encoded with :func:`quantize`.
    """
    return bytes(_serialize(metadata, tensors, dtypes))


def _serialize(metadata, tensors, dtypes) -> bytearray:
    """:func:`serialize`, returning the buffer it builds (``write`` writes it without another copy)."""
    dtypes = dict(dtypes or {})
    meta = _pairs(metadata)
    tens = _pairs(tensors)
    if len(meta) > MAX_METADATA_COUNT:
        raise FormatError(f"{len(meta)} metadata entries exceed the cap of {MAX_METADATA_COUNT}")
    if len(tens) > MAX_TENSOR_COUNT:
        raise FormatError(f"{len(tens)} tensors exceed the cap of {MAX_TENSOR_COUNT}")
    unknown = set(dtypes) - {n for n, _ in tens}
    if unknown:
        raise FormatError(f"dtypes given for tensors that are not written: {sorted(unknown)}")

    out = bytearray(HEADER_SIZE)
    seen = set()
    for key, value in meta:
        k = _utf8(key, "a metadata key")
        if not 1 <= len(k) <= MAX_KEY_BYTES:
            raise FormatError(f"metadata key '{key}' is {len(k)} bytes (must be 1...{MAX_KEY_BYTES})")
        if key in seen:
            raise FormatError(f"duplicate metadata key '{key}'")
        seen.add(key)
        out += struct.pack("<H", len(k)) + k + _encode_value(key, _infer(key, value))
    dir_offset = len(out)

    encoded = []
    seen = set()
    for tname, value in tens:
        n = _utf8(tname, "a tensor name")
        if not 1 <= len(n) <= MAX_KEY_BYTES:
            raise FormatError(f"tensor name '{tname}' is {len(n)} bytes (must be 1...{MAX_KEY_BYTES})")
        if tname in seen:
            raise FormatError(f"duplicate tensor name '{tname}'")
        seen.add(tname)
        encoded.append((n, _encode_tensor(tname, value, dtypes.get(tname))))

    offsets = []
    offset = 0
    for _, t in encoded:
        offsets.append(offset)
        offset = -(-(offset + len(t.data)) // ALIGNMENT) * ALIGNMENT
    for (n, t), off in zip(encoded, offsets):
        out += struct.pack("<H", len(n)) + n + struct.pack("<BBH", t.dtype, len(t.shape), 0)
        out += struct.pack(f"<{len(t.shape)}Q", *t.shape) + struct.pack("<QQ", off, len(t.data))
    out += bytes(-len(out) % ALIGNMENT)
    data_offset = len(out)
    for (_, t), off in zip(encoded, offsets):
        out += bytes(data_offset + off - len(out))
        out += t.data

    # The lowest version that describes the file: 3.0 for frame models, mean pooling or the regress task
    # (a 2.x reader would find no tokenizer or ignore the pooling), and for a file that records its text
    # preprocessing or padding (tokenizer.splitter other than recur, pad_mask false, pad_length: a 2.x reader
    # would ignore them); 2.0 for q8r tensors or encoder.reverse_source = true (a 1.x reader would ignore
    # that key and misread the model); else 1.0. 4.0 for a q8ri tensor (a 3.x reader knows no dtype 5).
    # 5.0 for a decoder with an attention layer (a 4.x reader knows no layer kind "attention"). 6.0 for a
    # tokenizer with unknown-word signatures (a 5.x reader would ignore tokenizer.unk_signatures).
    def has(k, typed):
        return any(key == k and _infer(key, value) == typed for key, value in meta)
    reverse = has("encoder.reverse_source", Typed(MetaType.BOOL, True))
    major = 2 if reverse or any(t.dtype == DType.Q8R for _, t in encoded) else 1
    if (has("model.input", Typed(MetaType.STRING, "frames")) or has("model.pooling", Typed(MetaType.STRING, "mean"))
            or has("model.task", Typed(MetaType.STRING, "regress"))
            or any(_version3_key(key, value) for key, value in meta)):
        major = 3
    if any(t.dtype in (DType.Q8RI, DType.Q4I) for _, t in encoded):
        major = 4
    if any(key.endswith(".kind") and _infer(key, value) == Typed(MetaType.STRING, "attention") for key, value in meta):
        major = 5
    if any(key.endswith("tokenizer.unk_signatures") and _infer(key, value) == Typed(MetaType.BOOL, True)
           for key, value in meta):
        major = 6
    struct.pack_into("<8sHHIQIIQQQII", out, 0, MAGIC, major, VERSION_MINOR, 0, len(out), len(meta),
                     len(encoded), HEADER_SIZE, dir_offset, data_offset, 0, 0)
    struct.pack_into("<I", out, CHECKSUM_OFFSET, zlib.crc32(out) & 0xFFFFFFFF)
    return out


def _version3_key(key: str, value) -> bool:
    """Keys that a 2.x reader would ignore and so misread the model (docs/FORMAT.md §10)."""
    for prefix in ("tokenizer.", "source_tokenizer."):
        if key.startswith(prefix):
            name, t = key[len(prefix):], _infer(key, value)
            if name == "splitter":
                return t != Typed(MetaType.STRING, "recur")
            if name == "pad_mask":
                return t == Typed(MetaType.BOOL, False)
            return name == "pad_length"
    return False


def write(path: Union[str, os.PathLike], metadata, tensors,
          dtypes: Mapping[str, Union[DType, str]] | None = None) -> None:
    """Serializes (see :func:`serialize`) and writes the file atomically: to a temporary file in the same
    folder, flushed to disk, then renamed over ``path``. An earlier file at ``path`` is never left
    half-written."""
    blob = _serialize(metadata, tensors, dtypes)
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    # Flush the folder too, so that the rename survives a power loss (best effort: not every system can).
    try:
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
