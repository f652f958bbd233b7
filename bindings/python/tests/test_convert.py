"""The converters, proven against the frameworks' own outputs.

Every committed fixture in tests/fixtures/convert (built by scripts/make_convert_fixtures.py with real
Keras, tf.keras and PyTorch) is converted, and the runtime's output for every step of a fixed token
sequence is compared with the framework's saved output (max-abs difference ≤ 1e-4). Character
generators must also produce the framework's 100 greedy characters. Models that the runtime runs as a
whole sequence (bidirectional, classify, tag) are compared through the independent numpy reference
(recur.reference) and, where the runtime exposes them, through `recur classify` / `recur tag`.

The runtime is reached through the Python binding when it is importable, else through the `recur` CLI
(``$RECUR_CLI``, then ``recur`` on PATH, then a release build under the repository's .build-* folders).
"""

from __future__ import annotations

import glob
import io
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))

from recur import convert as rc                      # noqa: E402
from recur import format as rf                       # noqa: E402
from recur.convert import ConvertError               # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "convert")
TOL = 1e-4


# --- Reaching the runtime ------------------------------------------------------------------------

def _find_cli():
    env = os.environ.get("RECUR_CLI")
    if env and os.path.exists(env):
        return env
    found = shutil.which("recur")
    if found:
        return found
    builds = sorted(glob.glob(os.path.join(ROOT, ".build*", "release", "recur")), key=os.path.getmtime, reverse=True)
    return builds[0] if builds else None


class Runtime:
    """The Recur runtime, through the binding (preferred) or the CLI."""

    def __init__(self):
        self.binding = None
        try:
            import recur
            recur.library_path()           # loads the library; fails when none is built or installed
            self.binding = recur
        except Exception:                  # no library: the CLI may still be there
            self.binding = None
        self.cli = _find_cli()
        self._commands: set = set()

    @property
    def available(self) -> bool:
        return self.binding is not None or self.cli is not None

    def stream(self, path: str, tokens) -> np.ndarray:
        """The model's output after each token, stepping one token at a time."""
        if self.binding is not None:
            m = self.binding.Model(path)
            try:
                st = m.new_state()
                return np.stack([np.array(st.step(int(t)), dtype=np.float64) for t in tokens])
            finally:
                if hasattr(m, "close"):
                    m.close()
        out = self._run("logits", path, "--tokens", ",".join(str(int(t)) for t in tokens))
        return np.array(json.loads(out), dtype=np.float64)

    def greedy(self, path: str, prompt: str, n: int) -> str:
        """n greedily generated characters after ``prompt`` (the runtime's own generation loop)."""
        if self.binding is not None:
            with self.binding.Model(path) as m:
                return "".join(m.generate(prompt, max_tokens=n, temperature=0))
        out = self._run("generate", path, "--prompt", prompt, "--tokens", str(n), "--temperature", "0",
                        "--no-prompt")
        assert out.endswith("\n"), "recur generate ends its output with a newline"
        return out[:-1]

    def has_command(self, name: str) -> bool:
        """Whether the CLI has the subcommand ``name`` (classify and tag arrived after logits)."""
        if self.cli is None:
            return False
        if not self._commands:
            p = subprocess.run([self.cli, "--help"], capture_output=True, text=True, timeout=60)
            self._commands = {m.group(1) for m in re.finditer(r"^  ([a-z][a-z-]*)(?:\s|$)", p.stdout, re.M)}
        return name in self._commands

    def classify(self, path: str, text: str):
        return json.loads(self._run("classify", path, "--text", text, "--json"))

    def tag(self, path: str, text: str):
        return json.loads(self._run("tag", path, "--text", text, "--json"))

    def _run(self, *args) -> str:
        p = subprocess.run([self.cli, *args], capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"recur {args[0]} failed: {p.stderr.strip()}")
        return p.stdout


RUNTIME = Runtime()
needs_runtime = pytest.mark.skipif(not RUNTIME.available, reason="neither the recur Python binding nor the recur CLI "
                                   "is available (build it: swift build -c release --scratch-path .build-x)")


# --- Fixture cases -------------------------------------------------------------------------------

def load_manifest(folder: str) -> dict:
    with open(os.path.join(folder, "manifest.json")) as f:
        return json.load(f)


def variants(entry: dict) -> list:
    """(variant id, source path, convert kwargs) for each saved format of a case: a list is [weights,
    config], or for an encoder-decoder [encoder, decoder]."""
    out = []
    for fmt, spec in entry["files"].items():
        kw = dict(entry.get("options", {}))
        if isinstance(spec, list):
            src = spec[0]
            # [weights, config]; an encoder-decoder in two files: [encoder, decoder]
            kw["decoder" if entry["task"] == "seq2seq" and not entry.get("functional") else "config"] = spec[1]
        else:
            src = spec
        out.append((f"{entry['name']}[{fmt}]", src, kw))
    return out


FILE_OPTIONS = ("config", "decoder", "vocab", "source_vocab")


def convert_case(folder: str, src: str, kw: dict, out: str) -> dict:
    kw = dict(kw)
    for k in FILE_OPTIONS:
        if k in kw:
            kw[k] = os.path.join(folder, kw[k])
    if "vocab" not in kw:
        kw["chars"] = os.path.join(folder, "chars.txt")
    return rc.convert(os.path.join(folder, src), out, **kw)


MAX_ABS: dict = {}          # variant → max-abs difference found (printed by the report test)


def check_seq2seq_attention(folder: str, entry: dict, src: str, out: str) -> None:
    """A translator with attention (Keras functional, keras_seq2seq.py) against Keras: the numpy reference
    of the converted file, teacher-forced, gives Keras' probabilities and attention scores at every step;
    the runtime's greedy translation (Model.attention) gives the ids of a greedy decode run with Keras'
    outputs, with Keras' attention scores at each of its steps, and `recur translate --json` Keras'
    log-probability of it."""
    from recur.reference import ReferenceTranslator
    parsed = rf.read(out)
    meta = parsed.metadata
    assert any(meta.get(f"layer.{i}.kind") == "attention" for i in range(meta["model.layer_count"]))
    assert meta.get("source_tokenizer.pad_id") == 0, "mask_zero=True: id 0 is the source's PAD, dropped"
    ref = ReferenceTranslator(parsed)
    data = np.load(os.path.join(folder, entry["name"] + ".npz"))
    diff = sdiff = 0.0
    for k, target in enumerate(data["target_in"]):
        source = [int(t) for t in data["sources"][k] if t >= 0]
        ref.start(source)
        for step, tok in enumerate(target):
            out_k = ref.step(int(tok))
            diff = max(diff, float(np.max(np.abs(out_k - data["outputs"][k, step]))))
            keras_scores = data["scores"][k, step].astype(np.float64)
            sdiff = max(sdiff, float(np.max(np.abs(ref.weights - keras_scores[:len(source)]))))
            assert keras_scores[len(source):].sum() < 1e-6, "Keras masked the PAD positions"
    MAX_ABS[src] = max(diff, sdiff)
    assert diff <= TOL, f"{src}: teacher-forced decoder outputs differ from Keras by {diff:.3g}"
    assert sdiff <= TOL, f"{src}: teacher-forced attention weights differ from Keras' scores by {sdiff:.3g}"
    if RUNTIME.binding is None:
        pytest.skip("the recur Python binding is not available for the runtime's translations")
    src_words = meta["source_tokenizer.tokens"]
    lengths = set()
    with RUNTIME.binding.Model(out) as m:
        for k, (ids, want) in enumerate(zip(data["sources"], data["greedy"])):
            source = [int(i) for i in ids if i >= 0]
            want = [int(t) for t in want if t >= 0]
            text = " ".join(src_words[i] for i in source)
            got = m.attention(text, beam=1, max_length=20)
            assert got.target_ids == want, f"{src}: greedy translation of {text!r}"
            assert got.source_ids == source
            assert got.text == m.translate(text, beam=1, max_length=20)
            if want:
                wd = float(np.max(np.abs(got.weights - data["greedy_scores"][k, :len(want), :len(source)])))
                MAX_ABS[src] = max(MAX_ABS[src], wd)
                assert wd <= TOL, f"{src}: the runtime's attention weights differ from Keras' scores by {wd:.3g}"
            lengths.add(len(want))
            if RUNTIME.has_command("translate"):
                j = json.loads(RUNTIME._run("translate", out, "--text", text, "--beam", "1", "--max-length", "20",
                                            "--json", "--attention"))
                assert j["tokens"] == want and j["source"] == source
                lp = float(data["greedy_log_probability"][k])
                assert abs(j["log_probability"] - lp) <= TOL * max(1.0, abs(lp)), \
                    f"{src}: log-probability {j['log_probability']} of the greedy translation, Keras {lp}"
    assert len(lengths) > 1, "the fixture's translations should differ in length"


