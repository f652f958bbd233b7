#!/usr/bin/env python3
"""Plots the training curves of a `recur train --log LOG` run as a PNG.

    .venv/bin/python scripts/plot_training.py LOG OUT.png

Top panel: the training loss of every step (faint) and its moving average, and the validation loss
after each epoch, in bits per character against the optimizer step. Bottom panel: the learning rate.
A log that spans resumed runs is read as one run (a step written twice keeps its last value).
Needs matplotlib, which scripts/setup.sh --python installs into the project's virtual environment .venv.
"""
import argparse
import json
import sys


def read_log(path):
    steps, epochs, config = {}, {}, None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot_training: {path}:{n}: not JSON ({e})")
            kind = rec.get("type")
            if kind == "step":
                steps[rec["global_step"]] = rec
            elif kind == "epoch":
                epochs[rec["epoch"]] = rec
            elif kind == "config" and config is None:
                config = rec
    return [steps[k] for k in sorted(steps)], [epochs[k] for k in sorted(epochs)], config


def moving_average(values, width):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= width:
            total -= values[i - width]
        out.append(total / min(i + 1, width))
    return out


def main():
    ap = argparse.ArgumentParser(description="Plot the curves of a recur training log (JSON lines).")
    ap.add_argument("log", help="the file given to recur train --log")
    ap.add_argument("out", help="the PNG to write")
    args = ap.parse_args()

    steps, epochs, config = read_log(args.log)
    if not steps:
        sys.exit(f"plot_training: {args.log} holds no training steps")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["global_step"] for s in steps]
    y = [s["bits_per_char"] for s in steps]
    per_epoch = config.get("steps_per_epoch", 20) if config else 20

    fig, (ax, axlr) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(x, y, color="tab:blue", alpha=0.25, linewidth=0.8, label="training (each step)")
    ax.plot(x, moving_average(y, max(per_epoch, 1)), color="tab:blue", linewidth=1.6,
            label=f"training (mean of {per_epoch} steps)")
    vx = [e["global_step"] for e in epochs if e.get("val_bits_per_char") is not None]
    vy = [e["val_bits_per_char"] for e in epochs if e.get("val_bits_per_char") is not None]
    if vx:
        ax.plot(vx, vy, "o-", color="tab:orange", markersize=3.5, linewidth=1.4, label="validation (each epoch)")
        best = min(range(len(vy)), key=vy.__getitem__)
        ax.annotate(f"best {vy[best]:.3f}", (vx[best], vy[best]), textcoords="offset points", xytext=(0, -16),
                    ha="center", color="tab:orange")
    ax.set_ylabel("bits per character")
    lo = min(y + vy) if vy else min(y)
    ax.set_ylim(max(0, lo - 0.2), min(max(y), lo + 3.5))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    title = "recur train"
    if config:
        title = f"{config.get('text', '')}: {config.get('parameters', '?')} parameters"
    ax.set_title(title)

    axlr.plot(x, [s["lr"] for s in steps], color="tab:green")
    axlr.set_ylabel("learning rate")
    axlr.set_xlabel("step")
    axlr.grid(True, alpha=0.3)

    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}: {len(steps)} steps, {len(epochs)} epochs")


if __name__ == "__main__":
    main()
