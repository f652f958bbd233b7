"""PyTorch frame models: ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM(input_size=F, num_layers=k,
bidirectional=...)`` modules followed by ``nn.Linear`` heads, from a state_dict (``torch.save`` or
safetensors) that has no embedding.

The state_dict records the weights, not ``forward``; options say the rest:

- ``--task classify | tag | regress`` (required): one output per sequence, or the Linear applied to every
  step (a tagger's logits, or values);
- ``--head hn | last-output | mean`` for classifiers: the head reads ``h_n`` (each direction's final state:
  ``h_n[-1]``, or ``cat(h_n[-2], h_n[-1])`` for a bidirectional layer), ``output[:, -1]`` (the per-step
  output at the last frame) or ``output.mean(dim=1)``. For a unidirectional layer ``h_n`` and
  ``output[:, -1]`` are the same and ``hn`` is the default; a bidirectional classifier must say which;
- ``--dense-activations`` and ``--nonlinearity`` as for token models.

``batch_first`` changes how ``forward`` is called, not the weights: either way each sequence is T frames
of F floats.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .common import ConvertError, Dense, Options, Source, f32
from .frames import FRAME_TASKS, FrameInput, MeanPool

HEADS = ("hn", "last-output", "mean")


def wanted(tensors: "OrderedDict", opts: Options) -> bool:
    """Whether to read the state_dict as a frame model: ``--input frames``, or no module that could be the
    embedding — a 2-D ``weight`` without a bias that is named like one or whose width is a recurrent
    module's input size (a bias-free ``nn.Linear`` head is neither)."""
    if opts.input == "frames":
        return True
    if opts.input == "tokens":
        return False
    from .pytorch import _modules
    try:
        mods = _modules(tensors)
        inputs = {int(np.asarray(p[k]).shape[1]) for p in mods.values() for k in ("weight_ih_l0", "weight_ih")
                  if k in p and np.asarray(p[k]).ndim == 2}
        embeddings = [m for m, p in mods.items() if set(p) == {"weight"} and np.asarray(p["weight"]).ndim == 2
                      and ("emb" in m.lower() or int(np.asarray(p["weight"]).shape[1]) in inputs)]
        return bool(inputs) and not embeddings
    except (TypeError, AttributeError, KeyError, IndexError, ValueError):
        return False


def read(tensors: "OrderedDict", opts: Options, fmt: str, origin: str) -> Source:
    try:
        return _read(tensors, opts, fmt, origin)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as e:
        raise ConvertError(f"{origin}: unexpected tensors ({type(e).__name__}: {e})") from None


