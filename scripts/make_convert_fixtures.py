#!/usr/bin/env python3
"""Builds the converter's test fixtures with the real frameworks: tiny Keras and PyTorch models with random
weights, saved in every supported format, together with the frameworks' own outputs.

    pip install tensorflow-cpu tf_keras torch safetensors h5py   # once, ideally in a virtualenv
    python scripts/make_convert_fixtures.py [--out tests/fixtures/convert] [--only keras3,keras2,torch,chapter,subclassed,attention]

(``--only`` rebuilds the named groups and keeps the other cases of the manifest.)

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


def save_keras(model, name: str, formats, out: str) -> dict:
    """Saves a Keras model in each of `formats` (keras, weights_h5, h5, h5_weights, checkpoint) under `out`;
    the file names of each format (with the config JSON where the format needs one)."""
    files = {}
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
    return files


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
        files, opts = save_keras(model, name, formats, out), {}
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
        ("pt_bilstm_cls", "classify", lambda: Classifier(3), ["safetensors"], {"task": "classify", "head": "hn"}),
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


# --- The classic RNN chapter's models, written as the chapter writes them ------------------------
#
# Subclassed tf.keras models (tf_keras here, the chapter's tf.keras 2) saved the chapter's way: the char
# generator with save_weights('prefix') (a TF checkpoint), the sentiment classifier with save_weights to
# .h5 (ModelCheckpoint(save_weights_only=True)), the POS tagger with save_weights('prefix'), the
# translator's Encoder and Decoder in one tf.train.Checkpoint(optimizer=…, encoder=…, decoder=…) and, as a
# second variant, each with save_weights. None of them has a layer list to read: recur-convert infers
# the architecture from the variables (and the options the manifest lists).

SRC_WORDS = [f"s{i}" for i in range(3, 20)]          # source words (ids 1..17 after Keras' Tokenizer)
TGT_WORDS = [f"t{i}" for i in range(3, 21)]          # target words; BOS and EOS come first


def _word_tokenizer(keras, texts):
    tok = keras.preprocessing.text.Tokenizer(filters="", lower=False)
    tok.fit_on_texts(texts)
    return tok


def _set_random(model, seed, scale):
    model.set_weights(_randomize(model.get_weights(), seed, scale))


PAD_LENGTH = 24                 # the chapter's max_seqlen, scaled down
PADDED_LENGTHS = (3, 9, 17, 24, 31, 40)
SOURCE_PAD_LENGTH = 10          # the translator's sources (3…8 words) post-padded to one length


def _padded_inputs(keras, seed: int, padding: str):
    """Sentences of ids 1…V−1 (id 0 is the padding) of several lengths, some longer than PAD_LENGTH, and
    the framework's pad_sequences of them (truncating 'pre', its default). Returns (sentences as rows
    ending in -1, padded [n, PAD_LENGTH])."""
    rng = np.random.default_rng(seed + 7)
    sents = [list(rng.integers(1, V, size=n)) for n in PADDED_LENGTHS]
    padded = keras.preprocessing.sequence.pad_sequences(sents, maxlen=PAD_LENGTH, padding=padding)
    rows = np.array([x + [-1] * (max(PADDED_LENGTHS) - len(x)) for x in sents], np.int64)
    return rows, padded.astype(np.int64)


def build_chapter(out: str, seed: int = 3) -> list:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf_keras as keras
    L = keras.layers

    class CharGenModel(keras.Model):
        def __init__(self, vocab_size, num_timesteps, embedding_dim, **kwargs):
            super(CharGenModel, self).__init__(**kwargs)
            self.embedding_layer = L.Embedding(vocab_size, embedding_dim)
            self.rnn_layer = L.GRU(num_timesteps, recurrent_initializer="glorot_uniform",
                                   recurrent_activation="sigmoid", stateful=True, return_sequences=True)
            self.dense_layer = L.Dense(vocab_size)

        def call(self, x):
            x = self.embedding_layer(x)
            x = self.rnn_layer(x)
            x = self.dense_layer(x)
            return x

    class SentimentAnalysisModel(keras.Model):
        def __init__(self, vocab_size, max_seqlen, **kwargs):
            super(SentimentAnalysisModel, self).__init__(**kwargs)
            self.embedding = L.Embedding(vocab_size, max_seqlen)
            self.bilstm = L.Bidirectional(L.LSTM(max_seqlen))
            self.dense = L.Dense(64, activation="relu")
            self.out = L.Dense(1, activation="sigmoid")

        def call(self, x):
            x = self.embedding(x)
            x = self.bilstm(x)
            x = self.dense(x)
            x = self.out(x)
            return x

    class POSTaggingModel(keras.Model):
        def __init__(self, source_vocab_size, target_vocab_size, embedding_dim, max_seqlen, rnn_output_dim,
                     **kwargs):
            super(POSTaggingModel, self).__init__(**kwargs)
            self.embed = L.Embedding(source_vocab_size, embedding_dim, input_length=max_seqlen)
            self.dropout = L.SpatialDropout1D(0.2)
            self.rnn = L.Bidirectional(L.GRU(rnn_output_dim, return_sequences=True))
            self.dense = L.TimeDistributed(L.Dense(target_vocab_size))
            self.activation = L.Activation("softmax")

        def call(self, x):
            x = self.embed(x)
            x = self.dropout(x)
            x = self.rnn(x)
            x = self.dense(x)
            x = self.activation(x)
            return x

    class Encoder(keras.Model):
        def __init__(self, vocab_size, num_timesteps, embedding_dim, encoder_dim, **kwargs):
            super(Encoder, self).__init__(**kwargs)
            self.encoder_dim = encoder_dim
            self.embedding = L.Embedding(vocab_size, embedding_dim, input_length=num_timesteps)
            self.rnn = L.GRU(encoder_dim, return_sequences=False, return_state=True)

        def call(self, x, state):
            x = self.embedding(x)
            x, state = self.rnn(x, initial_state=state)
            return x, state

        def init_state(self, batch_size):
            return tf.zeros((batch_size, self.encoder_dim))

    class Decoder(keras.Model):
        def __init__(self, vocab_size, embedding_dim, num_timesteps, decoder_dim, **kwargs):
            super(Decoder, self).__init__(**kwargs)
            self.decoder_dim = decoder_dim
            self.embedding = L.Embedding(vocab_size, embedding_dim, input_length=num_timesteps)
            self.rnn = L.GRU(decoder_dim, return_sequences=True, return_state=True)
            self.dense = L.Dense(vocab_size)

        def call(self, x, state):
            x = self.embedding(x)
            x, state = self.rnn(x, state)
            x = self.dense(x)
            return x, state

    def ckpt_cleanup():
        try:
            os.remove(os.path.join(out, "checkpoint"))
        except FileNotFoundError:
            pass

    entries = []
    version = keras.__version__

    # 1. The char generator: stateful GRU, saved with save_weights('prefix') every epoch.
    best = None
    for attempt in range(8):
        s = seed * 1000 + attempt
        keras.utils.set_random_seed(s)
        model = CharGenModel(V, H, E)
        model(tf.zeros((1, 1), tf.int64))
        _set_random(model, s, _scale("gru", attempt))

        def step(t, model=model):
            return model(np.array([[t]], dtype=np.int64)).numpy()[0, -1]
        ids, margin = _greedy(step, model.reset_states)
        if best is None or _score(ids, margin) > _score(best[2], best[3]):
            best = (model, s, ids, margin)
        if _score(ids, margin) >= GOOD:
            break
    model, s, ids = best[:3]
    model.reset_states()
    tokens = _tokens(s, STREAM_STEPS)
    outputs = model(tokens[None]).numpy()[0].astype(np.float32)
    model.reset_states()
    model.save_weights(os.path.join(out, "ch_chargen.ckpt"))
    ckpt_cleanup()
    model.save_weights(os.path.join(out, "ch_chargen.weights.h5"))
    model.save(os.path.join(out, "ch_chargen.savedmodel"), save_format="tf")      # tf.keras' SavedModel
    np.savez_compressed(os.path.join(out, "ch_chargen.npz"), tokens=tokens, outputs=outputs,
                        prompt=np.array(_prompt_ids(), np.int64), greedy=np.array(ids, np.int64))
    entries.append({"name": "ch_chargen", "framework": "tf_keras", "version": version, "task": "generate",
                    "files": {"checkpoint": "ch_chargen.ckpt", "h5_weights": "ch_chargen.weights.h5",
                              "savedmodel": "ch_chargen.savedmodel"},
                    "options": {}, "chars": True, "chapter": True})

    # 2. The sentiment classifier: Embedding(V, max_seqlen) → Bidirectional(LSTM(max_seqlen)) → Dense(64,
    # relu) → Dense(1, sigmoid), the best epoch's weights saved by ModelCheckpoint(save_weights_only=True).
    s = seed * 1000 + 100
    keras.utils.set_random_seed(s)
    model = SentimentAnalysisModel(V, H)
    model(tf.zeros((1, 4), tf.int64))
    _set_random(model, s, 0.6)
    tokens = _tokens(s, SEQ_STEPS)
    outputs = model(tokens[None]).numpy()[0].astype(np.float32)
    model.save_weights(os.path.join(out, "ch_sentiment.h5"))
    model.save_weights(os.path.join(out, "ch_sentiment.ckpt"))
    ckpt_cleanup()
    # The chapter's predict: sentences cut and pre-padded with id 0 to one length (pad_sequences' defaults).
    seqs, padded = _padded_inputs(keras, s, "pre")
    np.savez_compressed(os.path.join(out, "ch_sentiment.npz"), tokens=tokens, outputs=outputs,
                        padded_tokens=seqs, padded_outputs=model(padded).numpy().astype(np.float32))
    entries.append({"name": "ch_sentiment", "framework": "tf_keras", "version": version, "task": "classify",
                    "files": {"h5_weights": "ch_sentiment.h5", "checkpoint": "ch_sentiment.ckpt"},
                    "options": {"task": "classify", "dense_activations": ["relu", "sigmoid"]}, "chars": True,
                    "chapter": True, "padded": {"pad_length": PAD_LENGTH, "padding": "pre"}})

    # 3. The POS tagger: Embedding → SpatialDropout1D → Bidirectional(GRU, sequences) →
    # TimeDistributed(Dense) → Activation(softmax), saved with save_weights('prefix').
    s = seed * 1000 + 200
    keras.utils.set_random_seed(s)
    model = POSTaggingModel(V, 6, E, SEQ_STEPS, H)
    model(tf.zeros((1, 4), tf.int64))
    _set_random(model, s, 0.6)
    tokens = _tokens(s, SEQ_STEPS)
    outputs = model(tokens[None]).numpy()[0].astype(np.float32)
    model.save_weights(os.path.join(out, "ch_pos.ckpt"))
    ckpt_cleanup()
    # The chapter's tagger predicts on sentences post-padded to one length.
    seqs, padded = _padded_inputs(keras, s, "post")
    np.savez_compressed(os.path.join(out, "ch_pos.npz"), tokens=tokens, outputs=outputs,
                        padded_tokens=seqs, padded_outputs=model(padded).numpy().astype(np.float32))
    entries.append({"name": "ch_pos", "framework": "tf_keras", "version": version, "task": "tag",
                    "files": {"checkpoint": "ch_pos.ckpt"}, "options": {"dense_activations": ["softmax"]},
                    "chars": True, "chapter": True, "padded": {"pad_length": PAD_LENGTH, "padding": "post"}})

    # 4. The translator: Encoder (Embedding → GRU, final state) and Decoder (Embedding → GRU → Dense),
    # word tokenizers (filters="", lower=False) whose target texts carry the words BOS and EOS.
    rng = np.random.default_rng(seed)
    src_texts = [" ".join(rng.choice(SRC_WORDS, size=int(rng.integers(3, 9)))) for _ in range(60)]
    tgt_texts = ["BOS " + " ".join(rng.choice(TGT_WORDS, size=int(rng.integers(3, 9)))) + " EOS" for _ in range(60)]
    src_tok = _word_tokenizer(keras, src_texts + [" ".join(SRC_WORDS)])
    tgt_tok = _word_tokenizer(keras, tgt_texts + ["BOS " + " ".join(TGT_WORDS) + " EOS"])
    with open(os.path.join(out, "ch_translate.source-tokenizer.json"), "w") as f:
        f.write(src_tok.to_json())
    with open(os.path.join(out, "ch_translate.target-tokenizer.json"), "w") as f:
        f.write(tgt_tok.to_json())
    Vs, Vt = len(src_tok.word_index) + 1, len(tgt_tok.word_index) + 1
    bos, eos = tgt_tok.word_index["BOS"], tgt_tok.word_index["EOS"]
    best = None
    for attempt in range(8):
        s = seed * 1000 + 300 + attempt
        keras.utils.set_random_seed(s)
        encoder = Encoder(Vs, 8, E, H)
        decoder = Decoder(Vt, E, 8, H)
        st = encoder.init_state(1)
        _, st = encoder(tf.zeros((1, 3), tf.int64), st)
        decoder(tf.zeros((1, 1), tf.int64), st)
        _set_random(encoder, s, _scale("gru", attempt))
        _set_random(decoder, s + 1, _scale("gru", attempt))
        sources = [src_tok.texts_to_sequences([t])[0] for t in src_texts[:10]]
        greedy, margin = [], np.inf
        for src in sources:
            _, state = encoder(np.array([src], np.int64), encoder.init_state(1))
            tok, outs = bos, []
            for _ in range(20):
                logits, state = decoder(np.array([[tok]], np.int64), state)
                o = logits.numpy()[0, -1].astype(np.float64)
                top = np.argsort(o)[::-1]
                margin = min(margin, o[top[0]] - o[top[1]])
                tok = int(top[0])
                if tok == eos:
                    break
                outs.append(tok)
            greedy.append(outs)
        score = -1 if margin <= 1e-4 else len({t for g in greedy for t in g})
        if best is None or score > best[0]:
            best = (score, encoder, decoder, s, sources, greedy)
        if score >= GOOD:
            break
    _, encoder, decoder, s, sources, greedy = best
    # Teacher-forced decoder outputs for the first source and a fixed target.
    target_in = [bos] + [tgt_tok.word_index[w] for w in TGT_WORDS[:6]]
    _, state = encoder(np.array([sources[0]], np.int64), encoder.init_state(1))
    logits, _ = decoder(np.array([target_in], np.int64), state)
    optimizer = keras.optimizers.Adam()
    checkpoint = tf.train.Checkpoint(optimizer=optimizer, encoder=encoder, decoder=decoder)
    prefix = checkpoint.save(file_prefix=os.path.join(out, "ch_translate.ckpt"))
    ckpt_cleanup()
    encoder.save_weights(os.path.join(out, "ch_translate.encoder.ckpt"))
    decoder.save_weights(os.path.join(out, "ch_translate.decoder.ckpt"))
    ckpt_cleanup()
    # The chapter translates sentences of its post-padded test batches: the encoder runs the PAD steps too.
    padded_greedy = []
    for src in keras.preprocessing.sequence.pad_sequences(sources, maxlen=SOURCE_PAD_LENGTH, padding="post"):
        _, state = encoder(np.array([src], np.int64), encoder.init_state(1))
        tok, outs = bos, []
        for _ in range(20):
            step, state = decoder(np.array([[tok]], np.int64), state)
            tok = int(np.argmax(step.numpy()[0, -1]))
            if tok == eos:
                break
            outs.append(tok)
        padded_greedy.append(outs)
    np.savez_compressed(os.path.join(out, "ch_translate.npz"), source=np.array(sources[0], np.int64),
                        padded_greedy=np.array([g + [-1] * (20 - len(g)) for g in padded_greedy], np.int64),
                        target_in=np.array(target_in, np.int64), outputs=logits.numpy()[0].astype(np.float32),
                        sources=np.array([x + [-1] * (20 - len(x)) for x in sources], np.int64),
                        greedy=np.array([g + [-1] * (20 - len(g)) for g in greedy], np.int64))
    common = {"source_vocab": "ch_translate.source-tokenizer.json", "vocab": "ch_translate.target-tokenizer.json",
              "special_tokens": {"bos": "BOS", "eos": "EOS"}, "task": "seq2seq"}
    entries.append({"name": "ch_translate", "framework": "tf_keras", "version": version, "task": "seq2seq",
                    "padded": {"source_pad_length": SOURCE_PAD_LENGTH, "source_padding": "post"},
                    "files": {"checkpoint": os.path.basename(prefix),
                              "two_checkpoints": ["ch_translate.encoder.ckpt", "ch_translate.decoder.ckpt"]},
                    "options": common, "chars": False, "chapter": True})
    for e in entries:
        print(f"{e['name']}: {', '.join(e['files'])}", file=sys.stderr)
    return entries


# --- Subclassed Keras 3 models, a PyTorch encoder-decoder and a PyTorch output[:, -1] classifier --------

def build_subclassed(out: str, seed: int = 4) -> list:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    L = keras.layers
    entries = []

    @keras.saving.register_keras_serializable(package="fixtures")
    class CharGen(keras.Model):
        def __init__(self, vocab_size=V, units=H, embedding_dim=E, **kwargs):
            super().__init__(**kwargs)
            self.embedding_layer = L.Embedding(vocab_size, embedding_dim)
            self.rnn_layer = L.LSTM(units, return_sequences=True)
            self.dense_layer = L.Dense(vocab_size)

        def call(self, x):
            return self.dense_layer(self.rnn_layer(self.embedding_layer(x)))

        def get_config(self):
            return {"vocab_size": V, "units": H, "embedding_dim": E}

    class Classifier(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.embedding = L.Embedding(V, E)
            self.gru = L.GRU(H, return_sequences=True)
            self.bigru = L.Bidirectional(L.GRU(8))
            self.hidden = L.Dense(12, activation="tanh")
            self.out = L.Dense(3, activation="softmax")

        def call(self, x):
            return self.out(self.hidden(self.bigru(self.gru(self.embedding(x)))))

    best = None
    for attempt in range(8):
        s = seed * 1000 + attempt
        keras.utils.set_random_seed(s)
        model = CharGen()
        model(np.zeros((1, 2), np.int64))
        _set_random(model, s, _scale("lstm", attempt))
        run = _graph(model)
        width = len(_prompt_ids()) + GREEDY
        ids, margin, cur = [], np.inf, list(_prompt_ids())
        for _ in range(GREEDY):
            x = np.zeros((1, width), dtype=np.int64)
            x[0, :len(cur)] = cur
            o = run(x)[0, len(cur) - 1].astype(np.float64)
            top = np.argsort(o)[::-1]
            margin = min(margin, o[top[0]] - o[top[1]])
            ids.append(int(top[0]))
            cur.append(int(top[0]))
        if best is None or _score(ids, margin) > _score(best[2], best[3]):
            best = (model, run, ids, margin, s)
        if _score(ids, margin) >= GOOD:
            break
    model, run, ids, _, s = best
    tokens = _tokens(s, STREAM_STEPS)
    outputs = run(tokens[None])[0].astype(np.float32)
    model.save(os.path.join(out, "k3_sub_gen.keras"))
    model.save_weights(os.path.join(out, "k3_sub_gen.weights.h5"))
    twin = keras.Sequential([L.Embedding(V, E), L.LSTM(H, return_sequences=True), L.Dense(V)])
    twin.build((None, None))
    with open(os.path.join(out, "k3_sub_gen.sequential-twin.json"), "w") as f:      # a refused --config
        f.write(twin.to_json())
    np.savez_compressed(os.path.join(out, "k3_sub_gen.npz"), tokens=tokens, outputs=outputs,
                        prompt=np.array(_prompt_ids(), np.int64), greedy=np.array(ids, np.int64))
    entries.append({"name": "k3_sub_gen", "framework": "keras", "version": keras.__version__, "task": "generate",
                    "files": {"keras": "k3_sub_gen.keras", "weights_h5_alone": "k3_sub_gen.weights.h5"},
                    "options": {}, "chars": True, "group": "subclassed"})

    s = seed * 1000 + 100
    keras.utils.set_random_seed(s)
    model = Classifier()
    model(np.zeros((1, 2), np.int64))
    _set_random(model, s, 0.6)
    tokens = _tokens(s, SEQ_STEPS)
    outputs = _graph(model)(tokens[None])[0].astype(np.float32)
    model.save_weights(os.path.join(out, "k3_sub_cls.weights.h5"))
    np.savez_compressed(os.path.join(out, "k3_sub_cls.npz"), tokens=tokens, outputs=outputs)
    entries.append({"name": "k3_sub_cls", "framework": "keras", "version": keras.__version__, "task": "classify",
                    "files": {"weights_h5_alone": "k3_sub_cls.weights.h5"},
                    "options": {"task": "classify", "dense_activations": ["tanh", "softmax"]},
                    "chars": True, "group": "subclassed"})

    import torch
    from torch import nn

    class LastOutput(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(V, E)
            self.lstm = nn.LSTM(E, H, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(2 * H, 3)

        def forward(self, x):
            out, _ = self.lstm(self.embedding(x))
            return self.fc(out[:, -1])

    torch.manual_seed(seed)
    m = LastOutput().eval()
    with torch.no_grad():
        for prm, val in zip(m.parameters(), _randomize([p.detach().numpy() for p in m.parameters()], seed)):
            prm.copy_(torch.from_numpy(val))
    tokens = _tokens(seed, SEQ_STEPS)
    with torch.no_grad():
        outputs = m(torch.from_numpy(tokens)[None])[0].numpy().astype(np.float32)
    torch.save(m.state_dict(), os.path.join(out, "pt_bilstm_last.pt"))
    np.savez_compressed(os.path.join(out, "pt_bilstm_last.npz"), tokens=tokens, outputs=outputs)
    entries.append({"name": "pt_bilstm_last", "framework": "torch", "version": torch.__version__.split("+")[0],
                    "task": "classify", "files": {"torch": "pt_bilstm_last.pt"},
                    "options": {"task": "classify", "head": "last-output"}, "chars": True, "group": "subclassed"})

    # An encoder-decoder in one module: state_dict keys encoder.* and decoder.*; the source ends with EOS
    # and is read reversed (EOS last), as --source-eos-id and --reverse-source declare.
    src_vocab = ["<pad>", "<unk>", "<eos>"] + [f"s{i}" for i in range(3, 18)]
    tgt_vocab = ["<pad>", "<bos>", "<eos>"] + [f"t{i}" for i in range(3, 21)]

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.ModuleDict({"embedding": nn.Embedding(len(src_vocab), E),
                                          "rnn": nn.LSTM(E, H, batch_first=True)})
            self.decoder = nn.ModuleDict({"embedding": nn.Embedding(len(tgt_vocab), E),
                                          "rnn": nn.LSTM(E, H, batch_first=True),
                                          "fc": nn.Linear(H, len(tgt_vocab))})

        def encode(self, src):                       # src: ids without EOS
            ids = torch.tensor([list(reversed(src)) + [2]])
            _, state = self.encoder["rnn"](self.encoder["embedding"](ids))
            return state

        def decode(self, ids, state):
            y, state = self.decoder["rnn"](self.decoder["embedding"](torch.tensor([ids])), state)
            return self.decoder["fc"](y)[0], state

    best = None
    rng = np.random.default_rng(seed)
    sources = [list(rng.integers(3, len(src_vocab), size=int(rng.integers(3, 9)))) for _ in range(10)]
    for attempt in range(8):
        torch.manual_seed(seed + attempt)
        m = Seq2Seq().eval()
        with torch.no_grad():
            vals = _randomize([p.detach().numpy() for p in m.parameters()], seed + attempt, _scale("lstm", attempt))
            for prm, val in zip(m.parameters(), vals):
                prm.copy_(torch.from_numpy(val))
        greedy, margin = [], np.inf
        with torch.no_grad():
            for src in sources:
                state, tok, outs = m.encode([int(x) for x in src]), 1, []
                for _ in range(20):
                    y, state = m.decode([tok], state)
                    o = y[-1].numpy().astype(np.float64)
                    top = np.argsort(o)[::-1]
                    margin = min(margin, o[top[0]] - o[top[1]])
                    tok = int(top[0])
                    if tok == 2:
                        break
                    outs.append(tok)
                greedy.append(outs)
        score = -1 if margin <= 1e-4 else len({t for g in greedy for t in g})
        if best is None or score > best[0]:
            best = (score, m, greedy)
        if score >= GOOD:
            break
    _, m, greedy = best
    target_in = [1, 5, 6, 7, 8, 9]
    with torch.no_grad():
        outputs, _ = m.decode(target_in, m.encode([int(x) for x in sources[0]]))
    torch.save(m.state_dict(), os.path.join(out, "pt_seq2seq.pt"))
    for fn, words in (("pt_seq2seq.source.json", src_vocab), ("pt_seq2seq.target.json", tgt_vocab)):
        with open(os.path.join(out, fn), "w") as f:
            json.dump(words, f)
    np.savez_compressed(os.path.join(out, "pt_seq2seq.npz"), source=np.array(sources[0], np.int64),
                        target_in=np.array(target_in, np.int64), outputs=outputs.numpy().astype(np.float32),
                        sources=np.array([list(x) + [-1] * (20 - len(x)) for x in sources], np.int64),
                        greedy=np.array([g + [-1] * (20 - len(g)) for g in greedy], np.int64))
    entries.append({"name": "pt_seq2seq", "framework": "torch", "version": torch.__version__.split("+")[0],
                    "task": "seq2seq", "files": {"torch": "pt_seq2seq.pt"},
                    "options": {"task": "seq2seq", "vocab": "pt_seq2seq.target.json",
                                "source_vocab": "pt_seq2seq.source.json", "specials": {"pad": 0, "bos": 1, "eos": 2},
                                "source_specials": {"pad": 0, "unk": 1, "eos": 2}, "reverse_source": True},
                    "chars": False, "group": "subclassed"})
    for e in entries:
        print(f"{e['name']}: {', '.join(e['files'])}", file=sys.stderr)
    return entries


# --- Keras functional encoder-decoders with attention (the Keras NMT examples' models) ---------------
#
# Two inputs; the encoder's final states start the decoder; Attention / AdditiveAttention over the
# encoder's outputs with the decoder's outputs as the query; Concatenate; Dense layers. Sources are
# post-padded with 0 (mask_zero=True) as the examples feed them. Every expected value comes from Keras:
# teacher-forced probabilities and attention scores (return_attention_scores=True) for a few
# source/target pairs, and a greedy decode run with the model itself (its probabilities at the last
# position of the growing target prefix), with the scores and the log-probability along it.

ATT_SRC = ["<pad>"] + [f"s{i}" for i in range(1, 14)]
ATT_TGT = ["<pad>", "<bos>", "<eos>"] + [f"t{i}" for i in range(3, 15)]
ATT_E, ATT_H, ATT_U = 6, 8, 10
ATT_SOURCE_LEN = 10               # the Keras input: sources post-padded to this length
ATT_MAX = 20                      # greedy decoding length limit
ATT_TARGET_LEN = ATT_MAX + 1      # decoder input width of the greedy runs (BOS + 20)
EOS_SHIFTS = (1.0, 2.0, 0.5, 3.0, 1.5, 0.0)   # the head's EOS bias, tried in turn


def _attention_cases(keras, tf_keras_mode: bool):
    """(name, build(keras) → (model, attention layer, (dec_out, enc_out)), formats)."""
    L = keras.layers
    Vs, Vt, E, H, U = len(ATT_SRC), len(ATT_TGT), ATT_E, ATT_H, ATT_U

    def make(cell, attention, order, tanh, bidirectional=False, time_distributed=False, softmax=True):
        def build():
            enc_in = keras.Input((None,), dtype="int32", name="source")
            x = L.Embedding(Vs, E, mask_zero=True, name="source_embedding")(enc_in)
            rnn = L.LSTM if cell == "lstm" else L.GRU
            if bidirectional:
                outs = L.Bidirectional(rnn(H, return_sequences=True, return_state=True), merge_mode="concat",
                                       name="encoder")(x)
                enc_out, states = outs[0], outs[1:]
                n = len(states) // 2
                init = [L.Concatenate(name=f"state_{k}")([states[k], states[n + k]]) for k in range(n)]
                units = 2 * H
            else:
                outs = rnn(H, return_sequences=True, return_state=True, name="encoder")(x)
                enc_out, init = outs[0], list(outs[1:])
                units = H
            dec_in = keras.Input((None,), dtype="int32", name="target")
            y = L.Embedding(Vt, E, mask_zero=True, name="target_embedding")(dec_in)
            dec_out = rnn(units, return_sequences=True, name="decoder")(y, initial_state=init if len(init) > 1 else init[0])
            att = attention()
            ctx = att([dec_out, enc_out])
            z = L.Concatenate(name="joined")([ctx, dec_out] if order == "ch" else [dec_out, ctx])
            if tanh:
                z = L.Dense(U, activation="tanh", name="attentional")(z)
            head = L.Dense(Vt, activation="softmax" if softmax else None, name="probabilities")
            out = (L.TimeDistributed(head, name="per_step") if time_distributed else head)(z)
            return keras.Model([enc_in, dec_in], out), att, (dec_out, enc_out), (enc_in, dec_in)
        build.softmax = softmax
        return build

    if not tf_keras_mode:
        return [
            ("k3_attn_gru_dot", make("gru", lambda: L.Attention(name="attention"), "hc", True),
             ["keras", "weights_h5"]),
            ("k3_attn_lstm_additive", make("lstm", lambda: L.AdditiveAttention(use_scale=True, name="attention"),
                                           "ch", False, time_distributed=True), ["keras"]),
            ("k3_attn_gru_scaled", make("gru", lambda: L.Attention(use_scale=True, name="attention"), "ch", False,
                                        softmax=False), ["keras"]),
            ("k3_attn_lstm_concat", make("lstm", lambda: L.Attention(use_scale=True, score_mode="concat",
                                                                     name="attention"), "hc", True), ["keras"]),
            ("k3_attn_bigru_additive", make("gru", lambda: L.AdditiveAttention(use_scale=False, name="attention"),
                                            "hc", False, bidirectional=True), ["keras"]),
        ]
    return [
        ("k2_attn_lstm_dot", make("lstm", lambda: L.Attention(name="attention"), "ch", True),
         ["h5", "h5_weights", "checkpoint"]),
        ("k2_attn_bilstm_concat", make("lstm", lambda: L.Attention(score_mode="concat", name="attention"), "hc",
                                       False, bidirectional=True, time_distributed=True), ["h5", "checkpoint"]),
    ]


def _attention_weights(model, seed: int, scale: float, eos_shift: float):
    """Random weights: ±scale (the output layer ±2.5 scale), embeddings ±1, attention scales larger (peaked attention), the head's BOS and
    PAD biases −8 (never emitted) and its EOS bias moved by eos_shift (translations of several tokens that
    end with EOS)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        for w in ws:
            w = np.asarray(w)
            if layer.name.endswith("embedding"):
                new.append(rng.uniform(-1, 1, size=w.shape).astype(np.float32))
            elif layer.name == "attention":
                new.append(np.asarray(rng.uniform(1.0, 2.5, size=w.shape) * rng.choice([-1, 1], size=w.shape)
                                      if w.ndim else rng.uniform(1.0, 2.5), dtype=np.float32).reshape(w.shape))
            else:                   # the head wider, so that the tokens depend on the context
                k = 2.5 if layer.name in ("probabilities", "per_step") else 1.0
                new.append(rng.uniform(-k * scale, k * scale, size=w.shape).astype(np.float32))
        if layer.name in ("probabilities", "per_step"):
            b = new[-1]
            b[ATT_TGT.index("<pad>")] -= 8
            b[ATT_TGT.index("<bos>")] -= 8
            b[ATT_TGT.index("<eos>")] += eos_shift
        layer.set_weights(new)


