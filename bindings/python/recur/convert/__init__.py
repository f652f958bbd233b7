"""Converts trained Keras and PyTorch recurrent models to `.recur` files.

    >>> from recur import convert
    >>> convert.convert("char_model.keras", "char.recur", chars="chars.txt")
    >>> convert.convert("model.pt", "char.recur", vocab="tokens.json")

or from the shell: ``python -m recur.convert SRC OUT.recur [options]`` (``recur-convert`` once installed).

Sources (see docs/CONVERT.md): Keras ``.keras`` archives; Keras 3 ``.weights.h5`` and TF checkpoints
(``prefix.index``) with ``--config model.json``; legacy Keras 2 ``.h5`` (full models, or weights with a
config); PyTorch ``torch.save(model.state_dict())`` files (read without PyTorch by a restricted unpickler);
``.safetensors``. Nothing here imports TensorFlow, Keras or PyTorch; HDF5 files need ``h5py``.

Every failure raises :class:`ConvertError` with a one-line message, and no output file is left behind:
the file is written to a temporary name and renamed only when complete.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from .common import MEMORY_BUDGET, Budget, ConvertError, Options, Source, zip_errors
from . import vocab as _vocab

__all__ = ["ConvertError", "Options", "convert", "read_source", "detect_format", "FORMATS", "MEMORY_BUDGET"]

FORMATS = ("keras", "h5", "tf-checkpoint", "torch", "safetensors")
PRODUCER_VERSION = "0.1.0"


def detect_format(path: str) -> str:
    """The source format of ``path``, from its content (and its name for TF checkpoint prefixes)."""
    from . import tf_checkpoint
    if not os.path.exists(path):
        if os.path.exists(tf_checkpoint.prefix_of(path) + ".index"):
            return "tf-checkpoint"
        raise ConvertError(f"no such file: {path}")
    if path.endswith(".index") or ".data-0" in os.path.basename(path):
        return "tf-checkpoint"
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")) and \
                os.path.exists(os.path.join(path, "variables", "variables.index")):
            return "tf-checkpoint"          # a SavedModel: its variables are a checkpoint with an object graph
        raise ConvertError(f"{path} is a directory, and not a TF SavedModel (no saved_model.pb and "
                           f"variables/variables.index)")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise ConvertError(f"cannot read {path}: {e.strerror or e}") from None
    name = os.path.basename(path)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "h5"
    if head.startswith(b"PK"):
        import zipfile
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zip_errors() as e:
            raise ConvertError(f"{name}: damaged zip archive ({e})") from None
        if "config.json" in names and "model.weights.h5" in names:
            return "keras"
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            raise ConvertError(f"{name} is a TorchScript archive (torch.jit.save), which holds code, not a state_dict; "
                               f"load it with torch.jit.load and save its weights with "
                               f"torch.save(model.state_dict(), 'model.pt'), then convert that file")
        if any(n.endswith("/data.pkl") for n in names):
            return "torch"
        raise ConvertError(f"{name}: a zip archive that is neither a .keras model nor a torch.save file")
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"\x80":
        return "torch"          # legacy torch.save; the reader explains
    low = name.lower()
    for ext, fmt in ((".keras", "keras"), (".h5", "h5"), (".hdf5", "h5"), (".safetensors", "safetensors"),
                     (".pt", "torch"), (".pth", "torch"), (".bin", "torch")):
        if low.endswith(ext):
            return fmt
    raise ConvertError(f"{name}: cannot tell the format (expected .keras, .h5, a TF checkpoint, a torch.save "
                       f"file or .safetensors; use --format)")


def read_source(path: str, options: Optional[Options] = None, format: Optional[str] = None) -> Source:
    """Reads a source model into the converter's layer list (tensors already in runtime layout)."""
    opts = options or Options()
    fmt = format or detect_format(path)
    budget = Budget()           # everything this source makes the converter hold (docs/CONVERT.md, "Memory")
    if fmt == "keras":
        from . import keras
        return keras.read_archive(path, opts, budget)
    if fmt == "h5":
        from . import keras
        return keras.read_h5(path, opts, budget)
    if fmt == "tf-checkpoint":
        from . import keras
        if os.path.isdir(path):             # a SavedModel directory
            path = os.path.join(path, "variables", "variables")
        return keras.read_checkpoint(path, opts, budget)
    if fmt in ("torch", "safetensors"):
        from . import pytorch
        if fmt == "torch":
            from . import torch_state
            tensors = torch_state.load(path, opts.key, budget)
        else:
            from . import safetensors
            tensors, _ = safetensors.load(path, budget)
        name = "pytorch" if fmt == "torch" else "safetensors"
        if opts.task == "seq2seq":
            pair = pytorch.split_pair(tensors, os.path.basename(path))
            if pair is not None:
                enc = pytorch.read(pair[0], opts, name, os.path.basename(path))
                src = pytorch.read(pair[1], opts, name, os.path.basename(path))
                src.encoder = enc.layers
                return src
        return pytorch.read(tensors, opts, name, os.path.basename(path))
    raise ConvertError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")


