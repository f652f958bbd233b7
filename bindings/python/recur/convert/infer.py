"""The architecture of a Keras model that has no layer list: a subclassed ``keras.Model`` (or weights saved
without their config), inferred from its variables.

A reader turns its file into :class:`Module` objects — one per Keras layer that owns variables, named by
the attribute path the file records (``embedding_layer``, ``rnn_layer``, ``encoder/embedding``) with the
variables at paths relative to the layer, in Keras layout:

=====================================================  ==========================================
variables                                              layer
=====================================================  ==========================================
``embeddings`` [V, E]                                  ``Embedding``
``cell/kernel`` [In, G·H], ``cell/recurrent_kernel``   ``SimpleRNN`` (G = 1), ``GRU`` (3), ``LSTM`` (4)
[H, G·H], ``cell/bias``
``forward_layer/cell/…``, ``backward_layer/cell/…``    ``Bidirectional``
``kernel`` [In, U], ``bias`` [U]                       ``Dense``
``layer/kernel``, ``layer/bias``                       ``TimeDistributed(Dense)``
=====================================================  ==========================================

The cell kind follows from the recurrent kernel's shape, a GRU's ``reset_after`` from its bias ([2, 3H]
or [3H]), a Bidirectional layer's ``merge_mode`` from the width the next layer takes (2H: concat). The
order of the layers is the file's where it chains (each layer's input size is the previous one's output
size) and otherwise the one chain the sizes allow. What the variables cannot tell comes from options —
the recurrent activations (default tanh / sigmoid, Keras' defaults), the Dense activations
(``--dense-activations``; one Dense defaults to linear), the task (``--task``) — and every ambiguity is an
error naming the option that settles it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .common import GATES, ConvertError, Dense, Embedding, Options, Recurrent, f32
from .mapping import keras_activation, keras_dense, keras_direction

CELLS_BY_GATES = {1: "rnn", 3: "gru", 4: "lstm"}
CLASS_OF_CELL = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}


@dataclass
class Module:
    """One Keras layer's variables: ``vars`` maps a path relative to the layer to its array."""
    name: str
    vars: dict
    hint: str = ""                      # a class the file names (legacy ``gru_cell`` weight names), if any
    kind: str = ""
    notes: dict = field(default_factory=dict)


def module_kind(m: Module) -> str:
    keys = set(m.vars)
    if any(k.startswith(("forward_layer/", "backward_layer/")) for k in keys):
        need = {f"{d}_layer/cell/{v}" for d in ("forward", "backward") for v in ("kernel", "recurrent_kernel")}
        if not need <= keys:
            missing = sorted(need - keys)[0]
            raise ConvertError(f"layer '{m.name}' looks bidirectional but has no variable '{missing}'")
        return "bidirectional"
    if any(k.startswith("cell/") for k in keys):
        for v in ("kernel", "recurrent_kernel"):
            if f"cell/{v}" not in keys:
                raise ConvertError(f"layer '{m.name}' looks recurrent but has no variable 'cell/{v}'")
        return "recurrent"
    if keys == {"embeddings"}:
        return "embedding"
    kernel = m.vars.get("layer/kernel", m.vars.get("kernel"))
    if kernel is not None and np.asarray(kernel).ndim != 2:
        raise ConvertError(f"layer '{m.name}' has a kernel of shape {list(np.asarray(kernel).shape)}, so it is not a "
                           f"Dense layer (a convolution?); only Embedding, SimpleRNN, GRU, LSTM, Bidirectional, "
                           f"Dense and TimeDistributed(Dense) layers can be converted")
    if keys in ({"layer/kernel"}, {"layer/kernel", "layer/bias"}):
        return "time_distributed"
    if keys in ({"kernel"}, {"kernel", "bias"}):
        return "dense"
    raise ConvertError(f"layer '{m.name}' has variables {sorted(keys)}; only Embedding, SimpleRNN, GRU, LSTM, "
                       f"Bidirectional, Dense and TimeDistributed(Dense) layers can be inferred from variables")