def _attention_sources(seed: int, n: int = 10) -> list:
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(1, len(ATT_SRC), size=int(rng.integers(3, 9)))] for _ in range(n)]


def build_attention(out: str, seed: int = 5) -> list:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    entries = []
    for fn, words in (("attn.source.json", ATT_SRC), ("attn.target.json", ATT_TGT)):
        with open(os.path.join(out, fn), "w") as f:
            json.dump(words, f)
    bos, eos = ATT_TGT.index("<bos>"), ATT_TGT.index("<eos>")
    for tf_keras_mode in (False, True):
        if tf_keras_mode:
            import tf_keras as keras
        else:
            import keras
        for i, (name, build, formats) in enumerate(_attention_cases(keras, tf_keras_mode)):
            best = None
            for attempt in range(12):
                s = seed * 1000 + (100 if tf_keras_mode else 0) + i * 20 + attempt
                keras.utils.set_random_seed(s)
                model, att, (dec_out, enc_out), (enc_in, dec_in) = build()
                _attention_weights(model, s, 0.7 * (1 + 0.25 * (attempt % 3)), EOS_SHIFTS[attempt % len(EOS_SHIFTS)])
                # The scores, from a twin of the attention layer (same class, config and weights): Keras 3
                # cannot take a second output from the saved model's own attention node.
                twin = type(att).from_config({**att.get_config(), "name": "attention_scores"})
                scores = twin([dec_out, enc_out], return_attention_scores=True)[1]
                twin.set_weights(att.get_weights())
                probe = keras.Model([enc_in, dec_in], [model.output, scores])
                fn_ = tf.function(lambda a, b, probe=probe: probe([a, b], training=False), reduce_retracing=True)

                def run(src_rows, tgt_rows, fn_=fn_):
                    p, sc = fn_(tf.constant(np.array(src_rows, np.int32)), tf.constant(np.array(tgt_rows, np.int32)))
                    return p.numpy().astype(np.float64), sc.numpy().astype(np.float64)

                sources = _attention_sources(s)
                padded = [x + [0] * (ATT_SOURCE_LEN - len(x)) for x in sources]
                # Greedy decoding, all sources at once: the decoder input is the prefix padded with 0 to one
                # width (masked, and later steps never change earlier outputs), so the graph is traced once.
                prefixes = [[bos] for _ in padded]
                done = [False] * len(padded)
                rows = [[] for _ in padded]
                g_logp, margin = [0.0] * len(padded), np.inf
                while not all(done):
                    tgt = [x + [0] * (ATT_TARGET_LEN - len(x)) for x in prefixes]
                    p, sc = run(padded, tgt)
                    for k, prefix in enumerate(prefixes):
                        if done[k]:
                            continue
                        o = p[k, len(prefix) - 1]
                        logp = np.log(o) if build.softmax else o - o.max() - np.log(np.exp(o - o.max()).sum())
                        top = np.argsort(logp)[::-1]
                        margin = min(margin, logp[top[0]] - logp[top[1]])
                        tok = int(top[0])
                        g_logp[k] += float(logp[tok])
                        if tok == eos:
                            done[k] = True
                            continue
                        rows[k].append(sc[k, len(prefix) - 1])
                        prefix.append(tok)
                        done[k] = len(prefix) > ATT_MAX
                greedy = [x[1:] for x in prefixes]
                g_scores = rows
                distinct = len({t for g in greedy for t in g})
                ended = sum(2 <= len(g) < ATT_MAX for g in greedy)       # several tokens, then EOS
                score = -1 if margin <= 1e-4 else distinct + 2 * ended
                print(f"  {name} seed {s}: lengths {[len(g) for g in greedy]}, margin {margin:.2g}", file=sys.stderr)
                if best is None or score > best[0]:
                    best = (score, s, model, probe, sources, padded, greedy, g_scores, g_logp)
                if distinct >= GOOD and ended >= 8:
                    break
            _, s, model, probe, sources, padded, greedy, g_scores, g_logp = best
            files = save_keras(model, name, formats, out)
            # Teacher forcing: three pairs, targets BOS + 6 tokens (one eager call: Keras 3's TimeDistributed
            # does not retrace the graph above for another batch shape correctly).
            rng = np.random.default_rng(s + 1)
            tf_targets = [[bos] + [int(t) for t in rng.integers(3, len(ATT_TGT), size=6)] for _ in range(3)]
            p, sc = [t.numpy().astype(np.float64) for t in probe([np.array(padded[:3], np.int32),
                                                                   np.array(tf_targets, np.int32)], training=False)]
            S = ATT_SOURCE_LEN
            arrays = {
                "sources": np.array([x + [-1] * (S - len(x)) for x in sources], np.int64),
                "target_in": np.array(tf_targets, np.int64),
                "outputs": p.astype(np.float32),                        # [3, 7, Vt]
                "scores": sc.astype(np.float32),                        # [3, 7, S] (PAD columns ≈ 0)
                "greedy": np.array([g + [-1] * (ATT_MAX - len(g)) for g in greedy], np.int64),
                "greedy_scores": np.array([np.concatenate([np.array(r).reshape(-1, S),
                                                           np.zeros((ATT_MAX - len(r), S))]) for r in g_scores],
                                          np.float32),                  # [10, 20, S]
                "greedy_log_probability": np.array(g_logp, np.float64),
            }
            np.savez_compressed(os.path.join(out, f"{name}.npz"), **arrays)
            print(f"{name}: {', '.join(files)}; greedy lengths {[len(g) for g in greedy]}, "
                  f"{len({t for g in greedy for t in g})} distinct tokens (seed {s})", file=sys.stderr)
            entries.append({"name": name, "framework": "tf_keras" if tf_keras_mode else "keras",
                            "version": keras.__version__, "task": "seq2seq", "files": files,
                            "options": {"task": "seq2seq", "vocab": "attn.target.json",
                                        "source_vocab": "attn.source.json", "specials": {"bos": bos, "eos": eos}},
                            "chars": False, "group": "attention", "functional": True})
    return entries


