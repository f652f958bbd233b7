"""Models, states and samplers over the C API.

    >>> import recur
    >>> with recur.Model("alice.recur") as model:
    ...     for piece in model.generate("Alice", max_tokens=100, temperature=0.8, seed=42):
    ...         print(piece, end="", flush=True)

A :class:`Model` is immutable and may be shared by threads; a :class:`State` is one stream of tokens
(used by one thread at a time) and keeps its model alive in the library, so closing a model while states
still use it is safe. Every object releases its library handle in ``close()``, on leaving a ``with``
block, or when garbage collected; closing twice is harmless. Errors raise :class:`RecurError` with the
library's status ``code`` and message; arguments are checked (types, dtype, shape, range) before they
reach the library.
"""

from __future__ import annotations

import ctypes as C
import functools
import math
import numbers
import os
import queue
import threading
from typing import Iterable, Iterator, NamedTuple, Optional, Sequence, Union

import numpy as np

from . import _capi
from ._capi import RecurError, Status

try:
    from . import _step          # State.step in C (recur/_step.c), built with the package
except ImportError:
    _step = None

_INT32_MAX = 2**31 - 1


def _closed(what: str) -> RecurError:
    return RecurError(Status.INVALID_ARGUMENT, f"the {what} is closed")


def _token(token, vocab: int) -> int:
    """A token id as a Python int in 0 ..< vocab (TypeError for non-integers, RecurError out of range)."""
    if isinstance(token, (bool, np.bool_)) or not isinstance(token, (numbers.Integral, np.integer)):
        raise TypeError(f"a token id must be an int (got {type(token).__name__})")
    t = int(token)
    if not 0 <= t < vocab:
        raise RecurError(Status.OUT_OF_RANGE, f"token id {t} is outside the vocabulary (0..<{vocab})")
    return t


def _token_array(tokens, vocab: int, what: str = "tokens") -> np.ndarray:
    """A 1-D C-contiguous int32 array of ids in 0 ..< vocab, from a sequence or an integer numpy array."""
    if isinstance(tokens, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of token ids, not {type(tokens).__name__}")
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional (got shape {arr.shape})")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int32)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integers (got dtype {arr.dtype})")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= vocab:
        bad = lo if lo < 0 else hi
        raise RecurError(Status.OUT_OF_RANGE, f"token id {bad} is outside the vocabulary (0..<{vocab})")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _text(text, what: str = "text") -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str (got {type(text).__name__})")
    b = text.encode("utf-8")
    if b"\0" in b:
        raise RecurError(Status.INVALID_ARGUMENT, f"{what} contains a NUL character")
    return b


def _buffer(data, what: str) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes-like (got {type(data).__name__})")


def _split_like_encode(text: str, n: int):
    """The pieces of ``text`` as the library splits it into n tokens, in their original spelling: runs of
    letters, digits, apostrophes and underscores, and every other non-space character alone (word
    vocabularies), or single characters (character vocabularies). None when neither gives n pieces."""
    words, cur = [], ""
    for ch in text:
        if ch.isalpha() or ch.isnumeric() or ch in "'_":
            cur += ch
        else:
            if cur:
                words.append(cur)
                cur = ""
            if not ch.isspace():
                words.append(ch)
    if cur:
        words.append(cur)
    if len(words) == n:
        return words
    if len(text) == n:
        return list(text)
    return None


_unchecked_functions: dict = {}


def _frames(frames, frame_size: int, what: str = "frames", one: bool = False) -> np.ndarray:
    """Frames as a C-contiguous float32 array of shape (T, F) (or (F,) with ``one``), checked before they
    cross into C: numeric dtype, the model's frame size, at least one frame. (The library refuses NaN and
    infinity itself: RecurError with status NUMERICAL, naming the frame and the feature.)"""
    arr = np.asarray(frames)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "fiu":
        raise TypeError(f"{what} must hold numbers (got dtype {arr.dtype})")
    want = f"({frame_size},)" if one else f"(T, {frame_size})"
    if (one and arr.shape != (frame_size,)) or (not one and (arr.ndim != 2 or arr.shape[1] != frame_size)):
        raise ValueError(f"{what} must have shape {want} for this model (got {arr.shape})")
    if arr.size == 0:
        raise ValueError(f"{what} must hold at least one frame")
    return np.ascontiguousarray(arr, dtype=np.float32)


_LAYER_VALUES = {"output": _capi.RECUR_VALUES_OUTPUT, "hidden": _capi.RECUR_VALUES_HIDDEN,
                 "cell": _capi.RECUR_VALUES_CELL}


def _layer_index(model: "Model", layer, values: str) -> int:
    """Checks a layer index and what is read of it as the library does (same codes and messages)."""
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise TypeError(f"layer must be an int (got {type(layer).__name__})")
    if values not in _LAYER_VALUES:
        raise ValueError(f"values must be one of {', '.join(_LAYER_VALUES)} (got {values!r})")
    layers = model._layers
    i = int(layer)
    if not 0 <= i < len(layers):
        raise RecurError(Status.OUT_OF_RANGE, f"layer {i} is outside the model's layers (0..<{len(layers)})")
    info = layers[i]
    if values != "output" and not info["directions"]:
        name = {"hidden": "hidden state", "cell": "cell state"}[values]
        article = "an" if info["kind"][0] in "ae" else "a"
        raise RecurError(Status.INVALID_ARGUMENT, f"layer {i} is {article} {info['kind']} layer; it has no {name} "
                                                  "(only recurrent layers have state)")
    if values == "cell" and info["state_vectors"] < 2:
        raise RecurError(Status.INVALID_ARGUMENT,
                         f"layer {i} is a {info['kind']} layer; it has no cell state (only lstm layers do)")
    return i


def _per_prompt(value, n: int, what: str, check) -> list:
    """A per-prompt argument: one value for every prompt, or a sequence of n values; each passed through
    ``check(value, what)``."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != n:
            raise ValueError(f"{what} has {len(value)} values for {n} prompts")
        return [check(v, f"{what}[{k}]") for k, v in enumerate(value)]
    v = check(value, what)
    return [v] * n


def _int_in(lo: int, hi: int):
    def check(v, what):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, np.integer)):
            raise TypeError(f"{what} must be an int (got {type(v).__name__})")
        if not lo <= int(v) <= hi:
            raise RecurError(Status.INVALID_ARGUMENT, f"{what} must be in {lo}...{hi} (got {int(v)})")
        return int(v)
    return check


def _real(v, what):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.floating)):
        raise TypeError(f"{what} must be a number (got {type(v).__name__})")
    return float(v)


def _batch_states(states, model) -> list:
    """A batch's states as a list, checked as the library checks them (naming the stream): recur.State
    objects of ``model``, open, each at most once, at least one."""
    if isinstance(states, State):
        raise TypeError("states must be a sequence of recur.State objects, not one State")
    states = list(states)
    if not states:
        raise RecurError(Status.INVALID_ARGUMENT, "a batch has at least one stream (no states given)")
    seen = {}
    for k, st in enumerate(states):
        if not isinstance(st, State):
            raise TypeError(f"stream {k}: states[{k}] must be a recur.State (got {type(st).__name__})")
        if st._model is not model:
            raise RecurError(Status.MISMATCH, f"stream {k}: states[{k}] belongs to another model")
        if not st._handle:
            raise _closed(f"state of stream {k}")
        j = seen.setdefault(id(st), k)
        if j != k:
            raise RecurError(Status.INVALID_ARGUMENT,
                             f"stream {k}: states[{k}] is states[{j}] (a batch takes each at most once)")
    return states


def _text_list(texts, what: str = "texts") -> list:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of str, not one {type(texts).__name__}")
    return [_text(t, f"{what}[{k}]") for k, t in enumerate(texts)]


class _Done:
    """The end of a batched generation's queue: the error it ended with, if any."""

    def __init__(self, error):
        self.error = error


