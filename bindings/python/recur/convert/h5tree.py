"""HDF5 files read in a child process, as a plain tree of groups, attributes and numpy arrays.

The HDF5 C library can crash (segmentation fault) or loop on a damaged file. The converter must answer a
damaged file with one clear error, so h5py runs in a forked child that copies every group, attribute and
dataset into plain Python objects and sends them back; a crash, a hang (``TIMEOUT`` seconds) or an
oversized dataset becomes a :class:`ConvertError`. The tree offers the small part of h5py's interface
the Keras reader uses: ``in``, ``[]``, ``get``, ``keys``, iteration, ``attrs``, ``name`` and ``visititems``.
"""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np

from .common import ConvertError

TIMEOUT = 120
MAX_BYTES = 2 << 30          # total dataset bytes a file may hold


class Dataset:
    def __init__(self, name: str, data: np.ndarray):
        self.name = name
        self.data = data
        self.attrs: dict = {}
        self.shape = data.shape

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)


class Group:
    def __init__(self, name: str, attrs: dict, children: dict):
        self.name = name
        self.attrs = attrs
        self._children = children

    def __contains__(self, key: str) -> bool:
        try:
            self[key]
            return True
        except KeyError:
            return False

    def __getitem__(self, path: str):
        if not isinstance(path, str):
            raise KeyError(path)
        node = self
        for part in path.strip("/").split("/"):
            if not isinstance(node, Group) or part not in node._children:
                raise KeyError(path)
            node = node._children[part]
        return node

    def get(self, key: str, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self):
        return list(self._children)

    def __iter__(self):
        return iter(list(self._children))

    def visititems(self, fn) -> None:
        for k, v in self._children.items():
            rel = v.name.lstrip("/")
            fn(rel, v)
            if isinstance(v, Group):
                v.visititems(fn)


def _attr(v):
    if isinstance(v, np.ndarray) and v.dtype.kind == "O":
        return np.array([x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in v.ravel()],
                        dtype=object)
    return v


def _text(s) -> str:
    return s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s)


def _snapshot(source) -> dict:
    import h5py
    budget = [MAX_BYTES]

    def walk(g) -> dict:
        node = {"kind": "group", "name": _text(g.name), "children": {},
                "attrs": {_text(k): _attr(g.attrs[k]) for k in g.attrs.keys()}}
        for k in g.keys():
            item = g.get(k)
            k = _text(k)
            if item is None:                    # a dangling link
                continue
            if isinstance(item, h5py.Dataset):
                n = int(np.prod(item.shape, dtype=np.int64)) * item.dtype.itemsize if item.shape else item.dtype.itemsize
                budget[0] -= n
                if budget[0] < 0:
                    raise ValueError(f"dataset '{item.name}' would exceed {MAX_BYTES} bytes in total")
                node["children"][k] = {"kind": "dataset", "name": _text(item.name), "data": np.asarray(item[()])}
            elif isinstance(item, h5py.Group):
                node["children"][k] = walk(item)
        return node

    with h5py.File(source, "r") as f:
        return walk(f)


def _child(conn, source) -> None:
    try:
        conn.send(("ok", _snapshot(source)))
    except BaseException as e:                   # reported to the parent as text
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        conn.send(("error", msg))
    finally:
        conn.close()


def _build(node: dict):
    if node["kind"] == "dataset":
        return Dataset(node["name"], node["data"])
    return Group(node["name"], node["attrs"], {k: _build(v) for k, v in node["children"].items()})


def read(source, origin: str) -> Group:
    """Reads an HDF5 file (a path or bytes) in a child process; returns its root group."""
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise ConvertError("reading Keras files (.keras, .h5) needs h5py, which the converters' extra installs: "
                           "pip install './bindings/python[convert]' in a Recur checkout, or pip install h5py") from None
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                head = f.read(8)
        except OSError as e:
            raise ConvertError(f"cannot read {source}: {e.strerror or e}") from None
    else:
        head = bytes(source[:8])
        import io
        source = io.BytesIO(bytes(source))
    if head != b"\x89HDF\r\n\x1a\n":
        raise ConvertError(f"{origin}: not an HDF5 file")
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, source), daemon=True)
    proc.start()
    child.close()
    result = None
    try:
        if parent.poll(TIMEOUT):
            try:
                result = parent.recv()
            except (EOFError, OSError):
                result = None
    finally:
        parent.close()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if result is None:
        how = f"crashed (signal {-proc.exitcode})" if proc.exitcode is not None and proc.exitcode < 0 else "failed"
        if proc.exitcode is None:
            how = f"did not finish in {TIMEOUT} s"
        raise ConvertError(f"{origin}: the HDF5 library {how} reading the file; it is damaged or not HDF5")
    status, value = result
    if status != "ok":
        raise ConvertError(f"{origin}: not a readable HDF5 file ({value})")
    return _build(value)
