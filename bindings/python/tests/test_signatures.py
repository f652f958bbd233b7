"""Unknown-word signatures (FORMAT.md §11, version 6): a tagger trained with `--unk-signatures` reads each
word outside its vocabulary as its signature piece. The ids the library gives (through the C API) are
checked against this file's own implementation of the rule as FORMAT.md states it, on the words of real
sentences; the file's version and keys, the refusal of the key in an older version, and the CLI's refusal
of the option where it does not apply."""

from __future__ import annotations

import re
import struct
import unicodedata
import zlib

import pytest

from conftest import ROOT, run_cli


def is_digit(c: str) -> bool:
    return unicodedata.numeric(c, None) is not None


def is_letter(c: str) -> bool:
    return c.isalpha()


def split(text: str) -> list:
    """The recur word splitter: runs of letters, digits, ' and _; every other non-space character alone
    (as a regular expression: \\w is letters, digits and _ for the sentences used here)."""
    return re.findall(r"[\w']+|[^\w\s]", text)


def signature(w: str, suffixes) -> str:
    s = "<unk"
    digits = sum(map(is_digit, w))
    if digits:
        s += "-num" if digits == len(w) else "-dig"
    upper, lower = sum(c.isupper() for c in w), sum(c.islower() for c in w)
    if w[:1].isupper():
        s += "-allcap" if lower == 0 and upper >= 2 else "-cap"
    elif upper:
        s += "-midcap"
    if "-" in w:
        s += "-dash"
    if not any(is_letter(c) or is_digit(c) for c in w):
        s += "-sym"
    low = w.lower()
    for x in suffixes:
        if low.endswith(x) and len(low) >= len(x) + 3:
            s += "-" + x
            break
    return s + ">"


@pytest.fixture(scope="module")
def tagger(cli, tmp_path_factory):
    d = tmp_path_factory.mktemp("signatures")
    data = d / "tagged.txt"
    lines = (ROOT / "data" / "pos" / "en_ewt-ud-dev.upos.txt").read_text(encoding="utf-8").splitlines()[:120]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = d / "sig.recur"
    run_cli(cli, "train", "--task", "tag", "--data", data, "--epochs", "1", "--hidden", "6", "--embedding", "4",
            "--unk-signatures", "--out", out)
    return out


def test_file_records_the_signatures(tagger):
    from recur import format as rf
    f = rf.read(str(tagger))
    assert f.version == (6, 0)
    meta = f.metadata
    assert meta["tokenizer.unk_signatures"] is True
    suffixes = list(meta["tokenizer.unk_suffixes"])
    assert "ing" in suffixes and "s" in suffixes
    pieces = list(meta["tokenizer.tokens"])
    sigs = [p for p in pieces if p.startswith("<unk") and p != "<unk>"]
    assert "<unk-cap>" in sigs and "<unk-num>" in sigs and len(sigs) >= 10
    # The signature pieces follow PAD and UNK.
    assert pieces[:2] == ["<pad>", "<unk>"] and set(pieces[2:2 + len(sigs)]) == set(sigs)


def test_library_encodes_as_the_rule_says(library, tagger):
    import recur
    from recur import format as rf
    meta = rf.read(str(tagger)).metadata
    pieces = list(meta["tokenizer.tokens"])
    suffixes = list(meta["tokenizer.unk_suffixes"])
    index = {p: i for i, p in enumerate(pieces) if i not in (0, 1)}
    unk = meta["tokenizer.unk_id"]

    def expected(text):
        ids = []
        for w in split(text):
            i = index.get(w.lower())
            if i is None:
                i = index.get(signature(w, suffixes), unk)
            ids.append(i)
        return ids

    test = (ROOT / "data" / "pos" / "en_ewt-ud-test.upos.txt").read_text(encoding="utf-8").splitlines()[:200]
    sentences = [" ".join(t.rsplit("/", 1)[0] for t in line.split()) for line in test]
    sentences += ["The Googlification of Zanzibar accelerated unexpectedly in 2019.",
                  "iPhones, F16s and e-mails: USA's 4th ÉCOLES ٣٤٥ naïvely --"]
    seen = set()
    with recur.Model(str(tagger)) as m:
        for s in sentences:
            got = m.encode(s)
            assert got == expected(s), s
            seen.update(pieces[i] for i in got)
        assert len(m.tag(sentences[-2])) == len(split(sentences[-2]))
    # The sentences exercised several signatures, UNK and ordinary words.
    assert len([p for p in seen if p.startswith("<unk-")]) >= 5 and "<unk>" in seen


def test_signatures_need_version_6(library, tagger, tmp_path):
    import recur
    raw = bytearray(tagger.read_bytes())
    struct.pack_into("<H", raw, 8, 5)
    raw[56:60] = b"\0\0\0\0"
    struct.pack_into("<I", raw, 56, zlib.crc32(bytes(raw)) & 0xFFFFFFFF)
    old = tmp_path / "v5.recur"
    old.write_bytes(bytes(raw))
    with pytest.raises(recur.RecurError, match="format 6 feature"):
        recur.Model(str(old))


def test_cli_refuses_signatures_where_they_do_not_apply(cli, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join((ROOT / "data" / "pairs" / "bible_nt_en_es.tsv").read_text(encoding="utf-8")
                               .splitlines()[:20]) + "\n", encoding="utf-8")
    for args in (["--task", "seq2seq", "--data", pairs],
                 ["--task", "regress", "--series", ROOT / "data" / "frames" / "sunspots_monthly.csv"]):
        out = tmp_path / "x.recur"
        p = run_cli(cli, "train", *args, "--unk-signatures", "--epochs", "1", "--out", out, check=False)
        assert p.returncode != 0 and "--unk-signatures is an option of --task classify and --task tag" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and not out.exists()
