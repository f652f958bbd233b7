"""The high-level binding (recur.Model, State, Sampler): numerics, state handling, errors, resource
release, streaming generation, and agreement of Python, the C example and the `recur` command."""

from __future__ import annotations

import gc
import itertools
import json
import os
import pickle
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import ROOT, run_cli

pytestmark = pytest.mark.usefixtures("library")

import recur  # noqa: E402  (loaded after conftest has put bindings/python on the path)
from recur import RecurError, Status  # noqa: E402

PROMPT = "Alice was beginning to get very tired of sitting by her sister"


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_gru_logits(path, tokens):
    """Logits after `tokens` for a one-layer GRU generator (reset_after, gates r, z, n), computed in
    float64 numpy from the weights as read by recur.format (independent of the library)."""
    from recur import format as rf
    t = {k: v.astype(np.float64) for k, v in rf.read(path).tensors.items()}
    E = t["layer.0.embeddings"]
    W, U, b, rb = t["layer.1.kernel"], t["layer.1.recurrent_kernel"], t["layer.1.bias"], t["layer.1.recurrent_bias"]
    H = U.shape[1]
    h = np.zeros(H)
    for tok in tokens:
        gx = W @ E[tok] + b
        gh = U @ h + rb
        r = sigmoid(gx[:H] + gh[:H])
        z = sigmoid(gx[H:2 * H] + gh[H:2 * H])
        n = np.tanh(gx[2 * H:] + r * gh[2 * H:])
        h = (1 - z) * n + z * h
    return t["layer.2.kernel"] @ h + t["layer.2.bias"]


# --- numerics ---------------------------------------------------------------------------------------

def test_step_matches_an_independent_reference(models):
    with recur.Model(models["gru1"]) as m:
        ids = m.encode(PROMPT)
        s = m.new_state()
        for k, tok in enumerate(ids):
            out = s.step(tok)
            if k in (0, 5, len(ids) - 1):
                ref = reference_gru_logits(models["gru1"], ids[:k + 1])
                assert out.dtype == np.float32 and out.shape == (m.vocab_size,)
                assert np.max(np.abs(out - ref)) < 1e-4


@pytest.mark.parametrize("name", ["gru", "lstm", "rnn"])
def test_feed_equals_stepping(models, name):
    with recur.Model(models[name]) as m:
        ids = m.encode(PROMPT)
        a, b = m.new_state(), m.new_state()
        for tok in ids:
            stepped = a.step(tok)
        fed = b.feed(ids)
        assert np.all(np.isfinite(fed)) and np.max(np.abs(fed)) > 1e-3
        assert np.max(np.abs(stepped - fed)) <= 1e-5
        assert a.position == b.position == len(ids)
        assert np.array_equal(b.output, fed)
        # numpy arrays of any integer dtype are accepted
        c = m.new_state()
        assert np.max(np.abs(c.feed(np.array(ids, dtype=np.int64)) - fed)) == 0


def test_step_returns_a_copy(models):
    with recur.Model(models["gru"]) as m:
        s = m.new_state()
        first = s.step(10)
        kept = first.copy()
        s.step(11)
        assert np.array_equal(first, kept)


def test_step_without_a_copy_reuses_the_states_output(models):
    """step(token, copy=False) returns the state's own array, overwritten by the next step, with the values a
    copying step gives; a step function kept after close() refuses to run."""
    with recur.Model(models["gru"]) as m:
        a, b = m.new_state(), m.new_state()
        tokens = [10, 11, 3, 95, 0]
        outs = [a.step(t, copy=False) for t in tokens]
        assert all(o is outs[0] for o in outs)
        for t in tokens:
            want = b.step(t)
        assert np.array_equal(outs[-1], want)
        step = a.step
        a.close()
        with pytest.raises(RecurError) as e:
            step(3)
        assert "closed" in e.value.message
        with pytest.raises(TypeError):
            b.step(1.5, copy=False)


def test_save_load_and_copy_continue_identically(models):
    with recur.Model(models["lstm"]) as m:
        ids = m.encode(PROMPT)
        s = m.new_state()
        s.feed(ids[:20])
        blob = s.save()
        assert isinstance(blob, bytes) and len(blob) > 4 * m.vocab_size
        fork = s.copy()
        expected = [s.step(t) for t in ids[20:30]]
        # the fork is independent of what s did since
        assert all(np.array_equal(fork.step(t), e) for t, e in zip(ids[20:30], expected))
        s.reset()
        assert s.position == 0 and not s.output.any()
        s.load(blob)
        assert s.position == 20
        assert all(np.array_equal(s.step(t), e) for t, e in zip(ids[20:30], expected))
        # into a state of another Model object of the same file
        with recur.Model(models["lstm"], verify_checksum=False) as again:
            t = again.new_state()
            t.load(bytearray(blob))
            assert np.array_equal(t.step(ids[20]), expected[0])


