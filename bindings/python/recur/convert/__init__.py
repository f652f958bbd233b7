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
        raise ConvertError(f"{path} is a directory (a TF SavedModel is not supported; save the weights with "
                           f"model.save_weights or model.save('m.keras'))")
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
        return keras.read_checkpoint(path, opts, budget)
    if fmt == "torch":
        from . import pytorch, torch_state
        tensors = torch_state.load(path, opts.key, budget)
        src = pytorch.read(tensors, opts, "pytorch", os.path.basename(path))
        return src
    if fmt == "safetensors":
        from . import pytorch, safetensors
        tensors, meta = safetensors.load(path, budget)
        return pytorch.read(tensors, opts, "safetensors", os.path.basename(path))
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


def convert(src: str, out: str, *, vocab=None, chars=None, vocab_kind: Optional[str] = None,
            placeholder_vocab: bool = False, specials: Optional[dict] = None, lowercase: Optional[bool] = None,
            task: Optional[str] = None, labels: Optional[Sequence[str]] = None, format: Optional[str] = None,
            options: Optional[Options] = None, name: Optional[str] = None, dtypes: Optional[dict] = None,
            **option_kwargs) -> dict:
    """Converts ``src`` to the `.recur` file ``out``; returns a summary dict (task, layers, tensors, bytes).

    vocab: a JSON vocabulary file, a list of tokens or a :class:`recur.convert.vocab.Vocab`; chars: a text
    file of characters; specials: {"pad"|"unk"|"bos"|"eos": id}; option_kwargs: fields of :class:`Options`
    (config, keras_version, cell, nonlinearity, dense_activations, order, key).
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
    source = read_source(os.fspath(src), opts, format)
    v = _make_vocab(source, vocab, chars, vocab_kind, placeholder_vocab)
    if source.layers and getattr(source.layers[0], "mask_zero", False) and "pad" not in v.specials:
        v.specials["pad"] = 0           # Keras mask_zero=True: id 0 is padding, skipped by the runtime
    for k, i in (specials or {}).items():
        if k not in _vocab.SPECIALS:
            raise ConvertError(f"unknown special token '{k}' (known: {', '.join(_vocab.SPECIALS)})")
        if i is None:
            v.specials.pop(k, None)
        else:
            v.specials[k] = int(i)
    if lowercase is not None:
        v.lowercase = lowercase
    version = f" {source.framework_version}" if source.framework_version else ""
    extra = [("general.producer", f"recur-convert {PRODUCER_VERSION}"),
             ("general.source", f"{source.format}{version}: {os.path.basename(os.fspath(src))}")]
    if name:
        extra.append(("general.name", name))
    meta, tensors = assemble(source, v, opts.task, list(labels) if labels else None, extra)
    try:
        rformat.write(os.fspath(out), meta, tensors, dtypes)
    except rformat.FormatError as e:
        raise ConvertError(f"cannot write {out}: {e}") from None
    except OSError as e:
        raise ConvertError(f"cannot write {out}: {e.strerror or e}") from None
    task_name = dict(meta)["model.task"]
    from .build import describe
    return {"task": task_name, "layers": len(source.layers), "tensors": len(tensors),
            "bytes": os.path.getsize(out), "source": source.format, "vocabulary": len(v.pieces),
            "architecture": describe(source.layers), "inferred": source.notes.get("inferred", ""),
            "assumptions": list(source.notes.get("assumptions", []))}