def check_seq2seq(folder: str, entry: dict, src: str, out: str) -> None:
    """Teacher-forced decoder outputs of the converted file (numpy reference: the encoder's final state
    starts the decoder) against the framework's, then the runtime's greedy translations against the
    framework's greedy ids."""
    from recur.reference import ReferenceModel
    if entry.get("functional"):
        return check_seq2seq_attention(folder, entry, src, out)
    parsed = rf.read(out)
    meta, tensors = parsed.metadata, parsed.tensors
    enc_meta = {k[len("encoder."):]: v for k, v in meta.items() if k.startswith("encoder.")}
    enc_meta["model.layer_count"] = meta["encoder.layer_count"]
    enc_meta["model.task"] = "generate"
    enc = ReferenceModel(metadata=enc_meta, tensors={k[len("encoder."):]: v for k, v in tensors.items()
                                                     if k.startswith("encoder.")})
    dec = ReferenceModel(parsed)
    data = np.load(os.path.join(folder, entry["name"] + ".npz"))
    source = [int(t) for t in data["source"]]                  # what the runtime reads: EOS appended, then
    eos = meta.get("source_tokenizer.eos_id")                   # reversed but for that EOS
    if eos is not None:
        source.append(int(eos))
    if meta.get("encoder.reverse_source"):
        end = len(source) - (1 if eos is not None else 0)
        source[:end] = source[:end][::-1]
    enc.run(source)
    dec.h = [h.copy() for h in enc.h]
    dec.c = [None if c is None else c.copy() for c in enc.c]
    got = np.stack(dec.run(list(data["target_in"])))
    diff = float(np.max(np.abs(got - data["outputs"].astype(np.float64))))
    MAX_ABS[src] = diff
    assert diff <= TOL, f"{src}: decoder outputs differ from the framework by {diff:.3g}"
    if RUNTIME.binding is None:
        return
    src_words = meta["source_tokenizer.tokens"]
    tgt_words = meta["tokenizer.tokens"]
    with RUNTIME.binding.Model(out) as m:
        for ids, want in zip(data["sources"], data["greedy"]):
            text = " ".join(src_words[i] for i in ids if i >= 0)
            specials = {meta.get(f"tokenizer.{k}_id") for k in ("pad", "unk", "bos", "eos")}
            expected = " ".join(tgt_words[i] for i in want if i >= 0 and i not in specials)   # decoding skips them
            assert m.translate(text, beam=1, max_length=20) == expected, f"{src}: greedy translation of {text!r}"


def check_case(folder: str, entry: dict, src: str, kw: dict, tmp_path, manifest: dict) -> None:
    """Converts one saved model and compares every step with the framework's outputs."""
    from recur.reference import ReferenceModel

    out = str(tmp_path / (os.path.basename(src) + ".recur"))
    summary = convert_case(folder, src, kw, out)
    assert summary["task"] == entry["task"]
    if entry["task"] == "seq2seq":
        check_seq2seq(folder, entry, src, out)
        return
    data = np.load(os.path.join(folder, entry["name"] + ".npz"))
    tokens, expected = data["tokens"], data["outputs"].astype(np.float64)
    parsed = rf.read(out)
    assert parsed.metadata["model.task"] == entry["task"]

    if entry["task"] == "generate":
        if not RUNTIME.available:
            pytest.skip("runtime not available")
        got = RUNTIME.stream(out, tokens)
        assert got.shape == expected.shape
        diff = np.max(np.abs(got - expected))
        MAX_ABS[src] = float(diff)
        assert diff <= TOL, f"{src}: max-abs difference {diff:.3g} over {len(tokens)} steps"
        chars = open(os.path.join(folder, manifest["chars"]), encoding="utf-8", newline="").read()
        want = "".join(chars[i] for i in data["greedy"])
        text = RUNTIME.greedy(out, manifest["prompt"], int(manifest["greedy"]))
        assert text == want, f"{src}: greedy text differs"
        return

    # Whole-sequence models: the numpy reference of the converted file against the framework.
    ref = np.asarray(ReferenceModel(parsed).forward_sequence(list(tokens)), dtype=np.float64)
    if entry["task"] == "classify" and ref.ndim == 2 and expected.ndim == 1:
        ref = ref[-1]                  # a classifier reading the last step's output (output[:, -1])
    ref = ref.reshape(expected.shape)
    diff = np.max(np.abs(ref - expected))
    MAX_ABS[src] = float(diff)
    assert diff <= TOL, f"{src}: reference of the converted file differs from the framework by {diff:.3g}"
    if not RUNTIME.has_command(entry["task"]):
        return                         # the reference comparison above stands; no runtime command to ask
    chars = open(os.path.join(folder, manifest["chars"]), encoding="utf-8", newline="").read()
    text = "".join(chars[i] for i in tokens)
    if entry["task"] == "classify":
        got = RUNTIME.classify(out, text)
        probs = got["probabilities"]
        vals = np.array([probs[str(i)] for i in range(len(probs))], dtype=np.float64)
        want = np.array([1 - expected[0], expected[0]]) if expected.shape == (1,) else expected
        assert np.max(np.abs(vals - want)) <= TOL, f"{src}: recur classify differs from the framework"
    else:
        got = RUNTIME.tag(out, text)
        tags = [int(t) for _, t in got]
        assert tags == [int(np.argmax(r)) for r in expected], f"{src}: recur tag differs from the framework"


def _committed():
    if not os.path.exists(os.path.join(FIXTURES, "manifest.json")):
        return []
    m = load_manifest(FIXTURES)
    return [(vid, e, src, kw) for e in m["cases"] for vid, src, kw in variants(e)]


@pytest.mark.parametrize("vid,entry,src,kw", _committed(), ids=[c[0] for c in _committed()])
def test_fixture_matches_framework(vid, entry, src, kw, tmp_path):
    if entry["task"] == "generate" and not RUNTIME.available:
        pytest.skip("neither the recur Python binding nor the recur CLI is available")
    check_case(FIXTURES, entry, src, kw, tmp_path, load_manifest(FIXTURES))


def test_fixtures_cover_every_format():
    m = load_manifest(FIXTURES)
    formats = {fmt for e in m["cases"] for fmt in e["files"]}
    assert {"keras", "weights_h5", "h5", "h5_weights", "checkpoint", "torch", "safetensors"} <= formats
    frameworks = {e["framework"] for e in m["cases"]}
    assert frameworks == {"keras", "tf_keras", "torch"}


# --- Layout mapping, checked against plain numpy cells ---------------------------------------------

def _sig(x):
    return 1 / (1 + np.exp(-x))


