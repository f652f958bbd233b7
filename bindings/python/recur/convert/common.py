"""The converters' shared pieces: the error type, the layer list every reader produces, and small helpers.

Every reader (Keras, TensorFlow checkpoint, PyTorch, safetensors) turns its source into a list of
:class:`Embedding`, :class:`Recurrent` and :class:`Dense` layers whose tensors are already in the runtime's
layout (row-major, gate blocks stacked along the rows: GRU r, z, n; LSTM i, f, g, o; dense kernels
[units, In]). ``build.py`` then checks the stack and writes the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


class ConvertError(Exception):
    """A source that cannot be converted: unreadable, malformed, or holding something Recur cannot run.

    The message is one line and names the file, layer, tensor or pickled global at fault. Names taken
    from the file may hold anything: characters that are not printable (line breaks, controls) are
    escaped, and a message longer than ``MAX_MESSAGE`` characters is cut.
    """

    MAX_MESSAGE = 2000

    def __init__(self, message: str = ""):
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(message))
        if len(text) > self.MAX_MESSAGE:
            text = text[:self.MAX_MESSAGE] + "..."
        super().__init__(text)


ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "hard_sigmoid_keras2", "hard_sigmoid_keras3", "softmax")
MERGE_MODES = ("concat", "sum", "mul", "ave")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


@dataclass
class Embedding:
    """Token id → vector. ``table`` is [V, E]."""
    table: np.ndarray
    name: str = "embedding"
    mask_zero: bool = False

    @property
    def vocabulary(self) -> int:
        return int(self.table.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.table.shape[1])


@dataclass
class Direction:
    """One direction of a recurrent layer, in runtime layout: kernel [G·H, In], recurrent_kernel
    [G·H, H], bias [G·H], recurrent_bias [G·H] (GRU with reset_after only)."""
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray
    recurrent_bias: Optional[np.ndarray] = None


@dataclass
class Recurrent:
    cell: str                       # "rnn", "gru" or "lstm"
    input_size: int
    units: int
    directions: list                # [Direction] or [forward, backward]
    name: str = "rnn"
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    reset_after: bool = True
    return_sequences: bool = True
    merge_mode: str = "concat"

    @property
    def bidirectional(self) -> bool:
        return len(self.directions) == 2

    @property
    def output_size(self) -> int:
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.units
        return self.units


@dataclass
class Dense:
    """y = act(kernel · x + bias); kernel [units, In]. ``per_step`` marks a TimeDistributed dense."""
    kernel: np.ndarray
    bias: np.ndarray
    name: str = "dense"
    activation: str = "linear"
    per_step: bool = False

    @property
    def input_size(self) -> int:
        return int(self.kernel.shape[1])

    @property
    def units(self) -> int:
        return int(self.kernel.shape[0])


@dataclass
class Attention:
    """A seq2seq decoder's attention over the encoder's outputs (docs/FORMAT.md §11, §13.9): ``score``
    "dot", "general" (``score_kernel`` W_a [Q, M]) or "additive" (``query_kernel`` W_q [A, Q], ``key_kernel``
    W_k [A, M], ``score_vector`` v_a [A], optional ``score_bias`` [A]); ``combine`` "tanh" (``kernel`` W_c
    [units, M + Q], columns of c_t first, and ``bias`` [units]) or "none" (the layer outputs [c_t; h_t])."""
    score: str
    input_size: int                 # Q: the decoder's last recurrent layer's units
    memory_size: int                # M: the width of one encoder output
    combine: str = "none"
    name: str = "attention"
    score_kernel: Optional[np.ndarray] = None
    query_kernel: Optional[np.ndarray] = None
    key_kernel: Optional[np.ndarray] = None
    score_vector: Optional[np.ndarray] = None
    score_bias: Optional[np.ndarray] = None
    kernel: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None

    @property
    def attention_units(self) -> int:
        return int(self.query_kernel.shape[0]) if self.query_kernel is not None else 0

    @property
    def units(self) -> int:
        return int(self.kernel.shape[0]) if self.combine == "tanh" else self.memory_size + self.input_size

    @property
    def output_size(self) -> int:
        return self.units


@dataclass
class Source:
    """What a reader found: the layers, plus facts for the file's provenance metadata."""
    layers: list
    format: str                                 # e.g. "keras", "keras-h5", "tf-checkpoint", "pytorch"
    framework_version: str = ""
    notes: dict = field(default_factory=dict)   # extra provenance, e.g. {"keras.version": "3.6.0"}
    encoder: list = field(default_factory=list) # seq2seq read from one file: the encoder's layers


