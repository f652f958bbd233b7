"""The architecture of a PyTorch model, inferred from its state_dict's names and shapes.

Supported: one ``nn.Embedding``, then ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` modules (any ``num_layers``,
``bidirectional``, ``bias``) or single ``nn.RNNCell`` / ``nn.GRUCell`` / ``nn.LSTMCell`` modules, then
``nn.Linear`` modules. Modules are told apart by their parameter names:

- ``X.weight`` alone, 2-D [V, E]: the embedding (or a Linear without bias);
- ``X.weight_ih_l{k}``, ``X.weight_hh_l{k}``, ``X.bias_ih_l{k}``, ``X.bias_hh_l{k}`` and their ``_reverse``
  twins: a recurrent module, layer k; the cell follows from ``weight_hh`` [G·H, H]: G = 1 RNN, 3 GRU, 4 LSTM;
- ``X.weight`` [out, in] with ``X.bias`` [out]: a Linear.

The stack's order is the state_dict's order where it chains (each module's input size equals the previous
one's output size), otherwise the unique chain the sizes allow; ``Options.order`` gives it explicitly.
What a state_dict does not record must come from options: the nonlinearity of ``nn.RNN`` (tanh unless
``nonlinearity='relu'``), the activations applied to Linear outputs (none unless ``dense_activations``), and
the task when the head is not a next-token generator.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np

from .common import GATES, ConvertError, Dense, Embedding, Options, Recurrent, Source, f32
from .mapping import torch_direction

HEADS = ("hn", "last-output")
_RNN_PARAM = re.compile(r"^(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")
_CELL_PARAM = re.compile(r"^(weight|bias)_(ih|hh)$")


def _modules(tensors: "OrderedDict") -> "OrderedDict[str, dict]":
    mods: OrderedDict = OrderedDict()
    for key, arr in tensors.items():
        mod, _, param = key.rpartition(".")
        mods.setdefault(mod, {})[param] = arr
    return mods


def _kind(name: str, params: dict) -> str:
    keys = set(params)
    if any(_RNN_PARAM.match(k) for k in keys):
        bad = [k for k in keys if not _RNN_PARAM.match(k)]
        if bad:
            raise ConvertError(f"module '{name}': unexpected parameter '{bad[0]}' beside recurrent weights")
        if any("_hr_" in k for k in keys):
            raise ConvertError(f"module '{name}': LSTM with proj_size (weight_hr) is not supported")
        return "rnn"
    if keys and all(_CELL_PARAM.match(k) for k in keys) and "weight_ih" in keys:
        return "cell"
    if keys == {"weight"} and params["weight"].ndim == 2:
        return "weight_only"
    if keys == {"weight", "bias"} and params["weight"].ndim == 2 and params["bias"].ndim == 1:
        return "linear"
    raise ConvertError(f"module '{name or '(root)'}' with parameters {sorted(keys)} is not an Embedding, "
                       f"RNN/GRU/LSTM or Linear layer; only Embedding → recurrent → Linear models are supported")


def _cell_name(G: int, name: str, forced) -> str:
    by_g = {1: "rnn", 3: "gru", 4: "lstm"}
    if G not in by_g:
        raise ConvertError(f"module '{name}': weight_hh has {G}·H rows; expected 1, 3 or 4 gate blocks")
    cell = by_g[G]
    if forced is not None and forced != cell:
        raise ConvertError(f"module '{name}' has the shapes of a {cell.upper()} (--cell {forced} was given)")
    return cell


def _recurrent_layers(name: str, params: dict, opts: Options) -> list:
    """The layers of one nn.RNN/GRU/LSTM module (or one cell module), in order."""
    is_cell = "weight_ih" in params
    if is_cell:
        sfx = lambda k, rev: ""                                             # noqa: E731
        n_layers, bidir = 1, False
    else:
        idx = [int(_RNN_PARAM.match(k).group(3)) for k in params]
        n_layers = max(idx) + 1
        bidir = any(k.endswith("_reverse") for k in params)
        sfx = lambda k, rev: f"_l{k}" + ("_reverse" if rev else "")         # noqa: E731

    def get(p, k, rev, required=True):
        key = p + sfx(k, rev)
        if key not in params:
            if required:
                raise ConvertError(f"module '{name}': missing '{name}.{key}'")
            return None
        return params[key]

    whh0 = get("weight_hh", 0, False)
    if whh0.ndim != 2 or whh0.shape[1] == 0 or whh0.shape[0] % whh0.shape[1]:
        raise ConvertError(f"'{name}.weight_hh{sfx(0, False)}' has shape {list(whh0.shape)}; expected [G·H, H]")
    H = int(whh0.shape[1])
    cell = _cell_name(whh0.shape[0] // H, name, opts.cell)
    act = "tanh"
    if cell == "rnn" and opts.nonlinearity:
        if opts.nonlinearity not in ("tanh", "relu"):
            raise ConvertError(f"nonlinearity '{opts.nonlinearity}' is not one of tanh, relu")
        act = opts.nonlinearity
    has_bias = get("bias_ih", 0, False, required=False) is not None
    layers = []
    for k in range(n_layers):
        dirs = []
        w0 = get("weight_ih", k, False)
        if w0.ndim != 2:
            raise ConvertError(f"'{name}.weight_ih{sfx(k, False)}' has shape {list(w0.shape)}; expected 2-D")
        In = int(w0.shape[1])
        for rev in ([False, True] if bidir else [False]):
            what = f"'{name}' layer {k}" + (" reverse" if rev else "")
            b_ih = get("bias_ih", k, rev, required=has_bias)
            b_hh = get("bias_hh", k, rev, required=has_bias)
            dirs.append(torch_direction(cell, H, In, get("weight_ih", k, rev), get("weight_hh", k, rev),
                                        b_ih, b_hh, what))
        layers.append(Recurrent(cell=cell, input_size=In, units=H, directions=dirs,
                                name=name if n_layers == 1 else f"{name}.l{k}", activation=act,
                                recurrent_activation="sigmoid", reset_after=True))
    expect = {k for k in params}
    used = set()
    for k in range(n_layers):
        for rev in ([False, True] if bidir else [False]):
            for p in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if has_bias else ()):
                used.add(p + sfx(k, rev))
    extra = sorted(expect - used)
    if extra:
        raise ConvertError(f"module '{name}': unexpected parameter '{name}.{extra[0]}'")
    return layers


def _chain(items: list, width: int, size_in, what: str, explicit: bool) -> list:
    """Orders items (name, ..., out width) so that each one's input size equals the previous output. An
    explicit order is only checked; otherwise the given order is kept wherever it fits, and where it does
    not, the single item that fits is taken."""
    ordered, rest = [], list(items)
    while rest:
        if explicit or size_in(rest[0]) == width:
            pick = rest[0]
        else:
            fits = [it for it in rest if size_in(it) == width]
            if len(fits) != 1:
                names = ", ".join(f"'{it[0]}' (input {size_in(it)})" for it in rest)
                raise ConvertError(f"cannot order the {what} by their sizes (after width {width}: {names}); "
                                   f"give the order with --order")
            pick = fits[0]
        if size_in(pick) != width:
            raise ConvertError(f"module '{pick[0]}' expects input size {size_in(pick)} but the previous layer "
                               f"gives {width}")
        ordered.append(pick)
        rest.remove(pick)
        width = pick[2]
    return ordered


def split_pair(tensors: "OrderedDict", origin: str):
    """(encoder tensors, decoder tensors) of a state_dict whose keys start with ``encoder.`` and
    ``decoder.`` (a module holding both), prefixes removed; None when there are no such prefixes."""
    enc: OrderedDict = OrderedDict()
    dec: OrderedDict = OrderedDict()
    other = []
    for k, v in tensors.items():
        head, _, rest = k.partition(".")
        if head in ("encoder", "enc"):
            enc[rest] = v
        elif head in ("decoder", "dec"):
            dec[rest] = v
        else:
            other.append(k)
    if not enc and not dec:
        return None
    if not enc or not dec:
        raise ConvertError(f"{origin}: keys start with '{'encoder' if enc else 'decoder'}.' but none with "
                           f"'{'decoder' if enc else 'encoder'}.'; give the other half with --decoder")
    if other:
        raise ConvertError(f"{origin}: tensor '{other[0]}' belongs neither to the encoder nor to the decoder")
    return enc, dec


def read(tensors: "OrderedDict", opts: Options, fmt: str, origin: str) -> Source:
    # --- frame models (no embedding: nn.GRU(input_size=F) ...): torch_frames.py ---
    from . import torch_frames
    if torch_frames.wanted(tensors, opts):
        return torch_frames.read(tensors, opts, fmt, origin)
    # --- end frame models ---
    try:
        return _read(tensors, opts, fmt, origin)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as e:
        raise ConvertError(f"{origin}: unexpected tensors ({type(e).__name__}: {e})") from None


def ordered_modules(tensors: "OrderedDict", opts: Options):
    """The state_dict's modules (name → parameters) in stack order — the file's, or --order's, checked to
    name each module once — and the kind of each."""
    mods = _modules(tensors)
    if opts.order:
        missing = [m for m in opts.order if m not in mods]
        if missing:
            raise ConvertError(f"--order names module '{missing[0]}', which is not in the file "
                               f"(modules: {', '.join(mods)})")
        left = [m for m in mods if m not in opts.order]
        if left:
            raise ConvertError(f"--order leaves out module '{left[0]}'")
        mods = OrderedDict((m, mods[m]) for m in opts.order)
    return mods, OrderedDict((m, _kind(m, p)) for m, p in mods.items())


def append_recurrent(layers: list, rec_items, width: int) -> int:
    """Appends the recurrent layers of the chained modules, each checked to read the width before it;
    returns the last one's output width."""
    for _, ls, _ in rec_items:
        for l in ls:
            if l.input_size != width:
                raise ConvertError(f"layer '{l.name}' expects input size {l.input_size} but the previous layer "
                                   f"gives {width}")
            layers.append(l)
            width = l.output_size
    return width


