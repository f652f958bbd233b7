#!/usr/bin/env python3
"""Golden outputs of the shipped models: a record, made by the code as it is, that later code must
reproduce bit for bit (a refactor keeps logits bit-equal).

For every shipped model, and for quantized copies of the generator (`recur quantize` to f16, int8, q8,
q4, int4), over a fixed input of 500 token ids (seeded, so the same everywhere), at each kernel level the CPU
has (RECUR_KERNELS=scalar, avx2, avx512):
  - generators and the seq2seq decoder: the output after each of 500 steps (`recur logits`), and the
    output after a prefill of all 500 (`recur logits --prefill`);
  - classifiers and taggers: the whole-sequence outputs (`recur logits --sequence`);
  - the translator: greedy and beam-4 translations of fixed sentences (`recur translate --json`), with
    their attention weights for a decoder with attention (whose steps need an encoded source, so that it
    has no per-step or prefill record).
Frame models get 500 fixed frames (values in [-2, 2) from the same seeded sequence) instead of token ids:
their per-step outputs, the prefill's output and the whole-sequence rows (`recur logits --frames`; a
classifier only the latter).
Each record is the SHA-256 of the outputs as little-endian float32 (exact), with their count and first
values for a readable diff. OpenBLAS (prefill, whole-sequence runs) is pinned to one kernel family,
OPENBLAS_CORETYPE=Haswell, so that its sums do not depend on which x86-64 CPU runs them.

    scripts/golden_outputs.py --write     records tests/golden/outputs.json (only before a change!)
    scripts/golden_outputs.py --check     exit 1 when an output differs from its record

A record that is null is known not to be recorded yet (a model made on a CPU without that kernel level):
the check names it and goes on; record it on a CPU with that level.

The command is $RECUR_CLI, else .build/release/recur.
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "tests" / "golden" / "outputs.json"
MODELS = ROOT / "models"
LEVELS = ["scalar", "avx2", "avx512"]
SENTENCES = ["in the beginning was the word .", "and jesus said unto them , follow me ."]


def cli() -> str:
    path = os.environ.get("RECUR_CLI") or str(ROOT / ".build" / "release" / "recur")
    if not Path(path).exists():
        sys.exit(f"golden_outputs: {path} does not exist (run `make build` or set RECUR_CLI)")
    return path


def run(args, level=None) -> str:
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"}
    env.pop("RECUR_KERNELS", None)
    if level:
        env["RECUR_KERNELS"] = level
    p = subprocess.run([cli(), *map(str, args)], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"golden_outputs: recur {' '.join(map(str, args))} failed: {p.stderr.strip()}")
    return p.stdout


def levels() -> list:
    out = run(["bench", "--kernels", "--rows", "32", "--cols", "32"])
    detected = int(out.split("detected level ")[1].split(")")[0])
    return LEVELS[:detected + 1]


def tokens(vocab: int, n: int = 500) -> list:
    """A fixed pseudo-random sequence (SplitMix64, as the runtime's own generator)."""
    state, out = 12345, []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        out.append((z ^ (z >> 31)) % vocab)
    return out


def record_of(values: list) -> dict:
    flat = []

    def walk(v):
        if isinstance(v, list):
            for x in v:
                walk(x)
        else:
            flat.append(float(v))
    walk(values)
    raw = b"".join(struct.pack("<f", x) for x in flat)
    return {"count": len(flat), "sha256": hashlib.sha256(raw).hexdigest(), "first": flat[:4]}


def outputs() -> dict:
    records = {}
    with tempfile.TemporaryDirectory(prefix="recur-golden.") as tmp:
        models = [("alice", MODELS / "alice.recur")]
        for t in ["f16", "int8", "q8", "q4", "int4"]:
            out = Path(tmp) / f"alice-{t}.recur"
            run(["quantize", MODELS / "alice.recur", out, "--type", t])
            models.append((f"alice-{t}", out))
        models += [("sentiment", MODELS / "sentiment.recur"), ("pos", MODELS / "pos.recur"),
                   ("translate-en-es", MODELS / "translate-en-es.recur"),
                   ("japanese-vowels", MODELS / "japanese-vowels.recur"), ("sunspots", MODELS / "sunspots.recur")]
        for level in levels():
            for name, path in models:
                info = json.loads(run(["info", path, "--json"]))
                task = info.get("task", "generate")
                if info.get("input") == "frames":
                    # 500 frames of values in [-2, 2) (from the same fixed sequence), the model's frame size each.
                    f = info["frame_size"]
                    x = ",".join(repr(v / 1000 - 2) for v in tokens(4000, 500 * f))
                    for kind, extra in [("sequence", ["--sequence"])] + ([("steps", []), ("prefill", ["--prefill"])]
                                                                         if task != "classify" else []):
                        records[f"{name}/{kind}/{level}"] = record_of(json.loads(run(["logits", path, "--frames", x, *extra], level)))
                    continue
                vocab = info["vocab_size"]
                ids = ",".join(map(str, tokens(vocab)))
                attends = any(l.get("kind") == "attention" for l in info.get("layers", []))
                if attends:
                    pass        # a decoder with attention steps only after encoding a source: see the translations
                elif task in ("generate", "seq2seq"):
                    records[f"{name}/steps/{level}"] = record_of(json.loads(run(["logits", path, "--tokens", ids], level)))
                    records[f"{name}/prefill/{level}"] = record_of(json.loads(run(["logits", path, "--tokens", ids, "--prefill"], level)))
                else:
                    records[f"{name}/sequence/{level}"] = record_of(json.loads(run(["logits", path, "--tokens", ids, "--sequence"], level)))
                if task == "seq2seq":
                    for beam in [1, 4]:
                        texts = [json.loads(run(["translate", path, "--text", s, "--beam", beam, "--json",
                                                 *(["--attention"] if attends else [])], level)) for s in SENTENCES]
                        records[f"{name}/translate-beam{beam}/{level}"] = {
                            "texts": [t["text"] for t in texts], "tokens": [t["tokens"] for t in texts],
                            "log_probability": record_of([t["log_probability"] for t in texts]),
                            **({"attention": record_of([t["attention"] for t in texts])} if attends else {})}
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help="record the outputs of the code as it is")
    g.add_argument("--check", action="store_true", help="compare the outputs with the record")
    a = ap.parse_args()
    now = outputs()
    if a.write:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"golden outputs: {len(now)} records written to {RECORD.relative_to(ROOT)}")
        return
    saved = json.loads(RECORD.read_text())
    bad, unrecorded = [], []
    for key, value in now.items():
        if key not in saved:
            bad.append(f"{key}: no record (a kernel level the recording machine did not have?)")
        elif saved[key] is None:
            unrecorded.append(key)      # null: known not recorded (the model was made on a CPU without that level)
        elif saved[key] != value:
            bad.append(f"{key}: differs from the record (recorded {json.dumps(saved[key])[:160]}, now {json.dumps(value)[:160]})")
    checked = sum(1 for k in now if saved.get(k) is not None)
    for b in bad:
        print("golden outputs: " + b, file=sys.stderr)
    for k in unrecorded:
        print(f"golden outputs: {k}: not recorded yet (null in {RECORD.name}: record it on a CPU with that level)")
    if bad:
        sys.exit(1)
    lacking = sum(1 for k, v in saved.items() if v is not None and k not in now)
    print(f"golden outputs: {checked} records reproduced bit for bit ({lacking} recorded for kernel levels this CPU lacks)")


if __name__ == "__main__":
    main()
