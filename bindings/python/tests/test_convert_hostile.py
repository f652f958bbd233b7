"""Hostile converter inputs: decompression bombs, tensors that all read one byte range, HDF5 files that
declare far more than they store, numbers that overflow, nesting that recurses. Every one must be refused
quickly with one ConvertError line (one `recur-convert: error:` line from the command), leave no output
file, and keep memory bounded: the bombs are converted by a child process whose address space is limited
to its baseline + 512 MiB, far below what they would decompress to.

Every hostile file is built here, from the formats' own layouts (a zip writer, pickle opcodes, the
safetensors header), and is small on disk.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PACKAGE = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, PACKAGE)

from recur import convert as rc                      # noqa: E402
from recur.convert import ConvertError               # noqa: E402
from recur.convert import common                     # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "convert")
CHARS = os.path.join(FIXTURES, "chars.txt")
GiB = 1 << 30
LIMIT_EXTRA = 512 << 20          # address space granted above the child's baseline


# --- Building blocks: a zip writer, deflated zeros, pickle opcodes ---------------------------------------

def _zeros_deflated(mib: int):
    """(raw deflate stream of `mib` MiB of zeros, its CRC-32), made from one compressed MiB repeated:
    each block ends with a full flush, so the blocks are independent and identical."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    return block * mib + tail, crc


def _write_zip(path, members):
    """members: (name, bytes) stored, or (name, (compressed, declared_size, crc)) deflated as given."""
    out, central = bytearray(), bytearray()
    for name, data in members:
        n = name.encode()
        if isinstance(data, tuple):
            comp, size, crc = data
            method = 8
        else:
            comp, size, crc, method = data, len(data), zlib.crc32(data), 0
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(comp), size, len(n), 0)
        out += n + comp
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(comp), size,
                               len(n), 0, 0, 0, 0, 0, off) + n
    cd = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), cd, 0)
    with open(path, "wb") as f:
        f.write(out)


