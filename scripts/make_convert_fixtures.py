#!/usr/bin/env python3
"""Builds the converter's test fixtures with the real frameworks: tiny Keras and PyTorch models with random
weights, saved in every supported format, together with the frameworks' own outputs.

    pip install tensorflow-cpu tf_keras torch safetensors h5py   # once, ideally in a virtualenv
    python scripts/make_convert_fixtures.py [--out tests/fixtures/convert] [--only keras3,keras2,torch]

For each case it writes the model file(s) and ``<case>.npz`` holding ``tokens`` (a fixed token sequence),
``outputs`` (the framework's output for every step, float32) and, for character generators,
``prompt`` / ``greedy`` (the prompt's ids and 100 greedily generated ids). ``manifest.json`` lists every
case: its files, the converter options it needs, the task and how to compare. The live tests in
bindings/python/tests/test_convert_live.py call :func:`build` into a temporary folder.

Sizes are tiny on purpose (vocabulary 20, embedding 8, 16 units) so the committed files stay small.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

V, E, H = 20, 8, 16
CHARS = "abcdefghijklmnop .,\n"          # the 20-character vocabulary of every case
STREAM_STEPS = 200                      # tokens fed to the generators
SEQ_STEPS = 40                          # tokens of one classify / tag sequence
PROMPT = "hello, a deep bog. "
GREEDY = 100
assert len(CHARS) == V and len(set(CHARS)) == V


def _tokens(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, size=n).astype(np.int64)


def _prompt_ids() -> list:
    return [CHARS.index(c) for c in PROMPT]


def _randomize(arrays, seed: int, scale_others: float = 0.6):
    """Replaces every weight with uniform noise: embeddings ±1, others ±0.6 (biases included, so that
    the conversion of every bias is exercised). ReLU networks get smaller weights so that they stay
    bounded over hundreds of steps."""
    rng = np.random.default_rng(seed)
    out = []
    for a in arrays:
        scale = 1.0 if a.ndim == 2 and a.shape == (V, E) else scale_others
        out.append(rng.uniform(-scale, scale, size=a.shape).astype(np.float32))
    return out


ATTEMPTS = 24      # random initialisations tried per generator
GOOD = 8           # distinct characters wanted in the 100 greedy ones (a fixed point proves little)


def _scale(name: str, attempt: int) -> float:
    """Weight scale of an attempt: larger scales give livelier greedy text; ReLU nets stay small."""
    base = 0.25 if "relu" in name else 0.6
    return base * (1 + 0.15 * (attempt % 8))


def _score(ids, margin) -> int:
    """Distinct characters of a greedy run, or -1 when two logits came within 1e-4 of each other (the
    argmax would then depend on rounding)."""
    if ids is None or margin <= 1e-4:
        return -1
    return len(set(ids))


def _greedy(step_fn, reset_fn):
    """Greedy generation through the framework; returns (ids, smallest top-1/top-2 logit margin)."""
    reset_fn()
    out = None
    for t in _prompt_ids():
        out = step_fn(t)
    ids, margin = [], np.inf
    for _ in range(GREEDY):
        o = np.asarray(out, dtype=np.float64)
        top = np.argsort(o)[::-1]
        margin = min(margin, o[top[0]] - o[top[1]])
        ids.append(int(top[0]))
        out = step_fn(int(top[0]))
    return ids, float(margin)


# --- Keras ---------------------------------------------------------------------------------------

def _keras_cases(keras, tf_keras_mode: bool):
    L = keras.layers
    p = "k2" if tf_keras_mode else "k3"

    def emb():
        return L.Embedding(V, E)

    cases = []
    if not tf_keras_mode:
        cases += [
            (f"{p}_gru_char", "generate", lambda: [emb(), L.GRU(H, return_sequences=True), L.Dense(V)],
             ["keras", "weights_h5"]),
            (f"{p}_lstm", "generate", lambda: [emb(), L.LSTM(H, return_sequences=True), L.Dense(V, activation="softmax")],
             ["keras"]),
            (f"{p}_rnn_relu", "generate", lambda: [emb(), L.SimpleRNN(H, activation="relu", return_sequences=True), L.Dense(V)],
             ["keras"]),
            (f"{p}_gru_hard", "generate",
             lambda: [emb(), L.GRU(H, return_sequences=True, reset_after=False, recurrent_activation="hard_sigmoid"), L.Dense(V)],
             ["keras", "weights_h5"]),
            (f"{p}_stack", "generate",
             lambda: [emb(), L.GRU(H, return_sequences=True), L.Dropout(0.2), L.LSTM(H, return_sequences=True), L.Dense(V)],
             ["keras"]),
            (f"{p}_bigru_tag", "tag",
             lambda: [emb(), L.Bidirectional(L.GRU(H, return_sequences=True)), L.TimeDistributed(L.Dense(5, activation="softmax"))],
             ["keras"]),
            (f"{p}_bilstm_cls", "classify",
             lambda: [emb(), L.Bidirectional(L.LSTM(H), merge_mode="sum"), L.Dense(1, activation="sigmoid")],
             ["keras"]),
            (f"{p}_func_gru_cls", "classify",
             lambda: [emb(), L.GRU(H), L.Dense(H, activation="tanh"), L.Dense(3), L.Activation("softmax")],
             ["keras"]),
        ]
    else:
        cases += [
            (f"{p}_gru_hard", "generate",
             lambda: [emb(), L.GRU(H, return_sequences=True, reset_after=False, recurrent_activation="hard_sigmoid"), L.Dense(V)],
             ["h5", "h5_weights", "checkpoint", "keras"]),
            (f"{p}_lstm_rnn", "generate",
             lambda: [emb(), L.LSTM(H, return_sequences=True, recurrent_activation="hard_sigmoid"),
                      L.SimpleRNN(H, return_sequences=True), L.Dense(V)],
             ["h5", "checkpoint"]),
            (f"{p}_birnn_tag", "tag",
             lambda: [emb(), L.Bidirectional(L.SimpleRNN(8, return_sequences=True), merge_mode="ave"),
                      L.TimeDistributed(L.Dense(4))],
             ["h5", "checkpoint"]),
            (f"{p}_func_lstm_cls", "classify",
             lambda: [emb(), L.LSTM(H, return_sequences=True), L.Bidirectional(L.GRU(8), merge_mode="mul"),
                      L.Dense(2, activation="softmax")],
             ["h5"]),
        ]
    return cases


def _graph(model):
    """model(x) as one traced TensorFlow graph (eager RNN calls take seconds each)."""
    import tensorflow as tf
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda x: fn(tf.constant(x)).numpy()


def build_keras(out: str, tf_keras_mode: bool, seed: int = 1) -> list:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if tf_keras_mode:
        import tf_keras as keras
    else:
        import keras
    entries = []
    for i, (name, task, make, formats) in enumerate(_keras_cases(keras, tf_keras_mode)):
        best = None
        for attempt in range(ATTEMPTS):
            s = seed * 1000 + i * 50 + attempt
            keras.utils.set_random_seed(s)
            if "_func_" in name:            # the functional API: Input → layers → Model
                inp = keras.Input(shape=(None,), dtype="int64")
                x = inp
                for layer in make():
                    x = layer(x)
                model = keras.Model(inp, x)
            else:
                model = keras.Sequential(make())
                model.build((None, None))
            model.set_weights(_randomize(model.get_weights(), s, _scale(name, attempt)))
            run = _graph(model)
            if task != "generate":
                best = (model, run, s, None)
                break
            # Greedy path: re-run the growing prefix, padded to one fixed length so that the framework
            # traces its graph once (outputs at step t depend only on tokens 0..t).
            width = len(_prompt_ids()) + GREEDY

            def logits_of(prefix, run=run, width=width):
                x = np.zeros((1, width), dtype=np.int64)
                x[0, :len(prefix)] = prefix
                return run(x)[0, len(prefix) - 1]
            ids, margin = [], np.inf
            cur = list(_prompt_ids())
            for _ in range(GREEDY):
                o = logits_of(cur).astype(np.float64)
                top = np.argsort(o)[::-1]
                margin = min(margin, o[top[0]] - o[top[1]])
                ids.append(int(top[0]))
                cur.append(int(top[0]))
            if best is None or _score(ids, margin) > _score(best[3], best[4]):
                best = (model, run, s, ids, margin)
            if _score(ids, margin) >= GOOD:
                break
        model, run, s, ids = best[:4]
        files, opts = {}, {}
        for fmt in formats:
            if fmt == "keras":
                fn = f"{name}.keras"
                model.save(os.path.join(out, fn))
                files["keras"] = fn
            elif fmt == "weights_h5":
                fn, cfg = f"{name}.weights.h5", f"{name}.json"
                model.save_weights(os.path.join(out, fn))
                with open(os.path.join(out, cfg), "w") as f:
                    f.write(model.to_json())
                files["weights_h5"] = [fn, cfg]
            elif fmt == "h5":
                fn = f"{name}.h5"
                model.save(os.path.join(out, fn), save_format="h5")
                files["h5"] = fn
            elif fmt == "h5_weights":
                fn, cfg = f"{name}.weights-only.h5", f"{name}.json"
                model.save_weights(os.path.join(out, fn), save_format="h5")
                with open(os.path.join(out, cfg), "w") as f:
                    f.write(model.to_json())
                files["h5_weights"] = [fn, cfg]
            elif fmt == "checkpoint":
                prefix, cfg = f"{name}.ckpt", f"{name}.json"
                model.save_weights(os.path.join(out, prefix), save_format="tf")
                with open(os.path.join(out, cfg), "w") as f:
                    f.write(model.to_json())
                try:
                    os.remove(os.path.join(out, "checkpoint"))
                except FileNotFoundError:
                    pass
                files["checkpoint"] = [prefix, cfg]
        steps = STREAM_STEPS if task == "generate" else SEQ_STEPS
        tokens = _tokens(s, steps)
        outputs = run(tokens[None])[0].astype(np.float32)
        arrays = {"tokens": tokens, "outputs": outputs}
        if task == "generate":
            arrays["prompt"] = np.array(_prompt_ids(), dtype=np.int64)
            arrays["greedy"] = np.array(ids, dtype=np.int64)
        np.savez_compressed(os.path.join(out, f"{name}.npz"), **arrays)
        print(f"{name}: {', '.join(files)}" + (f"; greedy: {len(set(ids))} distinct characters" if ids else ""),
              file=sys.stderr)
        entries.append({"name": name, "framework": "tf_keras" if tf_keras_mode else "keras",
                        "version": keras.__version__, "task": task, "files": files, "options": opts,
                        "chars": True})
    return entries


# --- PyTorch -------------------------------------------------------------------------------------

def build_torch(out: str, seed: int = 2) -> list:
    import torch
    from torch import nn

    class Generator(nn.Module):
        def __init__(self, rnn: nn.Module, out_features: int, hidden_out: int):
            super().__init__()
            self.embed = nn.Embedding(V, E)
            self.rnn = rnn
            self.fc = nn.Linear(hidden_out, out_features)

        def forward(self, x, state=None):          # x: [B, T]
            y, state = self.rnn(self.embed(x), state)
            return self.fc(y), state

    class Classifier(nn.Module):
        def __init__(self, classes: int):
            super().__init__()
            self.embedding = nn.Embedding(V, E)
            self.lstm = nn.LSTM(E, H, batch_first=True, bidirectional=True)
            self.head = nn.Linear(2 * H, classes)

        def forward(self, x):
            _, (h_n, _) = self.lstm(self.embedding(x))
            return self.head(torch.cat([h_n[-2], h_n[-1]], dim=-1))

    cases = [
        ("pt_gru_char", "generate", lambda: Generator(nn.GRU(E, H, batch_first=True), V, H), ["pt", "safetensors"], {}),
        ("pt_lstm2", "generate", lambda: Generator(nn.LSTM(E, H, num_layers=2, batch_first=True), V, H), ["pt_checkpoint"], {}),
        ("pt_rnn_relu", "generate", lambda: Generator(nn.RNN(E, H, nonlinearity="relu", batch_first=True), V, H), ["pt"],
         {"nonlinearity": "relu"}),
        ("pt_bigru_tag", "tag", lambda: Generator(nn.GRU(E, H, num_layers=2, bidirectional=True, batch_first=True), 5, 2 * H),
         ["pt"], {"task": "tag"}),
        ("pt_bilstm_cls", "classify", lambda: Classifier(3), ["safetensors"], {"task": "classify"}),
    ]
    entries = []
    for i, (name, task, make, formats, opts) in enumerate(cases):
        best = None
        for attempt in range(ATTEMPTS):
            s = seed * 1000 + i * 50 + attempt
            torch.manual_seed(s)
            model = make().eval()
            with torch.no_grad():
                values = _randomize([p.detach().numpy() for p in model.parameters()], s, _scale(name, attempt))
                for prm, val in zip(model.parameters(), values):
                    prm.copy_(torch.from_numpy(val))
            if task != "generate":
                best = (model, s, None)
                break
            state = {"s": None}

            def step(t, model=model, state=state):
                with torch.no_grad():
                    y, state["s"] = model(torch.tensor([[t]]), state["s"])
                return y[0, -1].numpy()

            ids, margin = _greedy(step, lambda state=state: state.update(s=None))
            if best is None or _score(ids, margin) > _score(best[2], best[3]):
                best = (model, s, ids, margin)
            if _score(ids, margin) >= GOOD:
                break
        model, s, ids = best[:3]
        files = {}
        sd = model.state_dict()
        for fmt in formats:
            if fmt == "pt":
                files["torch"] = f"{name}.pt"
                torch.save(sd, os.path.join(out, files["torch"]))
            elif fmt == "pt_checkpoint":
                files["torch"] = f"{name}.pt"
                torch.save({"epoch": 3, "model_state_dict": sd, "loss": 1.25}, os.path.join(out, files["torch"]))
            elif fmt == "safetensors":
                from safetensors.torch import save_file
                files["safetensors"] = f"{name}.safetensors"
                save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(out, files["safetensors"]))
        steps = STREAM_STEPS if task == "generate" else SEQ_STEPS
        tokens = _tokens(s, steps)
        with torch.no_grad():
            y = model(torch.from_numpy(tokens)[None])
            y = y[0] if isinstance(y, tuple) else y
            outputs = y[0].numpy().astype(np.float32)
        arrays = {"tokens": tokens, "outputs": outputs}
        if task == "generate":
            arrays["prompt"] = np.array(_prompt_ids(), dtype=np.int64)
            arrays["greedy"] = np.array(ids, dtype=np.int64)
        np.savez_compressed(os.path.join(out, f"{name}.npz"), **arrays)
        print(f"{name}: {', '.join(files)}" + (f"; greedy: {len(set(ids))} distinct characters" if ids else ""),
              file=sys.stderr)
        entries.append({"name": name, "framework": "torch", "version": torch.__version__.split("+")[0],
                        "task": task, "files": files, "options": opts, "chars": True})
    return entries


def build(out: str, only=("keras3", "keras2", "torch")) -> list:
    """Builds the cases of the given frameworks into ``out``; writes chars.txt and manifest.json."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "chars.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(CHARS)
    entries = []
    if "keras3" in only:
        entries += build_keras(out, tf_keras_mode=False)
    if "keras2" in only:
        entries += build_keras(out, tf_keras_mode=True)
    if "torch" in only:
        entries += build_torch(out)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"chars": "chars.txt", "prompt": PROMPT, "greedy": GREEDY, "cases": entries}, f, indent=1)
        f.write("\n")
    return entries


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "convert"))
    ap.add_argument("--only", default="keras3,keras2,torch")
    a = ap.parse_args()
    entries = build(os.path.abspath(a.out), tuple(a.only.split(",")))
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
    print(f"{len(entries)} cases, {total} bytes in {os.path.abspath(a.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