def test_keras_gru_mapping_matches_keras_equations():
    """Keras GRU (z, r, h columns; bias [2, 3H]) → runtime rows r, z, n, checked by running both cells."""
    from recur.convert.mapping import keras_direction
    from recur.reference import gru_step
    rng = np.random.default_rng(0)
    In, Hd = 3, 4
    K, U, B = rng.normal(size=(In, 3 * Hd)), rng.normal(size=(Hd, 3 * Hd)), rng.normal(size=(2, 3 * Hd))
    x, h = rng.normal(size=In), rng.normal(size=Hd)
    # Keras' GRUCell, reset_after=True, written from its source's equations.
    xz, xr, xh = np.split(x @ K + B[0], 3)
    rz, rr, rh = np.split(h @ U + B[1], 3)
    z, r = _sig(xz + rz), _sig(xr + rr)
    keras_h = z * h + (1 - z) * np.tanh(xh + r * rh)
    d = keras_direction("gru", Hd, In, K, U, B, True, "t")
    p = {"W": d.kernel, "U": d.recurrent_kernel, "b": d.bias, "bh": d.recurrent_bias, "reset_after": True,
         "activation": "tanh", "recurrent_activation": "sigmoid"}
    assert np.max(np.abs(gru_step(p, x, h) - keras_h)) < 1e-5
    # reset_after=False: bias [3H], reset applied to h before the recurrent product.
    b1 = B[0]
    xz, xr, xh = np.split(x @ K + b1, 3)
    z, r = _sig(xz + h @ U[:, :Hd]), _sig(xr + h @ U[:, Hd:2 * Hd])
    keras_h = z * h + (1 - z) * np.tanh(xh + (r * h) @ U[:, 2 * Hd:])
    d = keras_direction("gru", Hd, In, K, U, b1, False, "t")
    p.update(W=d.kernel, U=d.recurrent_kernel, b=d.bias, reset_after=False)
    assert d.recurrent_bias is None
    assert np.max(np.abs(gru_step(p, x, h) - keras_h)) < 1e-5


def test_torch_lstm_bias_is_summed():
    from recur.convert.mapping import torch_direction
    rng = np.random.default_rng(1)
    w, u = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32)
    bi, bh = rng.normal(size=8).astype(np.float32), rng.normal(size=8).astype(np.float32)
    d = torch_direction("lstm", 2, 3, w, u, bi, bh, "t")
    assert np.allclose(d.bias, bi + bh) and d.recurrent_bias is None
    d = torch_direction("gru", 2, 3, rng.normal(size=(6, 3)), rng.normal(size=(6, 2)), bi[:6], bh[:6], "t")
    assert np.array_equal(d.bias, bi[:6]) and np.array_equal(d.recurrent_bias, bh[:6])


def test_hard_sigmoid_follows_keras_version():
    from recur.convert.mapping import keras_activation
    assert keras_activation("hard_sigmoid", 2, "t") == "hard_sigmoid_keras2"
    assert keras_activation("hard_sigmoid", 3, "t") == "hard_sigmoid_keras3"
    assert keras_activation({"module": "keras.activations", "class_name": "function", "config": "relu"}, 3, "t") == "relu"
    assert keras_activation(None, 3, "t") == "linear"
    with pytest.raises(ConvertError, match="gelu"):
        keras_activation("gelu", 3, "t")
    with pytest.raises(ConvertError, match="softmax"):
        keras_activation("softmax", 3, "t")


def test_fixture_metadata_records_the_source_version(tmp_path):
    m = load_manifest(FIXTURES)
    for e in m["cases"]:
        if e["name"] in ("k2_gru_hard", "k3_gru_hard"):
            vid, src, kw = variants(e)[0]
            out = str(tmp_path / "m.recur")
            convert_case(FIXTURES, src, kw, out)
            meta = rf.read(out).metadata
            want = "hard_sigmoid_keras2" if e["name"].startswith("k2") else "hard_sigmoid_keras3"
            assert meta["layer.1.recurrent_activation"] == want
            assert meta["layer.1.reset_after"] is False
            assert e["version"] in meta["general.source"]


# --- Vocabularies --------------------------------------------------------------------------------

def test_vocab_sources(tmp_path):
    from recur.convert import vocab as rv
    p = tmp_path / "v.json"
    p.write_text(json.dumps(["a", "b", "c"]))
    v = rv.load(str(p))
    assert (v.kind, v.pieces) == ("char", ["a", "b", "c"])
    p.write_text(json.dumps(["the", "cat", "."]))
    assert rv.load(str(p)).kind == "word"
    tok = {"class_name": "Tokenizer", "config": {"num_words": None, "oov_token": "<OOV>", "lower": True,
                                                 "char_level": False,
                                                 "word_index": json.dumps({"<OOV>": 1, "the": 2, "cat": 3})}}
    p.write_text(json.dumps(tok))
    v = rv.load(str(p))
    assert v.pieces == ["<pad>", "<OOV>", "the", "cat"] and v.specials == {"pad": 0, "unk": 1} and v.lowercase
    v = rv.fit(v, 6)
    assert len(v.pieces) == 6 and v.pieces[4].startswith("<unused")
    v = rv.load_chars(str(_write(tmp_path / "c.txt", "ab\n")))
    assert v.pieces == ["a", "b", "\n"]
    with pytest.raises(ConvertError, match="repeats"):
        rv.from_chars("abca").check()


def _write(p, text):
    p.write_text(text, encoding="utf-8", newline="") if sys.version_info >= (3, 10) else p.write_text(text)
    return p


# --- Malformed inputs: one clear error, no output file --------------------------------------------

def _fixture(name):
    p = os.path.join(FIXTURES, name)
    if not os.path.exists(p) and not os.path.exists(p + ".index"):       # a TF checkpoint prefix
        pytest.skip(f"fixture {name} missing")
    return p


def _expect_error(tmp_path, match, src, **kw):
    out = tmp_path / "out.recur"
    kw.setdefault("chars", os.path.join(FIXTURES, "chars.txt"))
    with pytest.raises(ConvertError, match=match) as ei:
        rc.convert(str(src), str(out), **kw)
    assert "\n" not in str(ei.value)
    assert not out.exists()
    assert [f for f in os.listdir(tmp_path) if f.startswith("out.recur")] == []
    return str(ei.value)


def test_truncated_keras_archive(tmp_path):
    blob = open(_fixture("k3_gru_char.keras"), "rb").read()
    bad = tmp_path / "bad.keras"
    bad.write_bytes(blob[: len(blob) // 2])
    _expect_error(tmp_path, "zip|archive", bad)


def test_missing_weight(tmp_path):
    import h5py
    src = tmp_path / "w.weights.h5"
    shutil.copy(_fixture("k3_gru_char.weights.h5"), src)
    with h5py.File(src, "r+") as f:
        del f["layers/gru/cell/vars/1"]
    msg = _expect_error(tmp_path, "recurrent_kernel", src, config=_fixture("k3_gru_char.json"))
    assert "gru" in msg


def test_wrong_shape(tmp_path):
    cfg = json.load(open(_fixture("k3_gru_char.json")))
    for layer in cfg["config"]["layers"]:
        if layer["class_name"] == "GRU":
            layer["config"]["units"] = 17
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(cfg))
    msg = _expect_error(tmp_path, "shape", _fixture("k3_gru_char.weights.h5"), config=str(p))
    assert "gru" in msg and "[8, 51]" in msg


def test_unsupported_layer(tmp_path):
    cfg = json.load(open(_fixture("k3_gru_char.json")))
    layers = cfg["config"]["layers"]
    layers.insert(2, {"module": "keras.layers", "class_name": "Conv1D", "config": {"name": "conv1d", "filters": 4}})
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(cfg))
    msg = _expect_error(tmp_path, "Conv1D", _fixture("k3_gru_char.weights.h5"), config=str(p))
    assert "conv1d" in msg