def _pumped(call, name: str) -> Iterator:
    """Runs a library call that delivers items through a callback on a thread of its own, and yields the
    items as they come. ``call(put, failure)`` makes the callback, which hands each item to ``put`` and
    returns what ``put`` returns (0: go on; -1: the consumer has gone, stop), appending an exception it
    catches to ``failure``; ``call`` returns the call's status. Leaving the loop early (``break``, an
    exception, closing the generator) stops the call; an error of the call is raised at the end."""
    items: "queue.Queue" = queue.Queue(maxsize=4096)
    cancel = threading.Event()
    failure: list = []

    def put(item) -> int:
        while not cancel.is_set():
            try:
                items.put(item, timeout=0.05)
                return 0
            except queue.Full:
                pass
        return -1

    def run():
        error = None
        try:
            status = call(put, failure)
            if status != Status.OK:
                error = RecurError(status, _capi.last_error())
        except BaseException as e:
            error = e
        if failure and error is None:
            error = failure[0]
        while True:
            try:
                items.put(_Done(error), timeout=0.05)
                return
            except queue.Full:
                if cancel.is_set():
                    return

    def stream():
        worker = threading.Thread(target=run, name=name, daemon=True)
        worker.start()
        try:
            while True:
                item = items.get()
                if type(item) is _Done:
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            cancel.set()
            while worker.is_alive():
                try:
                    items.get(timeout=0.05)
                except queue.Empty:
                    pass
            worker.join()

    return stream()


class Continuation(NamedTuple):
    """One continuation found by :meth:`Model.beam_search`."""
    text: str
    tokens: list
    #: natural-log probability of the tokens (and of EOS when it was emitted)
    log_probability: float
    #: log_probability / length**length_penalty, what continuations are ranked by
    score: float


class Attention(NamedTuple):
    """A translation with its attention weights (:meth:`Model.attention`)."""
    text: str
    #: the target pieces, one per emitted token (EOS not included)
    target: list
    #: the source pieces the decoder attended over, in the encoder's reading order
    source: list
    #: float32 (len(target), len(source)): row i is the weights of the step that produced target token i
    weights: np.ndarray
    target_ids: list
    source_ids: list


def _unchecked(L: C.CDLL, name: str):
    """``name`` of library ``L`` as a function object without argtypes (restype int), for hot calls whose
    arguments are ctypes objects prepared in advance. One per library and name."""
    key = (L._name, name)
    f = _unchecked_functions.get(key)
    if f is None:
        f = getattr(C.CDLL(L._name), name)
        f.restype = C.c_int
        _unchecked_functions[key] = f
    return f


# A Stepper releases the interpreter lock during steps of models of at least this many bytes (a step then
# reads tens of kilobytes and takes a microsecond or more; recur/_step.c).
_RELEASE_BYTES = 64 * 1024


def _address(L: C.CDLL, name: str) -> int:
    """The address of function ``name`` of library ``L``."""
    return C.cast(getattr(L, name), C.c_void_p).value


class _Handle:
    """Lifetime of an object behind a C handle: ``close()`` (idempotent), a context manager, ``__del__``
    (safe at interpreter exit), ``closed``, and ``_h()`` which refuses a closed object. Subclasses set
    ``_handle`` and ``_free`` (the C destructor) and name themselves in ``_what``."""

    _handle = None
    _what = "object"

    def close(self) -> None:
        """Releases the C object. Closing twice is harmless."""
        h, self._handle = getattr(self, "_handle", None), None
        if h:
            self._free(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self) -> bool:
        return not self._handle

    # Copying or pickling would duplicate the C handle, and closing one copy would free it under the
    # other; each class says what to use instead.
    _instead = ""

    def __copy__(self):
        raise TypeError(f"a recur.{type(self).__name__} cannot be copied (it owns a library handle): "
                        f"{self._instead}")

    def __deepcopy__(self, memo):
        raise TypeError(f"a recur.{type(self).__name__} cannot be deep-copied (it owns a library handle): "
                        f"{self._instead}")

    def __reduce_ex__(self, protocol):
        raise TypeError(f"a recur.{type(self).__name__} cannot be pickled (it owns a library handle, valid "
                        f"only in this process): {self._instead}")

    def __reduce__(self):
        return self.__reduce_ex__(2)

    def _h(self):
        if not self._handle:
            raise _closed(self._what)
        return self._handle


