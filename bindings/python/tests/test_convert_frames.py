"""The frame-model converters, proven against the frameworks' own outputs.

Every committed fixture in tests/fixtures/convert/frames (built by scripts/make_frame_fixtures.py with real
Keras 3, tf.keras and PyTorch: models that read frames of F floats, no embedding) is converted, and the
runtime's outputs — through the Python binding and the C library, ``Model.predict`` over each whole
sequence of the fixture's batch — are compared with the framework's saved outputs (max-abs ≤ 1e-4).
Padded sequences (Masking cases) are given to the runtime as they were given to Keras' predict, padding
frames included. Models without a bidirectional layer are also stepped frame by frame (``State.step``),
which must give the whole-sequence outputs. The numpy reference (recur.reference) is checked too.

The live tests at the end (marked ``live``) rebuild the fixtures with the installed frameworks into a
temporary folder and run the same checks:

    PYTHONPATH=bindings/python python -m pytest bindings/python/tests/test_convert_frames.py -m live
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))

from recur import convert as rc                      # noqa: E402
from recur import format as rf                       # noqa: E402
from recur.convert import ConvertError               # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "convert", "frames")
TOL = 1e-4


def _manifest(folder: str) -> dict:
    with open(os.path.join(folder, "manifest.json")) as f:
        return json.load(f)


def _variants(entry: dict) -> list:
    out = []
    for fmt, spec in entry["files"].items():
        kw = dict(entry.get("options", {}))
        if isinstance(spec, list):
            src, kw["config"] = spec[0], spec[1]
        else:
            src = spec
        out.append((f"{entry['name']}[{fmt}]", src, kw))
    return out


def _convert(folder: str, src: str, kw: dict, out: str) -> dict:
    kw = dict(kw)
    if "config" in kw:
        kw["config"] = os.path.join(folder, kw["config"])
    return rc.convert(os.path.join(folder, src), out, **kw)


def _lib():
    import recur
    recur.library_path()
    return recur


def check_case(folder: str, entry: dict, src: str, kw: dict, tmp_path) -> float:
    """Converts one saved model; its runtime outputs over every sequence must be the framework's."""
    from recur.reference import ReferenceModel
    recur = _lib()
    out = str(tmp_path / (os.path.basename(src) + ".recur"))
    summary = _convert(folder, src, kw, out)
    assert summary["task"] == entry["task"] and summary["input"] == "frames"
    assert summary["frame_size"] == entry["frame_size"] and summary["pooling"] == entry["pooling"]
    parsed = rf.read(out)
    meta = parsed.metadata
    assert parsed.version[0] == 3
    assert meta["model.input"] == "frames" and meta["model.frame_size"] == entry["frame_size"]
    assert meta.get("model.pooling", "last") == entry["pooling"]
    assert meta.get("input.mask_value") == entry["mask_value"]
    data = np.load(os.path.join(folder, entry["name"] + ".npz"))
    frames, expected = data["frames"], data["outputs"].astype(np.float64)
    worst = 0.0
    ref = ReferenceModel(parsed)
    with recur.Model(out) as m:
        assert m.input == "frames" and m.frame_size == entry["frame_size"]
        for b in range(frames.shape[0]):
            got = np.asarray(m.predict(frames[b]), dtype=np.float64)
            want = expected[b]
            if entry["task"] == "classify":
                got = got.reshape(-1)
            assert got.shape == want.shape, f"{src}: runtime output shape {got.shape}, framework {want.shape}"
            if entry.get("padding_outputs_differ"):
                # Keras' Bidirectional outputs zeros at padding frames (see test_bidirectional_outputs_at_padding):
                # the real frames are compared.
                real = ~np.all(frames[b] == np.float32(entry["mask_value"]), axis=1)
                got, want = got[real], want[real]
            diff = float(np.max(np.abs(got - want)))
            assert diff <= TOL, f"{src}: sequence {b}: runtime differs from the framework by {diff:.3g}"
            worst = max(worst, diff)
            r = np.asarray(ref.forward_sequence(list(frames[b])), dtype=np.float64).reshape(-1, *want.shape[1:])
            if entry.get("padding_outputs_differ"):
                r = r[real]
            assert float(np.max(np.abs(r - want))) <= TOL, f"{src}: sequence {b}: the numpy reference differs"
            if entry["steps"]:
                st = m.new_state()
                steps = np.stack([np.asarray(st.step(f), dtype=np.float64) for f in frames[b]])
                if entry["task"] == "classify":
                    if entry["pooling"] == "last":
                        d = float(np.max(np.abs(steps[-1] - got)))
                        assert d <= TOL, f"{src}: sequence {b}: the last step differs from predict by {d:.3g}"
                else:
                    # Padding frames included: stepped, they answer the head over the carried state, as predict.
                    d = float(np.max(np.abs(steps - got)))
                    assert d <= TOL, f"{src}: sequence {b}: stepping differs from predict by {d:.3g}"
                    d = float(np.max(np.abs(steps - want)))
                    assert d <= TOL, f"{src}: sequence {b}: stepping differs from the framework by {d:.3g}"
    return worst


