"""The ctypes layer (recur._capi) against include/recur.h and the library: declarations, constants, the
status/error protocol, borrowed pointers and the streaming callback."""

from __future__ import annotations

import ctypes as C
import re
import threading

import numpy as np
import pytest

from conftest import ROOT

pytestmark = pytest.mark.usefixtures("library")

HEADER = (ROOT / "include" / "recur.h").read_text()


@pytest.fixture(scope="module")
def capi():
    from recur import _capi
    return _capi


@pytest.fixture(scope="module")
def L(capi):
    return capi.lib()


def open_model(capi, L, path):
    h = capi.model_p()
    assert L.recur_model_open(path.encode(), 0, C.byref(h)) == 0, capi.last_error()
    return h


def test_every_header_function_is_declared_once(capi, L):
    declared = set(re.findall(r"\b(recur_[a-z_]+)\(", HEADER))
    assert declared == set(capi.FUNCTIONS)
    assert len(capi.FUNCTIONS) == len(set(capi.FUNCTIONS))
    for name in capi.FUNCTIONS:
        f = getattr(L, name)
        assert f.argtypes is not None, name
    # Each declaration in _capi.py carries the C declaration as a comment.
    source = (ROOT / "bindings" / "python" / "recur" / "_capi.py").read_text()
    for name in capi.FUNCTIONS:
        assert re.search(rf"#\s.*\b{name}\(", source), f"{name} has no C declaration comment"


def test_constants_match_the_header(capi):
    def macro(name):
        m = re.search(rf"#define {name} (\S+)", HEADER)
        assert m, name
        return m.group(1).strip('"')

    assert int(macro("RECUR_VERSION_MAJOR")) == capi.RECUR_VERSION_MAJOR
    assert int(macro("RECUR_VERSION_MINOR")) == capi.RECUR_VERSION_MINOR
    assert int(macro("RECUR_VERSION_PATCH")) == capi.RECUR_VERSION_PATCH
    assert macro("RECUR_VERSION_STRING") == capi.RECUR_VERSION_STRING
    assert int(macro("RECUR_FORMAT_VERSION_MAJOR")) == capi.RECUR_FORMAT_VERSION_MAJOR
    assert int(macro("RECUR_FORMAT_VERSION_MINOR")) == capi.RECUR_FORMAT_VERSION_MINOR
    enums = dict((k, int(v)) for k, v in re.findall(r"\b(RECUR_[A-Z_]+) = (\d+)", HEADER))
    assert enums.pop("RECUR_OK") == capi.Status.OK
    for k, v in enums.items():
        if k.startswith("RECUR_ERR_"):
            assert capi.Status[k[len("RECUR_ERR_"):]] == v, k
        else:
            assert getattr(capi, k) == v, k
    assert len(capi.Status) == 13


def test_sampler_params_layout_and_defaults(capi, L):
    P = capi.recur_sampler_params
    assert C.sizeof(P) == 24
    assert (P.temperature.offset, P.top_k.offset, P.top_p.offset, P.seed.offset) == (0, 4, 8, 16)
    p = P(temperature=9, top_k=9, top_p=9, seed=9)
    L.recur_sampler_params_init(C.byref(p))
    assert (p.temperature, p.top_k, p.top_p, p.seed) == (1.0, 0, 1.0, 0)


def test_versions(capi, L):
    major, minor, patch = C.c_int(), C.c_int(), C.c_int()
    L.recur_version(C.byref(major), C.byref(minor), C.byref(patch))
    assert (major.value, minor.value, patch.value) == (capi.RECUR_VERSION_MAJOR, capi.RECUR_VERSION_MINOR,
                                                       capi.RECUR_VERSION_PATCH)
    assert L.recur_version_string().decode() == f"{major.value}.{minor.value}.{patch.value}"
    L.recur_format_version(C.byref(major), C.byref(minor))
    assert (major.value, minor.value) == (capi.RECUR_FORMAT_VERSION_MAJOR, capi.RECUR_FORMAT_VERSION_MINOR)
    L.recur_version(None, None, None)
    L.recur_format_version(None, None)


def test_status_strings(capi, L):
    texts = [L.recur_status_string(s).decode() for s in capi.Status]
    assert texts[0] == "ok"
    assert len(set(texts)) == len(texts)
    assert L.recur_status_string(99).decode() == "unknown status code"


def test_errors_carry_the_library_message_per_thread(capi, L, tmp_path):
    h = capi.model_p()
    assert L.recur_model_open(str(tmp_path / "main.recur").encode(), 0, C.byref(h)) == capi.Status.IO
    assert not h
    assert "main.recur" in capi.last_error()
    seen = {}

    def other():
        g = capi.model_p()
        seen["status"] = L.recur_model_open(str(tmp_path / "other.recur").encode(), 0, C.byref(g))
        seen["message"] = capi.last_error()

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen["status"] == capi.Status.IO and "other.recur" in seen["message"]
    assert "main.recur" in capi.last_error()
    with pytest.raises(capi.RecurError) as e:
        capi.check(L.recur_model_open(str(tmp_path / "x.recur").encode(), 0, C.byref(h)))
    assert e.value.code == capi.Status.IO and "x.recur" in e.value.message