def f32(a, what: str) -> np.ndarray:
    """``a`` as a contiguous float32 array; non-float or non-finite values are an error naming ``what``."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiu":
        raise ConvertError(f"{what}: expected a floating-point tensor, found dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise ConvertError(f"{what}: holds a non-finite value (NaN or infinity)")
    return out


def expect_shape(a: np.ndarray, shape: tuple, what: str) -> np.ndarray:
    if tuple(a.shape) != tuple(shape):
        raise ConvertError(f"{what} has shape {list(a.shape)}, expected {list(shape)}")
    return a


def gate_blocks(m: np.ndarray, order: list, blocks: int) -> np.ndarray:
    """Reorders the ``blocks`` equal row blocks of m (axis 0) as ``order`` (indices of the source blocks)."""
    n = m.shape[0] // blocks
    return np.ascontiguousarray(np.concatenate([m[i * n:(i + 1) * n] for i in order], axis=0))


@dataclass
class Options:
    """Choices a source file does not record (or that the user overrides). None means "from the file"."""
    task: Optional[str] = None                 # generate / classify / tag (frame models: classify / tag / regress)
    config: Optional[str] = None               # Keras model config JSON (for .weights.h5 and TF checkpoints)
    keras_version: Optional[str] = None        # e.g. "2.15.0": decides what hard_sigmoid means
    cell: Optional[str] = None                 # PyTorch: rnn / gru / lstm (checked against the shapes)
    nonlinearity: Optional[str] = None         # PyTorch nn.RNN: tanh / relu
    dense_activations: Optional[list] = None   # PyTorch: one activation per Linear, in order
    order: Optional[list] = None               # PyTorch: module names in stack order
    key: Optional[str] = None                  # PyTorch: path to the state_dict inside a checkpoint dict
    # Architectures inferred from the variables (subclassed Keras models, PyTorch): what weights cannot tell.
    activation: Optional[str] = None           # recurrent layers' activation (Keras default tanh)
    recurrent_activation: Optional[str] = None # GRU / LSTM gate activation (Keras default sigmoid)
    reset_after: Optional[bool] = None         # GRU without a bias: which convention
    merge_mode: Optional[str] = None           # Bidirectional: concat / sum / mul / ave
    head: Optional[str] = None                 # PyTorch classifiers: "hn" (h_n), "last-output" (output[:, -1]), "mean" (frames)
    mask_zero: Optional[bool] = None           # Keras models without a config: Embedding(mask_zero=...) (default False)
    # Frame models (frames.py, torch_frames.py)
    input: Optional[str] = None                # "tokens" / "frames": what the model reads (default: from the file)


# --- Memory: one budget per conversion -------------------------------------------------------------

MEMORY_BUDGET = 2 << 30
"""Bytes a conversion may take from its source (docs/CONVERT.md, "Memory"): files read into memory,
decompressed archive members, HDF5 datasets and attributes (all that the reader's child process sends
back), and tensor data read more than once (bytes that two tensors share count for each)."""

MAX_RATIO = 100
"""Most bytes an archive member or HDF5 dataset may declare per byte it stores (zip bombs, fill values),
for anything that declares more than ``RATIO_FLOOR`` bytes."""

RATIO_FLOOR = 1 << 20

MAX_DIMENSION = 1 << 40      # larger dimensions in a source are refused before any arithmetic on them
MAX_RANK = 8
MAX_JSON_DEPTH = 100


class Budget:
    """Counts the bytes one conversion takes from its source against ``MEMORY_BUDGET``. ``charge`` is
    called before the bytes are allocated; past the budget it raises a :class:`ConvertError`."""

    def __init__(self, limit: Optional[int] = None):
        self.limit = MEMORY_BUDGET if limit is None else int(limit)
        self.used = 0

    @property
    def left(self) -> int:
        return self.limit - self.used

    def charge(self, n: int, what: str) -> None:
        n = int(n)
        if n < 0:
            raise ConvertError(f"{what}: a negative size ({n} bytes)")
        if n > self.left:
            raise ConvertError(f"{what}: {n} more bytes would pass the converter's memory budget of {self.limit} "
                               f"bytes for one source ({self.used} taken already); refused")
        self.used += n


def check_ratio(declared: int, stored: int, what: str) -> None:
    """Refuses ``declared`` bytes that come from far fewer ``stored`` bytes (see ``MAX_RATIO``)."""
    if declared > RATIO_FLOOR and declared > MAX_RATIO * max(int(stored), 0):
        raise ConvertError(f"{what} declares {declared} bytes but stores {stored} (more than {MAX_RATIO}:1); "
                           f"refused as a decompression bomb")


def shape_bytes(shape, itemsize: int, what: str) -> int:
    """The bytes of an array of ``shape``: every dimension a non-negative int of at most ``MAX_DIMENSION``,
    rank at most ``MAX_RANK``, computed without overflow."""
    if not isinstance(shape, (list, tuple)) or len(shape) > MAX_RANK:
        raise ConvertError(f"{what}: shape {_short(shape)} is not a list of at most {MAX_RANK} dimensions")
    n = int(itemsize)
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d <= MAX_DIMENSION:
            raise ConvertError(f"{what}: dimension {_short(d)} of shape {_short(shape)} is not an integer in "
                               f"0...{MAX_DIMENSION}")
        n *= int(d)
    return n


def _short(x, limit: int = 80) -> str:
    s = repr(x) if not isinstance(x, (list, tuple)) else "[" + ", ".join(map(repr, list(x)[:10])) + \
        (", ...]" if len(x) > 10 else "]")
    return s if len(s) <= limit else s[:limit] + "..."


def load_json(text, what: str, budget: Optional[Budget] = None):
    """``json.loads`` whose every failure (syntax, nesting deeper than ``MAX_JSON_DEPTH``, integers too
    long for Python, invalid UTF-8, duplicate keys) is a one-line :class:`ConvertError`."""
    import json
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConvertError(f"{what}: not UTF-8 (byte {e.start})") from None

    def pairs(items):
        d = {}
        for k, v in items:
            if k in d:
                raise ConvertError(f"{what}: the key {_short(k)} appears twice in one object")
            d[k] = v
        return d

    try:
        obj = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise ConvertError(f"{what}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise ConvertError(f"{what}: JSON nested too deeply") from None
    except ValueError as e:                       # e.g. an integer of more than 4300 digits
        raise ConvertError(f"{what}: not valid JSON ({str(e).splitlines()[0] if str(e) else 'ValueError'})") from None
    stack = [(obj, 1)]
    while stack:
        x, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ConvertError(f"{what}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(x, dict):
            stack.extend((v, depth + 1) for v in x.values())
        elif isinstance(x, list):
            stack.extend((v, depth + 1) for v in x)
    return obj


def read_file(path: str, budget: Budget, what: Optional[str] = None) -> bytes:
    """The bytes of a regular file, charged to ``budget`` before they are read."""
    import os
    import stat
    what = what or os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise ConvertError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConvertError(f"cannot read {path}: not a regular file")
        budget.charge(st.st_size, what)
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(st.st_size + 1)
    except OSError as e:
        raise ConvertError(f"cannot read {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) != st.st_size:
        raise ConvertError(f"{what}: the file changed size while it was read")
    return data


def read_member(archive, name: str, budget: Budget, origin: str, limit: Optional[int] = None) -> bytearray:
    """A zip member's bytes (at most ``limit`` of them), decompressed in bounded steps after its declared
    size has been checked against ``budget`` and ``MAX_RATIO``. Only stored and deflated members are read
    (other methods cannot be decompressed in bounded steps)."""
    import zipfile
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ConvertError(f"{origin}: the archive has no '{name}'") from None
    what = f"{origin}: '{name}'"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ConvertError(f"{what} is compressed with method {info.compress_type}; only stored and deflated "
                           f"members are supported")
    declared = int(info.file_size)
    check_ratio(declared, int(info.compress_size), what)
    want = declared if limit is None else min(declared, int(limit))
    budget.charge(want, what)
    buf = bytearray(want)
    view = memoryview(buf)
    pos = 0
    try:
        with archive.open(info) as f:
            while pos < want:
                chunk = f.read(min(1 << 20, want - pos))
                if not chunk:
                    break
                view[pos:pos + len(chunk)] = chunk
                pos += len(chunk)
    except zip_errors() as e:
        raise ConvertError(f"{what}: cannot be read ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    finally:
        view.release()
    if pos != want:
        raise ConvertError(f"{what}: holds {pos} bytes, not the {declared} its header declares")
    return buf


def zip_errors() -> tuple:
    """Exceptions that reading a damaged zip archive can raise (zipfile lets many escape)."""
    import struct
    import zipfile
    import zlib
    return (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError, UnicodeDecodeError, zlib.error, struct.error, KeyError)
