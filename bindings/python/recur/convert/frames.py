"""Frame models: recurrent networks that step on vectors of F floats (speech features, sensor axes, the
last values of a series) instead of token ids — docs/CONVERT.md, "Frame models"; docs/FORMAT.md §11,
"Frame inputs".

A reader (``keras_frames.py``, ``torch_frames.py``) returns a :class:`~.common.Source` whose first layer is
a :class:`FrameInput` (the frame size, an optional normalisation and mask value) instead of an
:class:`~.common.Embedding`; a :class:`MeanPool` may stand between the last recurrent layer and the dense
head (Keras ``GlobalAveragePooling1D``, PyTorch ``output.mean(dim=1)``). :func:`convert` checks the stack,
settles the task (classify, tag or regress) and writes a format 3.0 file: ``model.input = "frames"``,
``model.frame_size``, ``model.pooling``, ``input.mean`` / ``input.scale`` and ``input.mask_value``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .common import ConvertError, Dense, Embedding, Recurrent, Source

FRAME_TASKS = ("classify", "tag", "regress")
TAG_ACTIVATIONS = ("softmax", "sigmoid")            # a per-step head with these is a tagger, linear a regressor


@dataclass
class FrameInput:
    """What a frame model reads: F floats per step, optionally normalised as x' = (x − mean) ⊙ scale
    before layer 0; a frame whose every feature equals ``mask_value`` is padding."""
    size: int
    mean: Optional[np.ndarray] = None
    scale: Optional[np.ndarray] = None
    mask_value: Optional[float] = None
    name: str = "input"
    notes: list = field(default_factory=list)   # what the summary line should say about the conversion


@dataclass
class MeanPool:
    """The mean over the (unmasked) steps of the last recurrent layer's outputs, read by the head."""
    name: str = "mean_pool"


def is_frames(source: Source) -> bool:
    return bool(source.layers) and isinstance(source.layers[0], FrameInput)


_CELL = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}


def describe(layers: list) -> str:
    """The architecture as the summary line prints it, e.g. ``frames(12) -> LSTM(16, last step) -> Dense(3, softmax)``."""
    out = []
    for l in layers:
        if isinstance(l, FrameInput):
            bits = [str(l.size)]
            if l.mask_value is not None:
                bits.append(f"mask {l.mask_value:g}")
            if l.mean is not None:
                bits.append("normalised")
            out.append(f"frames({', '.join(bits)})")
        elif isinstance(l, MeanPool):
            out.append("mean pool")
        elif isinstance(l, Recurrent):
            acts = l.activation if l.cell == "rnn" else f"{l.activation}/{l.recurrent_activation}"
            bits = [str(l.units), acts]
            if l.cell == "gru":
                bits.append("reset_after" if l.reset_after else "reset_before")
            bits.append("sequences" if l.return_sequences else "last step")
            inner = f"{_CELL[l.cell]}({', '.join(bits)})"
            out.append(f"Bidirectional({inner}, {l.merge_mode})" if l.bidirectional else inner)
        elif isinstance(l, Dense):
            out.append(f"Dense({l.units}, {l.activation})")
    return " -> ".join(out)


def _split(layers: list):
    inp = layers[0]
    body = layers[1:]
    pools = [i for i, l in enumerate(body) if isinstance(l, MeanPool)]
    if len(pools) > 1:
        raise ConvertError("a frame model may pool its steps once (found two mean poolings)")
    pool = pools[0] if pools else None
    return inp, body, pool


def check(layers: list) -> None:
    """The stack of a frame model fits together and suits the runtime (FORMAT.md §11, "Frame inputs")."""
    from .build import check_stack
    inp, body, pool = _split(layers)
    if not isinstance(inp.size, int) or inp.size < 1:
        raise ConvertError(f"frames of {inp.size!r} floats")
    if not body or not isinstance(body[0], Recurrent):
        first = f"'{body[0].name}' ({type(body[0]).__name__})" if body else "nothing"
        raise ConvertError(f"a frame model's first layer must be recurrent (it reads the frames); found {first}")
    for what, a in (("mean", inp.mean), ("scale", inp.scale)):
        if a is not None and tuple(a.shape) != (inp.size,):
            raise ConvertError(f"the input normalisation's {what} has shape {list(a.shape)}, expected [{inp.size}]")
    if (inp.mean is None) != (inp.scale is None):
        raise ConvertError("the input normalisation needs both a mean and a scale")
    if inp.mask_value is not None and not np.isfinite(inp.mask_value):
        raise ConvertError(f"the mask value {inp.mask_value} is not finite")
    for a, b in zip(body, body[1:]):
        if isinstance(a, Dense) and isinstance(b, Recurrent):
            raise ConvertError(f"layer '{b.name}' ({b.cell}) follows the dense layer '{a.name}'; dense layers may "
                               f"only come after the last recurrent layer")
    if pool is not None:
        before, after = body[:pool], body[pool + 1:]
        if any(isinstance(l, Dense) for l in before):
            d = next(l for l in before if isinstance(l, Dense))
            raise ConvertError(f"layer '{d.name}' (dense) comes before the mean pooling; the runtime pools the last "
                               f"recurrent layer's outputs, so only dense layers after the pooling are supported")
        if any(isinstance(l, Recurrent) for l in after):
            raise ConvertError("a recurrent layer follows the mean pooling")
        last = before[-1]
        if not last.return_sequences:
            raise ConvertError(f"the mean pooling follows '{last.name}', which returns only its last step")
        body = before + after
    # The checks of token models, with a stand-in for the input (a [1, F] table nothing reads).
    check_stack([Embedding(table=np.zeros((1, inp.size), np.float32), name=inp.name)] + body)


