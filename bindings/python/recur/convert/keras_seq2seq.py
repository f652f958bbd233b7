"""Keras functional encoder-decoders: two inputs, the encoder's final states starting the decoder, and
optionally ``keras.layers.Attention`` / ``AdditiveAttention`` over the encoder's outputs, as the Keras
NMT examples build them::

    enc_in = Input((None,)); x = Embedding(Vs, E, mask_zero=True)(enc_in)
    enc_out, h = GRU(H, return_sequences=True, return_state=True)(x)      # LSTM: h, c; Bidirectional: states
    dec_in = Input((None,)); y = Embedding(Vt, E, mask_zero=True)(dec_in)  # concatenated for a 2H decoder
    dec_out = GRU(H, return_sequences=True)(y, initial_state=h)
    ctx = Attention()([dec_out, enc_out])                                 # or AdditiveAttention
    z = Concatenate()([ctx, dec_out])                                     # or [dec_out, ctx]
    z = Dense(U, activation="tanh")(z)                                    # optional
    out = Dense(Vt, activation="softmax")(z)

The graph is walked back from the model's output along the layers' data inputs (``mask=`` arguments and
the mask ops Keras 3 records for them are not followed: the runtime's masking is the embeddings'
``mask_zero``). Each Keras score is mapped onto a score of docs/FORMAT.md §13.9:

- ``Attention()`` (q·k) → ``dot``; ``Attention(use_scale=True)`` (scale · q·k) → ``general`` with
  W_a = scale · I;
- ``Attention(score_mode="concat")`` (w · Σ tanh(scale · (q + k)), scale 1 without use_scale) → ``additive``
  with W_q = W_k = scale · I and v = w · 1;
- ``AdditiveAttention`` (Σ scale ⊙ tanh(q + k), scale 1 without use_scale) → ``additive`` with
  W_q = W_k = I and v = scale.

``Concatenate()([ctx, dec_out])`` is ``combine = none`` ([c_t; h_t]); ``[dec_out, ctx]`` too, with the two
column blocks of the next Dense kernel swapped. A ``Dense(U, activation="tanh")`` right after it (with
more Dense layers after) becomes ``combine = tanh``. Anything else — a key that is not the value, a causal
mask, a query that is not the decoder's recurrent output, a decoder that does not start from the
encoder's final states — is refused.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .common import Attention, ConvertError, Dense, Embedding, Recurrent, Source, f32

ATTENTION_CLASSES = ("Attention", "AdditiveAttention")
HEAD_CLASSES = ("Dense", "TimeDistributed", "Activation")


def _layers(cfg: dict) -> list:
    inner = cfg.get("config") if isinstance(cfg, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    return layers if isinstance(layers, list) else []


def is_graph(cfg: dict) -> bool:
    """Whether a model config is a functional model with two or more inputs or an attention layer: an
    encoder-decoder for this module (other configs go to the linear-stack reader)."""
    if not isinstance(cfg, dict) or cfg.get("class_name") not in ("Functional", "Model"):
        return False
    layers = [l for l in _layers(cfg) if isinstance(l, dict)]
    inputs = [l for l in layers if l.get("class_name") == "InputLayer"]
    return len(inputs) >= 2 or any(l.get("class_name") in ATTENTION_CLASSES for l in layers)


# --- Nodes: a layer's call, in the Keras 3 and Keras 2 config formats ----------------------------------

class Ref(tuple):
    """A tensor: (layer name, node index, tensor index)."""

    @property
    def layer(self) -> str:
        return self[0]

    @property
    def index(self) -> int:
        return self[2]


def _ref3(x) -> Optional[Ref]:
    if isinstance(x, dict) and isinstance(x.get("config"), dict):
        h = x["config"].get("keras_history")
        if isinstance(h, list) and len(h) == 3 and isinstance(h[0], str):
            return Ref((h[0], int(h[1]), int(h[2])))
    return None


def _refs3(x) -> list:
    """The tensors of a Keras 3 call argument (a tensor or a list of them)."""
    r = _ref3(x)
    if r is not None:
        return [r]
    if isinstance(x, list):
        return [t for v in x for t in _refs3(v)]
    return []


class Node:
    """One call of a layer: its data inputs, its initial states (RNN layers) and its other arguments."""

    def __init__(self, layer: dict):
        cls, name = layer["class_name"], layer["config"].get("name")
        nodes = layer.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise ConvertError(f"layer '{name}' ({cls}): malformed inbound_nodes")
        if len(nodes) > 1:
            raise ConvertError(f"layer '{name}' ({cls}) is called {len(nodes)} times (a shared layer); not supported")
        self.inputs, self.states, self.kwargs = [], [], {}
        if not nodes:
            return
        node = nodes[0]
        if isinstance(node, dict):                      # Keras 3: {"args": [...], "kwargs": {...}}
            args, kwargs = node.get("args", []), node.get("kwargs", {}) or {}
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise ConvertError(f"layer '{name}' ({cls}): malformed inbound node")
            self.inputs = _refs3(args[0]) if args else []
            if any(_refs3(a) for a in args[1:]):
                raise ConvertError(f"layer '{name}' ({cls}) takes tensors as more than one positional argument; "
                                   f"not supported")
            for k, v in kwargs.items():
                if k == "initial_state":
                    self.states = _refs3(v)
                elif k != "mask":                       # masks: the embeddings' mask_zero
                    self.kwargs[k] = v
        elif isinstance(node, list):                    # Keras 2: [[name, node, tensor, kwargs], ...]
            for entry in node:
                if not (isinstance(entry, list) and len(entry) >= 3 and isinstance(entry[0], str)):
                    raise ConvertError(f"layer '{name}' ({cls}): malformed inbound node")
                self.inputs.append(Ref((entry[0], int(entry[1]), int(entry[2]))))
                if len(entry) > 3 and isinstance(entry[3], dict):
                    self.kwargs.update({k: v for k, v in entry[3].items() if k != "mask"})
            if "initial_state" in self.kwargs:          # tf.keras writes states after the input instead
                self.kwargs.pop("initial_state")
        else:
            raise ConvertError(f"layer '{name}' ({cls}): malformed inbound node")


# --- The walk -----------------------------------------------------------------------------------------

class _Nodes(dict):
    def __init__(self, layers: dict):
        super().__init__()
        self.layers = layers

    def __missing__(self, name: str) -> Node:
        node = self[name] = Node(self.layers[name])
        return node


class Graph:
    def __init__(self, cfg: dict, origin: str):
        from .keras import NO_OPS, RNN_CLASSES
        self.origin = origin
        self.rnn_classes = RNN_CLASSES
        self.no_ops = NO_OPS
        self.by_name: dict = {}
        self.order: list = []
        for i, l in enumerate(_layers(cfg)):
            if not isinstance(l, dict) or not isinstance(l.get("config"), dict) or "class_name" not in l:
                raise ConvertError(f"layer {i} of the config is malformed")
            name = l["config"].get("name")
            if not isinstance(name, str) or name in self.by_name:
                raise ConvertError(f"layer {i} of the config has no name, or a name used twice ({name!r})")
            self.by_name[name] = l
            self.order.append(name)
        self.nodes = _Nodes(self.by_name)     # made when visited: the mask ops are never read
        inner = cfg["config"]
        outs = inner.get("output_layers")
        if isinstance(outs, list) and len(outs) == 3 and isinstance(outs[0], str):
            outs = [outs]                                # Keras 3 writes a single output unnested
        if not isinstance(outs, list) or len(outs) != 1 or not isinstance(outs[0], list) or len(outs[0]) < 3:
            n = len(outs) if isinstance(outs, list) else 0
            raise ConvertError(f"{origin}: the model has {n} outputs; an encoder-decoder has one, the target "
                               f"vocabulary's probabilities or logits")
        self.output = Ref((outs[0][0], int(outs[0][1]), int(outs[0][2])))
        self.used: set = set()

    def cls(self, name: str) -> str:
        return self.by_name[name]["class_name"]

    def cfg(self, name: str) -> dict:
        return self.by_name[name]["config"]

    def layer_of(self, ref: Ref) -> str:
        if ref.layer not in self.by_name:
            raise ConvertError(f"{self.origin}: the config refers to layer '{ref.layer}', which it does not hold")
        return ref.layer

    def skip(self, ref: Ref) -> Ref:
        """Follows Dropout-like layers (identities at inference) back to the tensor they pass on."""
        while self.cls(self.layer_of(ref)) in self.no_ops:
            self.used.add(ref.layer)
            ins = self.nodes[ref.layer].inputs
            if len(ins) != 1:
                raise ConvertError(f"layer '{ref.layer}' ({self.cls(ref.layer)}) takes {len(ins)} inputs")
            ref = ins[0]
        return ref

    def single_input(self, name: str) -> Ref:
        ins = self.nodes[name].inputs
        if len(ins) != 1:
            raise ConvertError(f"layer '{name}' ({self.cls(name)}) takes {len(ins)} inputs, expected one")
        return self.skip(ins[0])

    def stack(self, top: Ref, what: str) -> tuple:
        """The Embedding → recurrent layers chain ending in ``top``: (input layer, embedding, [RNN names])."""
        rnns = []
        ref = self.skip(top)
        while True:
            name = self.layer_of(ref)
            cls = self.cls(name)
            if cls in self.rnn_classes or cls == "Bidirectional":
                if ref.index != 0:
                    raise ConvertError(f"the {what} reads state {ref.index} of layer '{name}' ({cls}) as its "
                                       f"input; expected its outputs")
                rnns.insert(0, name)
                ins = self.nodes[name].inputs
                if cls in self.rnn_classes and len(ins) > 1 and not self.nodes[name].states:
                    self.nodes[name].states = ins[1:]     # Keras 2: the states follow the input
                if not ins:
                    raise ConvertError(f"layer '{name}' ({cls}) has no input")
                ref = self.skip(ins[0])
            elif cls == "Embedding":
                inp = self.single_input(name)
                if self.cls(self.layer_of(inp)) != "InputLayer":
                    raise ConvertError(f"the {what}'s Embedding '{name}' reads '{inp.layer}' "
                                       f"({self.cls(inp.layer)}), not a model input")
                return inp.layer, name, rnns
            else:
                raise ConvertError(f"the {what} has layer '{name}' of class {cls}; an encoder or decoder is an "
                                   f"Embedding and recurrent layers (SimpleRNN, GRU, LSTM, Bidirectional)")

    def state_sources(self, dec: str) -> list:
        """The tensors a decoder RNN's initial_state is made of, each as a list of encoder state tensors (a
        Concatenate of states, in order, or one state tensor)."""
        out = []
        for s in self.nodes[dec].states:
            s = self.skip(s)
            name = self.layer_of(s)
            if self.cls(name) == "Concatenate":
                self.used.add(name)
                axis = self.cfg(name).get("axis", -1)
                if axis not in (-1, 1):
                    raise ConvertError(f"layer '{name}' (Concatenate) joins the states along axis {axis}")
                out.append([self.skip(x) for x in self.nodes[name].inputs])
            else:
                out.append([s])
        return out


def _expected_states(g: Graph, enc: str) -> list:
    """The initial_state a decoder layer must take from encoder layer ``enc``: per state vector (h, then c
    for LSTM), the encoder's state tensors it is made of ([forward, backward] for a Bidirectional)."""
    cls = g.cls(enc)
    if cls == "Bidirectional":
        inner = g.cfg(enc).get("layer", {}).get("class_name")
        n = 2 if g.rnn_classes.get(inner) == "lstm" else 1
        return [[Ref((enc, 0, 1 + k)), Ref((enc, 0, 1 + n + k))] for k in range(n)]
    n = 2 if g.rnn_classes[cls] == "lstm" else 1
    return [[Ref((enc, 0, 1 + k))] for k in range(n)]