def _p_str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _p_int(n: int) -> bytes:
    b = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def _p_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _p_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _p_tensor(key: str, numel: int, offset: int, size, stride) -> bytes:
    """What torch.save writes for a float tensor: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""
    pid = _p_tuple(_p_str("storage"), _p_global("torch", "FloatStorage"), _p_str(key), _p_str("cpu"),
                   _p_int(numel)) + b"Q"
    return (_p_global("torch._utils", "_rebuild_tensor_v2")
            + _p_tuple(pid, _p_int(offset), _p_tuple(*map(_p_int, size)), _p_tuple(*map(_p_int, stride)),
                       b"\x89", _p_global("collections", "OrderedDict") + b")R")
            + b"R")


def _p_state_dict(items) -> bytes:
    body = b"".join(_p_str(name) + tensor + b"s" for name, tensor in items)
    return b"\x80\x02" + _p_global("collections", "OrderedDict") + b")R" + body + b"."


def _write_safetensors_header(path, header: dict, data: bytes = b""):
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def _keras_members():
    with zipfile.ZipFile(os.path.join(FIXTURES, "k3_gru_char.keras")) as z:
        return z.read("config.json"), z.read("metadata.json")


# --- The hostile files --------------------------------------------------------------------------------

def keras_zip_bomb(d):
    """A .keras whose model.weights.h5 is 3 GiB of zeros deflated to about 3 MB."""
    cfg, meta = _keras_members()
    comp, crc = _zeros_deflated(3 * 1024)
    p = os.path.join(d, "bomb.keras")
    _write_zip(p, [("metadata.json", meta), ("config.json", cfg), ("model.weights.h5", (comp, 3 * GiB, crc))])
    return p, {}, "decompression bomb"


def keras_lying_zip_bomb(d):
    """The same deflated zeros under a member that declares only 40 000 bytes (the ratio check does not
    apply; the reader must still never decompress more than the declared size)."""
    cfg, meta = _keras_members()
    comp, _ = _zeros_deflated(3 * 1024)
    p = os.path.join(d, "lying.keras")
    _write_zip(p, [("metadata.json", meta), ("config.json", cfg),
                   ("model.weights.h5", (comp, 40000, zlib.crc32(bytes(40000))))])
    return p, {}, "model.weights.h5"


def torch_zip_bomb(d):
    """A torch.save file whose one storage is 3 GiB of zeros deflated to about 3 MB."""
    comp, crc = _zeros_deflated(3 * 1024)
    n = 3 * GiB // 4
    pkl = _p_state_dict([("embed.weight", _p_tensor("0", n, 0, (n // 8, 8), (8, 1)))])
    p = os.path.join(d, "bomb.pt")
    _write_zip(p, [("archive/data.pkl", pkl), ("archive/byteorder", b"little"), ("archive/data/0", (comp, 3 * GiB, crc))])
    return p, {}, "decompression bomb"


def torch_aliased(d):
    """A 1.6 MB torch.save file: 4096 tensors that all view one 1 MiB storage (4 GiB if each is copied)."""
    n = 1 << 18
    items = [("embed.weight", _p_tensor("0", n, 0, (n // 8, 8), (8, 1)))]
    items += [(f"rnn.weight_ih_l{k}", _p_tensor("0", n, 0, (n // 8, 8), (8, 1))) for k in range(4096)]
    p = os.path.join(d, "aliased.pt")
    _write_zip(p, [("archive/data.pkl", _p_state_dict(items)), ("archive/byteorder", b"little"),
                   ("archive/data/0", bytes(4 * n))])
    return p, {}, "memory budget"


def safetensors_aliased(d):
    """A 1 MiB safetensors file whose 4096 tensors all name the same data range."""
    n = 1 << 18
    header = {f"rnn.weight_ih_l{k}": {"dtype": "F32", "shape": [n // 8, 8], "data_offsets": [0, 4 * n]}
              for k in range(4096)}
    p = os.path.join(d, "aliased.safetensors")
    _write_safetensors_header(p, header, bytes(4 * n))
    return p, {}, "overlaps"


def _huge_h5(path, datasets, chunked=False):
    import h5py
    with h5py.File(path, "w") as f:
        for name, n in datasets:
            if chunked:
                f.create_dataset(name, shape=(n,), dtype="f4", chunks=(1 << 18,), compression="gzip")
            else:
                f.create_dataset(name, shape=(n,), dtype="f4")    # declared, never written: no storage


def h5_declared(d):
    """A Keras 3 weights file of a few KB declaring 2 × 1 GiB of datasets it does not store."""
    p = os.path.join(d, "huge.weights.h5")
    _huge_h5(p, [("layers/embedding/vars/0", 1 << 28), ("layers/gru/cell/vars/0", 1 << 28)])
    return p, {"config": os.path.join(FIXTURES, "k3_gru_char.json")}, "declares"


def h5_declared_chunked(d):
    """The same, as gzip-compressed chunked datasets (fill values only)."""
    p = os.path.join(d, "huge_chunked.weights.h5")
    _huge_h5(p, [("layers/embedding/vars/0", 1 << 28), ("layers/gru/cell/vars/0", 1 << 28)], chunked=True)
    return p, {"config": os.path.join(FIXTURES, "k3_gru_char.json")}, "declares"


def keras_with_huge_h5(d):
    """A .keras archive (stored, not compressed) holding such an HDF5 file."""
    h5 = os.path.join(d, "inner.h5")
    _huge_h5(h5, [("layers/embedding/vars/0", 1 << 28), ("layers/gru/cell/vars/0", 1 << 28)])
    cfg, meta = _keras_members()
    p = os.path.join(d, "huge_inner.keras")
    _write_zip(p, [("metadata.json", meta), ("config.json", cfg), ("model.weights.h5", open(h5, "rb").read())])
    return p, {}, "declares"


BOMBS = [keras_zip_bomb, keras_lying_zip_bomb, torch_zip_bomb, torch_aliased, safetensors_aliased, h5_declared,
         h5_declared_chunked, keras_with_huge_h5]

# Conversions run in a child process with a limited address space.
_LIMITED = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[1])
import numpy, h5py
import recur.convert, recur.convert.keras, recur.convert.pytorch, recur.convert.torch_state
import recur.convert.safetensors, recur.convert.h5tree, recur.convert.tf_checkpoint, recur.format
from recur.convert.__main__ import main
def vm():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
limit = vm() + int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
t = time.monotonic()
code = main(sys.argv[3:])
sys.stdout.write("seconds %.3f\n" % (time.monotonic() - t))
sys.exit(code)
"""


def _convert_limited(src, out, kw):
    args = [src, out, "--chars", CHARS]
    if "config" in kw:
        args += ["--config", kw["config"]]
    p = subprocess.run([sys.executable, "-c", _LIMITED, PACKAGE, str(LIMIT_EXTRA), *args], capture_output=True,
                       text=True, timeout=300)
    return p


