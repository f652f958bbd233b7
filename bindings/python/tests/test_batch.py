"""The batched calls through Python: Model.step_batch (tokens and frames), generate_batch (continuous
batching, driven by the library's callback on a thread of its own), classify_batch and tag_batch, each
equal to the single calls, in every dtype; and their argument checks, made before the library is called."""
import numpy as np
import pytest

import recur
from recur import RecurError, Status
from conftest import ROOT, run_cli

DTYPES = ["f32", "f16", "int8", "q8r", "q8", "q4", "int4"]


@pytest.fixture(scope="module")
def typed(cli, models, tmp_path_factory) -> dict:
    """The two-layer gru and lstm generators in every dtype."""
    d = tmp_path_factory.mktemp("typed")
    out = {}
    for name in ("gru", "lstm"):
        out[(name, "f32")] = models[name]
        for t in DTYPES[1:]:
            path = d / f"{name}-{t}.recur"
            run_cli(cli, "quantize", models[name], path, "--type", t)
            out[(name, t)] = str(path)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_step_batch_equals_single_steps(library, typed, name, dtype):
    with recur.Model(typed[(name, dtype)]) as m:
        rng = np.random.default_rng(1)
        for n in (1, 4, 9):
            batch = [m.new_state() for _ in range(n)]
            single = [m.new_state() for _ in range(n)]
            for k in range(1, n):            # streams at different positions
                warm = list(rng.integers(0, m.vocab_size, size=k))
                batch[k].feed(warm)
                single[k].feed(warm)
            for _ in range(8):
                tokens = rng.integers(0, m.vocab_size, size=n)
                out = m.step_batch(batch, tokens)
                assert out.shape == (n, m.output_size) and out.dtype == np.float32
                for k in range(n):
                    want = single[k].step(int(tokens[k]))
                    assert out[k].tobytes() == want.tobytes()
                    assert batch[k].output.tobytes() == want.tobytes()
            for b, s in zip(batch, single):
                assert b.save() == s.save()


def test_step_batch_checks_before_stepping(library, models):
    with recur.Model(models["gru"]) as m, recur.Model(models["lstm"]) as other:
        s = [m.new_state() for _ in range(3)]
        before = [x.save() for x in s]
        with pytest.raises(RecurError, match="stream 1: states.1. belongs to another model") as e:
            m.step_batch([s[0], other.new_state(), s[2]], [1, 2, 3])
        assert e.value.code == Status.MISMATCH
        with pytest.raises(RecurError, match=r"stream 2: states\[2\] is states\[0\]"):
            m.step_batch([s[0], s[1], s[0]], [1, 2, 3])
        with pytest.raises(RecurError, match="stream 2: token id") as e:
            m.step_batch(s, [1, 2, m.vocab_size])
        assert e.value.code == Status.OUT_OF_RANGE
        with pytest.raises(RecurError, match="at least one stream"):
            m.step_batch([], [])
        with pytest.raises(TypeError, match="stream 1"):
            m.step_batch(s, [1, 2.5, 3])
        with pytest.raises(ValueError, match="2 tokens for 3 states"):
            m.step_batch(s, [1, 2])
        with pytest.raises(TypeError, match="stream 1"):
            m.step_batch([s[0], "state", s[2]], [1, 2, 3])
        closed = m.new_state()
        closed.close()
        with pytest.raises(RecurError, match="closed"):
            m.step_batch([s[0], closed], [1, 2])
        assert [x.save() for x in s] == before
        # The library's own check (past the Python one): the same refusal, the same message.
        L = recur._capi.lib()
        import ctypes as C
        arr = (recur._capi.state_p * 2)(s[0]._handle, s[0]._handle)
        toks = (C.c_int32 * 2)(1, 2)
        out = (C.c_float * (2 * m.output_size))()
        assert L.recur_state_step_batch(m._h(), arr, 2, toks, out, len(out)) == Status.INVALID_ARGUMENT
        assert "stream 1" in recur._capi.last_error()
        assert [x.save() for x in s] == before


