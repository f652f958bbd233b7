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


def _lines(path: Path, n: int) -> str:
    with open(path, encoding="utf-8") as f:
        return "".join(f.readline() for _ in range(n))


def test_train_task_is_train_with_task(library, cli, tmp_path):
    """`recur train --task X …` runs `recur train-task --task X …`: same figures, same weights."""
    from recur import format as rf
    data = tmp_path / "sentiment.tsv"
    data.write_text(_lines(ROOT / "data" / "sentiment" / "vader_movie.tsv", 120), encoding="utf-8")
    common = ["--task", "classify", "--data", data, "--epochs", "2", "--hidden", "5", "--embedding", "4",
              "--dense", "3", "--vocab", "200", "--batch", "8"]
    a = run_cli(cli, "train", *common, "--out", tmp_path / "a.recur")
    b = run_cli(cli, "train-task", *common, "--out", tmp_path / "b.recur")
    assert a.stdout == b.stdout and '"type":"test"' in a.stdout
    ta, tb = rf.read(str(tmp_path / "a.recur")), rf.read(str(tmp_path / "b.recur"))
    assert ta.metadata["training.command"].startswith("train --task classify")
    assert sorted(ta.info) == sorted(tb.info)
    for name in ta.info:
        assert bytes(ta.raw(name)) == bytes(tb.raw(name)), name
    # Without --task (or with --task generate) it is the character trainer, which needs --text.
    p = run_cli(cli, "train", "--task", "generate", "--out", tmp_path / "c.recur", check=False)
    assert p.returncode != 0 and "--text" in p.stderr
    # regress trains forecasters of a series (test_frame_training.py), and says what it needs.
    p = run_cli(cli, "train", "--task", "regress", "--out", tmp_path / "d.recur", check=False)
    assert p.returncode != 0 and "--task regress needs --series" in p.stderr
    p = run_cli(cli, "train", "--task", "forecast", "--out", tmp_path / "d.recur", check=False)
    assert p.returncode != 0 and "classify, tag, seq2seq or regress" in p.stderr
    # The seq2seq trainer trains GRU encoder-decoders: another cell is refused, not replaced by a GRU.
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(_lines(ROOT / "data" / "pairs" / "bible_nt_en_es.tsv", 40), encoding="utf-8")
    for cell in ("lstm", "peephole-lstm", "rnn"):
        p = run_cli(cli, "train", "--task", "seq2seq", "--data", pairs, "--cell", cell, "--epochs", "1",
                    "--out", tmp_path / "e.recur", check=False)
        assert p.returncode != 0 and f"--cell {cell} is not supported" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "e.recur").exists()


