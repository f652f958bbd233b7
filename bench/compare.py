#!/usr/bin/env python3
"""Step latency and prefill throughput of the same random-weight GRU and LSTM models in Recur and, when
installed, PyTorch (eager f32, quantize_dynamic int8), ONNX Runtime (f32, dynamic int8, 4-bit
MatMulNBits) and TensorFlow Lite (f32, dynamic-range int8), single- and two-threaded, in one run.

    .venv/bin/python bench/compare.py [--hidden 100,256,512,1024] [--cells gru,lstm] [--threads 1,2] [--quick]
    .venv/bin/python bench/compare.py --frames 12,40 [--hidden 64,128,256,512] ...

Recur is measured through its Python binding (bindings/python) and from C (bench/c/step_bench.c linked
with the library through include/recur.h). Every figure comes from a fresh subprocess so that each
framework's thread setting holds. Models: embedding 256, vocabulary 96 (printable ASCII and newline),
written by `recur create` and quantized by `recur quantize --type int8|int4` (q8ri, q4i); the other frameworks get the same weights.
A step is one token in, logits out (embedding, input projection, recurrence, output layer): the median of
single steps, robust to other processes. Prefill is a 1000-token prompt, shown per second of process CPU
time (on a busy machine wall time mostly measures the others; JSON also has wall time); frameworks without
a sequence entry point are timed as a loop of steps, marked "loop". Results: a table on stdout, and JSON
with --json FILE.

With --frames F1,F2,... the models read frames instead of tokens (speech features, sensor axes): frames of F
floats -> the recurrent layer -> Dense(4), written by `recur create --task regress --frame-size F --outputs 4`;
a step is one frame in, 4 values out, and prefill a sequence of 1000 frames. There is no input table for
frames: every step multiplies the input kernel too.

Environment: RECUR (the `recur` command), RECUR_LIBRARY (the C library); by default both come from
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBED, VOCAB, PROMPT = 256, 96, 1000


# ---------------------------------------------------------------------------------------------------
# Weights: read back from the .recur file so every framework runs exactly the same model.

def load_weights(path):
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    from recur import format as rf
    data = rf.read(path)
    return {name: np.asarray(arr, dtype=np.float32) for name, arr in data.tensors.items()}


def step_bytes(path, frame):
    """The bytes one step reads: every tensor of the file, but for a token model the embedding table and the
    first recurrent layer's input kernel, which the input table replaces (one row of it, 4·G bytes)."""
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    from recur import format as rf
    info = rf.read(path).info
    total = sum(t.nbytes for t in info.values())
    if not frame:
        total -= info["layer.0.embeddings"].nbytes + info["layer.1.kernel"].nbytes
        total += 4 * info["layer.1.kernel"].shape[0]
    return total


class Bound:
    """This machine's single-core read bandwidth at a working-set size (bench/c/bandwidth.c, run on the
    cores this script may use: pin it with taskset), and the time a step that reads B bytes cannot beat."""

    def __init__(self, exe):
        self.exe, self.seen = exe, {}

    def gbps(self, n):
        if n not in self.seen:
            out = subprocess.run([self.exe, str(n)], check=True, capture_output=True, text=True).stdout
            self.seen[n] = json.loads(out)["gb_per_s"]
        return self.seen[n]

    def us(self, n):
        return n / (self.gbps(n) * 1e3)


def steps_for(hidden):
    return 3000 if hidden <= 256 else (1000 if hidden <= 512 else 400)


FRAME_OUT = 4   # outputs of the frame models' Dense head


def tokens(n, seed=1):
    return np.random.default_rng(seed).integers(0, VOCAB, size=n).astype(np.int64)


def inputs(a, n, seed=1):
    """n step inputs: token ids, or frames of a.frame floats (float32 rows)."""
    if a.frame:
        return np.random.default_rng(seed).uniform(-1, 1, size=(n, a.frame)).astype(np.float32)
    return tokens(n, seed)


def names(a):
    """The tensor prefixes of the recurrent and the dense layer, and the output width."""
    return ("layer.0.", "layer.1.", FRAME_OUT) if a.frame else ("layer.1.", "layer.2.", VOCAB)


