#!/usr/bin/env python3
"""Warm open of a .recur model against torch.load of the same tensors, pinned to one core.

    bench/load.py [--prefix DIR] [--runs 15] [--cpu 1] [--models DIR] [--json out.json]

DIR is an installed layout (`make install PREFIX=DIR`; default: install into .build/load-prefix with
`make install`): DIR/lib/librecur.so is timed through its C ABI (recur_model_open + recur_model_free,
called with ctypes), DIR/bin/recur makes the models and, when it reports them (`recur bench --json`,
"load_phases"), gives where the open's time goes. Models (made once in --models, default a temporary
folder): GRU generators of about 10 MB (hidden 512, 2 layers) and about 100 MB (hidden 1024, 4 layers),
all f32, and for each a PyTorch file of the same tensors (a state dict of float32 tensors, torch.save).

Every figure is the best of --runs opens after one untimed open (so the file is in the page cache:
a warm open): Recur with its checksum, and with RECUR_OPEN_SKIP_CHECKSUM; torch.load(weights_only=True)
reading the file, and torch.load(mmap=True). Needs numpy and torch (e.g. /tmp/convenv/bin/python).
"""
import argparse, ctypes, json, os, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

MODELS = [("10 MB", "m10", ["--hidden", "512", "--layers", "2", "--embedding", "256"]),
          ("100 MB", "m100", ["--hidden", "1024", "--layers", "4", "--embedding", "256"])]
SKIP_CHECKSUM = 1   # RECUR_OPEN_SKIP_CHECKSUM


def best(f, runs):
    f()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        f()
        times.append(time.perf_counter_ns() - t0)
    return min(times) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prefix", help="installed layout to time (default: make install into .build/load-prefix)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--models", help="folder for the models (kept; reused when present)")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    os.sched_setaffinity(0, {a.cpu})

    prefix = a.prefix
    if prefix is None:
        prefix = os.path.join(ROOT, ".build", "load-prefix")
        subprocess.run(["make", "-C", ROOT, "install", f"PREFIX={prefix}"], check=True, stdout=subprocess.DEVNULL)
    recur_bin = os.path.join(prefix, "bin", "recur")
    lib = ctypes.CDLL(os.path.join(prefix, "lib", "librecur.so"))
    lib.recur_model_open.argtypes = [ctypes.c_char_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_void_p)]
    lib.recur_model_free.argtypes = [ctypes.c_void_p]

    import numpy as np
    import torch
    from recur import format as rf
    torch.set_num_threads(1)

    folder = a.models or tempfile.mkdtemp(prefix="recur-load-")
    os.makedirs(folder, exist_ok=True)

    def open_recur(path, flags):
        m = ctypes.c_void_p()
        if lib.recur_model_open(path.encode(), flags, ctypes.byref(m)) != 0:
            raise SystemExit(f"load: recur_model_open({path}) failed")
        lib.recur_model_free(m)

    rows = []
    for label, stem, args in MODELS:
        path = os.path.join(folder, stem + ".recur")
        pt = os.path.join(folder, stem + ".pt")
        if not os.path.exists(path):
            subprocess.run([recur_bin, "create", "--out", path, "--seed", "1"] + args, check=True, stdout=subprocess.DEVNULL)
        if not os.path.exists(pt):
            f = rf.read(path)
            torch.save({n: torch.from_numpy(np.array(v, dtype=np.float32)) for n, v in f.tensors.items()}, pt)
        r = {"model": label, "recur_bytes": os.path.getsize(path), "pt_bytes": os.path.getsize(pt),
             "recur_ms": best(lambda: open_recur(path, 0), a.runs),
             "recur_no_checksum_ms": best(lambda: open_recur(path, SKIP_CHECKSUM), a.runs),
             "torch_load_ms": best(lambda: torch.load(pt, weights_only=True), a.runs),
             "torch_load_mmap_ms": best(lambda: torch.load(pt, weights_only=True, mmap=True), a.runs)}
        out = subprocess.run(["taskset", "-c", str(a.cpu), recur_bin, "bench", path, "--json", "--steps", "1",
                              "--prompt", "1", "--loads", str(a.runs)], capture_output=True, text=True)
        if out.returncode == 0:
            r["load_phases_ms"] = json.loads(out.stdout).get("load_phases_ms")
        rows.append(r)

    print(f"warm open, best of {a.runs}, one core (cpu {a.cpu}); {prefix}")
    print(f"{'model':8} {'bytes':>11} {'recur':>9} {'no crc':>9} {'torch.load':>11} {'(mmap)':>9} {'recur/torch':>12}")
    for r in rows:
        print(f"{r['model']:8} {r['recur_bytes']:>11} {r['recur_ms']:>7.2f}ms {r['recur_no_checksum_ms']:>7.2f}ms "
              f"{r['torch_load_ms']:>9.2f}ms {r['torch_load_mmap_ms']:>7.2f}ms {r['recur_ms'] / r['torch_load_ms']:>11.2f}×")
    phases = [r for r in rows if r.get("load_phases_ms")]
    if phases:
        order = ["open", "parse", "checksum", "architecture", "validation", "input_table", "other", "total"]
        names = [n for n in order if n in phases[0]["load_phases_ms"]]
        print(f"\nwhere the open goes (recur bench, ms, the fastest of {a.runs} opens)")
        print(f"{'phase':14}" + "".join(f"{r['model']:>10}" for r in phases))
        for n in names:
            print(f"{n:14}" + "".join(f"{r['load_phases_ms'][n]:>10.3f}" for r in phases))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
