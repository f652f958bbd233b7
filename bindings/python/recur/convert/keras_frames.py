"""Keras frame models: ``Input(shape=(None, F))`` (or ``input_shape=(None, F)``) → [Masking] [Normalization]
→ SimpleRNN / GRU / LSTM / Bidirectional layers → [GlobalAveragePooling1D] → Dense / TimeDistributed(Dense).

Called by :func:`.keras.build_layers` for a config whose first layer is not an Embedding, with the same
weight sources (``.keras``, ``.weights.h5``, legacy ``.h5``, TF checkpoints). The layer list it returns
starts with a :class:`.frames.FrameInput`:

- ``Masking(mask_value=v)`` as the first layer → ``input.mask_value = v``. Keras skips a step whose every
  feature equals v (the state carries over, the output repeats the previous one), as the runtime does.
- ``Normalization`` (adapted, or built with ``mean=`` / ``variance=``) at the input → ``input.mean = mean``,
  ``input.scale = 1 / max(sqrt(variance), 1e-7)`` (Keras divides by ``max(sqrt(var), epsilon)``).
- ``GlobalAveragePooling1D`` after a layer that returns sequences → ``model.pooling = "mean"`` (the mean
  over unmasked steps, as Keras averages with the mask).
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np

from .common import ConvertError, Dense, Recurrent, f32
from .frames import FrameInput, MeanPool
from .mapping import keras_activation

EPSILON = 1e-7                      # keras.backend.epsilon(), Normalization's floor on the deviation
INPUT_CLASSES = ("Masking", "Normalization")
POOL_CLASSES = ("GlobalAveragePooling1D", "GlobalAvgPool1D")
# Keras' Bidirectional sets zero_output_for_mask when it returns sequences: its output at a padding frame is
# zero, where the runtime's is each direction's state carried over. The real frames agree.
PADDING_NOTE = ("at padding frames the per-frame outputs differ from Keras (its Bidirectional layer outputs zeros "
                "there, the runtime each direction's carried state); real frames agree")


def is_frame_model(layer_cfgs: list) -> bool:
    """Whether a Keras layer list reads frames: its first layer with weights or meaning is not an Embedding."""
    from .keras import NO_OPS
    for lc in layer_cfgs:
        cls = lc.get("class_name") if isinstance(lc, dict) else None
        if cls in NO_OPS:
            continue
        return cls != "Embedding"
    return False


def _declared_frame_size(lc: dict) -> Optional[int]:
    """F from a layer's ``batch_input_shape`` / ``batch_shape`` (``input_shape=(None, F)``), if recorded as
    (batch, time, F). (A Normalization layer adapted on 2-D data records other shapes; they say nothing.)"""
    cfg = lc.get("config", {})
    for key in ("batch_input_shape", "batch_shape"):
        shape = cfg.get(key)
        if isinstance(shape, list) and len(shape) == 3 and isinstance(shape[2], int) and not isinstance(shape[2], bool):
            return shape[2]
        if isinstance(shape, list) and len(shape) != 3 and lc.get("class_name") != "Normalization":
            raise ConvertError(f"layer '{cfg.get('name')}' ({lc.get('class_name')}): input shape {shape[1:]}; a frame "
                               f"model reads sequences of frames, shape (None, F)")
    return None


def _normalization(cls: str, cfg: dict, w: dict, name: str):
    """(mean, scale) of a Normalization layer over the last axis."""
    axis = cfg.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    if axis not in (-1, 2):
        raise ConvertError(f"layer '{name}' (Normalization): axis {cfg.get('axis')!r}; only the feature axis (-1) is "
                           f"supported")
    if cfg.get("invert"):
        raise ConvertError(f"layer '{name}' (Normalization): invert=True (de-normalisation) is not supported")
    if cfg.get("mean") is not None or cfg.get("variance") is not None:
        if cfg.get("mean") is None or cfg.get("variance") is None:
            raise ConvertError(f"layer '{name}' (Normalization): the config gives a mean or a variance, not both")
        mean, var = np.asarray(cfg["mean"], np.float64), np.asarray(cfg["variance"], np.float64)
        for k in ("mean", "variance", "count"):
            w.pop(k, None)
    else:
        if "mean" not in w or "variance" not in w:
            raise ConvertError(f"layer '{name}' (Normalization): no adapted mean and variance (was adapt() run?)")
        mean = f32(w.pop("mean"), f"layer '{name}' mean").astype(np.float64)
        var = f32(w.pop("variance"), f"layer '{name}' variance").astype(np.float64)
        w.pop("count", None)
    mean, var = mean.reshape(-1), var.reshape(-1)
    if mean.shape != var.shape:
        raise ConvertError(f"layer '{name}' (Normalization): mean {list(mean.shape)} and variance {list(var.shape)} "
                           f"differ in shape")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var))) or np.any(var < 0):
        raise ConvertError(f"layer '{name}' (Normalization): the mean or variance is not finite, or a variance is "
                           f"negative")
    scale = 1.0 / np.maximum(np.sqrt(var.astype(np.float32)), np.float32(EPSILON))
    return mean.astype(np.float32), scale.astype(np.float32)


def build_layers(layer_cfgs: list, weights, major: Optional[int], origin: str) -> list:
    """Keras layer configs of a frame model + a weight source → [FrameInput, recurrent…, (MeanPool), Dense…]."""
    from .keras import NO_OPS, RNN_CLASSES, _recurrent, bidirectional, dense_layer

    if major is None and "hard_sigmoid" in json.dumps(layer_cfgs):
        raise ConvertError(f"{origin}: the model uses hard_sigmoid, whose meaning depends on the Keras version, "
                           f"and the file records none; give --keras-version (e.g. 2.15 or 3.6)")
    mj = major if major is not None else 3
    inp = FrameInput(size=0)
    declared = None
    layers: list = [inp]
    width = None                       # unknown until the first recurrent layer's kernel tells F
    weighted = 0
    seen_rnn = False
    pooled = False
    pending_activation_ok = False
    for index, lc in enumerate(layer_cfgs):
        cls, cfg = lc["class_name"], lc["config"]
        name = cfg.get("name", f"layer{index}")
        if declared is None:
            declared = _declared_frame_size(lc)
        if cls in NO_OPS:
            continue
        if cls == "Activation":
            last = layers[-1]
            if isinstance(last, Dense) and last.activation == "linear" and pending_activation_ok:
                last.activation = keras_activation(cfg.get("activation"), mj, f"layer '{name}' (Activation)",
                                                   allow_softmax=True)
                pending_activation_ok = False
                continue
            raise ConvertError(f"layer '{name}' (Activation) is supported only right after a Dense layer "
                               f"without an activation")
        pending_activation_ok = False
        if cls == "Masking":
            if len(layers) > 1 or inp.mean is not None:
                where = "after Normalization" if inp.mean is not None else "after other layers"
                raise ConvertError(f"layer '{name}' (Masking) comes {where}; only a Masking layer that reads the frames "
                                   f"as they are given (the first layer) is supported")
            if inp.mask_value is not None:
                raise ConvertError(f"layer '{name}' (Masking): a second Masking layer")
            v = cfg.get("mask_value", 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise ConvertError(f"layer '{name}' (Masking): mask_value {v!r} is not a finite number")
            inp.mask_value = float(v)
            continue
        if cls == "Normalization":
            if seen_rnn or inp.mean is not None:
                raise ConvertError(f"layer '{name}' (Normalization) is supported only at the input, before the first "
                                   f"recurrent layer")
            if inp.mask_value is not None and mj < 3:
                raise ConvertError(f"layer '{name}' (Normalization) follows Masking: tf.keras' Normalization drops the "
                                   f"mask, so the padded frames reach the network as normalised zeros, which the "
                                   f"runtime cannot reproduce; normalise the frames before the model, or drop Masking")
            has_constants = cfg.get("mean") is not None
            w = {} if has_constants else weights.layer(index, cls, cfg, weighted)
            if not has_constants:
                weighted += 1
            inp.mean, inp.scale = _normalization(cls, cfg, w, name)
            if w:
                raise ConvertError(f"layer '{name}' ({cls}): unexpected weight '{sorted(w)[0]}'")
            continue
        if cls in POOL_CLASSES:
            if not seen_rnn or not isinstance(layers[-1], Recurrent) or not layers[-1].return_sequences:
                raise ConvertError(f"layer '{name}' ({cls}) must follow a recurrent layer that returns sequences "
                                   f"(the runtime averages the last recurrent layer's outputs)")
            if cfg.get("keepdims"):
                raise ConvertError(f"layer '{name}' ({cls}): keepdims=True is not supported")
            fmt = cfg.get("data_format", "channels_last")
            if fmt not in (None, "channels_last"):
                raise ConvertError(f"layer '{name}' ({cls}): data_format {fmt!r}; only channels_last")
            layers.append(MeanPool(name=name))
            pooled = True
            continue
        if cls not in ("Dense", "TimeDistributed", "Bidirectional") and cls not in RNN_CLASSES:
            raise ConvertError(f"layer '{name}' of class {cls} is not supported in a frame model (supported: Masking, "
                               f"Normalization, SimpleRNN, GRU, LSTM, Bidirectional, GlobalAveragePooling1D, Dense, "
                               f"TimeDistributed(Dense), Dropout)")
        if cls == "TimeDistributed":
            inner = cfg.get("layer", {})
            if inner.get("class_name") != "Dense":
                raise ConvertError(f"layer '{name}' (TimeDistributed) wraps {inner.get('class_name')}; only Dense "
                                   f"is supported")
        if cls in ("Dense", "TimeDistributed") and not seen_rnn:
            raise ConvertError(f"layer '{name}' ({cls}) comes before the first recurrent layer; a frame model's first "
                               f"layer must be recurrent (it reads the frames)")
        if (cls in RNN_CLASSES or cls == "Bidirectional") and pooled:
            raise ConvertError(f"layer '{name}' ({cls}) follows the average pooling")
        w = weights.layer(index, cls, cfg, weighted)
        weighted += 1
        if width is None:                  # F: the rows of the first recurrent kernel (Keras kernels are [In, G·H])
            key = "cell/kernel" if cls != "Bidirectional" else "forward_layer/cell/kernel"
            k = np.asarray(w.get(key)) if key in w else None
            if k is None or k.ndim != 2:
                raise ConvertError(f"layer '{name}' ({cls}): missing weight '{key}'" if k is None else
                                   f"layer '{name}' ({cls}) kernel has shape {list(k.shape)}, expected [F, G·H]")
            width = inp.size = int(k.shape[0])
            if declared is not None and declared != width:
                raise ConvertError(f"{origin}: the model's input shape declares frames of {declared} floats but "
                                   f"layer '{name}' ({cls}) reads {width}")
        if cls in RNN_CLASSES:
            spec, d = _recurrent(cls, cfg, w, "", width, mj, name)
            layers.append(Recurrent(input_size=width, directions=[d], name=name, **spec))
            width = spec["units"]
            seen_rnn = True
        elif cls == "Bidirectional":
            layers.append(bidirectional(cfg, w, width, mj, name))
            width = layers[-1].output_size
            seen_rnn = True
        else:
            layers.append(dense_layer(cls, cfg, w, width, mj, name))
            pending_activation_ok = layers[-1].activation == "linear"
            width = layers[-1].units
        if w:
            raise ConvertError(f"layer '{name}' ({cls}): unexpected weight '{sorted(w)[0]}'")
    weights.finish()
    if not seen_rnn:
        raise ConvertError(f"{origin}: the model has no recurrent layer (a frame model's first layer must be recurrent)")
    rec = [l for l in layers if isinstance(l, Recurrent)]
    if inp.mask_value is not None and rec[-1].bidirectional and rec[-1].return_sequences and not pooled:
        inp.notes.append(PADDING_NOTE)
    if inp.mean is not None and inp.mean.shape != (inp.size,):
        raise ConvertError(f"{origin}: the Normalization layer has {inp.mean.shape[0]} features but the frames have "
                           f"{inp.size}")
    return layers



MASK_OPS = ("NotEqual", "Any")


def _history(x) -> list:
    """The layer names a Keras 3 node argument refers to (``keras_history``)."""
    out = []
    if isinstance(x, dict):
        h = x.get("config", {}).get("keras_history") if isinstance(x.get("config"), dict) else None
        if isinstance(h, list) and h and isinstance(h[0], str):
            return [h[0]]
        for v in x.values():
            out += _history(v)
    elif isinstance(x, list):
        for v in x:
            out += _history(v)
    return out


def strip_mask_ops(cfg: dict) -> dict:
    """A Keras 3 functional model records its Masking layer's mask as op layers — ``NotEqual(input, v)`` then
    ``Any(axis=-1)`` — passed to the later layers as ``mask=``. They compute what the Masking layer means
    (a frame is padding when every feature equals v), so once checked they are dropped, with the ``mask``
    arguments that refer to them; the rest must then be a single chain. Other configs are returned as
    they are."""
    inner = cfg.get("config") if isinstance(cfg, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list) or not all(isinstance(l, dict) for l in layers):
        return cfg
    ops = [l for l in layers if l.get("class_name") in MASK_OPS and str(l.get("module", "")).startswith("keras")]
    maskings = [l for l in layers if l.get("class_name") == "Masking"]
    if not ops or len(maskings) != 1:
        return cfg
    masking = maskings[0]
    mcfg = masking.get("config", {})
    m_in = _history(masking.get("inbound_nodes", []))
    names = {l.get("config", {}).get("name") for l in ops}
    for op in ops:
        name = op.get("config", {}).get("name")
        nodes = op.get("inbound_nodes", [])
        if not isinstance(nodes, list) or len(nodes) != 1 or not isinstance(nodes[0], dict):
            raise ConvertError(f"layer '{name}' ({op['class_name']}) is not the mask of a Masking layer")
        args = nodes[0].get("args", [])
        src = _history(args)
        if op["class_name"] == "NotEqual":
            ok = (len(args) == 2 and src == m_in and isinstance(args[1], (int, float))
                  and float(args[1]) == float(mcfg.get("mask_value", 0.0)))
        else:
            ok = (len(src) == 1 and src[0] in names and op["config"].get("axis") in (-1, [-1], 2)
                  and not op["config"].get("keepdims"))
        if not ok:
            raise ConvertError(f"layer '{name}' ({op['class_name']}) is not the mask that Masking layer "
                               f"'{mcfg.get('name')}' computes; only linear stacks of layers are supported")

    def drop_masks(node):
        if isinstance(node, dict) and isinstance(node.get("kwargs"), dict) and "mask" in node["kwargs"]:
            refs = _history(node["kwargs"]["mask"])
            if refs and all(r in names for r in refs):
                node = dict(node, kwargs={k: v for k, v in node["kwargs"].items() if k != "mask"})
        return node

    kept = []
    for l in layers:
        if l in ops:
            continue
        if isinstance(l.get("inbound_nodes"), list):
            l = dict(l, inbound_nodes=[drop_masks(n) for n in l["inbound_nodes"]])
        kept.append(l)
    return dict(cfg, config=dict(inner, layers=kept))


def frame_config(cfg: dict) -> dict:
    """A Keras model config as the frame reader wants it (a copy; token models' configs are returned as they
    are): the Masking layer's mask ops dropped (:func:`strip_mask_ops`), and the frame size that the
    ``InputLayer`` declares (``Input(shape=(None, F))``, removed with it by ``model_layers``) copied onto
    the first layer, where :func:`build_layers` checks it against the first recurrent kernel."""
    cfg = strip_mask_ops(cfg)
    inner = cfg.get("config") if isinstance(cfg, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list) or not all(isinstance(l, dict) and isinstance(l.get("config"), dict)
                                               for l in layers):
        return cfg
    inputs = [i for i, l in enumerate(layers) if l.get("class_name") == "InputLayer"]
    rest = [i for i, l in enumerate(layers) if l.get("class_name") != "InputLayer"]
    if len(inputs) != 1 or not rest or not is_frame_model([layers[i] for i in rest]):
        return cfg
    icfg = layers[inputs[0]]["config"]
    shape = icfg.get("batch_shape", icfg.get("batch_input_shape"))
    first = layers[rest[0]]
    if not isinstance(shape, list) or any(k in first["config"] for k in ("batch_shape", "batch_input_shape")):
        return cfg
    layers = list(layers)
    layers[rest[0]] = dict(first, config=dict(first["config"], batch_shape=shape))
    return dict(cfg, config=dict(inner, layers=layers))
