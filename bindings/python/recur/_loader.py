"""Finds and loads the Recur shared library (the C API of include/recur.h).

Search order (the first that exists wins):

1. ``$RECUR_LIBRARY``: the path of the library file. When set, it must exist: no other place is tried.
2. The copy bundled in this package, ``recur/_lib/librecur.so`` (``pip install`` puts it there).
3. ``$RECUR_PREFIX/lib/librecur.so``: an installed layout (``make install PREFIX=...``).
4. A source checkout: ``<repository>/.build/release/libRecurC.so`` (after ``make build``), when this
   package is used from ``bindings/python`` of the repository.
5. The system's dynamic loader: ``librecur.so`` on the usual paths (``/usr/local/lib`` after
   ``make install``, ``LD_LIBRARY_PATH``, ...).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPOSITORY = _PACKAGE.parents[2]  # bindings/python/recur -> repository root (when in a checkout)

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