def test_reset_equals_a_fresh_state(models):
    with recur.Model(models["gru"]) as m:
        s = m.new_state()
        s.feed(m.encode("Alice"))
        s.reset()
        assert np.array_equal(s.step(5), m.new_state().step(5))


# --- vocabulary and description ---------------------------------------------------------------------

def test_encode_decode_and_token_texts(models):
    with recur.Model(models["gru"]) as m:
        ids = m.encode(PROMPT)
        assert all(isinstance(i, int) for i in ids)
        assert [m.token_text(i) for i in ids] == list(PROMPT)
        assert m.decode(ids) == PROMPT
        assert m.decode(np.array(ids)) == PROMPT
        assert m.decode([]) == "" and m.encode("") == []
        assert all(m.token_id(m.token_text(i)) == i for i in range(m.vocab_size))
        with pytest.raises(RecurError) as e:
            m.encode("café")
        assert e.value.code == Status.OUT_OF_RANGE and "U+00E9" in e.value.message and "position 4" in e.value.message
        with pytest.raises(RecurError) as e:
            m.decode([1, m.vocab_size])
        assert e.value.code == Status.OUT_OF_RANGE
        with pytest.raises(RecurError) as e:
            m.token_id("no such piece")
        assert e.value.code == Status.OUT_OF_RANGE
        with pytest.raises(TypeError):
            m.encode(b"bytes")
        with pytest.raises(TypeError):
            m.decode([1.5])
        with pytest.raises(RecurError):
            m.encode("a\0b")


def test_word_vocabulary(word_model):
    with recur.Model(word_model) as m:
        info = m.info()
        assert info["tokenizer"] == "word" and (info["pad_id"], info["bos_id"], info["eos_id"]) == (0, 1, 2)
        assert info["unk_id"] is None
        ids = m.encode("W3 w4, w5!")
        assert [m.token_text(i) for i in ids] == ["w3", "w4", ",", "w5", "!"]
        assert m.decode([1] + ids + [2]) == "w3 w4 , w5 !"
        assert m.token_id("<eos>") == 2


def test_info_agrees_with_the_command(models, cli):
    j = json.loads(run_cli(cli, "info", models["gru"], "--json").stdout)
    with recur.Model(models["gru"]) as m:
        info = m.info()
    assert info["vocab_size"] == j["vocab_size"]
    assert info["state_floats"] == j["state_floats"]
    assert info["parameters"] == j["parameters"]
    assert info["file_bytes"] == j["file_bytes"] == os.path.getsize(models["gru"])
    assert "%d.%d" % info["format_version"] == j["format_version"]
    assert "0x%08x" % info["checksum"] == j["checksum"]
    assert info["layers"] == len(j["layers"]) == 4
    assert info["output_size"] == info["vocab_size"] and info["can_step"] and not info["output_is_probability"]
    assert recur.library_version() == recur.__version__
    # no q8r tensor: written as 1.0, which the library (newest 2.0) reads
    assert info["format_version"] == (1, 0) and recur.format_version()[0] >= info["format_version"][0]
    assert os.path.samefile(recur.library_path(), os.environ["RECUR_LIBRARY"])


# --- errors -----------------------------------------------------------------------------------------