def test_step_batch_frames(library, cli, tmp_path):
    path = tmp_path / "regress.recur"
    run_cli(cli, "create", "--out", path, "--task", "regress", "--frame-size", "6", "--cell", "lstm",
            "--hidden", "12", "--outputs", "2", "--normalized", "--seed", "4")
    with recur.Model(path) as m:
        batch = [m.new_state() for _ in range(5)]
        single = [m.new_state() for _ in range(5)]
        rng = np.random.default_rng(2)
        for _ in range(4):
            x = rng.normal(size=(5, 6)).astype(np.float32)
            out = m.step_batch(batch, x)
            for k in range(5):
                assert out[k].tobytes() == single[k].step(x[k]).tobytes()
        x[3, 2] = np.nan
        with pytest.raises(RecurError, match="stream 3") as e:
            m.step_batch(batch, x)
        assert e.value.code == Status.NUMERICAL
        with pytest.raises(ValueError, match="shape"):
            m.step_batch(batch, np.zeros((5, 7), dtype=np.float32))


def collect(pieces, n):
    texts = [""] * n
    order = []
    for k, piece in pieces:
        texts[k] += piece
        order.append(k)
    return texts, order


@pytest.mark.parametrize("dtype", ["f32", "f16", "int8", "q4"])
def test_generate_batch_equals_generate(library, typed, dtype):
    prompts = ["Alice", "The", "a", "Down the", "x", "Why", "She was", "O"]
    max_tokens = [0, 5, 40, 17, 60, 1, 33, 25]
    with recur.Model(typed[("gru", dtype)]) as m:
        for seed in (42, [7 * k for k in range(len(prompts))]):
            seeds = seed if isinstance(seed, list) else [seed] * len(prompts)
            want = ["".join(m.generate(p, max_tokens=t, temperature=0.9, seed=s))
                    for p, t, s in zip(prompts, max_tokens, seeds)]
            for slots in (1, 3, 16):
                texts, order = collect(m.generate_batch(prompts, max_tokens=max_tokens, temperature=0.9,
                                                        seed=seed, slots=slots), len(prompts))
                assert texts == want
                assert (order != sorted(order)) == (slots > 1)    # streams interleave


def test_generate_batch_stops_and_errors(library, models):
    with recur.Model(models["gru"]) as m:
        want = ["".join(m.generate(p, max_tokens=50, temperature=0, seed=1)) for p in ("ab", "cd", "ef")]
        texts, _ = collect(m.generate_batch(["ab", "cd", "ef"], max_tokens=50, temperature=0, seed=1,
                                            stop=["e"], slots=2), 3)
        assert texts == [w.split("e")[0] for w in want]
        # Leaving early stops the library's generation (and its thread) cleanly.
        g = m.generate_batch(["ab"] * 40, max_tokens=200, slots=8)
        first = [next(g) for _ in range(5)]
        g.close()
        assert len(first) == 5
        assert list(m.generate_batch([], max_tokens=3)) == []
        with pytest.raises(RecurError, match="max_tokens.1."):
            m.generate_batch(["a", "b"], max_tokens=[3, -1])
        with pytest.raises(ValueError, match="3 values for 2 prompts"):
            m.generate_batch(["a", "b"], seed=[1, 2, 3])
        with pytest.raises(RecurError, match="prompt 1: temperature"):
            m.generate_batch(["a", "b"], temperature=[1, -1])
        with pytest.raises(RecurError, match="slots"):
            m.generate_batch(["a"], slots=0)
        with pytest.raises(TypeError, match="prompts.1."):
            m.generate_batch(["a", 3])
        # An error found by the library (a character outside the vocabulary) is raised by the iterator.
        with pytest.raises(RecurError, match="prompt 1") as e:
            list(m.generate_batch(["a", "\u2603"], max_tokens=3))
        assert e.value.code == Status.OUT_OF_RANGE


def test_classify_and_tag_batch_equal_single_calls(library, cli, tmp_path):
    paths = {}
    for task, cell in (("classify", "lstm"), ("tag", "gru")):
        paths[task] = tmp_path / f"{task}.recur"
        run_cli(cli, "create", "--task", task, "--out", paths[task], "--cell", cell, "--hidden", "12",
                "--embedding", "6", "--seed", "5")
    texts = ["a cat", "the dog sat on the mat", "x", "hello there, friend"]
    with recur.Model(paths["classify"]) as c:
        got = c.classify_batch(texts)
        assert got.shape == (4, len(c.classify("a")))
        for k, t in enumerate(texts):
            assert got[k].tobytes() == c.classify(t).tobytes()
        assert c.classify_batch([]).shape[0] == 0
        with pytest.raises(RecurError, match="text 1"):
            c.classify_batch(["a", ""])
    with recur.Model(paths["tag"]) as t:
        assert t.tag_batch(texts) == [t.tag(x) for x in texts]
        assert t.tag_batch([]) == []