def _leading_padding(frames: np.ndarray, mask_value) -> int:
    """How many frames at the start of a sequence are padding (every feature equal to the mask value)."""
    if mask_value is None:
        return 0
    pad = np.all(frames == np.float32(mask_value), axis=1)
    return int(np.argmin(pad)) if not pad.all() else len(pad)


def _committed():
    if not os.path.exists(os.path.join(FIXTURES, "manifest.json")):
        return []
    return [(vid, e, src, kw) for e in _manifest(FIXTURES)["cases"] for vid, src, kw in _variants(e)]


@pytest.mark.parametrize("vid,entry,src,kw", _committed(), ids=[c[0] for c in _committed()])
def test_frame_fixture_matches_framework(vid, entry, src, kw, tmp_path, record_property):
    record_property("max_abs", check_case(FIXTURES, entry, src, kw, tmp_path))     # in --junitxml reports


def test_stepping_through_leading_padding(tmp_path):
    """A per-step model stepped over padding that comes before the first real frame: Keras (and the runtime's
    own predict) answer the head of the zero state at those frames."""
    recur = _lib()
    out = str(tmp_path / "m.recur")
    rc.convert(_fixture("k3f_mask_lstm_regress.keras"), out)
    data = np.load(_fixture("k3f_mask_lstm_regress.npz"))
    frames, want = data["frames"][1], data["outputs"][1].astype(np.float64)
    lead = _leading_padding(frames, -1.0)
    assert lead == 4
    with recur.Model(out) as m:
        st = m.new_state()
        steps = np.stack([np.asarray(st.step(f), dtype=np.float64) for f in frames[:lead]])
    assert float(np.max(np.abs(steps - want[:lead]))) <= TOL


@pytest.mark.xfail(strict=True, reason="runtime: at a padding frame a bidirectional layer outputs each direction's "
                   "carried state; Keras' Bidirectional (zero_output_for_mask) outputs zeros there")
def test_bidirectional_outputs_at_padding(tmp_path):
    """Masking → Bidirectional(return_sequences) → per-frame head: Keras' outputs at the padding frames."""
    recur = _lib()
    out = str(tmp_path / "m.recur")
    rc.convert(_fixture("k3f_mask_bigru_last_tag.keras"), out)
    data = np.load(_fixture("k3f_mask_bigru_last_tag.npz"))
    with recur.Model(out) as m:
        for b in range(data["frames"].shape[0]):
            got = m.predict(data["frames"][b]).astype(np.float64)
            assert float(np.max(np.abs(got - data["outputs"][b]))) <= TOL


def test_frame_fixtures_cover_the_constructs():
    cases = {e["name"]: e for e in _manifest(FIXTURES)["cases"]}
    assert {e["framework"] for e in cases.values()} == {"keras", "tf_keras", "torch"}
    assert {e["task"] for e in cases.values()} == {"classify", "tag", "regress"}
    assert any(e["pooling"] == "mean" and e["framework"] != "torch" for e in cases.values())
    assert any(e["mask_value"] is not None for e in cases.values())
    formats = {fmt for e in cases.values() for fmt in e["files"]}
    assert {"keras", "weights_h5", "h5", "h5_weights", "checkpoint", "torch", "safetensors"} <= formats
    torch_cases = [e for e in cases.values() if e["framework"] == "torch"]
    assert {e["batch_first"] for e in torch_cases} == {True, False}


