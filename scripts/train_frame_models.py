#!/usr/bin/env python3
"""Trains the two shipped frame models and prints their test figures, with the forecaster's baselines.

    .venv/bin/python scripts/train_frame_models.py            # train both, then evaluate
    .venv/bin/python scripts/train_frame_models.py --eval-only  # evaluate the models in models/

- models/japanese-vowels.recur: speaker identification on JapaneseVowels (data/frames/JapaneseVowels_*.ts,
  the archive's 270 / 370 split; every 5th training utterance is the validation part the trainer keeps the
  best epoch by). Figure: accuracy on the 370 test utterances, through the runtime (`recur eval`).
- models/sunspots.recur: forecaster of the next 12 monthly sunspot numbers (data/frames/sunspots_monthly.csv,
  1749-01 … 2008-12). The last 15% of the months is the test part, the 15% before it validation, the rest
  training. Figures: MAE at horizons 1 and 12 on the test months, the forecasts streamed through the runtime
  from January 1749, against two baselines computed here in numpy on the same months:
  persistence (ŷ[t+h] = y[t]) and a least-squares AR(p) with intercept fitted on the training part and
  iterated for h > 1, p in 1…48 chosen by the validation MAE at each horizon.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DATA = os.path.join(ROOT, "data", "frames")

VOWELS = ["--task", "classify", "--frames", "data/frames/JapaneseVowels_TRAIN.ts", "--test", "data/frames/JapaneseVowels_TEST.ts",
          "--out", "models/japanese-vowels.recur", "--cell", "gru", "--hidden", "48", "--dense", "0", "--pooling", "mean",
          "--batch", "16", "--epochs", "80", "--patience", "20", "--seed", "1",
          "--license", "CC-BY-4.0 (trained on the UCI Japanese Vowels data, Kudo, Toyama and Shimbo 1999)"]
SUNSPOTS = ["--task", "regress", "--series", "data/frames/sunspots_monthly.csv", "--column", "sunspots",
            "--out", "models/sunspots.recur", "--cell", "gru", "--hidden", "64", "--dense", "0", "--horizon", "12",
            "--loss", "mae", "--window", "120", "--stride", "3", "--burn-in", "12", "--batch", "16", "--epochs", "200",
            "--patience", "30", "--lr", "0.003", "--seed", "1"]
TEST_FRACTION = VAL_FRACTION = 0.15


def run(recur, args, capture=True):
    print("$ recur " + " ".join(a if " " not in a else repr(a) for a in args), file=sys.stderr, flush=True)
    r = subprocess.run([recur] + args, cwd=ROOT, stdout=subprocess.PIPE if capture else None, text=True)
    if r.returncode != 0:
        sys.exit(f"recur {args[0]} failed (status {r.returncode})")
    return r.stdout


def parts(n):
    """The split of `recur train --task regress` (round half up, as Swift's rounded())."""
    n_test = int(n * TEST_FRACTION + 0.5)
    n_val = int(n * VAL_FRACTION + 0.5)
    return n - n_test - n_val, n - n_test


def series():
    rows = open(os.path.join(DATA, "sunspots_monthly.csv")).read().split("\n")[1:]
    return np.array([float(r.split(",")[1]) for r in rows if r], dtype=np.float64)


def persistence_mae(y, h, targets):
    return float(np.mean(np.abs(y[targets] - y[targets - h])))


def ar_fit(y, p, end):
    """Least squares y[t] = c + Σ a_i y[t-i] over the targets p…end-1 (inside the training part)."""
    X = np.column_stack([np.ones(end - p)] + [y[p - i:end - i] for i in range(1, p + 1)])
    coef, *_ = np.linalg.lstsq(X, y[p:end], rcond=None)
    return coef


def ar_forecasts(y, coef, p, h, targets):
    """Iterated h-step forecasts of y[j] for j in targets, from the values up to j − h."""
    out = np.empty(len(targets))
    for k, j in enumerate(targets):
        hist = list(y[j - h - p + 1:j - h + 1])   # the p values ending at the origin j − h
        for _ in range(h):
            nxt = coef[0] + sum(coef[i] * hist[-i] for i in range(1, p + 1))
            hist.append(nxt)
        out[k] = hist[-1]
    return out


def ar_mae(y, h, train_end, val_targets, test_targets, max_p=48):
    best = None
    for p in range(1, max_p + 1):
        coef = ar_fit(y, p, train_end)
        v = float(np.mean(np.abs(ar_forecasts(y, coef, p, h, val_targets) - y[val_targets])))
        if best is None or v < best[0]:
            best = (v, p, coef)
    v, p, coef = best
    t = float(np.mean(np.abs(ar_forecasts(y, coef, p, h, test_targets) - y[test_targets])))
    return p, v, t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recur", default=os.path.join(ROOT, ".build", "release", "recur"), help="the recur command")
    ap.add_argument("--eval-only", action="store_true", help="evaluate the models in models/ without training")
    a = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    if not a.eval_only:
        run(a.recur, ["train"] + VOWELS, capture=False)
        run(a.recur, ["train"] + SUNSPOTS, capture=False)

    v = json.loads(run(a.recur, ["eval", "models/japanese-vowels.recur", "--frames", "data/frames/JapaneseVowels_TEST.ts", "--json"]))
    print(f"japanese-vowels: test accuracy {100 * v['accuracy']:.2f}% ({round(v['accuracy'] * v['sequences'])} of {v['sequences']})")

    y = series()
    train_end, val_end = parts(len(y))
    s = json.loads(run(a.recur, ["eval", "models/sunspots.recur", "--series", "data/frames/sunspots_monthly.csv", "--column", "sunspots",
                                 "--test-fraction", str(TEST_FRACTION), "--json"]))
    assert s["first_evaluated"] == val_end, (s["first_evaluated"], val_end)
    print(f"sunspots: {len(y)} months; training {train_end}, validation {val_end - train_end}, test {len(y) - val_end} "
          f"(from {1749 + val_end // 12}-{val_end % 12 + 1:02d})")
    print(f"{'horizon':>8} {'model MAE':>10} {'persistence':>12} {'AR(p) MAE':>10} {'p':>3}  (AR validation MAE)")
    ok = True
    for h in (1, 12):
        test_t = np.arange(val_end, len(y))
        val_t = np.arange(train_end, val_end)
        pers = persistence_mae(y, h, test_t)
        p, ar_val, ar_test = ar_mae(y, h, train_end, val_t, test_t)
        model = s["mae"][h - 1]
        ok &= model < pers and model < ar_test
        print(f"{h:>8} {model:>10.3f} {pers:>12.3f} {ar_test:>10.3f} {p:>3}  ({ar_val:.3f})")
    print("the forecaster beats both baselines at both horizons" if ok else "the forecaster does NOT beat both baselines at both horizons")


if __name__ == "__main__":
    main()