def _make_vocab(src: Source, vocab, chars, vocab_kind, placeholder_vocab):
    emb = src.layers[0] if src.layers else None
    given = [x for x in (vocab, chars) if x is not None]
    if len(given) > 1:
        raise ConvertError("give the vocabulary once: --vocab or --chars")
    if isinstance(vocab, _vocab.Vocab):
        v = vocab
    elif isinstance(vocab, (list, tuple)):
        v = _vocab.from_list(list(vocab), vocab_kind)
    elif vocab is not None:
        v = _vocab.load(os.fspath(vocab), vocab_kind)
        if v.origin and "pad" in v.specials and v.pieces[0] == "<pad>" and emb is not None:
            v = _vocab.fit(v, emb.vocabulary)
    elif chars is not None:
        v = _vocab.load_chars(os.fspath(chars))
    elif placeholder_vocab:
        if emb is None:
            raise ConvertError("the model has no embedding")
        v = _vocab.placeholder(emb.vocabulary)
    else:
        raise ConvertError("no vocabulary: give --chars FILE, --vocab FILE (JSON list, {token: id} or Keras "
                           "Tokenizer JSON) or --placeholder-vocab")
    if vocab_kind is not None:
        v.kind = vocab_kind
    return v


def _special_tokens(v, tokens: Optional[dict], what: str) -> None:
    """--bos-token / --eos-token …: a special token given by its piece."""
    for k, piece in (tokens or {}).items():
        if piece is None:
            continue
        if k not in _vocab.SPECIALS:
            raise ConvertError(f"unknown special token '{k}' (known: {', '.join(_vocab.SPECIALS)})")
        if piece not in v.pieces:
            raise ConvertError(f"the {what} vocabulary has no token {piece!r} (--{k}-token)")
        v.specials[k] = v.pieces.index(piece)


def _apply_specials(v, specials: Optional[dict]) -> None:
    for k, i in (specials or {}).items():
        if k not in _vocab.SPECIALS:
            raise ConvertError(f"unknown special token '{k}' (known: {', '.join(_vocab.SPECIALS)})")
        if i is None:
            v.specials.pop(k, None)
        else:
            v.specials[k] = int(i)


