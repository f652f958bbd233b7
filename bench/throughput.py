#!/usr/bin/env python3
"""Throughput of many streams stepped together: tokens per second on one core for 1, 4, 16 and 64 streams,
GRU and LSTM at hidden 256, 512 and 1024, f32 and int8, in Recur (recur_state_step_batch from C,
bench/c/batch_bench.c), PyTorch (eager f32 and torch.ao.quantization.quantize_dynamic int8, the streams as
the batch dimension, torch.set_num_threads(1)) and ONNX Runtime (the step graph of bench/compare.py with a
batch dimension, f32 and quantize_dynamic int8, one intra-op thread), in one run, on the same weights.

    /tmp/benchenv/bin/python bench/throughput.py [--hidden 256,512,1024] [--cells gru,lstm]
        [--streams 1,4,16,64] [--types f32,int8] [--frameworks recur,torch,ort] [--steps N] [--json FILE]

The models are those of bench/compare.py (embedding 256, vocabulary 96, one recurrent layer, a dense head
to the vocabulary), made by `recur create` and `recur quantize --type int8`; the other frameworks get the
same weights through compare.py's builders (imported from it). One step of a batch is every stream fed one
token, logits out; its time is the median of timed batches after a warm-up, each figure from a fresh
subprocess (so that each framework's one-thread setting holds), and tokens/s = streams / median. Recur's
figure is the library called from C (no Python in the loop); the peers are called from Python, as they are
used. Columns: tokens/s of each framework; Recur ÷ the fastest peer (of the same type); the per-stream
cost at n streams relative to one stream (batch time ÷ n, over the single-stream step time: below 1,
batching pays; relative to the first --streams value when it is not 1). Environment: RECUR (the `recur` command), RECUR_LIBRARY (the C library); by default both come from
`make build SCRATCH=.build-bench`, run when they are missing.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402  (bench/compare.py: the same models in each framework)

ROOT = compare.ROOT
VOCAB = compare.VOCAB


def steps_for(hidden, streams):
    """Timed batches: about the same work per figure (fewer for wide layers and many streams)."""
    base = {256: 2000, 512: 800}.get(hidden, 300) if hidden >= 256 else 3000
    return max(30, base // max(1, streams // 2))


def batch_tokens(n, streams, seed=1):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(n, streams)).astype(np.int64)


def median_batch_us(step, batches):
    for b in batches[:20]:
        step(b)
    ts = []
    for b in batches[20:]:
        t0 = time.perf_counter_ns()
        step(b)
        ts.append(time.perf_counter_ns() - t0)
    return statistics.median(ts) / 1e3


# ---------------------------------------------------------------------------------------------------
# Workers: each prints {"batch_us": ..., "tokens_per_s": ...}.

def work_recur(a):
    env = dict(os.environ, RECUR_THREADS="1")
    out = subprocess.run([a.c_bench, a.model, str(a.streams), str(a.steps)], env=env, check=True,
                         capture_output=True, text=True).stdout
    r = json.loads(out)
    return {"batch_us": r["batch_us_median"], "tokens_per_s": r["tokens_per_s"]}


def work_torch(a):
    import torch
    from torch import nn
    torch.set_num_threads(1)
    w = compare.load_weights(a.model)
    m = compare.torch_model(w, a.cell, a.hidden)
    if a.type == "int8":
        m = torch.ao.quantization.quantize_dynamic(m, {nn.GRU, nn.LSTM, nn.Linear}, dtype=torch.qint8)
    n = a.streams
    zeros = torch.zeros(1, n, a.hidden)
    st = [zeros if a.cell == "gru" else (zeros, zeros.clone())]
    tok = torch.zeros(n, 1, dtype=torch.long)

    def step(b):
        tok[:, 0] = torch.from_numpy(b)
        _, st[0] = m(tok, st[0])

    with torch.inference_mode():
        us = median_batch_us(step, batch_tokens(a.steps + 20, n))
    return {"batch_us": us, "tokens_per_s": n / us * 1e6}


def onnx_batch_graph(w, cell, hidden, path):
    """compare.py's one-token step graph with its first dimension (1) made the batch dimension "B"."""
    import onnx
    compare.onnx_step_graph(w, cell, hidden, path)
    model = onnx.load(path)
    for v in list(model.graph.input) + list(model.graph.output):
        d = v.type.tensor_type.shape.dim[0]
        d.ClearField("dim_value")
        d.dim_param = "B"
    onnx.save(model, path)