class Model(_Handle):
    """A loaded ``.recur`` model (memory-mapped; weights are read in place).

    ``Model(path)`` opens a file, ``Model.from_bytes(data)`` a copy of bytes in memory. With
    ``verify_checksum=False`` the CRC-32 pass over the file is skipped (structure is checked regardless).

    A mapped file must not change while the model is open: truncated by another process it kills this
    one with SIGBUS at the next access, rewritten in place it changes the weights after they were
    validated. ``mmap=False`` reads the file into private memory instead (the file's size in memory, one
    read at open): use it for files this process does not control.

    ``padding="none"`` makes ``classify``, ``tag`` and ``translate`` run a text's tokens as they are; the
    default (``"trained"``) cuts and pads them to the length the file records for an unmasked model trained
    on padded batches, which reproduces the framework's own ``predict`` (``RECUR_OPEN_NO_PADDING``).
    """

    def __init__(self, path: Union[str, os.PathLike], *, verify_checksum: bool = True, mmap: bool = True,
                 padding: str = "trained"):
        self._handle = None
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if padding not in ("trained", "none"):
            raise ValueError(f"padding must be 'trained' or 'none' (got {padding!r})")
        L = _capi.lib()
        h = _capi.model_p()
        flags = (self._flags(verify_checksum) | (0 if mmap else _capi.RECUR_OPEN_NO_MMAP)
                 | (_capi.RECUR_OPEN_NO_PADDING if padding == "none" else 0))
        _capi.check(L.recur_model_open(_text(path, "path"), flags, C.byref(h)))
        self._adopt(L, h)

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview], *, verify_checksum: bool = True) -> "Model":
        """A model from the bytes of a ``.recur`` file (copied by the library)."""
        b = _buffer(data, "data")
        L = _capi.lib()
        h = _capi.model_p()
        _capi.check(L.recur_model_open_buffer(b, len(b), cls._flags(verify_checksum), C.byref(h)))
        m = cls.__new__(cls)
        m._handle = None
        m._adopt(L, h)
        return m

    @staticmethod
    def _flags(verify_checksum: bool) -> int:
        return 0 if verify_checksum else _capi.RECUR_OPEN_SKIP_CHECKSUM

    def _adopt(self, L, handle) -> None:
        self._lib = L
        self._free = L.recur_model_free
        self._handle = handle
        self._vocab_size = self._get(_capi.RECUR_MODEL_VOCAB_SIZE)
        self._output_size = self._get(_capi.RECUR_MODEL_OUTPUT_SIZE)
        self._texts: Optional[list] = None
        ids = {}
        for name, prop in (("bos", _capi.RECUR_MODEL_BOS_ID), ("eos", _capi.RECUR_MODEL_EOS_ID),
                           ("pad", _capi.RECUR_MODEL_PAD_ID), ("unk", _capi.RECUR_MODEL_UNK_ID)):
            v = self._get(prop)
            ids[name] = None if v < 0 else v
        self._special = ids
        self._word = self._get(_capi.RECUR_MODEL_TOKENIZER) == _capi.RECUR_TOKENIZER_WORD
        self._frame_size = self._get(_capi.RECUR_MODEL_FRAME_SIZE)
        self._layers = self._read_layers()

    # -- lifetime -------------------------------------------------------------------------------------

    _what = "model"
    _instead = ("a model is immutable, so share this object (any number of threads and states may use it), "
                "or open the file again with recur.Model(path) for an independent one")

    def close(self) -> None:
        """Releases this object's reference to the model (states created from it stay usable)."""
        super().close()

    def _get(self, prop: int) -> int:
        v = C.c_int64()
        _capi.check(self._lib.recur_model_get(self._h(), prop, C.byref(v)))
        return v.value

    # -- vocabulary -----------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of tokens; ids are 0 ..< vocab_size."""
        return self._vocab_size

    @property
    def output_size(self) -> int:
        """Floats in the model's output (the logits of the next token for a generator)."""
        return self._output_size

    def token_text(self, token: int) -> str:
        """The text of one token id (special tokens give their stored name)."""
        t = _token(token, self._vocab_size)
        return self._token_texts()[t]

    def token_id(self, piece: str) -> int:
        """The id of the token whose text is exactly ``piece``."""
        out = C.c_int32()
        _capi.check(self._lib.recur_model_token_id(self._h(), _text(piece, "piece"), C.byref(out)))
        return out.value

    def _token_texts(self) -> list:
        if self._texts is None:
            L, h = self._lib, self._h()
            ptr, n = C.POINTER(C.c_char)(), C.c_size_t()
            texts = []
            for i in range(self._vocab_size):
                _capi.check(L.recur_model_token_text(h, i, C.byref(ptr), C.byref(n)))
                texts.append(C.string_at(ptr, n.value).decode("utf-8"))
            self._texts = texts
        return self._texts

    def encode(self, text: str, unknown: str = "error") -> list:
        """Token ids of ``text`` (no BOS/EOS added).

        ``unknown`` says what to do with a character (or word) outside the vocabulary of a model without
        an UNK token: ``"error"`` raises (naming it and its position), ``"skip"`` leaves it out,
        ``"replace"`` uses a look-alike in the vocabulary (é → e, ’ → ', … → ...), raising when there is
        none. Feed the ids to :meth:`State.feed`.
        """
        if unknown not in _capi.UNKNOWN:
            raise ValueError(f"unknown must be one of {', '.join(_capi.UNKNOWN)}, not {unknown!r}")
        policy = _capi.UNKNOWN.index(unknown)
        b = _text(text)
        cap = len(b) * 3 + 1
        while True:
            ids = (C.c_int32 * cap)()
            count = C.c_size_t()
            status = self._lib.recur_model_encode_with(self._h(), b, policy, ids, cap, C.byref(count))
            if status == Status.BUFFER_TOO_SMALL and count.value > cap:
                cap = count.value
                continue
            _capi.check(status)
            return list(ids[:count.value])

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids`` (special tokens skipped; word vocabularies joined with spaces)."""
        arr = _token_array(list(ids) if not isinstance(ids, np.ndarray) else ids, self._vocab_size, "ids")
        ptr = arr.ctypes.data_as(C.POINTER(C.c_int32))
        cap = 8 * arr.size + 64
        while True:
            buf = C.create_string_buffer(cap)
            length = C.c_size_t()
            status = self._lib.recur_model_decode(self._h(), ptr, arr.size, buf, cap, C.byref(length))
            if status == Status.BUFFER_TOO_SMALL and length.value + 1 > cap:
                cap = length.value + 1
                continue
            _capi.check(status)
            return buf.raw[:length.value].decode("utf-8")

    @staticmethod
    def _translate_params(beam, max_length, length_penalty):
        for name, v in (("beam", beam), ("max_length", max_length)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an int, not {type(v).__name__}")
        if not 1 <= beam <= 256:
            raise ValueError(f"beam must be in 1 ... 256 (got {beam})")
        if not 1 <= max_length <= 1 << 20:
            raise ValueError(f"max_length must be in 1 ... 2**20 (got {max_length})")
        return _capi.TranslateParams(int(beam), int(max_length), float(length_penalty))

    def attention(self, text: str, beam: int = 1, max_length: int = 100, length_penalty: float = 1.0) -> Attention:
        """Translates ``text`` as :meth:`translate` does (greedy by default) with a model whose decoder
        attends over the encoder's outputs, and gives for every target token the attention weights of the
        step that produced it over the source tokens the encoder read (``recur_translate_attention``): an
        :class:`Attention` whose ``weights`` rows sum to 1 (PAD positions get 0). A model without attention
        raises RecurError(Status.UNSUPPORTED)."""
        params = self._translate_params(beam, max_length, length_penalty)
        b = _text(text)
        L, h = self._lib, self._h()
        n_out, n_src = C.c_size_t(), C.c_size_t()
        status = L.recur_translate_attention(h, b, C.byref(params), None, 0, None, 0, None, 0,
                                             C.byref(n_out), C.byref(n_src))
        if status != Status.BUFFER_TOO_SMALL:
            _capi.check(status)
        n, T = n_out.value, n_src.value
        toks = (C.c_int32 * max(n, 1))()
        src = (C.c_int32 * max(T, 1))()
        w = np.zeros((n, T), dtype=np.float32)
        _capi.check(L.recur_translate_attention(h, b, C.byref(params), toks, n, src, T,
                                                w.ctypes.data_as(C.POINTER(C.c_float)), n * T,
                                                C.byref(n_out), C.byref(n_src)))
        target_ids, source_ids = list(toks[:n]), list(src[:T])

        def piece(fn, i):
            ptr, length = C.POINTER(C.c_char)(), C.c_size_t()
            _capi.check(fn(h, i, C.byref(ptr), C.byref(length)))
            return C.string_at(ptr, length.value).decode("utf-8", "replace")

        target = [piece(L.recur_model_token_text, i) for i in target_ids]
        source = [piece(L.recur_model_source_token_text, i) for i in source_ids]
        text_out = self.translate(text, beam=beam, max_length=max_length, length_penalty=length_penalty)
        return Attention(text_out, target, source, w, target_ids, source_ids)

    # -- whole-sequence and encoder-decoder models ----------------------------------------------------

    @property
    def labels(self) -> list:
        """Names of the classes or tags of a classify or tag model ([] when the file names none)."""
        out = []
        label = C.c_char_p()
        while self._lib.recur_model_label(self._h(), len(out), C.byref(label)) == Status.OK:
            out.append(label.value.decode("utf-8"))
        return out

    def classify(self, text: str) -> np.ndarray:
        """Class probabilities of ``text`` (a "classify" model), float32; a single sigmoid output p gives
        [1 - p, p]. Label names: ``labels``."""
        b = _text(text)
        count = C.c_size_t()
        status = self._lib.recur_classify(self._h(), b, None, 0, C.byref(count))
        if status != Status.BUFFER_TOO_SMALL:
            _capi.check(status)
        out = np.zeros(count.value, dtype=np.float32)
        _capi.check(self._lib.recur_classify(self._h(), b, out.ctypes.data_as(C.POINTER(C.c_float)),
                                             out.size, C.byref(count)))
        return out

    def tag(self, text: str) -> list:
        """(token, tag) pairs of ``text`` (a "tag" model): one per token of ``encode(text)``."""
        b = _text(text)
        ids = self.encode(text)
        tags = (C.c_int32 * max(len(ids), 1))()
        count = C.c_size_t()
        _capi.check(self._lib.recur_tag(self._h(), b, tags, len(ids), C.byref(count)))
        names = self.labels
        words = _split_like_encode(text, len(ids))
        pieces = words if words is not None else [self.token_text(i) for i in ids]
        return [(w, names[t] if t < len(names) else str(t)) for w, t in zip(pieces, tags[:count.value])]

    def classify_batch(self, texts: Sequence[str]) -> np.ndarray:
        """``classify`` of every text in one call: float32 array (N, classes), row i equal to
        ``classify(texts[i])``. An empty sequence gives an array of 0 rows. Errors name the text."""
        bs = _text_list(texts)
        classes = 2 if self._output_size == 1 else self._output_size
        if not bs:
            return np.zeros((0, classes), dtype=np.float32)
        arr = (C.c_char_p * len(bs))(*bs)
        out = np.empty(len(bs) * classes, dtype=np.float32)
        got = C.c_size_t()
        _capi.check(self._lib.recur_classify_batch(self._h(), arr, len(bs), out.ctypes.data_as(C.POINTER(C.c_float)),
                                                   out.size, C.byref(got)))
        return out[:len(bs) * got.value].reshape(len(bs), got.value)

    def tag_batch(self, texts: Sequence[str]) -> list:
        """``tag`` of every text in one call: a list with, for each text, the (token, tag) pairs that
        ``tag(text)`` gives. Errors name the text."""
        bs = _text_list(texts)
        if not bs:
            return []
        ids = [self.encode(t) for t in texts]
        arr = (C.c_char_p * len(bs))(*bs)
        tags = (C.c_int32 * max(sum(len(i) for i in ids), 1))()
        counts = (C.c_size_t * len(bs))()
        _capi.check(self._lib.recur_tag_batch(self._h(), arr, len(bs), tags, len(tags), counts))
        names = self.labels
        out, at = [], 0
        for text, i, n in zip(texts, ids, counts):
            words = _split_like_encode(text, len(i))
            pieces = words if words is not None else [self.token_text(t) for t in i]
            out.append([(w, names[t] if t < len(names) else str(t)) for w, t in zip(pieces, tags[at:at + n])])
            at += n
        return out

    def step_batch(self, states: Sequence["State"], inputs) -> np.ndarray:
        """Steps several states of this model at once: ``states[i]`` is fed ``inputs[i]`` (a token id, or
        for a frame model a frame: ``inputs`` of shape (N, frame_size)). Returns the outputs as a float32
        array (N, output_size), bit for bit what ``states[i].step(inputs[i])`` would return (in every
        dtype); each state's ``output`` holds its row afterwards. Quantized weights are read once per group
        of streams, so many streams cost less than one call each. Every stream is checked before any is
        stepped: on error no state has changed and the message names the stream."""
        sts = _batch_states(states, self)
        n = len(sts)
        if self._frame_size:
            fr = _frames(inputs, self._frame_size)
            if fr.shape[0] != n:
                raise ValueError(f"inputs has {fr.shape[0]} frames for {n} states")
        else:
            if isinstance(inputs, (str, bytes)) or np.ndim(inputs) != 1:
                raise ValueError(f"inputs must be a one-dimensional sequence of {n} token ids")
            if len(inputs) != n:
                raise ValueError(f"inputs has {len(inputs)} tokens for {n} states")
            for k, t in enumerate(inputs):
                try:
                    _token(t, self._vocab_size)
                except RecurError as e:
                    raise RecurError(e.code, f"stream {k}: {e.message}") from None
                except TypeError as e:
                    raise TypeError(f"stream {k}: {e}") from None
            toks = np.ascontiguousarray(inputs, dtype=np.int32)
        handles = (_capi.state_p * n)(*[st._handle for st in sts])
        out = np.empty((n, self._output_size), dtype=np.float32)
        optr = out.ctypes.data_as(C.POINTER(C.c_float))
        if self._frame_size:
            _capi.check(self._lib.recur_state_step_frames_batch(self._h(), handles, n,
                                                                fr.ctypes.data_as(C.POINTER(C.c_float)),
                                                                self._frame_size, optr, out.size))
        else:
            _capi.check(self._lib.recur_state_step_batch(self._h(), handles, n, toks.ctypes.data_as(C.POINTER(C.c_int32)),
                                                         optr, out.size))
        return out

    def generate_batch(self, prompts: Sequence[str], max_tokens=400, temperature=0.8, top_k=0, top_p=1.0,
                       seed=42, slots: int = 16, stop: Sequence[str] = ()) -> Iterator[tuple]:
        """Generates for many prompts at once, yielding ``(index, piece)`` as pieces are sampled: ``index``
        is the prompt's position in ``prompts``; the pieces of different prompts interleave.

        ``slots`` streams run together (their steps are one batched step); when a stream ends (max tokens,
        EOS, or a stop string of ``stop``, which is not delivered), its slot takes the next prompt, until
        every prompt is done. ``max_tokens``, ``temperature``, ``top_k``, ``top_p`` and ``seed`` are one
        value for all prompts or a sequence of one per prompt. Prompt i's text is the text of
        ``generate(prompts[i], max_tokens=..., temperature=..., top_k=..., top_p=..., seed=...)`` with its
        own values (the same seed for every prompt gives each the draws ``generate`` gives it).

        Arguments are checked here, before iteration starts; nothing runs until the first piece is asked
        for. The generation runs in the library (recur_generate_batch) on a thread of its own, which hands
        the pieces over; leaving the loop early (``break``, an exception, closing the generator) stops it.
        """
        task = self.task
        if task != "generate":
            call = {"classify": "classify", "tag": "tag", "seq2seq": "translate"}.get(task, task)
            raise RecurError(Status.UNSUPPORTED, f"this is a {task} model, not a text generator; run it with {call}")
        bs = _text_list(prompts, "prompts")
        n = len(bs)
        maxes = _per_prompt(max_tokens, n, "max_tokens", _int_in(0, _INT32_MAX))
        temps = _per_prompt(temperature, n, "temperature", _real)
        ks = _per_prompt(top_k, n, "top_k", _int_in(0, _INT32_MAX))
        ps = _per_prompt(top_p, n, "top_p", _real)
        seeds = _per_prompt(seed, n, "seed", _int_in(0, 2**64 - 1))
        for k in range(n):
            if not (math.isfinite(temps[k]) and temps[k] >= 0):
                raise RecurError(Status.INVALID_ARGUMENT, f"prompt {k}: temperature must be a finite number ≥ 0 (got {temps[k]})")
            if not 0 < ps[k] <= 1:
                raise RecurError(Status.INVALID_ARGUMENT, f"prompt {k}: top_p must be in (0, 1] (got {ps[k]})")
            if not bs[k] and self._special["bos"] is None:
                raise RecurError(Status.INVALID_ARGUMENT,
                                 f"prompt {k}: the prompt is empty and the model has no BOS token to start from")
        slots = _int_in(1, 2**31)(slots, "slots")
        stops = _text_list(stop, "stop")
        params = (_capi.recur_sampler_params * max(n, 1))()
        for k in range(n):
            self._lib.recur_sampler_params_init(C.byref(params[k]))
            params[k].temperature, params[k].top_k, params[k].top_p, params[k].seed = temps[k], ks[k], ps[k], seeds[k]
        return self._stream_batch(bs, maxes, params, stops, slots)

    def _stream_batch(self, prompts: list, maxes: list, params, stops: list, slots: int) -> Iterator[tuple]:
        n = len(prompts)
        if n == 0:
            return iter(())
        L, model = self._lib, self._h()
        parr = (C.c_char_p * n)(*prompts)
        marr = (C.c_int32 * n)(*maxes)
        sarr = (C.c_char_p * max(len(stops), 1))(*stops)

        def call(put, failure):
            def on_piece(index, piece, length, user):
                try:
                    return put((index, C.string_at(piece, length).decode("utf-8", "replace")))
                except BaseException as e:      # never let an exception unwind through C
                    failure.append(e)
                    return -1
            callback = _capi.recur_batch_callback(on_piece)
            return L.recur_generate_batch(model, parr, n, marr, params, sarr, len(stops), slots, callback, None, None)

        return _pumped(call, "recur-generate-batch")

    # -- frame models ---------------------------------------------------------------------------------

    @property
    def input(self) -> str:
        """What a step reads: ``"tokens"`` or ``"frames"`` (vectors of ``frame_size`` floats)."""
        return _capi.INPUTS[self._get(_capi.RECUR_MODEL_INPUT)]

    @property
    def frame_size(self) -> int:
        """Floats of one frame (frame models); 0 for token models."""
        return self._frame_size

    @property
    def output_kind(self) -> str:
        """What the output holds: ``"logits"``, ``"probabilities"`` (softmax), ``"independent"`` (sigmoid:
        one probability per output) or ``"values"`` (a regress model)."""
        return _capi.OUTPUT_KINDS[self._get(_capi.RECUR_MODEL_OUTPUT_KIND)]

    def predict(self, frames) -> np.ndarray:
        """A frame model over a whole sequence of frames (array-like of shape (T, frame_size)) from a zero
        state: float32 outputs of shape (T, output_size) for tag and regress models, (1, output_size) for
        classify models. Frames are checked (shape, finite) before they reach the library."""
        if not self._frame_size:
            raise RecurError(Status.UNSUPPORTED, "this model reads tokens, not frames")
        arr = _frames(frames, self._frame_size)
        rows = C.c_size_t()
        status = self._lib.recur_predict(self._h(), arr.ctypes.data_as(C.POINTER(C.c_float)), arr.shape[0],
                                         self._frame_size, None, 0, C.byref(rows))
        if status != Status.BUFFER_TOO_SMALL:
            _capi.check(status)
        out = np.zeros((rows.value, self._output_size), dtype=np.float32)
        _capi.check(self._lib.recur_predict(self._h(), arr.ctypes.data_as(C.POINTER(C.c_float)), arr.shape[0],
                                            self._frame_size, out.ctypes.data_as(C.POINTER(C.c_float)), out.size,
                                            C.byref(rows)))
        return out

    # -- layers ---------------------------------------------------------------------------------------

    @property
    def layers(self) -> list:
        """The model's layers in order, as the file and Keras's ``model.layers`` number them (the embedding,
        if any, is layer 0, then the recurrent layers, then the dense ones): one dict per layer with
        ``kind`` ("embedding", "rnn", "gru", "lstm", "dense"), ``input_size``, ``units`` (of one
        direction), ``output_size`` (floats of one step's output as the next layer reads it),
        ``directions`` (2 bidirectional, 1 other recurrent layers, 0 embedding and dense), ``state_vectors``
        (2 for LSTM: h and c; 1 for GRU and SimpleRNN; 0 otherwise) and ``return_sequences``."""
        return [dict(d) for d in self._layers]

    def _read_layers(self) -> tuple:
        h = self._h()
        v = C.c_int64()

        def get(i, prop):
            _capi.check(self._lib.recur_model_layer_get(h, i, prop, C.byref(v)))
            return v.value

        return tuple({
            "kind": _capi.LAYER_KINDS[get(i, _capi.RECUR_LAYER_KIND)],
            "input_size": get(i, _capi.RECUR_LAYER_INPUT_SIZE),
            "units": get(i, _capi.RECUR_LAYER_UNITS),
            "output_size": get(i, _capi.RECUR_LAYER_OUTPUT_SIZE),
            "directions": get(i, _capi.RECUR_LAYER_DIRECTIONS),
            "state_vectors": get(i, _capi.RECUR_LAYER_STATE_VECTORS),
            "return_sequences": bool(get(i, _capi.RECUR_LAYER_RETURN_SEQUENCES)),
        } for i in range(self._get(_capi.RECUR_MODEL_LAYERS)))

    def layer_outputs(self, inputs, layer: int, values: str = "output") -> np.ndarray:
        """The values of layer ``layer`` at every step of a whole sequence run from a zero state — token ids,
        or for a frame model frames of shape (T, frame_size) — as a float32 array (rows, width), like
        Keras's ``K.function([model.input], [model.layers[layer].output])``.

        ``values="output"``: the layer's output as the next layer reads it (a bidirectional layer's
        directions merged; width ``layers[layer]["output_size"]``); T rows, or one where the model reduces
        the sequence (a layer returning only its last step and those after it; a classifier's dense
        layers). ``"hidden"`` / ``"cell"`` (LSTM): h / c of a recurrent layer at every step (T rows), a
        bidirectional layer's directions side by side, [forward, backward]. The tokens run as they are (no
        cutting or padding to a trained length). Arguments are checked before they reach the library."""
        i = _layer_index(self, layer, values)
        v = _LAYER_VALUES[values]
        rows, width = C.c_size_t(), C.c_size_t()
        if self._frame_size:
            arr = _frames(inputs, self._frame_size)

            def call(out, cap):
                return self._lib.recur_model_layer_outputs_frames(
                    self._h(), arr.ctypes.data_as(C.POINTER(C.c_float)), arr.shape[0], self._frame_size, i, v,
                    out, cap, C.byref(rows), C.byref(width))
        else:
            arr = _token_array(inputs, self._vocab_size)
            if arr.size == 0:
                raise RecurError(Status.INVALID_ARGUMENT, "the sequence needs at least one token")

            def call(out, cap):
                return self._lib.recur_model_layer_outputs(
                    self._h(), arr.ctypes.data_as(C.POINTER(C.c_int32)), arr.size, i, v, out, cap,
                    C.byref(rows), C.byref(width))
        status = call(None, 0)
        if status != Status.BUFFER_TOO_SMALL:
            _capi.check(status)
        out = np.zeros((rows.value, width.value), dtype=np.float32)
        _capi.check(call(out.ctypes.data_as(C.POINTER(C.c_float)), out.size))
        return out

    def translate(self, text: str, beam: int = 4, max_length: int = 100, length_penalty: float = 1.0,
                  return_attention: bool = False):
        """Translates ``text`` with a "seq2seq" model by beam search (``beam=1`` is greedy). With
        ``return_attention`` the result is :meth:`attention`'s (a model with attention only)."""
        if return_attention:
            return self.attention(text, beam=beam, max_length=max_length, length_penalty=length_penalty)
        params = self._translate_params(beam, max_length, length_penalty)
        b = _text(text)
        cap = 256
        while True:
            buf = C.create_string_buffer(cap)
            length = C.c_size_t()
            status = self._lib.recur_translate(self._h(), b, C.byref(params), buf, cap, C.byref(length))
            if status == Status.BUFFER_TOO_SMALL and length.value + 1 > cap:
                cap = length.value + 1
                continue
            _capi.check(status)
            return buf.raw[:length.value].decode("utf-8")

    # -- description ----------------------------------------------------------------------------------

    def info(self) -> dict:
        """Sizes, tokenizer, special tokens, format version and provenance numbers of the model."""
        g = self._get
        return {
            "vocab_size": self._vocab_size,
            "output_size": self._output_size,
            "state_floats": g(_capi.RECUR_MODEL_STATE_FLOATS),
            "tokenizer": "word" if self._word else "char",
            "bos_id": self._special["bos"],
            "eos_id": self._special["eos"],
            "pad_id": self._special["pad"],
            "unk_id": self._special["unk"],
            "output_is_probability": bool(g(_capi.RECUR_MODEL_OUTPUT_IS_PROBABILITY)),
            "format_version": (g(_capi.RECUR_MODEL_FORMAT_MAJOR), g(_capi.RECUR_MODEL_FORMAT_MINOR)),
            "checksum": g(_capi.RECUR_MODEL_CHECKSUM),
            "parameters": g(_capi.RECUR_MODEL_PARAMETERS),
            "layers": g(_capi.RECUR_MODEL_LAYERS),
            "file_bytes": g(_capi.RECUR_MODEL_FILE_BYTES),
            "can_step": bool(g(_capi.RECUR_MODEL_CAN_STEP)),
            "task": self.task,
            "input": self.input,
            "frame_size": self._frame_size,
            "output_kind": self.output_kind,
        }

    @property
    def task(self) -> str:
        """What the model does: ``"generate"`` (``generate``, states), ``"classify"``, ``"tag"``,
        ``"seq2seq"`` (``translate``) or ``"regress"`` (values at every step of a frame model: ``predict``,
        states)."""
        return _capi.TASKS[self._get(_capi.RECUR_MODEL_TASK)]

    def __repr__(self) -> str:
        if self.closed:
            return "<recur.Model (closed)>"
        return f"<recur.Model vocab_size={self._vocab_size} output_size={self._output_size}>"

    # -- streams --------------------------------------------------------------------------------------

    def new_state(self) -> "State":
        """A new, zeroed stream state."""
        return State(self)

    def generate(self, prompt: str, max_tokens: int = 400, temperature: Optional[float] = None,
                 top_k: Optional[int] = None, top_p: Optional[float] = None, seed: Optional[int] = None,
                 state: Optional["State"] = None, unknown: str = "error", beam: Optional[int] = None,
                 length_penalty: Optional[float] = None) -> Iterator[str]:
        """Streams text continuing ``prompt``: an iterator yielding each piece as soon as it is sampled.

        Only generators (``task == "generate"``) run here; ``unknown`` is as in :meth:`encode`.

        Feeds the prompt (after the model's BOS token, if any), then samples up to ``max_tokens`` tokens,
        stopping early at the model's EOS token, with ``temperature`` (default 0.8), ``top_k`` (default
        0: all), ``top_p`` (default 1) and ``seed`` (default 42): the defaults of ``recur generate``, and
        the same arguments give the same text as the command and the C function ``recur_generate``. With
        ``beam=N`` the continuation is found by beam search instead (as :meth:`beam_search`, ranked with
        ``length_penalty``, default 1) and its pieces come as they become certain; the sampling arguments
        are then refused. With a ``state`` the stream continues from it (an empty prompt continues its
        current output) and the state keeps what was consumed; otherwise a fresh state is used. Arguments
        are checked here, before iteration starts; nothing runs until the first piece is asked for.
        """
        b = _text(prompt, "prompt")
        self._require_generator()
        max_tokens = _int_in(0, _INT32_MAX)(max_tokens, "max_tokens")
        self._check_state(state)
        if beam is not None:
            given = [n for n, v in (("temperature", temperature), ("top_k", top_k), ("top_p", top_p), ("seed", seed))
                     if v is not None]
            if given:
                raise ValueError(f"{given[0]} applies to sampling, not to beam search (beam=)")
            params = self._beam_params(beam, 1, 1.0 if length_penalty is None else length_penalty, unknown)
            self.encode(prompt, unknown)        # text outside the vocabulary fails here, not in the loop
            self._check_start(b, state)
            return self._stream_beam(b, max_tokens, params, state)
        if length_penalty is not None:
            raise ValueError("length_penalty applies to beam search; pass beam=N")
        ids = self.encode(prompt, unknown) if b else []
        if self._special["bos"] is not None:
            ids.insert(0, self._special["bos"])
        self._check_start(ids, state)
        sampler = Sampler(temperature=0.8 if temperature is None else temperature, top_k=0 if top_k is None else top_k,
                          top_p=1.0 if top_p is None else top_p, seed=42 if seed is None else seed)
        self._token_texts()
        return self._stream(ids, max_tokens, sampler, state)

    def beam_search(self, prompt: str, beam: int = 4, best: int = 1, max_tokens: int = 400,
                    length_penalty: float = 1.0, state: Optional["State"] = None,
                    unknown: str = "error") -> list:
        """The ``best`` most likely continuations of ``prompt`` found by beam search of width ``beam``,
        best first, as :class:`Continuation` ``(text, tokens, log_probability, score)``.

        The prompt is fed as :meth:`generate` feeds it. Each step extends every live hypothesis by its
        ``beam`` most likely next tokens and keeps the ``beam`` best by total log-probability; a
        hypothesis ends at EOS or after ``max_tokens`` tokens; they are ranked by ``log_probability /
        length**length_penalty`` (the length counting EOS when emitted). ``beam=1`` is greedy decoding
        (``generate`` at temperature 0). Runs ``recur_generate_beam``: the same arguments give the same
        continuations as ``recur generate --beam N --best K``. With a ``state`` the search continues it,
        and the state ends holding the prompt and the best continuation.
        """
        b = _text(prompt, "prompt")
        self._require_generator()
        max_tokens = _int_in(0, _INT32_MAX)(max_tokens, "max_tokens")
        self._check_state(state)
        params = self._beam_params(beam, best, length_penalty, unknown)
        self._check_start(b, state)
        found: list = []
        failure: list = []

        def on_result(rank, text, length, tokens, count, log_p, score, user):
            try:
                found.append(Continuation(C.string_at(text, length).decode("utf-8", "replace"),
                                          [int(tokens[k]) for k in range(count)], float(log_p), float(score)))
                return 0
            except BaseException as e:      # never let an exception unwind through C
                failure.append(e)
                return 1

        results = _capi.recur_continuation_callback(on_result)
        own = state is None
        st = self.new_state() if own else state
        try:
            _capi.check(self._lib.recur_generate_beam(st._h(), b, max_tokens, C.byref(params),
                                                      _capi.recur_piece_callback(), results, None, None))
        finally:
            if own:
                st.close()
        if failure:
            raise failure[0]
        return found

    def _stream_beam(self, prompt: bytes, max_tokens: int, params, state: Optional["State"]) -> Iterator[str]:
        own = state is None
        st = self.new_state() if own else state
        L, sh = self._lib, st._h()

        def call(put, failure):
            def on_piece(piece, length, user):
                try:
                    return put(C.string_at(piece, length).decode("utf-8", "replace"))
                except BaseException as e:      # never let an exception unwind through C
                    failure.append(e)
                    return -1
            callback = _capi.recur_piece_callback(on_piece)
            return L.recur_generate_beam(sh, prompt, max_tokens, C.byref(params), callback,
                                         _capi.recur_continuation_callback(), None, None)

        def stream():
            try:
                yield from _pumped(call, "recur-generate-beam")
            finally:
                if own:
                    st.close()

        return stream()

    def _beam_params(self, beam, best, length_penalty, unknown: str):
        if unknown not in _capi.UNKNOWN:
            raise ValueError(f"unknown must be one of {', '.join(_capi.UNKNOWN)}, not {unknown!r}")
        beam = _int_in(1, 256)(beam, "beam")
        best = _int_in(1, beam)(best, "best")
        penalty = _real(length_penalty, "length_penalty")
        if not (math.isfinite(penalty) and penalty >= 0):
            raise RecurError(Status.INVALID_ARGUMENT, f"length_penalty must be a finite number ≥ 0 (got {penalty})")
        params = _capi.BeamParams()
        self._lib.recur_beam_params_init(C.byref(params))
        params.beam, params.best, params.length_penalty, params.unknown = beam, best, penalty, _capi.UNKNOWN.index(unknown)
        return params

    def _require_generator(self):
        task = self.task
        if task != "generate":
            call = {"classify": "classify", "tag": "tag", "seq2seq": "translate"}.get(task, task)
            raise RecurError(Status.UNSUPPORTED, f"this is a {task} model, not a text generator; run it with {call}")

    def _check_state(self, state):
        if state is not None:
            if not isinstance(state, State):
                raise TypeError(f"state must be a recur.State (got {type(state).__name__})")
            if state._model is not self:
                raise RecurError(Status.MISMATCH, "the state belongs to another model")
            state._h()

    def _check_start(self, start, state):
        """An empty prompt (``start``: the prompt's bytes or ids) needs a BOS token or a state that has
        consumed tokens."""
        if not start and self._special["bos"] is None and (state is None or state.position == 0):
            raise RecurError(Status.INVALID_ARGUMENT,
                             "the prompt is empty and the model has no BOS token to start from")

    def _stream(self, ids: list, max_tokens: int, sampler: "Sampler", state: Optional["State"]) -> Iterator[str]:
        own = state is None
        st = self.new_state() if own else state
        try:
            if ids:
                st.feed(ids, copy=False)
            texts, eos, word = self._texts, self._special["eos"], self._word
            special = {v for v in self._special.values() if v is not None}
            L, sh = self._lib, st._h()
            emitted = False
            for _ in range(max_tokens):
                token = sampler.sample_state(st)
                if token == eos:
                    return
                _capi.check(L.recur_state_step(sh, token, None))
                if token in special:
                    continue
                piece = (" " if word and emitted else "") + texts[token]
                if piece:
                    emitted = True
                    yield piece
        finally:
            sampler.close()
            if own:
                st.close()


