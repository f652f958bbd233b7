"""The .recur format: the Python reader/writer against the specification (docs/FORMAT.md) and against the
Swift implementation (through the `recur` CLI)."""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _format_support import (create, meta_entry, patch, rf, run_cli, tensor_entry,  # noqa: E402
                             with_crc)

CELLS = ["gru", "gru-reset-before", "lstm", "peephole-lstm", "rnn", "rnn-relu"]


# --- Round trips -----------------------------------------------------------------------------------

def all_types_metadata():
    return {
        "model.task": "generate",
        "an.int": -(1 << 63),
        "a.big.int": (1 << 63) - 1,
        "a.float": 2.5,
        "a.nan": float("nan"),
        "a.negzero": -0.0,
        "a.bool": True,
        "another.bool": False,
        "a.string": "héllo\u0000wörld ✓ 𝄞",
        "empty.string": "",
        "strings": ["a", "", "\n", "日本"],
        "ints": [1, -2, 3 << 40],
        "floats": [0.1, -1e300, 5e-324],
        "mixed.numbers": [1, 2.5],
        "forced.float": rf.Typed.float(2),
        "empty.strings": rf.Typed.strings([]),
        "empty.ints": rf.Typed.ints([]),
        "empty.floats": rf.Typed.floats([]),
        "numpy.ints": np.array([4, 5], dtype=np.int32),
        "numpy.floats": np.array([0.5], dtype=np.float32),
        "numpy.scalar": np.int64(7),
        "k" * 256: 1,
    }


def test_round_trip_every_value_type_and_dtype(tmp_path):
    rng = np.random.default_rng(3)
    tensors = {
        "a.f32.rank1": rng.standard_normal(5).astype(np.float32),
        "b.f32.rank4": rng.standard_normal((2, 3, 1, 4)).astype(np.float32),
        "c.f16": rng.standard_normal((3, 7)).astype(np.float16),
        "d.q8": rng.standard_normal((4, 70)).astype(np.float32),
        "e.q4": rng.standard_normal((3, 33)).astype(np.float32),
        "f.q4.rank1": rng.standard_normal(31).astype(np.float32),
        "g.q8.rank3": rng.standard_normal((2, 2, 32)).astype(np.float32),
    }
    dtypes = {"d.q8": "q8", "e.q4": rf.DType.Q4, "f.q4.rank1": "q4", "g.q8.rank3": "q8"}
    meta = all_types_metadata()
    path = tmp_path / "all.recur"
    rf.write(path, meta, tensors, dtypes)
    blob = path.read_bytes()
    d = rf.read(path)
    assert d.version == (1, 0)
    assert list(d.metadata) == list(meta)
    expected_types = {
        "an.int": rf.MetaType.INT, "a.float": rf.MetaType.FLOAT, "a.bool": rf.MetaType.BOOL,
        "a.string": rf.MetaType.STRING, "strings": rf.MetaType.STRINGS, "ints": rf.MetaType.INTS,
        "floats": rf.MetaType.FLOATS, "mixed.numbers": rf.MetaType.FLOATS, "forced.float": rf.MetaType.FLOAT,
        "empty.strings": rf.MetaType.STRINGS, "empty.ints": rf.MetaType.INTS,
        "empty.floats": rf.MetaType.FLOATS, "numpy.ints": rf.MetaType.INTS,
        "numpy.floats": rf.MetaType.FLOATS, "numpy.scalar": rf.MetaType.INT,
    }
    for k, t in expected_types.items():
        assert d.metadata_types[k] == t, k
    for k, v in meta.items():
        got = d.metadata[k]
        if isinstance(v, rf.Typed):
            v = float(v.value) if v.type == rf.MetaType.FLOAT else v.value
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if k == "a.nan":
            assert math.isnan(got)
        elif k == "a.negzero":
            assert got == 0.0 and math.copysign(1, got) < 0
        else:
            assert got == v and type(got) is type(v if not isinstance(v, np.generic) else v.item()), k
    assert type(d.metadata["forced.float"]) is float
    assert type(d.metadata["a.bool"]) is bool

    assert list(d.tensors) == list(tensors)
    for name, arr in tensors.items():
        got = d.tensors[name]
        assert got.shape == arr.shape
        if name.startswith(("a.", "b.")):
            assert got.dtype == np.float32 and np.array_equal(got, arr)
        elif name == "c.f16":
            assert got.dtype == np.float16 and np.array_equal(got, arr)
            assert d.info[name].dtype == rf.DType.F16
        else:
            # Blocked types decode to float32 within half a quantization step of the input.
            assert got.dtype == np.float32
            rows = arr.reshape(-1, arr.shape[-1])
            out = got.reshape(rows.shape)
            for r in range(rows.shape[0]):
                for b0 in range(0, rows.shape[1], 32):
                    blk = rows[r, b0:b0 + 32]
                    step = np.abs(blk).max() / (127 if "q8" in name else 8)
                    bound = step * (0.5 if "q8" in name else 1.0)
                    assert np.abs(out[r, b0:b0 + 32] - blk).max() <= bound * (1 + 1e-6)
            assert bytes(d.raw(name)) == rf.quantize(arr, d.info[name].dtype)

    # Re-serializing what was read gives the same bytes.
    assert rf.serialize(d.typed_metadata(), d.raw_tensors()) == blob
    # Every tensor starts at a multiple of 64 from the file start; the file ends at the last tensor.
    for t in d.info.values():
        assert (d.data_offset + t.offset) % 64 == 0
    last = max(d.info.values(), key=lambda t: t.offset)
    assert d.data_offset + last.offset + last.nbytes == len(blob)