@pytest.mark.parametrize("make", BOMBS, ids=[m.__name__ for m in BOMBS])
def test_bombs_are_refused_quickly_in_bounded_memory(make, tmp_path):
    pytest.importorskip("h5py")
    src, kw, match = make(str(tmp_path))
    assert os.path.getsize(src) < 4 << 20, "the hostile file itself is small"
    out = str(tmp_path / "out.recur")
    p = _convert_limited(src, out, kw)
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("recur-convert: error:"), p.stderr[-2000:]
    assert match in lines[0], lines[0]
    seconds = float(p.stdout.split()[-1])
    assert seconds < 10, f"took {seconds} s"
    assert not [f for f in os.listdir(tmp_path) if f.startswith("out.recur")]


@pytest.mark.parametrize("src,kw", [("k3_gru_char.keras", {}), ("pt_gru_char.pt", {}), ("pt_gru_char.safetensors", {}),
                                    ("k3_gru_char.weights.h5", {"config": "k3_gru_char.json"}),
                                    ("k2_gru_hard.ckpt.index", {"config": "k2_gru_hard.json"})])
def test_real_models_convert_under_the_same_limit(src, kw, tmp_path):
    """The control: the same limited child converts the real fixtures."""
    pytest.importorskip("h5py")
    kw = {k: os.path.join(FIXTURES, v) for k, v in kw.items()}
    out = str(tmp_path / "out.recur")
    p = _convert_limited(os.path.join(FIXTURES, src), out, kw)
    assert p.returncode == 0, p.stderr[-2000:]
    assert os.path.getsize(out) > 0


def _expect_refusal(tmp_path, src, match, **kw):
    out = tmp_path / "out.recur"
    kw.setdefault("chars", CHARS)
    with pytest.raises(ConvertError, match=match or None) as ei:
        rc.convert(str(src), str(out), **kw)
    assert "\n" not in str(ei.value)
    assert not [f for f in os.listdir(tmp_path) if f.startswith("out.recur")]
    return str(ei.value)


@pytest.mark.parametrize("src,kw", [("k3_gru_char.keras", {}), ("k2_gru_hard.h5", {}), ("pt_gru_char.pt", {}),
                                    ("pt_gru_char.safetensors", {}),
                                    ("k2_gru_hard.ckpt.index", {"config": "k2_gru_hard.json"})])
def test_every_reader_counts_against_the_one_budget(src, kw, tmp_path, monkeypatch):
    """With the budget below a fixture's size, every format is refused by the budget, naming it."""
    pytest.importorskip("h5py")
    kw = {k: os.path.join(FIXTURES, v) for k, v in kw.items()}
    monkeypatch.setattr(common, "MEMORY_BUDGET", 2000)
    _expect_refusal(tmp_path, os.path.join(FIXTURES, src), "memory budget of 2000 bytes", **kw)


def test_hdf5_datasets_are_charged_after_the_archive_member(tmp_path, monkeypatch):
    """A .keras archive is charged for its weights member, then again for the datasets the HDF5 reader
    sends back: a budget that holds the member alone is not enough."""
    pytest.importorskip("h5py")
    src = os.path.join(FIXTURES, "k3_gru_char.keras")
    with zipfile.ZipFile(src) as z:
        member = sum(i.file_size for i in z.infolist())
    monkeypatch.setattr(common, "MEMORY_BUDGET", member + 1000)
    _expect_refusal(tmp_path, src, "memory budget")
    monkeypatch.setattr(common, "MEMORY_BUDGET", 3 * member)
    rc.convert(src, str(tmp_path / "ok.recur"), chars=CHARS)


