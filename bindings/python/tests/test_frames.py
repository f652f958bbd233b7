"""Frame models (model.input = frames) through the C library: stepping, feeding and whole sequences against
the numpy reference (recur.reference), normalisation, padding frames, mean pooling, and bad input."""
import numpy as np
import pytest

import recur
from recur import format as rf
from recur.reference import ReferenceModel
from conftest import ROOT, run_cli

TOL = 2e-5


@pytest.fixture(scope="module")
def frame_models(cli, tmp_path_factory) -> dict:
    """Random frame models made by `recur create --frame-size`."""
    d = tmp_path_factory.mktemp("frames")
    specs = {
        "regress-lstm2-norm": ["--task", "regress", "--frame-size", "12", "--cell", "lstm", "--layers", "2",
                               "--hidden", "16", "--outputs", "3", "--normalized", "--seed", "3"],
        "tag-gru": ["--task", "tag", "--frame-size", "7", "--cell", "gru", "--hidden", "10", "--seed", "4"],
        "tag-gru-reset-before": ["--task", "tag", "--frame-size", "5", "--cell", "gru-reset-before", "--hidden", "9"],
        "classify-rnn": ["--task", "classify", "--frame-size", "4", "--cell", "rnn", "--hidden", "6"],
        "classify-peephole-bi": ["--task", "classify", "--frame-size", "6", "--cell", "peephole-lstm",
                                 "--hidden", "8", "--bidirectional", "--layers", "2", "--normalized"],
    }
    out = {}
    for name, args in specs.items():
        path = d / f"{name}.recur"
        run_cli(cli, "create", "--out", path, *args)
        out[name] = str(path)
    return out


def frames_for(m, T=17, seed=0):
    return np.random.default_rng(seed).normal(size=(T, m.frame_size)).astype(np.float32)


def test_frame_models_describe_themselves(library, frame_models):
    with recur.Model(frame_models["regress-lstm2-norm"]) as m:
        assert (m.input, m.frame_size, m.task, m.output_kind) == ("frames", 12, "regress", "values")
        info = m.info()
        assert info["format_version"] == (3, 0) and info["can_step"] and info["vocab_size"] == 0
    with recur.Model(frame_models["classify-peephole-bi"]) as m:
        assert (m.task, m.output_kind, m.info()["can_step"]) == ("classify", "probabilities", False)
        assert m.labels == ["a", "b", "c"]
    with recur.Model(ROOT / "models" / "alice.recur") as m:
        assert (m.input, m.frame_size, m.output_kind) == ("tokens", 0, "logits")


@pytest.mark.parametrize("name", ["regress-lstm2-norm", "tag-gru", "tag-gru-reset-before", "classify-rnn",
                                  "classify-peephole-bi"])
def test_predict_matches_the_reference(library, frame_models, name):
    path = frame_models[name]
    with recur.Model(path) as m:
        x = frames_for(m)
        got = m.predict(x)
        want = np.atleast_2d(ReferenceModel(rf.read(path)).forward_sequence(x))
        assert got.shape == want.shape == ((1 if m.task == "classify" else len(x)), m.info()["output_size"])
        assert np.abs(got - want).max() < TOL


@pytest.mark.parametrize("name", ["regress-lstm2-norm", "tag-gru", "tag-gru-reset-before", "classify-rnn"])
def test_stepping_matches_the_reference_and_the_whole_sequence(library, frame_models, name):
    path = frame_models[name]
    with recur.Model(path) as m:
        x = frames_for(m, T=23, seed=1)
        ref = ReferenceModel(rf.read(path))
        s = m.new_state()
        steps = np.stack([s.step(f) for f in x])
        assert s.position == len(x)
        want = np.stack([ref.step(f) for f in x])
        assert np.abs(steps - want).max() < TOL
        fed = m.new_state().feed(x)                       # prefill: one sgemm per chunk
        assert np.abs(fed - steps[-1]).max() < TOL
        if m.task != "classify":                          # per-step outputs equal the stepped ones
            assert np.abs(m.predict(x) - steps).max() < TOL
        s.reset()
        assert np.array_equal(s.step(x[0]), steps[0])
        view = s.step(x[1], copy=False)                   # the state's own output, overwritten by the next step
        assert np.array_equal(view, steps[1]) and s.step(x[2], copy=False) is view
        assert np.array_equal(view, steps[2])


