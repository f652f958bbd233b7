"""`recur eval --data` / `--pairs` on the shipped sentiment, part-of-speech and translation models, against
independent computations: precision, recall, F1 and the confusion matrix recomputed in numpy from the
Python binding's own predictions, and BLEU from nltk.translate.bleu_score (when installed; scripts/setup.sh
--python installs it). Plus the one-line errors of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_cli

SENTIMENT = ROOT / "models" / "sentiment.recur"
POS = ROOT / "models" / "pos.recur"
TRANSLATOR = ROOT / "models" / "translate-en-es.recur"


def eval_json(cli, *args) -> dict:
    return json.loads(run_cli(cli, "eval", *args, "--json").stdout)


def numpy_metrics(truth, pred, k):
    """Confusion (rows true, columns predicted), per-class P/R/F1 (0 where undefined), macro over the
    classes in the data or the predictions, weighted by support."""
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (np.asarray(truth), np.asarray(pred)), 1)
    tp = np.diag(conf).astype(float)
    col, row = conf.sum(0).astype(float), conf.sum(1).astype(float)
    p = np.divide(tp, col, out=np.zeros(k), where=col > 0)
    r = np.divide(tp, row, out=np.zeros(k), where=row > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros(k), where=(p + r) > 0)
    present = (row > 0) | (col > 0)
    return dict(confusion=conf, precision=p, recall=r, f1=f, accuracy=tp.sum() / conf.sum(),
                macro=(p[present].mean(), r[present].mean(), f[present].mean()),
                weighted=tuple(float((x * row).sum() / row.sum()) for x in (p, r, f)))


def check_metrics(e, truth, pred, labels):
    ref = numpy_metrics(truth, pred, len(labels))
    assert e["labels"] == labels
    assert np.array_equal(np.array(e["confusion"]), ref["confusion"])
    assert e["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-12)
    for i, c in enumerate(e["per_class"]):
        assert c["label"] == labels[i]
        assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((ref["precision"][i], ref["recall"][i], ref["f1"][i]), abs=1e-12)
        assert c["support"] == ref["confusion"][i].sum()
    assert (e["macro"]["precision"], e["macro"]["recall"], e["macro"]["f1"]) == pytest.approx(ref["macro"], abs=1e-12)
    assert (e["weighted"]["precision"], e["weighted"]["recall"], e["weighted"]["f1"]) == pytest.approx(ref["weighted"], abs=1e-12)


def test_classifier_metrics_match_numpy(cli, library, tmp_path):
    import recur
    lines = [l for l in (ROOT / "data/sentiment/vader_movie.tsv").read_text().splitlines() if l.strip()][:300]
    data = tmp_path / "sentences.tsv"
    data.write_text("\n".join(lines) + "\n")
    e = eval_json(cli, SENTIMENT, "--data", data)
    with recur.Model(str(SENTIMENT)) as m:
        labels = m.labels
        pred = [int(np.argmax(m.classify(l.rsplit("\t", 1)[0]))) for l in lines]
    truth = [int(l.rsplit("\t", 1)[1]) for l in lines]
    assert e["predictions"] == pred and e["count"] == len(lines)
    check_metrics(e, truth, pred, labels)
    text = run_cli(cli, "eval", SENTIMENT, "--data", data).stdout
    assert "macro avg" in text and "weighted avg" in text and "confusion" in text


def test_tagger_metrics_match_numpy(cli, library, tmp_path):
    import recur
    truth, pred = [], []
    with recur.Model(str(POS)) as m:
        labels = m.labels
        # The sentences whose gold tokens the binding's text split keeps as they are (the command tags the
        # gold tokens; the binding tags text).
        lines = []
        for l in (ROOT / "data/pos/en_ewt-ud-test.upos.txt").read_text().splitlines()[:200]:
            toks = [t.rsplit("/", 1) for t in l.split()]
            if not toks:
                continue
            tagged = m.tag(" ".join(w for w, _ in toks))      # as written: the capitals are features
            if [w.lower() for w, _ in tagged] != [w.lower() for w, _ in toks]:
                continue
            lines.append(l)
            truth += [labels.index(t) for _, t in toks]
            pred += [labels.index(t) for _, t in tagged]
    assert len(lines) > 80
    data = tmp_path / "tagged.txt"
    data.write_text("\n".join(lines) + "\n")
    e = eval_json(cli, POS, "--data", data)
    assert e["predictions"] == pred and e["sentences"] == len(lines)
    check_metrics(e, truth, pred, labels)


def test_frame_classifier_prints_the_same_table(cli):
    e = eval_json(cli, ROOT / "models/japanese-vowels.recur", "--frames", ROOT / "data/frames/JapaneseVowels_TEST.ts")
    conf = np.array(e["confusion"])
    assert conf.sum() == e["count"] == 370 and len(e["per_class"]) == len(e["labels"])
    pred = [j for i in range(len(conf)) for j in range(len(conf)) for _ in range(conf[i, j])]
    truth = [i for i in range(len(conf)) for j in range(len(conf)) for _ in range(conf[i, j])]
    check_metrics(e, truth, pred, e["labels"])


def test_bleu_matches_nltk(cli, tmp_path):
    bleu = pytest.importorskip("nltk.translate.bleu_score")
    pairs = [l for l in (ROOT / "data/pairs/bible_nt_en_es.tsv").read_text().splitlines() if l.strip()][:80]
    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(pairs) + "\n")
    e = eval_json(cli, TRANSLATOR, "--pairs", data)
    assert e["pairs"] == len(pairs) and e["beam"] == 1
    # nltk counts max(1, n-grams) per sentence in the corpus denominators where Papineni counts 0 for a
    # translation shorter than n words: compare on the pairs translated into 4 words or more.
    kept = [p for p, t in zip(pairs, e["translations"]) if len(t.split()) >= 4]
    assert len(kept) > 40
    data.write_text("\n".join(kept) + "\n")
    for beam in (1, 3):
        e = eval_json(cli, TRANSLATOR, "--pairs", data, "--beam", beam)
        hyps = [t.split() for t in e["translations"]]
        refs = [r.split() for r in e["references"]]
        assert len(hyps) == len(kept) and all(len(h) >= 4 for h in hyps)
        assert sum(map(len, hyps)) == e["hypothesis_words"] and sum(map(len, refs)) == e["reference_words"]
        for n in range(1, 5):
            expected = bleu.corpus_bleu([[r] for r in refs], hyps, weights=(1 / n,) * n)
            assert e[f"bleu{n}"] == pytest.approx(expected, rel=1e-9, abs=1e-12), n
        smooth = bleu.SmoothingFunction().method1
        sentence = [bleu.sentence_bleu([r], h, smoothing_function=smooth) for r, h in zip(refs, hyps)]
        assert e["sentence_bleu4"] == pytest.approx(float(np.mean(sentence)), rel=1e-9)
        assert 0 < e["bleu4"] < e["bleu1"] < 1


def test_bleu_of_the_references_themselves_is_one(cli, tmp_path):
    # A translator evaluated on its own output: every figure is 1.
    pairs = [l for l in (ROOT / "data/pairs/bible_nt_en_es.tsv").read_text().splitlines() if l.strip()][:30]
    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(pairs) + "\n")
    e = eval_json(cli, TRANSLATOR, "--pairs", data)
    own = tmp_path / "own.tsv"
    own.write_text("".join(f"{p.split(chr(9))[0]}\t{t}\n" for p, t in zip(pairs, e["translations"]) if t))
    o = eval_json(cli, TRANSLATOR, "--pairs", own)
    assert [o[f"bleu{n}"] for n in range(1, 5)] == pytest.approx([1, 1, 1, 1])


@pytest.mark.parametrize("case", ["no-tab", "empty", "label", "tag", "generator", "frames-model", "part"])
def test_bad_input_is_one_line(cli, tmp_path, case):
    f = tmp_path / "data.txt"
    model, args = SENTIMENT, ["--data", f]
    if case == "no-tab":
        f.write_text("the cat sat\tel gato\nno tab here\n")
        model, args, want = TRANSLATOR, ["--pairs", f], "line 2: expected 'source<TAB>target' (no tab)"
    elif case == "empty":
        f.write_text("")
        model, args, want = TRANSLATOR, ["--pairs", f], "is empty"
    elif case == "label":
        f.write_text("good film\tpositive\nbad film\tterrible\n")
        want = "line 2: label 'terrible' is not one of the model's labels"
    elif case == "tag":
        f.write_text("the/DET cat/NOUN\nit/PRON purrs/MEOW\n")
        model, want = POS, "line 2: tag 'MEOW' is not one of the model's"
    elif case == "generator":
        f.write_text("a\tb\n")
        model, args, want = ROOT / "models/alice.recur", ["--pairs", f], "not a translator"
    elif case == "frames-model":
        f.write_text("a\t1\n")
        model, want = ROOT / "models/japanese-vowels.recur", "reads frames"
    else:
        f.write_text("good film\t1\n")
        args, want = ["--data", f, "--part", "tests"], "--part must be all, test, validation or train"
    p = run_cli(cli, "eval", model, *args, check=False)
    assert p.returncode != 0 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and want in lines[0], p.stderr
