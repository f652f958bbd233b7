"""Beam search for text generation (recur_generate_beam, Model.beam_search, generate(beam=N), and
`recur generate --beam N --best K`), against an exhaustive search computed with the numpy reference."""

from __future__ import annotations

import copy
import itertools
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _format_support import ref, rf, run_cli  # noqa: E402
from test_reference import build_model  # noqa: E402

import recur  # noqa: E402
from recur import RecurError, Status  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
ALICE = ROOT / "models" / "alice.recur"


def tiny_model(path, vocab=4, eos=None, seed=3, cell="gru"):
    """A small generator whose distributions are far from uniform (so that beams are pruned)."""
    build_model(path, [{"kind": "embedding", "dim": 3}, {"kind": cell, "units": 5}, {"kind": "dense", "units": vocab}],
                vocab=vocab, seed=seed, scale=1.3)
    if eos is not None:
        d = rf.read(path)
        meta = dict(d.metadata)
        meta["tokenizer.eos_id"] = eos
        rf.write(path, meta, {k: np.asarray(v, np.float32) for k, v in d.tensors.items()})
    return path


def log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max()
    return x - (m + math.log(np.exp(x - m).sum()))


def exhaustive(path, prompt_ids, max_tokens, eos=None):
    """Every continuation of up to max_tokens tokens (ending at EOS or at max_tokens) with its exact
    log-probability, by stepping the reference model down every branch."""
    model = ref.ReferenceModel(rf.read(path))
    out = model.run(prompt_ids)[-1]
    found = []

    def walk(m, logits, tokens, lp):
        p = log_softmax(logits)
        for t in range(len(p)):
            if t == eos:
                found.append((tokens, lp + p[t], True))
                continue
            toks = tokens + [t]
            if len(toks) == max_tokens:
                found.append((toks, lp + p[t], False))
                continue
            child = copy.deepcopy(m)
            walk(child, child.step(t), toks, lp + p[t])

    walk(model, out, [], 0.0)
    return found


def ranked(found, penalty):
    def score(f):
        toks, lp, eos = f
        n = max(len(toks) + (1 if eos else 0), 1)
        return lp if penalty == 0 else lp / n ** penalty
    return sorted(found, key=score, reverse=True), score


@pytest.mark.parametrize("eos,penalty", [(None, 1.0), (3, 1.0), (3, 0.0), (3, 2.0)])
def test_a_wide_beam_equals_exhaustive_search(tmp_path, library, eos, penalty):
    # Vocabulary 4 and 4 tokens: at most 4^4 = 256 continuations, so a beam of 256 prunes nothing and must
    # find exactly the exhaustive ranking.
    path = tiny_model(tmp_path / "m.recur", eos=eos)
    m = recur.Model(str(path))
    prompt = "AB"
    ids = m.encode(prompt)
    found = exhaustive(path, ids, 4, eos)
    order, score = ranked(found, penalty)
    got = m.beam_search(prompt, beam=256, best=10, max_tokens=4, length_penalty=penalty)
    assert len(got) == 10
    for g, (toks, lp, _) in zip(got, order[:10]):
        assert g.tokens == toks
        assert g.log_probability == pytest.approx(lp, abs=1e-4)
        assert g.score == pytest.approx(score((toks, lp, _)), abs=1e-4)
        assert g.text == m.decode(toks)
    # The exhaustive ranking has no near-ties among its first ten that would make the comparison fragile.
    s = [score(f) for f in order[:11]]
    assert min(a - b for a, b in zip(s, s[1:])) > 1e-5


def test_a_narrow_beam_prunes_and_stays_consistent(tmp_path, library):
    path = tiny_model(tmp_path / "m.recur", eos=3, seed=8)
    m = recur.Model(str(path))
    found = exhaustive(path, m.encode("A"), 6, 3)
    for beam in (1, 2, 3):
        got = m.beam_search("A", beam=beam, best=beam, max_tokens=6)
        # Each reported continuation is a real one with its exact log-probability, ranked by score.
        exact = {tuple(t): lp for t, lp, _ in found}
        for g in got:
            assert g.log_probability == pytest.approx(exact[tuple(g.tokens)], abs=1e-4)
        assert [g.score for g in got] == sorted([g.score for g in got], reverse=True)


def test_beam_1_is_greedy_decoding(library):
    m = recur.Model(str(ALICE))
    for prompt in ("Alice", "The Queen said"):
        greedy = "".join(m.generate(prompt, max_tokens=150, temperature=0))
        assert "".join(m.generate(prompt, max_tokens=150, beam=1)) == greedy
        (c,) = m.beam_search(prompt, beam=1, max_tokens=150)
        assert c.text == greedy