def settle_task(layers: list, task: Optional[str]) -> tuple:
    """(task, pooling) of a frame model: classify when a recurrent layer returns only its last step
    (pooling ``last``) or the steps are mean-pooled (``mean``); otherwise per-step outputs, ``tag`` for a
    softmax or sigmoid head, ``regress`` for a linear one. ``task`` (``--task``) decides what the layers
    cannot, and must agree with what they show."""
    _, body, pool = _split(layers)
    rec = [l for l in body if isinstance(l, Recurrent)]
    last_step = any(not l.return_sequences for l in rec)
    head = body[-1]
    if task is not None and task not in FRAME_TASKS:
        raise ConvertError(f"task '{task}' is not one of a frame model's tasks ({', '.join(FRAME_TASKS)})")
    if pool is not None or last_step:
        if task not in (None, "classify"):
            why = "mean-pools its steps" if pool is not None else f"'{rec[-1].name}' returns only its last step"
            raise ConvertError(f"--task {task}: the model {why}, so it has one output per sequence (a classifier)")
        if not isinstance(head, Dense):
            raise ConvertError(f"a frame classifier needs a dense head after '{head.name}'")
        return "classify", ("mean" if pool is not None else "last")
    if task == "classify":
        raise ConvertError(f"--task classify: every recurrent layer returns sequences and nothing pools them, so the "
                           f"model has one output per frame (tag or regress)")
    if task is not None:
        if task == "tag" and not isinstance(head, Dense):
            raise ConvertError(f"--task tag: the model ends with the recurrent layer '{head.name}', not a dense head")
        return task, "last"
    if not isinstance(head, Dense):
        raise ConvertError(f"the model ends with the recurrent layer '{head.name}' and has no dense head; its "
                           f"outputs are hidden values: give --task regress to keep them as values per frame")
    if head.activation in TAG_ACTIVATIONS:
        return "tag", "last"
    if head.activation == "linear":
        return "regress", "last"
    raise ConvertError(f"the per-frame head '{head.name}' ends with {head.activation}, which tells neither a tagger "
                       f"(softmax, sigmoid) nor a regressor (linear): give --task tag or --task regress")


def assemble(source: Source, task: Optional[str] = None, labels: Optional[list] = None,
             extra: Optional[list] = None):
    """(metadata as an ordered list of (key, value), tensors as an ordered dict) of a frame model."""
    layers = source.layers
    check(layers)
    task, pooling = settle_task(layers, task)
    inp, body, _ = _split(layers)
    body = [l for l in body if not isinstance(l, MeanPool)]
    meta: list = [("model.task", task)]
    if labels:
        if task == "regress":
            raise ConvertError("labels name classes or tags; a regress model's outputs are values")
        out_units = body[-1].units if isinstance(body[-1], Dense) else body[-1].output_size
        if len(labels) != out_units and not (out_units == 1 and len(labels) == 2):
            raise ConvertError(f"{len(labels)} labels given but the model has {out_units} outputs")
        meta.append(("model.labels", list(labels)))
    meta.append(("model.layer_count", len(body)))
    from .build import add_layer
    tensors: dict = {}
    for i, l in enumerate(body):
        add_layer(f"layer.{i}.", l, meta, tensors)
    meta += [("model.input", "frames"), ("model.frame_size", int(inp.size))]
    if pooling != "last":
        meta.append(("model.pooling", pooling))
    if inp.mask_value is not None:
        meta.append(("input.mask_value", float(inp.mask_value)))
    if inp.mean is not None:
        tensors["input.mean"] = inp.mean
        tensors["input.scale"] = inp.scale
    meta += list(extra or [])
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    return meta, tensors, task, pooling


def convert(source: Source, src: str, out: str, *, task: Optional[str], labels: Optional[Sequence[str]],
            name: Optional[str], dtypes: Optional[dict], producer: str, vocabulary_given: Sequence[str]) -> dict:
    """Writes the frame model ``source`` (read from ``src``) to ``out``; returns the summary dict."""
    from .. import format as rformat
    if vocabulary_given:
        raise ConvertError(f"{os.path.basename(src)} is a frame model (it reads frames of {source.layers[0].size} "
                           f"floats, not tokens) and has no vocabulary: leave out {', '.join(vocabulary_given)}")
    version = f" {source.framework_version}" if source.framework_version else ""
    extra = [("general.producer", producer), ("general.source", f"{source.format}{version}: {os.path.basename(src)}")]
    if name:
        extra.append(("general.name", name))
    meta, tensors, task, pooling = assemble(source, task, list(labels) if labels else None, extra)
    try:
        rformat.write(os.fspath(out), meta, tensors, dtypes)
    except rformat.FormatError as e:
        raise ConvertError(f"cannot write {out}: {e}") from None
    except OSError as e:
        raise ConvertError(f"cannot write {out}: {e.strerror or e}") from None
    body = [l for l in source.layers[1:] if not isinstance(l, MeanPool)]
    return {"task": task, "layers": len(body), "tensors": len(tensors), "bytes": os.path.getsize(out),
            "source": source.format + version, "vocabulary": 0, "input": "frames", "frame_size": source.layers[0].size,
            "pooling": pooling, "architecture": describe(source.layers),
            "assumptions": list(source.notes.get("assumptions", [])) + list(source.layers[0].notes)}


def summary_line(output: str, s: dict) -> str:
    """The CLI's line for a converted frame model."""
    task = s["task"] + (f" (pooling {s['pooling']})" if s["task"] == "classify" else "")
    line = (f"wrote {output}: task {task}, input frames of {s['frame_size']}, {s['layers']} layers: "
            f"{s['architecture']}; {s['tensors']} tensors, {s['bytes']} bytes (from {s['source']})")
    return line + "".join(f"; {a}" for a in s["assumptions"])
