"""Shared helpers of test_format.py and test_reference.py.

The modules under test (recur/format.py, recur/reference.py) are loaded straight from their files, so
these tests need neither the Recur shared library nor the rest of the Python package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PKG = ROOT / "bindings" / "python" / "recur"


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


rf = _load("_recur_format_under_test", PKG / "format.py")
ref = _load("_recur_reference_under_test", PKG / "reference.py")


def cli_path() -> str:
    """The `recur` executable: $RECUR_CLI, else .build/release/recur, else .build/debug/recur."""
    env = os.environ.get("RECUR_CLI")
    if env:
        if not os.access(env, os.X_OK):
            pytest.fail(f"RECUR_CLI={env} is not an executable file")
        return env
    for c in (ROOT / ".build" / "release" / "recur", ROOT / ".build" / "debug" / "recur"):
        if os.access(c, os.X_OK):
            return str(c)
    pytest.fail("the recur CLI was not found: set RECUR_CLI, or build it (swift build -c release) so that "
                f"{ROOT / '.build/release/recur'} exists")


def run_cli(*args, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([cli_path(), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        pytest.fail(f"recur {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def create(path, cell: str = "gru", layers: int = 1, hidden: int = 8, embedding: int = 4, seed: int = 1,
           chars: str | None = None) -> bytes:
    args = ["create", "--out", path, "--cell", cell, "--layers", layers, "--hidden", hidden,
            "--embedding", embedding, "--seed", seed]
    if chars is not None:
        args += ["--chars", chars]
    run_cli(*args)
    return Path(path).read_bytes()


def runtime_logits(path, tokens, prefill: bool = False, no_input_table: bool = False):
    args = ["logits", path, "--tokens", ",".join(str(t) for t in tokens)]
    if prefill:
        args.append("--prefill")
    if no_input_table:
        args.append("--no-input-table")
    return json.loads(run_cli(*args).stdout)


def with_crc(b: bytes | bytearray) -> bytes:
    """The bytes with the header checksum recomputed (so a structural defect is what a reader meets)."""
    b = bytearray(b)
    struct.pack_into("<I", b, 56, rf.crc32_of_file(b))
    return bytes(b)


def patch(b: bytes, offset: int, fmt: str, *values, fix_crc: bool = True) -> bytes:
    out = bytearray(b)
    struct.pack_into(fmt, out, offset, *values)
    return with_crc(out) if fix_crc else bytes(out)


def tensor_entry(b: bytes, name: str) -> dict:
    """Byte positions of the fields of tensor `name`'s directory entry."""
    dir_offset, data_offset = struct.unpack_from("<QQ", b, 40)
    key = struct.pack("<H", len(name.encode())) + name.encode()
    at = b.find(key, dir_offset, data_offset)
    assert at >= 0, name
    p = at + len(key)
    rank = b[p + 1]
    return {"entry": at, "dtype": p, "rank": p + 1, "reserved": p + 2, "dims": p + 4,
            "offset": p + 4 + 8 * rank, "length": p + 12 + 8 * rank, "end": p + 20 + 8 * rank}


def meta_entry(b: bytes, key: str) -> dict:
    """Byte positions of metadata entry `key`: its key, type code and value."""
    dir_offset = struct.unpack_from("<Q", b, 40)[0]
    k = struct.pack("<H", len(key.encode())) + key.encode()
    at = b.find(k, 64, dir_offset)
    assert at >= 0, key
    return {"entry": at, "key": at + 2, "type": at + len(k), "value": at + len(k) + 1}