def test_beam_text_is_the_same_from_python_c_and_the_cli(cli, library):
    m = recur.Model(str(ALICE))
    got = m.beam_search("Alice", beam=6, best=3, max_tokens=60)
    assert len(got) == 3 and len({g.text for g in got}) == 3
    # generate(beam=N) streams the best continuation as it becomes certain; the pieces add up to it.
    pieces = list(m.generate("Alice", max_tokens=60, beam=6))
    assert "".join(pieces) == got[0].text
    assert len(pieces) > 1
    out = run_cli("generate", ALICE, "--prompt", "Alice", "--tokens", 60, "--beam", 6, "--no-prompt").stdout
    assert out == got[0].text + "\n"
    out = run_cli("generate", ALICE, "--prompt", "Alice", "--tokens", 60, "--beam", 6, "--best", 3).stdout
    blocks = re.split(r"^--- (\d) of 3: log-probability (\S+), score (\S+), (\d+) tokens \((\w+)\)\n", out, flags=re.M)
    assert blocks[0] == ""
    for k, g in enumerate(got):
        rank, lp, score, count, reason, text = blocks[1 + 6 * k: 7 + 6 * k]
        assert int(rank) == k + 1 and int(count) == len(g.tokens) and reason == "max_tokens"
        assert float(lp) == pytest.approx(g.log_probability, abs=1e-4)
        assert float(score) == pytest.approx(g.score, abs=1e-4)
        assert text == "Alice" + g.text + "\n"


def test_the_state_continues_with_the_best_continuation(library):
    m = recur.Model(str(ALICE))
    st = m.new_state()
    (c,) = m.beam_search("Alice", beam=4, max_tokens=30, state=st)
    ref_state = m.new_state()
    ref_state.feed(m.encode("Alice") + c.tokens)
    assert st.position == ref_state.position
    assert np.array_equal(st.output, ref_state.output)
    # An empty prompt continues the state.
    nxt = m.beam_search("", beam=4, max_tokens=10, state=st)
    assert st.position == ref_state.position + len(nxt[0].tokens)


def test_leaving_the_stream_early_stops_the_search(library):
    m = recur.Model(str(ALICE))
    st = m.new_state()
    it = m.generate("Alice", max_tokens=300, beam=4, state=st)
    first = next(it)
    it.close()
    # The state holds the prompt and at most the pieces delivered before the stop, never the whole search.
    assert len("Alice") < st.position < len("Alice") + 300
    assert first


def test_bad_arguments_are_refused(library, cli):
    m = recur.Model(str(ALICE))
    for kw in ({"beam": 0}, {"beam": 257}, {"beam": 3, "best": 4}, {"beam": 3, "best": 0}):
        with pytest.raises(RecurError) as e:
            m.beam_search("Alice", **kw)
        assert e.value.code == Status.INVALID_ARGUMENT
    with pytest.raises(RecurError):
        m.beam_search("Alice", length_penalty=-1)
    with pytest.raises(RecurError):
        m.beam_search("Alice", length_penalty=float("nan"))
    with pytest.raises(TypeError):
        m.beam_search("Alice", beam=2.0)
    for kw in ({"temperature": 0.5}, {"top_k": 3}, {"top_p": 0.9}, {"seed": 1}):
        with pytest.raises(ValueError, match="applies to sampling"):
            m.generate("Alice", beam=2, **kw)
    with pytest.raises(ValueError, match="beam search"):
        m.generate("Alice", length_penalty=0.5)
    with pytest.raises(RecurError) as e:
        m.beam_search("Alice\u2603", beam=2)
    assert e.value.code == Status.OUT_OF_RANGE
    assert m.beam_search("Alice\u2603", beam=2, max_tokens=5, unknown="skip") == m.beam_search("Alice", beam=2, max_tokens=5)
    sentiment = recur.Model(str(ROOT / "models" / "sentiment.recur"))
    with pytest.raises(RecurError) as e:
        sentiment.beam_search("a film", beam=2)
    assert e.value.code == Status.UNSUPPORTED
    for args in (["--beam", 0], ["--beam", 3, "--best", 4], ["--beam", 2, "--temperature", 0.5],
                 ["--beam", 2, "--stop", "."], ["--best", 2], ["--length-penalty", 1]):
        r = run_cli("generate", ALICE, "--tokens", 5, *args, check=False)
        assert r.returncode != 0 and r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_word_models_with_bos_and_eos(word_model, library, cli):
    # Word pieces are joined with spaces, BOS is fed before the prompt, and EOS ends a hypothesis: the
    # streamed pieces still add up to the best continuation, and the CLI prints the same text.
    m = recur.Model(word_model)
    got = m.beam_search("w3 w7", beam=5, best=5, max_tokens=12)
    assert [g.score for g in got] == sorted((g.score for g in got), reverse=True)
    for g in got:
        assert g.text == m.decode(g.tokens)
        assert 2 not in g.tokens
    assert "".join(m.generate("w3 w7", max_tokens=12, beam=5)) == got[0].text
    out = run_cli("generate", word_model, "--prompt", "w3 w7", "--tokens", 12, "--beam", 5, "--no-prompt").stdout
    assert out == got[0].text + "\n"
    # Scores follow the rule: log p / length, the length counting EOS when it ended the continuation.
    st = m.new_state()
    logits = st.feed([1] + m.encode("w3 w7"))
    lp = 0.0
    for t in got[0].tokens:
        lp += log_softmax(logits)[t]
        logits = st.step(t)
    ended = len(got[0].tokens) < 12
    if ended:
        lp += log_softmax(logits)[2]
    assert got[0].log_probability == pytest.approx(lp, abs=1e-4)
    assert got[0].score == pytest.approx(lp / (len(got[0].tokens) + ended), abs=1e-4)