def work_ort(a):
    import onnxruntime as ort
    w = compare.load_weights(a.model)
    d = tempfile.mkdtemp(prefix="recur-throughput-ort-")
    path = os.path.join(d, "step.onnx")
    onnx_batch_graph(w, a.cell, a.hidden, path)
    if a.type == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic
        q = os.path.join(d, "step-int8.onnx")
        quantize_dynamic(path, q, weight_type=QuantType.QInt8)
        path = q
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    n = a.streams
    feed = {"tok": np.zeros(n, np.int64), "h": np.zeros((n, a.hidden), np.float32)}
    if a.cell == "lstm":
        feed["c"] = np.zeros((n, a.hidden), np.float32)

    def step(b):
        feed["tok"] = b
        out = sess.run(None, feed)
        feed["h"] = out[1]
        if a.cell == "lstm":
            feed["c"] = out[2]

    us = median_batch_us(step, batch_tokens(a.steps + 20, n))
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    os.rmdir(d)
    return {"batch_us": us, "tokens_per_s": n / us * 1e6}


WORKERS = {"recur": work_recur, "torch": work_torch, "ort": work_ort}
MODULES = {"torch": "torch", "ort": "onnxruntime"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", default="256,512,1024")
    p.add_argument("--cells", default="gru,lstm")
    p.add_argument("--streams", default="1,4,16,64")
    p.add_argument("--types", default="f32,int8")
    p.add_argument("--frameworks", default="recur,torch,ort")
    p.add_argument("--steps", type=int, default=0, help="timed batches per figure (default: by size)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--cell", help=argparse.SUPPRESS)
    p.add_argument("--type", help=argparse.SUPPRESS)
    p.add_argument("--c-bench", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        a.hidden, a.streams = int(a.hidden), int(a.streams)
        print(json.dumps(WORKERS[a.worker](a)))
        return

    recur, lib = compare.build_paths()
    env = dict(os.environ, RECUR_LIBRARY=lib)
    tmp = tempfile.mkdtemp(prefix="recur-throughput-")
    c_bench = os.path.join(tmp, "batch_bench")
    os.symlink(lib, os.path.join(tmp, "librecur.so"))
    subprocess.run(["cc", "-O2", "-I", os.path.join(ROOT, "include"), os.path.join(HERE, "c", "batch_bench.c"),
                    lib, "-Wl,-rpath," + tmp, "-o", c_bench], check=True)
    frameworks = a.frameworks.split(",")
    for f, mod in MODULES.items():
        if f in frameworks and not compare.have(mod):
            print(f"# {f}: {mod} is not installed; skipped", file=sys.stderr)
            frameworks.remove(f)
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo; nproc"], capture_output=True,
                         text=True).stdout.split("\n")
    print(f"# {cpu[0].split(':')[-1].strip()}, {cpu[1]} processors; one thread per framework; tokens/s on one core")
    peers = [f for f in frameworks if f != "recur"]
    print(f"{'cell':5} {'H':>5} {'type':5} {'streams':>7} " + " ".join(f"{f + ' tok/s':>13}" for f in frameworks)
          + f" {'recur/best peer':>16} " + " ".join(f"{f + ' per-stream':>17}" for f in frameworks))
    results = []
    streams = [int(s) for s in a.streams.split(",")]
    for cell in a.cells.split(","):
        for hidden in [int(h) for h in a.hidden.split(",")]:
            base = os.path.join(tmp, f"{cell}{hidden}")
            subprocess.run([recur, "create", "--out", base + ".recur", "--cell", cell, "--hidden", str(hidden),
                            "--embedding", str(compare.EMBED)], check=True, capture_output=True)
            files = {"f32": base + ".recur", "int8": base + "-int8.recur"}
            subprocess.run([recur, "quantize", files["f32"], files["int8"], "--type", "int8"], check=True,
                           capture_output=True)
            for t in a.types.split(","):
                one = {}
                for n in streams:
                    row = {}
                    for fw in frameworks:
                        cmd = [sys.executable, os.path.abspath(__file__), "--worker", fw, "--type", t,
                               "--model", files[t if fw == "recur" else "f32"], "--cell", cell,
                               "--hidden", str(hidden), "--streams", str(n), "--c-bench", c_bench,
                               "--steps", str(a.steps or steps_for(hidden, n))]
                        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
                        if r.returncode != 0:
                            msg = (r.stderr.strip().splitlines() or ["failed"])[-1]
                            print(f"# {fw} {t} {cell} {hidden} x{n}: {msg}", file=sys.stderr)
                            continue
                        res = json.loads(r.stdout.strip().splitlines()[-1])
                        res.update(cell=cell, hidden=hidden, type=t, streams=n, framework=fw)
                        results.append(res)
                        row[fw] = res["tokens_per_s"]
                        if n == streams[0]:
                            one[fw] = res["tokens_per_s"]
                    best = max((row[f] for f in peers if f in row), default=None)
                    ratio = f"{row['recur'] / best:15.2f}×" if best and "recur" in row else f"{'-':>16}"
                    cost = " ".join(f"{one[f] / row[f]:17.2f}" if f in row and f in one else f"{'-':>17}"
                                    for f in frameworks)
                    print(f"{cell:5} {hidden:>5} {t:5} {n:>7} "
                          + " ".join(f"{row[f]:13.0f}" if f in row else f"{'-':>13}" for f in frameworks)
                          + f" {ratio} {cost}", flush=True)
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
