#!/usr/bin/env python3
"""Builds the frame-model converter fixtures with the real frameworks: tiny Keras 3, tf.keras and PyTorch
models that read frames of F floats (no embedding), with random weights, saved in the converters'
formats, together with the frameworks' own outputs on a batch of sequences.

    pip install tensorflow-cpu tf_keras torch safetensors h5py   # once, ideally in a virtualenv
    python scripts/make_frame_fixtures.py [--out tests/fixtures/convert/frames] [--only keras3,keras2,torch]

For each case it writes the model file(s) and ``<case>.npz`` holding ``frames`` (B sequences of T frames,
float32; padded with the mask value where the case masks) and ``outputs``: what the framework's predict
gives for the batch — (B, T, out) for per-step models, (B, out) for classifiers. ``manifest.json`` lists
every case: its files, the converter options it needs, the task, the pooling and whether the model steps
(no bidirectional layer). The live tests (bindings/python/tests/test_convert_frames.py, marked ``live``)
call :func:`build` into a temporary folder.

Sizes are tiny on purpose (F = 3 … 12, 8 … 16 units, T ≤ 20) so that the committed files stay small.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_convert_fixtures import save_keras  # noqa: E402

B, T = 3, 20                 # sequences per case and frames per sequence
SCALE = 0.5                  # weights are uniform in ±SCALE (biases too, so that every bias is exercised)


def _frames(seed: int, F: int, loc: float = 0.0, spread: float = 1.0, t: int = T) -> np.ndarray:
    return (loc + spread * np.random.default_rng(seed).normal(size=(B, t, F))).astype(np.float32)


def _pad(x: np.ndarray, value: float) -> np.ndarray:
    """Sequence 0 padded at the end (its last 6 frames), sequence 1 at the start (its first 4), sequence 2
    not at all; every feature of a padding frame is ``value``."""
    x = x.copy()
    x[0, -6:] = value
    x[1, :4] = value
    return x


# --- Keras ---------------------------------------------------------------------------------------

def _keras_cases(keras, k2: bool):
    L = keras.layers
    if not k2:
        return [
            # name, task, pooling, F, layers (after the Input), formats, input kind, data, mask value
            ("k3f_lstm_cls", "classify", "last", 12, lambda: [L.LSTM(16), L.Dense(3, activation="softmax")],
             ["keras", "weights_h5"], "input", {}, None),
            ("k3f_gru2_tag", "tag", "last", 6,
             lambda: [L.GRU(12, return_sequences=True), L.GRU(8, return_sequences=True),
                      L.TimeDistributed(L.Dense(4, activation="softmax"))], ["keras"], "input", {}, None),
            ("k3f_gru2_regress", "regress", "last", 5,
             lambda: [L.GRU(10, return_sequences=True), L.Dropout(0.1), L.GRU(8, return_sequences=True),
                      L.TimeDistributed(L.Dense(2))], ["keras"], "sequential", {}, None),
            ("k3f_bilstm_cls", "classify", "last", 4,
             lambda: [L.Bidirectional(L.LSTM(8)), L.Dense(1, activation="sigmoid")], ["keras"], "input", {}, None),
            ("k3f_rnn_regress", "regress", "last", 3,
             lambda: [L.SimpleRNN(10, return_sequences=True), L.Dense(1)], ["keras"], "input", {}, None),
            ("k3f_mask_gru_cls", "classify", "last", 6,
             lambda: [L.Masking(mask_value=0.0), L.GRU(12), L.Dense(3, activation="softmax")], ["keras"], "input",
             {}, 0.0),
            ("k3f_mask_lstm_regress", "regress", "last", 4,
             lambda: [L.Masking(mask_value=-1.0), L.LSTM(10, return_sequences=True), L.TimeDistributed(L.Dense(2))],
             ["keras"], "input", {}, -1.0),
            ("k3f_mask_bigru_tag", "tag", "last", 5,
             lambda: [L.Masking(mask_value=0.0), L.Bidirectional(L.GRU(8, return_sequences=True)),
                      L.GRU(8, return_sequences=True), L.TimeDistributed(L.Dense(3, activation="softmax"))],
             ["keras"], "input", {}, 0.0),
            ("k3f_norm_gap_cls", "classify", "mean", 8,
             lambda: [L.Masking(mask_value=0.0), L.Normalization(), L.GRU(12, return_sequences=True),
                      L.GlobalAveragePooling1D(), L.Dense(3, activation="softmax")], ["keras", "weights_h5"], "input",
             {"loc": 3.0, "spread": 2.0}, 0.0),
            ("k3f_norm_lstm_regress", "regress", "last", 6,
             lambda: [L.Normalization(), L.LSTM(12, return_sequences=True), L.Dense(1)], ["keras"], "input",
             {"loc": -2.0, "spread": 4.0}, None),
            ("k3f_mask_bigru_last_tag", "tag", "last", 4,
             lambda: [L.Masking(mask_value=0.0), L.Bidirectional(L.GRU(6, return_sequences=True)),
                      L.TimeDistributed(L.Dense(3, activation="softmax"))], ["keras"], "sequential", {}, 0.0),
            ("k3f_normc_gru_regress", "regress", "last", 3,
             lambda: [L.Normalization(mean=[1.0, 0.5, -1.0], variance=[4.0, 2.0, 0.5]),
                      L.GRU(8, return_sequences=True, reset_after=False), L.Dense(2)], ["keras"], "sequential",
             {"loc": 0.5, "spread": 2.0}, None),
        ]
    return [
        ("k2f_lstm_cls", "classify", "last", 8,
         lambda: [L.LSTM(16, input_shape=(None, 8)), L.Dense(3, activation="softmax")],
         ["h5", "checkpoint", "keras"], "sequential", {}, None),
        ("k2f_mask_gru_tag", "tag", "last", 5,
         lambda: [L.Masking(mask_value=0.0), L.GRU(12, return_sequences=True),
                  L.TimeDistributed(L.Dense(3, activation="softmax"))], ["h5"], "input", {}, 0.0),
        ("k2f_norm_bigru_regress", "regress", "last", 6,
         lambda: [L.Normalization(), L.Bidirectional(L.GRU(8, return_sequences=True), merge_mode="sum"),
                  L.Dense(1)], ["h5", "h5_weights", "checkpoint"], "input", {"loc": 1.0, "spread": 3.0}, None),
        ("k2f_birnn_gap_cls", "classify", "mean", 3,
         lambda: [L.Bidirectional(L.SimpleRNN(8, return_sequences=True)), L.GlobalAveragePooling1D(),
                  L.Dense(2, activation="softmax")], ["h5"], "input", {}, None),
        ("k2f_mask_bilstm_gap_cls", "classify", "mean", 4,
         lambda: [L.Masking(mask_value=-1.0, input_shape=(None, 4)),
                  L.Bidirectional(L.LSTM(8, return_sequences=True), merge_mode="ave"),
                  L.GlobalAveragePooling1D(), L.Dense(3, activation="softmax")], ["keras", "h5"], "sequential", {},
         -1.0),
    ]


def _randomize_keras(model, seed: int) -> None:
    """Every trainable weight uniform in ±SCALE (Normalization's adapted statistics are left alone)."""
    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:
        w.assign(rng.uniform(-SCALE, SCALE, size=tuple(w.shape)).astype(np.float32))


def build_keras(out: str, k2: bool, seed: int = 11) -> list:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if k2:
        import tf_keras as keras
    else:
        import keras
    entries = []
    for i, (name, task, pooling, F, make, formats, how, data, mask) in enumerate(_keras_cases(keras, k2)):
        s = seed * 1000 + i
        keras.utils.set_random_seed(s)
        layers = make()
        x = _frames(s, F, **data)
        for l in layers:
            if type(l).__name__ == "Normalization" and l.get_config().get("mean") is None:
                l.adapt(x.reshape(-1, F))          # the statistics of the (unpadded) training frames
        if mask is not None:
            x = _pad(x, mask)
        if how == "sequential":                    # Sequential (tf.keras: input_shape on the first layer)
            model = keras.Sequential(layers if k2 else [keras.Input(shape=(None, F))] + layers)
        else:                                      # functional: Input(shape=(None, F)) → layers → Model
            inp = keras.Input(shape=(None, F))
            h = inp
            for l in layers:
                h = l(h)
            model = keras.Model(inp, h)
        _randomize_keras(model, s)
        y = model.predict(x, verbose=0).astype(np.float32)
        files = save_keras(model, name, formats, out)
        np.savez_compressed(os.path.join(out, f"{name}.npz"), frames=x, outputs=y)
        bidir = any(type(l).__name__ == "Bidirectional" for l in layers)
        rnns = [l for l in layers if type(l).__name__ in ("Bidirectional", "GRU", "LSTM", "SimpleRNN")]
        # Keras' Bidirectional outputs zeros at padding frames when it returns sequences; where nothing reads
        # them afterwards (it is the last recurrent layer, no pooling), the runtime's outputs there differ.
        padding_differs = (mask is not None and type(rnns[-1]).__name__ == "Bidirectional" and pooling == "last"
                           and task != "classify")
        print(f"{name}: {', '.join(files)}; outputs {list(y.shape)}", file=sys.stderr)
        entries.append({"name": name, "framework": "tf_keras" if k2 else "keras", "version": keras.__version__,
                        "task": task, "pooling": pooling, "frame_size": F, "files": files, "options": {},
                        "steps": not bidir, "mask_value": mask, "padding_outputs_differ": padding_differs})
    return entries


# --- PyTorch -------------------------------------------------------------------------------------

def build_torch(out: str, seed: int = 12) -> list:
    import torch
    from torch import nn

    class FrameNet(nn.Module):
        """rnn → (h_n | output[:, -1] | output.mean over time | every step) → Linear heads."""

        def __init__(self, rnn: nn.Module, head: str, sizes: list, acts: list):
            super().__init__()
            self.rnn = rnn
            self.head = head
            self.fcs = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])])
            self.acts = acts

        def forward(self, x):
            bf = self.rnn.batch_first
            y, h = self.rnn(x)
            if isinstance(h, tuple):
                h = h[0]
            if self.head == "hn":
                z = torch.cat([h[-2], h[-1]], dim=-1) if self.rnn.bidirectional else h[-1]
            elif self.head == "last-output":
                z = y[:, -1] if bf else y[-1]
            elif self.head == "mean":
                z = y.mean(dim=1 if bf else 0)
            else:
                z = y if bf else y.transpose(0, 1)          # per step, as (B, T, ·)
            for fc, a in zip(self.fcs, self.acts):
                z = fc(z)
                if a == "relu":
                    z = torch.relu(z)
                elif a == "tanh":
                    z = torch.tanh(z)
                elif a == "sigmoid":
                    z = torch.sigmoid(z)
                elif a == "softmax":
                    z = torch.softmax(z, dim=-1)
            return z

    # name, task, F, rnn, head, Linear sizes, activations, formats, converter options
    cases = [
        ("ptf_gru_cls", "classify", 6, lambda: nn.GRU(6, 12, batch_first=True), "hn", [12, 3], ["linear"], ["pt"],
         {"task": "classify"}),
        ("ptf_lstm2_tag", "tag", 8, lambda: nn.LSTM(8, 16, num_layers=2), "step", [16, 4], ["linear"], ["pt"],
         {"task": "tag"}),
        ("ptf_bigru_regress", "regress", 5, lambda: nn.GRU(5, 8, bidirectional=True, batch_first=True), "step",
         [16, 2], ["linear"], ["safetensors"], {"task": "regress"}),
        ("ptf_bilstm2_cls", "classify", 4, lambda: nn.LSTM(4, 8, num_layers=2, bidirectional=True), "hn",
         [16, 12, 3], ["relu", "softmax"], ["pt_checkpoint"],
         {"task": "classify", "head": "hn", "dense_activations": ["relu", "softmax"]}),
        ("ptf_rnn_mean_cls", "classify", 3, lambda: nn.RNN(3, 10, nonlinearity="relu", batch_first=True), "mean",
         [10, 2], ["linear"], ["pt"], {"task": "classify", "head": "mean", "nonlinearity": "relu"}),
        ("ptf_lstm_last_cls", "classify", 5, lambda: nn.LSTM(5, 8), "last-output", [8, 3], ["linear"], ["pt"],
         {"task": "classify", "head": "last-output"}),
        ("ptf_gru2_regress", "regress", 4, lambda: nn.GRU(4, 10, num_layers=2, batch_first=True), "step", [10, 8, 1],
         ["tanh", "linear"], ["pt", "safetensors"], {"task": "regress", "dense_activations": ["tanh", "linear"]}),
    ]
    entries = []
    for i, (name, task, F, make_rnn, head, sizes, acts, formats, opts) in enumerate(cases):
        s = seed * 1000 + i
        torch.manual_seed(s)
        model = FrameNet(make_rnn(), head, sizes, acts).eval()
        rng = np.random.default_rng(s)
        with torch.no_grad():
            for prm in model.parameters():
                prm.copy_(torch.from_numpy(rng.uniform(-SCALE, SCALE, size=tuple(prm.shape)).astype(np.float32)))
        x = _frames(s, F)
        with torch.no_grad():
            xt = torch.from_numpy(x) if model.rnn.batch_first else torch.from_numpy(x).transpose(0, 1).contiguous()
            y = model(xt).numpy().astype(np.float32)
        files = {}
        sd = model.state_dict()
        for fmt in formats:
            if fmt == "pt":
                files["torch"] = f"{name}.pt"
                torch.save(sd, os.path.join(out, files["torch"]))
            elif fmt == "pt_checkpoint":
                files["torch"] = f"{name}.pt"
                torch.save({"epoch": 7, "model_state_dict": sd}, os.path.join(out, files["torch"]))
            elif fmt == "safetensors":
                from safetensors.torch import save_file
                files["safetensors"] = f"{name}.safetensors"
                save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(out, files["safetensors"]))
        np.savez_compressed(os.path.join(out, f"{name}.npz"), frames=x, outputs=y)
        print(f"{name}: {', '.join(files)}; outputs {list(y.shape)}", file=sys.stderr)
        pooling = "mean" if head == "mean" else "last"
        entries.append({"name": name, "framework": "torch", "version": torch.__version__.split("+")[0],
                        "task": task, "pooling": pooling, "frame_size": F, "files": files, "options": opts,
                        "steps": not model.rnn.bidirectional, "mask_value": None,
                        "batch_first": bool(model.rnn.batch_first)})
    return entries


def build(out: str, only=("keras3", "keras2", "torch")) -> list:
    """Builds the cases of the given frameworks into ``out`` and writes manifest.json."""
    os.makedirs(out, exist_ok=True)
    entries = []
    if "keras3" in only:
        entries += build_keras(out, k2=False)
    if "keras2" in only:
        entries += build_keras(out, k2=True)
    if "torch" in only:
        entries += build_torch(out)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"cases": entries}, f, indent=1)
        f.write("\n")
    return entries


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "convert", "frames"))
    ap.add_argument("--only", default="keras3,keras2,torch")
    a = ap.parse_args()
    entries = build(os.path.abspath(a.out), tuple(a.only.split(",")))
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
    print(f"{len(entries)} cases, {total} bytes in {os.path.abspath(a.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