# --- Keras Tokenizers: what texts_to_sequences gives for raw text, for the runtime's encode to match ----

TOKENIZER_TEXTS = [
    "The cat sat on the mat.", "A dog, a cat and a bird!", "Is the bird on the MAT? No: it's in the tree.",
    "The tree (an old oak) stood by the river; the river ran on.", "Dogs and cats -- not birds -- sat.",
    "It's a fine day, isn't it?", "Zebras and yaks were never seen here.", "the_end #1 and @home",
]


def build_tokenizers(out: str) -> list:
    import tf_keras as keras
    T = keras.preprocessing.text.Tokenizer
    corpus = TOKENIZER_TEXTS[:5]
    cases = [
        ("tok_words", T(num_words=V)),                                  # default filters, lower, no OOV
        ("tok_words_oov", T(num_words=V, oov_token="<OOV>")),
        ("tok_words_raw", T(num_words=V, filters="", lower=False, split=" ")),
        ("tok_chars", T(num_words=V, char_level=True)),                 # lower=True; filters do not apply
    ]
    entries = []
    for name, tok in cases:
        tok.fit_on_texts(corpus)
        with open(os.path.join(out, name + ".json"), "w") as f:
            f.write(tok.to_json())
        seqs = tok.texts_to_sequences(TOKENIZER_TEXTS)
        entries.append({"name": name, "texts": TOKENIZER_TEXTS, "sequences": seqs})
    with open(os.path.join(out, "tokenizers.json"), "w") as f:
        json.dump({"framework": "tf_keras", "version": keras.__version__, "model": "ch_sentiment.h5",
                   "cases": entries}, f, indent=1)
        f.write("\n")
    print(f"tokenizers: {', '.join(e['name'] for e in entries)}", file=sys.stderr)
    return []


