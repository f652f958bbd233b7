"""A plain numpy implementation of Recur models, written from the equations of ``docs/FORMAT.md``.

It is slow and simple on purpose: every layer is a few lines of float64 numpy that mirror the formulas,
so the runtime can be checked against it. It needs only a parsed file (``recur.format.read``) or the
metadata and tensors themselves; it does not use the Recur library.

    >>> from recur import format, reference
    >>> ref = reference.ReferenceModel(format.read("tiny.recur"))
    >>> logits = ref.run([5, 17, 2])[-1]              # float64, one vector per token
    >>> sampler = reference.ReferenceSampler(temperature=0.8, top_k=40, seed=7)
    >>> sampler.sample(logits)

Conventions (see the specification for the full text):

- Weights are row-major with gate blocks stacked along the rows: GRU r, z, n; LSTM i, f, g, o.
- ``step`` runs the stack one token at a time (embedding, recurrent layers, dense layers); ``forward_sequence``
  runs a whole sequence layer by layer and is the only way to run bidirectional layers.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "activate", "quantize_activations", "gru_step", "lstm_step", "rnn_step", "dense", "attend", "ReferenceModel",
    "ReferenceTranslator", "SplitMix64", "pick", "ReferenceSampler",
]

ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "hard_sigmoid_keras2", "hard_sigmoid_keras3", "softmax")


# --- Activations ---------------------------------------------------------------------------------

def activate(name: str, x: np.ndarray) -> np.ndarray:
    """The activation ``name`` applied to float64 ``x`` (softmax over the whole vector)."""
    x = np.asarray(x, dtype=np.float64)
    if name == "linear":
        return x.copy()
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if name == "hard_sigmoid_keras2":
        return np.clip(0.2 * x + 0.5, 0.0, 1.0)
    if name == "hard_sigmoid_keras3":
        return np.clip(x / 6.0 + 0.5, 0.0, 1.0)
    if name == "softmax":
        e = np.exp(x - np.max(x))
        return e / e.sum()
    raise ValueError(f"unknown activation '{name}'")


# --- Matrices ------------------------------------------------------------------------------------

def quantize_activations(x: np.ndarray) -> np.ndarray:
    """The runtime's dynamic quantization of a vector multiplied by a q8/q4 matrix: per block of 32,
    d = max|x| / 127 and x ≈ d · round_half_even(clamp(x · (127 / max|x|), −127, 127)), in float32."""
    x32 = np.asarray(x, dtype=np.float32).reshape(-1)
    n = x32.shape[0]
    nb = (n + 31) // 32
    padded = np.zeros(nb * 32, dtype=np.float32)
    padded[:n] = x32
    blocks = padded.reshape(nb, 32)
    amax = np.abs(blocks).max(axis=1).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(amax > 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    d = (amax / np.float32(127)).astype(np.float32)
    t = np.clip((blocks * inv[:, None]).astype(np.float32), -127, 127)
    q = np.rint(t)
    return (q.astype(np.float64) * d[:, None].astype(np.float64)).reshape(-1)[:n]


def quantize_activations_per_vector(x: np.ndarray) -> np.ndarray:
    """The runtime's quantization of a vector multiplied by a q8r matrix: one scale for the whole vector,
    D = max|x| / 64 and x ≈ D · round_half_even(clamp(x · (64 / max|x|), −64, 64)), in float32."""
    x32 = np.asarray(x, dtype=np.float32).reshape(-1)
    amax = np.float32(np.abs(x32).max()) if x32.size else np.float32(0)
    inv = np.float32(64) / amax if amax > 0 else np.float32(0)
    q = np.rint(np.clip((x32 * inv).astype(np.float32), -64, 64))
    return q.astype(np.float64) * np.float64(amax / np.float32(64))


class QuantizedInputMatrix:
    """A weight matrix whose products quantize the vector first, as the runtime's q8/q4 (per block) and
    q8r (per vector) kernels do."""

    def __init__(self, w: np.ndarray, per_vector: bool = False):
        self.w = w
        self.per_vector = per_vector

    @property
    def shape(self):
        return self.w.shape

    def __getitem__(self, idx):
        return QuantizedInputMatrix(self.w[idx], self.per_vector)

    def __matmul__(self, x):
        q = quantize_activations_per_vector(x) if self.per_vector else quantize_activations(x)
        return self.w @ q


# --- Cells: one step, float64 ----------------------------------------------------------------------

def rnn_step(p: dict, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """h' = act(W x + b + U h)."""
    return activate(p["activation"], p["W"] @ x + p["b"] + p["U"] @ h)


