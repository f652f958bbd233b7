"""Translators whose decoder attends over the encoder's outputs (format 5, FORMAT.md §13.9): models
written with the Python writer (recur.format) for every score, with and without input feeding and W_c,
uni- and bidirectional encoders, GRU and LSTM, run through the Python binding (the C API) and the CLI and
compared with the numpy reference (recur.reference.ReferenceTranslator): the greedy tokens, the
attention weights of every step, the log-probability of the translation, beam search against an
exhaustive search; then the errors."""

from __future__ import annotations

import ctypes as C
import json

import numpy as np
import pytest

from conftest import run_cli

SOURCE = ["<pad>", "<unk>", "<eos>"] + [f"s{i}" for i in range(3, 12)]
TARGET = ["<pad>", "<bos>", "<eos>", "<unk>"] + [f"t{i}" for i in range(4, 12)]


def build_translator(path, *, score="general", combine="tanh", input_feeding=False, bidirectional=False,
                     cell="gru", layers=1, attention=True, H=5, E=4, A=6, U=7, use_bias=False, seed=0,
                     target=TARGET, source_meta=None, scale=0.8, eos_bias=-6.0):
    """Writes a translator: encoder [Embedding, `layers` × cell (bidirectional: concat)], decoder
    [Embedding, `layers` × cell (2H wide after a bidirectional encoder), Attention, Dense(target)]."""
    from recur import format as rf
    rng = np.random.default_rng(seed)
    G = {"gru": 3, "lstm": 4}[cell]
    Vs, Vt = len(SOURCE), len(target)
    meta = {"model.task": "seq2seq"}
    tensors = {}

    def recurrent(prefix, i, n_in, units, bidi):
        p = f"{prefix}layer.{i}."
        meta.update({p + "kind": cell, p + "input_size": n_in, p + "units": units})
        if bidi:
            meta[p + "bidirectional"] = True
        for q in ([p + "forward.", p + "backward."] if bidi else [p]):
            tensors[q + "kernel"] = rng.normal(0, scale, (G * units, n_in))
            tensors[q + "recurrent_kernel"] = rng.normal(0, scale, (G * units, units))
            tensors[q + "bias"] = rng.normal(0, scale, G * units)
            if cell == "gru":
                tensors[q + "recurrent_bias"] = rng.normal(0, scale, G * units)

    # Encoder.
    meta["encoder.layer_count"] = 1 + layers
    meta.update({"encoder.layer.0.kind": "embedding", "encoder.layer.0.input_dim": Vs, "encoder.layer.0.output_dim": E})
    tensors["encoder.layer.0.embeddings"] = rng.normal(0, 1.5, (Vs, E))
    width = E
    for i in range(layers):
        recurrent("encoder.", 1 + i, width, H, bidirectional)
        width = 2 * H if bidirectional else H
    M = width
    Hd = 2 * H if bidirectional else H
    out_width = (U if combine == "tanh" else M + Hd) if attention else Hd
    # Decoder.
    n = 1 + layers + (1 if attention else 0) + 1
    meta["model.layer_count"] = n
    meta.update({"layer.0.kind": "embedding", "layer.0.input_dim": Vt, "layer.0.output_dim": E})
    tensors["layer.0.embeddings"] = rng.normal(0, 1.5, (Vt, E))
    width = E
    for i in range(layers):
        fed = out_width if attention and input_feeding and i == 0 else 0
        recurrent("", 1 + i, width + fed, Hd, False)
        width = Hd
    k = 1 + layers
    if attention:
        p = f"layer.{k}."
        meta.update({p + "kind": "attention", p + "score": score, p + "input_size": Hd, p + "memory_size": M,
                     p + "combine": combine, p + "input_feeding": input_feeding})
        if score == "general":
            tensors[p + "score_kernel"] = rng.normal(0, scale, (Hd, M))
        if score == "additive":
            meta[p + "attention_units"] = A
            meta[p + "use_bias"] = use_bias
            tensors[p + "query_kernel"] = rng.normal(0, scale, (A, Hd))
            tensors[p + "key_kernel"] = rng.normal(0, scale, (A, M))
            tensors[p + "score_vector"] = rng.normal(0, 1.5, A)
            if use_bias:
                tensors[p + "score_bias"] = rng.normal(0, scale, A)
        if combine == "tanh":
            meta[p + "units"] = U
            tensors[p + "kernel"] = rng.normal(0, scale, (U, M + Hd))
            tensors[p + "bias"] = rng.normal(0, scale, U)
        k += 1
        width = out_width
    p = f"layer.{k}."
    meta.update({p + "kind": "dense", p + "input_size": width, p + "units": Vt, p + "activation": "linear"})
    tensors[p + "kernel"] = rng.normal(0, 1.5, (Vt, width))
    bias = rng.normal(0, 0.5, Vt)
    bias[target.index("<eos>")] += eos_bias        # translations of several tokens
    for special in ("<pad>", "<bos>", "<unk>"):     # which decoding would leave out of the text
        if special in target:
            bias[target.index(special)] -= 8
    tensors[p + "bias"] = bias
    meta.update({"tokenizer.kind": "word", "tokenizer.tokens": target, "tokenizer.bos_id": target.index("<bos>"),
                 "tokenizer.eos_id": target.index("<eos>")})
    if "<pad>" in target:
        meta["tokenizer.pad_id"] = target.index("<pad>")
    meta.update({"source_tokenizer.kind": "word", "source_tokenizer.tokens": SOURCE, "source_tokenizer.pad_id": 0,
                 "source_tokenizer.unk_id": 1, "source_tokenizer.eos_id": 2})
    meta.update(source_meta or {})
    rf.write(path, meta, {k: np.asarray(v, np.float32) for k, v in tensors.items()})
    return path


