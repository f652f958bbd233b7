"""`recur train --task classify --frames` / `--task regress --series` and `recur eval` of frame models, through
the command and the Python binding (the C API): the written models' figures recomputed in numpy from
`Model.predict`, the normalisation fitted on the training part only, and bad input refused with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT, run_cli


def write_ts(path, seqs, labels, classes):
    lines = ["# synthetic", "@problemName Synthetic", "@timeStamps false", "@missing false", "@univariate false",
             f"@dimensions {seqs[0].shape[1]}", "@equalLength false", "@classLabel true " + " ".join(classes), "@data"]
    for s, y in zip(seqs, labels):
        lines.append(":".join(",".join(f"{v:.6f}" for v in s[:, k]) for k in range(s.shape[1])) + ":" + y)
    path.write_text("\n".join(lines) + "\n")


def synthetic(n, seed):
    """Two features; class 'rise' has an increasing first feature, 'fall' a decreasing one; offsets far from 0."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        T = int(rng.integers(4, 11))
        up = i % 2 == 0
        ramp = np.linspace(0, 1, T) * (1 if up else -1)
        seqs.append(np.column_stack([100 + 5 * ramp + 0.3 * rng.standard_normal(T), -3 + rng.standard_normal(T)]))
        labels.append("rise" if up else "fall")
    return seqs, labels


@pytest.fixture(scope="module")
def frame_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames")
    tr, te = synthetic(60, 1), synthetic(30, 2)
    write_ts(d / "train.ts", *tr, ["rise", "fall"])
    write_ts(d / "test.ts", *te, ["rise", "fall"])
    # The test part as CSV (one row per frame), for `recur eval`.
    rows = ["id,label,a,b"] + [f"s{i},{y},{f[0]:.6f},{f[1]:.6f}" for i, (s, y) in enumerate(zip(*te)) for f in s]
    (d / "test.csv").write_text("\n".join(rows) + "\n")
    t = np.arange(400)
    series = 50 + 20 * np.sin(t / 6) + 0.05 * t
    (d / "series.csv").write_text("step,value\n" + "".join(f"{i},{v:.4f}\n" for i, v in enumerate(series)))
    return d, tr, te, series.astype(np.float32)


