"""Vocabularies for converted models (the file's ``tokenizer.*`` metadata).

Accepted sources (docs/CONVERT.md, "Vocabulary"):

- a text file of characters (``--chars FILE``): its text, read as UTF-8 and taken literally, every Unicode
  scalar one token in order (a final newline counts as the token ``"\\n"``);
- a JSON list of tokens (``--vocab FILE.json``): ``["a", "b", ...]``, token id = position; a ``char``
  vocabulary when every entry is one character, otherwise ``word``;
- a JSON object mapping tokens to ids (``{"the": 1, ...}``, e.g. a Keras ``word_index``);
- a Keras ``Tokenizer`` saved with ``tokenizer.to_json()``: ``char_level`` gives a ``char`` vocabulary,
  otherwise ``word``; id 0 (reserved by Keras for padding) becomes the PAD token ``"<pad>"``, the
  ``oov_token`` becomes UNK, ``lower`` becomes ``tokenizer.lowercase``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from .common import ConvertError, load_json

SPECIALS = ("pad", "unk", "bos", "eos")
SPLITTERS = ("recur", "keras", "whitespace", "basic_english")
KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'      # Keras' default Tokenizer(filters=...)


@dataclass
class Vocab:
    kind: str                                  # "char" or "word"
    pieces: list
    specials: dict = field(default_factory=dict)   # "pad"/"unk"/"bos"/"eos" → id
    lowercase: bool = False
    origin: str = ""
    splitter: str = "recur"                    # how the runtime cuts text (docs/FORMAT.md §11)
    filters: str = KERAS_FILTERS               # splitter "keras": characters replaced by ``split``
    split: str = " "
    pad_mask: bool = True                      # PAD steps skipped (Keras mask_zero=True) or run (unmasked)
    pad_length: Optional[int] = None           # pad_sequences(maxlen=...) of the training and predict input
    padding: str = "pre"
    truncating: str = "pre"

    def __len__(self) -> int:
        return len(self.pieces)

    def check(self) -> None:
        """The runtime's rules: specials in range; other pieces unique, one scalar each in a char vocabulary."""
        if self.kind not in ("char", "word"):
            raise ConvertError(f"vocabulary kind must be 'char' or 'word', not '{self.kind}'")
        if self.splitter not in SPLITTERS:
            raise ConvertError(f"unknown splitter '{self.splitter}' (known: {', '.join(SPLITTERS)})")
        if self.splitter == "keras" and self.kind == "word" and not self.split:
            raise ConvertError(f"{self.origin or 'the tokenizer'}: an empty 'split' separator")
        if self.pad_length is not None:
            if "pad" not in self.specials:
                raise ConvertError("a padding length needs a PAD token (--pad-id / --source-pad-id, or a Keras "
                                   "Tokenizer's id 0)")
            if not 1 <= self.pad_length <= 1 << 24:
                raise ConvertError(f"--pad-length {self.pad_length} is outside 1…16777216")
        for name in ("padding", "truncating"):
            if getattr(self, name) not in ("pre", "post"):
                raise ConvertError(f"--{name} must be pre or post (not '{getattr(self, name)}')")
        if not self.pieces:
            raise ConvertError("the vocabulary is empty")
        for name, i in self.specials.items():
            if not 0 <= i < len(self.pieces):
                raise ConvertError(f"{name} id {i} is outside the vocabulary of {len(self.pieces)} tokens")
        special_ids = set(self.specials.values())
        seen: dict = {}
        for i, p in enumerate(self.pieces):
            if not isinstance(p, str):
                raise ConvertError(f"vocabulary entry {i} is not a string ({p!r})")
            if i in special_ids:
                continue
            if self.kind == "char" and len(p) != 1:
                raise ConvertError(f"character vocabulary entry {i} ({p!r}) is {len(p)} characters long; "
                                   f"each entry must be exactly one")
            if p in seen:
                raise ConvertError(f"vocabulary entry {i} ({p!r}) repeats entry {seen[p]}")
            seen[p] = i

    def metadata(self, prefix: str = "tokenizer.") -> list:
        out = [(prefix + "kind", self.kind), (prefix + "tokens", list(self.pieces))]
        for name in SPECIALS:
            if name in self.specials:
                out.append((f"{prefix}{name}_id", int(self.specials[name])))
        if self.kind == "word" or self.splitter != "recur":
            out.append((prefix + "lowercase", bool(self.lowercase)))
        if self.splitter != "recur":
            out.append((prefix + "splitter", self.splitter))
        if self.splitter == "keras":
            out += [(prefix + "filters", self.filters), (prefix + "split", self.split)]
        if not self.pad_mask and "pad" in self.specials:
            out.append((prefix + "pad_mask", False))
        if self.pad_length is not None:
            out += [(prefix + "pad_length", int(self.pad_length)), (prefix + "padding", self.padding),
                    (prefix + "truncating", self.truncating)]
        return out


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConvertError(f"cannot read the vocabulary file {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConvertError(f"{path}: not UTF-8 text (byte {e.start})") from None


def from_chars(text: str, origin: str = "characters") -> Vocab:
    """Every Unicode scalar of ``text`` is one token, in order."""
    return Vocab("char", list(text), origin=origin)


def from_list(tokens, kind: Optional[str] = None, origin: str = "token list") -> Vocab:
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ConvertError(f"{origin}: expected a JSON list of strings")
    if kind is None:
        kind = "char" if tokens and all(len(t) == 1 for t in tokens) else "word"
    return Vocab(kind, list(tokens), origin=origin)


def from_index(index: dict, kind: Optional[str] = None, origin: str = "token index") -> Vocab:
    """``{token: id}``; ids must cover 0..n-1, except that a missing id 0 (Keras' reserved padding id)
    becomes a PAD token "<pad>"."""
    by_id: dict = {}
    for tok, i in index.items():
        if not isinstance(i, int) or isinstance(i, bool) or i < 0:
            raise ConvertError(f"{origin}: the id of {tok!r} is not a non-negative integer ({i!r})")
        if i in by_id:
            raise ConvertError(f"{origin}: id {i} is given to both {by_id[i]!r} and {tok!r}")
        by_id[i] = tok
    specials = {}
    if 0 not in by_id and by_id:
        by_id[0] = "<pad>"
        specials["pad"] = 0
    n = len(by_id)
    missing = [i for i in range(n) if i not in by_id]
    if missing:
        raise ConvertError(f"{origin}: ids are not contiguous (id {missing[0]} is missing)")
    pieces = [by_id[i] for i in range(n)]
    if kind is None:
        ordinary = [p for i, p in enumerate(pieces) if i not in specials.values()]
        kind = "char" if ordinary and all(len(p) == 1 for p in ordinary) else "word"
    return Vocab(kind, pieces, specials, origin=origin)


def from_keras_tokenizer(obj: dict, origin: str = "Keras Tokenizer") -> Vocab:
    """A ``tokenizer.to_json()`` object (or its ``config`` dict)."""
    cfg = obj.get("config", obj)
    if not isinstance(cfg, dict) or "word_index" not in cfg:
        raise ConvertError(f"{origin}: no 'word_index' in the tokenizer config")
    wi = cfg["word_index"]
    if isinstance(wi, str):
        wi = load_json(wi, f"{origin}: word_index")
    if not isinstance(wi, dict):
        raise ConvertError(f"{origin}: word_index must be an object")
    char_level = bool(cfg.get("char_level", False))
    v = from_index(wi, "char" if char_level else "word", origin)
    if v.pieces[0] != "<pad>" or "pad" not in v.specials:
        raise ConvertError(f"{origin}: Keras tokenizers reserve id 0; this word_index uses it for {v.pieces[0]!r}")
    oov = cfg.get("oov_token")
    if oov is not None:
        if oov not in wi:
            raise ConvertError(f"{origin}: oov_token {oov!r} is not in word_index")
        v.specials["unk"] = wi[oov]
    # texts_to_sequences: lower() (character tokenizers too), then for words text_to_word_sequence with
    # the tokenizer's filters and split; a word without an id is dropped unless there is an oov_token.
    v.lowercase = bool(cfg.get("lower", True))
    v.splitter = "keras"
    for key in ("filters", "split"):
        val = cfg.get(key, KERAS_FILTERS if key == "filters" else " ")
        if val is None:
            val = ""
        if not isinstance(val, str):
            raise ConvertError(f"{origin}: '{key}' must be a string (found {type(val).__name__})")
        setattr(v, key, val)
    num_words = cfg.get("num_words")
    if isinstance(num_words, int) and num_words > 0 and num_words < len(v.pieces):
        v.pieces = v.pieces[:num_words]
        v.specials = {k: i for k, i in v.specials.items() if i < num_words}
    return v


def load(path: str, kind: Optional[str] = None) -> Vocab:
    """A vocabulary from a JSON file (list, {token: id} object, or Keras Tokenizer JSON)."""
    text = _read_text(path)
    name = os.path.basename(path)
    try:
        obj = load_json(text, name)
    except ConvertError as e:
        if "not valid JSON" not in str(e):
            raise
        raise ConvertError(f"{e}; use --chars for a plain text file of characters") from None
    if isinstance(obj, list):
        return from_list(obj, kind, name)
    if isinstance(obj, dict):
        if obj.get("class_name") == "Tokenizer" or "word_index" in obj or "word_index" in obj.get("config", {}):
            v = from_keras_tokenizer(obj, name)
            if kind is not None:
                v.kind = kind
            return v
        return from_index(obj, kind, name)
    raise ConvertError(f"{name}: expected a JSON list of tokens, a {{token: id}} object or a Keras Tokenizer")


def load_chars(path: str) -> Vocab:
    return from_chars(_read_text(path), os.path.basename(path))


def placeholder(size: int) -> Vocab:
    """Tokens "<0>", "<1>", …: a vocabulary for models used by token id only."""
    return Vocab("word", [f"<{i}>" for i in range(size)], origin="placeholder")


def fit(v: Vocab, size: int) -> Vocab:
    """Makes a Keras tokenizer's vocabulary match the embedding's input_dim: drops ids ≥ size (as Keras'
    ``num_words`` does) or, for word vocabularies, adds unused tokens "<unused-N>"."""
    if len(v.pieces) == size:
        return v
    if len(v.pieces) > size:
        v.pieces = v.pieces[:size]
        v.specials = {k: i for k, i in v.specials.items() if i < size}
        return v
    if v.kind != "word":
        raise ConvertError(f"the vocabulary has {len(v.pieces)} characters but the embedding has {size} rows")
    taken = set(v.pieces)
    n = len(v.pieces)
    while len(v.pieces) < size:
        p = f"<unused-{n}>"
        n += 1
        if p not in taken:
            v.pieces.append(p)
    return v