def reference(path):
    from recur import format as rf
    from recur.reference import ReferenceTranslator
    return ReferenceTranslator(rf.read(str(path)))


def source_ids(text):
    return [SOURCE.index(w) for w in text.split()] + [2]


CONFIGS = {
    # name: build_translator arguments
    "dot": dict(score="dot"),
    "general": dict(score="general"),
    "additive": dict(score="additive"),
    "additive-bias": dict(score="additive", use_bias=True),
    "dot-feeding": dict(score="dot", input_feeding=True),
    "general-feeding": dict(score="general", input_feeding=True),
    "additive-feeding": dict(score="additive", input_feeding=True),
    "general-concat": dict(score="general", combine="none"),
    "additive-concat-feeding": dict(score="additive", combine="none", input_feeding=True),
    "dot-bidirectional": dict(score="dot", bidirectional=True),
    "general-bidirectional-feeding": dict(score="general", bidirectional=True, input_feeding=True),
    "additive-bidirectional-concat": dict(score="additive", bidirectional=True, combine="none"),
    "lstm-general": dict(score="general", cell="lstm"),
    "lstm-additive-feeding": dict(score="additive", cell="lstm", input_feeding=True),
    "lstm-dot-bidirectional-concat": dict(score="dot", cell="lstm", bidirectional=True, combine="none"),
    "gru-two-layers-bidirectional": dict(score="general", layers=2, bidirectional=True, input_feeding=True),
    "lstm-two-layers": dict(score="additive", cell="lstm", layers=2),
}

TEXTS = ["s3 s4 s5", "s10 s11 s6 s7 s8 s9", "s5"]


