"""Recur for Python: run recurrent neural network models (.recur files) through the Recur library.

    >>> import recur
    >>> model = recur.Model("alice.recur")
    >>> "".join(model.generate("Alice", max_tokens=50, temperature=0.8, seed=42))
    >>> state = model.new_state()
    >>> logits = state.feed(model.encode("Alice"))      # numpy float32, one value per token

Objects: :class:`Model` (a loaded file: vocabulary, ``encode``/``decode``, ``info()``, ``generate``),
:class:`State` (one stream: ``step``, ``feed``, ``reset``, ``save``/``load``, ``copy``), :class:`Sampler`.
Errors raise :class:`RecurError`, whose ``code`` is a :class:`Status`.

The library is loaded on first use of these objects. Search order: ``$RECUR_LIBRARY`` (a file path; when
set, nothing else is tried), the copy bundled by ``pip install`` (``recur/_lib/librecur.so``),
``$RECUR_PREFIX/lib/librecur.so``, a source checkout's ``.build/release/libRecurC.so``, then
``librecur.so`` on the system's library path. ``recur.library_path()`` tells which one was loaded.

``recur.default_model_path()`` is the model ``recur generate`` uses when given none: ``$RECUR_MODEL``, the
copy bundled by ``pip install``, ``share/recur/alice.recur`` of ``$RECUR_PREFIX`` or of the library's
install prefix, then ``models/alice.recur`` of the source checkout and of the current directory.

The submodules ``recur.format`` (a pure-Python reader and writer of .recur files) and ``recur.reference``
need no library and are not imported by ``import recur``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Model", "State", "Sampler", "Continuation", "Attention", "RecurError", "Status", "library_path", "library_version",
           "format_version", "default_model_path", "__version__"]

_LAZY = {"Model": "model", "State": "model", "Sampler": "model", "Continuation": "model", "Attention": "model", "RecurError": "_capi", "Status": "_capi"}


def __getattr__(name):
    # Imported on first use, so that `import recur.format` works where the library is not installed.
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recur' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def library_path() -> str:
    """The path of the Recur library in use (loading it if needed)."""
    from . import _capi
    _capi.lib()
    return _capi._loader.library_path()


def default_model_path() -> str:
    """The path of the default model, ``alice.recur``: the one ``recur generate`` uses when given none.

    Looked for in this order (the first file that exists wins): ``$RECUR_MODEL`` (when set, nothing else
    is tried); the copy bundled by ``pip install`` (``recur/_models/alice.recur``);
    ``$RECUR_PREFIX/share/recur/alice.recur``; ``PREFIX/share/recur/alice.recur`` when the library in use
    is ``PREFIX/lib/librecur.so`` (this loads the library); ``models/alice.recur`` of the source checkout
    the package is used or was installed from; ``models/alice.recur`` under the current directory.
    Raises FileNotFoundError, naming every place tried, when there is none.
    """
    from . import _loader
    return _loader.default_model_path()


def library_version() -> str:
    """The loaded library's version string, e.g. "0.1.0"."""
    from . import _capi
    return _capi.lib().recur_version_string().decode()


def format_version() -> tuple:
    """The .recur format version (major, minor) the library writes; it reads every minor of that major."""
    import ctypes
    from . import _capi
    major, minor = ctypes.c_int(), ctypes.c_int()
    _capi.lib().recur_format_version(ctypes.byref(major), ctypes.byref(minor))
    return major.value, minor.value
