"""Hostile files, numerical faults and interrupted writes (docs/ROBUSTNESS.md).

- The fuzz target's committed corpus and every regression input replay through the C API of the library
  under test without a crash (tests/fuzz/replay.c runs the target's body, fuzz_recur.c, on each file).
- Files declaring giant dimensions or counts fail fast, with an error, and without making the library
  allocate: their peak memory stays that of opening a tiny model. Valid files with large vocabularies
  stay within the documented multiple of their size.
- Non-finite weights are rejected at load; weights that overflow at run time make recur_generate return
  RECUR_ERR_NUMERICAL instead of text.
- Writers never lose data: `recur create`, `recur quantize`, `recur train --checkpoint` and the Python
  writer are killed (SIGKILL) at several points while writing over an existing file; the file is then
  either the old one, intact, or a complete new one.
"""

from __future__ import annotations

import ctypes as C
import glob
import hashlib
import os
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_cli

FUZZ = ROOT / "tests" / "fuzz"
FORMAT_ERRORS = {3}          # RECUR_ERR_FORMAT
MODEL_ERRORS = {6}           # RECUR_ERR_MODEL


# ---------------------------------------------------------------------------------------------------------
# The replay program
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def replay(library, tmp_path_factory) -> str:
    """tests/fuzz/replay.c + fuzz_recur.c built with the system compiler against the library under test."""
    out = tmp_path_factory.mktemp("replay")
    libdir = out / "lib"
    libdir.mkdir()
    (libdir / "librecur.so").symlink_to(os.path.realpath(library))   # found under its SONAME
    include = ROOT / "include"
    prefix = os.environ.get("RECUR_PREFIX")
    if prefix and (Path(prefix) / "include" / "recur.h").is_file():
        include = Path(prefix) / "include"
    exe = out / "replay"
    cmd = [os.environ.get("CC", "cc"), "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", f"-I{include}",
           str(FUZZ / "replay.c"), str(FUZZ / "fuzz_recur.c"), "-o", str(exe), f"-L{libdir}", "-lrecur",
           f"-Wl,-rpath,{libdir}"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"replay does not compile: {' '.join(cmd)}\n{p.stderr}", pytrace=False)
    return str(exe)


def measured(args, timeout=60.0, vm_limit=None):
    """Runs replay (optionally with its address space limited to `vm_limit` bytes); returns (exit status,
    output without the last line, seconds, peak RSS in bytes, peak address space in bytes) as the program
    reports them (a parent cannot measure the peak RSS: ru_maxrss survives fork and exec)."""
    def limit():
        if vm_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (vm_limit, vm_limit))
    start = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, preexec_fn=limit,
                       env=dict(os.environ, RECUR_THREADS="1", OPENBLAS_NUM_THREADS="1"))
    seconds = time.monotonic() - start
    lines = p.stdout.splitlines()
    rss = vm = -1
    if lines and lines[-1].startswith("peak_rss_kb "):
        f = lines.pop().split()
        rss, vm = int(f[1]) * 1024, int(f[3]) * 1024
    return p.returncode, "\n".join(lines) + p.stderr, seconds, rss, vm


