"""State.step through the package's C module (recur._step, bindings/python/recur/_step.c) against the
ctypes closure it replaces: the same outputs bit for bit, the same errors with the same messages, the same
handling of copy=, closing, and threads. scripts/test.sh and `make test-python` build the module and set
RECUR_STEP_MODULE=required, so there a missing module fails instead of skipping."""
import array
import os
import threading

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.usefixtures("library")

import recur  # noqa: E402
from recur import RecurError, Status  # noqa: E402
from recur import model as rmodel  # noqa: E402


needs_module = pytest.mark.skipif(rmodel._step is None, reason="recur._step is not built")


@pytest.fixture(scope="module")
def step_models(cli, tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("step")
    specs = {
        "gru": ["--cell", "gru", "--layers", "2", "--hidden", "40", "--embedding", "12", "--seed", "21"],
        "lstm-int8": ["--cell", "lstm", "--hidden", "32", "--embedding", "8", "--seed", "22"],
        "frames-gru": ["--task", "regress", "--frame-size", "12", "--cell", "gru", "--hidden", "16", "--outputs", "3",
                       "--normalized", "--seed", "23"],
        "frames-lstm": ["--task", "tag", "--frame-size", "7", "--cell", "lstm", "--hidden", "10", "--seed", "24"],
        "big": ["--cell", "gru", "--hidden", "768", "--embedding", "64", "--seed", "25"],
    }
    out = {}
    for name, args in specs.items():
        path = d / f"{name}.recur"
        run_cli(cli, "create", "--out", path, *args)
        if name.endswith("int8"):
            q = d / f"{name}-q.recur"
            run_cli(cli, "quantize", path, q, "--type", "int8")
            path = q
        out[name] = str(path)
    return out


def test_the_module_is_built(step_models):
    if rmodel._step is None:
        if os.environ.get("RECUR_STEP_MODULE") == "required":
            pytest.fail("recur._step is not built: run `python setup.py build_ext --inplace` in bindings/python")
        pytest.skip("recur._step is not built (State.step runs through ctypes)")
    assert rmodel._step.__name__ == "recur._step"
    with recur.Model(step_models["gru"]) as m:
        assert type(m.new_state().step) is rmodel._step.Stepper


def both(model):
    """Two fresh states of one model: one stepping through recur._step, one through the ctypes closure."""
    a, b = model.new_state(), model.new_state()
    assert type(a.step) is rmodel._step.Stepper
    return a.step, b._python_step(), (a, b)


def outcome(step, x, **kw):
    try:
        return ("ok", step(x, **kw).tobytes())
    except Exception as e:  # noqa: BLE001  (the comparison is of whatever each raises)
        return (type(e).__name__, getattr(e, "code", None), str(e))


@needs_module
@pytest.mark.parametrize("name", ["gru", "lstm-int8"])
def test_token_steps_equal_the_ctypes_closure_bit_for_bit(step_models, name):
    with recur.Model(step_models[name]) as m:
        fast, slow, keep = both(m)
        V = m.vocab_size
        rng = np.random.default_rng(1)
        tokens = [int(t) for t in rng.integers(0, V, 300)] + [np.int64(3), np.int32(V - 1), np.uint8(0), V - 1, 0]
        for i, t in enumerate(tokens):
            got, want = fast(t, copy=i % 2 == 0), slow(t, copy=i % 2 == 0)
            assert got.dtype == np.float32 and got.shape == (m.output_size,)
            assert got.tobytes() == want.tobytes()
        # copy=False gives the state's own array every time; a copy is a new array each time.
        assert fast(5, False) is fast(6, copy=False)
        assert fast(5) is not fast(5)


@needs_module
@pytest.mark.parametrize("name", ["frames-gru", "frames-lstm"])
def test_frame_steps_equal_the_ctypes_closure_bit_for_bit(step_models, name):
    with recur.Model(step_models[name]) as m:
        fast, slow, keep = both(m)
        F = m.frame_size
        rng = np.random.default_rng(2)
        frames = rng.normal(size=(40, F)).astype(np.float32)
        inputs = list(frames)                                                 # rows: contiguous float32
        inputs += [frames[1].astype(np.float64), frames[2].tolist(), array.array("f", frames[3].tolist()),
                   memoryview(frames[4].copy()), frames[5].astype(np.float16),
                   rng.normal(size=(F, 2)).astype(np.float32)[:, 0],               # strided view
                   frames[7].astype(">f4")]                                       # other byte order
        # A float32 frame starting at an odd address (through the Stepper's own buffer).
        buf = np.zeros(F * 4 + 1, dtype=np.uint8)
        shifted = buf[1:].view(np.float32)
        shifted[:] = frames[8]
        assert not shifted.flags.aligned
        inputs.append(shifted)
        for i, x in enumerate(inputs):
            got, want = fast(x, copy=i % 3 != 0), slow(x, copy=i % 3 != 0)
            assert got.tobytes() == want.tobytes(), i


@needs_module
@pytest.mark.parametrize("name", ["lstm-int8", "frames-gru"])
def test_a_copy_nobody_holds_is_reused_and_a_held_one_never_changes(step_models, name):
    """step(x) may hand back the array of the previous step when nothing else holds it (saving an allocation);
    an array still referenced in any way — a name, a view, a memoryview, a weak reference — keeps its values,
    and every array returned is a fresh-looking writable float32 vector of the output size."""
    import weakref
    with recur.Model(step_models[name]) as m:
        fast, slow, keep = both(m)
        rng = np.random.default_rng(3)
        xs = ([int(t) for t in rng.integers(0, m.vocab_size, 60)] if not m.frame_size
              else list(rng.normal(size=(60, m.frame_size)).astype(np.float32)))
        n, held = m.output_size, []
        for i, x in enumerate(xs):
            want = slow(x)
            if i % 7 == 0:                       # dropped at once: the next step may reuse it
                got = fast(x).tobytes()
                assert got == want.tobytes(), i
                continue
            r = fast(x)
            assert r.tobytes() == want.tobytes(), i
            assert r.dtype == np.float32 and r.shape == (n,) and r.flags.writeable and r.flags.owndata, i
            kind = i % 7
            if kind == 1:
                held.append((r, want.copy()))                                   # a name
            elif kind == 2:
                held.append((r[1:], want[1:].copy()))                           # a view
            elif kind == 3:
                held.append((memoryview(r), want.copy()))                       # a buffer export
            elif kind == 4:
                w, v = weakref.ref(r), want.copy()
                del r
                fast(x)                                                         # (not into the weakly held one)
                assert w() is None or w().tobytes() == v.tobytes(), i
                slow(x)
            else:                                                               # changed, then dropped
                if kind == 5:
                    r.flags.writeable = False
                else:
                    r.shape = (n, 1)
                del r
                again = fast(x)
                slow(x)
                assert again.shape == (n,) and again.flags.writeable, i
            r = None
        for got, want in held:
            assert np.asarray(got).tobytes() == want.tobytes()
        # Dropping each copy at once, the same array comes back (no allocation per step); holding it, never.
        a = id(fast(xs[0]))
        assert all(id(fast(x)) == a for x in xs[:5])
        first = fast(xs[0])
        assert fast(xs[1]) is not first


@needs_module
def test_bad_tokens_raise_what_the_closure_raises_and_change_nothing(step_models):
    with recur.Model(step_models["gru"]) as m:
        fast, slow, (a, b) = both(m)
        V = m.vocab_size
        fast(4), slow(4)
        before = a.save()
        for bad in [-1, V, 2 ** 40, -2 ** 70, 2 ** 70, 1.5, True, np.bool_(False), "a", None, [1], np.int64(-3),
                    np.float32(2.0)]:
            got, want = outcome(fast, bad), outcome(slow, bad)
            assert got == want and got[0] != "ok", bad
        assert a.save() == before
        assert outcome(fast, 4) == outcome(slow, 4)


@needs_module
@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_bad_frames_raise_what_the_closure_raises_and_change_nothing(step_models):
    with recur.Model(step_models["frames-gru"]) as m:
        fast, slow, (a, b) = both(m)
        F = m.frame_size
        ok = np.ones(F, dtype=np.float32)
        fast(ok), slow(ok)
        before = a.save()
        nan = ok.copy()
        nan[3] = np.nan
        inf = ok.copy()
        inf[0] = np.inf
        for bad in [np.ones(F - 1, np.float32), np.ones(F + 1, np.float32), np.ones((1, F), np.float32),
                    np.ones(0, np.float32), nan, inf, [1.0] * (F - 1), "frame", None, 3, np.ones(F, bool),
                    np.array(["a"] * F), bytes(F * 4), np.full(F, 1e39)]:
            got, want = outcome(fast, bad), outcome(slow, bad)
            assert got == want and got[0] != "ok", bad
        assert outcome(fast, nan)[1] == Status.NUMERICAL
        assert a.save() == before


@needs_module
def test_arguments_are_checked_like_a_python_function(step_models):
    with recur.Model(step_models["gru"]) as m:
        s = m.new_state()
        with pytest.raises(TypeError):
            s.step()
        with pytest.raises(TypeError):
            s.step(1, True, 3)
        with pytest.raises(TypeError):
            s.step(1, cpy=False)
        with pytest.raises(TypeError):
            s.step(1, True, copy=False)
        with pytest.raises(TypeError):
            s.step(token=1)

        class Falsy:
            def __bool__(self):
                raise ValueError("no truth")
        with pytest.raises(ValueError):
            s.step(1, Falsy())
        assert s.step(1, copy=0) is s.step(2, copy=[])
        # State.step (the method, through the class) is the same call.
        assert recur.State.step(s, 3).tobytes() == s.output.tobytes()


@needs_module
def test_closing_frees_the_state_once_and_a_kept_step_refuses(step_models):
    with recur.Model(step_models["frames-lstm"]) as m:
        s = m.new_state()
        step = s.step
        step(np.zeros(m.frame_size, np.float32))
        s.close()
        assert s.closed and step.closed
        for x in [np.zeros(m.frame_size, np.float32), "not even a frame"]:
            with pytest.raises(RecurError) as e:
                step(x)
            assert e.value.code == Status.INVALID_ARGUMENT and "closed" in e.value.message
        s.close()
        step.close()
        with pytest.raises(RecurError):
            s.position


@needs_module
def test_threads_step_their_own_states_at_once(step_models):
    """Two threads stepping two states of one model (the lock released during each step) give what one
    thread stepping them in turn gives."""
    with recur.Model(step_models["big"]) as m:
        tokens = [int(t) for t in np.random.default_rng(3).integers(0, m.vocab_size, 150)]
        want = []
        for _ in range(2):
            s = m.new_state()
            for t in tokens:
                out = s.step(t)
            want.append(out.tobytes())
        got = [None, None]
        states = [m.new_state(), m.new_state()]

        def work(i):
            for t in tokens:
                out = states[i].step(t, copy=False)
            got[i] = out.tobytes()
        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == want


@needs_module
def test_one_state_stepped_from_two_threads_is_refused_not_corrupted(step_models):
    """While one thread is inside a step of a state (the lock released), another thread's step of the same
    state raises RecurError naming the threads, and closing it from there frees it after that step."""
    with recur.Model(step_models["big"]) as m:
        s = m.new_state()
        errors, done = [], threading.Event()

        def hammer():
            while not done.is_set():
                try:
                    s.step(7, copy=False)
                except RecurError as e:
                    errors.append(e)
                    if "closed" in e.message:
                        return
        t = threading.Thread(target=hammer)
        t.start()
        refused = 0
        for _ in range(400):
            try:
                s.step(3, copy=False)
            except RecurError as e:
                assert e.code == Status.INVALID_ARGUMENT and "another thread" in e.message
                refused += 1
        s.close()                         # possibly while the other thread is inside a step
        t.join(timeout=60)
        done.set()
        assert not t.is_alive()
        assert refused + sum("another thread" in e.message for e in errors) > 0
        assert errors and "closed" in errors[-1].message