def test_open_errors(models, tmp_path):
    with pytest.raises(RecurError) as e:
        recur.Model(tmp_path / "missing.recur")
    assert e.value.code == Status.IO and "missing.recur" in e.value.message
    with pytest.raises(RecurError) as e:
        recur.Model(tmp_path)
    assert e.value.code == Status.IO
    data = open(models["gru"], "rb").read()
    corrupt = bytearray(data)
    corrupt[-2] ^= 0x10
    with pytest.raises(RecurError) as e:
        recur.Model.from_bytes(bytes(corrupt))
    assert e.value.code == Status.CHECKSUM and "checksum" in e.value.message
    recur.Model.from_bytes(corrupt, verify_checksum=False).close()
    with pytest.raises(RecurError) as e:
        recur.Model.from_bytes(data[:-100])
    assert e.value.code == Status.FORMAT and "truncated" in e.value.message
    with pytest.raises(RecurError) as e:
        recur.Model.from_bytes(b"not a model at all")
    assert e.value.code == Status.FORMAT
    with pytest.raises(RecurError) as e:
        recur.Model.from_bytes(b"")
    assert e.value.code == Status.FORMAT
    future = bytearray(data)
    future[8] = 9
    with pytest.raises(RecurError) as e:
        recur.Model.from_bytes(future)
    assert e.value.code == Status.UNSUPPORTED_VERSION
    with pytest.raises(TypeError):
        recur.Model.from_bytes("a string")
    with pytest.raises(TypeError):
        recur.Model(42)
    with recur.Model.from_bytes(memoryview(data)) as m:
        assert m.vocab_size == 96


def test_token_errors(models):
    with recur.Model(models["gru"]) as m:
        s = m.new_state()
        s.step(1)
        before = s.output
        for bad in (m.vocab_size, -1, 2**40):
            with pytest.raises(RecurError) as e:
                s.step(bad)
            assert e.value.code == Status.OUT_OF_RANGE and "outside the vocabulary" in e.value.message
        with pytest.raises(RecurError) as e:
            s.feed([1, 2, m.vocab_size + 3])
        assert e.value.code == Status.OUT_OF_RANGE
        with pytest.raises(RecurError) as e:
            s.feed([])
        assert e.value.code == Status.INVALID_ARGUMENT
        for bad in (1.0, "a", None, True):
            with pytest.raises(TypeError):
                s.step(bad)
        with pytest.raises(TypeError):
            s.feed(np.array([1.0, 2.0]))
        with pytest.raises(TypeError):
            s.feed("Alice")
        with pytest.raises(ValueError):
            s.feed(np.array([[1, 2], [3, 4]]))
        assert s.position == 1 and np.array_equal(s.output, before)


def test_wrong_state_buffers(models):
    with recur.Model(models["gru"]) as a, recur.Model(models["lstm"]) as b:
        sa, sb = a.new_state(), b.new_state()
        sa.feed(a.encode("Alice"))
        blob = sa.save()
        with pytest.raises(RecurError) as e:
            sb.load(blob)
        assert e.value.code == Status.MISMATCH
        with pytest.raises(RecurError) as e:
            sa.load(b"garbage" * 10)
        assert e.value.code == Status.FORMAT
        with pytest.raises(RecurError) as e:
            sa.load(blob[:-4])
        assert e.value.code == Status.FORMAT
        bent = bytearray(blob)
        bent[-1] ^= 0x01
        with pytest.raises(RecurError) as e:
            sa.load(bent)
        assert e.value.code == Status.CHECKSUM
        with pytest.raises(TypeError):
            sa.load("text")
        assert sa.position == 5
        with pytest.raises(RecurError) as e:
            b.generate("Alice", state=sa)
        assert e.value.code == Status.MISMATCH


