#!/usr/bin/env python3
"""What Python adds to a step: State.step (the package's C module, recur._step, and the ctypes path it
replaced) against the same calls made from C (bench/c/step_loop.c, loaded into this process), on the same
models, interleaved in one process (15 rounds, the best of each), so that a busy machine moves both alike.

    RECUR=.build/release/recur RECUR_LIBRARY=.build/release/libRecurC.so PYTHONPATH=bindings/python \\
        taskset -c 1 .venv/bin/python bench/python_overhead.py [--json FILE]

Models (recur create, random weights): token generators (embedding 8 / 256, vocabulary 96) of GRU hidden 8
(f32 and int8) and 256 (int8), and frame models (12 floats in, Dense(4) out) of GRU hidden 64 (f32, int8)
and 512 (int8). A step: one token or frame in, the output out; `copy` is step(x) (a new array), `nocopy`
step(x, copy=False) (the state's own array, overwritten by the next step).
"""
import argparse
import ctypes as C
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from compare import build_paths  # noqa: E402

MODELS = [("gru-8 tokens", ["--hidden", "8", "--embedding", "8"], "f32"),
          ("gru-8 tokens", ["--hidden", "8", "--embedding", "8"], "int8"),
          ("gru-256 tokens", ["--hidden", "256", "--embedding", "256"], "int8"),
          ("gru-64 frames", ["--hidden", "64", "--frame-size", "12", "--task", "regress", "--outputs", "4"], "f32"),
          ("gru-64 frames", ["--hidden", "64", "--frame-size", "12", "--task", "regress", "--outputs", "4"], "int8"),
          ("gru-512 frames", ["--hidden", "512", "--frame-size", "12", "--task", "regress", "--outputs", "4"], "int8")]


def python_loop(step, x, copy, n):
    t = time.perf_counter()
    for _ in range(n):
        step(x, copy)
    return (time.perf_counter() - t) / n


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--json")
    a = p.parse_args()
    recur_cli, lib = build_paths()
    os.environ["RECUR_LIBRARY"] = lib
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    import recur
    from recur import model as rmodel
    if rmodel._step is None:
        sys.exit("python_overhead: recur._step is not built (python setup.py build_ext --inplace in bindings/python)")
    tmp = tempfile.mkdtemp(prefix="recur-overhead-")
    loop_lib = os.path.join(tmp, "step_loop.so")
    # Linked with the library the package loaded, found through a link named as its SONAME (librecur.so):
    # the same file, which the loader maps once, so the states made in Python are the loop's.
    os.symlink(lib, os.path.join(tmp, "librecur.so"))
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-I", os.path.join(ROOT, "include"),
                    os.path.join(ROOT, "bench", "c", "step_loop.c"), lib, "-Wl,-rpath," + tmp, "-o", loop_lib],
                   check=True)
    recur.library_path()   # loads the package's library first
    c_loop = C.CDLL(loop_lib).recur_bench_step_loop
    c_loop.restype = C.c_double
    c_loop.argtypes = [C.c_void_p, C.c_int32, C.c_void_p, C.c_size_t, C.c_void_p, C.c_size_t, C.c_long]
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo"], capture_output=True, text=True).stdout
    print(f"# {cpu.split(':')[-1].strip()}; µs per step; Python columns: what they add to C's")
    print(f"{'model':16} {'type':5} {'C':>8} {'module copy':>12} {'nocopy':>8} {'ctypes copy':>12} {'nocopy':>8}")
    results = []
    for i, (name, args, dtype) in enumerate(MODELS):
        path = os.path.join(tmp, f"m{i}.recur")
        subprocess.run([recur_cli, "create", "--out", path, "--cell", "gru", *args], check=True, capture_output=True)
        if dtype != "f32":
            subprocess.run([recur_cli, "quantize", path, path + ".q", "--type", dtype], check=True, capture_output=True)
            path += ".q"
        with recur.Model(path) as m:
            fast, c_state, slow_state = m.new_state(), m.new_state(), m.new_state()
            assert type(fast.step) is rmodel._step.Stepper
            slow = slow_state._python_step()
            F = m.frame_size
            x = np.linspace(-0.5, 0.5, F, dtype=np.float32) if F else 3
            out = np.empty(m.output_size, np.float32)
            n = 20000 if m.output_size * 4 + os.path.getsize(path) < 100_000 else 4000
            best = {k: float("inf") for k in ("c", "copy", "nocopy", "ctypes copy", "ctypes nocopy")}
            for _ in range(a.rounds):
                t = c_loop(c_state._h_arg.value, 3, x.ctypes.data if F else None, F, out.ctypes.data, out.size, n)
                if t < 0:
                    sys.exit(f"python_overhead: a C step of {name} failed")
                best["c"] = min(best["c"], t)
                best["copy"] = min(best["copy"], python_loop(fast.step, x, True, n))
                best["nocopy"] = min(best["nocopy"], python_loop(fast.step, x, False, n))
                best["ctypes copy"] = min(best["ctypes copy"], python_loop(slow, x, True, n))
                best["ctypes nocopy"] = min(best["ctypes nocopy"], python_loop(slow, x, False, n))
            us = {k: v * 1e6 for k, v in best.items()}
            c = us["c"]
            print(f"{name:16} {dtype:5} {c:8.3f} {us['copy'] - c:+12.3f} {us['nocopy'] - c:+8.3f} "
                  f"{us['ctypes copy'] - c:+12.3f} {us['ctypes nocopy'] - c:+8.3f}")
            results.append({"model": name, "type": dtype, **{k + "_us": v for k, v in us.items()}})
    shutil.rmtree(tmp)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cpu": cpu.split(":")[-1].strip(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