def _recurrent_shape(m: Module, prefix: str):
    u = np.asarray(m.vars[prefix + "cell/recurrent_kernel"])
    k = np.asarray(m.vars[prefix + "cell/kernel"])
    if u.ndim != 2 or k.ndim != 2 or u.shape[0] < 1 or u.shape[1] % u.shape[0]:
        raise ConvertError(f"layer '{m.name}': {prefix}cell/recurrent_kernel has shape {list(u.shape)}; "
                           f"expected [H, G·H]")
    H = int(u.shape[0])
    G = int(u.shape[1]) // H
    if G not in CELLS_BY_GATES:
        raise ConvertError(f"layer '{m.name}': {prefix}cell/recurrent_kernel [{H}, {u.shape[1]}] has {G} gate "
                           f"blocks; expected 1 (SimpleRNN), 3 (GRU) or 4 (LSTM)")
    cell = CELLS_BY_GATES[G]
    if m.hint and m.hint != cell:
        raise ConvertError(f"layer '{m.name}': its variables are named like a {CLASS_OF_CELL[m.hint]} but have the "
                           f"shapes of a {CLASS_OF_CELL[cell]}")
    return cell, H, int(k.shape[0])


def _activation(name: Optional[str], default: str, major: Optional[int], what: str, option: str) -> str:
    if name is None:
        return default
    if name == "hard_sigmoid" and major is None:
        raise ConvertError(f"{option} hard_sigmoid depends on the Keras version, which the file does not record; "
                           f"give --keras-version (e.g. 2.15 or 3.6)")
    return keras_activation(name, major or 3, what)


def _recurrent(m: Module, prefix: str, width: int, opts: Options, major: Optional[int], label: str):
    cell, H, In = _recurrent_shape(m, prefix)
    if In != width:
        raise ConvertError(f"layer '{m.name}' expects input size {In} but the previous layer gives {width}")
    act = _activation(opts.activation, "tanh", major, f"layer '{m.name}' activation", "--activation")
    ract = "sigmoid"
    if cell != "rnn":
        ract = _activation(opts.recurrent_activation, "sigmoid", major, f"layer '{m.name}' recurrent activation",
                           "--recurrent-activation")
    b = m.vars.get(prefix + "cell/bias")
    reset_after = True
    if cell == "gru":
        if b is not None:
            reset_after = np.asarray(b).ndim == 2
            if opts.reset_after is not None and opts.reset_after != reset_after:
                raise ConvertError(f"layer '{m.name}': the GRU bias has shape {list(np.asarray(b).shape)}, which means "
                                   f"reset_after={reset_after}, but --{'' if opts.reset_after else 'no-'}reset-after "
                                   f"was given")
        elif opts.reset_after is None:
            raise ConvertError(f"layer '{m.name}': a GRU without a bias does not show whether reset_after is true; "
                               f"give --reset-after or --no-reset-after")
        else:
            reset_after = opts.reset_after
    d = keras_direction(cell, H, width, m.vars[prefix + "cell/kernel"], m.vars[prefix + "cell/recurrent_kernel"],
                        b, reset_after, label)
    extra = set(k for k in m.vars if k.startswith(prefix)) - {prefix + "cell/" + v for v in
                                                              ("kernel", "recurrent_kernel", "bias")}
    if extra:
        raise ConvertError(f"layer '{m.name}': unexpected variable '{sorted(extra)[0]}'")
    return dict(cell=cell, units=H, activation=act, recurrent_activation=ract, reset_after=reset_after), d


def _in_width(m: Module) -> int:
    if m.kind == "bidirectional":
        return _recurrent_shape(m, "forward_layer/")[2]
    if m.kind == "recurrent":
        return _recurrent_shape(m, "")[2]
    k = np.asarray(m.vars["layer/kernel" if m.kind == "time_distributed" else "kernel"])
    if k.ndim != 2:
        raise ConvertError(f"layer '{m.name}': kernel has shape {list(k.shape)}; expected [In, units]")
    return int(k.shape[0])


def _out_widths(m: Module, merge_mode: Optional[str]) -> list:
    """Widths the layer may output: a Bidirectional layer's depends on its merge mode."""
    if m.kind == "bidirectional":
        H = _recurrent_shape(m, "forward_layer/")[1]
        if merge_mode is None:
            return [2 * H, H]
        return [2 * H] if merge_mode == "concat" else [H]
    if m.kind == "recurrent":
        return [_recurrent_shape(m, "")[1]]
    k = np.asarray(m.vars["layer/kernel" if m.kind == "time_distributed" else "kernel"])
    return [int(k.shape[1])]


