"""Fixtures of the binding tests (test_capi.py, test_model.py): the library, the `recur` command, an
installed-style prefix for building the C example, and small models made by `recur create`.

Where things are found: $RECUR_LIBRARY, $RECUR_CLI and $RECUR_PREFIX when set; otherwise the checkout's
.build/release (after `make build`). A missing piece fails the tests that need it with a message saying
what to build or set; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = ROOT / "bindings" / "python"
if str(PACKAGE_DIR) not in sys.path:
    sys.path.insert(0, str(PACKAGE_DIR))


def _need(path: Path, what: str, hint: str) -> str:
    if not path.is_file():
        pytest.fail(f"{what} not found at {path}: {hint}", pytrace=False)
    return str(path)


@pytest.fixture(scope="session")
def library() -> str:
    """Path of the library under test; exported as RECUR_LIBRARY so that `import recur` loads exactly it."""
    hint = "run `make build` (or `make install PREFIX=...` and set RECUR_PREFIX), or set RECUR_LIBRARY"
    if os.environ.get("RECUR_LIBRARY"):
        path = _need(Path(os.environ["RECUR_LIBRARY"]), "the library named by RECUR_LIBRARY", hint)
    elif os.environ.get("RECUR_PREFIX"):
        path = _need(Path(os.environ["RECUR_PREFIX"]) / "lib" / "librecur.so", "the library of RECUR_PREFIX", hint)
    else:
        path = _need(ROOT / ".build" / "release" / "libRecurC.so", "the Recur library", hint)
    os.environ["RECUR_LIBRARY"] = path
    import recur._capi
    loaded = recur._capi._loader.library_path() if recur._capi._lib else None
    if loaded is not None and os.path.realpath(loaded) != os.path.realpath(path):
        pytest.fail(f"recur already loaded {loaded}, not {path}", pytrace=False)
    recur._capi.lib()
    return path


@pytest.fixture(scope="session")
def cli() -> str:
    """The `recur` command."""
    hint = "run `make build`, or set RECUR_CLI (or RECUR_PREFIX)"
    if os.environ.get("RECUR_CLI"):
        return _need(Path(os.environ["RECUR_CLI"]), "the command named by RECUR_CLI", hint)
    if os.environ.get("RECUR_PREFIX"):
        return _need(Path(os.environ["RECUR_PREFIX"]) / "bin" / "recur", "the command of RECUR_PREFIX", hint)
    return _need(ROOT / ".build" / "release" / "recur", "the recur command", hint)


def run_cli(cli: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([cli, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        pytest.fail(f"recur {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr.strip()}", pytrace=False)
    return p


@pytest.fixture(scope="session")
def example(library, tmp_path_factory) -> str:
    """examples/c/generate.c built against the library under test (with pkg-config when RECUR_PREFIX is
    an installed layout, else against the checkout's header)."""
    out = tmp_path_factory.mktemp("example") / "generate"
    src = ROOT / "examples" / "c" / "generate.c"
    cc = os.environ.get("CC", "cc")
    prefix = os.environ.get("RECUR_PREFIX")
    if prefix and (Path(prefix) / "lib" / "pkgconfig" / "recur.pc").is_file():
        env = dict(os.environ, PKG_CONFIG_PATH=str(Path(prefix) / "lib" / "pkgconfig"))
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "recur"], env=env, capture_output=True,
                               text=True, check=True).stdout.split()
        libdir = str(Path(prefix) / "lib")
    else:
        # The library's SONAME is librecur.so: link and run it under that name.
        libdir = str(tmp_path_factory.mktemp("lib"))
        os.symlink(library, os.path.join(libdir, "librecur.so"))
        flags = [f"-I{ROOT / 'include'}", f"-L{libdir}", "-lrecur"]
    cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", str(src), "-o", str(out), *flags, f"-Wl,-rpath,{libdir}"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"building the C example failed: {' '.join(cmd)}\n{p.stderr}", pytrace=False)
    return str(out)


@pytest.fixture(scope="session")
def models(cli, tmp_path_factory) -> dict:
    """Small random-weight generators made by `recur create`: gru (two layers), lstm, rnn."""
    d = tmp_path_factory.mktemp("models")
    specs = {
        "gru": ["--cell", "gru", "--layers", "2", "--hidden", "40", "--embedding", "12", "--seed", "11"],
        "gru1": ["--cell", "gru", "--layers", "1", "--hidden", "24", "--embedding", "8", "--seed", "5"],
        "lstm": ["--cell", "lstm", "--layers", "2", "--hidden", "32", "--embedding", "8", "--seed", "12"],
        "rnn": ["--cell", "rnn", "--hidden", "16", "--embedding", "8", "--seed", "13"],
    }
    out = {}
    for name, args in specs.items():
        path = d / f"{name}.recur"
        run_cli(cli, "create", "--out", path, *args)
        out[name] = str(path)
    return out


@pytest.fixture(scope="session")
def word_model(models, tmp_path_factory) -> str:
    """A word-level generator with PAD, BOS and EOS tokens: the gru1 model's weights under a word
    vocabulary of the same size (written with recur.format)."""
    from recur import format as rf
    data = rf.read(models["gru1"])
    vocab = len(data.metadata["tokenizer.tokens"])
    words = ["<pad>", "<bos>", "<eos>", ".", ",", "!"] + [f"w{i}" for i in range(vocab - 6)]
    meta = data.typed_metadata()
    meta["tokenizer.kind"] = "word"
    meta["tokenizer.tokens"] = words
    meta["tokenizer.pad_id"] = 0
    meta["tokenizer.bos_id"] = 1
    meta["tokenizer.eos_id"] = 2
    meta["tokenizer.lowercase"] = True
    path = tmp_path_factory.mktemp("word") / "word.recur"
    rf.write(str(path), meta, data.raw_tensors())
    return str(path)
