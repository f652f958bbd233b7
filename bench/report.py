#!/usr/bin/env python3
"""Turns the JSON of bench/compare.py into the Markdown tables of docs/BENCHMARKS.md.

    .venv/bin/python bench/report.py results.json > tables.md
"""
import json
import sys

ORDER = [("recur-c", "f32"), ("recur-c", "int8"), ("recur-c", "q4"),
         ("recur-python", "f32"), ("recur-python", "int8"), ("recur-python", "q4"),
         ("tflite", "f32"), ("tflite", "int8"), ("ort", "f32"), ("ort", "int8"), ("ort", "q4"),
         ("torch", "f32"), ("torch", "int8")]
NAMES = {"recur-c": "Recur (C)", "recur-python": "Recur (Python)", "tflite": "TFLite",
         "ort": "ONNX Runtime", "torch": "PyTorch"}


def main():
    everything = json.load(open(sys.argv[1]))
    for frame in sorted({r.get("frame", 0) for r in everything}):
        tables([r for r in everything if r.get("frame", 0) == frame], f"frames of {frame}, " if frame else "")


def tables(rows, what):
    by = {(r["cell"], r["hidden"], r["threads"], r["framework"], r["type"]): r for r in rows}
    cells = sorted({r["cell"] for r in rows}, key=lambda c: ["gru", "lstm"].index(c) if c in ("gru", "lstm") else 9)
    hiddens = sorted({r["hidden"] for r in rows})
    threads = sorted({r["threads"] for r in rows})
    for t in threads:
        for cell in cells:
            print(f"\n### {cell.upper()}, {what}{t} thread{'s' if t > 1 else ''}: step latency (µs, median)\n")
            print("| framework | type | " + " | ".join(f"H={h}" for h in hiddens) + " |")
            print("|---|---|" + "---:|" * len(hiddens))
            for fw, ty in ORDER:
                cells_ = []
                for h in hiddens:
                    r = by.get((cell, h, t, fw, ty))
                    if r is None:
                        cells_.append("—")
                        continue
                    s = f"{r['step_us']:.1f}"
                    if not fw.startswith("recur"):
                        ref = by.get((cell, h, t, "recur-python", ty)) or by.get((cell, h, t, "recur-python", "int8"))
                        if ref:
                            s += f" ({r['step_us'] / ref['step_us']:.2f}×)"
                    cells_.append(s)
                if any(c != "—" for c in cells_):
                    print(f"| {NAMES[fw]} | {ty} | " + " | ".join(cells_) + " |")
            if t == 1 and any("bound_us" in r for r in rows):
                print(f"\n{cell.upper()}, {what}1 thread: Recur's step time ÷ the memory bound (the bytes the step "
                      "reads ÷ this core's read bandwidth at that working-set size, bench/c/bandwidth.c)\n")
                print("| framework | type | " + " | ".join(f"H={h}" for h in hiddens) + " |")
                print("|---|---|" + "---:|" * len(hiddens))
                for fw, ty in ORDER:
                    if not fw.startswith("recur"):
                        continue
                    cells_ = [f"{r['step_us'] / r['bound_us']:.2f}" if (r := by.get((cell, h, t, fw, ty))) and "bound_us" in r
                              else "—" for h in hiddens]
                    if any(c != "—" for c in cells_):
                        print(f"| {NAMES[fw]} | {ty} | " + " | ".join(cells_) + " |")
            print(f"\n{cell.upper()}, {what}{t} thread{'s' if t > 1 else ''}: prefill, tokens per CPU-second "
                  "(1000-token prompt; \"loop\": no sequence entry point, 1 / step time)\n")
            print("| framework | type | " + " | ".join(f"H={h}" for h in hiddens) + " |")
            print("|---|---|" + "---:|" * len(hiddens))
            for fw, ty in ORDER:
                cells_ = []
                for h in hiddens:
                    r = by.get((cell, h, t, fw, ty))
                    if r is None:
                        cells_.append("—")
                        continue
                    v = r.get("prefill_tps_cpu", r["prefill_tps"])
                    cells_.append(f"{v:,.0f}" + (" loop" if r["prefill_kind"] == "loop" else ""))
                if any(c != "—" for c in cells_):
                    print(f"| {NAMES[fw]} | {ty} | " + " | ".join(cells_) + " |")


if __name__ == "__main__":
    main()