def _check_wiring(g: Graph, enc_rnns: list, dec_rnns: list) -> None:
    if len(enc_rnns) != len(dec_rnns):
        raise ConvertError(f"the encoder has {len(enc_rnns)} recurrent layers and the decoder {len(dec_rnns)}; each "
                           f"decoder layer starts from the final states of the encoder layer of its depth")
    for enc, dec in zip(enc_rnns, dec_rnns):
        got = g.state_sources(dec)
        want = _expected_states(g, enc)
        if not got:
            raise ConvertError(f"the decoder layer '{dec}' has no initial_state; the runtime starts every decoder "
                               f"layer from the encoder's final states")
        if [[tuple(r) for r in x] for x in got] != [[tuple(r) for r in x] for x in want]:
            def show(x):
                return "[" + ", ".join("+".join(f"{r.layer}[{r.index}]" for r in part) for part in x) + "]"
            raise ConvertError(f"the decoder layer '{dec}' starts from {show(got)}, not from the final states of "
                               f"encoder layer '{enc}' {show(want)} (a Bidirectional's forward and backward states "
                               f"concatenated)")
        if not g.cfg(enc).get("return_state") and g.cls(enc) != "Bidirectional":
            raise ConvertError(f"encoder layer '{enc}' does not return its state")


def read(cfg: dict, make_weights, version, fmt: str, origin: str, opts) -> Source:
    from .keras import _major
    g = Graph(cfg, origin)
    mj = _major(version)
    inputs = [n for n in g.order if g.cls(n) == "InputLayer"]
    has_attention = any(g.cls(n) in ATTENTION_CLASSES for n in g.order)
    if opts.task != "seq2seq":
        what = "an encoder-decoder with attention" if has_attention else f"a model with {len(inputs)} inputs"
        raise ConvertError(f"{origin} is {what} ({', '.join(repr(n) for n in inputs)}); convert an "
                           f"encoder-decoder with --task seq2seq (and --source-vocab)")
    if len(inputs) != 2:
        raise ConvertError(f"{origin}: an encoder-decoder has two inputs (source and target); this model has "
                           f"{len(inputs)}")

    # The head: Dense / TimeDistributed(Dense) / Activation layers back from the output.
    head = []
    ref = g.skip(g.output)
    while g.cls(g.layer_of(ref)) in HEAD_CLASSES:
        head.insert(0, ref.layer)
        ref = g.single_input(ref.layer)
    attention_name = None
    query = ref
    order = "ch"
    joint = g.layer_of(ref)
    if g.cls(joint) == "Concatenate":
        g.used.add(joint)
        axis = g.cfg(joint).get("axis", -1)
        parts = [g.skip(x) for x in g.nodes[joint].inputs]
        att = [i for i, p in enumerate(parts) if g.cls(g.layer_of(p)) in ATTENTION_CLASSES]
        if axis not in (-1, 2) or len(parts) != 2 or len(att) != 1:
            raise ConvertError(f"layer '{joint}' (Concatenate) joins {[p.layer for p in parts]} along axis {axis}; "
                               f"expected the attention's context and the decoder's outputs, along the last axis")
        attention_name = parts[att[0]].layer
        if parts[att[0]].index != 0:
            raise ConvertError(f"layer '{joint}' (Concatenate) reads the attention scores of '{attention_name}' "
                               f"(return_attention_scores), not its context")
        query = parts[1 - att[0]]
        order = "ch" if att[0] == 0 else "hc"
    elif g.cls(joint) in ATTENTION_CLASSES:
        raise ConvertError(f"the Dense head reads the context of '{joint}' ({g.cls(joint)}) alone; the runtime's "
                           f"attention outputs [context; decoder output] (Concatenate them) or tanh(W_c [c; h])")
    elif has_attention:
        a = next(n for n in g.order if g.cls(n) in ATTENTION_CLASSES)
        raise ConvertError(f"the attention layer '{a}' does not feed the Dense head through a Concatenate with the "
                           f"decoder's outputs; not supported")

    memory = None
    if attention_name is not None:
        g.used.add(attention_name)
        acls, acfg = g.cls(attention_name), g.cfg(attention_name)
        node = g.nodes[attention_name]
        for k in ("use_causal_mask", "causal"):
            if node.kwargs.get(k) or acfg.get(k):
                raise ConvertError(f"layer '{attention_name}' ({acls}): a causal mask (decoder self-attention) is "
                                   f"not supported; only attention over the encoder's outputs")
        ins = [g.skip(x) for x in node.inputs]
        if len(ins) not in (2, 3):
            raise ConvertError(f"layer '{attention_name}' ({acls}) takes {len(ins)} inputs; expected [query, value]")
        if len(ins) == 3 and tuple(ins[2]) != tuple(ins[1]):
            raise ConvertError(f"layer '{attention_name}' ({acls}): its key ('{ins[2].layer}') is not its value "
                               f"('{ins[1].layer}'); the runtime attends with the encoder's outputs as both")
        if tuple(ins[0]) != tuple(query):
            raise ConvertError(f"layer '{attention_name}' ({acls}): its query is '{ins[0].layer}', not the decoder "
                               f"output '{query.layer}' it is concatenated with")
        memory = ins[1]

    # The decoder (the query's stack) and the encoder (the memory's, or the one the states come from).
    dec_input, dec_emb, dec_rnns = g.stack(query, "decoder")
    if not dec_rnns:
        raise ConvertError(f"the decoder ('{dec_emb}') has no recurrent layer")
    if memory is not None:
        enc_input, enc_emb, enc_rnns = g.stack(memory, "encoder")
        if not enc_rnns:
            raise ConvertError(f"layer '{attention_name}' attends over the embedding '{enc_emb}'; expected the "
                               f"encoder's recurrent outputs")
    else:
        srcs = g.state_sources(dec_rnns[0])
        if not srcs:
            raise ConvertError(f"the decoder layer '{dec_rnns[0]}' has no initial_state; nothing connects it to "
                               f"an encoder")
        enc_input, enc_emb, enc_rnns = g.stack(Ref((srcs[0][0].layer, 0, 0)), "encoder")
    if enc_input == dec_input:
        raise ConvertError(f"the encoder and the decoder read the same input '{enc_input}'")
    for n in dec_rnns + enc_rnns[:-1] + ([enc_rnns[-1]] if memory is not None else []):
        c = g.cfg(n) if g.cls(n) != "Bidirectional" else g.cfg(n).get("layer", {}).get("config", {})
        if not c.get("return_sequences"):
            raise ConvertError(f"layer '{n}' ({g.cls(n)}) must return sequences (return_sequences=True)")
    for n in enc_rnns:
        if g.cls(n) == "Bidirectional" and g.cfg(n).get("merge_mode", "concat") != "concat":
            raise ConvertError(f"encoder layer '{n}' (Bidirectional): merge_mode "
                               f"{g.cfg(n).get('merge_mode')!r}; with attention only concat is supported")
    _check_wiring(g, enc_rnns, dec_rnns)
    g.used.update([enc_input, dec_input, enc_emb, dec_emb] + enc_rnns + dec_rnns + head)

    # Weights, read in the config's order (TF checkpoints number the layers that have weights).
    weights = make_weights()
    w_of: dict = {}
    weighted = 0
    for index, name in enumerate(g.order):
        cls, c = g.cls(name), g.cfg(name)
        if not _has_weights(cls, c):
            continue
        if name not in g.used:
            raise ConvertError(f"layer '{name}' ({cls}) is not on the path from the inputs to the output; not "
                               f"supported")
        w_of[name] = weights.layer(index, cls, c, weighted)
        weighted += 1
    weights.finish()
    for n in g.order:
        if n not in g.used and g.cls(n) in (g.rnn_classes.keys() | {"Embedding", "Dense", "Bidirectional"}):
            raise ConvertError(f"layer '{n}' ({g.cls(n)}) is not on the path from the inputs to the output")

    encoder = _stack_layers(g, enc_emb, enc_rnns, w_of, mj)
    decoder = _stack_layers(g, dec_emb, dec_rnns, w_of, mj)
    width = decoder[-1].output_size
    if attention_name is not None:
        M = encoder[-1].output_size
        attention = _attention(g, attention_name, w_of.pop(attention_name, {}), width, M)
        width = M + width
    head_layers = _head(g, head, w_of, width, mj)
    if attention_name is not None:
        if order == "hc":            # Keras gives [h_t; c_t]: the runtime's [c_t; h_t] with the columns swapped
            first = head_layers[0]
            Q = attention.input_size
            first.kernel = np.ascontiguousarray(np.concatenate([first.kernel[:, Q:], first.kernel[:, :Q]], axis=1))
        first = head_layers[0]
        if first.activation == "tanh" and len(head_layers) > 1:
            attention.combine, attention.kernel, attention.bias = "tanh", first.kernel, first.bias
            head_layers = head_layers[1:]
        decoder.append(attention)
    if not head_layers:
        raise ConvertError(f"{origin}: the decoder has no Dense layer over the target vocabulary")
    decoder += head_layers
    for n, w in w_of.items():
        if w:
            raise ConvertError(f"layer '{n}' ({g.cls(n)}): unexpected weight '{sorted(w)[0]}'")
    notes = {"keras.version": str(version)} if version else {}
    notes["mask_zero"] = bool(encoder[0].mask_zero)
    notes["target_mask_zero"] = bool(decoder[0].mask_zero)
    return Source(layers=decoder, format=fmt, framework_version=str(version or ""), notes=notes, encoder=encoder)


