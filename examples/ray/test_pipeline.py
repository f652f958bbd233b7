"""The Ray pipelines of pipeline.py in local mode on a small slice: every output row equals what one process
computes with the single calls (Model.classify, Model.tag, Model.generate).

    scripts/setup.sh --ray        # .venv-ray: numpy, pytest, pyarrow and ray[data]
    RECUR_LIBRARY=.build/release/libRecurC.so .venv-ray/bin/python -m pytest examples/ray -q -rs

scripts/test.sh runs it (stage "Ray pipeline"). Without Ray (it could not be installed) the test is skipped
with the reason.
"""
import os
import shutil
import sys
import tempfile

# The single-process reference runs as the workers do: one thread for Recur and for OpenBLAS, whose sgemm
# (the whole-sequence calls' input projections) rounds differently with more threads. Set before the
# library is loaded.
os.environ["RECUR_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import ray  # noqa: F401
    import pyarrow.parquet as pq
    missing = None
except Exception as e:          # pragma: no cover - the reason is printed by pytest -rs
    missing = f"Ray Data is not installed ({e}); scripts/setup.sh --ray installs it"

pytestmark = pytest.mark.skipif(missing is not None, reason=missing or "")

import pipeline  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    # Ray's sockets live in its temporary folder, whose path must stay short; it is removed afterwards.
    temp = tempfile.mkdtemp(prefix="ray-")
    pipeline.init_ray(None, 2, temp_dir=temp)
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def rows(path, *columns):
    t = pq.read_table(path).to_pydict()
    order = np.argsort(t["id"])
    return [tuple(t[c][i] for c in ("id",) + columns) for i in order]


def test_classify_and_tag_equal_single_calls(local_ray, tmp_path):
    import recur
    pipeline.prepare(str(tmp_path), rows=700, n_prompts=1, files=3)
    out = str(tmp_path / "classified")
    n, _ = pipeline.run_classify(str(tmp_path), out, workers=2, batch_size=128)
    assert n == 700
    got = rows(out, "text", "positive", "tags")
    assert [r[0] for r in got] == list(range(700))
    with recur.Model(pipeline.SENTIMENT) as s, recur.Model(pipeline.POS) as p:
        for id_, text, positive, tags in got:
            want_p, want_tags = pipeline.classify_one(s, p, text)
            assert np.float32(positive) == np.float32(want_p), (id_, text)
            assert tags == want_tags, (id_, text)


def test_generate_equals_single_calls(local_ray, tmp_path):
    import recur
    pipeline.prepare(str(tmp_path), rows=1, n_prompts=40, files=2)
    out = str(tmp_path / "generated")
    n, _ = pipeline.run_generate(str(tmp_path), out, workers=2, batch_size=8, slots=3, max_tokens=30)
    assert n == 40
    got = rows(out, "prompt", "text")
    with recur.Model(pipeline.ALICE) as m:
        for id_, prompt, text in got:
            assert text == pipeline.generate_one(m, prompt, id_, max_tokens=30), (id_, prompt)
            assert len(text) == 30
