"""HDF5 files read in a child process, as a plain tree of groups, attributes and numpy arrays.

The HDF5 C library can crash (segmentation fault) or loop on a damaged file. The converter must answer a
damaged file with one clear error, so h5py runs in a forked child; a crash, a hang (``TIMEOUT`` seconds) or
a refused dataset becomes a :class:`ConvertError`. The tree offers the small part of h5py's interface the
Keras reader uses: ``in``, ``[]``, ``get``, ``keys``, iteration, ``attrs``, ``name`` and ``visititems``.

Memory. Before it reads any data the child checks every dataset and attribute against what is left of the
conversion's budget (``common.Budget``), every dataset against ``common.MAX_RATIO`` (declared bytes per
stored byte: compressed or unallocated datasets, alone and all together), and every attribute against the
file's size (attributes are stored whole); external links, external storage and virtual datasets (which would
read other files) and chunks over ``MAX_CHUNK`` bytes are refused. It then sends the tree (groups,
attributes, the datasets' shapes and types) and streams each dataset's bytes, ``PIECE`` bytes at a time,
straight into one array per dataset that the parent allocates after charging it to the budget: the data
exists once in the parent, and the child never holds more than one piece and one HDF5 chunk.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import pickle
import select
import struct
import time
from typing import Optional

import numpy as np

from .common import RATIO_FLOOR, Budget, ConvertError, check_ratio, shape_bytes

TIMEOUT = 120
PIECE = 16 << 20             # bytes the child reads and sends at a time
MAX_CHUNK = 64 << 20         # largest HDF5 chunk a dataset may be stored in
_SMALL = 1 << 20             # non-numeric datasets (strings, ...) up to this size travel inside the tree
MAX_DEPTH = 64               # groups nested deeper are refused
_FRAME = struct.Struct("<cQ")


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


def _pieces(shape: tuple, itemsize: int, limit: int):
    """Index tuples that cover an array of ``shape`` in C order, each selecting at most ``limit`` bytes
    (one element at least): whole rows along the first axis whose trailing block fits, stepped."""
    if not shape:
        yield ()
        return
    k, block = len(shape), itemsize                # block: bytes of one index along axis k - 1
    while k > 0 and block * shape[k - 1] <= limit:
        block *= shape[k - 1]
        k -= 1
    if k == 0:
        yield ()
        return
    axis = k - 1                                   # slice this axis; iterate over the ones before it
    step = max(1, limit // block)
    outer = shape[:axis]
    for flat in range(int(np.prod(outer, dtype=object)) if outer else 1):
        idx = []
        for n in reversed(outer):
            idx.append(flat % n)
            flat //= n
        idx.reverse()
        for a in range(0, shape[axis], step):
            yield tuple(idx) + (slice(a, min(a + step, shape[axis])),)


class _Walker:
    """The child's pass over the file: checks, the tree, and the list of datasets to stream."""

    def __init__(self, h5py, left: int, file_size: int):
        self.h5py = h5py
        self.budget = Budget(left)
        self.file_size = file_size
        self.declared = 0
        self.stored = 0
        self.streams: list = []
        self.seen: set = set()

    def attrs(self, obj) -> dict:
        out = {}
        for k in obj.attrs.keys():
            name = _text(k)
            what = f"attribute '{name}' of '{_text(obj.name)}'"
            aid = obj.attrs.get_id(k)
            n = shape_bytes(list(aid.shape or ()), aid.dtype.itemsize, what)
            if n > max(RATIO_FLOOR, self.file_size):     # attributes are stored whole, never compressed
                raise ConvertError(f"{what} declares {n} bytes, more than the file's {self.file_size}")
            self.budget.charge(n, what)          # before h5py allocates it
            out[name] = _attr(obj.attrs[k])
        return out

    def dataset(self, item) -> dict:
        h5py = self.h5py
        name = _text(item.name)
        what = f"dataset '{name}'"
        if item.is_virtual:
            raise ConvertError(f"{what} is a virtual dataset (it reads other files); not supported")
        if item.id.get_create_plist().get_external_count():
            raise ConvertError(f"{what} keeps its data in external files; not supported")
        dtype = item.dtype
        if item.shape is None:                   # an empty dataspace (h5py.Empty)
            return {"kind": "dataset", "name": name, "inline": np.zeros((0,), dtype if dtype.kind in "biufc" else "u1")}
        shape = tuple(int(d) for d in item.shape)
        n = shape_bytes(list(shape), dtype.itemsize, what)
        stored = item.id.get_storage_size()
        check_ratio(n, stored, what)
        self.declared += n
        self.stored += stored
        check_ratio(self.declared, self.stored, "the datasets of the file together")
        if item.chunks is not None:
            c = shape_bytes(list(item.chunks), dtype.itemsize, f"{what} chunk")
            if c > MAX_CHUNK:
                raise ConvertError(f"{what} is stored in chunks of {c} bytes (more than {MAX_CHUNK}); not supported")
        self.budget.charge(n, what)
        if dtype.kind in "biufc" and dtype.fields is None and dtype.subdtype is None and not h5py.check_dtype(vlen=dtype):
            self.streams.append((item, shape, dtype))
            return {"kind": "dataset", "name": name, "stream": len(self.streams) - 1, "dtype": dtype.str,
                    "shape": shape, "nbytes": n}
        if n > _SMALL:
            raise ConvertError(f"{what} of type {dtype} holds {n} bytes; non-numeric datasets over {_SMALL} bytes "
                             f"are not supported")
        return {"kind": "dataset", "name": name, "inline": np.asarray(item[()])}

    def group(self, g, depth: int = 0) -> dict:
        h5py = self.h5py
        if depth > MAX_DEPTH:
            raise ConvertError(f"groups are nested more than {MAX_DEPTH} levels deep (at '{_text(g.name)}')")
        self.visit(g)
        node = {"kind": "group", "name": _text(g.name), "children": {}, "attrs": self.attrs(g)}
        for k in g.keys():
            link = g.get(k, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise ConvertError(f"'{_text(g.name)}/{_text(k)}' is a link to another file; not supported")
            item = g.get(k)
            k = _text(k)
            if item is None:                    # a dangling link
                continue
            if isinstance(item, h5py.Dataset):
                self.visit(item)
                node["children"][k] = self.dataset(item)
            elif isinstance(item, h5py.Group):
                node["children"][k] = self.group(item, depth + 1)
        return node

    def visit(self, obj) -> None:
        """Refuses an object reached twice (hard links to one object, or a group inside itself)."""
        key = hash(obj.id)
        if key in self.seen:
            raise ConvertError(f"'{_text(obj.name)}' is reached by more than one link (or forms a cycle); "
                               f"not supported")
        self.seen.add(key)


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _send(fd: int, kind: bytes, payload=b"") -> None:
    _write_all(fd, _FRAME.pack(kind, len(memoryview(payload).cast("B"))))
    if len(payload):
        _write_all(fd, payload)


def _child(conn, source, left: int, file_size: int) -> None:
    fd = conn.fileno()
    try:
        import h5py
        with h5py.File(source, "r") as f:
            walker = _Walker(h5py, left, file_size)
            tree = walker.group(f)
            _send(fd, b"T", pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL))
            del tree
            for item, shape, dtype in walker.streams:
                for idx in _pieces(shape, dtype.itemsize, PIECE):
                    piece = np.ascontiguousarray(item[idx], dtype=dtype).reshape(-1).view(np.uint8)
                    if piece.nbytes:
                        _send(fd, b"D", piece)
                    del piece
        _send(fd, b"Z")
    except BaseException as e:                   # reported to the parent as text
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        try:
            _send(fd, b"C" if isinstance(e, ConvertError) else b"E", msg[:2000].encode("utf-8", "replace"))
        except OSError:
            pass
    finally:
        conn.close()