def _torch_zip(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")


def test_pickle_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    src = tmp_path / "evil.pt"
    _torch_zip(src, pickle.dumps({"embed.weight": Evil()}, protocol=2))
    msg = _expect_error(tmp_path, "refused", src)
    assert "system" in msg and ("posix" in msg or "os" in msg)
    assert not marker.exists()


def test_pickled_module_is_refused(tmp_path):
    # What torch.save(model) writes for a model class defined in a script: GLOBAL __main__.CharModel,
    # then NEWOBJ with no arguments (written out opcode by opcode).
    src = tmp_path / "model.pt"
    _torch_zip(src, b"\x80\x02c__main__\nCharModel\nq\x00)\x81q\x01.")
    msg = _expect_error(tmp_path, "refused to load the pickled global '__main__.CharModel'", src)
    assert "state_dict" in msg


def test_truncated_tf_index(tmp_path):
    idx = _fixture("k2_gru_hard.ckpt.index")
    for f in glob.glob(os.path.join(FIXTURES, "k2_gru_hard.ckpt.*")):
        shutil.copy(f, tmp_path)
    blob = open(idx, "rb").read()
    (tmp_path / "k2_gru_hard.ckpt.index").write_bytes(blob[:-20])
    _expect_error(tmp_path, "index|truncated", tmp_path / "k2_gru_hard.ckpt", config=_fixture("k2_gru_hard.json"))


def test_truncated_torch_file(tmp_path):
    blob = open(_fixture("pt_gru_char.pt"), "rb").read()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(blob[: len(blob) * 2 // 3])
    _expect_error(tmp_path, "zip|archive|torch", bad)


def test_safetensors_out_of_bounds(tmp_path):
    blob = bytearray(open(_fixture("pt_bilstm_cls.safetensors"), "rb").read())
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(blob[:-64]))
    _expect_error(tmp_path, "outside|bytes", bad, task="classify")


def test_no_vocabulary(tmp_path):
    _expect_error(tmp_path, "vocabulary", _fixture("k3_gru_char.keras"), chars=None)


def test_vocabulary_size_mismatch(tmp_path):
    p = _write(tmp_path / "c.txt", "abc")
    _expect_error(tmp_path, "3 tokens.*20 rows", _fixture("k3_gru_char.keras"), chars=str(p))


def test_cli_error_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "o.recur"
    env = dict(os.environ, PYTHONPATH=os.path.abspath(os.path.join(HERE, "..")))
    p = subprocess.run([sys.executable, "-m", "recur.convert", str(bad), str(out), "--chars",
                        os.path.join(FIXTURES, "chars.txt")], capture_output=True, text=True, env=env)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("recur-convert: error:")
    assert not out.exists()


def test_cli_converts(tmp_path):
    out = tmp_path / "o.recur"
    env = dict(os.environ, PYTHONPATH=os.path.abspath(os.path.join(HERE, "..")))
    p = subprocess.run([sys.executable, "-m", "recur.convert", _fixture("pt_gru_char.pt"), str(out), "--chars",
                        os.path.join(FIXTURES, "chars.txt")], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "task generate" in p.stdout
    assert rf.read(str(out)).metadata["tokenizer.kind"] == "char"


# --- One command each: a Keras .keras char model and a PyTorch state_dict generate the framework's text --

@needs_runtime
@pytest.mark.parametrize("src", ["k3_gru_char.keras", "pt_gru_char.pt"])
def test_one_command_conversion_generates_framework_greedy_text(src, tmp_path):
    """`python -m recur.convert MODEL OUT --chars chars.txt`, then 100 greedy characters in Recur equal the
    100 greedy characters the framework produced from the same prompt."""
    out = tmp_path / "char.recur"
    env = dict(os.environ, PYTHONPATH=os.path.abspath(os.path.join(HERE, "..")))
    p = subprocess.run([sys.executable, "-m", "recur.convert", _fixture(src), str(out), "--chars",
                        os.path.join(FIXTURES, "chars.txt")], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    manifest = load_manifest(FIXTURES)
    chars = open(os.path.join(FIXTURES, manifest["chars"]), encoding="utf-8", newline="").read()
    data = np.load(os.path.join(FIXTURES, src.split(".")[0] + ".npz"))
    assert "".join(chars[i] for i in data["prompt"]) == manifest["prompt"]
    want = "".join(chars[i] for i in data["greedy"])
    assert len(want) == 100
    assert RUNTIME.greedy(str(out), manifest["prompt"], 100) == want


# --- Keras configs the fixtures do not cover ---------------------------------------------------------

def _config_variant(tmp_path, edit):
    cfg = json.load(open(_fixture("k3_gru_char.json")))
    edit(cfg["config"]["layers"])
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(cfg))
    return str(p)


def _layer(layers, cls):
    return next(l for l in layers if l["class_name"] == cls)


def test_mask_zero_makes_id_0_the_pad_token(tmp_path):
    cfg = _config_variant(tmp_path, lambda ls: _layer(ls, "Embedding")["config"].update(mask_zero=True))
    out = tmp_path / "m.recur"
    rc.convert(_fixture("k3_gru_char.weights.h5"), str(out), chars=os.path.join(FIXTURES, "chars.txt"), config=cfg)
    assert rf.read(str(out)).metadata["tokenizer.pad_id"] == 0


def test_activation_layer_folds_only_into_a_linear_dense(tmp_path):
    act = {"module": "keras.layers", "class_name": "Activation", "config": {"name": "act", "activation": "softmax"}}
    cfg = _config_variant(tmp_path, lambda ls: ls.append(act))
    out = tmp_path / "m.recur"
    rc.convert(_fixture("k3_gru_char.weights.h5"), str(out), chars=os.path.join(FIXTURES, "chars.txt"), config=cfg)
    assert rf.read(str(out)).metadata["layer.2.activation"] == "softmax"
    cfg = _config_variant(tmp_path, lambda ls: ls.insert(3, act))       # between GRU and Dense
    _expect_error(tmp_path, "Activation", _fixture("k3_gru_char.weights.h5"), config=cfg)


def test_go_backwards_outside_bidirectional_is_refused(tmp_path):
    cfg = _config_variant(tmp_path, lambda ls: _layer(ls, "GRU")["config"].update(go_backwards=True))
    _expect_error(tmp_path, "go_backwards", _fixture("k3_gru_char.weights.h5"), config=cfg)


def test_hard_sigmoid_without_a_version_asks_for_one(tmp_path):
    def edit(ls):
        _layer(ls, "GRU")["config"]["recurrent_activation"] = "hard_sigmoid"
    cfg = json.load(open(_fixture("k3_gru_char.json")))
    edit(cfg["config"]["layers"])
    del cfg["module"]                               # no longer recognisably a Keras 3 config
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(cfg))
    _expect_error(tmp_path, "--keras-version", _fixture("k3_gru_char.weights.h5"), config=str(p))
    out = tmp_path / "m.recur"
    rc.convert(_fixture("k3_gru_char.weights.h5"), str(out), chars=os.path.join(FIXTURES, "chars.txt"),
               config=str(p), keras_version="2.15.0")
    assert rf.read(str(out)).metadata["layer.1.recurrent_activation"] == "hard_sigmoid_keras2"


def test_non_chain_functional_model_is_refused(tmp_path):
    cfg = json.load(open(_fixture("k3_gru_char.json")))
    cfg["class_name"] = "Functional"
    layers = cfg["config"]["layers"]
    names = [l["config"]["name"] for l in layers]
    for i, l in enumerate(layers[1:], 1):
        src = names[0] if i == 3 else names[i - 1]         # the Dense skips the GRU
        l["inbound_nodes"] = [{"args": [{"class_name": "__keras_tensor__",
                                         "config": {"keras_history": [src, 0, 0]}}], "kwargs": {}}]
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(cfg))
    _expect_error(tmp_path, "linear stacks", _fixture("k3_gru_char.weights.h5"), config=str(p))


# --- Keras encoder-decoders with attention the runtime cannot run: refused, one line ------------------

def _attention_kw(**extra):
    kw = {"task": "seq2seq", "vocab": _fixture("attn.target.json"), "source_vocab": _fixture("attn.source.json"),
          "specials": {"bos": 1, "eos": 2}, "chars": None}
    kw.update(extra)
    return kw


def _k3_tensor(layer, index=0):
    return {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, 0, index]}}


