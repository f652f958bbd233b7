#!/usr/bin/env python3
"""Recur on Ray Data: batch classification and tagging of a large text collection, and batch generation.

    python examples/ray/pipeline.py prepare  --rows 1000000 --out /tmp/recur-ray
    python examples/ray/pipeline.py classify --data /tmp/recur-ray [--workers 2] [--rows N]
    python examples/ray/pipeline.py generate --data /tmp/recur-ray [--workers 2] [--prompts 5000]
    python examples/ray/pipeline.py all      --data /tmp/recur-ray --rows 100000 --workers 1,2

`prepare` writes the collection as Parquet files: the sentences of data/sentiment (VADER) and data/pos (UD
English EWT, words joined by spaces), repeated to --rows rows of (id, text), and prompts for generation
(the first words of the lines of data/alice29.txt, repeated to --prompts rows of (id, prompt)).

`classify` reads the texts as a Ray Dataset and runs `map_batches` with a callable class that opens
models/sentiment.recur and models/pos.recur once per worker (memory-mapped: workers on one node share the
pages of the files) and calls `Model.classify_batch` and `Model.tag_batch` on each batch; each row gets
`positive` (the sentiment model's probability of the positive class) and `tags` (one universal POS tag
per token, space-separated). `generate` runs `Model.generate_batch` (continuous batching over --slots
streams) with models/alice.recur on each batch of prompts; prompt i is sampled with seed i, so its text
does not depend on how the rows are batched or spread over workers. Results are written as Parquet
(DATA/out/classified, DATA/out/generated). Every output row equals what one process computes with the
single calls (`Model.classify`, `Model.tag`, `Model.generate`): examples/ray/test_pipeline.py checks it.

On a cluster: `ray.init(address=...)` through --address (e.g. --address auto on a node of the cluster, or
ray://HEAD:10001); the data and output folders must then be on storage every node reads (a shared file
system, or s3://... URLs, which Ray Data reads and writes as they are), and every node needs the Recur
library and models (see README.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

MODELS = os.path.join(ROOT, "models")
SENTIMENT = os.path.join(MODELS, "sentiment.recur")
POS = os.path.join(MODELS, "pos.recur")
ALICE = os.path.join(MODELS, "alice.recur")
MAX_TOKENS = 80
TEMPERATURE = 0.8


# ---------------------------------------------------------------------------------------------------
# The collection

def sentences() -> list:
    """The sentences of data/sentiment and data/pos, in a fixed order."""
    out = []
    d = os.path.join(ROOT, "data", "sentiment")
    for name in sorted(os.listdir(d)):
        if name.endswith(".tsv"):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                out += [line.split("\t")[0].strip() for line in f if line.split("\t")[0].strip()]
    d = os.path.join(ROOT, "data", "pos")
    for name in sorted(os.listdir(d)):
        if name.endswith(".upos.txt"):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                out += [" ".join(w.rsplit("/", 1)[0] for w in line.split()) for line in f if line.strip()]
    return out


def prompts() -> list:
    """The first one to four words of each non-empty line of data/alice29.txt that the model can read."""
    import recur
    out = []
    with recur.Model(ALICE) as m, open(os.path.join(ROOT, "data", "alice29.txt"), encoding="utf-8") as f:
        for k, line in enumerate(f):
            words = line.split()
            if not words:
                continue
            p = " ".join(words[:1 + k % 4])
            try:
                m.encode(p)
            except recur.RecurError:
                continue
            out.append(p)
    return out


def prepare(out: str, rows: int, n_prompts: int, files: int = 8) -> None:
    """DATA/texts/*.parquet (id, text) and DATA/prompts/*.parquet (id, prompt)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    for name, pool, column, count in (("texts", sentences(), "text", rows), ("prompts", prompts(), "prompt", n_prompts)):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
        per = -(-count // files)
        for i in range(files):
            ids = list(range(i * per, min(count, (i + 1) * per)))
            if not ids:
                break
            table = pa.table({"id": pa.array(ids, pa.int64()), column: [pool[j % len(pool)] for j in ids]})
            pq.write_table(table, os.path.join(d, f"part-{i:03d}.parquet"))
        print(f"prepare: {count} rows of {column} in {d}")


# ---------------------------------------------------------------------------------------------------
# The workers: callable classes, constructed once per worker (the models are opened there)

class Classify:
    """Sentiment and POS tags of a batch of texts, with the batched calls."""

    def __init__(self, sentiment: str = SENTIMENT, pos: str = POS):
        import recur
        self.sentiment = recur.Model(sentiment)      # memory-mapped
        self.pos = recur.Model(pos)

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        batch["positive"] = self.sentiment.classify_batch(texts)[:, 1]
        batch["tags"] = [" ".join(tag for _, tag in pairs) for pairs in self.pos.tag_batch(texts)]
        return batch


class Generate:
    """The continuation of each prompt of a batch: prompt i sampled with seed i."""

    def __init__(self, model: str = ALICE, slots: int = 32, max_tokens: int = MAX_TOKENS):
        import recur
        self.model = recur.Model(model)
        self.slots, self.max_tokens = slots, max_tokens

    def __call__(self, batch: dict) -> dict:
        ps = [str(p) for p in batch["prompt"]]
        seeds = [int(i) for i in batch["id"]]
        texts = [""] * len(ps)
        for k, piece in self.model.generate_batch(ps, max_tokens=self.max_tokens, temperature=TEMPERATURE,
                                                  seed=seeds, slots=self.slots):
            texts[k] += piece
        batch["text"] = texts
        return batch


# The same results, one call at a time in one process (what the test compares with).
def classify_one(sentiment, pos, text: str) -> tuple:
    return float(sentiment.classify(text)[1]), " ".join(tag for _, tag in pos.tag(text))


def generate_one(model, prompt: str, seed: int, max_tokens: int = MAX_TOKENS) -> str:
    return "".join(model.generate(prompt, max_tokens=max_tokens, temperature=TEMPERATURE, seed=seed))


# ---------------------------------------------------------------------------------------------------
# The pipelines

def init_ray(address, workers: int, temp_dir=None):
    """A local Ray of `workers` + 1 CPUs, or the cluster at `address`; nothing when Ray is running."""
    import ray
    if ray.is_initialized():
        return
    env = {k: os.environ[k] for k in ("RECUR_LIBRARY", "RECUR_THREADS", "PYTHONPATH") if k in os.environ}
    # One core per worker: the workers are the parallelism. (Ray sets OMP_NUM_THREADS=1 in its workers
    # too, which OpenBLAS follows; it is set here explicitly: the whole-sequence calls' sgemm rounds
    # differently with more threads, and a single process compares equal only with the same setting.)
    env.setdefault("RECUR_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    # The workers import the binding from this checkout (on a cluster: installed on every node, or sent
    # with runtime_env={"py_modules": [...]}, see README.md).
    # This folder too: imported as the module `pipeline` (by the test), its classes are sent by reference.
    paths = [os.path.join(ROOT, "bindings", "python"), os.path.dirname(os.path.abspath(__file__))]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    kwargs = dict(runtime_env={"env_vars": env}, include_dashboard=False, log_to_driver=False)
    if temp_dir:
        kwargs["_temp_dir"] = temp_dir
    if address:
        ray.init(address=address, **kwargs)
    else:
        # One CPU per worker, and one for reading and writing the files (else the actors hold every CPU
        # and the read tasks never start).
        ray.init(num_cpus=max(workers, 1) + 1, **kwargs)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False


def run_classify(data: str, out: str, workers: int, batch_size: int = 1024, rows: int = 0,
                 address=None) -> tuple:
    """Classifies and tags DATA/texts into `out` (Parquet); returns (rows, seconds)."""
    import ray
    init_ray(address, workers)
    t0 = time.perf_counter()
    ds = ray.data.read_parquet(os.path.join(data, "texts"))
    if rows:
        ds = ds.limit(rows)
    ds = ds.map_batches(Classify, batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
                        num_cpus=1)
    ds.write_parquet(out)
    elapsed = time.perf_counter() - t0
    return ray.data.read_parquet(out).count(), elapsed


def run_generate(data: str, out: str, workers: int, batch_size: int = 256, slots: int = 32, rows: int = 0,
                 max_tokens: int = MAX_TOKENS, address=None, model: str = ALICE) -> tuple:
    """Generates a continuation of every prompt of DATA/prompts into `out` (Parquet); returns (rows, seconds)."""
    import ray
    init_ray(address, workers)
    t0 = time.perf_counter()
    ds = ray.data.read_parquet(os.path.join(data, "prompts"))
    if rows:
        ds = ds.limit(rows)
    ds = ds.map_batches(Generate, fn_constructor_kwargs={"model": model, "slots": slots, "max_tokens": max_tokens},
                        batch_size=batch_size, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1)
    ds.write_parquet(out)
    elapsed = time.perf_counter() - t0
    return ray.data.read_parquet(out).count(), elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["prepare", "classify", "generate", "all"])
    p.add_argument("--data", "--out", dest="data", default="/tmp/recur-ray", help="the data folder")
    p.add_argument("--rows", type=int, default=0, help="prepare: rows to write (default 1000000); else: "
                   "rows to read (default all)")
    p.add_argument("--prompts", type=int, default=0, help="prepare: prompts to write (default 5000); else: "
                   "prompts to read (default all)")
    p.add_argument("--workers", default="2", help="workers (Ray actors, one CPU each); `all`: a list, e.g. 1,2")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--slots", type=int, default=32, help="streams generated together per worker")
    p.add_argument("--address", help="a Ray cluster's address (ray.init(address=...)); default: a local Ray")
    p.add_argument("--generator", default=ALICE, help="the generator (default models/alice.recur)")
    p.add_argument("--temp-dir", help="a local Ray's temporary folder (default: Ray's, /tmp/ray)")
    a = p.parse_args()
    if a.command == "prepare":
        prepare(a.data, a.rows or 1_000_000, a.prompts or 5000)
        return
    import ray
    table = []
    for w in [int(x) for x in a.workers.split(",")]:
        if a.command in ("classify", "all"):
            out = os.path.join(a.data, "out", "classified" + (f"-{w}" if a.command == "all" else ""))
            init_ray(a.address, w, a.temp_dir)
            n, s = run_classify(a.data, out, w, a.batch_size, a.rows, a.address)
            table.append(("classify + tag", w, n, s))
            print(f"classify + tag: {n} rows with {w} worker(s) in {s:.1f} s: {n / s:,.0f} rows/s -> {out}", flush=True)
        if a.command in ("generate", "all"):
            out = os.path.join(a.data, "out", "generated" + (f"-{w}" if a.command == "all" else ""))
            init_ray(a.address, w, a.temp_dir)
            n, s = run_generate(a.data, out, w, min(a.batch_size, 256), a.slots, a.prompts, address=a.address,
                                model=a.generator)
            table.append(("generate", w, n, s))
            print(f"generate: {n} prompts × {MAX_TOKENS} tokens with {w} worker(s) in {s:.1f} s: "
                  f"{n * MAX_TOKENS / s:,.0f} tokens/s -> {out}", flush=True)
        ray.shutdown()
    print("\n| pipeline | workers | rows | seconds | rows/s |\n|---|---:|---:|---:|---:|")
    for name, w, n, s in table:
        print(f"| {name} | {w} | {n} | {s:.1f} | {n / s:,.0f} |")


if __name__ == "__main__":
    main()