@pytest.fixture(scope="module")
def translators(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("attention")
    return {name: build_translator(d / f"{name}.recur", seed=i, **kw) for i, (name, kw) in enumerate(CONFIGS.items())}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_greedy_tokens_and_weights_match_reference(library, translators, name):
    import recur
    path = translators[name]
    ref = reference(path)
    with recur.Model(path) as m:
        for text in TEXTS:
            want, lp, outs, rows = ref.greedy(source_ids(text), max_length=8)
            got = m.attention(text, max_length=8)
            assert got.target_ids == want
            assert got.source_ids == ref.source
            assert got.source == [SOURCE[i] for i in ref.source]
            assert got.text == " ".join(TARGET[t] for t in want) == m.translate(text, beam=1, max_length=8)
            assert got.target == [TARGET[t] for t in want]
            assert got.weights.shape == (len(want), len(ref.source))
            assert len(want) >= 2, "the fixture should translate into several tokens"
            np.testing.assert_allclose(got.weights, np.array(rows).reshape(len(want), -1), atol=1e-5, rtol=0)
            np.testing.assert_allclose(got.weights.sum(axis=1), 1, atol=1e-5)
            # The attention is not uniform: the rows differ from 1/T (a scoring bug would likely show here).
            assert np.abs(got.weights - 1 / len(ref.source)).max() > 1e-3


@pytest.mark.parametrize("name", ["general", "additive-concat-feeding", "lstm-dot-bidirectional-concat"])
def test_cli_log_probability_and_weights_match_reference(library, cli, translators, name):
    """The decoder's per-step outputs, through the log-probability of the greedy translation (the sum of
    each step's log-softmax at its token), and `recur translate --attention --json`."""
    path = translators[name]
    ref = reference(path)
    for text in TEXTS:
        want, lp, outs, rows = ref.greedy(source_ids(text), max_length=8)
        out = json.loads(run_cli(cli, "translate", path, "--text", text, "--beam", "1", "--max-length", "8",
                                 "--json", "--attention").stdout)
        assert out["tokens"] == want and out["source"] == ref.source
        assert abs(out["log_probability"] - lp) < 1e-5 * max(1.0, abs(lp))
        np.testing.assert_allclose(np.array(out["attention"]), np.array(rows), atol=1e-5, rtol=0)
        # Each step's output: the log-probability of every emitted token (and EOS at the end).
        steps = [ref.log_probabilities(o) for o in outs]
        chosen = [s[t] for s, t in zip(steps, want + ([ref.eos] if len(want) < 8 else []))]
        assert abs(sum(chosen) - out["log_probability"]) < 1e-5 * max(1.0, abs(lp))
    table = run_cli(cli, "translate", path, "--text", TEXTS[0], "--beam", "1", "--max-length", "8", "--attention").stdout
    lines = table.rstrip("\n").split("\n")
    assert lines[1].split("\t")[1:] == [SOURCE[i] for i in ref.encoder_input(source_ids(TEXTS[0]))]


def tiny_target():
    return ["<bos>", "<eos>", "ta", "tb"]


@pytest.mark.parametrize("kw", [dict(score="additive", input_feeding=True), dict(score="general", combine="none"),
                                dict(score="dot", cell="lstm", bidirectional=True)])
@pytest.mark.parametrize("penalty", [1.0, 0.6])
def test_beam_search_equals_exhaustive_search(library, tmp_path, kw, penalty):
    """A target vocabulary of 4 and at most 3 tokens: 40 hypotheses, which a beam of 64 never prunes, so
    beam search must find the best of all of them, and its weights are those of that path."""
    import recur
    path = build_translator(tmp_path / "tiny.recur", target=tiny_target(), eos_bias=0.0, seed=3, **kw)
    ref = reference(path)
    with recur.Model(path) as m:
        for text in TEXTS:
            best, lp, score = ref.exhaustive(source_ids(text), max_length=3, length_penalty=penalty)
            got = m.attention(text, beam=64, max_length=3, length_penalty=penalty)
            assert got.target_ids == best, text
            assert m.translate(text, beam=64, max_length=3, length_penalty=penalty) == got.text
            # The weights along the best path, from the reference stepped on it.
            ref.start(source_ids(text))
            ref.step(ref.bos)
            rows = []
            for t in best:
                rows.append(ref.weights.copy())
                ref.step(t)
            np.testing.assert_allclose(got.weights, np.array(rows).reshape(len(best), len(ref.source)), atol=1e-5, rtol=0)
            # beam 1 through the beam-search path is greedy decoding
            assert m.attention(text, beam=1, max_length=3, length_penalty=0.5).target_ids == \
                ref.greedy(source_ids(text), max_length=3)[0]


def test_pad_positions_get_no_weight(library, tmp_path):
    """An unmasked source vocabulary padded to 8 tokens after the text: the encoder reads the PAD steps,
    attention gives them weight 0."""
    import recur
    path = build_translator(tmp_path / "padded.recur", score="additive", input_feeding=True,
                            source_meta={"source_tokenizer.pad_mask": False, "source_tokenizer.pad_length": 8,
                                         "source_tokenizer.padding": "post"})
    ref = reference(path)
    with recur.Model(path) as m:
        got = m.attention("s3 s4 s5", max_length=6)
        want, _, _, rows = ref.greedy(source_ids("s3 s4 s5"), max_length=6)
        assert got.source_ids == [3, 4, 5, 2, 0, 0, 0, 0] == ref.source
        assert got.target_ids == want
        np.testing.assert_allclose(got.weights, np.array(rows), atol=1e-5, rtol=0)
        assert (got.weights[:, 4:] == 0).all()
        assert (got.weights[:, :4] > 0).all()
        np.testing.assert_allclose(got.weights.sum(axis=1), 1, atol=1e-5)
    # RECUR_OPEN_NO_PADDING: the text as it is.
    with recur.Model(path, padding="none") as m:
        assert m.attention("s3 s4 s5", max_length=6).source_ids == [3, 4, 5, 2]


def test_reversed_source_order(library, tmp_path):
    import recur
    path = build_translator(tmp_path / "rev.recur", score="general", source_meta={"encoder.reverse_source": True})
    ref = reference(path)
    with recur.Model(path) as m:
        got = m.attention("s3 s4 s5", max_length=6)
        rows = ref.greedy(source_ids("s3 s4 s5"), max_length=6)[3]
        assert got.source_ids == [5, 4, 3, 2] == ref.source
        np.testing.assert_allclose(got.weights, np.array(rows), atol=1e-5, rtol=0)


def test_files_with_attention_are_version_5(tmp_path):
    from recur import format as rf
    assert rf.read(str(build_translator(tmp_path / "a.recur"))).version[0] == 5
    assert rf.read(str(build_translator(tmp_path / "b.recur", attention=False))).version[0] == 1


def test_model_without_attention_refuses_weights(library, tmp_path):
    import recur
    from recur import _capi
    path = build_translator(tmp_path / "plain.recur", attention=False)
    with recur.Model(path) as m:
        assert len(m.translate("s3 s4", beam=1, max_length=5).split()) >= 1
        with pytest.raises(recur.RecurError) as e:
            m.attention("s3 s4")
        assert e.value.code == recur.Status.UNSUPPORTED
        assert "no attention" in str(e.value)
        with pytest.raises(recur.RecurError) as e:
            m.translate("s3 s4", return_attention=True)
        assert e.value.code == recur.Status.UNSUPPORTED


def test_buffers_too_small_and_errors(library, translators):
    import recur
    from recur import _capi
    with recur.Model(translators["general"]) as m:
        L, h = m._lib, m._h()
        params = _capi.TranslateParams(1, 6, 1.0)
        n_out, n_src = C.c_size_t(99), C.c_size_t(99)
        s = L.recur_translate_attention(h, b"s3 s4 s5", C.byref(params), None, 0, None, 0, None, 0,
                                        C.byref(n_out), C.byref(n_src))
        assert s == recur.Status.BUFFER_TOO_SMALL
        n, T = n_out.value, n_src.value
        assert T == 4 and 1 <= n <= 6
        toks, src = (C.c_int32 * n)(*([-7] * n)), (C.c_int32 * T)(*([-7] * T))
        w = (C.c_float * (n * T))(*([-7.0] * (n * T)))
        s = L.recur_translate_attention(h, b"s3 s4 s5", C.byref(params), toks, n, src, T, w, n * T - 1,
                                        C.byref(n_out), C.byref(n_src))
        assert s == recur.Status.BUFFER_TOO_SMALL and (n_out.value, n_src.value) == (n, T)
        assert list(toks) == [-7] * n and list(w) == [-7.0] * (n * T)      # nothing written
        s = L.recur_translate_attention(h, b"s3 s4 s5", C.byref(params), toks, n, src, T, w, n * T,
                                        C.byref(n_out), C.byref(n_src))
        assert s == recur.Status.OK and list(src) == [3, 4, 5, 2]
        s = L.recur_translate_attention(h, b"s3 s4 s5", C.byref(params), None, 3, None, 0, None, 0,
                                        C.byref(n_out), C.byref(n_src))
        assert s == recur.Status.INVALID_ARGUMENT
        with pytest.raises(recur.RecurError) as e:
            m.attention("   ")
        assert e.value.code == recur.Status.INVALID_ARGUMENT
        with pytest.raises(ValueError):
            m.attention("s3", beam=0)
        # A fresh state of an attention decoder cannot be stepped: it has no encoded source.
        st = m.new_state()
        with pytest.raises(recur.RecurError) as e:
            st.step(1)
        assert e.value.code == recur.Status.UNSUPPORTED and "encod" in str(e.value)
        # The layer properties name the attention layer.
        kind = C.c_int64()
        assert L.recur_model_layer_get(h, 2, _capi.RECUR_LAYER_KIND, C.byref(kind)) == 0
        assert kind.value == _capi.RECUR_LAYER_ATTENTION
