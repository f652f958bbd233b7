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

    The message is one line and names the file, layer, tensor or pickled global at fault.
    """


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
class Source:
    """What a reader found: the layers, plus facts for the file's provenance metadata."""
    layers: list
    format: str                                 # e.g. "keras", "keras-h5", "tf-checkpoint", "pytorch"
    framework_version: str = ""
    notes: dict = field(default_factory=dict)   # extra provenance, e.g. {"keras.version": "3.6.0"}


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
    task: Optional[str] = None                 # generate / classify / tag
    config: Optional[str] = None               # Keras model config JSON (for .weights.h5 and TF checkpoints)
    keras_version: Optional[str] = None        # e.g. "2.15.0": decides what hard_sigmoid means
    cell: Optional[str] = None                 # PyTorch: rnn / gru / lstm (checked against the shapes)
    nonlinearity: Optional[str] = None         # PyTorch nn.RNN: tanh / relu
    dense_activations: Optional[list] = None   # PyTorch: one activation per Linear, in order
    order: Optional[list] = None               # PyTorch: module names in stack order
    key: Optional[str] = None                  # PyTorch: path to the state_dict inside a checkpoint dict


def zip_errors() -> tuple:
    """Exceptions that reading a damaged zip archive can raise (zipfile lets many escape)."""
    import struct
    import zipfile
    import zlib
    return (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError, UnicodeDecodeError, zlib.error, struct.error, KeyError)