def time_steps(step, n, a=None):
    if a is not None and a.frame:
        xs = inputs(a, n + 50)
        for x in xs[:50]:
            step(x)
        ts = []
        for x in xs[50:]:
            t0 = time.perf_counter_ns()
            step(x)
            ts.append(time.perf_counter_ns() - t0)
        return statistics.median(ts) / 1e3
    toks = tokens(n + 50)
    for t in toks[:50]:
        step(int(t))
    ts = []
    for t in toks[50:]:
        t0 = time.perf_counter_ns()
        step(int(t))
        ts.append(time.perf_counter_ns() - t0)
    return statistics.median(ts) / 1e3


def best_of(n, setup, run):
    """Best wall and best process-CPU time of n runs of run() (setup() before each, not timed)."""
    wall = cpu = 1e9
    for _ in range(n):
        setup()
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, max(cpu, 1e-9)


# ---------------------------------------------------------------------------------------------------
# Workers: each prints one JSON object {"step_us": ..., "prefill_tps": ..., "prefill_kind": ...}.

def work_recur_python(a):
    os.environ["RECUR_THREADS"] = str(a.threads)
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    import recur
    m = recur.Model(a.model)
    s = m.new_state()
    step_us = time_steps(s.step, a.steps, a)
    prompt = inputs(a, PROMPT, 2)
    wall, cpu = best_of(5, s.reset, lambda: s.feed(prompt, copy=False))
    return {"step_us": step_us, "prefill_tps": PROMPT / wall, "prefill_tps_cpu": PROMPT / cpu, "prefill_kind": "prefill"}


def work_recur_c(a):
    exe = a.c_bench
    env = dict(os.environ, RECUR_THREADS=str(a.threads))
    out = subprocess.run([exe, a.model, str(max(a.steps, 2000)), str(PROMPT)], env=env, check=True,
                         capture_output=True, text=True).stdout
    r = json.loads(out)
    return {"step_us": r["step_us_median"], "prefill_tps": r["prefill_tokens_per_s"],
            "prefill_tps_cpu": r["prefill_tokens_per_cpu_s"], "prefill_kind": "prefill"}


def torch_model(w, cell, hidden):
    import torch
    from torch import nn

    frame = w.get("frame", 0)
    r, d, out = ("layer.0.", "layer.1.", FRAME_OUT) if frame else ("layer.1.", "layer.2.", VOCAB)

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = None if frame else nn.Embedding(VOCAB, EMBED)
            self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(frame or EMBED, hidden, batch_first=True)
            self.head = nn.Linear(hidden, out)

        def forward(self, x, state):
            y, state = self.rnn(x if self.emb is None else self.emb(x), state)
            return self.head(y[:, -1]), state

    m = Step().eval()
    with torch.no_grad():
        if not frame:
            m.emb.weight.copy_(torch.from_numpy(w["layer.0.embeddings"]))
        m.rnn.weight_ih_l0.copy_(torch.from_numpy(w[r + "kernel"]))
        m.rnn.weight_hh_l0.copy_(torch.from_numpy(w[r + "recurrent_kernel"]))
        m.rnn.bias_ih_l0.copy_(torch.from_numpy(w[r + "bias"]))
        if cell == "gru":
            m.rnn.bias_hh_l0.copy_(torch.from_numpy(w[r + "recurrent_bias"]))
        else:
            m.rnn.bias_hh_l0.zero_()
        m.head.weight.copy_(torch.from_numpy(w[d + "kernel"]))
        m.head.bias.copy_(torch.from_numpy(w[d + "bias"]))
    return m


def work_torch(a):
    import torch
    from torch import nn
    torch.set_num_threads(a.threads)
    w = load_weights(a.model)
    w["frame"] = a.frame
    m = torch_model(w, a.cell, a.hidden)
    if a.variant == "int8":
        m = torch.ao.quantization.quantize_dynamic(m, {nn.GRU, nn.LSTM, nn.Linear}, dtype=torch.qint8)
    zeros = torch.zeros(1, 1, a.hidden)
    st = [zeros if a.cell == "gru" else (zeros, zeros.clone())]
    tok = torch.zeros(1, 1, dtype=torch.long)

    def step(t):
        if a.frame:
            _, st[0] = m(torch.from_numpy(t).view(1, 1, -1), st[0])
            return
        tok[0, 0] = t
        _, st[0] = m(tok, st[0])

    with torch.inference_mode():
        step_us = time_steps(step, a.steps, a)
        prompt = torch.from_numpy(inputs(a, PROMPT, 2))
        prompt = prompt.view(1, PROMPT, -1) if a.frame else prompt.view(1, -1)
        s0 = zeros if a.cell == "gru" else (zeros, zeros.clone())
        wall, cpu = best_of(5, lambda: None, lambda: m(prompt, s0))
    return {"step_us": step_us, "prefill_tps": PROMPT / wall, "prefill_tps_cpu": PROMPT / cpu, "prefill_kind": "prefill"}


