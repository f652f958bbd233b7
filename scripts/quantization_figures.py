#!/usr/bin/env python3
"""The accuracy figures of the quantized copies of the shipped generator, measured by the `recur` command.

For each type (f16, int8 = q8ri, q8, q4, int4 = q4i): `recur quantize models/alice.recur` into a temporary folder, then
`recur eval COPY --text HOLDOUT --reference models/alice.recur --json` on the held-out last 10% (by bytes)
of data/alice29.txt. Prints the table of docs/QUANTIZATION.md and the sentence of README.md built from the
measurements, and keeps the documents in step with them:

    scripts/quantization_figures.py            print the table and the sentence
    scripts/quantization_figures.py --write    rewrite both documents between their markers
    scripts/quantization_figures.py --check    exit 1 when a documented figure differs from the measured
                                               one by more than the kernels' run-to-run tolerance

The command is $RECUR_CLI, else .build/release/recur. Kernel levels (scalar, AVX2, AVX-512) sum in other
orders, so figures measured on another CPU can differ in the last digits: --check allows 0.0001 bits/char,
5% of the mean KL and 0.15 points of top-1 agreement. OpenBLAS is pinned to its Haswell kernels
(OPENBLAS_CORETYPE), whose sums are the same on every x86-64 CPU with AVX2.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "QUANTIZATION.md"
README = ROOT / "README.md"
MODEL = ROOT / "models" / "alice.recur"
TEXT = ROOT / "data" / "alice29.txt"
BEGIN, END = "<!-- quantization-figures:begin -->", "<!-- quantization-figures:end -->"

# type given to `recur quantize`, row label, target column
TYPES = [
    ("f16", "f16", "top-1 ≥ 99.5%"),
    ("int8", "int8 (q8ri)", "≤ +0.5%, KL ≤ 0.002, top-1 ≥ 98%"),
    ("q8", "q8 (per block)", "same"),
    ("q4", "q4", "≤ +3%, top-1 ≥ 93%"),
    ("int4", "int4 (q4i)", "same"),
]


def cli() -> str:
    path = os.environ.get("RECUR_CLI") or str(ROOT / ".build" / "release" / "recur")
    if not Path(path).exists():
        sys.exit(f"quantization_figures: {path} does not exist (run `make build` or set RECUR_CLI)")
    return path


def run(*args) -> str:
    # OpenBLAS (the prefill's input projection) is pinned to one kernel family, as in golden_outputs.py:
    # left to choose by CPU, its sums differ between x86-64 CPUs by more than the tolerance below.
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"}
    p = subprocess.run([cli(), *map(str, args)], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"quantization_figures: recur {' '.join(map(str, args))} failed: {p.stderr.strip()}")
    return p.stdout


def size_text(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def measure() -> list:
    """One dict per row: type label, file bytes, bits/char, relative change, KL, top-1, target."""
    with tempfile.TemporaryDirectory(prefix="recur-quant-figures.") as tmp:
        data = TEXT.read_bytes()
        holdout = Path(tmp) / "holdout.txt"
        holdout.write_bytes(data[int(len(data) * 0.9):])
        base = json.loads(run("eval", MODEL, "--text", holdout, "--json"))
        rows = [{"label": "f32", "bytes": MODEL.stat().st_size, "bits": base["bits_per_char"],
                 "predictions": base["predictions"]}]
        for qtype, label, target in TYPES:
            out = Path(tmp) / f"alice-{qtype}.recur"
            run("quantize", MODEL, out, "--type", qtype)
            r = json.loads(run("eval", out, "--text", holdout, "--reference", MODEL, "--json"))
            rows.append({"label": label, "bytes": out.stat().st_size, "bits": r["bits_per_char"],
                         "change": 100 * (r["bits_per_char"] / base["bits_per_char"] - 1),
                         "kl": r["mean_kl"], "top1": 100 * r["top1_agreement"], "target": target})
        return rows


def kl_text(v: float) -> str:
    return f"{v:.8f}" if v < 1e-5 else (f"{v:.6f}" if v < 1e-3 else f"{v:.4f}")


def table(rows: list) -> str:
    lines = [f"(measured: {rows[0]['predictions']:,} predictions; `scripts/quantization_figures.py` makes this table)".replace(",", " "),
             "",
             "| type          | file size | bits/char | vs f32   | mean KL (nats) | top-1 agreement | target |",
             "|---------------|----------:|----------:|---------:|---------------:|----------------:|--------|"]
    for r in rows:
        if r["label"] == "f32":
            lines.append(f"| {'f32':<13} | {size_text(r['bytes'])} | {r['bits']:.5f}   | —        | —              | —               | |")
        else:
            lines.append(f"| {r['label']:<13} | {size_text(r['bytes'])} | {r['bits']:.5f}   | {r['change']:+.3f}%  | "
                         f"{kl_text(r['kl']):<14} | {r['top1']:.2f}%          | {r['target']} |")
    return "\n".join(lines)


def sentence(rows: list) -> str:
    by = {r["label"]: r for r in rows}
    f16, q8r, q8, q4 = by["f16"], by["int8 (q8ri)"], by["q8 (per block)"], by["q4"]
    return (f"Quantized copies of the shipped generator (`recur quantize`, then `recur eval --reference`), on the\n"
            f"held-out text: f16 {f16['change']:+.3f}% bits/char (top-1 agreement {f16['top1']:.2f}%), int8 (one scale per row)\n"
            f"{q8r['change']:+.3f}% (mean KL {q8r['kl']:.5f}, top-1 {q8r['top1']:.1f}%), int8 with one scale per block of 32\n"
            f"{q8['change']:+.3f}% (KL {q8['kl']:.5f}, top-1 {q8['top1']:.1f}%), 4-bit {q4['change']:+.2f}% (KL {q4['kl']:.4f}, top-1\n"
            f"{q4['top1']:.1f}%); details and kernels in [docs/QUANTIZATION.md](docs/QUANTIZATION.md)"
            f" (`scripts/quantization_figures.py` measures them).")


def between(text: str, path: Path) -> str:
    m = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    if not m:
        sys.exit(f"quantization_figures: {path} has no {BEGIN} … {END} block")
    return m.group(1)


def replace(path: Path, body: str) -> None:
    text = path.read_text()
    between(text, path)
    path.write_text(re.sub(re.escape(BEGIN) + r"\n.*?\n" + re.escape(END), lambda _: f"{BEGIN}\n{body}\n{END}", text, flags=re.S))


def numbers(text: str) -> list:
    """The decimal numbers of a text, each with the size of one unit in its last place."""
    return [(float(x), 10.0 ** -len(x.split(".")[1])) for x in re.findall(r"[-+]?\d+\.\d+", text)]


def check(rows: list) -> list:
    """Differences between the documented figures and the measured ones beyond the tolerance."""
    problems = []
    doc_rows = [l for l in between(DOC.read_text(), DOC).splitlines() if l.startswith("| ") and "---" not in l][1:]
    measured = {r["label"]: r for r in rows}
    if len(doc_rows) != len(rows):
        return [f"{DOC.name}: {len(doc_rows)} rows documented, {len(rows)} measured"]
    for line in doc_rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        r = measured.get(cells[0])
        if r is None:
            problems.append(f"{DOC.name}: row '{cells[0]}' is not a measured type")
            continue
        if abs(float(cells[2]) - r["bits"]) > 1e-4:
            problems.append(f"{DOC.name} {cells[0]}: bits/char {cells[2]}, measured {r['bits']:.5f}")
        if cells[0] == "f32":
            continue
        kl = float(cells[4])
        if abs(kl - r["kl"]) > 0.05 * r["kl"] + 1e-9:
            problems.append(f"{DOC.name} {cells[0]}: mean KL {cells[4]}, measured {kl_text(r['kl'])}")
        top1 = float(cells[5].rstrip("%"))
        if abs(top1 - r["top1"]) > 0.15:
            problems.append(f"{DOC.name} {cells[0]}: top-1 {cells[5]}, measured {r['top1']:.2f}%")
    documented = numbers(between(README.read_text(), README))
    expected = numbers(sentence(rows))
    # The sentence's numbers, in order: per type its change of bits/char in % (the table's 0.0001 bits/char
    # as a percentage), then for the integer types the mean KL (5%), then its top-1 agreement (0.15 points).
    change = 100 * 1e-4 / rows[0]["bits"]
    allowed = [change, 0.15] + [change, None, 0.15] * 3
    if len(documented) != len(expected) or len(expected) != len(allowed) or any(
            abs(a - b) > max(ulp, 0.05 * abs(b) if tol is None else tol) + 1e-12
            for (a, ulp), (b, _), tol in zip(documented, expected, allowed)):
        problems.append(f"{README.name}: the quantization sentence says {[a for a, _ in documented]}, "
                        f"measured {[b for b, _ in expected]}")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help="rewrite the figures in docs/QUANTIZATION.md and README.md")
    g.add_argument("--check", action="store_true", help="fail when the documents disagree with the measurements")
    a = ap.parse_args()
    rows = measure()
    if a.write:
        replace(DOC, table(rows))
        replace(README, sentence(rows))
        print(f"wrote the figures into {DOC.relative_to(ROOT)} and {README.relative_to(ROOT)}")
    elif a.check:
        problems = check(rows)
        for p in problems:
            print("quantization_figures: " + p, file=sys.stderr)
        if problems:
            sys.exit(1)
        print("quantization figures: the documents agree with the measurements")
    else:
        print(table(rows))
        print()
        print(sentence(rows))


if __name__ == "__main__":
    main()
