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
    v.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="word vocabularies: lowercase text before lookup")
    m = p.add_argument_group("model")
    m.add_argument("--task", choices=("generate", "classify", "tag"),
                   help="what the model is for (default: inferred from the layers)")
    m.add_argument("--labels", type=_list, metavar="A,B,...", help="names of the output classes or tags")
    m.add_argument("--config", metavar="FILE", help="Keras model config JSON (model.to_json()) for weights-only files")
    m.add_argument("--keras-version", metavar="X.Y",
                   help="Keras version that trained the model, when the file records none (decides hard_sigmoid)")
    m.add_argument("--name", help="model name stored as general.name")
    t = p.add_argument_group("PyTorch")
    t.add_argument("--cell", choices=("rnn", "gru", "lstm"), help="check the recurrent cell type")
    t.add_argument("--nonlinearity", choices=("tanh", "relu"), help="nn.RNN nonlinearity (default tanh)")
    t.add_argument("--dense-activations", type=_list, metavar="A,B,...",
                   help="activation after each nn.Linear, in order (linear, relu, tanh, sigmoid, softmax)")
    t.add_argument("--order", type=_list, metavar="M1,M2,...", help="module names in stack order")
    t.add_argument("--key", help="path of the state_dict inside a checkpoint dict, e.g. model_state_dict")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    opts = Options(config=args.config, keras_version=args.keras_version, cell=args.cell,
                   nonlinearity=args.nonlinearity, dense_activations=args.dense_activations, order=args.order,
                   key=args.key)
    specials = {k: getattr(args, f"{k}_id") for k in ("pad", "unk", "bos", "eos") if getattr(args, f"{k}_id") is not None}
    try:
        summary = convert(args.source, args.output, vocab=args.vocab, chars=args.chars, vocab_kind=args.vocab_kind,
                          placeholder_vocab=args.placeholder_vocab, specials=specials, lowercase=args.lowercase,
                          task=args.task, labels=args.labels, format=args.format, options=opts, name=args.name)
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
    print(f"wrote {args.output}: task {summary['task']}, {summary['layers']} layers, {summary['tensors']} tensors, "
          f"vocabulary {summary['vocabulary']}, {summary['bytes']} bytes (from {summary['source']}); "
          f"{'inferred from ' + summary['inferred'] if summary['inferred'] else 'architecture'}: "
          f"{summary['architecture']}"
          + "".join(f"; {a}" for a in summary["assumptions"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
