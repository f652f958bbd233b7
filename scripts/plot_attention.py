#!/usr/bin/env python3
"""Draws the alignment of one translation as a heat map (PNG): the attention weights that a translator with
attention gives each source word for every target word it writes, as `recur_translate_attention` returns
them (through the Python binding's `Model.attention`).

    .venv/bin/python scripts/plot_attention.py MODEL --text "SOURCE SENTENCE" OUT.png [--beam 4]
        [--reference "TARGET SENTENCE"] [--title TITLE]

Rows are the target tokens in the order they were written (the end-of-sentence token is not shown),
columns the source tokens the encoder read (its final end-of-sentence token included); every row sums to
1. The weights are also printed as a table, so that the picture can be
checked against the numbers. Needs matplotlib, which scripts/setup.sh --python installs into the project's
virtual environment .venv; the library is $RECUR_LIBRARY, else the release build.
"""
import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
if "RECUR_LIBRARY" not in os.environ and (ROOT / ".build" / "release" / "libRecurC.so").exists():
    os.environ["RECUR_LIBRARY"] = str(ROOT / ".build" / "release" / "libRecurC.so")

import numpy as np  # noqa: E402

import recur  # noqa: E402


def label(piece: str) -> str:
    return {"": "∅"}.get(piece, piece)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("out", help="the PNG to write")
    ap.add_argument("--text", required=True, help="the source sentence")
    ap.add_argument("--beam", type=int, default=1, help="beam width (1: greedy)")
    ap.add_argument("--max-length", type=int, default=60)
    ap.add_argument("--reference", help="a reference translation, shown under the picture")
    ap.add_argument("--title", help="the picture's title (default: the model's file name)")
    args = ap.parse_args()

    try:
        with recur.Model(args.model) as model:
            att = model.attention(args.text, beam=args.beam, max_length=args.max_length)
    except recur.RecurError as e:
        print(f"plot_attention: {e}", file=sys.stderr)
        return 1
    w = np.asarray(att.weights, dtype=np.float32)
    rows = [label(p) for p in att.target]
    cols = [label(p) for p in att.source]
    if w.shape != (len(rows), len(cols)) or w.size == 0:
        print(f"plot_attention: no weights for this sentence (shape {w.shape})", file=sys.stderr)
        return 1

    width = max(len(c) for c in cols)
    print(" " * 14 + " ".join(f"{c[:6]:>6}" for c in cols))
    for r, row in zip(rows, w):
        print(f"{r[:13]:>13} " + " ".join(f"{v:6.3f}" for v in row))
    print(f"translation: {att.text}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_w = 2.2 + 0.42 * len(cols) + 0.05 * width
    fig_h = 1.8 + 0.36 * len(rows) + (0.4 if args.reference else 0)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h), dpi=110)
    im = ax.imshow(w, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=9)
    ax.set_yticks(range(len(rows)), rows, fontsize=9)
    ax.set_xlabel("source (what the encoder read)")
    ax.set_ylabel("target (as written)")
    ax.set_title(args.title or Path(args.model).name, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="attention weight")
    if args.reference:
        fig.text(0.01, 0.005, f"reference: {args.reference}", fontsize=8, ha="left", va="bottom")
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