def order_modules(mods: list, width: int, opts: Options, ordered: bool, first: str = "") -> list:
    """Orders the non-embedding modules into the one chain their sizes allow: recurrent layers first, then
    dense layers. ``ordered``: the file's order is the model's (object graphs, legacy layer lists) and is
    kept wherever it fits; otherwise (Keras 3 files list layers by attribute name) a choice between two
    layers that fit is an error asking for --order."""
    if opts.order:
        by_name = {m.name: m for m in mods}
        missing = [n for n in opts.order if n not in by_name]
        if missing:
            raise ConvertError(f"--order names layer '{missing[0]}', which is not in the file "
                               f"(layers: {', '.join(m.name for m in mods)})")
        left = [m.name for m in mods if m.name not in opts.order]
        if left:
            raise ConvertError(f"--order leaves out layer '{left[0]}'")
        return [by_name[n] for n in opts.order]
    rec = [m for m in mods if m.kind in ("recurrent", "bidirectional")]
    dense = [m for m in mods if m.kind in ("dense", "time_distributed")]
    out = []
    widths = [width]
    for group, what in ((rec, "recurrent layers"), (dense, "dense layers")):
        rest = list(group)
        while rest:
            fits = [m for m in rest if _in_width(m) in widths]
            if not fits:
                names = ", ".join(f"'{m.name}' (input {_in_width(m)})" for m in rest)
                raise ConvertError(f"cannot chain the {what} by their sizes (after width {'/'.join(map(str, widths))}: "
                                   f"{names})")
            if len(fits) > 1 and not (ordered and fits[0] is rest[0]):
                names = ", ".join(f"'{m.name}'" for m in fits)
                raise ConvertError(f"the sizes do not tell the order of {names} (each takes input "
                                   f"{_in_width(fits[0])}); give it with --order (e.g. --order "
                                   f"{','.join(([first] if first else []) + [m.name for m in mods])})")
            pick = fits[0]
            out.append(pick)
            rest.remove(pick)
            widths = _out_widths(pick, opts.merge_mode)
    return out


def build(mods: list, opts: Options, major: Optional[int], origin: str, ordered: bool) -> list:
    """Modules → the converter's layer list (Embedding, Recurrent…, Dense…), tasks' return_sequences set by
    :func:`apply_task`."""
    if not mods:
        raise ConvertError(f"{origin}: no layer variables found")
    for m in mods:
        m.kind = module_kind(m)
    embs = [m for m in mods if m.kind == "embedding"]
    if not embs:
        raise ConvertError(f"{origin}: no embedding (a layer with one variable 'embeddings' [V, E])")
    if len(embs) > 1:
        raise ConvertError(f"{origin}: {len(embs)} embeddings ({', '.join(m.name for m in embs)}); an "
                           f"encoder-decoder converts with --task seq2seq")
    emb = embs[0]
    table = f32(emb.vars["embeddings"], f"layer '{emb.name}' embeddings")
    if table.ndim != 2:
        raise ConvertError(f"layer '{emb.name}': embeddings have shape {list(table.shape)}; expected [V, E]")
    layers: list = [Embedding(table=table, name=emb.name)]
    if opts.order and emb.name in opts.order:
        if opts.order[0] != emb.name:
            raise ConvertError(f"--order: the embedding '{emb.name}' must come first")
        opts = Options(**{**vars(opts), "order": [n for n in opts.order if n != emb.name]})
    rest = order_modules([m for m in mods if m is not emb], int(table.shape[1]), opts, ordered, emb.name)
    width = int(table.shape[1])
    dense_mods = [m for m in rest if m.kind in ("dense", "time_distributed")]
    acts = opts.dense_activations
    if acts is None:
        if len(dense_mods) > 1:
            raise ConvertError(f"{origin}: {len(dense_mods)} Dense layers ({', '.join(m.name for m in dense_mods)}); "
                               f"the variables do not record their activations: give --dense-activations "
                               f"(e.g. relu,sigmoid)")
        acts = ["linear"] * len(dense_mods)
    if len(acts) != len(dense_mods):
        raise ConvertError(f"--dense-activations lists {len(acts)} activations for {len(dense_mods)} Dense layers")
    act_of = dict(zip((m.name for m in dense_mods), acts))
    mj = major or 3
    for i, m in enumerate(rest):
        if m.kind in ("recurrent", "bidirectional") and layers and isinstance(layers[-1], Dense):
            raise ConvertError(f"layer '{m.name}' (recurrent) comes after a Dense layer")
        if m.kind == "recurrent":
            spec, d = _recurrent(m, "", width, opts, major, f"layer '{m.name}'")
            layers.append(Recurrent(input_size=width, directions=[d], name=m.name, return_sequences=True, **spec))
            width = spec["units"]
        elif m.kind == "bidirectional":
            fspec, fd = _recurrent(m, "forward_layer/", width, opts, major, f"layer '{m.name}' forward")
            bspec, bd = _recurrent(m, "backward_layer/", width, opts, major, f"layer '{m.name}' backward")
            for key in ("cell", "units", "reset_after"):
                if fspec[key] != bspec[key]:
                    raise ConvertError(f"layer '{m.name}' (Bidirectional): forward and backward layers differ in {key}")
            H = fspec["units"]
            mode = opts.merge_mode
            nxt = rest[i + 1] if i + 1 < len(rest) else None
            if mode is None:
                want = _in_width(nxt) if nxt is not None else 2 * H
                if want == 2 * H:
                    mode = "concat"
                else:
                    raise ConvertError(f"layer '{m.name}' (Bidirectional, {H} units per direction) feeds "
                                       f"'{nxt.name}', which takes {want} inputs, so its merge mode is not concat; "
                                       f"give --merge-mode sum, mul or ave")
            layers.append(Recurrent(input_size=width, directions=[fd, bd], name=m.name, merge_mode=mode,
                                    return_sequences=True, **fspec))
            width = layers[-1].output_size
        else:
            pre = "layer/" if m.kind == "time_distributed" else ""
            k = np.asarray(m.vars[pre + "kernel"])
            if k.ndim != 2:
                raise ConvertError(f"layer '{m.name}': kernel has shape {list(k.shape)}; expected [In, units]")
            kernel, bias = keras_dense(k, m.vars.get(pre + "bias"), int(k.shape[1]), width, f"layer '{m.name}'")
            act = keras_activation(act_of[m.name], mj, f"--dense-activations for '{m.name}'", allow_softmax=True)
            layers.append(Dense(kernel=kernel, bias=bias, name=m.name, activation=act,
                                per_step=m.kind == "time_distributed"))
            width = int(k.shape[1])
    return layers


