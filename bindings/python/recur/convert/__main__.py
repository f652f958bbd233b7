"""``python -m recur.convert SRC OUT.recur [options]`` (installed as ``recur-convert``).

Exit status 0 on success (one summary line on stdout), 1 on any conversion error (one line on stderr,
no output file written), 2 on a usage error. An unexpected exception (a bug) is still reported on one
line, as an internal error.
"""

from __future__ import annotations

import argparse
import sys

from . import FORMATS, ConvertError, Options, convert


def _list(s: str) -> list:
    return [x.strip() for x in s.split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recur-convert",
        description="Convert a trained Keras or PyTorch recurrent model to a .recur file.",
        epilog="Formats: .keras archives; .h5 (Keras 2 full models, or weights with --config); Keras 3 "
               ".weights.h5 and TF checkpoints (prefix or prefix.index) with --config; PyTorch "
               "torch.save(state_dict) files; .safetensors. See docs/CONVERT.md.")
    p.add_argument("source", help="the trained model (file, or TF checkpoint prefix)")
    p.add_argument("output", help="the .recur file to write")
    p.add_argument("--format", choices=FORMATS, help="source format (default: detected from the file)")
    v = p.add_argument_group("vocabulary")
    v.add_argument("--chars", metavar="FILE", help="text file whose characters, in order, are the vocabulary")
    v.add_argument("--vocab", metavar="FILE",
                   help="JSON: a list of tokens, a {token: id} object, or a Keras Tokenizer (to_json())")
    v.add_argument("--vocab-kind", choices=("char", "word"), help="override the vocabulary kind")
    v.add_argument("--placeholder-vocab", action="store_true",
                   help="no text vocabulary: tokens are named <0>, <1>, … (use the model by token id)")
    for name in ("pad", "unk", "bos", "eos"):
        v.add_argument(f"--{name}-id", type=int, metavar="ID", help=f"id of the {name.upper()} token")
    v.add_argument("--splitter", choices=("recur", "keras", "whitespace", "basic_english"),
                   help="how the runtime cuts text into tokens, as the training preprocessing did (default: keras "
                        "for a Keras Tokenizer, else recur); basic_english is torchtext's tokenizer")
    v.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="word vocabularies: lowercase text before lookup")
    m = p.add_argument_group("model")
    m.add_argument("--task", choices=("generate", "classify", "tag", "seq2seq", "regress"),
                   help="what the model is for (default: inferred from the layers)")
    m.add_argument("--labels", type=_list, metavar="A,B,...", help="names of the output classes or tags")
    m.add_argument("--config", metavar="FILE", help="Keras model config JSON (model.to_json()) for weights-only files")
    m.add_argument("--keras-version", metavar="X.Y",
                   help="Keras version that trained the model, when the file records none (decides hard_sigmoid)")
    m.add_argument("--name", help="model name stored as general.name")
    i = p.add_argument_group("architectures inferred from the variables (subclassed Keras models, PyTorch)")
    i.add_argument("--activation", help="recurrent layers' activation (default tanh)")
    i.add_argument("--recurrent-activation", help="GRU / LSTM gate activation (default sigmoid)")
    i.add_argument("--reset-after", action=argparse.BooleanOptionalAction, default=None,
                   help="GRU convention, for a GRU without a bias (otherwise read from the bias shape)")
    i.add_argument("--merge-mode", choices=("concat", "sum", "mul", "ave"),
                   help="Bidirectional merge mode (default: concat when the next layer takes 2H inputs)")
    i.add_argument("--mask-zero", action=argparse.BooleanOptionalAction, default=None,
                   help="the Embedding masked id 0 (Keras mask_zero=True; default False, Keras' default)")
    pd = p.add_argument_group("padding (whole-sequence models trained on padded input)")
    pd.add_argument("--pad-length", type=int, metavar="N",
                    help="the length pad_sequences(maxlen=N) cut and padded every input to")
    pd.add_argument("--padding", choices=("pre", "post"), help="side pad_sequences padded (default pre)")
    pd.add_argument("--truncating", choices=("pre", "post"), help="side pad_sequences cut (default pre)")
    s2 = p.add_argument_group("encoder-decoder (--task seq2seq)")
    s2.add_argument("--decoder", metavar="FILE", help="the decoder's file (SOURCE is then the encoder's)")
    s2.add_argument("--decoder-format", choices=FORMATS, help="the decoder file's format")
    s2.add_argument("--source-vocab", metavar="FILE", help="the source vocabulary (JSON, as --vocab)")
    s2.add_argument("--source-chars", metavar="FILE", help="the source vocabulary as a text file of characters")
    for name in ("pad", "unk", "eos"):
        s2.add_argument(f"--source-{name}-id", type=int, metavar="ID", help=f"id of the source {name.upper()} token")
    for name in ("bos", "eos"):
        s2.add_argument(f"--{name}-token", metavar="TOKEN", help=f"the target {name.upper()} token, by its text")
    s2.add_argument("--source-eos-token", metavar="TOKEN",
                    help="the source EOS token, by its text (appended to every source)")
    s2.add_argument("--reverse-source", action="store_true", help="the encoder reads the source reversed")
    s2.add_argument("--source-pad-length", type=int, metavar="N",
                    help="the length pad_sequences(maxlen=N) cut and padded every source to")
    s2.add_argument("--source-padding", choices=("pre", "post"), help="side the sources were padded (default pre)")
    s2.add_argument("--source-truncating", choices=("pre", "post"), help="side the sources were cut (default pre)")
    t = p.add_argument_group("PyTorch")
    t.add_argument("--cell", choices=("rnn", "gru", "lstm"), help="check the recurrent cell type")
    t.add_argument("--nonlinearity", choices=("tanh", "relu"), help="nn.RNN nonlinearity (default tanh)")
    t.add_argument("--dense-activations", type=_list, metavar="A,B,...",
                   help="activation after each nn.Linear, in order (linear, relu, tanh, sigmoid, softmax)")
    t.add_argument("--order", type=_list, metavar="M1,M2,...", help="module names in stack order")
    t.add_argument("--key", help="path of the state_dict inside a checkpoint dict, e.g. model_state_dict")
    t.add_argument("--head", choices=("hn", "last-output", "mean"),
                   help="--task classify: the head reads h_n (each direction's final state), output[:, -1], or "
                        "(frame models) output.mean(dim=1)")
    # --- frame models (frames.py) ---
    f = p.add_argument_group("frame models (inputs of F floats per step; docs/CONVERT.md, \"Frame models\")")
    f.add_argument("--input", choices=("tokens", "frames"),
                   help="what the model reads (default: frames when it has no embedding)")
    # --- end frame models ---
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    opts = Options(config=args.config, keras_version=args.keras_version, cell=args.cell,
                   nonlinearity=args.nonlinearity, dense_activations=args.dense_activations, order=args.order,
                   key=args.key, activation=args.activation, recurrent_activation=args.recurrent_activation,
                   reset_after=args.reset_after, merge_mode=args.merge_mode, head=args.head,
                   mask_zero=args.mask_zero, input=args.input)
    specials = {k: getattr(args, f"{k}_id") for k in ("pad", "unk", "bos", "eos") if getattr(args, f"{k}_id") is not None}
    source_specials = {k: getattr(args, f"source_{k}_id") for k in ("pad", "unk", "eos")
                       if getattr(args, f"source_{k}_id") is not None}
    tokens = {"bos": args.bos_token, "eos": args.eos_token}
    seq2seq = dict(decoder=args.decoder, decoder_format=args.decoder_format, source_vocab=args.source_vocab,
                   source_chars=args.source_chars, source_specials=source_specials,
                   source_special_tokens={"eos": args.source_eos_token}, reverse_source=args.reverse_source,
                   source_pad_length=args.source_pad_length, source_padding=args.source_padding,
                   source_truncating=args.source_truncating)
    try:
        summary = convert(args.source, args.output, vocab=args.vocab, chars=args.chars, vocab_kind=args.vocab_kind,
                          placeholder_vocab=args.placeholder_vocab, specials=specials, lowercase=args.lowercase,
                          task=args.task, labels=args.labels, format=args.format, options=opts, name=args.name,
                          special_tokens=tokens, splitter=args.splitter, pad_length=args.pad_length,
                          padding=args.padding, truncating=args.truncating, **seq2seq)
    except ConvertError as e:
        print(f"recur-convert: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("recur-convert: interrupted", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"recur-convert: error: out of memory converting {args.source}", file=sys.stderr)
        return 1
    except Exception as e:          # a bug: still one line, and the output was not written (atomic write)
        text = str(e).splitlines()[0] if str(e) else ""
        print(f"recur-convert: error: internal error converting {args.source} ({type(e).__name__}: {text}); "
              f"please report it", file=sys.stderr)
        return 1
    if summary.get("input") == "frames":
        from .frames import summary_line
        print(summary_line(args.output, summary))
        return 0
    print(f"wrote {args.output}: task {summary['task']}, {summary['layers']} layers, {summary['tensors']} tensors, "
          f"vocabulary {summary['vocabulary']}, {summary['bytes']} bytes (from {summary['source']}); "
          f"{'inferred from ' + summary['inferred'] if summary['inferred'] else 'architecture'}: "
          f"{summary['architecture']}"
          + "".join(f"; {a}" for a in summary["assumptions"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