def _edited_attention_config(tmp_path, name, edit):
    """The committed Keras 3 (k3_attn_gru_dot) or tf.keras (k2_attn_lstm_dot) config with ``edit`` applied to
    its layers by name; returns the config path."""
    cfg = json.load(open(_fixture(f"{name}.json")))
    edit({l["config"]["name"]: l for l in cfg["config"]["layers"]})
    p = tmp_path / f"{name}.edited.json"
    p.write_text(json.dumps(cfg))
    return str(p)


def _k3_refused(tmp_path, match, edit, **extra):
    cfg = _edited_attention_config(tmp_path, "k3_attn_gru_dot", edit)
    return _expect_error(tmp_path, match, _fixture("k3_attn_gru_dot.weights.h5"), **_attention_kw(config=cfg, **extra))


def test_attention_key_other_than_value_is_refused(tmp_path):
    def edit(ls):
        ls["attention"]["inbound_nodes"][0]["args"][0].append(_k3_tensor("decoder"))
    msg = _k3_refused(tmp_path, r"its key \('decoder'\) is not its value \('encoder'\)", edit)
    assert msg.startswith("layer 'attention' (Attention)")

    def edit2(ls):                          # tf.keras: [query, value, key] in the node list
        ls["attention"]["inbound_nodes"][0].append(["target_embedding", 0, 0, {}])
    cfg = _edited_attention_config(tmp_path, "k2_attn_lstm_dot", edit2)
    _expect_error(tmp_path, r"its key \('target_embedding'\) is not its value", _fixture("k2_attn_lstm_dot.weights-only.h5"),
                  **_attention_kw(config=cfg))


def test_attention_causal_mask_is_refused(tmp_path):
    def edit(ls):
        ls["attention"]["inbound_nodes"][0]["kwargs"]["use_causal_mask"] = True
    _k3_refused(tmp_path, r"a causal mask .* is not supported", edit)


def test_attention_query_must_be_the_decoder_output(tmp_path):
    def edit(ls):
        ls["attention"]["inbound_nodes"][0]["args"][0][0] = _k3_tensor("target_embedding")
    _k3_refused(tmp_path, r"its query is 'target_embedding', not the decoder output 'decoder'", edit)


def test_attention_context_alone_is_refused(tmp_path):
    def edit(ls):
        ls["attentional"]["inbound_nodes"][0]["args"][0] = _k3_tensor("attention")
    _k3_refused(tmp_path, r"reads the context of 'attention' \(Attention\) alone", edit)


def test_attention_decoder_must_start_from_the_encoder_states(tmp_path):
    def edit(ls):
        del ls["decoder"]["inbound_nodes"][0]["kwargs"]["initial_state"]
    _k3_refused(tmp_path, r"the decoder layer 'decoder' has no initial_state", edit)

    def edit2(ls):                          # the decoder starts from the encoder's outputs, not its state
        ls["decoder"]["inbound_nodes"][0]["kwargs"]["initial_state"] = _k3_tensor("encoder", 0)
    _k3_refused(tmp_path, r"starts from \[encoder\[0\]\], not from the final states of encoder layer 'encoder' "
                          r"\[encoder\[1\]\]", edit2)


def test_attention_model_needs_task_seq2seq(tmp_path):
    msg = _expect_error(tmp_path, r"is an encoder-decoder with attention .*--task seq2seq",
                        _fixture("k3_attn_gru_dot.keras"), vocab=_fixture("attn.target.json"), chars=None)
    assert "'source', 'target'" in msg


def test_attention_unmasked_encoder_with_a_pad_token_is_refused(tmp_path):
    def edit(ls):
        ls["source_embedding"]["config"]["mask_zero"] = False
    _k3_refused(tmp_path, r"mask_zero=False, so the framework's attention weighs PAD positions", edit,
                source_specials={"pad": 0})


def test_attention_conversion_records_the_mapping(tmp_path):
    """Attention() is dot; Attention(use_scale=True) general with W_a = scale·I; AdditiveAttention additive
    with identity W_q, W_k and v = scale; [dec, ctx] concatenation swaps the next kernel's column blocks."""
    import h5py
    out = tmp_path / "a.recur"
    summary = rc.convert(_fixture("k3_attn_gru_dot.keras"), str(out), **_attention_kw())
    assert "Attention(dot, tanh 10)" in summary["architecture"]
    meta, tensors = rf.read(str(out)).metadata, rf.read(str(out)).tensors
    att = next(i for i in range(meta["model.layer_count"]) if meta.get(f"layer.{i}.kind") == "attention")
    assert meta[f"layer.{att}.score"] == "dot" and meta[f"layer.{att}.combine"] == "tanh"
    with zipfile.ZipFile(_fixture("k3_attn_gru_dot.keras")) as z:
        f = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
        group = next(g for g in f["layers"].values() if g["vars"].attrs.get("name") == "attentional")
        keras_kernel = np.asarray(group["vars/0"])          # [In, U], rows [h; c]: the decoder's outputs first
    H = meta[f"layer.{att}.input_size"]
    np.testing.assert_array_equal(tensors[f"layer.{att}.kernel"], np.concatenate([keras_kernel[H:], keras_kernel[:H]]).T)
    summary = rc.convert(_fixture("k3_attn_gru_scaled.keras"), str(out), **_attention_kw())
    meta, tensors = rf.read(str(out)).metadata, rf.read(str(out)).tensors
    W = tensors[f"layer.{att}.score_kernel"]
    assert meta[f"layer.{att}.score"] == "general" and meta[f"layer.{att}.combine"] == "none"
    np.testing.assert_array_equal(W, W[0, 0] * np.eye(W.shape[0]))
    rc.convert(_fixture("k3_attn_lstm_additive.keras"), str(out), **_attention_kw())
    meta, tensors = rf.read(str(out)).metadata, rf.read(str(out)).tensors
    assert meta[f"layer.{att}.score"] == "additive" and meta[f"layer.{att}.use_bias"] is False
    np.testing.assert_array_equal(tensors[f"layer.{att}.query_kernel"], np.eye(H))
    np.testing.assert_array_equal(tensors[f"layer.{att}.key_kernel"], np.eye(H))


# --- PyTorch state_dicts the fixtures do not cover ----------------------------------------------------