def _first_variants():
    seen, out = set(), []
    for vid, e, src, kw in _committed():
        if e["name"] not in seen:
            seen.add(e["name"])
            out.append((vid, e, src, kw))
    return out


@pytest.mark.parametrize("vid,entry,src,kw", _first_variants(), ids=[c[0] for c in _first_variants()])
def test_recur_predict_matches_framework(vid, entry, src, kw, tmp_path, cli):
    """`recur predict --csv` (the CLI, reading the sequences as CSV separated by empty lines) prints what the
    framework computed: values per frame (regress), the most probable label and its probability per frame
    (tag) or per sequence (classify). It prints 6 significant digits."""
    out = str(tmp_path / "m.recur")
    _convert(FIXTURES, src, kw, out)
    data = np.load(os.path.join(FIXTURES, entry["name"] + ".npz"))
    frames, expected = data["frames"], data["outputs"].astype(np.float64)
    csv = tmp_path / "frames.csv"
    csv.write_text("\n\n".join("\n".join(",".join(repr(float(v)) for v in f) for f in seq) for seq in frames) + "\n")
    p = subprocess.run([cli, "predict", out, "--csv", str(csv), "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    per_seq = 1 if entry["task"] == "classify" else frames.shape[1]
    assert len(lines) == frames.shape[0] * per_seq
    for b in range(frames.shape[0]):
        got = lines[b * per_seq:(b + 1) * per_seq]
        want = expected[b].reshape(per_seq, -1)
        keep = np.ones(per_seq, bool)
        if entry.get("padding_outputs_differ"):
            keep = ~np.all(frames[b] == np.float32(entry["mask_value"]), axis=1)
        for t in np.flatnonzero(keep):
            w = want[t]
            if entry["task"] == "regress":
                assert np.max(np.abs(np.array(got[t]["values"]) - w)) <= TOL, f"{vid}: sequence {b} frame {t}"
            else:
                probs = np.array([1 - w[0], w[0]]) if w.shape == (1,) else w
                assert int(got[t]["label"]) == int(np.argmax(probs)), f"{vid}: sequence {b} frame {t}"
                assert abs(got[t]["probability"] - probs.max()) <= TOL, f"{vid}: sequence {b} frame {t}"


# --- Structure of the converted files -----------------------------------------------------------

def _fixture(name):
    p = os.path.join(FIXTURES, name)
    if not os.path.exists(p):
        pytest.skip(f"fixture {name} missing")
    return p


def test_normalization_becomes_mean_and_scale(tmp_path):
    out = str(tmp_path / "n.recur")
    rc.convert(_fixture("k3f_norm_gap_cls.keras"), out)
    p = rf.read(out)
    assert p.metadata["model.pooling"] == "mean" and p.metadata["input.mask_value"] == 0.0
    mean, scale = p.tensors["input.mean"], p.tensors["input.scale"]
    assert mean.shape == scale.shape == (8,)
    frames = np.load(_fixture("k3f_norm_gap_cls.npz"))["frames"]
    real = frames.reshape(-1, 8)
    real = real[~np.all(real == 0.0, axis=1)]
    # Adapted on the data before padding: about its mean and 1/std (3 and 1/2 by construction).
    assert np.all(np.abs(mean - 3.0) < 1.0) and np.all(np.abs(scale - 0.5) < 0.25)
    assert p.metadata["layer.0.kind"] == "gru" and p.metadata["model.layer_count"] == 2


def test_summary_line_names_the_architecture(tmp_path):
    out = tmp_path / "m.recur"
    cmd = [sys.executable, "-m", "recur.convert", _fixture("k3f_mask_gru_cls.keras"), str(out)]
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "bindings", "python"))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    line = p.stdout.strip()
    assert "\n" not in line
    assert "task classify (pooling last), input frames of 6" in line
    assert "frames(6, mask 0) -> GRU(12, tanh/sigmoid, reset_after, last step) -> Dense(3, softmax)" in line
    out2 = tmp_path / "t.recur"
    p = subprocess.run([sys.executable, "-m", "recur.convert", _fixture("ptf_lstm_last_cls.pt"), str(out2),
                        "--task", "classify", "--head", "last-output"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert "batch_first either way" in p.stdout and "head reads output[:, -1]" in p.stdout
    p = subprocess.run([sys.executable, "-m", "recur.convert", _fixture("k3f_mask_bigru_last_tag.keras"),
                        str(tmp_path / "b.recur")], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "at padding frames the per-frame outputs differ from Keras" in p.stdout


# --- What is refused, with the option or the reason --------------------------------------------

def _expect_error(tmp_path, match, src, **kw):
    out = tmp_path / "out.recur"
    with pytest.raises(ConvertError, match=match) as ei:
        rc.convert(str(src), str(out), **kw)
    assert "\n" not in str(ei.value)
    assert not out.exists()
    assert [f for f in os.listdir(tmp_path) if f.startswith("out.recur")] == []
    return str(ei.value)


def _edit_config(tmp_path, name, edit):
    """The fixture's config as a Sequential model (so that layers can be inserted without wiring), edited."""
    with open(_fixture(name)) as f:
        cfg = json.load(f)
    cfg["class_name"] = "Sequential"
    cfg["config"]["layers"] = [l for l in cfg["config"]["layers"] if l["class_name"] not in ("NotEqual", "Any")]
    for l in cfg["config"]["layers"]:
        l.pop("inbound_nodes", None)
    edit(cfg["config"]["layers"])
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(cfg))
    return str(p)


def test_torch_frame_model_needs_a_task(tmp_path):
    _expect_error(tmp_path, "--task classify.*--task tag.*--task regress", _fixture("ptf_gru_cls.pt"))


def test_torch_bidirectional_classifier_needs_a_head(tmp_path):
    msg = _expect_error(tmp_path, "--head hn", _fixture("ptf_bilstm2_cls.pt"), task="classify",
                        dense_activations=["relu", "softmax"])
    assert "--head last-output" in msg and "--head mean" in msg
    # output[:, -1] of a bidirectional layer (the backward direction's first step) is not what the runtime's
    # frame classifiers read.
    _expect_error(tmp_path, "last-output.*bidirectional", _fixture("ptf_bilstm2_cls.pt"), task="classify",
                  head="last-output", dense_activations=["relu", "softmax"])


def test_torch_head_only_for_classifiers(tmp_path):
    _expect_error(tmp_path, "classifiers only", _fixture("ptf_lstm2_tag.pt"), task="tag", head="mean")


def test_vocabulary_is_refused_for_frames(tmp_path):
    chars = tmp_path / "c.txt"
    chars.write_text("ab")
    _expect_error(tmp_path, "frame model.*--chars", _fixture("k3f_lstm_cls.keras"), chars=str(chars))


def test_keras_task_must_agree_with_the_layers(tmp_path):
    _expect_error(tmp_path, "one output per sequence", _fixture("k3f_lstm_cls.keras"), task="tag")
    _expect_error(tmp_path, "one output per frame", _fixture("k3f_gru2_tag.keras"), task="classify")


def test_keras_ambiguous_head_needs_a_task(tmp_path):
    def relu_head(layers):
        layers[-1]["config"]["layer"]["config"]["activation"] = "relu"
    # A per-frame head ending in relu is neither a tagger nor a regressor: --task decides.
    import zipfile
    src = tmp_path / "relu.keras"
    with zipfile.ZipFile(_fixture("k3f_gru2_regress.keras")) as z, zipfile.ZipFile(src, "w") as w:
        for n in z.namelist():
            data = z.read(n)
            if n == "config.json":
                c = json.loads(data)
                relu_head(c["config"]["layers"])
                data = json.dumps(c).encode()
            w.writestr(n, data)
    _expect_error(tmp_path, "--task tag or --task regress", src)
    out = tmp_path / "ok.recur"
    assert rc.convert(str(src), str(out), task="regress")["task"] == "regress"


def test_keras_layers_a_frame_model_cannot_have(tmp_path):
    base = "k3f_lstm_cls.json"
    weights = _fixture("k3f_lstm_cls.weights.h5")

    def insert(i, layer):
        return lambda ls: ls.insert(i, layer)

    conv = {"module": "keras.layers", "class_name": "Conv1D", "config": {"name": "conv1d", "filters": 4}}
    msg = _expect_error(tmp_path, "Conv1D", weights, config=_edit_config(tmp_path, base, insert(1, conv)))
    assert "frame model" in msg
    gmp = {"module": "keras.layers", "class_name": "GlobalMaxPooling1D", "config": {"name": "gmp"}}
    _expect_error(tmp_path, "GlobalMaxPooling1D", weights, config=_edit_config(tmp_path, base, insert(2, gmp)))
    late_mask = {"module": "keras.layers", "class_name": "Masking", "config": {"name": "m", "mask_value": 0.0}}
    _expect_error(tmp_path, "Masking", weights, config=_edit_config(tmp_path, base, insert(2, late_mask)))
    dense_first = {"module": "keras.layers", "class_name": "Dense",
                   "config": {"name": "d0", "units": 12, "activation": "linear"}}
    _expect_error(tmp_path, "first layer must be recurrent|before the first recurrent",
                  weights, config=_edit_config(tmp_path, base, insert(1, dense_first)))


def test_stack_rules_of_frame_models():
    """What frames.assemble refuses whatever the reader: a dense layer between recurrent layers, a pooling
    after a layer that returns its last step, half a normalisation."""
    from recur.convert.common import Direction, Recurrent, Dense, Source
    from recur.convert.frames import FrameInput, MeanPool, assemble

    def gru(In, H, seq=True, name="gru"):
        z = np.zeros
        d = Direction(z((3 * H, In), np.float32), z((3 * H, H), np.float32), z(3 * H, np.float32), z(3 * H, np.float32))
        return Recurrent(cell="gru", input_size=In, units=H, directions=[d], name=name, return_sequences=seq)

    def dense(In, U, act="linear", name="dense"):
        return Dense(kernel=np.zeros((U, In), np.float32), bias=np.zeros(U, np.float32), name=name, activation=act)

    def refuse(layers, match):
        with pytest.raises(ConvertError, match=match):
            assemble(Source(layers=layers, format="test"))
    refuse([FrameInput(4), gru(4, 8), dense(8, 8, "relu"), gru(8, 8, name="gru2"), dense(8, 2)], "follows the dense")
    refuse([FrameInput(4), gru(4, 8, seq=False), MeanPool(), dense(8, 2, "softmax")], "returns only its last step")
    refuse([FrameInput(4), dense(4, 8), gru(8, 8)], "first layer must be recurrent")
    refuse([FrameInput(4, mean=np.zeros(4, np.float32)), gru(4, 8), dense(8, 1)], "both a mean and a scale")
    refuse([FrameInput(4, mean=np.zeros(3, np.float32), scale=np.ones(3, np.float32)), gru(4, 8), dense(8, 1)],
           r"shape \[3\], expected \[4\]")
    meta, tensors, task, pooling = assemble(Source(layers=[FrameInput(4, mask_value=0.5), gru(4, 8), MeanPool(),
                                                           dense(8, 3, "softmax")], format="test"))
    assert (task, pooling) == ("classify", "mean")
    m = dict(meta)
    assert m["model.input"] == "frames" and m["model.frame_size"] == 4 and m["input.mask_value"] == 0.5
    assert m["model.layer_count"] == 2 and "input.mean" not in tensors


def test_keras_pooling_must_follow_sequences(tmp_path):
    gap = {"module": "keras.layers", "class_name": "GlobalAveragePooling1D", "config": {"name": "gap"}}
    cfg = _edit_config(tmp_path, "k3f_lstm_cls.json", lambda ls: ls.insert(2, gap))
    _expect_error(tmp_path, "returns sequences", _fixture("k3f_lstm_cls.weights.h5"), config=cfg)


def test_keras_normalization_variants(tmp_path):
    weights = _fixture("k3f_norm_gap_cls.weights.h5")

    def set_norm(**kw):
        def edit(ls):
            for l in ls:
                if l["class_name"] == "Normalization":
                    l["config"].update(kw)
        return edit
    _expect_error(tmp_path, "invert", weights, config=_edit_config(tmp_path, "k3f_norm_gap_cls.json",
                                                                     set_norm(invert=True)))
    _expect_error(tmp_path, "axis", weights, config=_edit_config(tmp_path, "k3f_norm_gap_cls.json",
                                                                   set_norm(axis=1)))


def test_keras_masking_and_normalization_order(tmp_path):
    def move_masking_after_normalization(ls):
        i = next(k for k, l in enumerate(ls) if l["class_name"] == "Masking")
        ls.insert(i + 1, ls.pop(i))
    cfg = _edit_config(tmp_path, "k3f_norm_gap_cls.json", move_masking_after_normalization)
    _expect_error(tmp_path, "Masking.*after Normalization", _fixture("k3f_norm_gap_cls.weights.h5"), config=cfg)

    def masking_first(ls):
        ls.insert(0, {"class_name": "Masking", "config": {"name": "masking", "mask_value": 0.0}})
    # tf.keras' Normalization drops the mask of a Masking layer before it (Keras 3 keeps it).
    cfg = _edit_config(tmp_path, "k2f_norm_bigru_regress.json", masking_first)
    _expect_error(tmp_path, "tf.keras' Normalization drops the mask", _fixture("k2f_norm_bigru_regress.weights-only.h5"),
                  config=cfg)


def _weights_copy(tmp_path, name, edit):
    import h5py
    import shutil
    dst = tmp_path / ("edited-" + name)
    shutil.copy(_fixture(name), dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return str(dst)


def test_malformed_frame_sources(tmp_path):
    cfg = _fixture("k3f_norm_gap_cls.json")

    def set_var(i, value):
        def edit(f):
            d = f[f"layers/normalization/vars/{i}"]
            a = d[()]
            a[0] = value
            d[...] = a
        return edit
    w = _weights_copy(tmp_path, "k3f_norm_gap_cls.weights.h5", set_var(1, -1.0))
    _expect_error(tmp_path, "negative", w, config=cfg)
    w = _weights_copy(tmp_path, "k3f_norm_gap_cls.weights.h5", set_var(0, float("nan")))
    _expect_error(tmp_path, "non-finite", w, config=cfg)
    w = _weights_copy(tmp_path, "k3f_norm_gap_cls.weights.h5", lambda f: f.__delitem__("layers/normalization/vars/1"))
    _expect_error(tmp_path, "Normalization", w, config=cfg)

    def mask_value(v):
        def edit(ls):
            next(l for l in ls if l["class_name"] == "Masking")["config"]["mask_value"] = v
        return edit
    _expect_error(tmp_path, "mask_value", _fixture("k3f_norm_gap_cls.weights.h5"),
                  config=_edit_config(tmp_path, "k3f_norm_gap_cls.json", mask_value("zero")))

    def declare(F):
        def edit(cfg):
            for l in cfg["config"]["layers"]:
                if l["class_name"] == "InputLayer":
                    l["config"]["batch_shape"] = [None, None, F]
        return edit
    with open(_fixture("k3f_lstm_cls.json")) as f:
        c = json.load(f)
    declare(7)(c)
    p = tmp_path / "declared.json"
    p.write_text(json.dumps(c))
    _expect_error(tmp_path, "declares frames of 7 floats", _fixture("k3f_lstm_cls.weights.h5"), config=str(p))
    with open(_fixture("ptf_gru_cls.pt"), "rb") as f:
        blob = f.read()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(blob[: len(blob) // 2])
    _expect_error(tmp_path, ".", cut, task="classify")


def _write_safetensors(path, tensors: dict) -> None:
    header, data, off = {}, b"", 0
    for k, v in tensors.items():
        b = np.ascontiguousarray(v, dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + data)


def test_torch_bias_free_linear_head(tmp_path):
    """A frame model whose nn.Linear has no bias: its 2-D weight [3, 12] cannot be an embedding of the GRU's
    6 inputs, so the state_dict reads as a frame model; --input frames says so explicitly. Its outputs are
    the framework's logits less the bias that was removed."""
    from recur.convert import torch_state
    recur = _lib()
    sd = torch_state.load(_fixture("ptf_gru_cls.pt"))
    bias = np.asarray(sd.pop("fcs.0.bias"), dtype=np.float64)
    src = tmp_path / "nobias.safetensors"
    _write_safetensors(src, sd)
    data = np.load(_fixture("ptf_gru_cls.npz"))
    for kw in ({}, {"input": "frames"}):
        out = str(tmp_path / "m.recur")
        assert rc.convert(str(src), out, task="classify", **kw)["input"] == "frames"
        with recur.Model(out) as m:
            for b in range(3):
                got = m.predict(data["frames"][b]).reshape(-1).astype(np.float64)
                assert float(np.max(np.abs(got - (data["outputs"][b] - bias)))) <= TOL


def test_input_option_checks_the_file(tmp_path):
    _expect_error(tmp_path, "--input tokens", _fixture("k3f_lstm_cls.keras"), input="tokens")
    token_model = os.path.join(ROOT, "tests", "fixtures", "convert", "k3_lstm.keras")
    if os.path.exists(token_model):
        _expect_error(tmp_path, "--input frames", token_model, input="frames")
        _expect_error(tmp_path, "--head applies to PyTorch classifiers", token_model, head="hn",
                      chars=os.path.join(os.path.dirname(token_model), "chars.txt"))
        _expect_error(tmp_path, "--head mean applies to PyTorch frame classifiers", token_model, head="mean",
                      chars=os.path.join(os.path.dirname(token_model), "chars.txt"))


def test_cli_errors_are_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "bindings", "python"))
    p = subprocess.run([sys.executable, "-m", "recur.convert", _fixture("ptf_gru_cls.pt"), str(tmp_path / "o.recur")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("recur-convert: error:") and "--task" in lines[0]
    assert not (tmp_path / "o.recur").exists()


@pytest.mark.parametrize("src,kw", [("k3f_norm_gap_cls.keras", []), ("k2f_norm_bigru_regress.h5", []),
                                    ("k2f_norm_bigru_regress.ckpt.index", ["--config", "k2f_norm_bigru_regress.json"]),
                                    ("ptf_bilstm2_cls.pt", ["--task", "classify", "--head", "hn",
                                                            "--dense-activations", "relu,softmax"]),
                                    ("ptf_bigru_regress.safetensors", ["--task", "regress"])])
def test_frame_fixtures_convert_in_bounded_memory(src, kw, tmp_path):
    """The converter's child process of test_convert_hostile.py (address space limited to its baseline +
    512 MiB) converts the frame fixtures too."""
    pytest.importorskip("h5py")
    sys.path.insert(0, HERE)
    import test_convert_hostile as th
    kw = [os.path.join(FIXTURES, a) if a.endswith(".json") else a for a in kw]
    out = str(tmp_path / "out.recur")
    p = subprocess.run([sys.executable, "-c", th._LIMITED, th.PACKAGE, str(th.LIMIT_EXTRA), os.path.join(FIXTURES, src),
                        out, *kw], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert rf.read(out).metadata["model.input"] == "frames"


# --- Live: the fixtures rebuilt by the installed frameworks ---------------------------------------

def _have(*mods) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in mods)


def _builder():
    spec = importlib.util.spec_from_file_location("make_frame_fixtures",
                                                  os.path.join(ROOT, "scripts", "make_frame_fixtures.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _live(framework: str, tmp_path):
    folder = str(tmp_path / "fixtures")
    _builder().build(folder, only=(framework,))
    cases = _manifest(folder)["cases"]
    assert cases
    for entry in cases:
        for vid, src, kw in _variants(entry):
            case_dir = tmp_path / vid.replace("[", "_").replace("]", "")
            case_dir.mkdir()
            check_case(folder, entry, src, kw, case_dir)


@pytest.mark.live
@pytest.mark.skipif(not _have("keras", "tensorflow", "h5py"), reason="Keras 3 / TensorFlow not installed")
def test_live_frames_keras3(tmp_path):
    import keras
    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip(f"keras {keras.__version__} is not Keras 3")
    _live("keras3", tmp_path)


@pytest.mark.live
@pytest.mark.skipif(not _have("tf_keras", "tensorflow", "h5py"), reason="tf_keras (Keras 2) not installed")
def test_live_frames_keras2(tmp_path):
    _live("keras2", tmp_path)


@pytest.mark.live
@pytest.mark.skipif(not _have("torch", "safetensors"), reason="PyTorch / safetensors not installed")
def test_live_frames_torch(tmp_path):
    _live("torch", tmp_path)