def masked_model(tmp_path, pooling="last", sequences=False):
    """A GRU classifier over frames of 3 with input.mask_value = 0 (Keras' Masking) and the given pooling."""
    rng = np.random.default_rng(7)
    H, F = 5, 3
    meta = {"model.task": "classify", "model.input": "frames", "model.frame_size": F, "model.layer_count": 2,
            "model.labels": ["x", "y"], "input.mask_value": rf.Typed(rf.MetaType.FLOAT, 0.0),
            "layer.0.kind": "gru", "layer.0.input_size": F, "layer.0.units": H,
            "layer.0.return_sequences": pooling == "mean" or sequences,
            "layer.1.kind": "dense", "layer.1.input_size": H, "layer.1.units": 2, "layer.1.activation": "softmax"}
    if pooling == "mean":
        meta["model.pooling"] = "mean"
    tensors = {"layer.0.kernel": rng.normal(size=(3 * H, F)), "layer.0.recurrent_kernel": rng.normal(size=(3 * H, H)),
               "layer.0.bias": rng.normal(size=3 * H), "layer.0.recurrent_bias": rng.normal(size=3 * H),
               "layer.1.kernel": rng.normal(size=(2, H)), "layer.1.bias": rng.normal(size=2)}
    path = tmp_path / f"masked-{pooling}-{sequences}.recur"
    rf.write(path, meta, {k: v.astype(np.float32) for k, v in tensors.items()})
    return str(path)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_frames_are_skipped(library, tmp_path, pooling):
    path = masked_model(tmp_path, pooling)
    with recur.Model(path) as m:
        assert rf.read(path).version[0] == 3
        x = frames_for(m, T=9, seed=2)
        padded = np.concatenate([np.zeros((4, 3), np.float32), x, np.zeros((3, 3), np.float32)])
        a, b = m.predict(x), m.predict(padded)
        assert np.abs(a - b).max() < 1e-6                  # padding changes nothing
        want = ReferenceModel(rf.read(path)).forward_sequence(padded)
        assert np.abs(b[0] - want).max() < TOL
        if pooling == "mean":                             # the mean is over the real frames only
            assert np.abs(a[0] - ReferenceModel(rf.read(path)).forward_sequence(x)).max() < TOL


def test_a_padding_frame_leaves_the_stream_as_it_is(library, tmp_path):
    path = masked_model(tmp_path, "mean")
    with recur.Model(path) as m:
        x = frames_for(m, T=4, seed=3)
        s = m.new_state()
        out = s.step(x[0])
        before = s.save()
        again = s.step(np.zeros(3, np.float32))
        assert np.array_equal(out, again) and s.position == 2
        assert s.save()[40:] == before[40:]              # the same vectors and output (the header holds the position)


def test_bad_frames_are_refused_before_anything_changes(library, frame_models):
    with recur.Model(frame_models["tag-gru"]) as m:
        s = m.new_state()
        s.step(frames_for(m, T=1)[0])
        saved = s.save()
        bad = [
            (np.zeros(6, np.float32), ValueError, r"shape \(7,\)"),
            (np.array([0, 1, np.nan, 0, 0, 0, 0], np.float32), recur.RecurError, "feature 2; frames must be finite"),
            (np.array([0, 1, 2, 3, np.inf, 0, 0]), recur.RecurError, "frames must be finite"),
            ([0.5] * 6 + [float("nan")], recur.RecurError, "holds nan at feature 6"),
            (["a"] * 7, TypeError, "must hold numbers"),
        ]
        for frame, error, message in bad:
            with pytest.raises(error, match=message) as e:
                s.step(frame)
            if error is recur.RecurError:
                assert e.value.code == recur.Status.NUMERICAL
        for frames, error, message in [(np.zeros((0, 7)), ValueError, "at least one frame"),
                                       (np.zeros((3, 8)), ValueError, r"shape \(T, 7\)"),
                                       (np.full((2, 7), np.nan), recur.RecurError, "frame 0 holds nan")]:
            with pytest.raises(error, match=message):
                s.feed(frames)
            with pytest.raises(error, match=message):
                m.predict(frames)
        assert s.save() == saved
        for call in (m.tag, m.encode):
            with pytest.raises(recur.RecurError, match="reads frames of 7 floats, not tokens or text"):
                call("abc")
    with recur.Model(ROOT / "models" / "alice.recur") as text:
        with pytest.raises(recur.RecurError, match="reads tokens, not frames"):
            text.predict(np.zeros((2, 3), np.float32))