def _has_weights(cls: str, cfg: dict) -> bool:
    from .keras import RNN_CLASSES
    if cls in ("Embedding", "Dense", "TimeDistributed", "Bidirectional") or cls in RNN_CLASSES:
        return True
    if cls == "Attention":
        return bool(cfg.get("use_scale")) or cfg.get("score_mode") == "concat"
    if cls == "AdditiveAttention":
        return bool(cfg.get("use_scale", True))
    return False


def _stack_layers(g: Graph, emb: str, rnns: list, w_of: dict, mj) -> list:
    from .keras import _recurrent, _take, bidirectional
    major = mj if mj is not None else 3
    c = g.cfg(emb)
    w = w_of[emb]
    table = f32(_take(w, "embeddings", emb, "Embedding"), f"layer '{emb}' embeddings")
    V, E = c.get("input_dim"), c.get("output_dim")
    if tuple(table.shape) != (V, E):
        raise ConvertError(f"layer '{emb}' (Embedding) embeddings have shape {list(table.shape)}, expected "
                           f"[{V}, {E}] (input_dim, output_dim)")
    layers = [Embedding(table=table, name=emb, mask_zero=bool(c.get("mask_zero", False)))]
    width = E
    for n in rnns:
        cls, w = g.cls(n), w_of[n]
        if cls == "Bidirectional":
            layers.append(bidirectional(g.cfg(n), w, width, major, n))
        else:
            spec, d = _recurrent(cls, g.cfg(n), w, "", width, major, n)
            layers.append(Recurrent(input_size=width, directions=[d], name=n, **spec))
        layers[-1].return_sequences = True
        width = layers[-1].output_size
    return layers