def test_q8ri_is_q8r_interleaved_and_version(tmp_path):
    """q8ri (format 4.0): q8r's scales and codes, rows interleaved in groups of 16 (docs/FORMAT.md §7),
    written out here element by element; a file holding q8ri is version 4.0, and q8ri in a 3.0 file is
    refused."""
    def signed(b):
        return b - 256 if b > 127 else b

    rng = np.random.default_rng(9)
    arr = rng.standard_normal((19, 70)).astype(np.float32)
    per = rf.quantize(arr, "q8r")
    il = rf.quantize(arr, "q8ri")
    n, gb = 96, 128 + 16 * 96
    assert len(il) == 2 * gb == rf.DType.Q8RI.byte_count((19, 70))
    for r in range(32):
        g, i = (r // 16) * gb, r % 16
        scale, total = struct.unpack_from("<fi", il, g + 4 * i)[0], struct.unpack_from("<i", il, g + 64 + 4 * i)[0]
        codes = [signed(il[g + 128 + 64 * (c // 4) + 4 * i + c % 4]) for c in range(n)]
        if r < 19:
            row = per[r * (4 + n):(r + 1) * (4 + n)]
            assert scale == struct.unpack_from("<f", row)[0]
            assert codes == [signed(b) for b in row[4:]]
            assert total == sum(codes)
        else:
            assert scale == 0 and total == 0 and not any(codes)
    assert np.array_equal(rf.dequantize(il, "q8ri", (19, 70)), rf.dequantize(per, "q8r", (19, 70)))
    path = tmp_path / "i.recur"
    rf.write(path, {"x": 1}, {"w": arr}, {"w": "q8ri"})
    d = rf.read(path)
    assert d.version == (4, 0) and d.info["w"].dtype == rf.DType.Q8RI
    blob = bytearray(path.read_bytes())
    struct.pack_into("<H", blob, 8, 3)
    with pytest.raises(rf.FormatError, match="needs format version 4"):
        rf.read(bytes(blob), verify_checksum=False)


def test_q4i_is_q4_interleaved(tmp_path):
    """q4i (format 4.0): q4's scales and nibbles, rows interleaved by 16 and each block's nibbles in the order
    of docs/FORMAT.md §7, written out here element by element; padding rows are scale 0, nibble 8."""
    rng = np.random.default_rng(10)
    arr = rng.standard_normal((19, 70)).astype(np.float32)
    per, il = rf.quantize(arr, "q4"), rf.quantize(arr, "q4i")
    nb = 3
    assert len(il) == 2 * 320 * nb == rf.DType.Q4I.byte_count((19, 70))
    for r in range(32):
        for c in range(32 * nb):
            b, j, i = c // 32, c % 32, r % 16
            block = (r // 16) * 320 * nb + 320 * b
            scale = struct.unpack_from("<f", il, block + 4 * i)[0]
            byte = il[block + 64 + 64 * (j // 8) + 4 * i + j % 4]
            nib = byte >> 4 if j % 8 >= 4 else byte & 15
            if r < 19:
                assert scale == struct.unpack_from("<f", per, r * 20 * nb + 4 * b)[0]
                q = per[r * 20 * nb + 4 * nb + 16 * b + j % 16]
                assert nib == (q & 15 if j < 16 else q >> 4)
            else:
                assert scale == 0 and nib == 8
    assert np.array_equal(rf.dequantize(il, "q4i", (19, 70)), rf.dequantize(per, "q4", (19, 70)))
    path = tmp_path / "q.recur"
    rf.write(path, {"x": 1}, {"w": arr}, {"w": "q4i"})
    assert rf.read(path).version == (4, 0)


def test_q8r_round_trip_and_version(tmp_path):
    """q8r (format 2.0): one scale per row, half a step of error at most; a file holding q8r is
    written as version 2.0 and one without as 1.0; q8r in a 1.x file is refused."""
    rng = np.random.default_rng(8)
    arr = rng.standard_normal((5, 70)).astype(np.float32)
    path = tmp_path / "r.recur"
    rf.write(path, {"x": 1}, {"w": arr, "v": np.ones(3, np.float32)}, {"w": "q8r"})
    d = rf.read(path)
    assert d.version == (2, 0) and d.info["w"].dtype == rf.DType.Q8R
    assert d.info["w"].nbytes == 5 * (4 + 3 * 32)
    got = d.tensors["w"]
    for r in range(5):
        step = np.abs(arr[r]).max() / 127
        assert np.abs(got[r] - arr[r]).max() <= step * 0.5 * (1 + 1e-6)
    raw = bytes(d.raw("w"))
    assert all(raw[r * 100 + 4 + 70:(r + 1) * 100] == bytes(26) for r in range(5))   # zero padding
    blob = bytearray(rf.serialize(d.typed_metadata(), d.raw_tensors()))
    assert blob[8:12] == struct.pack("<HH", 2, 0)
    blob[8:10] = struct.pack("<H", 1)                   # the same file labelled 1.0
    import zlib
    struct.pack_into("<I", blob, 56, 0)
    struct.pack_into("<I", blob, 56, zlib.crc32(blob) & 0xFFFFFFFF)
    with pytest.raises(rf.FormatError, match="needs format version 2"):
        rf.read(bytes(blob))
    rf.write(path, {"x": 1}, {"w": arr}, {"w": "q8"})
    assert rf.read(path).version == (1, 0)


def test_reverse_source_is_written_as_version_2():
    """encoder.reverse_source = true changes how the model reads its input, so a 1.x reader (which
    ignores unknown keys) would misread it: such files are 2.0; with false, or without the key, 1.0."""
    t = {"w": np.zeros(2, np.float32)}
    assert rf.read(rf.serialize({"encoder.reverse_source": True}, t)).version == (2, 0)
    assert rf.read(rf.serialize({"encoder.reverse_source": False}, t)).version == (1, 0)
    assert rf.read(rf.serialize({"x": 1}, t)).version == (1, 0)


def test_header_fields_follow_the_spec(tmp_path):
    blob = rf.serialize({"x": 1}, {"t": np.zeros((2, 3), np.float32)})
    magic, major, minor, flags, size, mc, tc, mo, do, dao, crc, res = struct.unpack_from("<8sHHIQIIQQQII", blob)
    assert magic == b"\x89RCR\r\n\x1a\n" and (major, minor, flags, res) == (1, 0, 0, 0)
    assert size == len(blob) and (mc, tc, mo) == (1, 1, 64)
    # metadata entry: u16 key length, key, u8 type, i64
    assert blob[64:64 + 12] == struct.pack("<H", 1) + b"x" + b"\x01" + struct.pack("<q", 1)
    assert do == 64 + 12
    # directory entry: u16, name, u8 dtype, u8 rank, u16 0, dims, offset, length; then zero padding to 64
    entry = struct.pack("<H", 1) + b"t" + struct.pack("<BBH", 0, 2, 0) + struct.pack("<QQQQ", 2, 3, 0, 24)
    assert blob[do:do + len(entry)] == entry
    assert dao == 128 and blob[do + len(entry):dao] == bytes(dao - do - len(entry))
    assert blob[dao:] == np.zeros(6, "<f4").tobytes()
    import zlib
    zeroed = blob[:56] + b"\0\0\0\0" + blob[60:]
    assert crc == zlib.crc32(zeroed)


def test_quantized_layouts_match_the_worked_rows_of_the_spec():
    row = np.array([[0.5, -1.0, 0.25]], np.float32)
    q8 = rf.quantize(row, "q8")
    assert q8 == bytes.fromhex("0402013c") + bytes([64, 0x81, 32]) + bytes(29)
    q4 = rf.quantize(row, "q4")
    assert q4 == bytes.fromhex("0000003e") + bytes([0x8C, 0x80, 0x8A]) + bytes([0x88] * 13)
    assert np.array_equal(rf.dequantize(q4, "q4", (1, 3)), row)
    # q4 nibble placement: element j < 16 in the low nibble of byte j, element j + 16 in its high nibble.
    # Elements 0..15 are j − 8, elements 16..31 are 7 − (j − 16): the extreme −8 comes first, so scale = 1.
    vals = np.concatenate([np.arange(16) - 8, 7 - np.arange(16)]).astype(np.float32)
    raw = rf.quantize(vals, "q4")
    assert struct.unpack_from("<f", raw)[0] == 1.0
    for j in range(16):
        byte = raw[4 + j]
        assert byte & 0x0F == j and byte >> 4 == 15 - j
    assert np.array_equal(rf.dequantize(raw, "q4", (32,)), vals)
    # q8 half-way rounding goes away from zero: 63.5 → 64 and −63.5 → −64
    raw = rf.quantize(np.array([127.0, 63.5, -63.5], np.float32), "q8")
    assert struct.unpack_from("<f", raw)[0] == 1.0 and raw[4:7] == bytes([127, 64, 256 - 64])
    # q8r: one scale per row, then the row's values padded to 32.
    r8 = rf.quantize(row, "q8r")
    assert r8 == bytes.fromhex("0402013c") + bytes([64, 0x81, 32]) + bytes(29)
    assert rf.quantize(np.zeros((2, 3), np.float32), "q8r") == bytes(72)
    # An all-zero block: q8 scale +0, q4 scale −0 (0 / −8) with every nibble 8.
    assert rf.quantize(np.zeros(3, np.float32), "q8") == bytes(36)
    z4 = rf.quantize(np.zeros(3, np.float32), "q4")
    assert z4 == bytes.fromhex("00000080") + bytes([0x88] * 16)


def test_writer_refuses_what_a_reader_would_reject(tmp_path):
    t = {"w": np.zeros(2, np.float32)}
    cases = [
        ({"empty": []}, t, "ambiguous"),
        ({"k" * 257: 1}, t, "must be 1...256"),
        ({"": 1}, t, "must be 1...256"),
        ([("a", 1), ("a", 2)], t, "duplicate metadata key"),
        ({"big": 1 << 63}, t, "signed 64-bit"),
        ({"odd": [1, "x"]}, t, "only strings"),
        ({"obj": object()}, t, "cannot store"),
        ({"x": rf.Typed.ints([1.5])}, t, "not a signed 64-bit integer"),
        ({}, {"r5": np.zeros((1, 1, 1, 1, 1), np.float32)}, "rank 5"),
        ({}, {"scalar": np.float32(1)}, "rank 0"),
        ({}, {"e": np.zeros((0, 3), np.float32)}, "dimension 0 is 0"),
        ({}, [("w", np.zeros(1)), ("w", np.zeros(1))], "duplicate tensor name"),
        ({}, {"raw": rf.RawTensor(rf.DType.Q8, (2, 3), b"\0" * 10)}, "needs 72"),
    ]
    for meta, tensors, phrase in cases:
        with pytest.raises(rf.FormatError, match=phrase.replace(".", r"\.") if phrase else None):
            rf.serialize(meta, tensors)
    # f32 stores NaN as is (the model loader rejects it); the blocked types cannot encode it.
    assert math.isnan(rf.read(rf.serialize({}, {"nan": np.array([np.nan])})).tensors["nan"][0])
    with pytest.raises(rf.FormatError, match="non-finite"):
        rf.serialize({}, {"nan": np.array([1.0, np.inf])}, dtypes={"nan": "q4"})
    with pytest.raises(rf.FormatError, match="not written"):
        rf.serialize({}, t, dtypes={"other": "q8"})


def test_write_is_atomic(tmp_path):
    path = tmp_path / "m.recur"
    rf.write(path, {"v": 1}, {})
    first = path.read_bytes()
    with pytest.raises(rf.FormatError):
        rf.write(path, {"v": []}, {})                  # fails while serializing: the old file stays
    assert path.read_bytes() == first
    rf.write(path, {"v": 2}, {})
    assert rf.read(path).metadata == {"v": 2}
    assert sorted(os.listdir(tmp_path)) == ["m.recur"]  # no temporary file left behind
    assert rf.read(path).file_size == len(path.read_bytes())


# --- Swift-written files -----------------------------------------------------------------------------

GATES = {"gru": 3, "gru-reset-before": 3, "lstm": 4, "peephole-lstm": 4, "rnn": 1, "rnn-relu": 1}


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_swift_files_read_and_reserialize_identically(tmp_path, cell, layers):
    path = tmp_path / f"{cell}.recur"
    blob = create(path, cell=cell, layers=layers, hidden=8, embedding=5, seed=11)
    d = rf.read(path)
    m = d.metadata
    kind = {"gru": "gru", "gru-reset-before": "gru", "lstm": "lstm", "peephole-lstm": "lstm"}.get(cell, "rnn")
    V = len(m["tokenizer.tokens"])
    assert m["model.task"] == "generate" and m["model.layer_count"] == layers + 2
    assert m["layer.0.kind"] == "embedding" and d.tensors["layer.0.embeddings"].shape == (V, 5)
    G = GATES[cell]
    for i in range(1, layers + 1):
        p = f"layer.{i}."
        assert m[p + "kind"] == kind
        In = 5 if i == 1 else 8
        assert d.tensors[p + "kernel"].shape == (G * 8, In)
        assert d.tensors[p + "recurrent_kernel"].shape == (G * 8, 8)
        assert d.tensors[p + "bias"].shape == (G * 8,)
        assert (p + "recurrent_bias" in d.tensors) == (cell == "gru")
        assert (p + "peephole" in d.tensors) == (cell == "peephole-lstm")
        if cell == "peephole-lstm":
            assert d.tensors[p + "peephole"].shape == (3, 8)
        assert m[p + "activation"] == ("relu" if cell == "rnn-relu" else "tanh")
        if kind == "gru":
            assert m[p + "reset_after"] is (cell == "gru")
    last = f"layer.{layers + 1}."
    assert m[last + "kind"] == "dense" and d.tensors[last + "kernel"].shape == (V, 8)
    assert all(t.dtype == rf.DType.F32 for t in d.info.values())
    # Plain values (types inferred) and typed values both reproduce the Swift writer's bytes.
    assert rf.serialize(d.metadata, d.tensors) == blob
    assert rf.serialize(d.typed_metadata(), d.raw_tensors()) == blob
    out = tmp_path / "py.recur"
    rf.write(out, d.metadata, {k: np.array(v) for k, v in d.tensors.items()})
    assert out.read_bytes() == blob


def test_swift_reads_python_files(tmp_path):
    d = rf.read(create(tmp_path / "a.recur", cell="lstm", hidden=6, embedding=3))
    meta = dict(d.metadata)
    meta["general.name"] = "written by format.py"
    meta["myapp.empty"] = rf.Typed.ints([])
    meta["myapp.values"] = [0.25, 1e-3]
    path = tmp_path / "b.recur"
    rf.write(path, meta, d.tensors, dtypes={"layer.1.kernel": "q4", "layer.1.recurrent_kernel": "q8",
                                          "layer.2.kernel": "f16", "layer.0.embeddings": "q8"})
    info = json.loads(run_cli("info", "--json", path).stdout)
    back = rf.read(path)
    assert info["format_version"] == "1.0"
    assert info["checksum"] == f"0x{back.checksum:08x}" and info["file_bytes"] == back.file_size
    assert [(t["name"], t["dtype"], tuple(t["shape"]), t["bytes"]) for t in info["tensors"]] == \
           [(t.name, t.dtype.label, t.shape, t.nbytes) for t in back.info.values()]
    assert info["metadata"]["general.name"] == "written by format.py"
    assert info["metadata"]["myapp.empty"] == [] and info["metadata"]["myapp.values"] == [0.25, 1e-3]


# --- Rejections: each malformed file has its own error, in Python and in Swift -------------------------

@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A valid Swift-written model; its first metadata entry is general.producer (a string)."""
    p = tmp_path_factory.mktemp("base") / "base.recur"
    return create(p, cell="gru", hidden=8, embedding=4, chars="abcdefgh")


def _meta_prefix(base: bytes, extra_first: dict) -> bytes:
    """`base` with extra metadata entries placed first (valid file)."""
    d = rf.read(base)
    return rf.serialize({**extra_first, **d.metadata}, d.raw_tensors())


def corruptions(base: bytes) -> list:
    """(id, bytes, phrase) for one defect at a time; the checksum is valid unless the defect is the checksum."""
    size = len(base)
    dir_off, data_off = struct.unpack_from("<QQ", base, 40)
    data_size = size - data_off
    emb = tensor_entry(base, "layer.0.embeddings")
    bias = tensor_entry(base, "layer.1.bias")
    prod = meta_entry(base, "general.producer")
    dup = _meta_prefix(base, {"zz": 1, "zy": 2})
    dup = with_crc(dup.replace(b"\x02\x00zy", b"\x02\x00zz", 1))
    rank4 = rf.read(base)
    r4 = rf.serialize(rank4.metadata, {**rank4.raw_tensors(),
                                       "x.extra": np.zeros((1, 1, 1, 1), np.float32)})
    x4 = tensor_entry(r4, "x.extra")
    r4 = patch(r4, x4["dims"], "<QQQQ", 1 << 31, 1 << 31, 1 << 31, 1 << 31)
    flipped = bytearray(base)
    flipped[data_off + 100] ^= 0x01
    cases = [
        ("empty", b"", "empty (0 bytes)"),
        ("short-bad-magic", b"GIF89a", "bad magic"),
        ("short-truncated-header", base[:30], "smaller than the 64-byte header"),
        ("bad-magic", b"\x89PNG\r\n\x1a\n" + base[8:], "not a .recur file (bad magic)"),
        ("major-version", patch(base, 8, "<HH", 7, 0), "format version 7.0 is not supported"),
        ("major-version-0", patch(base, 8, "<HH", 0, 3), "format version 0.3 is not supported"),
        ("flags", patch(base, 12, "<I", 1), "reserved header fields are not zero"),
        ("reserved", patch(base, 60, "<I", 7), "reserved header fields are not zero"),
        ("truncated-file", base[:size // 2], "truncated: header says"),
        ("trailing-bytes", with_crc(base + b"abc"), "(trailing bytes)"),
        ("metadata-offset", patch(base, 32, "<Q", 72), "section offsets out of order"),
        ("data-offset-past-end", patch(base, 48, "<Q", size + 64), "section offsets out of order"),
        ("offsets-out-of-order", patch(base, 40, "<Q", data_off + 64), "section offsets out of order"),
        ("data-offset-misaligned", patch(base, 48, "<Q", data_off + 8), "is not a multiple of 64"),
        ("metadata-count-cap", patch(base, 24, "<I", (1 << 20) + 1), "exceeds the cap"),
        ("tensor-count-cap", patch(base, 28, "<I", (1 << 16) + 1), "exceeds the cap"),
        ("checksum", bytes(flipped), "checksum mismatch"),
        ("metadata-count-cannot-fit", patch(base, 24, "<I", 1 << 20), "cannot fit"),
        ("tensor-count-cannot-fit", patch(base, 28, "<I", 1 << 16), "cannot fit"),
        ("metadata-count-short", patch(base, 24, "<I", struct.unpack_from("<I", base, 24)[0] - 1),
         "unexpected bytes after the metadata"),
        ("key-length-zero", patch(base, prod["entry"], "<H", 0), "key length 0"),
        ("key-utf8", patch(base, prod["key"], "<B", 0xFF), "not valid UTF-8"),
        ("unknown-type", patch(base, prod["type"], "<B", 99), "unknown type code 99"),
        ("bool-value", patch(base, prod["type"], "<B", 3), "boolean 'general.producer' has value"),
        ("string-past-end", patch(base, prod["value"], "<I", 5000), "truncated while reading"),
        ("string-over-cap", patch(base, prod["value"], "<I", 0xFFFFFFFF), "over the cap"),
        ("strings-count", patch(patch(base, prod["type"], "<B", 5), prod["value"], "<I", 0xFFFFFFFF),
         "more than its section can hold"),
        ("ints-count", patch(patch(base, prod["type"], "<B", 6), prod["value"], "<I", 0x10000000),
         "more than its section can hold"),
        ("duplicate-key", dup, "duplicate metadata key 'zz'"),
        ("name-length-zero", patch(base, emb["entry"], "<H", 0), "name length 0"),
        ("unknown-dtype", patch(base, emb["dtype"], "<B", 9), "unknown dtype code 9"),
        ("rank-zero", patch(base, emb["rank"], "<B", 0), "has rank 0"),
        ("rank-five", patch(base, emb["rank"], "<B", 5), "has rank 5"),
        ("tensor-reserved", patch(base, emb["reserved"], "<H", 1), "non-zero reserved field"),
        ("dimension-zero", patch(base, emb["dims"], "<Q", 0), "dimension 0 is 0"),
        ("dimension-too-large", patch(base, emb["dims"], "<Q", (1 << 31) + 1), "must be 1...2147483648"),
        ("shape-overflow", r4, "overflows its byte size"),
        ("byte-length-mismatch", patch(base, emb["length"], "<Q", 4), "needs"),
        ("offset-misaligned", patch(base, emb["offset"], "<Q", 32), "is not a multiple of 64"),
        ("offset-past-end", patch(base, emb["offset"], "<Q", -(-data_size // 64) * 64),
         "extends past the end of the data section"),
        ("length-past-end", patch(patch(base, bias["dims"], "<Q", 1 << 20), bias["length"], "<Q", 4 << 20),
         "extends past the end of the data section"),
        ("huge-offset", patch(base, emb["offset"], "<Q", (1 << 64) - 64),
         "extends past the end of the data section"),
        ("duplicate-tensor", with_crc(base.replace(b"\x0c\x00layer.1.bias", b"\x0c\x00layer.2.bias", 1)),
         "duplicate tensor name 'layer.2.bias'"),
        ("padding-nonzero", patch(base, data_off - 1, "<B", 1), "unexpected bytes after the tensor directory"),
        ("tensor-count-short", patch(base, 28, "<I", struct.unpack_from("<I", base, 28)[0] - 1),
         "unexpected bytes after the tensor directory"),
    ]
    return cases


@pytest.fixture(scope="module")
def cases(base):
    return {c[0]: c for c in corruptions(base)}


CASE_IDS = [
    "empty", "short-bad-magic", "short-truncated-header", "bad-magic", "major-version", "major-version-0",
    "flags", "reserved", "truncated-file", "trailing-bytes", "metadata-offset", "data-offset-past-end",
    "offsets-out-of-order", "data-offset-misaligned", "metadata-count-cap", "tensor-count-cap", "checksum",
    "metadata-count-cannot-fit", "tensor-count-cannot-fit", "metadata-count-short", "key-length-zero",
    "key-utf8", "unknown-type", "bool-value", "string-past-end", "string-over-cap", "strings-count",
    "ints-count", "duplicate-key", "name-length-zero", "unknown-dtype", "rank-zero", "rank-five",
    "tensor-reserved", "dimension-zero", "dimension-too-large", "shape-overflow", "byte-length-mismatch",
    "offset-misaligned", "offset-past-end", "length-past-end", "huge-offset", "duplicate-tensor",
    "padding-nonzero",
    "tensor-count-short",
]


def test_every_rejection_case_is_listed(cases):
    assert sorted(cases) == sorted(CASE_IDS)


@pytest.mark.parametrize("case", CASE_IDS)
def test_python_rejects(cases, case):
    _, blob, phrase = cases[case]
    with pytest.raises(rf.FormatError) as e:
        rf.read(blob)
    assert phrase in str(e.value)
    if case.startswith("major-version"):
        assert isinstance(e.value, rf.UnsupportedVersionError)
        assert "this library reads version 1.x" in str(e.value)
    if case == "checksum":
        assert isinstance(e.value, rf.ChecksumError)


@pytest.mark.parametrize("case", CASE_IDS)
def test_swift_rejects(tmp_path, cases, case):
    _, blob, phrase = cases[case]
    path = tmp_path / "bad.recur"
    path.write_bytes(blob)
    p = run_cli("info", path, check=False)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("recur: error: "), p.stderr
    assert phrase in lines[0], lines[0]
    if case.startswith("major-version"):
        assert "this library reads version 1.x" in lines[0]


def test_unknown_minor_version_is_accepted(base, tmp_path):
    newer = patch(base, 10, "<H", 9)
    d = rf.read(newer)
    assert d.version == (1, 9)
    path = tmp_path / "minor.recur"
    path.write_bytes(newer)
    info = json.loads(run_cli("info", "--json", path).stdout)
    assert info["format_version"] == "1.9"


def test_checksum_verification_can_be_skipped(cases, base, tmp_path):
    _, blob, _ = cases["checksum"]
    d = rf.read(blob, verify_checksum=False)
    assert list(d.tensors) == list(rf.read(base).tensors)
    path = tmp_path / "flipped.recur"
    path.write_bytes(blob)
    assert run_cli("logits", path, "--tokens", "1", check=False).returncode != 0
    out = json.loads(run_cli("logits", path, "--tokens", "1", "--skip-checksum").stdout)
    assert len(out) == 1
    # Structural checks still apply without the checksum.
    with pytest.raises(rf.FormatError, match="extends past the end"):
        rf.read(cases["offset-past-end"][1], verify_checksum=False)


def test_memory_is_bounded_by_the_file_size():
    # A 100-byte file cannot claim a million metadata entries or a 4-billion-item array.
    head = bytearray(64)
    struct.pack_into("<8sHHIQIIQQQII", head, 0, rf.MAGIC, 1, 0, 0, 128, 1, 0, 64, 128, 128, 0, 0)
    entry = struct.pack("<H", 1) + b"a" + struct.pack("<BI", 7, 0xFFFFFFFF)
    blob = bytes(head) + entry + bytes(128 - 64 - len(entry))
    with pytest.raises(rf.FormatError, match="more than its section can hold"):
        rf.read(with_crc(blob))


def test_random_damage_never_escapes_as_another_exception(base):
    rng = np.random.default_rng(5)
    ok = bad = 0
    for i in range(400):
        b = bytearray(base)
        kind = i % 4
        if kind == 0:
            b = b[: int(rng.integers(0, len(b)))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(0, min(len(b), 1700)))] = int(rng.integers(0, 256))
        elif kind == 2:
            at = int(rng.integers(8, 64))
            b[at] = int(rng.integers(0, 256))
        else:
            at = int(rng.integers(64, 1500))
            b[at:at] = bytes(int(rng.integers(1, 9)))
        try:
            rf.read(with_crc(b) if len(b) >= 64 else bytes(b))
            ok += 1
        except rf.FormatError:
            bad += 1
    assert bad > 300


@pytest.mark.parametrize("qtype,label", [("f16", "f16"), ("q8", "q8"), ("q4", "q4"), ("q8r", "q8r"),
                                         ("int8", "q8ri"), ("int4", "q4i")])
def test_python_quantizer_matches_recur_quantize_byte_for_byte(tmp_path, qtype, label):
    src = tmp_path / "f32.recur"
    create(src, cell="peephole-lstm", layers=2, hidden=40, embedding=33, seed=4)
    out = tmp_path / f"{qtype}.recur"
    run_cli("quantize", src, out, "--type", qtype)
    original = rf.read(src)
    swift = rf.read(out)
    assert {t.dtype.label for t in swift.info.values()} >= {label}
    # The same metadata, the original f32 values and the dtypes recur chose give the same file.
    dtypes = {n: t.dtype for n, t in swift.info.items()}
    blob = rf.serialize(swift.typed_metadata(), {n: original.tensors[n] for n in swift.info}, dtypes)
    assert blob == out.read_bytes()


def test_importable_as_recur_format_without_the_library(tmp_path):
    import subprocess
    from _format_support import ROOT
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECUR_")}
    env["RECUR_LIBRARY"] = str(tmp_path / "missing.so")
    env["PYTHONPATH"] = str(ROOT / "bindings" / "python")
    code = ("import recur.format as f, recur.reference as r; "
            "assert issubclass(f.FormatError, ValueError); print(f.VERSION_MAJOR, r.SplitMix64(0).next())")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    import re
    major = re.search(r"#define RECUR_FORMAT_VERSION_MAJOR (\d+)", (ROOT / "include" / "recur.h").read_text()).group(1)
    assert p.stdout.split() == [major, str(0xE220A8397B1DCDAF)]
