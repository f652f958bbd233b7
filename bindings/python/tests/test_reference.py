"""The runtime against the numpy reference (recur/reference.py), which is written from the equations of
docs/FORMAT.md. The runtime's outputs come from the hidden `recur logits` command."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _format_support import create, ref, rf, run_cli, runtime_logits  # noqa: E402

TOL = 1e-4
CELLS = ["gru", "gru-reset-before", "lstm", "peephole-lstm", "rnn", "rnn-relu"]
ACTIVATIONS = ["linear", "relu", "tanh", "sigmoid", "hard_sigmoid_keras2", "hard_sigmoid_keras3"]


def max_abs(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max())


# --- Building models with chosen weights --------------------------------------------------------------

def build_model(path, layers, vocab: int = 11, task: str = "generate", seed: int = 0, scale: float = 0.7,
                dtypes=None, pad_id=None, weights=None):
    """Writes a model. `layers`: dicts with "kind" and embedding "dim" / recurrent and dense "units" plus
    optional keys of the spec (activation, recurrent_activation, reset_after, peephole, bidirectional,
    merge_mode, return_sequences). Weights are normal(0, scale), embeddings normal(0, 1.5); `weights`
    overrides chosen tensors."""
    rng = np.random.default_rng(seed)
    meta = {"model.task": task, "model.layer_count": len(layers)}
    tensors = {}
    width = None
    for i, L in enumerate(layers):
        p = f"layer.{i}."
        kind = L["kind"]
        meta[p + "kind"] = kind
        if kind == "embedding":
            meta[p + "input_dim"], meta[p + "output_dim"] = vocab, L["dim"]
            tensors[p + "embeddings"] = rng.normal(0, 1.5, (vocab, L["dim"]))
            width = L["dim"]
        elif kind == "dense":
            meta[p + "input_size"], meta[p + "units"] = width, L["units"]
            meta[p + "activation"] = L.get("activation", "linear")
            tensors[p + "kernel"] = rng.normal(0, scale, (L["units"], width))
            tensors[p + "bias"] = rng.normal(0, scale, L["units"])
            width = L["units"]
        else:
            H = L["units"]
            G = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
            meta[p + "input_size"], meta[p + "units"] = width, H
            for k in ("activation", "recurrent_activation", "reset_after", "peephole", "return_sequences",
                      "bidirectional", "merge_mode"):
                if k in L:
                    meta[p + k] = L[k]
            bidi = L.get("bidirectional", False)
            for q in ([p + "forward.", p + "backward."] if bidi else [p]):
                tensors[q + "kernel"] = rng.normal(0, scale, (G * H, width))
                tensors[q + "recurrent_kernel"] = rng.normal(0, scale, (G * H, H))
                tensors[q + "bias"] = rng.normal(0, scale, G * H)
                if kind == "gru" and L.get("reset_after", True):
                    tensors[q + "recurrent_bias"] = rng.normal(0, scale, G * H)
                if kind == "lstm" and L.get("peephole", False):
                    tensors[q + "peephole"] = rng.normal(0, scale, (3, H))
            width = 2 * H if bidi and L.get("merge_mode", "concat") == "concat" else H
    meta["tokenizer.kind"] = "char"
    meta["tokenizer.tokens"] = [chr(0x41 + i) for i in range(vocab)]
    if pad_id is not None:
        meta["tokenizer.pad_id"] = pad_id
    tensors.update(weights or {})
    tensors = {k: np.asarray(v, np.float32) for k, v in tensors.items()}
    rf.write(path, meta, tensors, dtypes)
    return rf.read(path)


def compare_steps(path, tokens, no_input_table: bool = False) -> float:
    model = ref.ReferenceModel(rf.read(path))
    expected = model.run(tokens)
    got = runtime_logits(path, tokens, no_input_table=no_input_table)
    return max_abs(got, expected)


def tokens_for(vocab: int, n: int = 50, seed: int = 1) -> list:
    return [int(t) for t in np.random.default_rng(seed).integers(0, vocab, n)]


# --- Known values ------------------------------------------------------------------------------------

def test_splitmix64_matches_the_published_sequences():
    r = ref.SplitMix64(0)
    assert [r.next() for _ in range(4)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F,
                                            0xF88BB8A8724C81EC]
    r = ref.SplitMix64(1234567)
    assert [r.next() for _ in range(3)] == [6457827717110365317, 3203168211198807973, 9817491932198370423]
    r = ref.SplitMix64(0)
    assert r.next_unit() == (0xE220A8397B1DCDAF >> 11) / 2.0 ** 53


def test_activation_formulas():
    x = np.array([-4.0, -1.0, 0.0, 1.0, 2.0, 4.0])
    assert np.allclose(ref.activate("hard_sigmoid_keras2", x), [0, 0.3, 0.5, 0.7, 0.9, 1])
    assert np.allclose(ref.activate("hard_sigmoid_keras3", x), [0, 1 / 3, 0.5, 2 / 3, 5 / 6, 1])
    assert np.allclose(ref.activate("sigmoid", np.array([0.0, -800.0, 800.0])), [0.5, 0, 1])
    assert np.allclose(ref.activate("softmax", np.array([0.0, math.log(3)])), [0.25, 0.75])
    assert np.array_equal(ref.activate("relu", x), [0, 0, 0, 1, 2, 4])


def test_cells_on_hand_computed_inputs():
    # One unit, scalar weights: each formula evaluated by hand.
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    x, h = np.array([0.5]), np.array([0.2])
    p = {"activation": "tanh", "recurrent_activation": "sigmoid", "reset_after": True,
         "W": np.array([[1.0], [2.0], [3.0]]), "U": np.array([[0.5], [-1.0], [2.0]]),
         "b": np.array([0.1, 0.2, 0.3]), "bh": np.array([-0.1, 0.05, 0.4])}
    r = sig(0.5 + 0.1 + 0.1 - 0.1)
    z = sig(1.0 + 0.2 - 0.2 + 0.05)
    n = math.tanh(1.5 + 0.3 + r * (0.4 + 0.4))
    assert math.isclose(ref.gru_step(p, x, h)[0], (1 - z) * n + z * 0.2, rel_tol=1e-12)
    p["reset_after"] = False
    r = sig(0.5 + 0.1 + 0.1)
    z = sig(1.0 + 0.2 - 0.2)
    n = math.tanh(1.5 + 0.3 + 2.0 * (r * 0.2))
    assert math.isclose(ref.gru_step(p, x, h)[0], (1 - z) * n + z * 0.2, rel_tol=1e-12)
    c = np.array([-0.3])
    q = {"activation": "tanh", "recurrent_activation": "sigmoid", "W": np.array([[1.0], [2.0], [3.0], [4.0]]),
         "U": np.array([[0.1], [0.2], [0.3], [0.4]]), "b": np.array([0.0, 0.1, 0.2, 0.3]),
         "P": np.array([[0.5], [0.6], [0.7]])}
    i = sig(0.5 + 0.02 + 0.0 + 0.5 * -0.3)
    f = sig(1.0 + 0.04 + 0.1 + 0.6 * -0.3)
    g = math.tanh(1.5 + 0.06 + 0.2)
    c2 = f * -0.3 + i * g
    o = sig(2.0 + 0.08 + 0.3 + 0.7 * c2)
    h2, c3 = ref.lstm_step(q, x, h, c)
    assert math.isclose(c3[0], c2, rel_tol=1e-12) and math.isclose(h2[0], o * math.tanh(c2), rel_tol=1e-12)
    del q["P"]
    i, f, o = sig(0.52), sig(1.14), sig(2.38)
    c2 = f * -0.3 + i * g
    h2, c3 = ref.lstm_step(q, x, h, c)
    assert math.isclose(h2[0], o * math.tanh(c2), rel_tol=1e-12)
    s = {"activation": "relu", "W": np.array([[2.0]]), "U": np.array([[-3.0]]), "b": np.array([0.1])}
    assert ref.rnn_step(s, x, h)[0] == pytest.approx(max(0.0, 1.0 + 0.1 - 0.6))


# --- Runtime against the reference ------------------------------------------------------------------

@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_cli_models_match_the_reference(tmp_path, cell, layers):
    path = tmp_path / "m.recur"
    create(path, cell=cell, layers=layers, hidden=24, embedding=10, seed=3 + layers)
    V = len(rf.read(path).metadata["tokenizer.tokens"])
    toks = tokens_for(V, 50, seed=layers)
    assert compare_steps(path, toks) < TOL
    assert compare_steps(path, toks, no_input_table=True) < TOL
    # Prefill gives the output after the last token.
    expected = ref.ReferenceModel(rf.read(path)).run(toks)[-1]
    assert max_abs(runtime_logits(path, toks, prefill=True), expected) < TOL


STACKS = {
    "gru-hard-sigmoid-keras2": [{"kind": "gru", "units": 9, "recurrent_activation": "hard_sigmoid_keras2"}],
    "gru-reset-before-hard-sigmoid-keras3": [
        {"kind": "gru", "units": 9, "reset_after": False, "recurrent_activation": "hard_sigmoid_keras3"}],
    "lstm-hard-sigmoid-keras2": [{"kind": "lstm", "units": 7, "recurrent_activation": "hard_sigmoid_keras2"}],
    "peephole-lstm-hard-sigmoid-keras3": [
        {"kind": "lstm", "units": 7, "peephole": True, "recurrent_activation": "hard_sigmoid_keras3"}],
    "rnn-relu": [{"kind": "rnn", "units": 8, "activation": "relu"}],
    "rnn-sigmoid": [{"kind": "rnn", "units": 8, "activation": "sigmoid"}],
    "gru-relu-candidate": [{"kind": "gru", "units": 6, "activation": "relu"}],
    "lstm-gru-rnn-stack": [{"kind": "lstm", "units": 6, "peephole": True}, {"kind": "gru", "units": 5},
                           {"kind": "rnn", "units": 7}],
    "gru-reset-before-over-lstm": [{"kind": "lstm", "units": 6},
                                   {"kind": "gru", "units": 8, "reset_after": False}],
}


@pytest.mark.parametrize("name", list(STACKS))
def test_python_written_cells_match_the_reference(tmp_path, name):
    layers = [{"kind": "embedding", "dim": 5}] + STACKS[name] + [{"kind": "dense", "units": 11}]
    path = tmp_path / "m.recur"
    # An unbounded activation keeps the recurrence stable only with smaller weights (spectral radius < 1).
    build_model(path, layers, seed=len(name), scale=0.3 if name == "rnn-relu" else 0.7)
    toks = tokens_for(11, 50, seed=7)
    assert compare_steps(path, toks) < TOL
    assert compare_steps(path, toks, no_input_table=True) < TOL
    expected = ref.ReferenceModel(rf.read(path)).run(toks)[-1]
    assert max_abs(runtime_logits(path, toks, prefill=True), expected) < TOL


def test_hard_sigmoid_gates_reach_both_clipping_regions(tmp_path):
    # The chosen weights must exercise the clipped parts of the hard sigmoids, or the test proves little.
    path = tmp_path / "m.recur"
    d = build_model(path, [{"kind": "embedding", "dim": 5}, STACKS["gru-hard-sigmoid-keras2"][0],
                           {"kind": "dense", "units": 11}], seed=len("gru-hard-sigmoid-keras2"))
    m = ref.ReferenceModel(d)
    pre = []
    for t in tokens_for(11, 50, seed=7):
        p = m.layers[1]["directions"][0]
        x = m.layers[0]["table"][t]
        pre.append(p["W"] @ x + p["b"] + p["U"] @ m.h[0] + p["bh"])
        m.step(t)
    pre = np.concatenate(pre)
    assert (pre < -2.5).any() and (pre > 2.5).any() and (np.abs(pre) < 2.5).any()


@pytest.mark.parametrize("activation", ACTIVATIONS + ["softmax"])
def test_dense_heads_match_the_reference(tmp_path, activation):
    # A hidden dense layer with the activation, then the vocabulary layer (linear; softmax for one case).
    layers = [{"kind": "embedding", "dim": 4}, {"kind": "gru", "units": 6},
              {"kind": "dense", "units": 9, "activation": activation},
              {"kind": "dense", "units": 11, "activation": "softmax" if activation == "relu" else "linear"}]
    path = tmp_path / "m.recur"
    build_model(path, layers, seed=5, scale=1.2)
    assert compare_steps(path, tokens_for(11, 40)) < TOL


def test_softmax_output_head_gives_probabilities(tmp_path):
    path = tmp_path / "m.recur"
    build_model(path, [{"kind": "embedding", "dim": 4}, {"kind": "lstm", "units": 6},
                       {"kind": "dense", "units": 11, "activation": "softmax"}], seed=2)
    got = np.array(runtime_logits(path, tokens_for(11, 20)))
    assert np.allclose(got.sum(axis=1), 1, atol=1e-5) and (got >= 0).all()
    assert compare_steps(path, tokens_for(11, 20)) < TOL


def test_tagger_without_dense_head_outputs_the_hidden_state(tmp_path):
    path = tmp_path / "m.recur"
    build_model(path, [{"kind": "embedding", "dim": 4}, {"kind": "gru", "units": 6},
                       {"kind": "lstm", "units": 5}], task="tag", seed=4)
    assert compare_steps(path, tokens_for(11, 30)) < TOL


# A stack with every matrix kind, for the quantized types (vocabulary 11).
QUANTIZED_STACK = [{"kind": "embedding", "dim": 40}, {"kind": "lstm", "units": 20, "peephole": True},
                   {"kind": "gru", "units": 33}, {"kind": "dense", "units": 11}]
QUANTIZED_MATRICES = ["layer.0.embeddings", "layer.1.kernel", "layer.1.recurrent_kernel", "layer.2.kernel",
                      "layer.2.recurrent_kernel", "layer.3.kernel"]


@pytest.mark.parametrize("dtype", ["f16", "q8", "q4", "q8r", "q8ri", "q4i"])
def test_quantized_weights_match_the_reference_of_their_decoded_values(tmp_path, dtype):
    layers, matrices = QUANTIZED_STACK, QUANTIZED_MATRICES
    path = tmp_path / "m.recur"
    d = build_model(path, layers, seed=9, scale=0.4, dtypes={m: dtype for m in matrices})
    assert {d.info[m].dtype.label for m in matrices} == {dtype}
    toks = tokens_for(11, 50, seed=3)
    # q8/q4 products quantize the vector per block of 32, q8r products per vector (docs/FORMAT.md §13);
    # the reference does the same.
    # (A vector element exactly on a rounding boundary in one implementation and not the other would flip
    # by one step; with these fixed weights and tokens none does.)
    # The runtime's table of first-layer input projections is built with exact products.
    exact = ref.ReferenceModel(d)
    for table in (True, False):
        expected = ref.ReferenceModel(d, quantized_inputs=True, input_table=table).run(toks)
        assert max_abs(runtime_logits(path, toks, no_input_table=not table), expected) < TOL
        # Prefill computes the upper layers' input projections of the whole prompt with exact products
        # (decoded weights and sgemm) instead of quantizing each step's vector, so for q8/q4 it differs
        # from stepping by at most the activation-quantization error.
        pre = runtime_logits(path, toks, prefill=True, no_input_table=not table)
        assert max_abs(pre, expected[-1]) < (TOL if dtype == "f16" else 0.1)
    # Against exact products the difference is the documented approximation: small, and zero for f16.
    err = max_abs(runtime_logits(path, toks), exact.run(toks))
    assert err < TOL if dtype == "f16" else err < 0.15


def test_per_vector_activation_quantization_rule():
    x = np.array([0.5, -1.0, 0.25, 1.0 / 128, 2.0 ** -8] + [0.0] * 40, np.float32)
    got = ref.quantize_activations_per_vector(x)
    d = np.float32(1.0) / np.float32(64)
    # 0.5 · 64 = 32, 0.25 · 64 = 16, 64/128 = 0.5 → 0 (half to even), 64/256 = 0.25 → 0.
    assert np.allclose(got[:5], np.array([32, -64, 16, 0, 0]) * float(d), rtol=0, atol=1e-12)
    assert not got[5:].any()


def test_activation_quantization_rule():
    x = np.array([0.5, -1.0, 0.25, 1.0 / 254] + [0.0] * 28 + [3.0, 0.0], np.float32)
    got = ref.quantize_activations(x)
    d0, d1 = np.float32(1.0) / np.float32(127), np.float32(3.0) / np.float32(127)
    # 0.5 · 127 = 63.5 → 64 (half to even), 0.25 · 127 = 31.75 → 32, 127/254 = 0.5 → 0 (half to even).
    assert np.allclose(got[:4], np.array([64, -127, 32, 0]) * float(d0), rtol=0, atol=1e-12)
    assert np.allclose(got[32:], np.array([127, 0]) * float(d1), rtol=0, atol=1e-12)


# --- Whole sequences ---------------------------------------------------------------------------------

def runtime_sequence(path, tokens):
    import json
    return json.loads(run_cli("logits", path, "--tokens", ",".join(map(str, tokens)), "--sequence").stdout)


@pytest.mark.parametrize("merge", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_layers_match_the_reference(tmp_path, merge, return_sequences):
    layers = [{"kind": "embedding", "dim": 5},
              {"kind": "lstm", "units": 6, "bidirectional": True, "merge_mode": merge},
              {"kind": "gru", "units": 4, "bidirectional": True, "merge_mode": merge,
               "return_sequences": return_sequences},
              {"kind": "dense", "units": 3, "activation": "softmax"}]
    path = tmp_path / "m.recur"
    d = build_model(path, layers, task="tag" if return_sequences else "classify", seed=6)
    toks = tokens_for(11, 25, seed=2)
    expected = ref.ReferenceModel(d).forward_sequence(toks)
    got = runtime_sequence(path, toks)
    if not return_sequences:
        assert len(got) == 1
        got = got[0]
    assert max_abs(got, expected) < TOL


def test_padding_steps_are_skipped_in_whole_sequences(tmp_path):
    layers = [{"kind": "embedding", "dim": 5}, {"kind": "gru", "units": 6, "bidirectional": True},
              {"kind": "rnn", "units": 4, "return_sequences": False}, {"kind": "dense", "units": 2}]
    path = tmp_path / "m.recur"
    d = build_model(path, layers, task="classify", seed=8, pad_id=0)
    toks = [0, 0, 3, 4, 0, 5, 6, 0]
    m = ref.ReferenceModel(d)
    expected = m.forward_sequence(toks)
    assert max_abs(runtime_sequence(path, toks)[0], expected) < TOL
    # The padding changes nothing: the same as the sequence without it.
    assert max_abs(expected, m.forward_sequence([3, 4, 5, 6])) < 1e-12


def test_padding_steps_run_in_an_unmasked_model(tmp_path):
    # tokenizer.pad_mask = false (Keras' mask_zero=False): PAD steps are ordinary steps, in the runtime
    # and in the reference, and they change the result.
    layers = [{"kind": "embedding", "dim": 5}, {"kind": "gru", "units": 6, "bidirectional": True},
              {"kind": "rnn", "units": 4, "return_sequences": False}, {"kind": "dense", "units": 2}]
    path = tmp_path / "m.recur"
    d = build_model(path, layers, task="classify", seed=8, pad_id=0)
    meta = dict(d.metadata)
    meta["tokenizer.pad_mask"] = False
    rf.write(path, meta, {k: np.asarray(v, np.float32) for k, v in d.tensors.items()})
    toks = [0, 0, 3, 4, 0, 5, 6, 0]
    m = ref.ReferenceModel(rf.read(path))
    expected = m.forward_sequence(toks)
    assert max_abs(runtime_sequence(path, toks)[0], expected) < TOL
    assert max_abs(expected, m.forward_sequence([3, 4, 5, 6])) > 1e-3


def test_forward_sequence_equals_stepping_for_one_directional_stacks(tmp_path):
    path = tmp_path / "m.recur"
    d = build_model(path, [{"kind": "embedding", "dim": 4}, {"kind": "lstm", "units": 5},
                           {"kind": "gru", "units": 6}, {"kind": "dense", "units": 11}], seed=1)
    m = ref.ReferenceModel(d)
    toks = tokens_for(11, 15)
    seq = m.forward_sequence(toks)
    assert max_abs(seq, np.stack(m.run(toks))) == 0.0
    assert max_abs(runtime_sequence(path, toks), seq) < TOL


# --- Sampling ----------------------------------------------------------------------------------------

def test_pick_rule_on_hand_computed_cases():
    # T = 0: argmax, lowest id on ties.
    assert ref.pick([1.0, 3.0, 3.0, 2.0], temperature=0) == 1
    # Two tokens with probabilities 0.25 / 0.75: sorted [1, 0], cumulative [0.75, 1].
    lg = [0.0, math.log(3.0)]
    assert ref.pick(lg, uniform=0.0) == 1
    assert ref.pick(lg, uniform=0.74) == 1
    assert ref.pick(lg, uniform=0.76) == 0
    assert ref.pick(lg, uniform=0.76, top_p=0.7) == 1          # top-p keeps only the first
    assert ref.pick(lg, uniform=0.99, top_k=1) == 1            # top-k keeps only the first
    # Ties are ordered by id: [2, 2] → order [0, 1].
    assert ref.pick([2.0, 2.0], uniform=0.49) == 0 and ref.pick([2.0, 2.0], uniform=0.51) == 1
    # Probabilities are taken as log p: order [1, 2, 0], cumulative [0.5, 0.8, 1.0].
    pr = [0.2, 0.5, 0.3]
    assert ref.pick(pr, uniform=0.6, probabilities=True) == 2
    assert ref.pick(pr, uniform=0.9, probabilities=True) == 0
    assert ref.pick([0.0, 1.0, 0.0], uniform=0.99, probabilities=True) == 1
    # Temperature 2 flattens [0, 2 ln 3] to probabilities 0.25 / 0.75 again.
    assert ref.pick([0.0, 2 * math.log(3.0)], temperature=2, uniform=0.76) == 0


GEN_CASES = [(1.0, 0, 1.0, 1), (0.7, 5, 1.0, 2), (1.3, 0, 0.5, 3), (0.9, 20, 0.9, 42)]


@pytest.mark.parametrize("temperature,top_k,top_p,seed", GEN_CASES)
def test_runtime_generation_follows_the_sampling_rule(tmp_path, temperature, top_k, top_p, seed):
    path = tmp_path / "m.recur"
    create(path, cell="gru", layers=1, hidden=16, embedding=8, seed=seed)
    pieces = rf.read(path).metadata["tokenizer.tokens"]
    index = {p: i for i, p in enumerate(pieces)}
    prompt = "Alice"
    out = run_cli("generate", path, "--prompt", prompt, "--tokens", 60, "--temperature", temperature,
                  "--top-k", top_k, "--top-p", top_p, "--seed", seed, "--no-prompt").stdout
    assert out.endswith("\n")
    generated = [index[ch] for ch in out[:-1]]
    assert len(generated) == 60
    ids = [index[ch] for ch in prompt]
    rows = runtime_logits(path, ids + generated[:-1])
    sampler = ref.ReferenceSampler(temperature, top_k, top_p, seed)
    expected = [sampler.sample(rows[len(ids) - 1 + k]) for k in range(60)]
    assert expected == generated


def test_greedy_generation_equals_the_reference_model(tmp_path):
    path = tmp_path / "m.recur"
    create(path, cell="lstm", layers=2, hidden=16, embedding=8, seed=5)
    d = rf.read(path)
    pieces = d.metadata["tokenizer.tokens"]
    out = run_cli("generate", path, "--prompt", "The ", "--tokens", 40, "--temperature", 0, "--no-prompt").stdout
    m = ref.ReferenceModel(d)
    logits = m.run([pieces.index(ch) for ch in "The "])[-1]
    sampler = ref.ReferenceSampler(temperature=0)
    text = ""
    for _ in range(40):
        t = sampler.sample(logits)
        text += pieces[t]
        logits = m.step(t)
    assert out == text + "\n"


# --- Layer orders the runtime cannot run -------------------------------------------------------------

def test_a_dense_layer_between_recurrent_layers_is_rejected(tmp_path):
    # The stepping path applies every dense layer after the last recurrent layer, so a dense layer between
    # recurrent layers would be computed in the wrong place; the file must be refused at load time.
    path = tmp_path / "m.recur"
    build_model(path, [{"kind": "embedding", "dim": 4}, {"kind": "rnn", "units": 5},
                       {"kind": "dense", "units": 9, "activation": "tanh"}, {"kind": "rnn", "units": 5},
                       {"kind": "dense", "units": 11}])
    p = run_cli("logits", path, "--tokens", "1,2", check=False)
    assert p.returncode != 0 and "dense" in p.stderr, p.stdout[:200]


def test_a_recurrent_layer_after_a_last_step_layer_is_rejected(tmp_path):
    path = tmp_path / "m.recur"
    build_model(path, [{"kind": "embedding", "dim": 4}, {"kind": "gru", "units": 5, "return_sequences": False},
                       {"kind": "gru", "units": 5}, {"kind": "dense", "units": 2}], task="classify")
    p = run_cli("logits", path, "--tokens", "1,2", "--sequence", check=False)
    assert p.returncode != 0 and "return_sequences" in p.stderr, p.stdout[:200]