def test_frame_classifier_trains_and_evaluates(cli, library, frame_files, tmp_path):
    import recur
    d, tr, te, _ = frame_files
    out = tmp_path / "c.recur"
    p = run_cli(cli, "train", "--task", "classify", "--frames", d / "train.ts", "--test", d / "test.ts", "--out", out,
                "--hidden", "8", "--dense", "0", "--pooling", "mean", "--epochs", "15", "--patience", "0")
    line = json.loads(p.stdout.strip().splitlines()[-1])
    assert line["sequences"] == 30
    with recur.Model(str(out)) as m:
        assert m.input == "frames" and m.frame_size == 2 and m.labels == ["rise", "fall"]
        pred = [m.labels[int(np.argmax(m.predict(s.astype(np.float32))[-1]))] for s in te[0]]
    acc = np.mean([a == b for a, b in zip(pred, te[1])])
    assert line["accuracy"] == pytest.approx(acc)
    assert acc >= 0.9  # an easy problem: the sign of a ramp
    # input.mean / input.scale are the training part's (every 5th training sequence is validation).
    from recur import format as fmt
    f = fmt.read(str(out))
    frames = np.concatenate([s for i, s in enumerate(tr[0]) if i % 5 != 4]).astype(np.float32)
    np.testing.assert_allclose(f.tensors["input.mean"], frames.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(f.tensors["input.scale"], 1 / frames.std(axis=0), rtol=1e-4)
    assert f.metadata["model.pooling"] == "mean"
    # recur eval on the same sequences as CSV: the same accuracy, and a confusion matrix that adds up.
    e = json.loads(run_cli(cli, "eval", out, "--frames", d / "test.csv", "--sequence-column", "id", "--json").stdout)
    assert e["accuracy"] == pytest.approx(acc) and e["sequences"] == 30
    conf = np.array(e["confusion"])
    assert conf.sum() == 30 and np.trace(conf) == round(acc * 30)
    text = run_cli(cli, "eval", out, "--frames", d / "test.csv", "--sequence-column", "id").stdout
    assert "confusion" in text and "accuracy" in text


def test_forecaster_trains_and_evaluates(cli, library, frame_files, tmp_path):
    import recur
    d, _, _, series = frame_files
    out = tmp_path / "f.recur"
    p = run_cli(cli, "train", "--task", "regress", "--series", d / "series.csv", "--out", out, "--hidden", "8", "--horizon", "3",
                "--window", "40", "--stride", "5", "--epochs", "5", "--patience", "0", "--test-fraction", "0.2", "--val-fraction", "0.1")
    line = json.loads(p.stdout.strip().splitlines()[-1])
    n = len(series)
    start = n - 80
    with recur.Model(str(out)) as m:
        f = m.predict(series.reshape(-1, 1))
    assert f.shape == (n, 3)
    for h in (1, 2, 3):
        j = np.arange(start, n)
        want = np.mean(np.abs(f[j - h, h - 1].astype(np.float64) - series[j]))
        assert line["mae"][h - 1] == pytest.approx(want, rel=1e-6)
    # The normalisation is the training part's: the first 400 − 80 − 40 values.
    from recur import format as fmt
    t = fmt.read(str(out))
    train = series[:n - 120].astype(np.float64)
    assert float(t.tensors["input.mean"][0]) == pytest.approx(train.mean(), rel=1e-5)
    assert float(t.tensors["input.scale"][0]) == pytest.approx(1 / train.std(), rel=1e-4)
    e = json.loads(run_cli(cli, "eval", out, "--series", d / "series.csv", "--test-fraction", "0.2", "--json").stdout)
    assert e["mae"] == pytest.approx(line["mae"]) and e["first_evaluated"] == start


@pytest.mark.parametrize("content,needle", [
    ("@problemName x\n@classLabel true a b\n@data\n1,2:3,4:a\n", "line 4: expected 1 dimension and a class label separated by ':', found 3 fields"),
    ("@classLabel true a b\n@data\n1,2,x:a\n", "line 3: dimension 1, value 3 'x' is not a finite number"),
    ("@classLabel true a b\n@data\n1,nan:a\n", "line 3: dimension 1, value 2 'nan' is not a finite number"),
    ("@classLabel true a b\n@data\n1,2:c\n", "line 3: class label 'c' is not declared by @classLabel"),
    ("just text\n", "line 1: expected a header tag"),
])
def test_bad_ts_is_one_line(cli, tmp_path, content, needle):
    bad = tmp_path / "bad.ts"
    bad.write_text(content)
    p = run_cli(cli, "train", "--task", "classify", "--frames", bad, "--out", tmp_path / "o.recur", check=False)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr


def test_bad_options_and_series(cli, frame_files, tmp_path):
    d = frame_files[0]
    out = tmp_path / "o.recur"
    bad_series = tmp_path / "gap.csv"
    bad_series.write_text("date,co2\n1,316.1\n2,\n")
    cases = [
        (["train", "--task", "regress", "--out", out], "--task regress needs --series FILE.csv"),
        (["train", "--task", "tag", "--out", out, "--pooling", "mean"], "--pooling is an option of --task classify"),
        (["train", "--task", "classify", "--out", out, "--pooling", "max"], "--pooling must be last or mean"),
        (["train", "--task", "classify", "--frames", d / "train.ts", "--out", out, "--horizon", "3"], "--horizon is an option of --task regress"),
        (["train", "--task", "classify", "--frames", d / "train.ts", "--out", out, "--pooling", "max"], "--pooling must be last or mean"),
        (["train", "--task", "classify", "--frames", d / "train.ts", "--out", out, "--embedding", "8"], "--embedding is not an option of frame models"),
        (["train", "--task", "regress", "--series", bad_series, "--out", out], "line 3: column 'co2' is empty"),
        (["train", "--task", "regress", "--series", d / "series.csv", "--out", out, "--column", "nope"], "no column 'nope'"),
        (["train", "--task", "classify", "--frames", d / "series.csv", "--out", out], "no column 'sequence'"),
        (["eval", d / "missing.recur", "--frames", d / "test.ts", "--series", d / "series.csv"], "give one of --text, --data, --pairs, --frames and --series"),
    ]
    for args, needle in cases:
        p = run_cli(cli, *args, check=False)
        lines = p.stderr.strip().splitlines()
        assert p.returncode != 0 and len(lines) == 1 and needle in lines[0], (args, p.stderr)


def test_eval_refuses_the_wrong_kind_of_model(cli, frame_files, tmp_path):
    d = frame_files[0]
    out = tmp_path / "f.recur"
    run_cli(cli, "train", "--task", "regress", "--series", d / "series.csv", "--out", out, "--hidden", "4", "--horizon", "2",
            "--window", "30", "--stride", "10", "--epochs", "1")
    p = run_cli(cli, "eval", out, "--frames", d / "test.ts", check=False)
    assert p.returncode != 0 and "is a regressor" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = run_cli(cli, "eval", ROOT / "models" / "sentiment.recur", "--series", d / "series.csv", check=False)
    assert p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1


def read_ts(path):
    """A minimal reader of the shipped .ts files (independent of the Swift one): frames (T, dims) and labels."""
    seqs, labels, data = [], [], False
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not data:
            data = line.lower() == "@data"
            continue
        *dims, label = line.split(":")
        seqs.append(np.array([[float(v) for v in d.split(",")] for d in dims], dtype=np.float32).T)
        labels.append(label)
    return seqs, labels


def test_shipped_vowel_classifier(library):
    """models/japanese-vowels.recur through the C API: the figure of docs/FRAMES.md, 364 of 370."""
    import recur
    seqs, labels = read_ts(ROOT / "data" / "frames" / "JapaneseVowels_TEST.ts")
    assert len(seqs) == 370 and all(s.shape[1] == 12 for s in seqs)
    with recur.Model(str(ROOT / "models" / "japanese-vowels.recur")) as m:
        assert m.input == "frames" and m.frame_size == 12 and m.labels == [str(i) for i in range(1, 10)]
        pred = [m.labels[int(np.argmax(m.predict(s)[-1]))] for s in seqs]
    assert sum(p == y for p, y in zip(pred, labels)) == 364


def test_shipped_forecaster(library):
    """models/sunspots.recur: stepped month by month it gives its whole-sequence outputs, and on the test
    months its MAE at horizons 1 and 12 is below persistence and below a least-squares AR(p) fitted here."""
    import recur
    rows = (ROOT / "data" / "frames" / "sunspots_monthly.csv").read_text().split("\n")[1:]
    y = np.array([float(r.split(",")[1]) for r in rows if r], dtype=np.float32)
    n = len(y)
    train_end, val_end = n - 2 * 468, n - 468
    with recur.Model(str(ROOT / "models" / "sunspots.recur")) as m:
        f = m.predict(y.reshape(-1, 1))
        s = m.new_state()
        stepped = np.array([s.step(np.array([v], dtype=np.float32)) for v in y[:200]])
    np.testing.assert_allclose(stepped, f[:200], rtol=1e-5, atol=1e-4)
    yd = y.astype(np.float64)
    j = np.arange(val_end, n)
    for h, p in ((1, 27), (12, 33)):   # the p the validation part chooses (scripts/train_frame_models.py)
        model = np.mean(np.abs(f[j - h, h - 1] - yd[j]))
        persistence = np.mean(np.abs(yd[j - h] - yd[j]))
        X = np.column_stack([np.ones(train_end - p)] + [yd[p - i:train_end - i] for i in range(1, p + 1)])
        coef = np.linalg.lstsq(X, yd[p:train_end], rcond=None)[0]
        ar = []
        for t in j:
            hist = list(yd[t - h - p + 1:t - h + 1])
            for _ in range(h):
                hist.append(coef[0] + sum(coef[i] * hist[-i] for i in range(1, p + 1)))
            ar.append(hist[-1])
        ar = np.mean(np.abs(np.array(ar) - yd[j]))
        assert model < ar < persistence, (h, model, ar, persistence)
        assert model == pytest.approx({1: 12.671, 12: 19.856}[h], abs=5e-3)