def test_tied_torch_weights_still_convert(tmp_path):
    """A language model whose output layer reuses the embedding (fc.weight = embed.weight, one storage
    viewed by two tensors) is legitimate: the shared bytes are charged twice, and it converts."""
    rng = np.random.default_rng(1)
    V, H = 20, 16
    tensors = {"rnn.weight_ih_l0": rng.normal(size=(3 * H, H)), "rnn.weight_hh_l0": rng.normal(size=(3 * H, H)),
               "rnn.bias_ih_l0": rng.normal(size=3 * H), "rnn.bias_hh_l0": rng.normal(size=3 * H),
               "fc.bias": rng.normal(size=V)}
    emb = rng.normal(size=(V, H)).astype("<f4")
    members = [("archive/data/e", emb.tobytes())]
    items = [("embed.weight", _p_tensor("e", emb.size, 0, (V, H), (H, 1)))]
    for k, (name, a) in enumerate(tensors.items()):
        a = np.ascontiguousarray(a, dtype="<f4")
        members.append((f"archive/data/{k}", a.tobytes()))
        items.append((name, _p_tensor(str(k), a.size, 0, a.shape, [int(s // 4) for s in a.strides])))
    items.append(("fc.weight", _p_tensor("e", emb.size, 0, (V, H), (H, 1))))
    src = tmp_path / "tied.pt"
    _write_zip(str(src), [("archive/data.pkl", _p_state_dict(items)), ("archive/byteorder", b"little")] + members)
    out = tmp_path / "tied.recur"
    rc.convert(str(src), str(out), chars=CHARS)
    from recur import format as rf
    t = rf.read(str(out)).tensors
    assert np.array_equal(t["layer.0.embeddings"], emb) and np.array_equal(t["layer.2.kernel"], emb)


def test_tf_checkpoint_entries_sharing_bytes_are_refused(tmp_path, monkeypatch):
    """Checkpoint entries that point at another tensor's bytes are refused before any CRC is computed
    (a hundred thousand entries on one range would otherwise check, and count, that range as often)."""
    from recur.convert import tf_checkpoint
    real = tf_checkpoint.read_index
    idx = os.path.join(FIXTURES, "k2_gru_hard.ckpt.index")

    def aliased(path, budget=None):
        entries = real(path, budget)
        name, e = max(((n, e) for n, e in entries.items() if n and e["dtype"] == 1), key=lambda x: x[1]["size"])
        for k in range(1 << 17):
            entries[f"alias-{k}"] = dict(e)
        return entries

    monkeypatch.setattr(tf_checkpoint, "read_index", aliased)
    t = time.monotonic()
    with pytest.raises(ConvertError, match="share bytes of data shard 0"):
        tf_checkpoint.load(idx)
    assert time.monotonic() - t < 30


# --- Malformed numbers and nesting: one error, never a traceback ------------------------------------------

def _st(d, header, data=b""):
    p = os.path.join(d, "m.safetensors")
    _write_safetensors_header(p, header, data)
    return p


MALFORMED = {
    "safetensors shape product wraps int64": lambda d: _st(d, {"a": {"dtype": "F32", "shape": [2**32, 2**32],
                                                                    "data_offsets": [0, 0]}}),
    "safetensors dimension 2**70": lambda d: _st(d, {"a": {"dtype": "F32", "shape": [2**70], "data_offsets": [0, 4]}},
                                                 bytes(4)),
    "safetensors zero-size tensor of dimension 2**70": lambda d: _st(d, {"a": {"dtype": "F32", "shape": [0, 2**70],
                                                                              "data_offsets": [0, 0]}}),
    "safetensors negative dimension": lambda d: _st(d, {"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}),
    "safetensors rank 100": lambda d: _st(d, {"a": {"dtype": "F32", "shape": [1] * 100, "data_offsets": [0, 4]}},
                                          bytes(4)),
    "safetensors nested header": lambda d: _raw_st(d, b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}"),
    "safetensors nested within the parser's limit": lambda d: _raw_st(d, b'{"a": ' + b"[" * 900 + b"]" * 900 + b"}"),
    "safetensors nested metadata": lambda d: _raw_st(d, b'{"__metadata__": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}"),
    "safetensors metadata is a list": lambda d: _st(d, {"__metadata__": [1, 2, 3]}),
    "safetensors integer of 5000 digits": lambda d: _raw_st(d, b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000
                                                            + b'], "data_offsets": [0, 4]}}'),
    "safetensors duplicate name": lambda d: _raw_st(d, b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                                                    b'"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
                                                    bytes(4)),
    "safetensors boolean offsets": lambda d: _st(d, {"a": {"dtype": "F32", "shape": [], "data_offsets": [False, 4]}},
                                                 bytes(4)),
    "safetensors hole between tensors": lambda d: _st(d, {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
                                                      bytes(8)),
    "keras config nested": lambda d: _keras_with_config(d, b"[" * 100000 + b"]" * 100000),
    "keras config nested within the parser's limit": lambda d: _keras_with_config(
        d, b'{"class_name": "Sequential", "config": {"layers": ' + b"[" * 900 + b"]" * 900 + b"}}"),
    "torch tensor of dimension 2**70": lambda d: _torch_one(d, _p_tensor("0", 4, 0, (2**70,), (1,))),
    "torch tensor of rank 1000": lambda d: _torch_one(d, _p_tensor("0", 4, 0, (1,) * 1000, (1,) * 1000)),
    "torch storage of 2**70 elements": lambda d: _torch_one(d, _p_tensor("0", 2**70, 0, (1,), (1,))),
    "torch pickle nested 100000 deep": lambda d: _torch_raw(d, b"\x80\x02" + b"]" * 100000 + b"a" * 99999 + b"."),
}


def _raw_st(d, header: bytes, data: bytes = b""):
    p = os.path.join(d, "m.safetensors")
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + data)
    return p


def _keras_with_config(d, cfg: bytes):
    _, meta = _keras_members()
    with zipfile.ZipFile(os.path.join(FIXTURES, "k3_gru_char.keras")) as z:
        weights = z.read("model.weights.h5")
    p = os.path.join(d, "m.keras")
    _write_zip(p, [("metadata.json", meta), ("config.json", cfg), ("model.weights.h5", weights)])
    return p


def _torch_one(d, tensor: bytes):
    return _torch_raw(d, _p_state_dict([("embed.weight", tensor)]), bytes(16))


def _torch_raw(d, pkl: bytes, storage: bytes = b""):
    p = os.path.join(d, "m.pt")
    _write_zip(p, [("archive/data.pkl", pkl), ("archive/byteorder", b"little"), ("archive/data/0", storage)])
    return p


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_numbers_and_nesting_give_one_error(name, tmp_path, capsys):
    src = MALFORMED[name](str(tmp_path))
    _expect_refusal(tmp_path, src, "")
    from recur.convert.__main__ import main
    out = str(tmp_path / "out.recur")
    assert main([src, out, "--chars", CHARS]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("recur-convert: error:"), err
    assert not os.path.exists(out)


# --- Found by fuzzing ---------------------------------------------------------------------------------

def test_names_from_the_file_cannot_break_the_one_line_message(tmp_path):
    """A byteorder member of binary junk, and a storage key holding a line break, appear escaped."""
    src = tmp_path / "m.pt"
    _write_zip(str(src), [("archive/data.pkl", _p_state_dict([("embed.weight", _p_tensor("0", 4, 0, (2, 2), (2, 1)))])),
                          ("archive/byteorder", b"\x89\nbig\r\x00junk")])
    msg = _expect_refusal(tmp_path, src, "byteorder")
    assert "\\n" in msg
    _write_zip(str(src), [("archive/data.pkl", _p_state_dict([("embed.weight", _p_tensor("a\nb", 4, 0, (2, 2), (2, 1)))])),
                          ("archive/byteorder", b"little")])
    _expect_refusal(tmp_path, src, r"archive/data/a\\nb")


def test_legacy_h5_attributes_of_the_wrong_type(tmp_path):
    """layer_names or weight_names that are a number instead of a list of names (was a TypeError)."""
    h5py = pytest.importorskip("h5py")
    import shutil
    for attr in ("layer_names", "weight_names"):
        src = tmp_path / "m.h5"
        shutil.copy(os.path.join(FIXTURES, "k2_gru_hard.h5"), src)
        with h5py.File(src, "r+") as f:
            g = f["model_weights"]
            target = g if attr == "layer_names" else g[[k for k in g if len(g[k].attrs.get("weight_names", []))][0]]
            target.attrs[attr] = np.int64(5)
        _expect_refusal(tmp_path, src, f"'{attr}'.* not a list of names")


def test_a_hanging_hdf5_library_is_a_timeout_not_a_crash(tmp_path, monkeypatch):
    """A mutated Keras 2 file on which the HDF5 library loops: the child is stopped at the time limit and
    the message says so (it said "crashed (signal 9)": the timeout was caught as an OSError)."""
    pytest.importorskip("h5py")
    from recur.convert import h5tree
    monkeypatch.setattr(h5tree, "TIMEOUT", 3)
    src = os.path.join(ROOT, "tests", "fuzz", "convert-regressions", "hdf5-library-loops.h5")
    msg = _expect_refusal(tmp_path, src, "")
    assert "signal 9" not in msg
    assert "did not finish in 3 s" in msg or "HDF5" in msg


# --- A short fuzzing run ------------------------------------------------------------------------------

def test_fuzzing_the_converters_for_30_seconds(tmp_path):
    """tests/fuzz/fuzz_convert.py: 30 s of mutated fixtures through the converters, in-process. Every
    input must convert to a valid file or give one ConvertError and leave nothing behind."""
    script = os.path.join(ROOT, "tests", "fuzz", "fuzz_convert.py")
    p = subprocess.run([sys.executable, script, "--seconds", "30", "--seed", "12", "--artifacts", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    summary = [ln for ln in p.stdout.splitlines() if ln.startswith("fuzz_convert:")]
    assert p.returncode == 0 and summary, p.stdout[-3000:] + p.stderr[-3000:]
    execs = int(summary[-1].split()[1])
    assert execs >= 300, summary[-1]
    assert " 0 failures" in summary[-1], summary[-1]