def onnx_step_graph(w, cell, hidden, path, frame=0):
    """A one-token step as plain ONNX ops (Gather, MatMul, Add, Sigmoid, Tanh, ...), so that ORT's
    int8 and 4-bit quantizers (which rewrite MatMul) apply to every weight matrix."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    H = hidden
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))

    r, d, out = ("layer.0.", "layer.1.", FRAME_OUT) if frame else ("layer.1.", "layer.2.", VOCAB)
    const("Wt", w[r + "kernel"].T)
    const("Ut", w[r + "recurrent_kernel"].T)
    const("b", w[r + "bias"])
    const("Vt", w[d + "kernel"].T)
    const("hb", w[d + "bias"])
    n = nodes.append
    if frame:
        first = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, frame])
    else:
        const("E", w["layer.0.embeddings"])
        n(helper.make_node("Gather", ["E", "tok"], ["x"], axis=0))       # [1, E]
        first = helper.make_tensor_value_info("tok", TensorProto.INT64, [1])
    n(helper.make_node("MatMul", ["x", "Wt"], ["gx0"]))
    n(helper.make_node("Add", ["gx0", "b"], ["gx"]))
    n(helper.make_node("MatMul", ["h", "Ut"], ["gh0"]))
    inputs = [first, helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, H])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, out]),
               helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, H])]
    inits.append(numpy_helper.from_array(np.array([H] * (3 if cell == "gru" else 4), dtype=np.int64), "split"))
    if cell == "gru":
        const("bh", w[r + "recurrent_bias"])
        n(helper.make_node("Add", ["gh0", "bh"], ["gh"]))
        n(helper.make_node("Split", ["gx", "split"], ["xr", "xz", "xn"], axis=1))
        n(helper.make_node("Split", ["gh", "split"], ["hr", "hz", "hn"], axis=1))
        n(helper.make_node("Add", ["xr", "hr"], ["r0"])); n(helper.make_node("Sigmoid", ["r0"], ["r"]))
        n(helper.make_node("Add", ["xz", "hz"], ["z0"])); n(helper.make_node("Sigmoid", ["z0"], ["z"]))
        n(helper.make_node("Mul", ["r", "hn"], ["rn"])); n(helper.make_node("Add", ["xn", "rn"], ["n0"]))
        n(helper.make_node("Tanh", ["n0"], ["nn"]))
        n(helper.make_node("Sub", ["h", "nn"], ["d"])); n(helper.make_node("Mul", ["z", "d"], ["zd"]))
        n(helper.make_node("Add", ["nn", "zd"], ["h_out"]))              # (1−z)·n + z·h
    else:
        inputs.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, H]))
        outputs.append(helper.make_tensor_value_info("c_out", TensorProto.FLOAT, [1, H]))
        n(helper.make_node("Add", ["gx", "gh0"], ["g"]))
        n(helper.make_node("Split", ["g", "split"], ["gi", "gf", "gg", "go"], axis=1))
        n(helper.make_node("Sigmoid", ["gi"], ["i"])); n(helper.make_node("Sigmoid", ["gf"], ["f"]))
        n(helper.make_node("Tanh", ["gg"], ["gt"])); n(helper.make_node("Sigmoid", ["go"], ["o"]))
        n(helper.make_node("Mul", ["f", "c"], ["fc"])); n(helper.make_node("Mul", ["i", "gt"], ["ig"]))
        n(helper.make_node("Add", ["fc", "ig"], ["c_out"]))
        n(helper.make_node("Tanh", ["c_out"], ["tc"])); n(helper.make_node("Mul", ["o", "tc"], ["h_out"]))
    n(helper.make_node("MatMul", ["h_out", "Vt"], ["l0"]))
    n(helper.make_node("Add", ["l0", "hb"], ["logits"]))
    g = helper.make_graph(nodes, "step", inputs, outputs, inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)


def work_ort(a):
    import onnxruntime as ort
    w = load_weights(a.model)
    d = tempfile.mkdtemp()
    f32 = os.path.join(d, "step.onnx")
    onnx_step_graph(w, a.cell, a.hidden, f32, a.frame)
    path = f32
    if a.variant == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic
        path = os.path.join(d, "step-int8.onnx")
        quantize_dynamic(f32, path, weight_type=QuantType.QInt8)
    elif a.variant == "q4":
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        q = MatMulNBitsQuantizer(onnx.load(f32), block_size=32, is_symmetric=True)
        q.process()
        path = os.path.join(d, "step-q4.onnx")
        q.model.save_model_to_file(path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {"h": np.zeros((1, a.hidden), np.float32)}
    if a.frame:
        feed["x"] = np.zeros((1, a.frame), np.float32)
    else:
        feed["tok"] = np.zeros(1, np.int64)
    if a.cell == "lstm":
        feed["c"] = np.zeros((1, a.hidden), np.float32)

    def step(t):
        if a.frame:
            feed["x"] = t.reshape(1, -1)
        else:
            feed["tok"][0] = t
        out = sess.run(None, feed)
        feed["h"] = out[1]
        if a.cell == "lstm":
            feed["c"] = out[2]

    step_us = time_steps(step, a.steps, a)
    return {"step_us": step_us, "prefill_tps": 1e6 / step_us, "prefill_tps_cpu": 1e6 / step_us, "prefill_kind": "loop"}


def work_tflite(a):
    import tensorflow as tf
    w = load_weights(a.model)
    H = a.hidden
    r, d, OUT = names(a)
    E = None if a.frame else tf.constant(w["layer.0.embeddings"])
    Wt = tf.constant(w[r + "kernel"].T.copy())
    Ut = tf.constant(w[r + "recurrent_kernel"].T.copy())
    b = tf.constant(w[r + "bias"])
    Vt = tf.constant(w[d + "kernel"].T.copy())
    cb = tf.constant(w[d + "bias"])
    first = tf.TensorSpec([1, a.frame], tf.float32) if a.frame else tf.TensorSpec([1], tf.int32)

    def embed(tok):
        return tok if a.frame else tf.gather(E, tok)

    if a.cell == "gru":
        bh = tf.constant(w[r + "recurrent_bias"])

        @tf.function(input_signature=[first, tf.TensorSpec([1, H], tf.float32)])
        def step(tok, h):
            x = embed(tok)
            gx = tf.matmul(x, Wt) + b
            gh = tf.matmul(h, Ut) + bh
            xr, xz, xn = tf.split(gx, 3, axis=1)
            hr, hz, hn = tf.split(gh, 3, axis=1)
            r = tf.sigmoid(xr + hr)
            z = tf.sigmoid(xz + hz)
            n = tf.tanh(xn + r * hn)
            h2 = n + z * (h - n)
            return tf.matmul(h2, Vt) + cb, h2
    else:
        @tf.function(input_signature=[first, tf.TensorSpec([1, H], tf.float32), tf.TensorSpec([1, H], tf.float32)])
        def step(tok, h, c):
            x = embed(tok)
            g = tf.matmul(x, Wt) + b + tf.matmul(h, Ut)
            gi, gf, gg, go = tf.split(g, 4, axis=1)
            c2 = tf.sigmoid(gf) * c + tf.sigmoid(gi) * tf.tanh(gg)
            h2 = tf.sigmoid(go) * tf.tanh(c2)
            return tf.matmul(h2, Vt) + cb, h2, c2
    conv = tf.lite.TFLiteConverter.from_concrete_functions([step.get_concrete_function()], step)
    if a.variant == "int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]    # dynamic-range int8 weights
    blob = conv.convert()
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    it = Interpreter(model_content=blob, num_threads=a.threads)
    it.allocate_tensors()
    ins = {d["name"]: d for d in it.get_input_details()}
    outs = it.get_output_details()
    # Identify inputs/outputs by shape and dtype (names vary between converter versions).
    if a.frame:
        tok_in = next(d for d in ins.values() if d["shape"][-1] == a.frame and a.frame != H)
    else:
        tok_in = next(d for d in ins.values() if d["dtype"] == np.int32)
    state_ins = sorted((d for d in ins.values() if d is not tok_in), key=lambda d: d["index"])
    logits_out = next(d for d in outs if d["shape"][-1] == OUT and H != OUT) if H != OUT else outs[0]
    state_outs = [d for d in outs if d is not logits_out]
    states = [np.zeros((1, H), np.float32) for _ in state_ins]
    tokbuf = np.zeros((1, a.frame), np.float32) if a.frame else np.zeros(1, np.int32)

    def run(t):
        tokbuf[0] = t
        it.set_tensor(tok_in["index"], tokbuf)
        for d, s in zip(state_ins, states):
            it.set_tensor(d["index"], s)
        it.invoke()
        for i, d in enumerate(state_outs):
            states[i] = it.get_tensor(d["index"])

    step_us = time_steps(run, a.steps, a)
    return {"step_us": step_us, "prefill_tps": 1e6 / step_us, "prefill_tps_cpu": 1e6 / step_us, "prefill_kind": "loop"}


WORKERS = {"recur-python": work_recur_python, "recur-c": work_recur_c, "torch": work_torch,
           "ort": work_ort, "tflite": work_tflite}


# ---------------------------------------------------------------------------------------------------

def have(module):
    try:
        __import__(module)
        return True
    except Exception:
        return False


def build_paths():
    recur = os.environ.get("RECUR")
    lib = os.environ.get("RECUR_LIBRARY")
    if not recur or not lib:
        scratch = os.path.join(ROOT, ".build-bench")
        recur = recur or os.path.join(scratch, "release", "recur")
        lib = lib or os.path.join(scratch, "release", "libRecurC.so")
        if not (os.path.exists(recur) and os.path.exists(lib)):
            subprocess.run(["make", "-C", ROOT, "build", "SCRATCH=.build-bench"], check=True)
    return recur, lib


# The frameworks compare.py runs, and the types it runs each in.
VARIANTS = {"recur-c": ["f32", "int8", "q4"], "recur-python": ["f32", "int8", "q4"],
            "torch": ["f32", "int8"], "ort": ["f32", "int8", "q4"], "tflite": ["f32", "int8"]}

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", default="100,256,512,1024")
    p.add_argument("--cells", default="gru,lstm")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--frameworks", default=",".join(VARIANTS))
    p.add_argument("--quick", action="store_true", help="fewer steps (rough figures)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--frames", default="", help="frame models of these sizes (F1,F2,...) instead of token models")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--cell", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    p.add_argument("--c-bench", help=argparse.SUPPRESS)
    p.add_argument("--frame", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    unknown = [f for f in a.frameworks.split(",") if f not in VARIANTS]
    if unknown:
        p.error(f"unknown framework {unknown[0]!r} (choose from {', '.join(VARIANTS)})")
    if a.worker:
        a.threads = int(a.threads)
        a.hidden = int(a.hidden)
        print(json.dumps(WORKERS[a.worker](a)))
        return

    recur, lib = build_paths()
    env = dict(os.environ, RECUR_LIBRARY=lib)
    tmp = tempfile.mkdtemp(prefix="recur-bench-")
    c_bench = os.path.join(tmp, "step_bench")
    # The library's SONAME is librecur.so (its installed name): the program finds it through a link.
    os.symlink(lib, os.path.join(tmp, "librecur.so"))
    subprocess.run(["cc", "-O2", "-I", os.path.join(ROOT, "include"), os.path.join(ROOT, "bench", "c", "step_bench.c"),
                    lib, "-Wl,-rpath," + tmp, "-o", c_bench], check=True)
    bw_exe = os.path.join(tmp, "bandwidth")
    subprocess.run(["cc", "-O2", "-march=native", os.path.join(ROOT, "bench", "c", "bandwidth.c"), "-o", bw_exe], check=True)
    bound = Bound(bw_exe)
    frameworks = a.frameworks.split(",")
    # Recur from Python first: the others are compared with it (the same calling overhead).
    frameworks.sort(key=lambda f: (f != "recur-python", f != "recur-c"))
    variants = VARIANTS
    modules = {"torch": "torch", "ort": "onnxruntime", "tflite": "tensorflow"}
    for f, mod in modules.items():
        if f in frameworks and not have(mod):
            print(f"# {f}: {mod} is not installed; skipped", file=sys.stderr)
            frameworks.remove(f)
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo; nproc; grep -m1 flags /proc/cpuinfo"],
                         capture_output=True, text=True).stdout.split("\n")
    print(f"# {cpu[0].split(':')[-1].strip()}, {cpu[1]} processors, "
          f"avx512: {'avx512f' in cpu[2]}, avx2: {'avx2' in cpu[2]}")
    results = []
    header = (f"{'F':>3} {'cell':5} {'H':>5} {'thr':>3} {'framework':13} {'type':5} {'step µs':>9} {'÷bound':>7} "
              f"{'prefill /CPU-s':>14}        step time ÷ Recur's from Python (same type; best Recur type)")
    print("# ÷bound: step time ÷ (bytes the step reads in Recur's file of that type ÷ this core's read bandwidth at"
          " that working-set size, bench/c/bandwidth.c); one thread")
    print(header)
    frame_sizes = [int(x) for x in a.frames.split(",")] if a.frames else [0]
    for frame, cell, hidden in [(f, c, int(h)) for f in frame_sizes for c in a.cells.split(",") for h in a.hidden.split(",")]:
        base = os.path.join(tmp, f"{cell}{hidden}-f{frame}")
        shape = (["--task", "regress", "--frame-size", str(frame), "--outputs", str(FRAME_OUT)] if frame
                 else ["--embedding", str(EMBED)])
        subprocess.run([recur, "create", "--out", base + ".recur", "--cell", cell, "--hidden", str(hidden)] + shape,
                       check=True, capture_output=True)
        files = {"f32": base + ".recur"}
        for t, name in [("int8", "int8"), ("q4", "int4")]:   # the kernels' layouts: q8ri and q4i
            files[t] = f"{base}-{t}.recur"
            subprocess.run([recur, "quantize", files["f32"], files[t], "--type", name], check=True, capture_output=True)
        nbytes = {t: step_bytes(f, frame) for t, f in files.items()}
        bound_us = {t: bound.us(n) for t, n in nbytes.items()}
        steps = steps_for(hidden) // (4 if a.quick else 1)
        for threads in [int(t) for t in a.threads.split(",")]:
            ref = {}
            for fw in frameworks:
                for v in variants[fw]:
                    cmd = [sys.executable, os.path.abspath(__file__), "--worker", fw, "--variant", v,
                           "--model", files[v if fw.startswith("recur") else "f32"], "--cell", cell,
                           "--hidden", str(hidden), "--threads", str(threads), "--steps", str(steps),
                           "--c-bench", c_bench, "--frame", str(frame)]
                    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
                    if r.returncode != 0:
                        msg = (r.stderr.strip().splitlines() or ["failed"])[-1]
                        print(f"# {fw} {v} {cell} {hidden} t{threads}: {msg}", file=sys.stderr)
                        continue
                    res = json.loads(r.stdout.strip().splitlines()[-1])
                    res.update(cell=cell, hidden=hidden, threads=threads, framework=fw, type=v, frame=frame,
                               step_bytes=nbytes[v], bound_us=bound_us[v], bandwidth_gbps=bound.gbps(nbytes[v]))
                    results.append(res)
                    if fw == "recur-python":
                        ref[v] = res["step_us"]
                    best_recur = min(ref.values()) if ref else None
                    ratio = ""
                    if best_recur and not fw.startswith("recur"):
                        same = ref.get(v, ref.get("int8", best_recur))
                        ratio = f"{res['step_us'] / same:6.2f}× ({res['step_us'] / best_recur:.2f}×)"
                    kind = "" if res["prefill_kind"] == "prefill" else " (loop)"
                    over = f"{res['step_us'] / bound_us[v]:7.2f}" if threads == 1 else f"{'':7}"
                    print(f"{frame or '-':>3} {cell:5} {hidden:>5} {threads:>3} {fw:13} {v:5} {res['step_us']:9.2f} {over} "
                          f"{res['prefill_tps_cpu']:>14.0f}{kind:7} {ratio}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