def _read(tensors: "OrderedDict", opts: Options, fmt: str, origin: str) -> Source:
    if not tensors:
        raise ConvertError(f"{origin}: no tensors")
    mods, kinds = ordered_modules(tensors, opts)

    rnn_mods = [m for m, k in kinds.items() if k in ("rnn", "cell")]
    if not rnn_mods:
        raise ConvertError(f"{origin}: no recurrent module (keys like 'rnn.weight_ih_l0') found")
    weight_only = [m for m, k in kinds.items() if k == "weight_only"]
    # The embedding: a weight-only module named like one, else the first weight-only module.
    named = [m for m in weight_only if "emb" in m.lower()]
    if len(named) == 1:
        emb_name = named[0]
    elif weight_only:
        emb_name = weight_only[0]
    else:
        raise ConvertError(f"{origin}: no embedding (a module with a single 2-D 'weight', e.g. 'embed.weight')")
    table = f32(mods[emb_name]["weight"], f"'{emb_name}.weight'")
    layers: list = [Embedding(table=table, name=emb_name)]

    # Recurrent modules: (name, layers, out width); their input size is their first layer's.
    rec_items = []
    for m in rnn_mods:
        ls = _recurrent_layers(m, mods[m], opts)
        rec_items.append((m, ls, ls[-1].output_size))
    rec_items = _chain(rec_items, table.shape[1], lambda it: it[1][0].input_size, "recurrent modules",
                       bool(opts.order))
    width = append_recurrent(layers, rec_items, table.shape[1])

    lin_items = []
    for m, k in kinds.items():
        if m == emb_name or k not in ("linear", "weight_only"):
            continue
        w = mods[m]["weight"]
        lin_items.append((m, mods[m], int(w.shape[0]), int(w.shape[1])))
    lin_items = [(m, p, o) for m, p, o, _ in _chain([(m, p, o, i) for m, p, o, i in lin_items], width,
                                                    lambda it: it[3], "Linear modules", bool(opts.order))]
    acts = opts.dense_activations
    if acts is None:
        if len(lin_items) > 1:
            raise ConvertError(f"{origin}: {len(lin_items)} Linear modules ({', '.join(m for m, _, _ in lin_items)}); "
                               f"the state_dict does not record the activations between them: give "
                               f"--dense-activations (e.g. relu,linear)")
        acts = ["linear"] * len(lin_items)
    if len(acts) != len(lin_items):
        raise ConvertError(f"--dense-activations lists {len(acts)} activations for {len(lin_items)} Linear modules")
    for (m, p, out), a in zip(lin_items, acts):
        w = f32(p["weight"], f"'{m}.weight'")
        b = f32(p["bias"], f"'{m}.bias'") if "bias" in p else None
        if b is not None and b.shape != (out,):
            raise ConvertError(f"'{m}.bias' has shape {list(b.shape)}, expected [{out}]")
        layers.append(Dense(kernel=w, bias=b if b is not None else np.zeros(out, np.float32), name=m,
                            activation=a))
    notes: dict = {}
    if opts.mask_zero is not None:
        # A state_dict does not show whether the training packed its padded batches (pack_padded_sequence:
        # PAD steps skipped, the default) or ran them (--no-mask-zero).
        notes["mask_zero"] = bool(opts.mask_zero)
    if opts.head is not None and opts.head not in HEADS:
        raise ConvertError(f"--head must be one of {', '.join(HEADS)} (not '{opts.head}')")
    if opts.head is not None and opts.task != "classify":
        raise ConvertError("--head applies to classifiers only (--task classify)")
    if opts.task == "classify":
        last = [l for l in layers if isinstance(l, Recurrent)][-1]
        head = opts.head
        if head is None:
            if last.bidirectional:
                raise ConvertError(f"{origin}: the state_dict does not show what the classifier's head reads from the "
                                   f"bidirectional layer '{last.name}': give --head hn (h_n: cat(h_n[-2], h_n[-1]), each "
                                   f"direction's final state) or --head last-output (output[:, -1]: the forward "
                                   f"direction's last step and the backward direction's first)")
            head = "hn"
        # h_n: each direction's final state (return_sequences off); output[:, -1]: the per-step output at
        # the last step, which the runtime's classifier reads when the layer returns sequences.
        last.return_sequences = head != "hn"
        notes["assumptions"] = [("head h_n" if head == "hn" else "head output[:, -1]")
                                + ("" if last.bidirectional else " (the same for a unidirectional layer)")]
    elif opts.task is None:
        rec = [l for l in layers if isinstance(l, Recurrent)]
        head = layers[-1]
        if any(l.bidirectional for l in rec) or not isinstance(head, Dense) or head.units != table.shape[0]:
            raise ConvertError(f"{origin}: the model's output is not one logit per vocabulary token, so it is "
                               f"not a generator; give --task classify (last step, like h_n) or --task tag "
                               f"(every step)")
    return Source(layers=layers, format=fmt, notes=notes)
