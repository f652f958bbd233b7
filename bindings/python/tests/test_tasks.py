"""Classify, tag and translate through the Python binding (and so the C API), against the numpy reference
(recur.reference) and against each other (beam 1 = greedy), on random-weight models from `recur create`,
plus the shipped sentiment and part-of-speech models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_cli


@pytest.fixture(scope="session")
def task_models(cli, tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("tasks")
    out = {}
    for task, cell, extra in [("classify", "lstm", []), ("classify-gru", "gru-reset-before", ["--merge-mode", "ave"]),
                              ("tag", "gru", []), ("tag-sum", "peephole-lstm", ["--merge-mode", "sum"]),
                              ("seq2seq", "gru", ["--layers", "2"]), ("seq2seq-lstm", "lstm", [])]:
        path = d / f"{task}.recur"
        run_cli(cli, "create", "--task", task.split("-")[0], "--cell", cell, "--hidden", "11", "--embedding", "5",
                "--seed", "9", "--out", str(path), *extra)
        out[task] = str(path)
    return out


def reference(path):
    from recur import format as fmt
    from recur.reference import ReferenceModel
    return ReferenceModel(fmt.read(path))


@pytest.mark.parametrize("name", ["classify", "classify-gru"])
def test_classify_matches_reference(library, task_models, name):
    import recur
    with recur.Model(task_models[name]) as m:
        assert m.labels == ["negative", "positive"]
        for text in ["w3 w4 w5", "w12 , w30 w31 w2 unknown .", "w9"]:
            got = m.classify(text)
            want = reference(task_models[name]).forward_sequence(m.encode(text))
            p = float(np.ravel(want)[-1])
            assert got.shape == (2,)
            np.testing.assert_allclose(got, [1 - p, p], atol=1e-5)


@pytest.mark.parametrize("name", ["tag", "tag-sum"])
def test_tag_matches_reference(library, task_models, name):
    import recur
    with recur.Model(task_models[name]) as m:
        text = "w3 w4 , w5 w6 w7 w8 ."
        ids = m.encode(text)
        got = m.tag(text)
        want = np.asarray(reference(task_models[name]).forward_sequence(ids))
        assert want.shape == (len(ids), 5)
        assert [t for _, t in got] == [m.labels[i] for i in want.argmax(axis=1)]
        assert [w for w, _ in got] == ["w3", "w4", ",", "w5", "w6", "w7", "w8", "."]


@pytest.mark.parametrize("name", ["seq2seq", "seq2seq-lstm"])
def test_beam_one_is_greedy_and_cli_agrees(library, cli, task_models, name):
    import recur
    with recur.Model(task_models[name]) as m:
        for text in ["s3 s4 s5", "s10 s11", "s20 s21 s22 s23 s24"]:
            greedy = m.translate(text, beam=1, max_length=15)
            beam1 = m.translate(text, beam=1, max_length=15, length_penalty=0.5)   # beam search path, k=1
            assert greedy == beam1
            beam4 = m.translate(text, beam=4, max_length=15)
            assert len(beam4.split()) <= 15
            out = run_cli(cli, "translate", task_models[name], "--text", text, "--beam", "4", "--max-length", "15")
            assert out.stdout.strip() == beam4


def test_task_errors(library, task_models, models):
    import recur
    with recur.Model(task_models["classify"]) as m:
        with pytest.raises(recur.RecurError) as e:
            m.translate("w3")
        assert e.value.code == recur.Status.UNSUPPORTED
        with pytest.raises(ValueError):
            m.translate("w3", beam=0)
        with pytest.raises(recur.RecurError):
            m.classify("   ")
    with recur.Model(task_models["seq2seq"]) as s:
        with pytest.raises(recur.RecurError) as e:
            s.classify("s3")
        assert e.value.code == recur.Status.UNSUPPORTED


SHIPPED = ROOT / "models"


@pytest.mark.skipif(not (SHIPPED / "sentiment.recur").exists(), reason="no shipped sentiment model")
def test_shipped_sentiment_model(library):
    import recur
    with recur.Model(str(SHIPPED / "sentiment.recur")) as m:
        pos = m.classify("a wonderful, moving and beautifully acted film")
        neg = m.classify("a dull, boring and terrible waste of time")
        assert m.labels[int(pos.argmax())] == "positive" or pos[-1] > neg[-1]
        assert pos[-1] > neg[-1]


@pytest.mark.skipif(not (SHIPPED / "pos.recur").exists(), reason="no shipped tagger")
def test_shipped_tagger(library):
    import recur
    with recur.Model(str(SHIPPED / "pos.recur")) as m:
        tags = dict(m.tag("the cat sat on the mat ."))
        assert tags["the"] == "DET" and tags["."] == "PUNCT"