@pytest.fixture(scope="session")
def baseline(replay, cli, tmp_path_factory) -> tuple:
    """(peak RSS, peak address space) of opening a tiny valid model: the program, the library, the Swift
    runtime and OpenBLAS."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.recur"
    run_cli(cli, "create", "--out", path, "--hidden", "4", "--embedding", "3", "--chars", "ab")
    runs = []
    for _ in range(3):
        code, out, _, rss, vm = measured([replay, str(path)])
        assert code == 0 and rss > 0 and vm > 0, out
        runs.append((rss, vm))
    return min(r[0] for r in runs), max(r[1] for r in runs)


# What a small hostile file may add to the baseline: its address space is limited to this much more, so
# that an allocation in proportion to a declared size (rather than to the bytes present) fails and, being
# a trap in Swift, crashes the test program.
HEADROOM = 96 << 20


def test_corpus_and_regressions_replay(replay):
    files = sorted(glob.glob(str(FUZZ / "corpus" / "*"))) + sorted(glob.glob(str(FUZZ / "regressions" / "*")))
    assert len(files) >= 30
    code, out, *_ = measured([replay, *files], timeout=300)
    assert code == 0, f"replay crashed or broke a contract (status {code}):\n{out[-3000:]}"
    loaded = int(out.strip().splitlines()[-1].split(",")[1].split()[0]) if "models loaded" in out else -1
    corpus_models = [f for f in files if f.endswith(".recur")]
    assert loaded >= len(corpus_models), out


def test_regressions_fail_cleanly_in_bounded_memory(replay, baseline):
    """Each regression input on its own, with the address space limited to the baseline + HEADROOM: no
    crash, no broken contract; opening it as a file gives a documented status."""
    files = sorted(glob.glob(str(FUZZ / "regressions" / "*.bin")))
    assert files
    for f in files:
        code, out, *_ = measured([replay, f], vm_limit=baseline[1] + HEADROOM)
        assert code == 0, f"{f}: status {code}\n{out[-2000:]}"
        code, out, *_ = measured([replay, "--open", f], vm_limit=baseline[1] + HEADROOM)
        assert code == 0, f"{f}: {out}"
        status = int(out.split(": ", 1)[1].split()[0])
        assert 0 <= status <= 12, f"{f}: {out}"


# ---------------------------------------------------------------------------------------------------------
# Crafted files: an independent little writer of the byte layout (docs/FORMAT.md §3-6)
# ---------------------------------------------------------------------------------------------------------

def m_int(key, v):
    return struct.pack("<H", len(key)) + key.encode() + b"\x01" + struct.pack("<q", v)


def m_bool(key, v):
    return struct.pack("<H", len(key)) + key.encode() + b"\x03" + bytes([v])


def m_str(key, s, declared=None):
    b = s.encode()
    return struct.pack("<H", len(key)) + key.encode() + b"\x04" + struct.pack("<I", len(b) if declared is None else declared) + b


def m_strs(key, items, declared=None):
    body = b"".join(struct.pack("<I", len(s.encode())) + s.encode() for s in items)
    return struct.pack("<H", len(key)) + key.encode() + b"\x05" + struct.pack("<I", len(items) if declared is None else declared) + body


def m_ints(key, items, declared=None):
    return (struct.pack("<H", len(key)) + key.encode() + b"\x06" + struct.pack("<I", len(items) if declared is None else declared)
            + b"".join(struct.pack("<q", v) for v in items))


DTYPE = {"f32": 0, "f16": 1, "q8": 2, "q4": 3}


def row_bytes(dtype, cols):
    blocks = (cols + 31) // 32
    return {"f32": 4 * cols, "f16": 2 * cols, "q8": 36 * blocks, "q4": 20 * blocks}[dtype]


def t_entry(name, dtype, shape, offset, length=None):
    if length is None:
        length = row_bytes(dtype, shape[-1])
        for d in shape[:-1]:
            length *= d
    return (struct.pack("<H", len(name)) + name.encode() + bytes([DTYPE[dtype], len(shape)]) + b"\0\0"
            + b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<QQ", offset, min(length, (1 << 64) - 1)))


def build(meta, tensors=(), data=b"", meta_count=None, tensor_count=None):
    """A file with these metadata entries, directory entries and data, with correct offsets and CRC."""
    mblob = b"".join(meta)
    dblob = b"".join(tensors)
    dir_off = 64 + len(mblob)
    data_off = (dir_off + len(dblob) + 63) // 64 * 64
    body = mblob + dblob + b"\0" * (data_off - dir_off - len(dblob)) + data
    size = 64 + len(body)
    head = struct.pack("<8sHHIQIIQQQII", b"\x89RCR\r\n\x1a\n", 1, 0, 0, size,
                       len(meta) if meta_count is None else meta_count,
                       len(tensors) if tensor_count is None else tensor_count, 64, dir_off, data_off, 0, 0)
    blob = bytearray(head + body)
    struct.pack_into("<I", blob, 56, zlib.crc32(blob) & 0xFFFFFFFF)
    return bytes(blob)


def generator_meta(V, E, H, tokens=None, cell="gru"):
    tokens = tokens if tokens is not None else ["a", "b", "c"][:min(V, 3)]
    return [m_str("model.task", "generate"), m_int("model.layer_count", 3),
            m_str("layer.0.kind", "embedding"), m_int("layer.0.input_dim", V), m_int("layer.0.output_dim", E),
            m_str("layer.1.kind", cell), m_int("layer.1.input_size", E), m_int("layer.1.units", H),
            m_str("layer.2.kind", "dense"), m_int("layer.2.input_size", H), m_int("layer.2.units", V),
            m_str("tokenizer.kind", "char"), m_strs("tokenizer.tokens", tokens)]


def generator_tensors(V, E, H, values=None):
    """Directory entries and data of a complete f32 GRU generator (all weights 0.1 unless `values` maps a
    tensor name to an array)."""
    shapes = [("layer.0.embeddings", [V, E]), ("layer.1.kernel", [3 * H, E]), ("layer.1.recurrent_kernel", [3 * H, H]),
              ("layer.1.bias", [3 * H]), ("layer.1.recurrent_bias", [3 * H]), ("layer.2.kernel", [V, H]),
              ("layer.2.bias", [V])]
    entries, data = [], b""
    for name, shape in shapes:
        arr = np.full(shape, 0.1, np.float32) if values is None or name not in values else np.asarray(values[name], np.float32).reshape(shape)
        entries.append(t_entry(name, "f32", shape, len(data)))
        data += arr.astype("<f4").tobytes()
        data += b"\0" * (-len(data) % 64)
    return entries, data


U31 = 1 << 31


def crafted_cases():
    """(name, bytes, allowed statuses): every one declares something giant that is not there."""
    ok_entries, ok_data = generator_tensors(3, 2, 2)
    cases = [
        ("units 2^31, tensors absent", build(generator_meta(3, 2, U31)), MODEL_ERRORS),
        ("units 2^31, tensors declared at that shape",
         build(generator_meta(3, 2, U31), [t_entry("layer.1.kernel", "f32", [U31, 2], 0),
                                            t_entry("layer.1.recurrent_kernel", "q4", [U31, U31], 0)]), FORMAT_ERRORS),
        ("units 2^31 in a complete small model", build(generator_meta(3, 2, U31), ok_entries, ok_data), MODEL_ERRORS),
        ("embedding of 2^31 tokens, table absent", build(generator_meta(U31, 2, 2)), MODEL_ERRORS),
        ("embedding width 2^31", build(generator_meta(3, U31, 2), ok_entries, ok_data), MODEL_ERRORS),
        ("tensor of 2^31 x 2^31 f32", build(generator_meta(3, 2, 2), [t_entry("x", "f32", [U31, U31], 0)]), FORMAT_ERRORS),
        ("tensor of rank 4, each 2^31", build(generator_meta(3, 2, 2), [t_entry("x", "q4", [U31] * 4, 0)]), FORMAT_ERRORS),
        ("tensor of 2^33 bytes", build(generator_meta(3, 2, 2), [t_entry("x", "f32", [U31, 4], 0)]), FORMAT_ERRORS),
        ("dimension 2^40", build(generator_meta(3, 2, 2), [t_entry("x", "f32", [1 << 40], 0, 4)]), FORMAT_ERRORS),
        ("metadata count 2^20 in a small file", build(generator_meta(3, 2, 2), meta_count=1 << 20), FORMAT_ERRORS),
        ("metadata count 2^32 - 1", build(generator_meta(3, 2, 2), meta_count=(1 << 32) - 1), FORMAT_ERRORS),
        ("tensor count 2^16", build(generator_meta(3, 2, 2), ok_entries, ok_data, tensor_count=1 << 16), FORMAT_ERRORS),
        ("tensor count 2^32 - 1", build(generator_meta(3, 2, 2), ok_entries, ok_data, tensor_count=(1 << 32) - 1), FORMAT_ERRORS),
        ("vocabulary of 2^32 - 1 tokens declared",
         build(generator_meta(3, 2, 2)[:-1] + [m_strs("tokenizer.tokens", ["a", "b", "c"], declared=(1 << 32) - 1)]), FORMAT_ERRORS),
        ("vocabulary of 2^24 tokens declared",
         build(generator_meta(3, 2, 2)[:-1] + [m_strs("tokenizer.tokens", ["a", "b", "c"], declared=1 << 24)]), FORMAT_ERRORS),
        ("string of 2^26 bytes declared",
         build(generator_meta(3, 2, 2) + [m_str("general.name", "x", declared=1 << 26)]), FORMAT_ERRORS),
        ("string of 2^32 - 1 bytes declared",
         build(generator_meta(3, 2, 2) + [m_str("general.name", "x", declared=(1 << 32) - 1)]), FORMAT_ERRORS),
        ("int array of 2^31 items declared", build(generator_meta(3, 2, 2) + [m_ints("x.y", [1, 2], declared=U31)]), FORMAT_ERRORS),
        ("layer count 1024, layers absent",
         build([m_int("model.layer_count", 1024)] + generator_meta(3, 2, 2)[2:]), MODEL_ERRORS),
        ("layer count 2^40", build([m_int("model.layer_count", 1 << 40)] + generator_meta(3, 2, 2)[2:]), MODEL_ERRORS),
    ]
    return cases


@pytest.mark.parametrize("case", range(len(crafted_cases())), ids=[c[0] for c in crafted_cases()])
def test_giant_declarations_fail_fast_without_allocating(replay, baseline, tmp_path, case):
    name, blob, allowed = crafted_cases()[case]
    path = tmp_path / "giant.recur"
    path.write_bytes(blob)
    assert len(blob) < 4096
    code, out, seconds, rss, vm = measured([replay, "--open", str(path)], vm_limit=baseline[1] + HEADROOM)
    assert code == 0, f"{name}: the program failed (status {code}) with its address space limited:\n{out}"
    status = int(out.split(": ", 1)[1].split()[0])
    assert status in allowed, f"{name}: status {status}: {out}"
    assert len(out.split(": ", 1)[1].split()) > 1, f"{name}: no message: {out}"
    assert seconds < 5, f"{name}: took {seconds:.1f} s"
    assert rss < baseline[0] + (8 << 20), f"{name}: peak RSS {rss >> 20} MiB vs {baseline[0] >> 20} MiB for a tiny model"


def test_large_valid_vocabulary_stays_within_a_small_multiple(replay, baseline, tmp_path):
    """A valid model whose size is almost all vocabulary (200 000 short word tokens): opening it, and the
    fuzz target's whole run on it (queries, encoding, steps, prefill, save/restore, generation), take at
    most 16 times the file's size beyond the baseline (docs/ROBUSTNESS.md)."""
    V = 200_000
    words = [f"w{i}" for i in range(V)]
    meta = generator_meta(V, 1, 1, tokens=words)
    meta[-2] = m_str("tokenizer.kind", "word")
    entries, data = generator_tensors(V, 1, 1)
    blob = build(meta, entries, data)
    path = tmp_path / "vocab.recur"
    path.write_bytes(blob)
    for args in ([replay, "--open", str(path)], [replay, str(path)]):
        code, out, seconds, rss, vm = measured(args)
        assert code == 0, out
        assert rss - baseline[0] < 16 * len(blob), \
            f"{args[1]}: peak {rss >> 20} MiB, baseline {baseline[0] >> 20} MiB, file {len(blob) >> 10} KiB"