def _attention(g: Graph, name: str, w: dict, Q: int, M: int) -> Attention:
    cls, c = g.cls(name), g.cfg(name)
    if Q != M:
        raise ConvertError(f"layer '{name}' ({cls}): the decoder's outputs ({Q}) and the encoder's ({M}) differ in "
                           f"width, which Keras' {cls} cannot score")

    def scalar(key, default=None):
        if key not in w:
            if default is None:
                raise ConvertError(f"layer '{name}' ({cls}): missing weight '{key}'")
            return default
        return f32(w.pop(key), f"layer '{name}' {key}")

    eye = np.eye(Q, dtype=np.float32)
    if cls == "Attention":
        mode = c.get("score_mode", "dot")
        scale = scalar("scale") if c.get("use_scale") else None
        if scale is not None and scale.shape not in ((), (1,)):
            raise ConvertError(f"layer '{name}' (Attention) scale has shape {list(scale.shape)}, expected []")
        s = 1.0 if scale is None else float(scale.reshape(()))
        if mode == "dot":
            if scale is None:
                return Attention("dot", Q, M, name=name)
            return Attention("general", Q, M, name=name, score_kernel=np.float32(s) * eye)
        if mode == "concat":
            weight = scalar("concat_score_weight")
            if weight.shape not in ((), (1,)):
                raise ConvertError(f"layer '{name}' (Attention) concat_score_weight has shape "
                                   f"{list(weight.shape)}, expected []")
            return Attention("additive", Q, M, name=name, query_kernel=np.float32(s) * eye,
                             key_kernel=np.float32(s) * eye,
                             score_vector=np.full(Q, float(weight.reshape(())), np.float32))
        raise ConvertError(f"layer '{name}' (Attention): score_mode {mode!r} is not supported (dot, concat)")
    if c.get("use_scale", True):
        v = scalar("scale")
        if tuple(v.shape) != (Q,):
            raise ConvertError(f"layer '{name}' (AdditiveAttention) scale has shape {list(v.shape)}, expected [{Q}]")
    else:
        v = np.ones(Q, np.float32)
    return Attention("additive", Q, M, name=name, query_kernel=eye.copy(), key_kernel=eye.copy(),
                     score_vector=np.ascontiguousarray(v, dtype=np.float32))


def _head(g: Graph, head: list, w_of: dict, width: int, mj) -> list:
    from .keras import dense_layer, keras_activation
    major = mj if mj is not None else 3
    out: list = []
    for n in head:
        cls, c = g.cls(n), g.cfg(n)
        if cls == "Activation":
            last = out[-1] if out else None
            if not isinstance(last, Dense) or last.activation != "linear":
                raise ConvertError(f"layer '{n}' (Activation) is supported only right after a Dense layer without an "
                                   f"activation")
            last.activation = keras_activation(c.get("activation"), major, f"layer '{n}' (Activation)",
                                               allow_softmax=True)
            continue
        if cls == "TimeDistributed" and c.get("layer", {}).get("class_name") != "Dense":
            raise ConvertError(f"layer '{n}' (TimeDistributed) wraps {c.get('layer', {}).get('class_name')}; only "
                               f"Dense is supported")
        d = dense_layer(cls, c, w_of[n], width, major, n)
        d.per_step = False
        out.append(d)
        width = d.units
    for d in out[:-1]:
        if d.activation == "softmax":
            raise ConvertError(f"layer '{d.name}': softmax is supported only in the last Dense layer")
    return out