def gru_step(p: dict, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """GRU with gate blocks r, z, n; ``reset_after`` chooses where the reset gate applies."""
    H = h.shape[0]
    sig, act = p["recurrent_activation"], p["activation"]
    gx = p["W"] @ x + p["b"]
    xr, xz, xn = gx[:H], gx[H:2 * H], gx[2 * H:]
    U = p["U"]
    Ur, Uz, Un = U[:H], U[H:2 * H], U[2 * H:]
    if p["reset_after"]:
        bh = p["bh"]
        r = activate(sig, xr + Ur @ h + bh[:H])
        z = activate(sig, xz + Uz @ h + bh[H:2 * H])
        n = activate(act, xn + r * (Un @ h + bh[2 * H:]))
    else:
        r = activate(sig, xr + Ur @ h)
        z = activate(sig, xz + Uz @ h)
        n = activate(act, xn + Un @ (r * h))
    return (1.0 - z) * n + z * h


def lstm_step(p: dict, x: np.ndarray, h: np.ndarray, c: np.ndarray):
    """LSTM with gate blocks i, f, g, o; optional peepholes P (rows i, f, o). Returns (h', c')."""
    H = h.shape[0]
    sig, act = p["recurrent_activation"], p["activation"]
    a = p["W"] @ x + p["b"] + p["U"] @ h
    ai, af, ag, ao = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
    P = p.get("P")
    if P is None:
        i = activate(sig, ai)
        f = activate(sig, af)
        g = activate(act, ag)
        c_new = f * c + i * g
        o = activate(sig, ao)
    else:
        i = activate(sig, ai + P[0] * c)
        f = activate(sig, af + P[1] * c)
        g = activate(act, ag)
        c_new = f * c + i * g
        o = activate(sig, ao + P[2] * c_new)
    return o * activate(act, c_new), c_new


def dense(p: dict, x: np.ndarray) -> np.ndarray:
    """y = act(W x + b)."""
    return activate(p["activation"], p["W"] @ x + p["b"])


def attend(p: dict, h: np.ndarray, memory: np.ndarray, attends: np.ndarray):
    """One attention step (FORMAT.md §13.9) for the decoder state h over the memory (T × M rows h̄_s).

    score_s = h·h̄_s (dot), h·(W_a h̄_s) (general) or v·tanh(W_q h + W_k h̄_s [+ b]) (additive); the weights
    a are the softmax of the scores over the positions where ``attends`` is true (0 elsewhere);
    c = Σ_s a_s h̄_s; the output is tanh(W_c [c; h] + b_c), or [c; h] with combine = none.
    Returns (output, a)."""
    score = p["score"]
    if score == "dot":
        e = memory @ h
    elif score == "general":
        e = (memory @ p["W_a"].T) @ h
    elif score == "additive":
        e = np.tanh((p["W_q"] @ h)[None, :] + memory @ p["W_k"].T + p["b_a"][None, :]) @ p["v_a"]
    else:
        raise ValueError(f"unknown attention score '{score}'")
    attends = np.asarray(attends, dtype=bool)
    if not attends.any():
        raise ValueError("attention needs at least one position that is not PAD")
    e = np.where(attends, e, -np.inf)
    w = np.exp(e - e[attends].max())
    a = w / w.sum()
    c = a @ memory
    cat = np.concatenate([c, h])
    if p["combine"] == "none":
        return cat, a
    return np.tanh(p["W_c"] @ cat + p["b_c"]), a


# --- Model ---------------------------------------------------------------------------------------

def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


class ReferenceModel:
    """A model read from a parsed file's metadata and tensors, run in float64.

    ``file_data`` is anything with ``.metadata`` (key → value) and ``.tensors`` (name → array), such as the
    result of ``recur.format.read``. Quantized tensors are used as their dequantized float32 values: the
    products are exact. With ``quantized_inputs=True`` (and a parsed file, whose ``info`` gives the
    dtypes), products with q8/q4 matrices first quantize the vector as the runtime's kernels do (see
    :func:`quantize_activations`), so the runtime can be compared with a tight tolerance; ``input_table``
    then says whether the runtime steps with its precomputed table of the first recurrent layer's input
    projections (the default; built with exact products), in which case ``step`` keeps that one product
    exact. ``forward_sequence`` has no table.
    """

    def __init__(self, file_data=None, *, metadata: Mapping | None = None, tensors: Mapping | None = None,
                 quantized_inputs: bool = False, input_table: bool = True):
        if file_data is not None:
            metadata, tensors = file_data.metadata, file_data.tensors
        if metadata is None or tensors is None:
            raise ValueError("give a parsed file, or metadata and tensors")
        self.metadata = dict(metadata)
        self.task = self.metadata.get("model.task", "generate")
        blocked = {}
        if quantized_inputs:
            if file_data is None or not hasattr(file_data, "info"):
                raise ValueError("quantized_inputs needs a parsed file (its tensor dtypes)")
            blocked = {n: t.dtype.per_vector for n, t in file_data.info.items() if t.dtype.quantizes_activations}
        self._blocked = blocked
        self.layers = self._read_layers(self.metadata, tensors, "", blocked)
        self._exact_first = bool(blocked) and input_table and self.layers[0]["kind"] == "embedding"
        # Frame models: x' = (x - mean) * scale before layer 0; frames equal to mask_value are padding.
        self.mean = _f64(tensors["input.mean"]) if "input.mean" in tensors else None
        self.scale = _f64(tensors["input.scale"]) if "input.scale" in tensors else None
        self.mask_value = self.metadata.get("input.mask_value")
        self.pooling = self.metadata.get("model.pooling", "last")
        self.reset()

    # Reading the architecture --------------------------------------------------------------------

    @staticmethod
    def _read_layers(meta: Mapping, tensors: Mapping, prefix: str, blocked=None) -> list:
        blocked = blocked or {}

        def matrix(name, shape=None):
            w = _f64(tensors[name])
            if shape is not None:
                w = w.reshape(shape)
            return QuantizedInputMatrix(w, per_vector=blocked[name]) if name in blocked else w

        count_key = "model.layer_count" if not prefix else prefix + "layer_count"
        if count_key not in meta:
            raise ValueError(f"missing metadata '{count_key}'")
        layers = []
        for i in range(int(meta[count_key])):
            q = f"{prefix}layer.{i}."
            kind = meta[q + "kind"]
            if kind == "embedding":
                table = _f64(tensors[q + "embeddings"])
                if table.shape != (meta[q + "input_dim"], meta[q + "output_dim"]):
                    raise ValueError(f"{q}embeddings has shape {table.shape}")
                layers.append({"kind": "embedding", "table": table})
            elif kind in ("rnn", "gru", "lstm"):
                spec = {
                    "kind": kind,
                    "input_size": int(meta[q + "input_size"]),
                    "units": int(meta[q + "units"]),
                    "activation": meta.get(q + "activation", "tanh"),
                    "recurrent_activation": meta.get(q + "recurrent_activation", "sigmoid"),
                    "reset_after": bool(meta.get(q + "reset_after", True)),
                    "peephole": bool(meta.get(q + "peephole", False)),
                    "return_sequences": bool(meta.get(q + "return_sequences", True)),
                    "bidirectional": bool(meta.get(q + "bidirectional", False)),
                    "merge_mode": meta.get(q + "merge_mode", "concat"),
                }
                dirs = ["forward.", "backward."] if spec["bidirectional"] else [""]
                spec["directions"] = [ReferenceModel._cell_params(spec, tensors, q + d, matrix) for d in dirs]
                layers.append(spec)
            elif kind == "dense":
                layers.append({
                    "kind": "dense",
                    "input_size": int(meta[q + "input_size"]),
                    "units": int(meta[q + "units"]),
                    "activation": meta.get(q + "activation", "linear"),
                    "W": matrix(q + "kernel"),
                    "b": _f64(tensors[q + "bias"]),
                })
            elif kind == "attention":
                Q, M = int(meta[q + "input_size"]), int(meta[q + "memory_size"])
                L = {"kind": "attention", "score": meta[q + "score"], "input_size": Q, "memory_size": M,
                     "combine": meta.get(q + "combine", "tanh"), "input_feeding": bool(meta.get(q + "input_feeding", False))}
                if L["score"] == "general":
                    L["W_a"] = _f64(tensors[q + "score_kernel"]).reshape(Q, M)
                if L["score"] == "additive":
                    A = int(meta[q + "attention_units"])
                    L["W_q"] = _f64(tensors[q + "query_kernel"]).reshape(A, Q)
                    L["W_k"] = _f64(tensors[q + "key_kernel"]).reshape(A, M)
                    L["v_a"] = _f64(tensors[q + "score_vector"]).reshape(A)
                    L["b_a"] = (_f64(tensors[q + "score_bias"]).reshape(A) if meta.get(q + "use_bias", False)
                                else np.zeros(A))
                if L["combine"] == "tanh":
                    L["units"] = int(meta[q + "units"])
                    L["W_c"] = _f64(tensors[q + "kernel"]).reshape(L["units"], M + Q)
                    L["b_c"] = _f64(tensors[q + "bias"]).reshape(L["units"])
                else:
                    L["units"] = M + Q
                layers.append(L)
            else:
                raise ValueError(f"layer {i} has unknown kind '{kind}'")
        return layers

    @staticmethod
    def _cell_params(spec: dict, tensors: Mapping, q: str, matrix) -> dict:
        G = {"rnn": 1, "gru": 3, "lstm": 4}[spec["kind"]]
        H, In = spec["units"], spec["input_size"]
        p = {
            "activation": spec["activation"],
            "recurrent_activation": spec["recurrent_activation"],
            "reset_after": spec["reset_after"],
            "W": matrix(q + "kernel", (G * H, In)),
            "W_exact": _f64(tensors[q + "kernel"]).reshape(G * H, In),
            "U": matrix(q + "recurrent_kernel", (G * H, H)),
            "b": _f64(tensors[q + "bias"]).reshape(G * H),
        }
        if spec["kind"] == "gru" and spec["reset_after"]:
            p["bh"] = _f64(tensors[q + "recurrent_bias"]).reshape(G * H)
        if spec["kind"] == "lstm" and spec["peephole"]:
            p["P"] = _f64(tensors[q + "peephole"]).reshape(3, H)
        return p

    # Streaming -----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Zeroes every recurrent state."""
        self.h = []
        self.c = []
        for layer in self.layers:
            if layer["kind"] in ("rnn", "gru", "lstm"):
                H = layer["units"]
                self.h.append(np.zeros(H))
                self.c.append(np.zeros(H) if layer["kind"] == "lstm" else None)
        self.position = 0
        self.output = None

    def _input(self, token) -> np.ndarray:
        first = self.layers[0]
        if first["kind"] == "embedding":
            t = int(token)
            if not 0 <= t < first["table"].shape[0]:
                raise IndexError(f"token id {t} is outside the vocabulary (0..<{first['table'].shape[0]})")
            return first["table"][t]
        x = _f64(token)
        return (x - self.mean) * self.scale if self.mean is not None else x

    def _masked(self, frame) -> bool:
        return self.mask_value is not None and bool(np.all(_f64(frame) == np.float32(self.mask_value)))

    def step(self, token) -> np.ndarray:
        """Feeds one token (or one input vector for models without an embedding); returns the output.
        A frame equal to the mask value leaves the state as it is; the output is the dense head over the
        last recurrent layer's state (the last output again, or the head over the zero state)."""
        if self.layers[0]["kind"] != "embedding" and self._masked(token):
            self.position += 1
            last = max(i for i, l in enumerate(self.layers) if l["kind"] in ("rnn", "gru", "lstm"))
            x = self.h[-1]
            for layer in self.layers[last + 1:]:
                x = dense(layer, x)
            self.output = np.array(x, dtype=np.float64)
            return self.output.copy()
        x = self._input(token)
        k = 0
        for layer in self.layers:
            kind = layer["kind"]
            if kind == "embedding":
                continue
            if kind == "dense":
                x = dense(layer, x)
                continue
            if layer["bidirectional"]:
                raise ValueError("a bidirectional layer cannot be stepped; use forward_sequence")
            p = layer["directions"][0]
            if k == 0 and self._exact_first:
                p = dict(p, W=p["W_exact"])
            if kind == "lstm":
                self.h[k], self.c[k] = lstm_step(p, x, self.h[k], self.c[k])
            elif kind == "gru":
                self.h[k] = gru_step(p, x, self.h[k])
            else:
                self.h[k] = rnn_step(p, x, self.h[k])
            x = self.h[k]
            k += 1
        self.position += 1
        self.output = np.array(x, dtype=np.float64)
        return self.output.copy()

    def run(self, tokens: Iterable) -> list:
        """``[step(t) for t in tokens]`` (continuing from the current state)."""
        return [self.step(t) for t in tokens]

    def state_vector(self) -> np.ndarray:
        """The recurrent state in saved-state order: for each recurrent layer, h then (LSTM) c."""
        parts = []
        for h, c in zip(self.h, self.c):
            parts.append(h)
            if c is not None:
                parts.append(c)
        return np.concatenate(parts) if parts else np.zeros(0)

    # Whole sequences -----------------------------------------------------------------------------

    @staticmethod
    def _run_direction(kind: str, p: dict, xs: np.ndarray, H: int, keep: Sequence[bool]) -> np.ndarray:
        """Outputs of one cell over xs in the given order; steps where keep is False carry the state over."""
        h = np.zeros(H)
        c = np.zeros(H)
        out = np.zeros((len(xs), H))
        for t, x in enumerate(xs):
            if not keep[t]:
                out[t] = h
                continue
            if kind == "lstm":
                h, c = lstm_step(p, x, h, c)
            elif kind == "gru":
                h = gru_step(p, x, h)
            else:
                h = rnn_step(p, x, h)
            out[t] = h
        return out

    @staticmethod
    def _merge(mode: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if mode == "concat":
            return np.concatenate([a, b], axis=-1)
        if mode == "sum":
            return a + b
        if mode == "mul":
            return a * b
        if mode == "ave":
            return (a + b) / 2.0
        raise ValueError(f"unknown merge mode '{mode}'")

    def forward_sequence(self, inputs: Sequence) -> np.ndarray:
        """Runs a whole sequence from a zero state, layer by layer; does not touch the streaming state.

        Returns a (T, width) array while every recurrent layer returns sequences, or a (width,) vector
        once a layer with ``return_sequences`` false has reduced the sequence to its last output. Dense
        layers apply to each step. A bidirectional layer runs its forward cell over x_1..x_T and its
        backward cell over x_T..x_1; output t merges forward output t with the backward output computed
        at input t, and the "last" output merges the forward output at T with the backward output at 1
        (the backward cell's final step). When the vocabulary has a PAD token, PAD steps leave each
        cell's state unchanged and output the state carried over (unless ``tokenizer.pad_mask`` is false).
        """
        if self.layers[0]["kind"] == "embedding":
            xs = np.stack([self._input(t) for t in inputs]) if len(inputs) else np.zeros((0, 0))
            pad = self.metadata.get("tokenizer.pad_id")
            if not self.metadata.get("tokenizer.pad_mask", True):
                pad = None          # an unmasked model: PAD steps are ordinary steps
            keep = [pad is None or int(t) != pad for t in inputs]
        else:
            frames = _f64(inputs).reshape(len(inputs), -1)
            xs = np.stack([self._input(f) for f in frames])
            keep = [not self._masked(f) for f in frames]
        if len(xs) == 0:
            raise ValueError("forward_sequence needs at least one input")
        seq = True                     # xs is (T, width); False: xs is a single (width,) vector
        last_recurrent = [l for l in self.layers if l["kind"] in ("rnn", "gru", "lstm")][-1]
        for layer in self.layers:
            kind = layer["kind"]
            if kind == "embedding":
                continue
            if kind == "dense":
                xs = np.stack([dense(layer, x) for x in xs]) if seq else dense(layer, xs)
                continue
            if not seq:
                raise ValueError("a recurrent layer after a layer with return_sequences false has a single "
                                 "vector as input")
            H = layer["units"]
            fwd = self._run_direction(kind, layer["directions"][0], xs, H, keep)
            if layer["bidirectional"]:
                bwd = self._run_direction(kind, layer["directions"][1], xs[::-1], H, keep[::-1])[::-1]
                if layer["return_sequences"]:
                    xs = self._merge(layer["merge_mode"], fwd, bwd)
                else:
                    xs = self._merge(layer["merge_mode"], fwd[-1], bwd[0])
                    seq = False
            else:
                if layer["return_sequences"]:
                    xs = fwd
                else:
                    xs = fwd[-1]
                    seq = False
            if seq and self.pooling == "mean" and layer is last_recurrent:
                rows = [t for t in range(len(xs)) if keep[t]] or list(range(len(xs)))
                xs = xs[rows].mean(axis=0)
                seq = False
        return xs


# --- seq2seq ---------------------------------------------------------------------------------------

def _cell(kind: str, p: dict, x, h, c):
    if kind == "lstm":
        return lstm_step(p, x, h, c)
    if kind == "gru":
        return gru_step(p, x, h), c
    return rnn_step(p, x, h), c


class ReferenceTranslator:
    """A ``seq2seq`` model (FORMAT.md §13.9) in float64: the encoder runs over the source, its final states
    start the decoder, and the decoder is stepped from BOS; with an attention layer every step attends over
    the encoder's outputs.

        >>> t = ReferenceTranslator(format.read("translator.recur"))
        >>> tokens, rows = t.greedy(source_ids, max_length=20)     # rows: attention weights per token
    """

    def __init__(self, file_data=None, *, metadata: Mapping | None = None, tensors: Mapping | None = None):
        if file_data is not None:
            metadata, tensors = file_data.metadata, file_data.tensors
        self.metadata = dict(metadata)
        if self.metadata.get("model.task") != "seq2seq":
            raise ValueError("not a seq2seq model")
        self.encoder = ReferenceModel._read_layers(self.metadata, tensors, "encoder.")
        self.decoder = ReferenceModel._read_layers(self.metadata, tensors, "")
        self.attention = next((l for l in self.decoder if l["kind"] == "attention"), None)
        m = self.metadata
        self.bos, self.eos = m["tokenizer.bos_id"], m["tokenizer.eos_id"]

    def encoder_input(self, source: Sequence[int], padding: str = "trained") -> list:
        """The tokens the encoder reads: PAD dropped (unless source_tokenizer.pad_mask is false), reversed
        but a final EOS with encoder.reverse_source, then cut and padded to source_tokenizer.pad_length."""
        m = self.metadata
        pad, eos = m.get("source_tokenizer.pad_id"), m.get("source_tokenizer.eos_id")
        toks = [int(t) for t in source]
        if pad is not None and m.get("source_tokenizer.pad_mask", True):
            toks = [t for t in toks if t != pad]
        if m.get("encoder.reverse_source", False) and toks:
            end = len(toks) - 1 if toks[-1] == eos else len(toks)
            toks[:end] = toks[:end][::-1]
        L = m.get("source_tokenizer.pad_length")
        if padding == "trained" and L is not None and pad is not None:
            if len(toks) > L:
                toks = toks[len(toks) - L:] if m.get("source_tokenizer.truncating", "pre") == "pre" else toks[:L]
            fill = [pad] * (L - len(toks))
            toks = fill + toks if m.get("source_tokenizer.padding", "pre") == "pre" else toks + fill
        return toks

    def start(self, source: Sequence[int], padding: str = "trained") -> None:
        """Encodes ``source``: the decoder's states become the encoder's final states (for a bidirectional
        encoder layer [h_fwd_final; h_bwd_final], c likewise), the memory its last layer's outputs."""
        toks = self.encoder_input(source, padding)
        if not toks:
            raise ValueError("the source holds only padding")
        xs = np.stack([self.encoder[0]["table"][t] for t in toks])
        finals = []
        for layer in self.encoder[1:]:
            kind, H = layer["kind"], layer["units"]
            outs, fin = [], []
            for d, order in zip(layer["directions"], [range(len(toks)), range(len(toks) - 1, -1, -1)]):
                h, c = np.zeros(H), np.zeros(H)
                out = np.zeros((len(toks), H))
                for t in order:
                    h, c = _cell(kind, d, xs[t], h, c)
                    out[t] = h
                outs.append(out)
                fin.append((h, c))
            xs = np.concatenate(outs, axis=1)
            finals.append((np.concatenate([f[0] for f in fin]), np.concatenate([f[1] for f in fin])))
        self.source = toks
        self.memory = xs
        pad = self.metadata.get("source_tokenizer.pad_id")
        self.attends = np.array([t != pad for t in toks])
        self.h = [f[0].copy() for f in finals]
        self.c = [f[1].copy() for f in finals]
        self.attended = np.zeros(self.attention["units"]) if self.attention else None
        self.weights = None

    def step(self, token: int) -> np.ndarray:
        """One decoder step; returns the output (logits, or probabilities after a softmax head)."""
        x = self.decoder[0]["table"][int(token)]
        if self.attention is not None and self.attention["input_feeding"]:
            x = np.concatenate([x, self.attended])
        k = 0
        for layer in self.decoder[1:]:
            if layer["kind"] == "attention":
                x, self.weights = attend(layer, x, self.memory, self.attends)
                self.attended = x
            elif layer["kind"] == "dense":
                x = dense(layer, x)
            else:
                self.h[k], self.c[k] = _cell(layer["kind"], layer["directions"][0], x, self.h[k], self.c[k])
                x = self.h[k]
                k += 1
        return x

    def log_probabilities(self, out: np.ndarray) -> np.ndarray:
        last = self.decoder[-1]
        if last["kind"] == "dense" and last["activation"] == "softmax":
            return np.log(np.maximum(out, 1e-45))
        m = out.max()
        return out - (m + np.log(np.exp(out - m).sum()))

    def fork(self) -> "ReferenceTranslator":
        other = object.__new__(ReferenceTranslator)
        other.__dict__.update(self.__dict__)
        other.h = [h.copy() for h in self.h]
        other.c = [c.copy() for c in self.c]
        return other

    def greedy(self, source: Sequence[int], max_length: int = 100, padding: str = "trained"):
        """Greedy decoding: (tokens, log-probability, per-step outputs, attention weights per token)."""
        self.start(source, padding)
        out = self.step(self.bos)
        toks, rows, outs, lp = [], [], [out], 0.0
        while len(toks) < max_length:
            p = self.log_probabilities(out)
            best = int(np.argmax(p))
            lp += float(p[best])
            if best == self.eos:
                break
            toks.append(best)
            rows.append(None if self.weights is None else self.weights.copy())
            out = self.step(best)
            outs.append(out)
        return toks, lp, outs, rows

    def exhaustive(self, source: Sequence[int], max_length: int, length_penalty: float = 1.0):
        """The best of every hypothesis (finished by EOS, or at max_length tokens) by
        log p / length^penalty, length counting EOS: (tokens, log p, score). For tiny vocabularies only."""
        self.start(source)
        best = None

        def visit(state, out, toks, lp):
            nonlocal best
            p = state.log_probabilities(out)
            for tok in range(len(p)):
                total = lp + float(p[tok])
                if tok == self.eos or len(toks) + 1 >= max_length:
                    done = toks if tok == self.eos else toks + [tok]
                    length = max(len(done) + (1 if tok == self.eos else 0), 1)
                    score = total / length ** length_penalty
                    if best is None or score > best[2]:
                        best = (done, total, score)
                    continue
                s = state.fork()
                visit(s, s.step(tok), toks + [tok], total)

        visit(self, self.step(self.bos), [], 0.0)
        return best


# --- Sampling ------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


class SplitMix64:
    """SplitMix64: s += 0x9E3779B97F4A7C15; z = s; z = (z ^ z>>30)·0xBF58476D1CE4E5B9;
    z = (z ^ z>>27)·0x94D049BB133111EB; output z ^ z>>31 (all modulo 2^64)."""

    def __init__(self, seed: int):
        self.state = int(seed) & _MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def next_unit(self) -> float:
        """A uniform double in [0, 1): the top 53 bits of ``next()`` divided by 2^53."""
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)


def _f32(v: float) -> float:
    return float(np.float32(v))


def pick(logits, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, uniform: float = 0.0,
         probabilities: bool = False) -> int:
    """The pure sampling rule: which token, given the uniform draw ``uniform`` in [0, 1).

    Logits are taken as float32 values, temperature and top-p as float32 parameters; the arithmetic is in
    double precision with sums accumulated left to right. With ``probabilities`` the scores are log(p).
    """
    vals = [float(v) for v in np.asarray(logits, dtype=np.float32).reshape(-1)]
    n = len(vals)
    if n == 0:
        raise ValueError("cannot sample from an empty vector")
    if probabilities:
        scores = [math.log(v) if v > 0 else -math.inf for v in vals]
    else:
        scores = vals
    T = _f32(temperature)
    if T == 0:
        best = 0
        for i in range(1, n):
            if scores[i] > scores[best]:
                best = i
        return best
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    if 0 < top_k < n:
        order = order[:top_k]
    top = scores[order[0]]
    p = [math.exp((scores[i] - top) / T) for i in order]
    total = 0.0
    for v in p:
        total += v
    p = [v / total for v in p]
    keep = len(p)
    P = _f32(top_p)
    if P < 1:
        cum = 0.0
        for i, v in enumerate(p):
            cum += v
            if cum >= P:
                keep = i + 1
                break
    mass = 0.0
    for v in p[:keep]:
        mass += v
    target = uniform * mass
    cum = 0.0
    for i in range(keep):
        cum += p[i]
        if target < cum:
            return order[i]
    return order[keep - 1]


class ReferenceSampler:
    """Temperature / top-k / top-p sampling with its own SplitMix64 stream (one draw per sample when the
    temperature is above zero, none when it is zero)."""

    def __init__(self, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0):
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0 (got {temperature})")
        if top_k < 0:
            raise ValueError(f"top-k must be >= 0 (got {top_k})")
        if not (0 < top_p <= 1):
            raise ValueError(f"top-p must be in (0, 1] (got {top_p})")
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.rng = SplitMix64(seed)

    def sample(self, logits, probabilities: bool = False) -> int:
        v = np.asarray(logits, dtype=np.float32).reshape(-1)
        if np.isnan(v).any() or (not probabilities and np.isposinf(v).any()):
            raise ValueError("the model produced a non-finite value; refusing to sample")
        u = self.rng.next_unit() if _f32(self.temperature) > 0 else 0.0
        return pick(v, self.temperature, self.top_k, self.top_p, u, probabilities)