GROUPS = ("keras3", "keras2", "torch", "chapter", "subclassed", "tokenizers", "attention")


def _group(entry: dict) -> str:
    if "group" in entry:
        return entry["group"]
    if entry.get("chapter"):
        return "chapter"
    return {"keras": "keras3", "tf_keras": "keras2", "torch": "torch"}[entry["framework"]]


def build(out: str, only=GROUPS, merge: bool = False) -> list:
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
    if "chapter" in only:
        entries += build_chapter(out)
    if "subclassed" in only:
        entries += build_subclassed(out)
    if "tokenizers" in only:
        entries += build_tokenizers(out)
    if "attention" in only:
        entries += build_attention(out)
    manifest = os.path.join(out, "manifest.json")
    if merge and os.path.exists(manifest):          # keep the cases of the groups not rebuilt
        with open(manifest) as f:
            kept = [e for e in json.load(f)["cases"] if _group(e) not in only]
        entries = kept + entries
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"chars": "chars.txt", "prompt": PROMPT, "greedy": GREEDY, "cases": entries}, f, indent=1)
        f.write("\n")
    return entries


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "convert"))
    ap.add_argument("--only", default=",".join(GROUPS))
    a = ap.parse_args()
    only = tuple(a.only.split(","))
    entries = build(os.path.abspath(a.out), only, merge=set(only) != set(GROUPS))
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
    print(f"{len(entries)} cases, {total} bytes in {os.path.abspath(a.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
