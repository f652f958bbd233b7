#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz target (tests/fuzz/corpus/): small valid models of every layer kind
and weight type, and models followed by a trailer (see tests/fuzz/fuzz_recur.c: a saved state of the
model, or text), so that the fuzzer starts from inputs that load and run.

    RECUR_CLI=.build-x/release/recur RECUR_LIBRARY=.build-x/release/libRecurC.so \\
        PYTHONPATH=bindings/python .venv/bin/python tests/fuzz/make_corpus.py [OUT_DIR]

Models come from `recur create` (random weights, fixed seeds) and `recur quantize`; saved states from
the Python binding. The output is deterministic for a given library version.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CELLS = ["gru", "gru-reset-before", "lstm", "peephole-lstm", "rnn", "rnn-relu"]
CHARS = "ab\u00e9 \n"   # a two-byte character and a newline among them


def main() -> None:
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus"))
    cli = os.environ.get("RECUR_CLI", "recur")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.endswith(".recur") or name.endswith(".bin"):
            os.unlink(os.path.join(out, name))

    def run(*args):
        subprocess.run([cli, *args], check=True, stdout=subprocess.DEVNULL)

    def path(name):
        return os.path.join(out, name)

    for k, cell in enumerate(CELLS):
        run("create", "--out", path(f"gen-{cell}.recur"), "--cell", cell, "--hidden", "4", "--embedding", "3",
            "--chars", CHARS, "--seed", str(10 + k))
        for qtype in ("f16", "int8", "q8", "q4"):
            run("quantize", path(f"gen-{cell}.recur"), path(f"gen-{cell}-{qtype}.recur"), "--type", qtype)
    run("create", "--out", path("gen-gru-2layers.recur"), "--cell", "gru", "--layers", "2", "--hidden", "4",
        "--embedding", "3", "--chars", CHARS, "--seed", "20")
    run("create", "--out", path("gen-lstm-ascii.recur"), "--cell", "lstm", "--hidden", "5", "--embedding", "4",
        "--seed", "21")
    for k, (task, cell, extra) in enumerate([
        ("classify", "gru", []), ("classify", "lstm", ["--merge-mode", "sum"]), ("tag", "gru", []),
        ("tag", "rnn", ["--merge-mode", "ave"]), ("seq2seq", "gru", []), ("seq2seq", "lstm", ["--layers", "2"]),
    ]):
        run("create", "--task", task, "--out", path(f"{task}-{cell}-{k}.recur"), "--cell", cell, "--hidden", "4",
            "--embedding", "3", "--seed", str(30 + k), *extra)
    run("quantize", path("classify-gru-0.recur"), path("classify-gru-0-q4.recur"), "--type", "q4")
    run("quantize", path("seq2seq-gru-4.recur"), path("seq2seq-gru-4-int8.recur"), "--type", "int8")
    # Translators with attention (format 5): additive with input feeding, general over a bidirectional encoder.
    run("create", "--task", "seq2seq", "--attention", "additive", "--input-feeding", "--out", path("attention-additive.recur"),
        "--cell", "gru", "--hidden", "4", "--embedding", "3", "--seed", "36")
    run("create", "--task", "seq2seq", "--attention", "general", "--combine", "none", "--bidirectional",
        "--out", path("attention-general-bidi.recur"), "--cell", "lstm", "--hidden", "3", "--embedding", "3", "--seed", "37")
    # Frame models (format 3): per-frame regress and tag, normalised, and a bidirectional classifier.
    for k, (task, cell, extra) in enumerate([
        ("regress", "lstm", ["--normalized", "--outputs", "2"]), ("tag", "gru", []),
        ("classify", "gru-reset-before", ["--bidirectional"]),
    ]):
        run("create", "--task", task, "--frame-size", "3", "--out", path(f"frames-{task}-{cell}.recur"), "--cell", cell,
            "--hidden", "4", "--seed", str(40 + k), *extra)
    run("quantize", path("frames-regress-lstm.recur"), path("frames-regress-lstm-int8.recur"), "--type", "int8")

    # Models followed by a trailer: a saved state (restores into the model), and text.
    import recur
    for cell in ("gru", "peephole-lstm", "rnn-q4"):
        name = f"gen-{cell}.recur" if not cell.endswith("q4") else "gen-rnn-q4.recur"
        with open(path(name), "rb") as f:
            model_bytes = f.read()
        model = recur.Model(path(name))
        state = model.new_state()
        state.feed(model.encode("ab\u00e9a b"))
        saved = state.save()
        state.close()
        model.close()
        with open(path(f"with-state-{cell}.bin"), "wb") as f:
            f.write(model_bytes + saved)
        with open(path(f"with-text-{cell}.bin"), "wb") as f:
            f.write(model_bytes + "ab\u00e9\nba a".encode())
    # A frame model followed by the bytes of frames (little-endian floats).
    import struct
    with open(path("frames-regress-lstm.recur"), "rb") as f:
        blob = f.read()
    with open(path("with-frames-regress.bin"), "wb") as f:
        f.write(blob + struct.pack("<12f", *[0.5, -1.0, 2.0, 0.0, 0.25, -0.75, 1.5, 3.0, -2.0, 0.1, 0.2, 0.3]))
    # Whole-sequence models followed by text of their vocabularies.
    for model, name, text in [("tag-gru-2.recur", "with-text-tag.bin", b"w2 w3, w5 w7."),
                              ("classify-gru-0.recur", "with-text-classify.bin", b"w4 w9 w2 w30"),
                              ("seq2seq-gru-4.recur", "with-text-seq2seq.bin", b"s3 s5 s4 s7")]:
        with open(path(model), "rb") as f:
            blob = f.read()
        with open(path(name), "wb") as f:
            f.write(blob + text)
    print(f"corpus: {len(os.listdir(out))} files, {sum(os.path.getsize(path(n)) for n in os.listdir(out))} bytes in {out}")


if __name__ == "__main__":
    main()