def test_classify_tag_regularisers(library, cli, tmp_path):
    """The dropout, L2 and initialiser options of classify/tag: a run with them is reproducible (same
    weights twice), differs from one without, and writes a model the runtime reads like any other; they
    are refused, with one line and a non-zero exit, where they do not apply."""
    from recur import format as rf
    data = tmp_path / "tagged.txt"
    data.write_text(_lines(ROOT / "data" / "pos" / "en_ewt-ud-dev.upos.txt", 60), encoding="utf-8")
    common = ["--task", "tag", "--data", data, "--epochs", "2", "--hidden", "5", "--embedding", "4", "--batch", "8"]
    reg = ["--init", "keras", "--word-dropout", "0.1", "--spatial-dropout", "0.2", "--input-dropout", "0.1",
           "--recurrent-dropout", "0.2", "--dropout", "0.3", "--l2", "0.0001"]
    for name, extra in [("a", reg), ("b", reg), ("c", [])]:
        run_cli(cli, "train", *common, *extra, "--out", tmp_path / f"{name}.recur")
    a, b, c = (rf.read(str(tmp_path / f"{n}.recur")) for n in "abc")
    assert sorted(a.info) == sorted(c.info)
    assert all(bytes(a.raw(n)) == bytes(b.raw(n)) for n in a.info)
    assert any(bytes(a.raw(n)) != bytes(c.raw(n)) for n in a.info)
    assert "--recurrent-dropout 0.2" in a.metadata["training.command"]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(_lines(ROOT / "data" / "pairs" / "bible_nt_en_es.tsv", 40), encoding="utf-8")
    refused = [
        (["--task", "seq2seq", "--data", pairs, "--recurrent-dropout", "0.2"], "--recurrent-dropout is an option of --task classify"),
        (["--task", "seq2seq", "--data", pairs, "--init", "keras"], "--init is an option of --task classify"),
        (["--task", "classify", "--frames", ROOT / "data" / "frames" / "JapaneseVowels_TRAIN.ts", "--spatial-dropout", "0.1"],
         "--spatial-dropout is an option of --task classify"),
        (["--task", "regress", "--series", ROOT / "data" / "frames" / "sunspots_monthly.csv", "--l2", "0.01"], "--l2 is an option of --task classify"),
        ([*common, "--recurrent-dropout", "1"], "--recurrent-dropout must be in [0, 1)"),
        ([*common, "--l2", "-1"], "--l2 must be"),
        ([*common, "--init", "glorot"], "--init must be uniform or keras"),
        ([*common, "--cell", "gru-reset-before", "--recurrent-dropout", "0.1"], "not gru-reset-before"),
    ]
    for args, message in refused:
        out = tmp_path / "refused.recur"
        p = run_cli(cli, "train", *args, "--epochs", "1", "--out", out, check=False)
        assert p.returncode != 0 and message in p.stderr, (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and not out.exists()


def test_mean_pooling_text_classifier(library, cli, tmp_path):
    """`--task classify --pooling mean`: the head reads the mean of the BiLSTM's steps (model.pooling = mean),
    and the runtime's probabilities are the numpy reference's for the written weights."""
    import recur
    from recur import format as rf
    from recur.reference import ReferenceModel
    data = tmp_path / "sentiment.tsv"
    data.write_text(_lines(ROOT / "data" / "sentiment" / "vader_movie.tsv", 120), encoding="utf-8")
    common = ["--task", "classify", "--data", data, "--epochs", "2", "--hidden", "5", "--embedding", "4",
              "--dense", "3", "--vocab", "200", "--batch", "8"]
    run_cli(cli, "train", *common, "--pooling", "mean", "--out", tmp_path / "mean.recur")
    run_cli(cli, "train", *common, "--out", tmp_path / "last.recur")
    f = rf.read(str(tmp_path / "mean.recur"))
    assert f.metadata["model.pooling"] == "mean" and "--pooling mean" in f.metadata["training.command"]
    assert "model.pooling" not in rf.read(str(tmp_path / "last.recur")).metadata
    ref = ReferenceModel(f)
    sentences = [l.rsplit("\t", 1)[0] for l in data.read_text(encoding="utf-8").splitlines()[:25]]
    with recur.Model(str(tmp_path / "mean.recur")) as m, recur.Model(str(tmp_path / "last.recur")) as last:
        for s in sentences:
            ids = m.encode(s)
            want = ref.forward_sequence(ids)
            got = m.classify(s)
            assert np.abs(got[-1] - want[-1]).max() < 1e-5, (s, got, want)
        # The same options but the last step: a different model (pooling changes what is trained).
        assert any(abs(m.classify(s)[-1] - last.classify(s)[-1]) > 1e-4 for s in sentences)


def test_reversed_source_translator(library, cli, tmp_path):
    """A translator trained with --reverse-source records encoder.reverse_source and reports it."""
    import json
    data = tmp_path / "pairs.tsv"
    data.write_text(_lines(ROOT / "data" / "pairs" / "bible_nt_en_es.tsv", 80), encoding="utf-8")
    out = tmp_path / "rev.recur"
    p = run_cli(cli, "train", "--task", "seq2seq", "--data", data, "--out", out, "--epochs", "2", "--hidden", "6",
                "--embedding", "4", "--vocab", "60", "--max-length", "80", "--beam", "2", "--reverse-source",
                "--dropout", "0.2")
    tests = [json.loads(line) for line in p.stdout.splitlines()]
    assert [t["beam"] for t in tests] == [1, 2]
    assert all(t["reverse_source"] is True and {"bleu", "bleu1", "bleu2"} <= t.keys() for t in tests)
    info = json.loads(run_cli(cli, "info", out, "--json").stdout)
    assert info["metadata"]["encoder.reverse_source"] is True
    assert "reverse order" in run_cli(cli, "info", out).stdout
    p = run_cli(cli, "train", "--task", "classify", "--out", tmp_path / "x.recur", "--reverse-source", check=False)
    assert p.returncode != 0 and "seq2seq" in p.stderr


@pytest.mark.parametrize("name", ["seq2seq", "seq2seq-lstm"])
def test_reverse_source_key_through_the_c_api(library, cli, task_models, tmp_path, name):
    """With encoder.reverse_source, a model translates a text as the same weights without the key translate
    its words reversed (the appended EOS staying last), from Python (C API) and from the command."""
    import recur
    from recur import format as rf
    data = rf.read(task_models[name])
    meta = data.typed_metadata()
    meta["encoder.reverse_source"] = rf.Typed(rf.MetaType.BOOL, True)
    path = tmp_path / "rev.recur"
    rf.write(str(path), meta, data.raw_tensors())
    changed = 0
    with recur.Model(str(path)) as rev, recur.Model(task_models[name]) as fwd:
        for text in ["s3 s4 s5", "s10 s11 s12 s13", "s20 s3 s21 s22 s9"]:
            backwards = " ".join(reversed(text.split()))
            for k in [1, 3]:
                got = rev.translate(text, beam=k, max_length=15)
                assert got == fwd.translate(backwards, beam=k, max_length=15)
                changed += got != fwd.translate(text, beam=k, max_length=15)
            cmd = run_cli(cli, "translate", path, "--text", text, "--beam", "3", "--max-length", "15").stdout.strip()
            assert cmd == rev.translate(text, beam=3, max_length=15)
    assert changed > 0, "the reading order should change some translation of these random models"


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


@pytest.mark.skipif(not (SHIPPED / "translate-en-es.recur").exists(), reason="no shipped translator")
def test_shipped_translator(library):
    """The shipped translator with attention, against the numpy reference of its file: the greedy
    translation of test sentences token for token, and every step's attention weights."""
    import recur
    from recur import format as rf
    from recur.reference import ReferenceTranslator
    path = str(SHIPPED / "translate-en-es.recur")
    ref = ReferenceTranslator(rf.read(path))
    assert ref.attention is not None
    with recur.Model(path) as m:
        for text in ["He who has ears to hear, let him hear.", "Jesus answered them,", "I am the light of the world.",
                     "Then the disciples came to him and said, why do you speak to them in parables?"]:
            att = m.attention(text, max_length=40)
            want, _, _, rows = ref.greedy(att.source_ids, max_length=40)
            assert att.target_ids == list(want), text
            assert np.abs(np.asarray(att.weights) - np.asarray(rows)[:len(att.target_ids)]).max() < 1e-4, text
            assert att.text == m.translate(text, beam=1, max_length=40) and att.text
