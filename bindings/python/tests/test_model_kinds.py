"""Model.task, reading without a mapping, and refusing the wrong kind of model, through the C API."""
import pytest

import recur
from conftest import ROOT

MODELS = ROOT / "models"


@pytest.mark.parametrize("name, task", [("alice.recur", "generate"), ("sentiment.recur", "classify"),
                                        ("pos.recur", "tag"), ("translate-en-es.recur", "seq2seq")])
def test_task_is_reported(library, name, task):
    with recur.Model(MODELS / name) as m:
        assert m.task == task
        assert m.info()["task"] == task


def test_generate_refuses_a_translator(library):
    with recur.Model(MODELS / "translate-en-es.recur") as m:
        with pytest.raises(recur.RecurError, match="not a text generator; run it with translate"):
            list(m.generate("Alice", max_tokens=5))


def test_translate_refuses_empty_text(library):
    with recur.Model(MODELS / "translate-en-es.recur") as m:
        for text in ["", "   "]:
            with pytest.raises(recur.RecurError, match="no tokens"):
                m.translate(text)


def test_model_read_into_memory_matches_the_mapped_one(library, tmp_path):
    path = tmp_path / "alice.recur"
    path.write_bytes((MODELS / "alice.recur").read_bytes())
    with recur.Model(path) as mapped, recur.Model(path, mmap=False) as copied:
        a = mapped.new_state().feed(mapped.encode("Alice was "))
        s = copied.new_state()
        path.write_bytes(b"\xff" * 64)      # the file changes under the unmapped model: no effect
        path.unlink()
        b = s.feed(copied.encode("Alice was "))
        assert (a == b).all()


def test_encode_unknown_policies(library):
    with recur.Model(MODELS / "alice.recur") as m:
        with pytest.raises(recur.RecurError, match=r"character 'ï' \(U\+00EF\) at position 3"):
            m.encode("naïve")
        assert m.encode("naïve", unknown="skip") == m.encode("nave")
        assert m.encode("naïve’s…", unknown="replace") == m.encode("naive's...")
        with pytest.raises(recur.RecurError, match="no look-alike"):
            m.encode("☃", unknown="replace")
        with pytest.raises(ValueError, match="unknown must be one of"):
            m.encode("a", unknown="drop")
