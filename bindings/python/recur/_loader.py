"""Finds and loads the Recur shared library (the C API of include/recur.h).

Search order (the first that exists wins):

1. ``$RECUR_LIBRARY``: the path of the library file. When set, it must exist: no other place is tried.
2. The copy bundled in this package, ``recur/_lib/librecur.so`` (``pip install`` puts it there).
3. ``$RECUR_PREFIX/lib/librecur.so``: an installed layout (``make install PREFIX=...``).
4. A source checkout: ``<repository>/.build/release/libRecurC.so`` (after ``make build``), when this
   package is used from ``bindings/python`` of the repository.
5. The system's dynamic loader: ``librecur.so`` on the usual paths (``/usr/local/lib`` after
   ``make install``, ``LD_LIBRARY_PATH``, ...).

The default model (:func:`default_model_path`, the model ``recur generate`` uses when given none) is
looked for in the same spirit as the ``recur`` command does:

1. ``$RECUR_MODEL``: the path of a model file. When set, it must exist: no other place is tried.
2. The copy bundled in this package, ``recur/_models/alice.recur`` (``pip install`` puts it there).
3. ``$RECUR_PREFIX/share/recur/alice.recur``.
4. ``PREFIX/share/recur/alice.recur`` of the library in use, when it is ``PREFIX/lib/librecur.so``
   (an installed layout; the library is loaded to know where it is).
5. ``models/alice.recur`` of the source checkout this package is used from, or was installed from.
6. ``models/alice.recur`` under the current directory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPOSITORY = _PACKAGE.parents[2]  # bindings/python/recur -> repository root (when in a checkout)
_MODEL = "alice.recur"

_lock = threading.Lock()
_loaded: "tuple[ctypes.CDLL, str] | None" = None


def candidates() -> "list[tuple[str, str]]":
    """The places searched, in order, as (description, path) pairs."""
    out = []
    env = os.environ.get("RECUR_LIBRARY")
    if env:
        return [("$RECUR_LIBRARY", env)]
    out.append(("bundled with the package", str(_PACKAGE / "_lib" / "librecur.so")))
    prefix = os.environ.get("RECUR_PREFIX")
    if prefix:
        out.append(("$RECUR_PREFIX", str(Path(prefix) / "lib" / "librecur.so")))
    out.append(("source checkout", str(_REPOSITORY / ".build" / "release" / "libRecurC.so")))
    return out


def find_library() -> str:
    """The path of the library that `load_library` would load, or raises OSError naming every place tried."""
    tried = []
    for what, path in candidates():
        if os.path.isfile(path):
            return path
        tried.append(f"{path} ({what})")
        if what == "$RECUR_LIBRARY":
            raise OSError(f"RECUR_LIBRARY={path} does not name a file")
    system = ctypes.util.find_library("recur")
    if system:
        return system
    tried.append("librecur.so on the system's library path")
    raise OSError("the Recur library was not found; looked in: " + "; ".join(tried)
                  + ". Install it (make install PREFIX=...), build it (make build), or set RECUR_LIBRARY.")


def load_library() -> "tuple[ctypes.CDLL, str]":
    """Loads the library once per process; returns (handle, path)."""
    global _loaded
    with _lock:
        if _loaded is None:
            path = find_library()
            _loaded = (ctypes.CDLL(path), path)
        return _loaded


def library_path() -> str:
    """The path of the loaded library (loading it if needed)."""
    return load_library()[1]


def _dladdr_path(lib: ctypes.CDLL) -> "str | None":
    """The file the dynamic loader mapped ``lib`` from (``dladdr`` of one of its functions)."""

    class _DlInfo(ctypes.Structure):
        _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                    ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

    for libc in (None, "libdl.so.2"):
        try:
            dladdr = ctypes.CDLL(libc).dladdr
            break
        except (OSError, AttributeError):
            continue
    else:
        return None
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    if dladdr(ctypes.cast(lib.recur_version_string, ctypes.c_void_p), ctypes.byref(info)) and info.dli_fname:
        return os.path.abspath(os.fsdecode(info.dli_fname))
    return None


def library_file() -> str:
    """The absolute path of the library in use (loading it if needed), also when the system's loader
    found it by name."""
    lib, path = load_library()
    if os.path.isabs(path) or os.sep in path:
        return os.path.abspath(path)
    return _dladdr_path(lib) or path


def _prefix_of(library: str) -> "Path | None":
    """PREFIX for PREFIX/lib/librecur.so (also lib64, lib32 and lib/<multiarch triple>)."""
    d = Path(library).parent
    if d.name in ("lib", "lib64", "lib32"):
        return d.parent
    if d.parent.name == "lib":
        return d.parent.parent
    return None


def _origin() -> "Path | None":
    """The source checkout this package was installed from (recorded by its build), if any."""
    try:
        text = (_PACKAGE / "_origin.txt").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return Path(text) if text else None


def model_candidates() -> "list[tuple[str, str]]":
    """The places :func:`default_model_path` searches, in order, as (description, path) pairs."""
    env = os.environ.get("RECUR_MODEL")
    if env:
        return [("$RECUR_MODEL", env)]
    out = [("bundled with the package", str(_PACKAGE / "_models" / _MODEL))]
    prefix = os.environ.get("RECUR_PREFIX")
    if prefix:
        out.append(("$RECUR_PREFIX", str(Path(prefix) / "share" / "recur" / _MODEL)))
    try:
        library = library_file()
    except OSError:
        library = None
    if library:
        for lib in dict.fromkeys([library, os.path.realpath(library)]):
            p = _prefix_of(lib)
            if p is not None:
                out.append((f"the prefix of {lib}", str(p / "share" / "recur" / _MODEL)))
    if (_REPOSITORY / "Package.swift").is_file():
        out.append(("the source checkout of this package", str(_REPOSITORY / "models" / _MODEL)))
    origin = _origin()
    if origin is not None:
        out.append(("the checkout the package was installed from", str(origin / "models" / _MODEL)))
    out.append(("current directory", os.path.join(os.getcwd(), "models", _MODEL)))
    seen, unique = set(), []
    for what, path in out:
        if path not in seen:
            seen.add(path)
            unique.append((what, path))
    return unique


def default_model_path() -> str:
    """The path of the default model (the one ``recur generate`` uses when given none); raises
    FileNotFoundError naming every place tried."""
    tried = []
    for what, path in model_candidates():
        if os.path.isfile(path):
            return path
        if what == "$RECUR_MODEL":
            raise FileNotFoundError(f"RECUR_MODEL={path} does not name a file")
        tried.append(f"{path} ({what})")
    raise FileNotFoundError("no default model (" + _MODEL + ") was found; looked in: " + "; ".join(tried)
                            + ". Set RECUR_MODEL to a .recur file, or pass a path to recur.Model.")