def _write_safetensors(path, tensors: dict):
    """A minimal safetensors writer (8-byte header length, JSON header, data), written from the format."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def _torch_like(rng, extra=None, cell="gru", linears=((16, 20),)):
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    t = {"embed.weight": rng.normal(size=(20, 8)),
         "rnn.weight_ih_l0": rng.normal(size=(G * 16, 8)), "rnn.weight_hh_l0": rng.normal(size=(G * 16, 16)),
         "rnn.bias_ih_l0": rng.normal(size=G * 16), "rnn.bias_hh_l0": rng.normal(size=G * 16)}
    for i, (n_in, n_out) in enumerate(linears):
        t[f"fc{i}.weight"] = rng.normal(size=(n_out, n_in))
        t[f"fc{i}.bias"] = rng.normal(size=n_out)
    t.update(extra or {})
    return t


def test_torch_two_linears_need_their_activations(tmp_path):
    rng = np.random.default_rng(3)
    src = tmp_path / "m.safetensors"
    _write_safetensors(src, _torch_like(rng, linears=((16, 10), (10, 20))))
    _expect_error(tmp_path, "--dense-activations", src)
    out = tmp_path / "ok.recur"
    rc.convert(str(src), str(out), chars=os.path.join(FIXTURES, "chars.txt"), dense_activations=["relu", "linear"])
    meta = rf.read(str(out)).metadata
    assert [meta["layer.2.activation"], meta["layer.3.activation"]] == ["relu", "linear"]
    assert meta["layer.1.kind"] == "gru" and meta["model.task"] == "generate"


def test_torch_unknown_module_is_named(tmp_path):
    rng = np.random.default_rng(4)
    src = tmp_path / "m.safetensors"
    _write_safetensors(src, _torch_like(rng, {"norm.weight": rng.normal(size=16), "norm.bias": rng.normal(size=16)}))
    msg = _expect_error(tmp_path, "module 'norm'", src)
    assert "not an Embedding" in msg


def test_torch_cell_check_and_proj_size(tmp_path):
    rng = np.random.default_rng(5)
    src = tmp_path / "m.safetensors"
    _write_safetensors(src, _torch_like(rng, cell="lstm"))
    _expect_error(tmp_path, "LSTM.*--cell gru", src, cell="gru")
    _write_safetensors(src, _torch_like(rng, {"rnn.weight_hr_l0": rng.normal(size=(8, 16))}, cell="lstm"))
    _expect_error(tmp_path, "proj_size", src)


def test_torch_cell_module(tmp_path):
    """nn.GRUCell keys (no _l0 suffix) make one GRU layer; the file's tensors are the state_dict's."""
    rng = np.random.default_rng(6)
    t = _torch_like(rng)
    t = {k.replace("_l0", ""): v for k, v in t.items()}
    src = tmp_path / "m.safetensors"
    _write_safetensors(src, t)
    out = tmp_path / "m.recur"
    rc.convert(str(src), str(out), chars=os.path.join(FIXTURES, "chars.txt"))
    d = rf.read(str(out))
    assert np.array_equal(d.tensors["layer.1.kernel"], t["rnn.weight_ih"].astype(np.float32))
    assert np.array_equal(d.tensors["layer.1.recurrent_bias"], t["rnn.bias_hh"].astype(np.float32))


def test_torch_needs_a_task_when_not_a_generator(tmp_path):
    rng = np.random.default_rng(7)
    src = tmp_path / "m.safetensors"
    _write_safetensors(src, _torch_like(rng, linears=((16, 3),)))
    _expect_error(tmp_path, "--task", src)


def test_safetensors_bad_header(tmp_path):
    src = tmp_path / "m.safetensors"
    src.write_bytes(struct.pack("<Q", 10) + b"{not json}")
    _expect_error(tmp_path, "JSON", src, format="safetensors")


def test_tf_index_bad_magic(tmp_path):
    for f in glob.glob(os.path.join(FIXTURES, "k2_gru_hard.ckpt.*")):
        shutil.copy(f, tmp_path)
    idx = tmp_path / "k2_gru_hard.ckpt.index"
    blob = bytearray(idx.read_bytes())
    blob[-1] ^= 0xFF
    idx.write_bytes(bytes(blob))
    _expect_error(tmp_path, "magic", tmp_path / "k2_gru_hard.ckpt", config=_fixture("k2_gru_hard.json"))


def test_tf_checkpoint_damaged_data(tmp_path):
    for f in glob.glob(os.path.join(FIXTURES, "k2_gru_hard.ckpt.*")):
        shutil.copy(f, tmp_path)
    data = tmp_path / "k2_gru_hard.ckpt.data-00000-of-00001"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    data.write_bytes(bytes(blob))
    _expect_error(tmp_path, "CRC-32C", tmp_path / "k2_gru_hard.ckpt.index", config=_fixture("k2_gru_hard.json"))


def test_tf_index_reader_lists_every_variable():
    from recur.convert import tf_checkpoint
    entries = tf_checkpoint.read_index(_fixture("k2_gru_hard.ckpt.index"))
    names = [n for n in entries if n.startswith("layer_with_weights-")]
    assert "layer_with_weights-0/embeddings/.ATTRIBUTES/VARIABLE_VALUE" in names
    e = entries["layer_with_weights-1/cell/bias/.ATTRIBUTES/VARIABLE_VALUE"]
    assert e["shape"] == [48] and e["dtype"] == 1          # reset_after=False: bias [3H], DT_FLOAT


BASE_FORMATS = ("keras", "weights_h5", "h5", "h5_weights", "checkpoint", "torch", "safetensors")


def test_damaged_files_give_convert_errors(tmp_path):
    """Truncations and byte flips of one fixture of each format: every outcome is a file or one
    ConvertError, never another exception, a crash of the HDF5 library or a half-written output."""
    import random
    rnd = random.Random(11)
    m = load_manifest(FIXTURES)
    seen = set()
    trials = 0
    for e in m["cases"]:
        for vid, src, kw in variants(e):
            fmt = vid.split("[")[1].rstrip("]")
            if fmt in seen or e["task"] == "seq2seq" or fmt not in BASE_FORMATS:
                continue
            seen.add(fmt)
            victims = [src + ".index", src + ".data-00000-of-00001"] if fmt == "checkpoint" else [src]
            for trial in range(12):
                d = tmp_path / f"{fmt}{trial}"
                d.mkdir()
                for f in glob.glob(os.path.join(FIXTURES, src + "*")):
                    shutil.copy(f, d)
                victim = d / rnd.choice(victims)
                blob = bytearray(victim.read_bytes())
                if trial % 2 == 0:
                    blob = blob[: rnd.randrange(len(blob))]
                else:
                    for _ in range(rnd.randint(1, 8)):
                        blob[rnd.randrange(len(blob))] = rnd.randrange(256)
                victim.write_bytes(bytes(blob))
                out = d / "o.recur"
                kw2 = dict(kw)
                if "config" in kw2:
                    kw2["config"] = os.path.join(FIXTURES, kw2["config"])
                try:
                    rc.convert(str(d / src), str(out), chars=os.path.join(FIXTURES, "chars.txt"), **kw2)
                    rf.read(str(out))
                except ConvertError as err:
                    assert "\n" not in str(err)
                    assert not out.exists()
                trials += 1
    assert len(seen) == 7 and trials == 84


# --- Architectures inferred from the variables, encoder-decoders, classifier heads ---------------------

def test_subclassed_summary_prints_the_inferred_architecture(tmp_path, capsys):
    from recur.convert.__main__ import main
    out = tmp_path / "c.recur"
    assert main([os.path.join(FIXTURES, "ch_chargen.ckpt"), str(out), "--chars",
                 os.path.join(FIXTURES, "chars.txt")]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    assert ("inferred from the variables: embedding_layer Embedding(20, 8) -> rnn_layer GRU(16, tanh/sigmoid, "
            "reset_after, sequences) -> dense_layer Dense(20, linear)") in line


def test_subclassed_ambiguities_name_the_option(tmp_path):
    _expect_error(tmp_path, r"give --task classify or --task tag", _fixture("ch_sentiment.h5"),
                  dense_activations=["relu", "sigmoid"])
    _expect_error(tmp_path, r"give --dense-activations", _fixture("ch_sentiment.h5"), task="classify")
    _expect_error(tmp_path, r"--dense-activations lists 1 activations for 2 Dense layers",
                  _fixture("ch_sentiment.ckpt"), task="classify", dense_activations=["relu"])


def test_subclassed_weights_with_a_sequential_twins_config_are_refused(tmp_path):
    _expect_error(tmp_path, r"grouped by attribute \(dense_layer, embedding_layer\), as a subclassed model saves them.*"
                  r"leave out --config", _fixture("k3_sub_gen.weights.h5"),
                  config=_fixture("k3_sub_gen.sequential-twin.json"))


def test_headless_classifier_is_refused(tmp_path):
    msg = _expect_error(tmp_path, r"no Dense head", _fixture("ch_translate.encoder.ckpt"), task="classify",
                        placeholder_vocab=True, chars=None)
    assert "--task seq2seq" in msg
    p = tmp_path / "enc.safetensors"
    _write_safetensors(p, _torch_like(np.random.default_rng(0), linears=()))
    _expect_error(tmp_path, r"no Dense head", p, task="classify")


def test_torchscript_archive_is_named(tmp_path):
    p = tmp_path / "scripted.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("scripted/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("scripted/constants.pkl", b"\x80\x02)q\x00.")
        z.writestr("scripted/code/__torch__/model.py", "def forward(self, x): ...")
    msg = _expect_error(tmp_path, r"TorchScript", p)
    assert "model.state_dict()" in msg


def test_torch_bidirectional_classifier_needs_its_head(tmp_path):
    _expect_error(tmp_path, r"give --head hn .* or --head last-output", _fixture("pt_bilstm_cls.safetensors"),
                  task="classify")
    _expect_error(tmp_path, r"--head applies to classifiers only", _fixture("pt_gru_char.pt"), head="hn")


def test_torch_head_decides_the_output(tmp_path):
    """The two heads of one state_dict differ: only the one the forward used matches the framework."""
    from recur.reference import ReferenceModel
    data = np.load(os.path.join(FIXTURES, "pt_bilstm_last.npz"))
    diffs = {}
    for head in ("hn", "last-output"):
        out = str(tmp_path / f"{head}.recur")
        rc.convert(_fixture("pt_bilstm_last.pt"), out, chars=os.path.join(FIXTURES, "chars.txt"), task="classify",
                   head=head)
        ref = np.asarray(ReferenceModel(rf.read(out)).forward_sequence(list(data["tokens"])), dtype=np.float64)
        ref = ref[-1] if ref.ndim == 2 else ref
        diffs[head] = float(np.max(np.abs(ref - data["outputs"])))
    assert diffs["last-output"] <= TOL < 1e-2 < diffs["hn"]


def test_inferred_merge_mode_and_order(tmp_path):
    from recur.convert import infer
    from recur.convert.common import Options
    rng = np.random.default_rng(1)
    H = 4

    def cell(In):
        return {"kernel": rng.normal(size=(In, 3 * H)), "recurrent_kernel": rng.normal(size=(H, 3 * H)),
                "bias": rng.normal(size=(2, 3 * H))}

    def bidi():
        return infer.Module("bi", {f"{d}_layer/cell/{k}": v for d in ("forward", "backward") for k, v in cell(8).items()})
    emb = infer.Module("emb", {"embeddings": rng.normal(size=(20, 8))})
    head = infer.Module("head", {"kernel": rng.normal(size=(H, 3)), "bias": rng.normal(size=3)})
    with pytest.raises(ConvertError, match=r"merge mode is not concat; give --merge-mode sum, mul or ave"):
        infer.build([emb, bidi(), head], Options(), 3, "m", ordered=False)
    layers = infer.build([emb, bidi(), head], Options(merge_mode="ave"), 3, "m", ordered=False)
    assert layers[1].merge_mode == "ave"
    g1 = infer.Module("a", {f"cell/{k}": v for k, v in cell(8).items()})
    g2 = infer.Module("b", {f"cell/{k}": v for k, v in cell(H).items()})
    g3 = infer.Module("c", {f"cell/{k}": v for k, v in cell(H).items()})
    emb = infer.Module("emb", {"embeddings": rng.normal(size=(20, H))})          # both GRUs fit anywhere
    with pytest.raises(ConvertError, match=r"give it with --order"):
        infer.build([emb, g2, g3, head], Options(), 3, "m", ordered=False)
    ls = infer.build([emb, g2, g3, head], Options(), 3, "m", ordered=True)
    assert [l.name for l in ls] == ["emb", "b", "c", "head"]
    ls = infer.build([emb, g3, g2, head], Options(order=["emb", "b", "c", "head"]), 3, "m", ordered=False)
    assert [l.name for l in ls] == ["emb", "b", "c", "head"]
    emb = infer.Module("emb", {"embeddings": rng.normal(size=(20, 8))})
    g1.vars["cell/bias"] = g1.vars["cell/bias"][0]
    assert infer.build([emb, g1, head], Options(), 3, "m", ordered=False)[1].reset_after is False
    del g1.vars["cell/bias"]
    with pytest.raises(ConvertError, match=r"give --reset-after or --no-reset-after"):
        infer.build([emb, g1, head], Options(), 3, "m", ordered=False)


def test_seq2seq_errors(tmp_path):
    tok = {"vocab": _fixture("ch_translate.target-tokenizer.json"),
           "source_vocab": _fixture("ch_translate.source-tokenizer.json"), "chars": None}
    _expect_error(tmp_path, r"needs the target vocabulary's BOS token: give --bos-id or --bos-token",
                  _fixture("ch_translate.ckpt-1"), task="seq2seq", **tok)
    _expect_error(tmp_path, r"holds one model, not an encoder and a decoder; give the decoder's file with --decoder",
                  _fixture("ch_translate.encoder.ckpt"), task="seq2seq", special_tokens={"bos": "BOS", "eos": "EOS"},
                  **tok)
    _expect_error(tmp_path, r"2 embeddings .* --task seq2seq", _fixture("ch_translate.ckpt-1"),
                  vocab=tok["vocab"], chars=None)
    _expect_error(tmp_path, r"no token 'START'", _fixture("ch_translate.ckpt-1"), task="seq2seq",
                  special_tokens={"bos": "START", "eos": "EOS"}, **tok)
    _expect_error(tmp_path, r"is for encoder-decoders", _fixture("ch_chargen.ckpt"), decoder=_fixture("ch_chargen.ckpt"))


# --- Tokenizer fidelity: raw text reaches the model as the framework's preprocessing delivers it -------

def _tokenizer_cases():
    p = os.path.join(FIXTURES, "tokenizers.json")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return json.load(f)["cases"]


@pytest.mark.parametrize("case", _tokenizer_cases(), ids=[c["name"] for c in _tokenizer_cases()])
def test_keras_tokenizer_is_applied_by_the_runtime(case, tmp_path):
    """The Keras Tokenizer's filters, lower, split, char_level, num_words and oov_token are recorded in the
    file, and the runtime's encode gives texts_to_sequences' ids for every raw text (punctuation, capitals,
    unknown words: dropped without an oov_token, as Keras drops them)."""
    out = str(tmp_path / "m.recur")
    rc.convert(_fixture("ch_sentiment.h5"), out, vocab=_fixture(case["name"] + ".json"), task="classify",
               dense_activations=["relu", "sigmoid"])
    meta = rf.read(out).metadata
    assert meta["tokenizer.splitter"] == "keras"
    if RUNTIME.binding is None:
        pytest.skip("the recur Python binding is not available")
    with RUNTIME.binding.Model(out) as m:
        for text, want in zip(case["texts"], case["sequences"]):
            assert m.encode(text) == want, f"{case['name']}: {text!r}"


def _basic_english(line: str) -> list:
    """torchtext.data.utils._basic_english_normalize, as torchtext 0.18 writes it (torchtext is not a
    dependency of these tests)."""
    patterns = [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"]
    replacements = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
    line = line.lower()
    for p, r in zip(patterns, replacements):
        line = re.sub(p, r, line)
    return line.split()


@pytest.mark.parametrize("splitter", ["basic_english", "whitespace"])
def test_torch_style_splitters(splitter, tmp_path):
    """A vocabulary list (torchtext's itos) with the tokenizer the training used: the runtime cuts raw text
    as torchtext's basic_english or Python's str.split() does; a word the vocabulary lacks becomes <unk>
    (torchtext's set_default_index), and without an UNK token it is an error, as torchtext raises."""
    texts = ["The cat's hat.", "Is it (really) \"fine\"?<br />Yes: ok!", "  tabs\tand\nlines  "]
    split = _basic_english if splitter == "basic_english" else str.split
    words = sorted({w for t in texts for w in split(t)})
    tokens = ["<unk>"] + words + [f"<unused-{i}>" for i in range(19 - len(words))]
    out = str(tmp_path / "m.recur")
    rc.convert(_fixture("pt_gru_char.pt"), out, vocab=tokens, specials={"unk": 0}, splitter=splitter)
    if RUNTIME.binding is None:
        pytest.skip("the recur Python binding is not available")
    index = {w: i for i, w in enumerate(tokens)}
    with RUNTIME.binding.Model(out) as m:
        for t in texts + ["Zebras: the cat's hat."]:
            assert m.encode(t) == [index.get(w, 0) for w in split(t)], t
    rc.convert(_fixture("pt_gru_char.pt"), out, vocab=["<pad>"] + tokens[1:], specials={"pad": 0}, splitter=splitter)
    with RUNTIME.binding.Model(out) as m:
        assert m.encode(texts[2]) == [index[w] for w in split(texts[2])]
        with pytest.raises(Exception, match="not in the model's vocabulary"):
            m.encode("Zebras: the cat's hat.")


# --- Padding: unmasked models trained and run on padded input ----------------------------------------

def _padded_cases():
    if not os.path.exists(os.path.join(FIXTURES, "manifest.json")):
        return []
    return [e for e in load_manifest(FIXTURES)["cases"] if "padded" in e and e["task"] != "seq2seq"]


@pytest.mark.parametrize("entry", _padded_cases(), ids=[e["name"] for e in _padded_cases()])
def test_padded_models_match_the_frameworks_padded_predict(entry, tmp_path):
    """The chapter's classifier (pre-padded) and tagger (post-padded) do not mask: the framework's own
    predict runs the PAD steps, and cuts longer sentences (pad_sequences' truncating='pre'). With the
    padding recorded (--pad-length, --padding), the runtime's classify / tag give the framework's padded
    results by default; --padding none runs the sentence alone, and differs."""
    vid, src, kw = variants(entry)[0]
    pad = entry["padded"]
    out = str(tmp_path / "m.recur")
    summary = convert_case(FIXTURES, src, dict(kw, specials={"pad": 0}, pad_length=pad["pad_length"],
                                               padding=pad["padding"]), out)
    assert "cut and padded to 24 tokens" in " ".join(summary["assumptions"])
    meta = rf.read(out).metadata
    assert meta["tokenizer.pad_length"] == pad["pad_length"] and meta["tokenizer.padding"] == pad["padding"]
    assert meta["tokenizer.pad_mask"] is False          # Keras' default mask_zero=False: PAD steps run
    if RUNTIME.binding is None:
        pytest.skip("the recur Python binding is not available")
    data = np.load(os.path.join(FIXTURES, entry["name"] + ".npz"))
    chars = open(os.path.join(FIXTURES, "chars.txt"), encoding="utf-8", newline="").read()
    L = pad["pad_length"]
    worst, differs = 0.0, 0
    with RUNTIME.binding.Model(out) as m:
        for row, want in zip(data["padded_tokens"], data["padded_outputs"]):
            ids = [int(t) for t in row if t >= 0]
            text = "".join(chars[i] for i in ids)
            assert m.encode(text) == ids
            kept = list(range(len(ids)))[-L:]                     # truncating "pre": the last L tokens
            if entry["task"] == "classify":
                got = np.asarray(m.classify(text), np.float64)
                worst = max(worst, abs(got[1] - float(want[0])))
                continue
            tags = [t for _, t in m.tag(text)]
            start = L - len(kept) if pad["padding"] == "pre" else 0
            expect = [str(int(np.argmax(want[start + i]))) for i in range(len(kept))]
            assert tags == expect, f"{entry['name']}: tags of a {len(ids)}-token sentence"
    assert worst <= TOL
    # Unpadded, through the CLI: the sentence alone gives another answer for some sentence.
    if RUNTIME.cli and RUNTIME.has_command(entry["task"]):
        for row, want in zip(data["padded_tokens"], data["padded_outputs"]):
            text = "".join(chars[int(i)] for i in row if i >= 0)
            if entry["task"] == "classify":
                trained = RUNTIME.classify(out, text)["probabilities"]["1"]
                alone = json.loads(RUNTIME._run("classify", out, "--text", text, "--json", "--padding", "none"))
                assert abs(trained - float(want[0])) <= TOL
                differs += abs(alone["probabilities"]["1"] - float(want[0])) > 1e-3
                if RUNTIME.binding is not None:          # the same choice through C (RECUR_OPEN_NO_PADDING)
                    with RUNTIME.binding.Model(out, padding="none") as unpadded:
                        assert abs(float(unpadded.classify(text)[1]) - alone["probabilities"]["1"]) <= 1e-6
            else:
                trained = [t for _, t in RUNTIME.tag(out, text)]
                alone = [t for _, t in json.loads(RUNTIME._run("tag", out, "--text", text, "--json", "--padding", "none"))]
                differs += trained != alone
                if RUNTIME.binding is not None:          # the same choice through C (RECUR_OPEN_NO_PADDING)
                    with RUNTIME.binding.Model(out, padding="none") as unpadded:
                        assert [t for _, t in unpadded.tag(text)] == alone
        assert differs >= 1


def test_recorded_preprocessing_and_padding_are_format_version_3(tmp_path):
    """A file that records its text preprocessing or padding is written as 3.0 (a 2.x reader would ignore
    the keys and misread the model); one that records neither stays at the lowest version."""
    out = str(tmp_path / "m.recur")
    rc.convert(_fixture("ch_sentiment.h5"), out, vocab=_fixture("tok_words.json"), task="classify",
               dense_activations=["relu", "sigmoid"])
    assert rf.read(out).version == (3, 0)
    rc.convert(_fixture("ch_sentiment.h5"), out, chars=os.path.join(FIXTURES, "chars.txt"), task="classify",
               dense_activations=["relu", "sigmoid"])
    assert rf.read(out).version == (1, 0)
    rc.convert(_fixture("ch_sentiment.h5"), out, chars=os.path.join(FIXTURES, "chars.txt"), task="classify",
               dense_activations=["relu", "sigmoid"], specials={"pad": 0}, pad_length=8)
    assert rf.read(out).version == (3, 0)


def test_padded_translator_matches_the_frameworks_padded_translation(tmp_path):
    """The chapter's translator reads sentences of post-padded batches without masking: its encoder runs
    the PAD steps. With --source-pad-length / --source-padding the runtime's translations are the
    framework's on padded sources; with --padding none (or without the options) they are its translations
    of the sentences alone, which differ for some sentences."""
    entry = next(e for e in load_manifest(FIXTURES)["cases"] if e["name"] == "ch_translate")
    vid, src, kw = variants(entry)[0]
    out = str(tmp_path / "t.recur")
    summary = convert_case(FIXTURES, src, dict(kw, **entry["padded"]), out)
    assert "source cut and padded to 10 tokens (padding post" in " ".join(summary["assumptions"])
    meta = rf.read(out).metadata
    assert meta["source_tokenizer.pad_mask"] is False and meta["source_tokenizer.pad_length"] == 10
    if not RUNTIME.has_command("translate"):
        pytest.skip("the recur CLI is not available")
    data = np.load(os.path.join(FIXTURES, "ch_translate.npz"))
    src_words, tgt_words = meta["source_tokenizer.tokens"], meta["tokenizer.tokens"]
    specials = {meta.get(f"tokenizer.{k}_id") for k in ("pad", "unk", "bos", "eos")}
    differ = 0
    for ids, padded, alone in zip(data["sources"], data["padded_greedy"], data["greedy"]):
        text = " ".join(src_words[i] for i in ids if i >= 0)
        words = lambda g: " ".join(tgt_words[i] for i in g if i >= 0 and i not in specials)  # noqa: E731
        got = json.loads(RUNTIME._run("translate", out, "--text", text, "--beam", "1", "--max-length", "20", "--json"))
        assert got["text"] == words(padded), f"padded translation of {text!r}"
        got = json.loads(RUNTIME._run("translate", out, "--text", text, "--beam", "1", "--max-length", "20", "--json",
                                      "--padding", "none"))
        assert got["text"] == words(alone), f"unpadded translation of {text!r}"
        differ += words(padded) != words(alone)
    assert differ >= 1


def test_torch_pad_steps_run_only_when_asked(tmp_path):
    out = str(tmp_path / "m.recur")
    rc.convert(_fixture("pt_bigru_tag.pt"), out, chars=os.path.join(FIXTURES, "chars.txt"), task="tag",
               specials={"pad": 0})
    assert "tokenizer.pad_mask" not in rf.read(out).metadata
    rc.convert(_fixture("pt_bigru_tag.pt"), out, chars=os.path.join(FIXTURES, "chars.txt"), task="tag",
               specials={"pad": 0}, mask_zero=False)
    assert rf.read(out).metadata["tokenizer.pad_mask"] is False
