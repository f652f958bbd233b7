#!/usr/bin/env python3
"""Step latency and prefill of two builds of `recur`, run alternately in one script (an A/B of a change).

    bench/ab.py OLD/recur NEW/recur [--rounds 5] [--cpu 1] [--json out.json]

Models: the shipped ones (models/*.recur, the generator's int8 and q4 copies) and the benchmark sizes of
bench/compare.py (GRU and LSTM generators at hidden 8, 256, 512, 1024, f32, int8 and int4, and frame models of
12 floats at hidden 256, f32 and int8, made with `recur create` and `recur quantize` of the NEW build). Each round runs `recur bench --json` of A then B
(alternating which goes first) pinned to one core; the figure is the median over rounds, and the ratio
is A's time ÷ B's time (above 1: B is faster). Rows "×16" step 16 streams together (`--batch 16`; the
time is per batch step).
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def bench(recur, model, cpu, steps, prompt, batch=1):
    cmd = ["taskset", "-c", str(cpu), recur, "bench", model, "--json", "--steps", str(steps),
           "--prompt", str(prompt), "--threads", "1"]
    if batch > 1:
        cmd += ["--batch", str(batch)]
    d = json.loads(run(cmd))
    return d["step_us_median"], 1e6 / d["prefill_tokens_per_cpu_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a"), ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    try:
        models = [(os.path.basename(p)[:-6], p) for p in sorted(
            os.path.join(ROOT, "models", f) for f in os.listdir(os.path.join(ROOT, "models")) if f.endswith(".recur"))]
        # The shipped model `recur bench` can step (the classifier and the tagger run whole sequences, the
        # translator's decoder steps on an encoded source).
        models = [(n, p) for n, p in models if n == "alice"]
        alice = dict(models)["alice"]
        for t in ("int8", "q4"):
            out = os.path.join(tmp, f"alice-{t}.recur")
            run([args.b, "quantize", alice, out, "--type", t])
            models.append((f"alice-{t}", out))
        for cell in ("gru", "lstm"):
            for h in (8, 256, 512, 1024):
                out = os.path.join(tmp, f"{cell}{h}.recur")
                run([args.b, "create", "--cell", cell, "--hidden", str(h), "--embedding", "64", "--out", out])
                models.append((f"{cell}-{h}", out))
                for t in ("int8", "int4"):
                    q = os.path.join(tmp, f"{cell}{h}-{t}.recur")
                    run([args.b, "quantize", out, q, "--type", t])
                    models.append((f"{cell}-{h}-{t}", q))
            # a frame model (12 floats per step, no input table: the input matrix is multiplied every step)
            out = os.path.join(tmp, f"{cell}256-f12.recur")
            run([args.b, "create", "--cell", cell, "--hidden", "256", "--task", "regress", "--frame-size", "12",
                 "--outputs", "4", "--out", out])
            models.append((f"{cell}-256-f12", out))
            q = os.path.join(tmp, f"{cell}256-f12-int8.recur")
            run([args.b, "quantize", out, q, "--type", "int8"])
            models.append((f"{cell}-256-f12-int8", q))
        batched = [(name + " ×16", path, 16) for name, path in models if name in ("gru-512", "gru-512-int8", "lstm-512", "lstm-512-int8")]
        models = [(n, p, 1) for n, p in models] + batched
        rows = []
        print(f"{'model':<16} {'A step µs':>10} {'B step µs':>10} {'A/B':>6}   {'A prefill µs/tok':>16} {'B prefill µs/tok':>16} {'A/B':>6}")
        for name, path, batch in models:
            steps = 20000 if name.endswith("-8") or "-8-" in name else 3000
            res = {"a": [], "b": []}
            for r in range(args.rounds):
                order = ("a", "b") if r % 2 == 0 else ("b", "a")
                for k in order:
                    res[k].append(bench(getattr(args, k), path, args.cpu, steps if batch == 1 else steps // 4, 500, batch))
            med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in res.items()}
            row = {"model": name, "batch": batch, "a_step_us": med["a"][0], "b_step_us": med["b"][0],
                   "a_prefill_us_per_token": med["a"][1], "b_prefill_us_per_token": med["b"][1]}
            rows.append(row)
            print(f"{name:<16} {med['a'][0]:>10.2f} {med['b'][0]:>10.2f} {med['a'][0] / med['b'][0]:>6.3f}   "
                  f"{med['a'][1]:>16.3f} {med['b'][1]:>16.3f} {med['a'][1] / med['b'][1]:>6.3f}", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
