"""From a reader's layer list to a `.recur` file: checks the stack, picks the task, names the tensors.

Metadata keys and tensor names follow docs/FORMAT.md (§11, §12) in the order the Swift runtime's
``Architecture.metadata`` writes them.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .common import ACTIVATIONS, GATES, MERGE_MODES, Attention, ConvertError, Dense, Embedding, Recurrent, Source
from .vocab import Vocab

TASKS = ("generate", "classify", "tag")


CELL_CLASS = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}


def describe_layer(l) -> str:
    """One layer as the summary line prints it, e.g. ``rnn_layer GRU(1024, tanh/sigmoid, reset_after)``."""
    if isinstance(l, Embedding):
        return f"{l.name} Embedding({l.vocabulary}, {l.dimension})"
    if isinstance(l, Recurrent):
        acts = l.activation if l.cell == "rnn" else f"{l.activation}/{l.recurrent_activation}"
        bits = [str(l.units), acts]
        if l.cell == "gru":
            bits.append("reset_after" if l.reset_after else "reset_before")
        bits.append("sequences" if l.return_sequences else "last step")
        inner = f"{CELL_CLASS[l.cell]}({', '.join(bits)})"
        return f"{l.name} Bidirectional({inner}, {l.merge_mode})" if l.bidirectional else f"{l.name} {inner}"
    if isinstance(l, Attention):
        score = l.score + (f" {l.attention_units}" if l.score == "additive" else "")
        combine = f"tanh {l.units}" if l.combine == "tanh" else "[c; h]"
        return f"{l.name} Attention({score}, {combine})"
    return f"{l.name} {'TimeDistributed(Dense' if l.per_step else 'Dense'}({l.units}, {l.activation}){')' if l.per_step else ''}"


def describe(layers: list) -> str:
    return " -> ".join(describe_layer(l) for l in layers)


def check_stack(layers: list) -> None:
    """Consecutive layers fit together; every tensor has its declared shape."""
    if not layers:
        raise ConvertError("the model has no layers")
    if not isinstance(layers[0], Embedding):
        raise ConvertError(f"the first layer must be an embedding (found {layers[0].name})")
    width = None
    seq = True
    for i, l in enumerate(layers):
        if isinstance(l, Embedding):
            if i != 0:
                raise ConvertError(f"layer '{l.name}': an embedding must be the first layer")
            if l.table.ndim != 2 or l.table.shape[0] < 1 or l.table.shape[1] < 1:
                raise ConvertError(f"layer '{l.name}': embeddings have shape {list(l.table.shape)}")
            width = l.dimension
        elif isinstance(l, Recurrent):
            if any(isinstance(x, Attention) for x in layers[:i]):
                raise ConvertError(f"layer '{l.name}' ({l.cell}) follows the attention layer")
            if not seq:
                raise ConvertError(f"layer '{l.name}' ({l.cell}) follows a layer that returns only its last step")
            if width != l.input_size:
                raise ConvertError(f"layer '{l.name}' ({l.cell}) expects input size {l.input_size} but the previous "
                                   f"layer gives {width}")
            if l.activation not in ACTIVATIONS or l.activation == "softmax":
                raise ConvertError(f"layer '{l.name}': activation '{l.activation}' is not valid in a recurrent layer")
            if l.recurrent_activation not in ACTIVATIONS or l.recurrent_activation == "softmax":
                raise ConvertError(f"layer '{l.name}': recurrent activation '{l.recurrent_activation}' is not valid")
            if l.merge_mode not in MERGE_MODES:
                raise ConvertError(f"layer '{l.name}': merge mode '{l.merge_mode}' is not supported "
                                   f"(supported: {', '.join(MERGE_MODES)})")
            G, H = GATES[l.cell], l.units
            for d_name, d in zip(("forward", "backward"), l.directions):
                where = f"layer '{l.name}'" + (f" {d_name}" if l.bidirectional else "")
                for t, shape in (("kernel", (G * H, l.input_size)), ("recurrent_kernel", (G * H, H)),
                                 ("bias", (G * H,))):
                    a = getattr(d, t)
                    if tuple(a.shape) != shape:
                        raise ConvertError(f"{where} {t} has shape {list(a.shape)}, expected {list(shape)}")
                needs_rb = l.cell == "gru" and l.reset_after
                if needs_rb and (d.recurrent_bias is None or tuple(d.recurrent_bias.shape) != (G * H,)):
                    raise ConvertError(f"{where}: a GRU with reset_after needs a recurrent bias of shape [{G * H}]")
                if not needs_rb and d.recurrent_bias is not None:
                    raise ConvertError(f"{where}: a recurrent bias exists only for GRU layers with reset_after")
            width = l.output_size
            seq = l.return_sequences
        elif isinstance(l, Attention):
            check_attention(l, width, i, layers)
            width = l.output_size
        elif isinstance(l, Dense):
            if width != l.input_size:
                raise ConvertError(f"layer '{l.name}' (dense) expects input size {l.input_size} but the previous "
                                   f"layer gives {width}")
            if l.activation not in ACTIVATIONS:
                raise ConvertError(f"layer '{l.name}': activation '{l.activation}' is not supported")
            if tuple(l.bias.shape) != (l.units,):
                raise ConvertError(f"layer '{l.name}' bias has shape {list(l.bias.shape)}, expected [{l.units}]")
            width = l.units
        else:
            raise ConvertError(f"internal: unknown layer object {type(l).__name__}")
    if isinstance(layers[-1], Embedding):
        raise ConvertError("the model has no recurrent or dense layer after its embedding")


ATTENTION_SCORES = ("dot", "general", "additive")


def check_attention(l: Attention, width, index: int, layers: list) -> None:
    """An attention layer: right after the last recurrent layer, reading its state; tensors of their shapes."""
    if width != l.input_size:
        raise ConvertError(f"layer '{l.name}' (attention) expects a decoder state of {l.input_size} floats but the "
                           f"previous layer gives {width}")
    if index == 0 or not isinstance(layers[index - 1], Recurrent):
        raise ConvertError(f"layer '{l.name}' (attention) must follow the decoder's last recurrent layer")
    if any(isinstance(x, Attention) for x in layers[:index]):
        raise ConvertError(f"layer '{l.name}': a decoder has at most one attention layer")
    if l.score not in ATTENTION_SCORES:
        raise ConvertError(f"layer '{l.name}': attention score '{l.score}' is not supported "
                           f"(supported: {', '.join(ATTENTION_SCORES)})")
    Q, M = l.input_size, l.memory_size
    need = []
    if l.score == "dot" and Q != M:
        raise ConvertError(f"layer '{l.name}': dot attention needs a decoder state as wide as the encoder's outputs "
                           f"({Q} vs {M})")
    if l.score == "general":
        need.append(("score_kernel", (Q, M)))
    if l.score == "additive":
        if l.query_kernel is None:
            raise ConvertError(f"layer '{l.name}': additive attention needs a query kernel")
        A = l.attention_units
        need += [("query_kernel", (A, Q)), ("key_kernel", (A, M)), ("score_vector", (A,))]
        if l.score_bias is not None:
            need.append(("score_bias", (A,)))
    if l.combine == "tanh":
        if l.kernel is None or l.kernel.ndim != 2:
            raise ConvertError(f"layer '{l.name}': combine tanh needs a kernel [units, {M + Q}]")
        need += [("kernel", (l.units, M + Q)), ("bias", (l.units,))]
    elif l.combine != "none":
        raise ConvertError(f"layer '{l.name}': combine '{l.combine}' is not supported (tanh, none)")
    for t, shape in need:
        a = getattr(l, t)
        if a is None or tuple(a.shape) != shape:
            got = "none" if a is None else list(a.shape)
            raise ConvertError(f"layer '{l.name}' (attention) {t} has shape {got}, expected {list(shape)}")


def infer_task(layers: list) -> str:
    """"generate" for Embedding → unidirectional recurrent layers that return sequences → Dense(vocab);
    "classify" when a recurrent layer returns only its last step; "tag" for per-step outputs otherwise."""
    rec = [l for l in layers if isinstance(l, Recurrent)]
    if any(not l.return_sequences for l in rec):
        return "classify"
    emb = layers[0]
    last = layers[-1]
    if (rec and not any(l.bidirectional for l in rec) and isinstance(last, Dense)
            and last.units == emb.vocabulary and not any(isinstance(l, Dense) and l.per_step for l in layers)):
        return "generate"
    return "tag"


def check_task(task: str, layers: list) -> None:
    rec = [l for l in layers if isinstance(l, Recurrent)]
    emb = layers[0]
    if task == "generate":
        if not rec:
            raise ConvertError("a generator needs at least one recurrent layer")
        for l in rec:
            if l.bidirectional or not l.return_sequences:
                raise ConvertError(f"task 'generate': layer '{l.name}' is bidirectional or returns only its last "
                                   f"step; a generator steps forward token by token")
        last = layers[-1]
        if not isinstance(last, Dense) or last.units != emb.vocabulary:
            raise ConvertError(f"task 'generate': the last layer must be a dense layer with one output per "
                               f"vocabulary token ({emb.vocabulary})")
    elif task == "classify":
        if not isinstance(layers[-1], Dense):
            raise ConvertError(f"task 'classify': the model ends with '{layers[-1].name}', a recurrent layer, and has "
                               f"no Dense head, so its outputs are hidden values, not class scores (an encoder? "
                               f"convert the encoder-decoder pair with --task seq2seq)")
    elif task == "tag":
        if any(not l.return_sequences for l in rec):
            raise ConvertError("task 'tag' needs every recurrent layer to return sequences")
    else:
        raise ConvertError(f"unknown task '{task}' (known: {', '.join(TASKS)})")


def layer_entries(layers: list, prefix: str, meta: list, tensors: dict) -> None:
    """Appends the metadata and tensors of ``layers`` under ``prefix`` (``""`` or ``"encoder."``)."""
    for i, l in enumerate(layers):
        p = f"{prefix}layer.{i}."
        if isinstance(l, Embedding):
            meta += [(p + "kind", "embedding"), (p + "input_dim", l.vocabulary), (p + "output_dim", l.dimension)]
            tensors[p + "embeddings"] = l.table
        else:
            add_layer(p, l, meta, tensors)


def assemble_seq2seq(encoder: list, decoder: list, source_vocab: Vocab, vocab: Vocab, reverse_source: bool,
                     extra: Optional[list] = None):
    """An encoder-decoder: the encoder (Embedding → recurrent layers) reads the source; its final states
    start the decoder (Embedding → recurrent layers → Dense over the target vocabulary)."""
    check_stack(encoder)
    check_stack(decoder)
    enc_rec = [l for l in encoder if isinstance(l, Recurrent)]
    dec_rec = [l for l in decoder if isinstance(l, Recurrent)]
    attention = next((l for l in decoder if isinstance(l, Attention)), None)
    if any(isinstance(l, Attention) for l in encoder):
        raise ConvertError("the encoder has an attention layer; attention belongs to the decoder")
    if any(isinstance(l, Dense) for l in encoder):
        d = next(l for l in encoder if isinstance(l, Dense))
        raise ConvertError(f"the encoder has a Dense layer '{d.name}'; an encoder is an Embedding and recurrent "
                           f"layers whose final state starts the decoder")
    if not enc_rec:
        raise ConvertError("the encoder has no recurrent layer")
    for l in enc_rec:
        l.return_sequences = True           # the encoder's final state is what the decoder reads
    check_task("generate", decoder)
    def pairs(a, b) -> bool:           # encoder layer a starts decoder layer b
        if a.cell != b.cell or b.bidirectional:
            return False
        if a.bidirectional:             # [h_fwd; h_bwd] starts a decoder of 2 × units (attention models only)
            return attention is not None and a.merge_mode == "concat" and b.units == 2 * a.units
        return a.units == b.units

    if len(enc_rec) != len(dec_rec) or not all(pairs(a, b) for a, b in zip(enc_rec, dec_rec)):
        desc = lambda ls: ", ".join(f"{l.cell.upper()}({l.units}{', bidirectional' if l.bidirectional else ''})"  # noqa: E731
                                    for l in ls)
        extra = (" (or, with attention, a bidirectional concat encoder layer starting a decoder layer of twice "
                 "its units)") if attention is not None else ""
        raise ConvertError(f"the encoder's recurrent layers ({desc(enc_rec)}) must match the decoder's "
                           f"({desc(dec_rec)}) one for one in kind and size, none bidirectional{extra}: the "
                           f"encoder's final states start the decoder")
    if attention is not None and attention.memory_size != enc_rec[-1].output_size:
        raise ConvertError(f"the attention layer '{attention.name}' reads encoder outputs of {attention.memory_size} "
                           f"floats but the encoder's last recurrent layer gives {enc_rec[-1].output_size}")
    for name, v, emb in (("source", source_vocab, encoder[0]), ("target", vocab, decoder[0])):
        v.check()
        if len(v.pieces) != emb.vocabulary:
            raise ConvertError(f"the {name} vocabulary has {len(v.pieces)} tokens but the embedding '{emb.name}' "
                               f"has {emb.vocabulary} rows")
    for k in ("bos", "eos"):
        if k not in vocab.specials:
            raise ConvertError(f"a seq2seq model needs the target vocabulary's {k.upper()} token: give --{k}-id "
                               f"or --{k}-token")
    meta: list = [("model.task", "seq2seq"), ("model.layer_count", len(decoder))]
    tensors: dict = {}
    layer_entries(decoder, "", meta, tensors)
    meta.append(("encoder.layer_count", len(encoder)))
    layer_entries(encoder, "encoder.", meta, tensors)
    if reverse_source:
        meta.append(("encoder.reverse_source", True))
    meta += vocab.metadata()
    meta += source_vocab.metadata("source_tokenizer.")
    meta += list(extra or [])
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    return meta, tensors


def assemble(source: Source, vocab: Vocab, task: Optional[str] = None, labels: Optional[list] = None,
             extra: Optional[list] = None):
    """Returns (metadata as an ordered list of (key, value), tensors as an ordered dict)."""
    layers = source.layers
    check_stack(layers)
    emb = layers[0]
    vocab.check()
    if len(vocab.pieces) != emb.vocabulary:
        raise ConvertError(f"the vocabulary has {len(vocab.pieces)} tokens but the embedding '{emb.name}' has "
                           f"{emb.vocabulary} rows")
    att = next((l for l in layers if isinstance(l, Attention)), None)
    if att is not None:
        raise ConvertError(f"layer '{att.name}' (attention) belongs to an encoder-decoder; convert it with "
                           f"--task seq2seq")
    if task is None:
        task = infer_task(layers)
    check_task(task, layers)

    meta: list = [("model.task", task)]
    if labels:
        out_units = layers[-1].units if isinstance(layers[-1], Dense) else layers[-1].output_size
        if len(labels) != out_units and not (out_units == 1 and len(labels) == 2):
            raise ConvertError(f"{len(labels)} labels given but the model has {out_units} outputs")
        meta.append(("model.labels", list(labels)))
    meta.append(("model.layer_count", len(layers)))
    tensors: dict = {}
    layer_entries(layers, "", meta, tensors)
    meta += vocab.metadata()
    meta += list(extra or [])
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    return meta, tensors


def add_layer(p: str, l, meta: list, tensors: dict) -> None:
    """The metadata entries and tensors of one recurrent or dense layer under prefix p ("layer.N.")."""
    if isinstance(l, Recurrent):
        meta += [(p + "kind", l.cell), (p + "input_size", l.input_size), (p + "units", l.units),
                 (p + "activation", l.activation)]
        if l.cell != "rnn":
            meta.append((p + "recurrent_activation", l.recurrent_activation))
        if l.cell == "gru":
            meta.append((p + "reset_after", bool(l.reset_after)))
        if l.cell == "lstm":
            meta.append((p + "peephole", False))
        meta += [(p + "return_sequences", bool(l.return_sequences)), (p + "bidirectional", l.bidirectional)]
        if l.bidirectional:
            meta.append((p + "merge_mode", l.merge_mode))
        prefixes = [p + "forward.", p + "backward."] if l.bidirectional else [p]
        for q, d in zip(prefixes, l.directions):
            tensors[q + "kernel"] = d.kernel
            tensors[q + "recurrent_kernel"] = d.recurrent_kernel
            tensors[q + "bias"] = d.bias
            if d.recurrent_bias is not None:
                tensors[q + "recurrent_bias"] = d.recurrent_bias
    elif isinstance(l, Attention):
        meta += [(p + "kind", "attention"), (p + "score", l.score), (p + "input_size", l.input_size),
                 (p + "memory_size", l.memory_size)]
        if l.score == "additive":
            meta += [(p + "attention_units", l.attention_units), (p + "use_bias", l.score_bias is not None)]
        meta += [(p + "combine", l.combine), (p + "units", l.units), (p + "input_feeding", False)]
        for t in ("score_kernel", "query_kernel", "key_kernel", "score_vector", "score_bias", "kernel", "bias"):
            a = getattr(l, t)
            if a is not None and (t not in ("kernel", "bias") or l.combine == "tanh"):
                tensors[p + t] = a
    else:
        meta += [(p + "kind", "dense"), (p + "input_size", l.input_size), (p + "units", l.units),
                 (p + "activation", l.activation)]
        tensors[p + "kernel"] = l.kernel
        tensors[p + "bias"] = l.bias