def apply_task(layers: list, task: Optional[str], origin: str, what: str = "the variables") -> str:
    """Sets return_sequences for ``task`` (given, or inferred when the layers leave no doubt) and returns it."""
    rec = [l for l in layers if isinstance(l, Recurrent)]
    if not rec:
        raise ConvertError(f"{origin}: no recurrent layer")
    head = layers[-1]
    if task is None:
        if any(isinstance(l, Dense) and l.per_step for l in layers):
            task = "tag"
        elif (isinstance(head, Dense) and head.units == layers[0].vocabulary
              and not any(l.bidirectional for l in rec)):
            task = "generate"
        else:
            raise ConvertError(f"{origin}: {what} do not show whether the model classifies a whole sequence or "
                               f"tags every step (Keras' return_sequences); give --task classify or --task tag")
    if task == "classify":
        rec[-1].return_sequences = False
    return task


def split_pair(mods: list, origin: str):
    """(encoder modules, decoder modules) of one file holding both — a ``tf.train.Checkpoint(encoder=…,
    decoder=…)`` or a model with ``encoder`` and ``decoder`` attributes — named without their prefix;
    None when the file holds one model."""
    tops: dict = {}
    for m in mods:
        head, sep, rest = m.name.partition("/")
        tops.setdefault(head if sep else "", []).append(m)
    enc = [k for k in tops if k.lower().startswith("enc")]
    dec = [k for k in tops if k.lower().startswith("dec")]
    if not enc and not dec:
        return None
    if len(enc) != 1 or len(dec) != 1:
        raise ConvertError(f"{origin}: cannot tell the encoder and the decoder apart among {sorted(k for k in tops if k)} "
                           f"(one name starting with 'enc', one with 'dec'); or convert two files with --decoder")
    other = [k for k in tops if k not in (enc[0], dec[0])]
    if other:
        names = ", ".join(m.name for m in tops[other[0]])
        raise ConvertError(f"{origin}: layer variables outside the encoder and the decoder ({names})")
    strip = lambda ms: [Module(m.name.partition("/")[2], m.vars, m.hint) for m in ms]  # noqa: E731
    return strip(tops[enc[0]]), strip(tops[dec[0]])