class State(_Handle):
    """One stream of tokens through a model: recurrent vectors and the last output.

    ``step(token)`` and ``feed(tokens)`` return the model's output after the token(s) as a float32
    numpy array (a copy). ``save()`` gives bytes that ``load()`` restores, also into another State of the
    same model file; ``copy()`` forks the stream.
    """

    def __init__(self, model: Model):
        if not isinstance(model, Model):
            raise TypeError(f"model must be a recur.Model (got {type(model).__name__})")
        self._handle = None
        L = model._lib
        h = _capi.state_p()
        _capi.check(L.recur_state_new(model._h(), C.byref(h)))
        self._lib = L
        self._free = L.recur_state_free
        self._handle = h
        self._model = model
        self._vocab_size = model._vocab_size
        self._output_size = model._output_size
        # step() writes into one buffer owned by the state and returns a copy of it. Its call goes through
        # a function object without argtypes, given arguments converted once here: ctypes then passes
        # them as they are (converting four arguments per call cost more than a small model's step).
        self._buf = np.empty(self._output_size, dtype=np.float32)
        self._buf_ptr = self._buf.ctypes.data_as(C.POINTER(C.c_float))
        self._step_copy = _unchecked(L, "recur_state_step_copy")
        self._h_arg = C.c_void_p(C.cast(h, C.c_void_p).value)
        self._n_arg = C.c_size_t(self._output_size)
        self._frame_size = model._frame_size
        if self._frame_size:
            # step(frame) copies the frame into a buffer of its own and reads the state's output, whose
            # pointer stays valid for the life of the state (recur_state_output): the call's arguments
            # are made once here.
            self._step_frame = _unchecked(L, "recur_state_step_frame")
            self._fbuf = np.zeros(self._frame_size, dtype=np.float32)
            self._fbuf_arg = C.c_void_p(self._fbuf.ctypes.data)
            self._f_arg = C.c_size_t(self._frame_size)
            out = C.POINTER(C.c_float)()
            _capi.check(L.recur_state_output(h, C.byref(out)))
            self._out_view = np.ctypeslib.as_array(out, shape=(self._output_size,))
        self._alive = [True]
        self.step = self._stepper() if _step is not None else self._python_step()

    def _stepper(self):
        """``step`` as a ``recur._step.Stepper`` (bindings/python/recur/_step.c): the call in C, with this
        state's arguments prepared here. It frees the state when closed (``close()`` goes through it), so a
        step running in another thread finishes first. Like the closure it keeps no reference cycle."""
        L, h = self._lib, self._h_arg.value
        release = self._model._get(_capi.RECUR_MODEL_FILE_BYTES) >= _RELEASE_BYTES
        if self._frame_size:
            stepper = _step.Stepper(h, 0, _address(L, "recur_state_step_frame"), _address(L, "recur_state_free"),
                                    0, self._frame_size, self._out_view, _capi.check,
                                    functools.partial(_frames, frame_size=self._frame_size, what="frame", one=True),
                                    RecurError, release)
        else:
            stepper = _step.Stepper(h, _address(L, "recur_state_step_copy"), 0, _address(L, "recur_state_free"),
                                    self._vocab_size, 0, self._buf, _capi.check,
                                    functools.partial(_token, vocab=self._vocab_size), RecurError, release)
        self._free = None     # the stepper frees the handle
        return stepper

    def _python_step(self):
        """``step`` as a Python closure over this state's prepared ctypes arguments (an instance attribute,
        found before the method): no attribute lookups per call; used when the package's C module is not
        built. It refers to the state only through what it captures, so it keeps no reference cycle, and it
        refuses to run once the state is closed."""
        alive, check, what = self._alive, _capi.check, self._what
        if self._frame_size:
            step_frame, harg, fbuf, farg, fargs = self._step_frame, self._h_arg, self._fbuf, self._f_arg, self._fbuf_arg
            out, size = self._out_view, self._frame_size

            def step(frame, copy=True):
                if not alive[0]:
                    raise _closed(what)
                if type(frame) is np.ndarray and frame.shape == fbuf.shape and frame.dtype.kind == "f":
                    fbuf[:] = frame
                else:
                    fbuf[:] = _frames(frame, size, "frame", one=True)
                status = step_frame(harg, fargs, farg, None)
                if status:
                    check(status)
                return out.copy() if copy else out
        else:
            step_copy, harg, bptr, narg, buf, vocab = self._step_copy, self._h_arg, self._buf_ptr, self._n_arg, self._buf, self._vocab_size
            duplicate = buf.copy

            def step(token, copy=True):
                if not alive[0]:
                    raise _closed(what)
                if type(token) is not int or not 0 <= token < vocab:
                    token = _token(token, vocab)
                status = step_copy(harg, token, bptr, narg)
                if status:
                    check(status)
                return duplicate() if copy else buf
        step.__doc__ = State.step.__doc__
        step.__name__ = step.__qualname__ = "step"
        return step

    _what = "state"
    _instead = ("use state.copy() to fork the stream, or state.save() for bytes (which can be stored or "
                "pickled) and load() on a state of the same model to restore them")

    def close(self) -> None:
        """Releases the state (and its hold on the model). Closing twice is harmless."""
        alive = getattr(self, "_alive", None)
        if alive:
            alive[0] = False
        step = self.__dict__.get("step")
        if _step is not None and type(step) is _step.Stepper:
            self._handle = None
            step.close()
        else:
            super().close()

    @property
    def model(self) -> Model:
        return self._model

    @property
    def position(self) -> int:
        """Tokens consumed since creation or the last reset."""
        p = C.c_uint64()
        _capi.check(self._lib.recur_state_position(self._h(), C.byref(p)))
        return p.value

    @property
    def output(self) -> np.ndarray:
        """The current output (after the last step or feed; zeros after a reset), as a float32 copy."""
        ptr = C.POINTER(C.c_float)()
        _capi.check(self._lib.recur_state_output(self._h(), C.byref(ptr)))
        return self._copy(ptr)

    def _copy(self, ptr) -> np.ndarray:
        return np.ctypeslib.as_array(ptr, shape=(self._output_size,)).copy()

    def step(self, token, copy: bool = True) -> np.ndarray:
        """Feeds one token id (or, for a frame model, one frame: array-like of ``frame_size`` floats);
        returns the output after it (float32, a copy). With ``copy=False`` it returns the state's own output
        array instead, without allocating: valid until the next step (which overwrites it) and while the
        state is open — the fastest way to step from Python."""
        # (An instance's `step` attribute is this state's Stepper or closure; this is the same call.)
        return self.__dict__["step"](token, copy)

    def feed(self, tokens: Union[Sequence[int], np.ndarray], copy: bool = True) -> Optional[np.ndarray]:
        """Feeds a sequence of token ids at once (faster than stepping each) — or, for a frame model, frames
        of shape (T, frame_size); returns the output after the last one (or None with ``copy=False``).
        Every id or frame is checked first: on error nothing is fed."""
        if self._frame_size:
            fr = _frames(tokens, self._frame_size)
            ptr = C.POINTER(C.c_float)()
            _capi.check(self._lib.recur_state_prefill_frames(self._h(), fr.ctypes.data_as(C.POINTER(C.c_float)),
                                                             fr.shape[0], self._frame_size, C.byref(ptr)))
            return self._copy(ptr) if copy else None
        arr = _token_array(tokens, self._vocab_size)
        if arr.size == 0:
            raise RecurError(Status.INVALID_ARGUMENT, "feed needs at least one token")
        ptr = C.POINTER(C.c_float)()
        _capi.check(self._lib.recur_state_prefill(self._h(), arr.ctypes.data_as(C.POINTER(C.c_int32)), arr.size,
                                                  C.byref(ptr)))
        return self._copy(ptr) if copy else None

    def layer_state(self, layer: int, cell: bool = False) -> np.ndarray:
        """h (or with ``cell=True`` c, LSTM layers only) of recurrent layer ``layer`` — numbered as in
        ``Model.layers`` — after the last step or feed, as a float32 copy: units floats, 2 × units for a
        bidirectional layer ([forward, backward]). The last recurrent layer's h is what the dense head read
        to give ``output``. A bad index, a layer without state or the cell of a GRU raise RecurError
        before the library is called."""
        if not isinstance(cell, (bool, np.bool_)):
            raise TypeError(f"cell must be a bool (got {type(cell).__name__})")
        i = _layer_index(self._model, layer, "cell" if cell else "hidden")
        info = self._model._layers[i]
        out = np.zeros(info["units"] * info["directions"], dtype=np.float32)
        count = C.c_size_t()
        _capi.check(self._lib.recur_state_layer(self._h(), i, _capi.RECUR_VALUES_CELL if cell else _capi.RECUR_VALUES_HIDDEN,
                                                out.ctypes.data_as(C.POINTER(C.c_float)), out.size, C.byref(count)))
        return out[:count.value]

    def reset(self) -> None:
        """Zeroes the state (position 0)."""
        _capi.check(self._lib.recur_state_reset(self._h()))

    def save(self) -> bytes:
        """The state as bytes (vectors, output, position, and the model's fingerprint)."""
        n = C.c_size_t()
        _capi.check(self._lib.recur_state_size(self._h(), C.byref(n)))
        buf = C.create_string_buffer(n.value)
        written = C.c_size_t()
        _capi.check(self._lib.recur_state_save(self._h(), buf, n.value, C.byref(written)))
        return buf.raw[:written.value]

    def load(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Restores bytes from ``save()`` (of a state of the same model file). On error the state is
        unchanged: RecurError with code MISMATCH (another model), FORMAT, CHECKSUM or UNSUPPORTED_VERSION."""
        b = _buffer(data, "data")
        _capi.check(self._lib.recur_state_restore(self._h(), b, len(b)))

    def copy(self) -> "State":
        """A new state equal to this one (a fork of the stream). Needs the model to be open."""
        if self._model.closed:
            raise _closed("model of this state (copy() creates a state of it)")
        s = State(self._model)
        try:
            _capi.check(self._lib.recur_state_copy(s._h(), self._h()))
        except BaseException:
            s.close()
            raise
        return s

    def __repr__(self) -> str:
        if self.closed:
            return "<recur.State (closed)>"
        return f"<recur.State position={self.position}>"


class Sampler(_Handle):
    """Turns a model's output into a token id; owns its random generator (SplitMix64, seeded).

    temperature 0 is argmax; otherwise top_k (0: all) and top_p (1: all) cut the candidates before the
    draw. The same seed and outputs give the same ids everywhere (C, the command line, Python).
    """

    def __init__(self, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0):
        self._handle = None
        for name, v in (("temperature", temperature), ("top_p", top_p)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a number (got {type(v).__name__})")
        for name, v in (("top_k", top_k), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name} must be an int (got {type(v).__name__})")
        if not 0 <= top_k <= _INT32_MAX:
            raise RecurError(Status.INVALID_ARGUMENT, f"top-k must be in 0...{_INT32_MAX} (got {top_k})")
        if not 0 <= seed < 2**64:
            raise RecurError(Status.INVALID_ARGUMENT, f"seed must be in 0 ..< 2**64 (got {seed})")
        L = _capi.lib()
        p = _capi.recur_sampler_params()
        L.recur_sampler_params_init(C.byref(p))
        p.temperature, p.top_k, p.top_p, p.seed = float(temperature), int(top_k), float(top_p), int(seed)
        h = _capi.sampler_p()
        _capi.check(L.recur_sampler_new(C.byref(p), C.byref(h)))
        self._lib = L
        self._free = L.recur_sampler_free
        self._handle = h
        self.temperature, self.top_k, self.top_p, self.seed = p.temperature, p.top_k, p.top_p, p.seed

    _what = "sampler"
    _instead = ("create a new recur.Sampler(temperature=..., top_k=..., top_p=..., seed=...) with the same "
                "parameters (it starts its random sequence afresh from the seed)")

    def sample(self, logits) -> int:
        """Draws a token id from a 1-D array of logits (float32 or float64; converted to float32)."""
        arr = np.asarray(logits)
        if arr.ndim != 1:
            raise ValueError(f"logits must be one-dimensional (got shape {arr.shape})")
        if arr.dtype.kind != "f":
            raise TypeError(f"logits must be floating point (got dtype {arr.dtype})")
        if arr.size == 0:
            raise RecurError(Status.INVALID_ARGUMENT, "cannot sample from an empty vector")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        token = C.c_int32()
        _capi.check(self._lib.recur_sampler_sample(self._h(), arr.ctypes.data_as(C.POINTER(C.c_float)), arr.size,
                                                   C.byref(token)))
        return token.value

    def sample_state(self, state: State) -> int:
        """Draws a token id from a state's current output (as probabilities when the model ends in softmax)."""
        if not isinstance(state, State):
            raise TypeError(f"state must be a recur.State (got {type(state).__name__})")
        token = C.c_int32()
        _capi.check(self._lib.recur_sampler_sample_state(self._h(), state._h(), C.byref(token)))
        return token.value

    def __repr__(self) -> str:
        return (f"<recur.Sampler temperature={self.temperature:g} top_k={self.top_k} top_p={self.top_p:g} "
                f"seed={self.seed}{' (closed)' if self.closed else ''}>")
