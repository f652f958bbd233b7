"""Reading a model's layers: Model.layers, State.layer_state and Model.layer_outputs against the numpy
reference (recur/reference.py), which computes every layer from the file's weights without the library."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _format_support import ref, rf  # noqa: E402
from test_reference import QUANTIZED_MATRICES, QUANTIZED_STACK, build_model, max_abs, tokens_for  # noqa: E402

import recur  # noqa: E402
from recur import RecurError, Status  # noqa: E402

pytestmark = pytest.mark.usefixtures("library")

TOL = 1e-4
MODELS = Path(__file__).resolve().parents[3] / "models"
RECURRENT = ("rnn", "gru", "lstm")


def reference_layers(m: "ref.ReferenceModel", inputs) -> list:
    """Every layer of `m` over a whole sequence from a zero state, as the reference computes it: one dict
    per layer with "output" (rows as the next layer reads them) and, for recurrent layers, "hidden" and
    "cell" (every step, directions side by side [forward, backward]). A classifier's dense layers read the
    last step (or the mean of the steps)."""
    first = m.layers[0]
    if first["kind"] == "embedding":
        xs = np.stack([m._input(t) for t in inputs])
        pad = m.metadata.get("tokenizer.pad_id")
        keep = [pad is None or int(t) != pad for t in inputs]
    else:
        frames = np.asarray(inputs, np.float64).reshape(len(inputs), -1)
        xs = np.stack([m._input(f) for f in frames])
        keep = [not m._masked(f) for f in frames]
    T = len(xs)
    out, seq = [], True
    last_recurrent = max(i for i, l in enumerate(m.layers) if l["kind"] in RECURRENT)
    for i, layer in enumerate(m.layers):
        kind = layer["kind"]
        if kind == "embedding":
            out.append({"output": xs.copy()})
            continue
        if kind == "dense":
            if seq and m.task == "classify":
                rows = [t for t in range(T) if keep[t]] or list(range(T))
                xs = xs[rows].mean(axis=0) if m.pooling == "mean" else xs[-1]
                seq = False
            if seq:
                xs = np.stack([ref.dense(layer, x) for x in xs])
                out.append({"output": xs})
            else:
                xs = ref.dense(layer, xs)
                out.append({"output": xs[None, :]})
            continue
        H = layer["units"]

        def run(p, order):
            h, c = np.zeros(H), np.zeros(H)
            hs, cs = np.zeros((T, H)), np.zeros((T, H))
            for t in order:
                if keep[t]:
                    if kind == "lstm":
                        h, c = ref.lstm_step(p, xs[t], h, c)
                    elif kind == "gru":
                        h = ref.gru_step(p, xs[t], h)
                    else:
                        h = ref.rnn_step(p, xs[t], h)
                hs[t], cs[t] = h, c
            return hs, cs

        fh, fc = run(layer["directions"][0], range(T))
        if layer["bidirectional"]:
            bh, bc = run(layer["directions"][1], range(T - 1, -1, -1))
            hidden, cell = np.concatenate([fh, bh], axis=1), np.concatenate([fc, bc], axis=1)
            merged = ref.ReferenceModel._merge(layer["merge_mode"], fh, bh)
            y = merged if layer["return_sequences"] else ref.ReferenceModel._merge(layer["merge_mode"], fh[-1], bh[0])[None, :]
        else:
            hidden, cell = fh, fc
            y = fh if layer["return_sequences"] else fh[-1:]
        out.append({"output": y, "hidden": hidden, "cell": cell})
        if not layer["return_sequences"]:
            seq = False
            xs = y[0]
        else:
            xs = y
        assert seq or i >= last_recurrent
    return out


def layer_kinds(model):
    return [d["kind"] for d in model.layers]


def check_sequence(model: recur.Model, d, inputs, tol=TOL, quantized=False):
    """Every layer's output (and recurrent layers' hidden and cell states) against the reference."""
    m = ref.ReferenceModel(d, quantized_inputs=quantized, input_table=False)
    expected = reference_layers(m, inputs)
    # The helper agrees with the reference's own whole-sequence run (tag and generate tasks: every step).
    if m.task != "classify":
        assert max_abs(np.atleast_2d(expected[-1]["output"]), np.atleast_2d(m.forward_sequence(inputs))) < 1e-9
    layers = model.layers
    assert len(layers) == len(expected)
    for i, (info, e) in enumerate(zip(layers, expected)):
        got = model.layer_outputs(inputs, i)
        assert got.dtype == np.float32 and got.shape == np.shape(e["output"]), (i, got.shape)
        assert got.shape[1] == info["output_size"]
        assert max_abs(got, e["output"]) < tol, i
        if info["directions"]:
            h = model.layer_outputs(inputs, i, values="hidden")
            assert h.shape == (len(inputs), info["units"] * info["directions"])
            assert max_abs(h, e["hidden"]) < tol, i
            if info["kind"] == "lstm":
                assert max_abs(model.layer_outputs(inputs, i, values="cell"), e["cell"]) < tol, i
    return expected


STACKS = {
    "gru": [{"kind": "gru", "units": 7}],
    "gru-reset-before": [{"kind": "gru", "units": 7, "reset_after": False}],
    "lstm": [{"kind": "lstm", "units": 6}],
    "peephole-lstm": [{"kind": "lstm", "units": 6, "peephole": True}],
    "rnn": [{"kind": "rnn", "units": 8}],
    "stacked": [{"kind": "lstm", "units": 6, "peephole": True}, {"kind": "gru", "units": 5},
                {"kind": "rnn", "units": 7}],
}


def _embedding_stack(name):
    return [{"kind": "embedding", "dim": 5}] + STACKS[name] + [{"kind": "dense", "units": 9},
                                                                 {"kind": "dense", "units": 11}]


@pytest.mark.parametrize("name", list(STACKS))
def test_layer_states_after_steps_and_prefill_match_the_reference(tmp_path, name):
    path = tmp_path / "m.recur"
    d = build_model(path, _embedding_stack(name), seed=len(name), scale=0.5)
    toks = tokens_for(11, 30, seed=5)
    model = recur.Model(path)
    assert layer_kinds(model) == ["embedding"] + [L["kind"] for L in STACKS[name]] + ["dense", "dense"]
    m = ref.ReferenceModel(d)
    stepped, fed = model.new_state(), model.new_state()
    fed.feed(toks[:20])
    for k, t in enumerate(toks):
        stepped.step(t)
        m.step(t)
        if k == 19:
            for i in range(1, 1 + len(STACKS[name])):
                assert max_abs(fed.layer_state(i), m.h[i - 1]) < TOL
                if model.layers[i]["kind"] == "lstm":
                    assert max_abs(fed.layer_state(i, cell=True), m.c[i - 1]) < TOL
        if k % 7 == 0 or k == len(toks) - 1:
            for i in range(1, 1 + len(STACKS[name])):
                h = stepped.layer_state(i)
                assert h.dtype == np.float32 and h.shape == (model.layers[i]["units"],)
                assert max_abs(h, m.h[i - 1]) < TOL
                if model.layers[i]["kind"] == "lstm":
                    assert max_abs(stepped.layer_state(i, cell=True), m.c[i - 1]) < TOL
    # The last recurrent layer's h is what the head read: the dense layers over it give the output.
    last = stepped.layer_state(len(STACKS[name]))
    x = last.astype(np.float64)
    for layer in m.layers[-2:]:
        x = ref.dense(layer, x)
    assert max_abs(stepped.output, x) < TOL
    # A reset zeroes them.
    stepped.reset()
    assert not stepped.layer_state(1).any()


@pytest.mark.parametrize("name", list(STACKS))
def test_layer_outputs_of_a_generator_match_the_reference(tmp_path, name):
    path = tmp_path / "m.recur"
    d = build_model(path, _embedding_stack(name), seed=len(name) + 1, scale=0.5)
    model = recur.Model(path)
    toks = tokens_for(11, 25, seed=2)
    expected = check_sequence(model, d, toks)
    # The last layer's outputs are the logits after each token, as stepping gives them.
    state = model.new_state()
    stepped = np.stack([state.step(t) for t in toks])
    assert max_abs(model.layer_outputs(toks, len(model.layers) - 1), stepped) < TOL
    assert max_abs(stepped, expected[-1]["output"]) < TOL


@pytest.mark.parametrize("merge", ["concat", "sum", "ave"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_layer_outputs_match_the_reference(tmp_path, merge, return_sequences):
    layers = [{"kind": "embedding", "dim": 5},
              {"kind": "lstm", "units": 6, "bidirectional": True, "merge_mode": merge, "peephole": True},
              {"kind": "gru", "units": 4, "bidirectional": True, "merge_mode": merge,
               "return_sequences": return_sequences},
              {"kind": "dense", "units": 3, "activation": "softmax"}]
    path = tmp_path / "m.recur"
    d = build_model(path, layers, task="tag" if return_sequences else "classify", seed=6)
    model = recur.Model(path)
    toks = tokens_for(11, 20, seed=3)
    expected = check_sequence(model, d, toks)
    info = model.layers
    assert [x["directions"] for x in info] == [0, 2, 2, 0]
    assert info[1]["output_size"] == (12 if merge == "concat" else 6)
    assert info[2]["return_sequences"] is return_sequences
    rows = len(toks) if return_sequences else 1
    assert model.layer_outputs(toks, 2).shape == (rows, 8 if merge == "concat" else 4)
    assert model.layer_outputs(toks, 3).shape == (rows, 3)
    # The final vectors of each direction: the forward half of the last row, the backward half of row 0.
    h = model.layer_outputs(toks, 2, values="hidden")
    if not return_sequences:
        assert max_abs(model.layer_outputs(toks, 2)[0],
                       ref.ReferenceModel._merge(merge, h[-1, :4], h[0, 4:])) < TOL
    # The last layer is what the task call gives.
    if return_sequences:
        assert [t for _, t in model.tag("".join(chr(0x41 + t) for t in toks))] == \
            [str(int(k)) for k in np.argmax(model.layer_outputs(toks, 3), axis=1)]
    else:
        assert max_abs(model.classify("".join(chr(0x41 + t) for t in toks)), expected[-1]["output"][0]) < TOL


def test_a_classifier_s_head_reads_the_last_step_and_padding_carries_the_state(tmp_path):
    layers = [{"kind": "embedding", "dim": 5}, {"kind": "gru", "units": 6, "bidirectional": True},
              {"kind": "lstm", "units": 4}, {"kind": "dense", "units": 5, "activation": "relu"},
              {"kind": "dense", "units": 2, "activation": "softmax"}]
    path = tmp_path / "m.recur"
    d = build_model(path, layers, task="classify", seed=8, pad_id=0)
    model = recur.Model(path)
    toks = [0, 3, 4, 0, 5, 6, 0]
    check_sequence(model, d, toks)
    assert model.layer_outputs(toks, 2).shape == (7, 4)
    assert model.layer_outputs(toks, 3).shape == (1, 5)
    # A PAD step carries the state: the forward half repeats the step before, the backward half the step
    # after (the backward direction runs from the end).
    out = model.layer_outputs(toks, 1)
    assert np.array_equal(out[3, :6], out[2, :6]) and np.array_equal(out[3, 6:], out[4, 6:])
    assert not out[0, :6].any() and np.array_equal(out[0, 6:], out[1, 6:]) and not out[6, 6:].any()


@pytest.mark.parametrize("dtype", ["q8", "f16"])
def test_quantized_layers_match_the_reference_of_their_decoded_values(tmp_path, dtype):
    layers, matrices = QUANTIZED_STACK, QUANTIZED_MATRICES
    path = tmp_path / "m.recur"
    d = build_model(path, layers, seed=9, scale=0.4, dtypes={m: dtype for m in matrices})
    model = recur.Model(path)
    toks = tokens_for(11, 30, seed=3)
    check_sequence(model, d, toks, quantized=True)
    # Stepping: q8 products quantize each step's vector; the first layer's input table is exact.
    m = ref.ReferenceModel(d, quantized_inputs=True, input_table=True)
    s = model.new_state()
    for t in toks:
        s.step(t)
        m.step(t)
    assert max_abs(s.layer_state(1), m.h[0]) < TOL
    assert max_abs(s.layer_state(1, cell=True), m.c[0]) < TOL
    assert max_abs(s.layer_state(2), m.h[1]) < TOL


def test_frame_models(tmp_path):
    path = MODELS / "japanese-vowels.recur"
    model = recur.Model(path)
    d = rf.read(path)
    frames = np.random.default_rng(4).normal(0, 1, (14, model.frame_size)).astype(np.float32)
    check_sequence(model, d, frames)
    last = len(model.layers) - 1
    assert max_abs(model.layer_outputs(frames, last), model.predict(frames)) < 1e-6
    with pytest.raises(ValueError):
        model.layer_outputs(frames[:, :-1], 0)


@pytest.mark.parametrize("name", ["sentiment", "pos", "alice"])
def test_shipped_models_match_the_reference(name):
    path = MODELS / f"{name}.recur"
    model = recur.Model(path)
    d = rf.read(path)
    V = model.vocab_size
    toks = tokens_for(V, 12, seed=11)
    if model.info()["pad_id"] is not None:
        toks = [t for t in toks if t != model.info()["pad_id"]] or [1]
    check_sequence(model, d, toks, tol=2e-4)
    if model.info()["can_step"]:
        m = ref.ReferenceModel(d)
        s = model.new_state()
        s.feed(toks)
        for t in toks:
            m.step(t)
        recurrent = [i for i, x in enumerate(model.layers) if x["directions"]]
        for k, i in enumerate(recurrent):
            assert max_abs(s.layer_state(i), m.h[k]) < 2e-4
            if model.layers[i]["kind"] == "lstm":
                assert max_abs(s.layer_state(i, cell=True), m.c[k]) < 2e-4


def test_errors_are_checked_before_the_library(tmp_path):
    path = tmp_path / "m.recur"
    build_model(path, [{"kind": "embedding", "dim": 4}, {"kind": "gru", "units": 5},
                       {"kind": "lstm", "units": 3}, {"kind": "dense", "units": 11}])
    model = recur.Model(path)
    s = model.new_state()
    s.step(3)
    with pytest.raises(RecurError) as e:
        s.layer_state(4)
    assert e.value.code == Status.OUT_OF_RANGE and "layer 4 is outside the model's layers (0..<4)" in e.value.message
    with pytest.raises(RecurError) as e:
        s.layer_state(1, cell=True)
    assert e.value.code == Status.INVALID_ARGUMENT and "no cell state" in e.value.message
    for i in (0, 3):
        with pytest.raises(RecurError) as e:
            s.layer_state(i)
        assert e.value.code == Status.INVALID_ARGUMENT and "no hidden state" in e.value.message
    with pytest.raises(TypeError):
        s.layer_state("1")
    with pytest.raises(TypeError):
        s.layer_state(True)
    with pytest.raises(TypeError):
        s.layer_state(1, cell=1)
    with pytest.raises(RecurError) as e:
        s.layer_state(-1)
    assert e.value.code == Status.OUT_OF_RANGE
    with pytest.raises(RecurError) as e:
        model.layer_outputs([1, 2], 9)
    assert e.value.code == Status.OUT_OF_RANGE
    with pytest.raises(RecurError) as e:
        model.layer_outputs([1, 2], 1, values="cell")
    assert e.value.code == Status.INVALID_ARGUMENT
    with pytest.raises(RecurError) as e:
        model.layer_outputs([1, 2], 3, values="hidden")
    assert e.value.code == Status.INVALID_ARGUMENT
    with pytest.raises(ValueError):
        model.layer_outputs([1, 2], 1, values="gates")
    with pytest.raises(RecurError) as e:
        model.layer_outputs([1, 99], 1)
    assert e.value.code == Status.OUT_OF_RANGE
    with pytest.raises(RecurError) as e:
        model.layer_outputs([], 1)
    assert e.value.code == Status.INVALID_ARGUMENT
    assert model.layer_outputs([1, 2], 2, values="cell").shape == (2, 3)
    # The state is unchanged by reads and by refused ones; it stays readable after its model's object closes.
    before = s.layer_state(2)
    model.close()
    assert np.array_equal(s.layer_state(2), before)


def test_the_library_refuses_what_the_bindings_check(tmp_path):
    # The same checks in the library, called directly.
    import ctypes as C
    from recur import _capi
    path = tmp_path / "m.recur"
    build_model(path, [{"kind": "embedding", "dim": 4}, {"kind": "gru", "units": 5},
                       {"kind": "dense", "units": 11}])
    model = recur.Model(path)
    s = model.new_state()
    L, h, st = model._lib, model._h(), s._h()
    n = C.c_size_t(77)
    buf = (C.c_float * 5)()
    assert L.recur_state_layer(st, 3, _capi.RECUR_VALUES_HIDDEN, buf, 5, C.byref(n)) == Status.OUT_OF_RANGE
    assert "layer 3" in _capi.last_error()
    assert L.recur_state_layer(st, 1, _capi.RECUR_VALUES_CELL, buf, 5, C.byref(n)) == Status.INVALID_ARGUMENT
    assert "no cell state" in _capi.last_error()
    assert L.recur_state_layer(st, 1, 7, buf, 5, C.byref(n)) == Status.INVALID_ARGUMENT
    assert L.recur_state_layer(st, 1, _capi.RECUR_VALUES_HIDDEN, buf, 4, C.byref(n)) == Status.BUFFER_TOO_SMALL
    assert n.value == 5
    assert L.recur_state_layer(st, 1, _capi.RECUR_VALUES_HIDDEN, None, 5, C.byref(n)) == Status.INVALID_ARGUMENT
    assert L.recur_state_layer(st, 1, _capi.RECUR_VALUES_HIDDEN, buf, 5, None) == Status.INVALID_ARGUMENT
    v = C.c_int64()
    assert L.recur_model_layer_get(h, 3, _capi.RECUR_LAYER_KIND, C.byref(v)) == Status.OUT_OF_RANGE
    assert L.recur_model_layer_get(h, 1, 99, C.byref(v)) == Status.INVALID_ARGUMENT
    toks = (C.c_int32 * 2)(1, 2)
    rows, width = C.c_size_t(), C.c_size_t()
    out = (C.c_float * 10)()
    assert L.recur_model_layer_outputs(h, toks, 2, 1, 0, out, 9, C.byref(rows), C.byref(width)) == Status.BUFFER_TOO_SMALL
    assert (rows.value, width.value) == (2, 5) and out[0] == 0
    assert L.recur_model_layer_outputs(h, toks, 2, 1, 0, out, 10, C.byref(rows), None) == Status.INVALID_ARGUMENT
    assert L.recur_model_layer_outputs(h, toks, 0, 1, 0, out, 10, C.byref(rows), C.byref(width)) == Status.INVALID_ARGUMENT
    assert L.recur_model_layer_outputs_frames(h, None, 1, 4, 1, 0, out, 10, C.byref(rows), C.byref(width)) == Status.UNSUPPORTED