def convert(src: str, out: str, *, vocab=None, chars=None, vocab_kind: Optional[str] = None,
            placeholder_vocab: bool = False, specials: Optional[dict] = None, lowercase: Optional[bool] = None,
            task: Optional[str] = None, labels: Optional[Sequence[str]] = None, format: Optional[str] = None,
            options: Optional[Options] = None, name: Optional[str] = None, dtypes: Optional[dict] = None,
            decoder=None, decoder_format: Optional[str] = None, source_vocab=None, source_chars=None,
            source_specials: Optional[dict] = None, special_tokens: Optional[dict] = None,
            source_special_tokens: Optional[dict] = None, reverse_source: bool = False,
            splitter: Optional[str] = None, pad_length: Optional[int] = None, padding: Optional[str] = None,
            truncating: Optional[str] = None, source_pad_length: Optional[int] = None,
            source_padding: Optional[str] = None, source_truncating: Optional[str] = None, **option_kwargs) -> dict:
    """Converts ``src`` to the `.recur` file ``out``; returns a summary dict (task, layers, tensors, bytes).

    vocab: a JSON vocabulary file, a list of tokens or a :class:`recur.convert.vocab.Vocab`; chars: a text
    file of characters; specials: {"pad"|"unk"|"bos"|"eos": id}; option_kwargs: fields of :class:`Options`
    (config, keras_version, cell, nonlinearity, dense_activations, order, key; frame models: input, head).
    """
    from .. import format as rformat
    from .build import assemble

    opts = options or Options()
    for k, v in option_kwargs.items():
        if not hasattr(opts, k):
            raise TypeError(f"convert() got an unexpected keyword argument '{k}'")
        setattr(opts, k, v)
    if task is not None:
        opts.task = task
    if opts.task == "seq2seq":
        return _convert_seq2seq(src, out, opts, format, decoder, decoder_format, vocab, chars, vocab_kind,
                                source_vocab, source_chars, specials, source_specials, special_tokens,
                                source_special_tokens, lowercase, reverse_source, name, dtypes, splitter,
                                (source_pad_length, source_padding, source_truncating))
    for given, what in ((decoder, "decoder"), (source_vocab, "source_vocab"), (source_chars, "source_chars"),
                        (source_specials, "source_specials"), (source_special_tokens, "source_special_tokens")):
        if isinstance(given, dict):
            given = {k: x for k, x in given.items() if x is not None}
        if given:
            raise ConvertError(f"{what.replace('_', ' ')} is for encoder-decoders (--task seq2seq)")
    if reverse_source:
        raise ConvertError("--reverse-source is for encoder-decoders (--task seq2seq)")
    if source_pad_length is not None or source_padding is not None or source_truncating is not None:
        raise ConvertError("--source-pad-length, --source-padding and --source-truncating are for encoder-decoders "
                           "(--task seq2seq)")
    source = read_source(os.fspath(src), opts, format)
    # --- frame models (no vocabulary: model.input = "frames"): frames.py ---
    from . import frames
    if frames.is_frames(source):
        if opts.input == "tokens":
            raise ConvertError(f"--input tokens: {os.path.basename(os.fspath(src))} reads frames of "
                               f"{source.layers[0].size} floats (it has no embedding)")
        given = [o for o, x in (("--vocab", vocab), ("--chars", chars), ("--placeholder-vocab", placeholder_vocab or None),
                                ("--vocab-kind", vocab_kind), ("special token ids", specials or None),
                                ("--lowercase", lowercase)) if x is not None]
        return frames.convert(source, os.fspath(src), os.fspath(out), task=opts.task, labels=labels, name=name,
                              dtypes=dtypes, producer=f"recur-convert {PRODUCER_VERSION}", vocabulary_given=given)
    if opts.input == "frames":
        raise ConvertError(f"--input frames: {os.path.basename(os.fspath(src))} reads tokens (its first layer is an "
                           f"embedding)")
    if opts.head == "mean":
        raise ConvertError("--head mean applies to PyTorch frame classifiers (models without an embedding)")
    if opts.head is not None and source.format not in ("pytorch", "safetensors"):
        raise ConvertError(f"--head applies to PyTorch classifiers (a state_dict does not show what the head reads); "
                           f"{os.path.basename(os.fspath(src))} is a {source.format} file, whose layers say it")
    # --- end frame models ---
    v = _make_vocab(source, vocab, chars, vocab_kind, placeholder_vocab)
    if source.layers and getattr(source.layers[0], "mask_zero", False) and "pad" not in v.specials:
        v.specials["pad"] = 0           # Keras mask_zero=True: id 0 is padding, skipped by the runtime
    _apply_specials(v, specials)
    _special_tokens(v, special_tokens, "")
    if splitter is not None:
        v.splitter = splitter
    if lowercase is not None:
        v.lowercase = lowercase
    assumptions = list(source.notes.get("assumptions", []))
    if "mask_zero" in source.notes and not source.notes["mask_zero"] and "pad" in v.specials:
        v.pad_mask = False              # Keras without mask_zero: PAD steps run through the network
        assumptions.append("unmasked: PAD steps run like other tokens"
                           + (" (Keras' default mask_zero=False; --mask-zero if the Embedding masked)"
                              if source.notes.get("inferred") else ""))
    if pad_length is not None or padding is not None or truncating is not None:
        if pad_length is None:
            raise ConvertError("--padding and --truncating go with --pad-length")
        v.pad_length, v.padding, v.truncating = int(pad_length), padding or "pre", truncating or "pre"
        assumptions.append(f"input cut and padded to {v.pad_length} tokens (padding {v.padding}, truncating "
                           f"{v.truncating})")
    source.notes["assumptions"] = assumptions
    version = f" {source.framework_version}" if source.framework_version else ""
    extra = [("general.producer", f"recur-convert {PRODUCER_VERSION}"),
             ("general.source", f"{source.format}{version}: {os.path.basename(os.fspath(src))}")]
    if name:
        extra.append(("general.name", name))
    meta, tensors = assemble(source, v, opts.task, list(labels) if labels else None, extra)
    _write(out, meta, tensors, dtypes)
    task_name = dict(meta)["model.task"]
    from .build import describe
    return {"task": task_name, "layers": len(source.layers), "tensors": len(tensors),
            "bytes": os.path.getsize(out), "source": source.format, "vocabulary": len(v.pieces),
            "architecture": describe(source.layers), "inferred": source.notes.get("inferred", ""),
            "assumptions": list(source.notes.get("assumptions", []))}


def _write(out, meta, tensors, dtypes) -> None:
    from .. import format as rformat
    try:
        rformat.write(os.fspath(out), meta, tensors, dtypes)
    except rformat.FormatError as e:
        raise ConvertError(f"cannot write {out}: {e}") from None
    except OSError as e:
        raise ConvertError(f"cannot write {out}: {e.strerror or e}") from None