def _read(tensors: "OrderedDict", opts: Options, fmt: str, origin: str) -> Source:
    from .pytorch import _chain, _modules, _recurrent_layers, append_recurrent, ordered_modules
    if not tensors:
        raise ConvertError(f"{origin}: no tensors")
    mods, kinds = ordered_modules(tensors, opts)
    rnn_mods = [m for m, k in kinds.items() if k in ("rnn", "cell")]
    if not rnn_mods:
        raise ConvertError(f"{origin}: no recurrent module (keys like 'rnn.weight_ih_l0') found")

    task = opts.task
    if task is None:
        raise ConvertError(f"{origin}: a frame model's state_dict does not record what forward does with the "
                           f"recurrent outputs: give --task classify (one output per sequence), --task tag (the "
                           f"Linear's logits at every frame) or --task regress (values at every frame)")
    if task not in FRAME_TASKS:
        raise ConvertError(f"--task {task}: a frame model is a classify, tag or regress model")
    if opts.head is not None and opts.head not in HEADS:
        raise ConvertError(f"--head must be one of {', '.join(HEADS)} (not '{opts.head}')")
    if opts.head is not None and task != "classify":
        raise ConvertError("--head applies to classifiers only (--task classify)")

    rec_items = []
    for m in rnn_mods:
        ls = _recurrent_layers(m, mods[m], opts)
        rec_items.append((m, ls, ls[-1].output_size))
    # The first recurrent module reads the frames: the one whose input size no other module gives.
    outs = {it[2] for it in rec_items}
    starts = [it for it in rec_items if it[1][0].input_size not in outs] if not opts.order else rec_items[:1]
    first = starts[0] if len(starts) == 1 else rec_items[0]
    F = first[1][0].input_size
    rec_items = _chain(rec_items, F, lambda it: it[1][0].input_size, "recurrent modules", bool(opts.order))
    layers: list = [FrameInput(size=F, name="frames")]
    width = append_recurrent(layers, rec_items, F)

    lin_items = []
    for m, k in kinds.items():
        if k not in ("linear", "weight_only"):
            continue
        w = mods[m]["weight"]
        lin_items.append((m, mods[m], int(w.shape[0]), int(w.shape[1])))
    lin_items = [(m, p, o) for m, p, o, _ in _chain(lin_items, width, lambda it: it[3], "Linear modules",
                                                    bool(opts.order))]
    acts = opts.dense_activations
    if acts is None:
        if len(lin_items) > 1:
            raise ConvertError(f"{origin}: {len(lin_items)} Linear modules ({', '.join(m for m, _, _ in lin_items)}); "
                               f"the state_dict does not record the activations between them: give "
                               f"--dense-activations (e.g. relu,linear)")
        acts = ["linear"] * len(lin_items)
    if len(acts) != len(lin_items):
        raise ConvertError(f"--dense-activations lists {len(acts)} activations for {len(lin_items)} Linear modules")
    dense = []
    for (m, p, out), a in zip(lin_items, acts):
        w = f32(p["weight"], f"'{m}.weight'")
        b = f32(p["bias"], f"'{m}.bias'") if "bias" in p else None
        if b is not None and b.shape != (out,):
            raise ConvertError(f"'{m}.bias' has shape {list(b.shape)}, expected [{out}]")
        dense.append(Dense(kernel=w, bias=b if b is not None else np.zeros(out, np.float32), name=m, activation=a,
                           per_step=task != "classify"))

    last = layers[-1]
    notes = ["batch_first either way (it does not change the weights): each sequence is T frames of "
             f"{F} floats"]
    if task == "classify":
        if not dense:
            raise ConvertError(f"{origin}: --task classify needs a Linear head after the recurrent layers")
        head = opts.head
        if head is None:
            if last.bidirectional:
                raise ConvertError(f"{origin}: the state_dict does not show what the classifier's head reads from the "
                                   f"bidirectional layer '{last.name}': give --head hn (h_n: cat(h_n[-2], h_n[-1]), "
                                   f"each direction's final state), --head last-output (output[:, -1]: the forward "
                                   f"direction's last step and the backward direction's first) or --head mean "
                                   f"(output.mean(dim=1))")
            head = "hn"
        if head == "last-output" and last.bidirectional:
            raise ConvertError(f"{origin}: --head last-output with the bidirectional layer '{last.name}' is not "
                               f"supported: output[:, -1] holds the backward direction's first step, and the runtime's "
                               f"frame classifiers read each direction's final state (--head hn) or the mean over the "
                               f"frames (--head mean)")
        # h_n and, for a unidirectional layer, output[:, -1]: the last step (return_sequences off); mean: every
        # step, averaged by the runtime (model.pooling = mean).
        last.return_sequences = head == "mean"
        if head == "mean":
            layers.append(MeanPool(name="output.mean(dim=1)"))
        notes.append({"hn": "head reads h_n", "last-output": "head reads output[:, -1]",
                      "mean": "head reads output.mean(dim=1)"}[head]
                     + (" (h_n and output[:, -1] are the same for a unidirectional layer)"
                        if head != "mean" and not last.bidirectional else ""))
    else:
        notes.append("the Linear head is applied to every frame's output")
    layers += dense
    return Source(layers=layers, format=fmt, notes={"assumptions": notes})