class _Stream:
    """The parent's end: frames read with a deadline, payloads read straight into their destination."""

    def __init__(self, fd: int, deadline: float):
        self.fd = fd
        self.deadline = deadline

    def _wait(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0 or not select.select([self.fd], [], [], left)[0]:
            raise TimeoutError

    def read_into(self, view: memoryview) -> None:
        while len(view):
            self._wait()
            n = os.readv(self.fd, [view])
            if n == 0:
                raise EOFError
            view = view[n:]

    def frame(self):
        head = bytearray(_FRAME.size)
        self.read_into(memoryview(head))
        return _FRAME.unpack(bytes(head))


def _build(node: dict, arrays: list):
    if node["kind"] == "dataset":
        data = node["inline"] if "inline" in node else arrays[node["stream"]]
        return Dataset(node["name"], data)
    return Group(node["name"], node["attrs"], {k: _build(v, arrays) for k, v in node["children"].items()})


def _streams(node: dict, out: list) -> list:
    if node["kind"] == "dataset":
        if "stream" in node:
            out.append(node)
    else:
        for v in node["children"].values():
            _streams(v, out)
    return out


def _receive(stream: _Stream, budget: Budget, origin: str):
    """Reads the child's frames: the tree, then every dataset's bytes. Returns (tree, arrays)."""
    kind, n = stream.frame()
    _check(stream, kind, n)
    if kind != b"T":
        raise EOFError
    budget.charge(n, f"{origin}: the file's groups and attributes")
    buf = bytearray(n)
    stream.read_into(memoryview(buf))
    tree = pickle.loads(buf)                       # made by the child, a fork of this process
    del buf
    nodes = sorted(_streams(tree, []), key=lambda d: d["stream"])
    arrays = []
    for d in nodes:
        budget.charge(d["nbytes"], f"{origin}: dataset '{d['name']}'")
        arr = np.empty(d["nbytes"], dtype=np.uint8)
        view, pos = memoryview(arr), 0
        while pos < d["nbytes"]:
            kind, m = stream.frame()
            _check(stream, kind, m)
            if kind != b"D" or m > d["nbytes"] - pos:
                raise EOFError
            stream.read_into(view[pos:pos + m])
            pos += m
        view.release()
        arrays.append(arr.view(np.dtype(d["dtype"])).reshape(d["shape"]))
    kind, m = stream.frame()
    _check(stream, kind, m)
    if kind != b"Z":
        raise EOFError
    return tree, arrays


class _ChildError(Exception):
    pass


class _ChildRefusal(Exception):
    pass


def _check(stream: "_Stream", kind: bytes, n: int) -> None:
    if kind == b"E":
        raise _ChildError(_message(stream, n))
    if kind == b"C":
        raise _ChildRefusal(_message(stream, n))


def _message(stream: _Stream, n: int) -> str:
    if n > 1 << 16:
        raise EOFError
    buf = bytearray(n)
    stream.read_into(memoryview(buf))
    return buf.decode("utf-8", "replace")


class _BufferFile(io.RawIOBase):
    """A read-only file over a bytes-like object, without copying it (``io.BytesIO`` copies a bytearray)."""

    def __init__(self, buf):
        self._view = memoryview(buf).cast("B")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = max(0, min(len(b), len(self._view) - self._pos))
        b[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def read(source, origin: str, budget: Optional[Budget] = None) -> Group:
    """Reads an HDF5 file (a path or bytes) in a child process; returns its root group."""
    budget = budget if budget is not None else Budget()
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise ConvertError("reading Keras files (.keras, .h5) needs h5py, which the converters' extra installs: "
                           "pip install './bindings/python[convert]' in a Recur checkout, or pip install h5py") from None
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                head = f.read(8)
                file_size = os.fstat(f.fileno()).st_size
        except OSError as e:
            raise ConvertError(f"cannot read {source}: {e.strerror or e}") from None
    else:
        head = bytes(source[:8])
        file_size = len(memoryview(source).cast("B"))
        source = _BufferFile(source)
    if head != b"\x89HDF\r\n\x1a\n":
        raise ConvertError(f"{origin}: not an HDF5 file")
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, source, budget.left, file_size), daemon=True)
    proc.start()
    child.close()
    failure = None
    try:
        tree, arrays = _receive(_Stream(parent.fileno(), time.monotonic() + TIMEOUT), budget, origin)
    except _ChildError as e:
        failure = ("error", str(e))
    except _ChildRefusal as e:
        failure = ("refused", str(e))
    except TimeoutError:                         # before OSError, its base class
        failure = ("timeout", None)
    except (EOFError, OSError):
        failure = ("died", None)
    finally:
        parent.close()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if failure is not None:
        status, value = failure
        if status == "error":
            raise ConvertError(f"{origin}: not a readable HDF5 file ({value})")
        if status == "refused":
            raise ConvertError(f"{origin}: {value}")
        if status == "timeout":
            how = f"did not finish in {TIMEOUT} s"
        elif proc.exitcode is not None and proc.exitcode < 0:
            how = f"crashed (signal {-proc.exitcode})"
        else:
            how = "failed"
        raise ConvertError(f"{origin}: the HDF5 library {how} reading the file; it is damaged or not HDF5")
    return _build(tree, arrays)