def _convert_seq2seq(src, out, opts, format, decoder, decoder_format, vocab, chars, vocab_kind, source_vocab,
                     source_chars, specials, source_specials, special_tokens, source_special_tokens, lowercase,
                     reverse_source, name, dtypes, splitter=None, source_padding=(None, None, None)) -> dict:
    """An encoder-decoder from two files (``src`` the encoder, ``decoder`` the decoder) or one file that
    holds both (a tf.train.Checkpoint(encoder=…, decoder=…), a model with encoder and decoder attributes,
    a state_dict with encoder./decoder. prefixes)."""
    from .build import assemble_seq2seq, describe
    if decoder is not None:
        enc_src = read_source(os.fspath(src), opts, format)
        dec_src = read_source(os.fspath(decoder), opts, decoder_format)
        if enc_src.encoder or dec_src.encoder:
            raise ConvertError("--decoder was given, but a file holds both an encoder and a decoder")
        encoder, dec, enc_notes = enc_src.layers, dec_src, enc_src.notes
    else:
        dec = read_source(os.fspath(src), opts, format)
        if not dec.encoder:
            raise ConvertError(f"{os.path.basename(os.fspath(src))} holds one model, not an encoder and a decoder; "
                               f"give the decoder's file with --decoder (this file is then the encoder)")
        encoder, enc_notes = dec.encoder, dec.notes
    if source_vocab is None and source_chars is None:
        raise ConvertError("a seq2seq model needs the source vocabulary too: give --source-vocab or --source-chars")
    sv = _make_vocab(Source(layers=encoder, format=""), source_vocab, source_chars, None, False)
    v = _make_vocab(dec, vocab, chars, vocab_kind, False)
    for voc, layers in ((sv, encoder), (v, dec.layers)):
        if layers and getattr(layers[0], "mask_zero", False) and "pad" not in voc.specials:
            voc.specials["pad"] = 0     # Keras mask_zero=True: id 0 is padding (dropped from a source)
    _apply_specials(v, specials)
    _special_tokens(v, special_tokens, "target")
    _apply_specials(sv, source_specials)
    _special_tokens(sv, source_special_tokens, "source")
    if lowercase is not None:
        v.lowercase = sv.lowercase = lowercase
    if splitter is not None:
        v.splitter = sv.splitter = splitter
    assumptions = []
    from .common import Attention
    attention = next((l for l in dec.layers if isinstance(l, Attention)), None)
    if attention is not None and encoder and not getattr(encoder[0], "mask_zero", False) and "pad" in sv.specials:
        raise ConvertError(f"the encoder's Embedding '{encoder[0].name}' has mask_zero=False, so the framework's "
                           f"attention weighs PAD positions too, which the runtime never attends to; train with "
                           f"mask_zero=True, or give a source vocabulary without a PAD token")
    if "mask_zero" in enc_notes and not enc_notes["mask_zero"] and "pad" in sv.specials:
        sv.pad_mask = False             # an unmasked encoder: PAD steps of a padded source run through it
        assumptions.append("unmasked source")
    length, side, cut = source_padding
    if length is not None or side is not None or cut is not None:
        if length is None:
            raise ConvertError("--source-padding and --source-truncating go with --source-pad-length")
        sv.pad_length, sv.padding, sv.truncating = int(length), side or "pre", cut or "pre"
        assumptions.append(f"source cut and padded to {sv.pad_length} tokens (padding {sv.padding}, truncating "
                           f"{sv.truncating})")
    version = f" {dec.framework_version}" if dec.framework_version else ""
    names = os.path.basename(os.fspath(src)) + (f" + {os.path.basename(os.fspath(decoder))}" if decoder else "")
    extra = [("general.producer", f"recur-convert {PRODUCER_VERSION}"),
             ("general.source", f"{dec.format}{version}: {names}")]
    if name:
        extra.append(("general.name", name))
    meta, tensors = assemble_seq2seq(encoder, dec.layers, sv, v, reverse_source, extra)
    _write(out, meta, tensors, dtypes)
    return {"task": "seq2seq", "layers": len(encoder) + len(dec.layers), "tensors": len(tensors),
            "bytes": os.path.getsize(out), "source": dec.format, "vocabulary": len(v.pieces),
            "architecture": f"encoder {describe(encoder)}; decoder {describe(dec.layers)}",
            "inferred": dec.notes.get("inferred", ""),
            "assumptions": [f"BOS {v.pieces[v.specials['bos']]!r} (id {v.specials['bos']}), EOS "
                            f"{v.pieces[v.specials['eos']]!r} (id {v.specials['eos']})"
                            + (", source reversed" if reverse_source else "")] + assumptions}