def test_the_c_api_refuses_what_python_would_not_send(library, frame_models):
    """NaN, a wrong frame size, a token given to a frame model, a frame given to a token model: each a
    status and a message from the library itself (the Python checks are skipped here)."""
    import ctypes as C
    from recur import _capi
    L = _capi.lib()
    with recur.Model(frame_models["tag-gru"]) as m, recur.Model(ROOT / "models" / "alice.recur") as text:
        s, t = m.new_state(), text.new_state()
        frame = (C.c_float * 7)(*([0.5] * 7))
        out = C.POINTER(C.c_float)()
        assert L.recur_state_step_frame(s._h(), frame, 7, C.byref(out)) == recur.Status.OK
        before = s.save()
        frame[3] = float("nan")
        assert L.recur_state_step_frame(s._h(), frame, 7, C.byref(out)) == recur.Status.NUMERICAL
        assert "frame 0 holds nan at feature 3" in _capi.last_error()
        assert L.recur_state_step_frame(s._h(), frame, 6, C.byref(out)) == recur.Status.INVALID_ARGUMENT
        assert L.recur_state_prefill_frames(s._h(), frame, 1, 8, C.byref(out)) == recur.Status.INVALID_ARGUMENT
        assert "frame_size is 8; frames of this model have 7 floats" in _capi.last_error()
        assert L.recur_state_step(s._h(), 1, C.byref(out)) == recur.Status.UNSUPPORTED
        assert "reads frames of 7 floats, not tokens" in _capi.last_error()
        assert L.recur_state_step_frame(t._h(), frame, 7, C.byref(out)) == recur.Status.UNSUPPORTED
        assert L.recur_predict(text._h(), frame, 1, 7, None, 0, C.byref(C.c_size_t())) == recur.Status.UNSUPPORTED
        assert s.save() == before
        rows = C.c_size_t()
        frame[3] = 0.0
        assert L.recur_predict(m._h(), frame, 1, 7, None, 0, C.byref(rows)) == recur.Status.BUFFER_TOO_SMALL
        assert rows.value == 1


def test_recur_predict_streams_the_rows_of_predict(library, cli, frame_models, tmp_path):
    path = frame_models["regress-lstm2-norm"]
    with recur.Model(path) as m:
        x = frames_for(m, T=6, seed=4)
        y = frames_for(m, T=3, seed=5)
        csv = tmp_path / "frames.csv"
        csv.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in x) + "\n\n"
                       + "\n".join(" ".join(repr(float(v)) for v in row) for row in y) + "\n")
        out = run_cli(cli, "predict", path, "--csv", csv).stdout.splitlines()
        want = np.concatenate([m.predict(x), m.predict(y)])
        got = np.array([[float(v) for v in line.split(",")] for line in out])
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-5
    with recur.Model(frame_models["classify-peephole-bi"]) as m:
        x = frames_for(m, T=5, seed=6)
        csv = tmp_path / "c.csv"
        csv.write_text("\n".join(",".join(map(str, row)) for row in x.tolist()) + "\n")
        label, p = run_cli(cli, "predict", frame_models["classify-peephole-bi"], "--csv", csv).stdout.strip().split(",")
        probs = m.predict(x)[0]
        assert label == m.labels[int(np.argmax(probs))] and abs(float(p) - probs.max()) < 1e-6


@pytest.mark.parametrize("lines, message", [
    (["1,2,3"], "line 1: 3 numbers; frames of this model have 7"),
    (["h1,h2", "1,2,3,4,5,6,x"], "line 2: not a list of numbers"),
    (["1,2,3,4,5,6,nan"], "line 1: value 7 is nan; frames must be finite"),
])
def test_recur_predict_refuses_bad_lines(cli, frame_models, tmp_path, lines, message):
    csv = tmp_path / "bad.csv"
    csv.write_text("\n".join(lines) + "\n")
    r = run_cli(cli, "predict", frame_models["tag-gru"], "--csv", csv, check=False)
    assert r.returncode != 0 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_recur_predict_refuses_a_text_model(cli, tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_text("1,2\n")
    r = run_cli(cli, "predict", ROOT / "models" / "alice.recur", "--csv", csv, check=False)
    assert r.returncode != 0 and "reads tokens, not frames" in r.stderr


def test_a_classifier_whose_last_layer_returns_every_step_reads_the_last(library, tmp_path):
    with recur.Model(masked_model(tmp_path, "last", sequences=True)) as m:
        x = frames_for(m, T=6, seed=8)
        got = m.predict(x)
        s = m.new_state()
        last = [s.step(f) for f in x][-1]
        assert got.shape == (1, 2) and np.abs(got[0] - last).max() < TOL
        padded = np.concatenate([np.zeros((2, 3), np.float32), x])   # leading padding: the head of the zero state
        s.reset()
        first = s.step(padded[0])
        ref = ReferenceModel(rf.read(masked_model(tmp_path, "last", sequences=True)))
        assert np.abs(first - ref.step(padded[0])).max() < TOL
        dense = rf.read(masked_model(tmp_path, "last", sequences=True)).tensors
        head = dense["layer.1.bias"].astype(np.float64)            # the head over the zero state: softmax(b)
        assert np.abs(first - np.exp(head) / np.exp(head).sum()).max() < TOL