def test_sampler(models):
    with recur.Sampler(temperature=0) as greedy:
        logits = np.array([0.5, 2.0, -1.0, 2.0], dtype=np.float32)
        assert greedy.sample(logits) == 1
        assert greedy.sample([0.1, 0.3, 0.2]) == 1
    # temperature 1 draws from softmax: ln(3) vs 0 gives token 1 with probability 3/4
    s = recur.Sampler(temperature=1.0, seed=5)
    draws = [s.sample(np.array([0.0, np.log(3.0)])) for _ in range(4000)]
    assert abs(np.mean(draws) - 0.75) < 0.03
    # same seed, same draws
    a, b = recur.Sampler(seed=9), recur.Sampler(seed=9)
    x = np.linspace(-1, 1, 50)
    assert [a.sample(x) for _ in range(30)] == [b.sample(x) for _ in range(30)]
    with recur.Model(models["gru"]) as m:
        st = m.new_state()
        out = st.feed(m.encode("Alice"))
        assert recur.Sampler(temperature=0).sample_state(st) == int(np.argmax(out))
        assert recur.Sampler(top_k=1, temperature=3).sample(out) == int(np.argmax(out))
    for kwargs in ({"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"top_k": -1}, {"temperature": float("nan")},
                   {"seed": -1}):
        with pytest.raises(RecurError) as e:
            recur.Sampler(**kwargs)
        assert e.value.code == Status.INVALID_ARGUMENT
    with pytest.raises(TypeError):
        recur.Sampler(temperature="hot")
    with pytest.raises(TypeError):
        s.sample(np.array([1, 2, 3]))
    with pytest.raises(ValueError):
        s.sample(np.zeros((2, 2)))
    with pytest.raises(RecurError) as e:
        s.sample([])
    assert e.value.code == Status.INVALID_ARGUMENT
    with pytest.raises(RecurError) as e:
        s.sample([0.0, float("nan")])
    assert e.value.code == Status.NUMERICAL


# --- lifetime ---------------------------------------------------------------------------------------

def test_close_is_idempotent_and_closed_objects_refuse_use(models):
    m = recur.Model(models["gru"])
    s = m.new_state()
    sp = recur.Sampler()
    m.close()
    m.close()
    assert m.closed and "closed" in repr(m)
    with pytest.raises(RecurError) as e:
        m.new_state()
    assert e.value.code == Status.INVALID_ARGUMENT and "closed" in e.value.message
    # the state keeps the model alive in the library
    out = s.step(3)
    assert out.shape == (96,) and np.all(np.isfinite(out))
    s.close()
    s.close()
    with pytest.raises(RecurError):
        s.step(3)
    sp.close()
    sp.close()
    with pytest.raises(RecurError):
        sp.sample([1.0])
    with recur.Model(models["gru"]) as m2:
        with m2.new_state() as s2:
            s2.step(1)
        assert s2.closed
    assert m2.closed


def test_garbage_collection_releases_handles(models):
    # Many objects dropped without close(): __del__ frees them (the process would run out of memory
    # or crash on a double free otherwise).
    for _ in range(200):
        m = recur.Model(models["gru"])
        s = m.new_state()
        s.step(1)
        g = m.generate("Al", max_tokens=3)
        next(g)
        del m, s, g
    gc.collect()


# --- generation -------------------------------------------------------------------------------------

def test_generate_yields_lazily(models):
    with recur.Model(models["gru"]) as m:
        st = m.new_state()
        start = time.monotonic()
        it = m.generate("Alice", max_tokens=2**31 - 1, seed=3, state=st)
        assert st.position == 0  # nothing runs before the first piece is asked for
        first = list(itertools.islice(it, 5))
        assert len(first) == 5 and time.monotonic() - start < 10
        assert st.position == len("Alice") + 5  # no work ahead of the consumer
        it.close()


def test_generate_is_reproducible_and_continues_a_state(models):
    with recur.Model(models["gru"]) as m:
        a = "".join(m.generate("Alice", max_tokens=100, temperature=0.9, seed=7))
        b = "".join(m.generate("Alice", max_tokens=100, temperature=0.9, seed=7))
        c = "".join(m.generate("Alice", max_tokens=100, temperature=0.9, seed=8))
        assert a == b and a != c and len(a) == 100
        greedy = "".join(m.generate("The ", max_tokens=40, temperature=0))
        st = m.new_state()
        out = st.feed(m.encode("The "))
        manual = ""
        for _ in range(40):
            tok = int(np.argmax(out))
            manual += m.token_text(tok)
            out = st.step(tok)
        assert greedy == manual
        with pytest.raises(RecurError) as e:
            m.generate("", max_tokens=5)
        assert e.value.code == Status.INVALID_ARGUMENT
        with pytest.raises(RecurError):
            m.generate("Alice", max_tokens=-1)
        with pytest.raises(RecurError) as e:
            m.generate("Alice", temperature=-2)
        assert e.value.code == Status.INVALID_ARGUMENT
        with pytest.raises(RecurError) as e:
            m.generate("naïve")
        assert e.value.code == Status.OUT_OF_RANGE
        with pytest.raises(TypeError):
            m.generate(42)


def test_threads_share_a_model(models):
    with recur.Model(models["gru"]) as m:
        expected = {seed: "".join(m.generate("Alice", max_tokens=150, seed=seed)) for seed in (1, 2)}
        results = {}

        def work(i):
            results[i] = "".join(m.generate("Alice", max_tokens=150, seed=1 + i % 2))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(results[i] == expected[1 + i % 2] for i in range(4))


CASES = [("gru", "Alice", 150, 0.8, 42), ("gru", "The ", 60, 0.0, 1), ("lstm", "Down the", 120, 1.2, 7),
         ("rnn", "Who", 80, 0.5, 123)]


@pytest.mark.parametrize("name,prompt,tokens,temperature,seed", CASES)
def test_python_c_and_command_give_the_same_text(models, cli, example, name, prompt, tokens, temperature, seed):
    with recur.Model(models[name]) as m:
        python = "".join(m.generate(prompt, max_tokens=tokens, temperature=temperature, seed=seed))
    args = ["--prompt", prompt, "--tokens", tokens, "--temperature", temperature, "--seed", seed, "--no-prompt"]
    command = run_cli(cli, "generate", models[name], *args).stdout
    c = subprocess.run([example, models[name], prompt, str(tokens), str(temperature), str(seed)],
                       capture_output=True, text=True, timeout=60)
    assert c.returncode == 0, c.stderr
    assert command == python + "\n"
    assert c.stdout == python + "\n"
    assert len(python) >= tokens


def test_word_model_generation_agrees_and_stops_at_eos(word_model, cli, example):
    stopped_early = 0
    with recur.Model(word_model) as m:
        for seed in range(1, 9):
            pieces = list(m.generate("w1 w2.", max_tokens=300, temperature=1.0, seed=seed))
            python = "".join(pieces)
            assert all(p.startswith(" ") for p in pieces[1:]) and not pieces[:1] == [" "]
            assert not (pieces and pieces[0].startswith(" "))
            command = run_cli(cli, "generate", word_model, "--prompt", "w1 w2.", "--tokens", 300,
                              "--temperature", "1.0", "--seed", seed, "--no-prompt").stdout
            c = subprocess.run([example, word_model, "w1 w2.", "300", "1.0", str(seed)], capture_output=True,
                               text=True, timeout=60).stdout
            assert command == c == python + "\n"
            stopped_early += len(pieces) < 300
    assert stopped_early > 0  # EOS (1 token in 96) ends most of these streams before 300 tokens


def test_c_example_reports_errors(example, tmp_path):
    p = subprocess.run([example, str(tmp_path / "none.recur"), "Alice", "5"], capture_output=True, text=True)
    assert p.returncode != 0 and "none.recur" in p.stderr and p.stdout == ""


# --- copies and pickles -------------------------------------------------------------------------------

_COPY_SCRIPT = r"""
import copy, json, pickle, sys
import recur
model = recur.Model(sys.argv[1])
state = model.new_state()
state.step(1)
sampler = recur.Sampler(temperature=0.5, seed=3)
out = {}
for name, obj in (("Model", model), ("State", state), ("Sampler", sampler)):
    for how, f in (("copy", copy.copy), ("deepcopy", copy.deepcopy),
                   *((f"pickle{p}", lambda o, p=p: pickle.dumps(o, protocol=p))
                     for p in range(pickle.HIGHEST_PROTOCOL + 1))):
        try:
            twin = f(obj)
        except TypeError as e:
            out[f"{name}.{how}"] = str(e)
            continue
        out[f"{name}.{how}"] = None
        if hasattr(twin, "close"):       # a copy sharing the handle: closing both frees it twice
            twin.close()
# The originals still work, then close normally.
state.step(2)
sampler.sample_state(state)
state.close(); model.close(); sampler.close()
print(json.dumps(out))
"""


def test_copy_and_pickle_are_refused_with_what_to_use_instead(library):
    """copy.copy, copy.deepcopy and pickle of a Model, State or Sampler raise TypeError naming the
    alternative, and leave the original usable (a copy sharing the C handle would free it twice)."""
    model = os.path.join(ROOT, "models", "alice.recur")
    env = dict(os.environ, RECUR_LIBRARY=library, PYTHONPATH=str(ROOT / "bindings" / "python"))
    p = subprocess.run([sys.executable, "-c", _COPY_SCRIPT, model], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, f"exit {p.returncode}: {p.stderr.strip()[-400:]}"
    out = json.loads(p.stdout)
    assert len(out) == 3 * (2 + pickle.HIGHEST_PROTOCOL + 1)
    for key, msg in out.items():
        assert msg is not None, f"{key} did not raise TypeError"
        name, how = key.split(".")
        assert msg.startswith(f"a recur.{name} cannot be {'pickled' if how.startswith('pickle') else 'copied' if how == 'copy' else 'deep-copied'}")
        assert "\n" not in msg
    assert "state.copy()" in out["State.copy"] and "save()" in out["State.pickle2"]
    assert "recur.Model(path)" in out["Model.deepcopy"]
    assert "new recur.Sampler" in out["Sampler.copy"]