def test_special_files_are_refused_without_blocking(replay, tmp_path):
    """A FIFO (no writer: opening it must not wait), a folder, a character device and an empty file."""
    fifo = tmp_path / "fifo.recur"
    os.mkfifo(fifo)
    empty = tmp_path / "empty.recur"
    empty.write_bytes(b"")
    for path, expected in [(fifo, 2), (tmp_path, 2), ("/dev/null", 2), (empty, 3)]:
        code, out, seconds, *_ = measured([replay, "--open", str(path)], timeout=20)
        assert code == 0, out
        assert int(out.split(": ", 1)[1].split()[0]) == expected, f"{path}: {out}"
        assert seconds < 5


# ---------------------------------------------------------------------------------------------------------
# Numerical faults
# ---------------------------------------------------------------------------------------------------------

def open_status(path) -> tuple:
    from recur import _capi
    L = _capi.lib()
    m = _capi.model_p()
    s = L.recur_model_open(str(path).encode(), 0, C.byref(m))
    msg = _capi.last_error()
    L.recur_model_free(m)
    return s, msg


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["layer.0.embeddings", "layer.1.recurrent_kernel", "layer.1.bias", "layer.2.kernel"])
def test_non_finite_weights_are_rejected_at_load(library, tmp_path, bad, where):
    V, E, H = 3, 2, 2
    shape = {"layer.0.embeddings": V * E, "layer.1.recurrent_kernel": 3 * H * H, "layer.1.bias": 3 * H, "layer.2.kernel": V * H}[where]
    values = np.full(shape, 0.1, np.float32)
    values[shape // 2] = bad
    entries, data = generator_tensors(V, E, H, {where: values})
    path = tmp_path / "bad.recur"
    path.write_bytes(build(generator_meta(V, E, H), entries, data))
    status, msg = open_status(path)
    assert status == 10, msg           # RECUR_ERR_NUMERICAL
    assert where in msg, msg


@pytest.mark.parametrize("dtype", ["q8", "q8r", "q8ri"])
def test_non_finite_quantized_scale_is_rejected_at_load(library, tmp_path, dtype):
    import recur.format as rf
    V, E, H = 3, 2, 2
    entries, data = generator_tensors(V, E, H)
    path = tmp_path / "ok.recur"
    path.write_bytes(build(generator_meta(V, E, H), entries, data))
    f = rf.read(str(path))
    tensors = {n: rf.dequantize(f.raw(n), f.info[n].dtype, f.info[n].shape) for n in f.info}
    blob = bytearray(rf.serialize(f.metadata, tensors, {"layer.1.recurrent_kernel": dtype}))
    g = rf.read(bytes(blob))
    at = g.data_offset + g.info["layer.1.recurrent_kernel"].offset     # the first row's (first block's) scale
    blob[at:at + 4] = struct.pack("<f", float("nan"))
    struct.pack_into("<I", blob, 56, 0)
    struct.pack_into("<I", blob, 56, zlib.crc32(blob) & 0xFFFFFFFF)
    path.write_bytes(bytes(blob))
    status, msg = open_status(path)
    assert status == 10 and "layer.1.recurrent_kernel" in msg, msg


def overflowing_model(tmp_path, sign: float) -> Path:
    """A SimpleRNN (relu) generator whose state is >= 10 and whose dense weights are +-3e38 (finite):
    every logit overflows to +inf (sign 1) or -inf (sign -1) at run time."""
    V, E, H = 3, 2, 2
    meta = generator_meta(V, E, H, cell="rnn") + [m_str("layer.1.activation", "relu")]
    shapes = [("layer.0.embeddings", [V, E], 0.1), ("layer.1.kernel", [H, E], 0.1), ("layer.1.recurrent_kernel", [H, H], 0.0),
              ("layer.1.bias", [H], 10.0), ("layer.2.kernel", [V, H], sign * 3e38), ("layer.2.bias", [V], sign * 3e38)]
    entries, data = [], b""
    for name, shape, v in shapes:
        entries.append(t_entry(name, "f32", shape, len(data)))
        data += np.full(shape, v, "<f4").tobytes()
        data += b"\0" * (-len(data) % 64)
    path = tmp_path / f"overflow{int(sign)}.recur"
    path.write_bytes(build(meta, entries, data))
    return path


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_overflow_at_run_time_is_a_numerical_error(library, tmp_path, sign, temperature):
    from recur import _capi
    L = _capi.lib()
    path = overflowing_model(tmp_path, sign)
    m, st, sp = _capi.model_p(), _capi.state_p(), _capi.sampler_p()
    assert L.recur_model_open(str(path).encode(), 0, C.byref(m)) == 0, _capi.last_error()   # finite weights load
    try:
        assert L.recur_state_new(m, C.byref(st)) == 0
        params = _capi.recur_sampler_params()
        L.recur_sampler_params_init(C.byref(params))
        params.temperature = temperature
        assert L.recur_sampler_new(C.byref(params), C.byref(sp)) == 0
        pieces = []

        @_capi.recur_piece_callback
        def collect(piece, length, user):
            pieces.append(C.string_at(piece, length))
            return 0

        generated = C.c_int32(-1)
        status = L.recur_generate(st, sp, b"ab", 5, collect, None, C.byref(generated))
        assert status == 10, f"status {status}: {_capi.last_error()}"       # RECUR_ERR_NUMERICAL
        assert pieces == [] and generated.value == 0
        assert "infinity" in _capi.last_error() or "non-finite" in _capi.last_error()
    finally:
        L.recur_sampler_free(sp)
        L.recur_state_free(st)
        L.recur_model_free(m)


def test_state_copy_between_models_of_equal_checksum_but_other_sizes(library, tmp_path):
    """Two files with the same stored checksum (opened without verifying it) and the same state size but
    different output sizes: copying a state between them is a mismatch, not a read past the smaller
    output buffer."""
    from recur import _capi
    L = _capi.lib()
    handles = []
    for V in (3, 5):
        tokens = ["a", "b", "c", "d", "e"][:V]
        entries, data = generator_tensors(V, 2, 2)
        blob = bytearray(build(generator_meta(V, 2, 2, tokens=tokens), entries, data))
        struct.pack_into("<I", blob, 56, 0x5EED5EED)
        m, st = _capi.model_p(), _capi.state_p()
        assert L.recur_model_open_buffer(bytes(blob), len(blob), _capi.RECUR_OPEN_SKIP_CHECKSUM, C.byref(m)) == 0, _capi.last_error()
        assert L.recur_state_new(m, C.byref(st)) == 0
        handles.append((m, st))
    try:
        (m3, s3), (m5, s5) = handles
        assert L.recur_state_copy(s5, s3) == 9, _capi.last_error()      # RECUR_ERR_MISMATCH
        assert L.recur_state_copy(s3, s5) == 9, _capi.last_error()
    finally:
        for m, st in handles:
            L.recur_state_free(st)
            L.recur_model_free(m)


# ---------------------------------------------------------------------------------------------------------
# Writers killed midway
# ---------------------------------------------------------------------------------------------------------

def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def kill_while_writing(args, target: Path, delays, may_change=False):
    """Starts `args` (which writes `target`) once per delay and SIGKILLs it after that many seconds, or
    (delay None) as soon as a temporary file next to `target` holds bytes. After each kill, `target` must
    be a complete file (checksum verified) and, unless the writer finished first (or `may_change`: a
    writer that replaces the file many times), the very file it was before. Returns how many kills hit a
    writer while its temporary file existed."""
    import recur.format as rf
    old = digest(target)
    hits = 0
    for delay in delays:
        for stray in glob.glob(str(target) + ".tmp-*"):
            os.unlink(stray)
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = time.monotonic()
        while p.poll() is None and time.monotonic() - start < (60 if delay is None else delay):
            if delay is None and any(os.path.exists(t) and os.path.getsize(t) > 0 for t in glob.glob(str(target) + ".tmp-*")):
                break
            time.sleep(0.0005)
        p.send_signal(signal.SIGKILL)
        p.wait()
        finished = p.returncode == 0
        if not finished and glob.glob(str(target) + ".tmp-*"):
            hits += 1
        now = digest(target)
        if now != old:
            # A changed file is only acceptable as the writer's complete new file: the kill landed after
            # the rename (the process was still exiting). It must then parse with a valid checksum (below)
            # and no temporary file may be left beside it.
            assert finished or may_change or not glob.glob(str(target) + ".tmp-*"), \
                f"{args[1]} killed after {delay} s changed {target} while its temporary file still existed"
            old = now
        rf.read(str(target))      # complete: parses and its checksum matches
    return hits


@pytest.fixture(scope="module")
def big_model(cli, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.recur"
    run_cli(cli, "create", "--out", path, "--cell", "lstm", "--hidden", "1600", "--embedding", "32")
    return path


def test_create_killed_midway_keeps_the_old_file(cli, library, tmp_path):
    import recur
    target = tmp_path / "model.recur"
    run_cli(cli, "create", "--out", target, "--hidden", "8", "--embedding", "4", "--seed", "5")
    before = digest(target)
    args = [cli, "create", "--out", str(target), "--cell", "lstm", "--hidden", "1600", "--embedding", "32", "--seed", "9"]
    hits = kill_while_writing(args, target, [None, None, None, 0.05, 0.15, 0.3, 0.5])
    assert hits >= 2, "no kill landed while the temporary file was being written"
    with recur.Model(str(target)) as m:
        assert m.vocab_size > 0
    assert digest(target) == before or os.path.getsize(target) > 10 << 20


def test_quantize_killed_midway_keeps_the_old_file(cli, library, big_model, tmp_path):
    target = tmp_path / "out.recur"
    run_cli(cli, "create", "--out", target, "--hidden", "8", "--embedding", "4", "--seed", "6")
    args = [cli, "quantize", str(big_model), str(target), "--type", "q4"]
    hits = kill_while_writing(args, target, [None, None, None, 0.05, 0.2, 0.4])
    assert hits >= 2


def test_python_writer_killed_midway_keeps_the_old_file(tmp_path):
    target = tmp_path / "py.recur"
    script = (
        "import sys, numpy as np\n"
        "sys.path.insert(0, %r)\n"
        "import recur.format as rf\n"
        "n = int(sys.argv[2])\n"
        "rf.write(sys.argv[1], {'general.name': 'x'}, {'w': np.ones((n, 1024), np.float32)})\n"
    ) % str(ROOT / "bindings" / "python")
    subprocess.run([sys.executable, "-c", script, str(target), "4"], check=True)
    args = [sys.executable, "-c", script, str(target), "20000"]
    hits = kill_while_writing(args, target, [None, None, None, 0.3, 0.6])
    assert hits >= 2


def test_training_checkpoint_killed_midway_is_complete(cli, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 200)
    ck = tmp_path / "ck.recur"
    out = tmp_path / "m.recur"
    args = [cli, "train", "--text", str(text), "--out", str(out), "--checkpoint", str(ck), "--checkpoint-every", "1",
            "--hidden", "400", "--embedding", "16", "--batch", "2", "--seq-len", "8", "--epochs", "50",
            "--sample-length", "0", "--quiet", "--threads", "1"]
    # The first checkpoint.
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    while not ck.exists() and time.monotonic() - start < 60:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert ck.exists(), "no checkpoint was written"
    hits = kill_while_writing(args, ck, [None, None, None, 0.5, 1.0], may_change=True)
    assert hits >= 1


# ---------------------------------------------------------------------------------------------------------
# Translators with attention (format 5): every inconsistency is a model error naming what is wrong
# ---------------------------------------------------------------------------------------------------------

def _attention_file(tmp_path, name="att.recur", edit=None, **kw):
    """A valid attention translator (test_attention.build_translator), then `edit(meta, tensors)` applied
    to its metadata and tensors and the file written again."""
    import recur.format as rf
    from test_attention import build_translator
    path = tmp_path / name
    build_translator(path, **kw)
    if edit is not None:
        data = rf.read(str(path))
        meta, tensors = dict(data.metadata), {k: np.array(v) for k, v in data.tensors.items()}
        edit(meta, tensors)
        rf.write(path, meta, tensors)
    return path


def _set(**values):
    def edit(meta, tensors):
        for k, v in values.items():
            k = k.replace("__", ".")
            if v is None:
                meta.pop(k, None)
            else:
                meta[k] = v
    return edit


def _tensor(name, value=None, drop=False):
    def edit(meta, tensors):
        if drop:
            del tensors[name]
        else:
            tensors[name] = value(tensors.get(name)) if callable(value) else value
    return edit


ATTENTION_FAULTS = [
    # (builder arguments, edit, phrase of the message)
    (dict(score="general"), _tensor("layer.2.score_kernel", lambda w: np.zeros((w.shape[0], w.shape[1] + 1), np.float32)),
     "tensor 'layer.2.score_kernel' has shape"),
    (dict(score="additive"), _tensor("layer.2.key_kernel", drop=True), "missing tensor 'layer.2.key_kernel'"),
    (dict(score="additive"), _tensor("layer.2.score_vector", lambda v: v[:-1]), "tensor 'layer.2.score_vector' has shape"),
    (dict(score="additive", use_bias=True), _tensor("layer.2.score_bias", drop=True), "missing tensor 'layer.2.score_bias'"),
    (dict(score="additive"), _tensor("layer.2.score_bias", np.zeros(6, np.float32)), "tensor 'layer.2.score_bias' is not used"),
    (dict(score="dot"), _tensor("layer.2.score_kernel", np.zeros((5, 5), np.float32)), "tensor 'layer.2.score_kernel' is not used"),
    (dict(score="dot", combine="none"), _tensor("layer.2.kernel", np.zeros((7, 10), np.float32)), "tensor 'layer.2.kernel' is not used"),
    (dict(score="general"), _tensor("layer.2.kernel", lambda w: w[:, :-1]), "tensor 'layer.2.kernel' has shape"),
    (dict(score="general"), _tensor("layer.2.bias", drop=True), "missing tensor 'layer.2.bias'"),
    (dict(score="general"), _set(layer__2__memory_size=6), "memory_size is 6 but the encoder's last recurrent layer outputs 5"),
    (dict(score="general"), _set(layer__2__input_size=6), "layer 2 (attention) expects input size 6 but the previous layer gives 5"),
    (dict(score="dot"), _set(layer__2__memory_size=4), "dot attention needs a decoder state as wide as the encoder's outputs"),
    (dict(score="general"), _set(layer__2__score="cosine"), "unknown value 'cosine'"),
    (dict(score="general"), _set(layer__2__score=None), "missing metadata key 'layer.2.score'"),
    (dict(score="general"), _set(layer__2__combine="sum"), "unknown value 'sum'"),
    (dict(score="general"), _set(layer__2__units=None), "missing metadata key 'layer.2.units'"),
    (dict(score="general", combine="none"), _set(layer__2__units=9), "combine = none outputs [c_t; h_t], memory_size + input_size = 10"),
    (dict(score="general"), _set(layer__2__attention_units=4), "only for additive attention"),
    (dict(score="additive"), _set(layer__2__attention_units=None), "missing metadata key 'layer.2.attention_units'"),
    (dict(score="general"), _set(layer__2__input_feeding=True), "reads the embedding (4) and the attention layer's fed-back output (7)"),
    (dict(score="general", input_feeding=True), _set(layer__2__input_feeding=False), "layer 1 (gru) expects input size 11 but the previous layer gives 4"),
    (dict(score="general"), _set(layer__3__input_size=8), "layer 3 (dense) expects input size 8 but the previous layer gives 7"),
    (dict(score="general", bidirectional=True), _set(layer__1__kind="rnn"), "the decoder's forward-only and of the encoder layer's units, or twice them"),
    (dict(score="general", bidirectional=True), _set(**{"encoder__layer__1__merge_mode": "sum"}), "twice them for a bidirectional (concat) encoder layer"),
    (dict(score="general"), _set(**{"encoder__layer__1__return_sequences": False}), "the encoder's last recurrent layer must return every step"),
    (dict(attention=False, bidirectional=True), None, "none bidirectional"),
]


@pytest.mark.parametrize("kw,edit,phrase", ATTENTION_FAULTS, ids=[f[2][:40] for f in ATTENTION_FAULTS])
def test_inconsistent_attention_models_are_model_errors(library, tmp_path, kw, edit, phrase):
    if not kw.get("attention", True) and kw.get("bidirectional"):
        # A bidirectional encoder without attention: the decoder would need 2 × units and there is no rule.
        from test_attention import build_translator
        path = tmp_path / "bidi-plain.recur"
        try:
            build_translator(path, **kw)
        except Exception:
            pytest.skip("the fixture cannot write this one")
    else:
        path = _attention_file(tmp_path, edit=edit, **kw)
    status, msg = open_status(path)
    assert status == 6, msg            # RECUR_ERR_MODEL
    assert phrase in msg, msg


def test_attention_in_other_places_is_refused(library, tmp_path):
    import recur.format as rf
    path = _attention_file(tmp_path)
    data = rf.read(str(path))
    meta, tensors = dict(data.metadata), dict(data.tensors)
    # An attention layer in the encoder, and in a generator.
    enc = dict(meta)
    enc.update({"encoder.layer_count": 3, "encoder.layer.2.kind": "attention", "encoder.layer.2.score": "dot",
                "encoder.layer.2.input_size": 5, "encoder.layer.2.memory_size": 5, "encoder.layer.2.combine": "none"})
    rf.write(tmp_path / "enc.recur", enc, tensors)
    status, msg = open_status(tmp_path / "enc.recur")
    assert status == 6 and "an encoder has no attention layer" in msg, msg
    gen = {k: v for k, v in meta.items() if not k.startswith(("encoder.", "source_tokenizer."))}
    gen["model.task"] = "generate"
    rf.write(tmp_path / "gen.recur", gen, {k: v for k, v in tensors.items() if not k.startswith("encoder.")})
    status, msg = open_status(tmp_path / "gen.recur")
    assert status == 6 and "only a seq2seq decoder has an attention layer" in msg, msg
    # Two attention layers.
    two = dict(meta)
    two.update({"model.layer_count": 5, "layer.3.kind": "attention", "layer.3.score": "dot", "layer.3.input_size": 7,
                "layer.3.memory_size": 7, "layer.3.combine": "none", "layer.4.kind": "dense",
                "layer.4.input_size": 7, "layer.4.units": len(meta["tokenizer.tokens"]), "layer.4.activation": "linear"})
    two.pop("layer.3.units")
    t2 = dict(tensors)
    t2["layer.4.kernel"], t2["layer.4.bias"] = t2.pop("layer.3.kernel"), t2.pop("layer.3.bias")
    rf.write(tmp_path / "two.recur", two, t2)
    status, msg = open_status(tmp_path / "two.recur")
    assert status == 6 and "must directly follow the decoder's last recurrent layer" in msg, msg


def test_attention_file_faults_of_the_format_and_numbers(library, tmp_path):
    import recur.format as rf
    path = _attention_file(tmp_path, score="additive")
    blob = path.read_bytes()
    # Truncated inside the attention tensors' bytes (the last tensors of the file: the head's, the attention's).
    (tmp_path / "cut.recur").write_bytes(blob[:len(blob) - 100])
    status, msg = open_status(tmp_path / "cut.recur")
    assert status == 3 and "truncated" in msg, msg      # RECUR_ERR_FORMAT
    # A non-finite attention weight.
    bad = _attention_file(tmp_path, "nan.recur", edit=_tensor("layer.2.query_kernel", lambda w: np.where(
        np.arange(w.size).reshape(w.shape) == 3, np.nan, w).astype(np.float32)), score="additive")
    status, msg = open_status(bad)
    assert status == 10 and "layer.2.query_kernel" in msg, msg    # RECUR_ERR_NUMERICAL
    # A vector of the attention stored as f16.
    data = rf.read(str(path))
    f16 = tmp_path / "f16.recur"
    rf.write(f16, data.metadata, data.tensors, {"layer.2.score_vector": "f16"})
    status, msg = open_status(f16)
    assert status == 6 and "vectors must be f32" in msg, msg
    # Matrices may be quantized: the model opens.
    q = tmp_path / "q8.recur"
    rf.write(q, data.metadata, data.tensors, {"layer.2.key_kernel": "q8", "layer.2.query_kernel": "q4"})
    assert open_status(q)[0] == 0
    # A file with attention that claims version 4.
    raw = bytearray(blob)
    struct.pack_into("<H", raw, 8, 4)
    raw[56:60] = b"\0\0\0\0"
    struct.pack_into("<I", raw, 56, zlib.crc32(bytes(raw)) & 0xFFFFFFFF)
    (tmp_path / "v4.recur").write_bytes(bytes(raw))
    status, msg = open_status(tmp_path / "v4.recur")
    assert status == 6 and "format 5 feature" in msg, msg
    # And one from a newer major: refused by its version.
    struct.pack_into("<H", raw, 8, 7)
    raw[56:60] = b"\0\0\0\0"
    struct.pack_into("<I", raw, 56, zlib.crc32(bytes(raw)) & 0xFFFFFFFF)
    (tmp_path / "v7.recur").write_bytes(bytes(raw))
    status, msg = open_status(tmp_path / "v7.recur")
    assert status == 4 and "6.x" in msg, msg      # RECUR_ERR_UNSUPPORTED_VERSION