def test_null_handles_and_pointers_are_statuses(capi, L, models):
    n = C.c_size_t()
    assert L.recur_model_vocab_size(None, C.byref(n)) == capi.Status.INVALID_ARGUMENT
    m = open_model(capi, L, models["gru"])
    try:
        assert L.recur_model_vocab_size(m, None) == capi.Status.INVALID_ARGUMENT
        assert L.recur_model_open(None, 0, None) == capi.Status.INVALID_ARGUMENT
        assert L.recur_state_new(m, None) == capi.Status.INVALID_ARGUMENT
        assert L.recur_state_step(None, 0, None) == capi.Status.INVALID_ARGUMENT
        assert L.recur_generate(None, None, b"x", 1, capi.recur_piece_callback(), None, None) == 1
        L.recur_model_free(None)
        L.recur_state_free(None)
        L.recur_sampler_free(None)
    finally:
        L.recur_model_free(m)


def test_borrowed_output_pointer_and_copy_agree(capi, L, models):
    m = open_model(capi, L, models["lstm"])
    s1, s2 = capi.state_p(), capi.state_p()
    assert L.recur_state_new(m, C.byref(s1)) == 0 and L.recur_state_new(m, C.byref(s2)) == 0
    L.recur_model_free(m)  # the states keep the model alive
    n = C.c_size_t()
    m2 = open_model(capi, L, models["lstm"])
    assert L.recur_model_output_size(m2, C.byref(n)) == 0
    L.recur_model_free(m2)
    out = (C.c_float * n.value)()
    ptr = C.POINTER(C.c_float)()
    for token in (3, 40, 77):
        assert L.recur_state_step(s1, token, C.byref(ptr)) == 0
        assert L.recur_state_step_copy(s2, token, out, n.value) == 0
        borrowed = np.ctypeslib.as_array(ptr, shape=(n.value,))
        assert np.array_equal(borrowed, np.frombuffer(out, dtype=np.float32))
    assert L.recur_state_step_copy(s2, 1, out, n.value - 1) == capi.Status.BUFFER_TOO_SMALL
    assert L.recur_state_step(s1, n.value, C.byref(ptr)) == capi.Status.OUT_OF_RANGE
    assert "outside the vocabulary" in capi.last_error()
    L.recur_state_free(s1)
    L.recur_state_free(s2)


def test_encode_reports_the_count_when_the_buffer_is_small(capi, L, models):
    m = open_model(capi, L, models["gru"])
    try:
        count = C.c_size_t()
        assert L.recur_model_encode(m, b"Alice", None, 0, C.byref(count)) == capi.Status.BUFFER_TOO_SMALL
        assert count.value == 5
        ids = (C.c_int32 * 5)()
        assert L.recur_model_encode(m, b"Alice", ids, 5, C.byref(count)) == 0
        text = C.POINTER(C.c_char)()
        length = C.c_size_t()
        pieces = []
        for i in ids:
            assert L.recur_model_token_text(m, i, C.byref(text), C.byref(length)) == 0
            pieces.append(C.string_at(text, length.value).decode())
        assert "".join(pieces) == "Alice"
        buf = C.create_string_buffer(5)
        assert L.recur_model_decode(m, ids, 5, buf, 5, C.byref(length)) == capi.Status.BUFFER_TOO_SMALL
        assert length.value == 5
        buf = C.create_string_buffer(6)
        assert L.recur_model_decode(m, ids, 5, buf, 6, C.byref(length)) == 0
        assert buf.value == b"Alice"
    finally:
        L.recur_model_free(m)


def test_generate_callback_streams_and_can_stop(capi, L, models):
    import recur
    m = open_model(capi, L, models["gru"])
    pieces = []

    @capi.recur_piece_callback
    def collect(piece, length, user):
        pieces.append(C.string_at(piece, length).decode())
        return 1 if len(pieces) == 25 else 0

    st, sp = capi.state_p(), capi.sampler_p()
    p = capi.recur_sampler_params()
    L.recur_sampler_params_init(C.byref(p))
    p.temperature, p.seed = 0.8, 42
    assert L.recur_state_new(m, C.byref(st)) == 0
    assert L.recur_sampler_new(C.byref(p), C.byref(sp)) == 0
    generated = C.c_int32(-1)
    assert L.recur_generate(st, sp, b"Alice", 100, collect, None, C.byref(generated)) == 0
    assert generated.value == 25 and len(pieces) == 25
    with recur.Model(models["gru"]) as model:
        expected = "".join(model.generate("Alice", max_tokens=25, temperature=0.8, seed=42))
    assert "".join(pieces) == expected
    assert L.recur_generate(st, sp, b"Alice", -1, collect, None, C.byref(generated)) == 1
    L.recur_sampler_free(sp)
    L.recur_state_free(st)
    L.recur_model_free(m)


def test_mismatched_handle_types_are_refused_by_ctypes(capi, L, models):
    m = open_model(capi, L, models["gru"])
    try:
        with pytest.raises(C.ArgumentError):
            L.recur_state_reset(m)
    finally:
        L.recur_model_free(m)
