"""Keras models: ``.keras`` archives, ``.weights.h5`` with a config, legacy ``.h5`` files, TF checkpoints.

The architecture always comes from a saved Keras configuration (the archive's ``config.json``, a legacy
file's ``model_config`` attribute, or a ``model.to_json()`` file given with ``--config``), never from
defaults: activations, ``reset_after``, ``return_sequences``, ``use_bias`` and ``merge_mode`` are read
from each layer's config. ``hard_sigmoid`` means clip(0.2x + 0.5) in Keras 2 / tf.keras and
clip(x/6 + 0.5) in Keras 3; the version is the one recorded in the file (``metadata.json``, the
``keras_version`` attribute, or the config's ``keras_version``), else ``--keras-version``.

Weights are found by layer:

- Keras 3 (``.keras``, ``.weights.h5``): ``layers/<key>/vars/<i>``, ``layers/<key>/cell/vars/<i>`` (RNN),
  ``layers/<key>/{forward,backward}_layer/cell/vars/<i>`` (Bidirectional), ``layers/<key>/layer/vars/<i>``
  (TimeDistributed); ``<key>`` is the snake-case class name made unique (``dense``, ``dense_1``) and the
  ``vars`` group's ``name`` attribute is the layer's name. Variables are positional: kernel, recurrent
  kernel, bias; or kernel, bias; or embeddings.
- Legacy HDF5 (Keras 2 ``model.save('m.h5')`` / ``save_weights('w.h5')``): group ``[model_weights/]<name>``
  with a ``weight_names`` attribute (``gru/gru_cell/kernel:0`` …).
- TF checkpoints (``save_weights('prefix')``): ``layer_with_weights-<k>/<path>/.ATTRIBUTES/VARIABLE_VALUE``,
  k counting the layers that have weights.

Each is turned into paths relative to the layer — ``embeddings``, ``kernel``, ``bias``, ``cell/kernel``,
``forward_layer/cell/recurrent_kernel``, ``layer/kernel`` — and mapped by :mod:`.mapping`.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from typing import Callable, Optional

import numpy as np

from . import h5tree, tf_checkpoint
from .common import (Budget, ConvertError, Dense, Embedding, Options, Recurrent, Source, f32, load_json, read_file,
                     read_member, zip_errors)
from .mapping import keras_activation, keras_dense, keras_direction

RNN_CLASSES = {"SimpleRNN": "rnn", "GRU": "gru", "LSTM": "lstm", "GRUV2": "gru", "LSTMV2": "lstm"}
NO_OPS = {"Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise", "AlphaDropout",
          "ActivityRegularization"}
CELL_VARS = ["kernel", "recurrent_kernel", "bias"]


# --- Configuration -------------------------------------------------------------------------------

def _major(version: Optional[str]) -> Optional[int]:
    if not version:
        return None
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    m = re.match(r"\s*(\d+)", str(version))
    return int(m.group(1)) if m else None


def load_config_file(path: str, budget: Optional[Budget] = None) -> dict:
    if not os.path.exists(path):
        raise ConvertError(f"cannot read the config {path}: no such file")
    text = read_file(path, budget if budget is not None else Budget(), f"the config {os.path.basename(path)}")
    return parse_json(text, os.path.basename(path))


def parse_json(text, what: str) -> dict:
    if isinstance(text, np.ndarray) and text.ndim == 0:
        text = text[()]
    if isinstance(text, np.generic):
        text = text.item()
    if not isinstance(text, (str, bytes, bytearray)):
        raise ConvertError(f"{what}: expected a JSON string, found {type(text).__name__}")
    obj = load_json(text, what)
    if not isinstance(obj, dict):
        raise ConvertError(f"{what}: expected a JSON object (a Keras model config)")
    return obj


def config_version(cfg: dict) -> Optional[str]:
    """The Keras version a ``to_json()`` config records: tf.keras / Keras 2 write ``keras_version``; Keras 3
    writes none but marks its configs with a top-level ``"module": "keras"`` and ``registered_name``."""
    v = cfg.get("keras_version")
    if v:
        return str(v)
    if cfg.get("module") == "keras" and "registered_name" in cfg:
        return "3"
    return None


def _inbound_names(layer: dict) -> list:
    """Names of the layers feeding a functional-model layer (Keras 2 and Keras 3 node formats)."""
    names = []

    def walk(x):
        if isinstance(x, dict):
            if "keras_history" in x and isinstance(x["keras_history"], list) and x["keras_history"]:
                names.append(x["keras_history"][0])
                return
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            if len(x) >= 3 and isinstance(x[0], str) and isinstance(x[1], int):
                names.append(x[0])          # Keras 2: [name, node_index, tensor_index, kwargs]
                return
            for v in x:
                walk(v)

    walk(layer.get("inbound_nodes", []))
    return names


def model_layers(cfg: dict) -> list:
    """The layer configs of a Sequential or linear Functional model, in order, InputLayer removed."""
    try:
        from .keras_frames import frame_config         # frame models: Masking's mask ops, the Input's frame size
        return _model_layers(frame_config(cfg))
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as e:
        raise ConvertError(f"malformed model config ({type(e).__name__}: {e})") from None


def _model_layers(cfg: dict) -> list:
    cls = cfg.get("class_name")
    inner = cfg.get("config", {})
    if isinstance(inner, list):                       # Keras 2.0–2.2 Sequential: config is the list
        layers = inner
    elif isinstance(inner, dict) and isinstance(inner.get("layers"), list):
        layers = inner["layers"]
    else:
        raise ConvertError(f"the config does not describe a model with layers (class '{cls}')")
    if cls not in ("Sequential", "Functional", "Model"):
        raise ConvertError(f"model class '{cls}' is not supported (Sequential or a linear functional model)")
    out = []
    for i, l in enumerate(layers):
        if not isinstance(l, dict) or not isinstance(l.get("config"), dict) or "class_name" not in l:
            raise ConvertError(f"layer {i} of the config is malformed")
        if l["class_name"] == "InputLayer":
            continue
        out.append(l)
    if cls != "Sequential":
        prev = None
        for l in layers:
            name = l["config"].get("name")
            if l["class_name"] != "InputLayer":
                ins = _inbound_names(l)
                if len(ins) != 1 or (prev is not None and ins[0] != prev):
                    raise ConvertError(f"layer '{name}' takes its input from {ins or 'nothing'}; only linear "
                                       f"stacks of layers are supported")
            prev = name
    return out


# --- Weight sources ------------------------------------------------------------------------------

def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def _positional_names(cls: str, cfg: dict, sub: str) -> list:
    """Names of the variables in a Keras 3 ``vars`` group at ``sub`` inside a layer of class ``cls``."""
    last = sub.rsplit("/", 1)[-1] if sub else ""
    if last == "cell":
        return CELL_VARS
    if cls == "Embedding" and sub == "":
        return ["embeddings"]
    if cls == "Dense" and sub == "":
        return ["kernel", "bias"]
    if cls == "TimeDistributed" and sub == "layer":
        return ["kernel", "bias"]
    if cls == "Attention" and sub == "":              # encoder-decoders (keras_seq2seq.py)
        return (["scale"] if cfg.get("use_scale") else []) + (["concat_score_weight"]
                                                              if cfg.get("score_mode") == "concat" else [])
    if cls == "AdditiveAttention" and sub == "":
        return ["scale"] if cfg.get("use_scale", True) else []
    if cls == "Normalization" and sub == "":          # frame models (keras_frames.py)
        return ["mean", "variance", "count"]
    return []


class Keras3Weights:
    """Weights of a Keras 3 ``model.weights.h5`` (inside a ``.keras`` archive or saved alone)."""

    def __init__(self, h5file, origin: str):
        self.f = h5file
        self.origin = origin
        if "layers" not in self.f:
            raise ConvertError(f"{origin}: no 'layers' group (not a Keras 3 weights file?)")
        self.groups = self.f["layers"]
        self.by_name = {}
        if not isinstance(self.groups, h5tree.Group):
            raise ConvertError(f"{origin}: 'layers' is not a group")
        for key in self.groups:
            g = self.groups[key]
            v = g.get("vars") if isinstance(g, h5tree.Group) else None
            n = v.attrs.get("name") if v is not None else None
            if isinstance(n, bytes):
                n = n.decode("utf-8", "replace")
            if n is not None:
                self.by_name[str(n)] = key
        self.counts: dict = {}
        self.used: set = set()

    def layer(self, index: int, cls: str, cfg: dict, weighted_index: int) -> dict:
        name = cfg.get("name")
        base = _snake(cls)
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        key = self.by_name.get(name) or (base if n == 0 else f"{base}_{n}")
        if key not in self.groups:
            raise ConvertError(f"{self.origin}: no weights for layer '{name}' ({cls}); expected group 'layers/{key}'")
        self.used.add(key)
        out = {}
        g = self.groups[key]

        def walk(group, sub):
            for k in group:
                item = group[k]
                if k == "vars":
                    names = _positional_names(cls, cfg, sub)
                    for d in item.keys():
                        if not d.isdigit() or int(d) >= len(names):
                            raise ConvertError(f"{self.origin}: layer '{name}' ({cls}) has an unexpected variable "
                                               f"'{item.name}/{d}' (expected {', '.join(names) or 'none'})")
                        out[(sub + "/" if sub else "") + names[int(d)]] = np.asarray(item[d])
                elif hasattr(item, "keys"):
                    walk(item, (sub + "/" if sub else "") + k)

        walk(g, "")
        return out

    def finish(self) -> None:
        extra = [k for k in self.groups if k not in self.used and _has_datasets(self.groups[k])]
        if extra:
            raise ConvertError(f"{self.origin}: weights for 'layers/{extra[0]}' match no layer of the config")


def _has_datasets(g) -> bool:
    found = []
    g.visititems(lambda n, o: found.append(n) if not hasattr(o, "keys") else None)
    return bool(found)


def _rel_from_legacy(cls: str, wn: str, i: int, n: int) -> str:
    """``bidirectional/forward_gru/gru_cell/kernel:0`` → ``forward_layer/cell/kernel`` (by class)."""
    parts = wn.split("/")
    base = parts[-1].split(":")[0]
    if cls in RNN_CLASSES:
        return "cell/" + base
    if cls == "Bidirectional":
        comps = parts[1:-1]
        if any(c.startswith("forward") for c in comps):
            d = "forward_layer"
        elif any(c.startswith("backward") for c in comps):
            d = "backward_layer"
        else:
            d = "forward_layer" if i < n // 2 else "backward_layer"
        return d + "/cell/" + base
    if cls == "TimeDistributed":
        return "layer/" + base
    return base


def _names(value, what: str) -> list:
    """An HDF5 attribute that lists names (``layer_names``, ``weight_names``) as a list of str."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = list(value)
    if not isinstance(value, list):
        raise ConvertError(f"{what} is not a list of names (found {type(value).__name__})")
    out = []
    for x in value:
        if isinstance(x, (bytes, np.bytes_)):
            x = bytes(x).decode("utf-8", "replace")
        elif not isinstance(x, str):
            raise ConvertError(f"{what} holds {type(x).__name__}, not a name")
        out.append(str(x))
    return out


class LegacyWeights:
    """Weights of a Keras 2 HDF5 file: ``<root>/<layer name>`` groups with ``weight_names`` attributes."""

    def __init__(self, root, origin: str):
        self.root = root
        self.origin = origin
        names = root.attrs.get("layer_names")
        self.layer_names = _names(names, f"{origin}: attribute 'layer_names'") if names is not None else list(root)
        self.used: set = set()

    def layer(self, index: int, cls: str, cfg: dict, weighted_index: int) -> dict:
        name = cfg.get("name")
        if name not in self.root:
            raise ConvertError(f"{self.origin}: no weights for layer '{name}' ({cls})")
        g = self.root[name]
        self.used.add(name)
        wns = _names(g.attrs.get("weight_names", []), f"{self.origin}: attribute 'weight_names' of layer '{name}'")
        out = {}
        for i, wn in enumerate(wns):
            if wn not in g:
                raise ConvertError(f"{self.origin}: weight '{wn}' of layer '{name}' is listed but missing")
            out[_rel_from_legacy(cls, wn, i, len(wns))] = np.asarray(g[wn])
        return out

    def finish(self) -> None:
        for n in self.layer_names:
            if n in self.used or n not in self.root:
                continue
            wns = _names(self.root[n].attrs.get("weight_names", []), f"{self.origin}: attribute 'weight_names' of '{n}'")
            if wns and n != "top_level_model_weights":
                raise ConvertError(f"{self.origin}: weights for layer '{n}' match no layer of the config")


class CheckpointWeights:
    """Weights of a TF object checkpoint written by Keras ``save_weights('prefix')``."""

    SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"

    def __init__(self, tensors: dict, origin: str):
        self.origin = origin
        self.layers: dict = {}
        for name, arr in tensors.items():
            if ".OPTIMIZER_SLOT" in name or not name.endswith(self.SUFFIX):
                continue
            head, _, rest = name[: -len(self.SUFFIX)].partition("/")
            m = re.fullmatch(r"layer_with_weights-(\d+)", head)
            if m:
                self.layers.setdefault(int(m.group(1)), {})[rest] = arr
        if not self.layers:
            raise ConvertError(f"{origin}: no 'layer_with_weights-N/...' variables (not a Keras save_weights checkpoint?)")
        self.used: set = set()

    def layer(self, index: int, cls: str, cfg: dict, weighted_index: int) -> dict:
        if weighted_index not in self.layers:
            raise ConvertError(f"{self.origin}: no variables 'layer_with_weights-{weighted_index}/...' for layer "
                               f"'{cfg.get('name')}' ({cls})")
        self.used.add(weighted_index)
        return dict(self.layers[weighted_index])

    def finish(self) -> None:
        extra = sorted(set(self.layers) - self.used)
        if extra:
            raise ConvertError(f"{self.origin}: variables 'layer_with_weights-{extra[0]}/...' match no layer of the config")


# --- Layers --------------------------------------------------------------------------------------

def _take(w: dict, key: str, layer: str, cls: str, required: bool = True):
    if key not in w:
        if required:
            raise ConvertError(f"layer '{layer}' ({cls}): missing weight '{key}'")
        return None
    return w.pop(key)


def _recurrent(cls: str, cfg: dict, w: dict, prefix: str, width: int, major: int, layer: str,
               directions_of: Optional[list] = None):
    """One Keras RNN layer config + its weights at ``prefix`` (``""`` or ``forward_layer/``) → (spec, Direction)."""
    cell = RNN_CLASSES[cls]
    units = cfg.get("units")
    if not isinstance(units, int) or units < 1:
        raise ConvertError(f"layer '{layer}' ({cls}): 'units' is {units!r}")
    act = keras_activation(cfg.get("activation", "tanh"), major, f"layer '{layer}' ({cls}) activation")
    ract = "sigmoid"
    if cell != "rnn":
        if "recurrent_activation" not in cfg:
            raise ConvertError(f"layer '{layer}' ({cls}): the config has no 'recurrent_activation'")
        ract = keras_activation(cfg["recurrent_activation"], major, f"layer '{layer}' ({cls}) recurrent_activation")
    if cfg.get("go_backwards") and not prefix.startswith("backward"):
        raise ConvertError(f"layer '{layer}' ({cls}): go_backwards=True is not supported outside Bidirectional")
    use_bias = cfg.get("use_bias", True)
    k = _take(w, prefix + "cell/kernel", layer, cls)
    u = _take(w, prefix + "cell/recurrent_kernel", layer, cls)
    b = _take(w, prefix + "cell/bias", layer, cls, required=bool(use_bias))
    reset_after = True
    if cell == "gru":
        if "reset_after" in cfg:
            reset_after = bool(cfg["reset_after"])
        elif b is not None:
            reset_after = np.asarray(b).ndim == 2          # Keras < 2.3 configs have no key: bias shape tells
        else:
            raise ConvertError(f"layer '{layer}' ({cls}): the config has no 'reset_after' and the layer no bias")
    d = keras_direction(cell, units, width, k, u, b, reset_after, f"layer '{layer}' ({cls}){' ' + prefix.rstrip('/') if prefix else ''}")
    spec = dict(cell=cell, units=units, activation=act, recurrent_activation=ract, reset_after=reset_after,
                return_sequences=bool(cfg.get("return_sequences", False)))
    return spec, d


def build_layers(layer_cfgs: list, weights, major: Optional[int], origin: str) -> list:
    """Keras layer configs + a weight source → the converter's layer list."""
    # --- frame models (no Embedding: Input(shape=(None, F))): keras_frames.py ---
    from . import keras_frames
    if keras_frames.is_frame_model(layer_cfgs):
        return keras_frames.build_layers(layer_cfgs, weights, major, origin)
    # --- end frame models ---
    def version_needed(what):
        if major is None:
            raise ConvertError(f"{origin}: {what} uses hard_sigmoid, whose meaning depends on the Keras version, "
                               f"and the file records none; give --keras-version (e.g. 2.15 or 3.6)")
        return major

    # Fail early if hard_sigmoid appears and the version is unknown.
    if major is None and "hard_sigmoid" in json.dumps(layer_cfgs):
        version_needed("the model")
    mj = major if major is not None else 3

    layers: list = []
    width = None
    weighted = 0
    pending_activation_ok = False
    for index, lc in enumerate(layer_cfgs):
        cls, cfg = lc["class_name"], lc["config"]
        name = cfg.get("name", f"layer{index}")
        if cls in NO_OPS:
            continue
        if cls == "Activation":
            last = layers[-1] if layers else None
            if isinstance(last, Dense) and last.activation == "linear" and pending_activation_ok:
                last.activation = keras_activation(cfg.get("activation"), mj, f"layer '{name}' (Activation)",
                                                   allow_softmax=True)
                pending_activation_ok = False
                continue
            raise ConvertError(f"layer '{name}' (Activation) is supported only right after a Dense layer "
                               f"without an activation")
        pending_activation_ok = False
        if cls not in ("Embedding", "Dense", "TimeDistributed", "Bidirectional") and cls not in RNN_CLASSES:
            raise ConvertError(f"layer '{name}' of class {cls} is not supported (supported: Embedding, SimpleRNN, "
                               f"GRU, LSTM, Bidirectional, Dense, TimeDistributed(Dense), Dropout, SpatialDropout1D)")
        if cls == "TimeDistributed":
            inner = cfg.get("layer", {})
            if inner.get("class_name") != "Dense":
                raise ConvertError(f"layer '{name}' (TimeDistributed) wraps {inner.get('class_name')}; only Dense "
                                   f"is supported")
        w = weights.layer(index, cls, cfg, weighted)
        weighted += 1
        if cls == "Embedding":
            if layers:
                raise ConvertError(f"layer '{name}' (Embedding) must be the first layer")
            table = f32(_take(w, "embeddings", name, cls), f"layer '{name}' embeddings")
            V, E = cfg.get("input_dim"), cfg.get("output_dim")
            if tuple(table.shape) != (V, E):
                raise ConvertError(f"layer '{name}' (Embedding) embeddings have shape {list(table.shape)}, expected "
                                   f"[{V}, {E}] (input_dim, output_dim)")
            layers.append(Embedding(table=table, name=name, mask_zero=bool(cfg.get("mask_zero", False))))
            width = E
        elif width is None:
            raise ConvertError(f"layer '{name}' ({cls}): the model must start with an Embedding layer")
        elif cls in RNN_CLASSES:
            spec, d = _recurrent(cls, cfg, w, "", width, mj, name)
            layers.append(Recurrent(input_size=width, directions=[d], name=name, **spec))
            width = spec["units"]
        elif cls == "Bidirectional":
            layers.append(bidirectional(cfg, w, width, mj, name))
            width = layers[-1].output_size
        elif cls in ("Dense", "TimeDistributed"):
            layers.append(dense_layer(cls, cfg, w, width, mj, name))
            pending_activation_ok = layers[-1].activation == "linear"
            width = layers[-1].units
        if w:
            raise ConvertError(f"layer '{name}' ({cls}): unexpected weight '{sorted(w)[0]}'")
    weights.finish()
    return layers


_MALFORMED = (TypeError, AttributeError, KeyError, IndexError, ValueError)


def _source(layer_cfgs, make_weights, version, fmt, origin) -> Source:
    """The layers of ``layer_cfgs`` with the weights of ``make_weights()`` (a weight source is made here,
    inside the guard: a file can give its groups and attributes any type)."""
    try:
        layers = build_layers(layer_cfgs, make_weights(), _major(version), origin)
    except _MALFORMED as e:
        # A config that is valid JSON but not a Keras config (a name that is not a string, a layer
        # that is not an object, ...).
        raise ConvertError(f"{origin}: malformed model config ({type(e).__name__}: {e})") from None
    notes = {"keras.version": str(version)} if version else {}
    notes["mask_zero"] = bool(layers[0].mask_zero) if layers and isinstance(layers[0], Embedding) else False
    return Source(layers=layers, format=fmt, framework_version=str(version or ""), notes=notes)


def _from_config(cfg, make_weights, version, fmt, origin, opts) -> Source:
    """A Sequential or functional model's config with its weights: an encoder-decoder graph (two inputs,
    attention) by keras_seq2seq.py, a linear stack by :func:`build_layers`."""
    from . import keras_seq2seq
    if keras_seq2seq.is_graph(cfg):
        try:
            return keras_seq2seq.read(cfg, make_weights, version, fmt, origin, opts)
        except _MALFORMED as e:
            raise ConvertError(f"{origin}: malformed model config ({type(e).__name__}: {e})") from None
    return _source(model_layers(cfg), make_weights, version, fmt, origin)


# --- Entry points --------------------------------------------------------------------------------

def read_archive(path: str, opts: Options, budget: Optional[Budget] = None) -> Source:
    """A ``.keras`` archive (Keras 3, or tf.keras ≥ 2.13 saving in the same format)."""
    budget = budget if budget is not None else Budget()
    origin = os.path.basename(path)
    try:
        z = zipfile.ZipFile(path)
    except zip_errors() as e:
        raise ConvertError(f"{origin}: not a readable .keras zip archive ({e})") from None
    with z:
        names = z.namelist()
        for need in ("config.json", "model.weights.h5"):
            if need not in names:
                raise ConvertError(f"{origin}: the archive has no {need}")
        cfg = parse_json(read_member(z, "config.json", budget, origin), f"{origin}: config.json")
        meta = (parse_json(read_member(z, "metadata.json", budget, origin), f"{origin}: metadata.json")
                if "metadata.json" in names else {})
        blob = read_member(z, "model.weights.h5", budget, origin)
    version = opts.keras_version or meta.get("keras_version") or config_version(cfg)
    f = h5tree.read(blob, f"{origin}: model.weights.h5", budget)
    del blob
    if not is_layer_list(cfg):              # a subclassed model: its config is its own get_config()
        return _inferred(keras3_modules(f, origin), opts, version, "keras", origin, ordered=False)
    return _from_config(cfg, lambda: Keras3Weights(f, origin), version, "keras", origin, opts)


def _config_from_opts(opts: Options, origin: str, budget: Optional[Budget] = None) -> Optional[dict]:
    """The --config file's model config, or None: without one (or with a subclassed model's config) the
    architecture is inferred from the variables."""
    if not opts.config:
        return None
    return load_config_file(opts.config, budget)


def read_h5(path: str, opts: Options, budget: Optional[Budget] = None) -> Source:
    """``.h5`` files: a legacy full model (``model_config`` attribute), a legacy weights-only file
    (``layer_names`` attribute; needs --config), or a Keras 3 ``.weights.h5`` (needs --config)."""
    budget = budget if budget is not None else Budget()
    origin = os.path.basename(path)
    f = h5tree.read(path, origin, budget)
    if ("layers" in f or "vars" in f) and "layer_names" not in f.attrs and "model_config" not in f.attrs:
        cfg = _config_from_opts(opts, origin, budget)
        version = opts.keras_version or (config_version(cfg) if cfg else None)
        if not is_layer_list(cfg):
            return _inferred(keras3_modules(f, origin), opts, version, "keras-weights-h5", origin, ordered=False)
        by_attribute = [k for k in f if k not in ("layers", "vars", "optimizer") and isinstance(f[k], h5tree.Group)]
        if "layers" not in f or by_attribute:
            raise ConvertError(f"{origin}: the weights are grouped by attribute ({', '.join(by_attribute) or 'no layers group'}), "
                               f"as a subclassed model saves them, not by the layers of the --config model; "
                               f"leave out --config to infer the architecture from the variables")
        return _from_config(cfg, lambda: Keras3Weights(f, origin), version, "keras-weights-h5", origin, opts)
    version = opts.keras_version or f.attrs.get("keras_version")
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    if "model_config" in f.attrs and not opts.config:
        cfg = parse_json(f.attrs["model_config"], f"{origin}: model_config")
        root = f["model_weights"] if "model_weights" in f else None
        if root is None:
            raise ConvertError(f"{origin}: the file has a model config but no 'model_weights' group")
        return _from_config(cfg, lambda: LegacyWeights(root, origin), version, "keras-h5", origin, opts)
    root = f["model_weights"] if "model_weights" in f else f
    if "layer_names" not in root.attrs:
        raise ConvertError(f"{origin}: not a Keras HDF5 file (no 'layer_names' attribute and no 'layers' group)")
    cfg = _config_from_opts(opts, origin, budget)
    version = version or (config_version(cfg) if cfg else None)
    if not is_layer_list(cfg):
        return _inferred(legacy_modules(root, origin), opts, version, "keras-h5", origin, ordered=True)
    return _from_config(cfg, lambda: LegacyWeights(root, origin), version, "keras-h5", origin, opts)


def read_checkpoint(path: str, opts: Options, budget: Optional[Budget] = None) -> Source:
    budget = budget if budget is not None else Budget()
    origin = os.path.basename(tf_checkpoint.prefix_of(path))
    tensors = tf_checkpoint.load(path, budget)
    cfg = _config_from_opts(opts, origin, budget)
    version = opts.keras_version or (config_version(cfg) if cfg else None)
    if not is_layer_list(cfg):
        nodes = tf_checkpoint.object_graph(path, budget)
        if nodes is None:
            raise ConvertError(f"{origin}: the checkpoint has no object graph ({tf_checkpoint.OBJECT_GRAPH_KEY}); "
                               f"a TF1 name-based checkpoint is not supported")
        return _inferred(checkpoint_modules(tensors, nodes, origin), opts, version, "tf-checkpoint", origin,
                         ordered=True)
    return _from_config(cfg, lambda: CheckpointWeights(tensors, origin), version, "tf-checkpoint", origin, opts)


# --- Models without a layer list: architecture inferred from the variables (infer.py) -------------

def is_layer_list(cfg: Optional[dict]) -> bool:
    """Whether a config is a Sequential or functional model with its layers (else a subclassed model)."""
    if not isinstance(cfg, dict):
        return False
    inner = cfg.get("config")
    return cfg.get("class_name") in ("Sequential", "Functional", "Model") and (
        isinstance(inner, list) or (isinstance(inner, dict) and isinstance(inner.get("layers"), list)))


def _float_arrays(arrays) -> bool:
    return any(np.asarray(a).dtype.kind == "f" and np.asarray(a).ndim > 0 for a in arrays)


_LAYER_CHILDREN = ("cell", "forward_layer", "backward_layer", "layer")
_SKIP_TOP = ("optimizer", "save_counter")


def _keras3_vars(group, sub: str, layer_name: str, origin: str, path: str) -> dict:
    """The variables of one Keras 3 layer group, named (they are stored by position) after the layer kind
    the group's structure shows."""
    out = {}
    for key in group:
        item = group[key]
        if not isinstance(item, h5tree.Group):
            continue
        if key == "vars":
            ds = [d for d in item.keys()]
            if not all(d.isdigit() for d in ds):
                raise ConvertError(f"{origin}: layer '{path}' has variables {ds} (expected 0, 1, …)")
            arrays = [np.asarray(item[d]) for d in sorted(ds, key=int)]
            if not arrays:
                continue
            last = sub.rsplit("/", 1)[-1] if sub else ""
            if last == "cell":
                names = CELL_VARS
            elif len(arrays) == 1 and sub == "" and not layer_name.startswith("dense"):
                names = ["embeddings"]
            else:
                names = ["kernel", "bias"]
            if len(arrays) > len(names):
                raise ConvertError(f"{origin}: layer '{path}' has {len(arrays)} variables in '{item.name}' "
                                   f"(expected {', '.join(names)})")
            for n, a in zip(names, arrays):
                out[(sub + "/" if sub else "") + n] = a
        else:
            out.update(_keras3_vars(item, (sub + "/" if sub else "") + key, layer_name, origin, path))
    return out


def keras3_modules(f, origin: str) -> list:
    """The layers of a Keras 3 weights file of a subclassed model: each group that holds a layer's ``vars``
    (or a ``cell``, ``forward_layer``, ``layer``), named by its path; groups of other objects (the model,
    the ``layers`` list, nested models) are walked through."""
    from .infer import Module
    mods = []

    def is_layer(g) -> bool:
        v = g.get("vars")
        if isinstance(v, h5tree.Group) and len(list(v.keys())):
            return True
        return any(isinstance(g.get(c), h5tree.Group) for c in _LAYER_CHILDREN)

    def walk(g, path: str, depth: int):
        for key in g:
            item = g[key]
            if not isinstance(item, h5tree.Group) or key == "vars":
                continue
            p = f"{path}/{key}" if path else key
            if depth == 0 and key in _SKIP_TOP:
                continue
            if is_layer(item):
                v = item.get("vars")
                name = v.attrs.get("name", "") if isinstance(v, h5tree.Group) else ""
                if isinstance(name, bytes):
                    name = name.decode("utf-8", "replace")
                vs = _keras3_vars(item, "", str(name), origin, p)
                if _float_arrays(vs.values()):
                    mods.append(Module(p, vs))
            else:
                walk(item, p, depth + 1)

    if not isinstance(f, h5tree.Group):
        raise ConvertError(f"{origin}: not a Keras weights file")
    v = f.get("vars")
    if isinstance(v, h5tree.Group) and len(list(v.keys())):
        raise ConvertError(f"{origin}: the model has variables of its own (outside its layers); not supported")
    walk(f, "", 0)
    return mods


_CELL_NAMES = {"gru_cell": "gru", "lstm_cell": "lstm", "simple_rnn_cell": "rnn"}


def legacy_modules(root, origin: str) -> list:
    """The layers of a Keras 2 HDF5 weights file without a config (``save_weights('w.h5')`` of a subclassed
    model): ``layer_names`` in the model's order, each layer's ``weight_names`` naming its variables."""
    from .infer import Module
    names = root.attrs.get("layer_names")
    layer_names = _names(names, f"{origin}: attribute 'layer_names'") if names is not None else list(root)
    mods = []
    for n in layer_names:
        if n == "top_level_model_weights" or n not in root:
            continue
        g = root[n]
        wns = _names(g.attrs.get("weight_names", []), f"{origin}: attribute 'weight_names' of layer '{n}'")
        if not wns:
            continue
        vs, hint = {}, ""
        for wn in wns:
            if wn not in g:
                raise ConvertError(f"{origin}: weight '{wn}' of layer '{n}' is listed but missing")
            parts = wn.split("/")
            base = parts[-1].split(":")[0]
            cells = [i for i, c in enumerate(parts[:-1]) if c in _CELL_NAMES or c.endswith("_cell")]
            if cells:
                ci = cells[-1]
                cname = re.sub(r"_\d+$", "", parts[ci])
                hint = _CELL_NAMES.get(cname, hint)
                d = ""
                for c in parts[:ci]:
                    if c.startswith("forward"):
                        d = "forward_layer/"
                    elif c.startswith("backward"):
                        d = "backward_layer/"
                rel = d + "cell/" + base
            elif n.startswith("time_distributed"):
                rel = "layer/" + base
            else:
                rel = base
            if rel in vs:
                raise ConvertError(f"{origin}: layer '{n}' has two weights named '{rel}'")
            vs[rel] = np.asarray(g[wn])
        mods.append(Module(n, vs, hint))
    return mods


# Object-graph children that are not layers: the root's self-reference, RNN state specs, and the lists and
# functions a SavedModel adds beside the attributes (variables again, traced calls, signatures).
_GRAPH_SKIP = frozenset({"root", "state_spec", "variables", "trainable_variables", "non_trainable_variables",
                         "regularization_losses", "keras_api", "signatures", "call_and_return_all_conditional_losses",
                         "call_and_return_conditional_losses", "layer_regularization_losses", "layer_metrics",
                         "metrics"})


def checkpoint_modules(tensors: dict, nodes: list, origin: str) -> list:
    """The layers of a TF object checkpoint, from its object graph: the root's children (attributes of the
    model, or of a ``tf.train.Checkpoint``) in the order they were tracked, walked down to the layers — the
    nodes whose children are variables or a ``cell`` / ``forward_layer`` / ``layer``."""
    from .infer import Module

    def var_key(nid):
        for name, key in nodes[nid]["attributes"]:
            if name == "VARIABLE_VALUE":
                return key
        return None

    def collect(nid, sub, out, seen):
        for cid, name in nodes[nid]["children"]:
            if cid in seen or name.startswith("_") or name in _GRAPH_SKIP:
                continue
            seen.add(cid)
            key = var_key(cid)
            rel = (sub + "/" if sub else "") + name
            if key is not None:
                if key not in tensors:
                    raise ConvertError(f"{origin}: the object graph names '{key}', which the checkpoint does not hold")
                out[rel] = tensors[key]
            else:
                collect(cid, rel, out, seen)

    def is_layer(nid) -> bool:
        for cid, name in nodes[nid]["children"]:
            if var_key(cid) is not None or name in _LAYER_CHILDREN:
                return True
        return False

    mods = []
    visited = {0}

    def walk(nid, path, depth):
        for cid, name in nodes[nid]["children"]:
            if cid in visited or name.startswith("_") or name in _GRAPH_SKIP or (depth == 0 and name in _SKIP_TOP):
                continue
            visited.add(cid)
            p = f"{path}/{name}" if path else name
            if is_layer(cid):
                vs = {}
                collect(cid, "", vs, set(visited))
                if _float_arrays(vs.values()):
                    mods.append(Module(p, vs))
            elif depth < 64:
                walk(cid, p, depth + 1)

    walk(0, "", 0)
    return mods


def _inferred(mods: list, opts: Options, version, fmt: str, origin: str, ordered: bool) -> Source:
    from . import infer
    notes = {"keras.version": str(version)} if version else {}
    notes["inferred"] = "the variables"
    encoder: list = []
    if opts.task == "seq2seq":
        pair = infer.split_pair(mods, origin)
        if pair is not None:
            encoder = infer.build(pair[0], opts, _major(version), origin, ordered)
            mods = pair[1]
    layers = infer.build(mods, opts, _major(version), origin, ordered)
    if opts.task != "seq2seq":
        infer.apply_task(layers, opts.task, origin)
    # Variables do not record Embedding(mask_zero=...): Keras' default (False) unless --mask-zero.
    notes["mask_zero"] = bool(opts.mask_zero)
    if opts.mask_zero:
        layers[0].mask_zero = True
    return Source(layers=layers, format=fmt, framework_version=str(version or ""), notes=notes, encoder=encoder)


def bidirectional(cfg: dict, w, width: int, mj, name: str) -> Recurrent:
    """A Keras Bidirectional layer's config and weights as one two-direction Recurrent layer (the same cell,
    units and activations in both directions; merge mode concat, sum, mul or ave)."""
    inner = cfg.get("layer", {})
    icls, icfg = inner.get("class_name"), inner.get("config", {})
    if icls not in RNN_CLASSES:
        raise ConvertError(f"layer '{name}' (Bidirectional) wraps {icls}; only SimpleRNN, GRU and LSTM")
    mode = cfg.get("merge_mode", "concat")
    if mode not in ("concat", "sum", "mul", "ave"):
        raise ConvertError(f"layer '{name}' (Bidirectional): merge_mode {mode!r} is not supported "
                           f"(concat, sum, mul, ave)")
    fspec, fd = _recurrent(icls, icfg, w, "forward_layer/", width, mj, name)
    back = cfg.get("backward_layer")
    bcls, bcfg = (back.get("class_name"), back.get("config", {})) if isinstance(back, dict) else (icls, icfg)
    if bcls not in RNN_CLASSES:
        raise ConvertError(f"layer '{name}' (Bidirectional): backward layer of class {bcls} is not supported")
    bspec, bd = _recurrent(bcls, bcfg, w, "backward_layer/", width, mj, name)
    for key in ("cell", "units", "activation", "recurrent_activation", "reset_after"):
        if fspec[key] != bspec[key]:
            raise ConvertError(f"layer '{name}' (Bidirectional): forward and backward layers differ in {key} "
                               f"({fspec[key]} vs {bspec[key]})")
    return Recurrent(input_size=width, directions=[fd, bd], name=name, merge_mode=mode, **fspec)


def dense_layer(cls: str, cfg: dict, w, width: int, mj, name: str) -> Dense:
    """A Keras Dense or TimeDistributed(Dense) layer's config and weights, reading `width` inputs."""
    dcfg = cfg if cls == "Dense" else cfg["layer"].get("config", {})
    pre = "" if cls == "Dense" else "layer/"
    units = dcfg.get("units")
    if not isinstance(units, int) or units < 1:
        raise ConvertError(f"layer '{name}' ({cls}): 'units' is {units!r}")
    k = _take(w, pre + "kernel", name, cls)
    b = _take(w, pre + "bias", name, cls, required=bool(dcfg.get("use_bias", True)))
    kernel, bias = keras_dense(k, b, units, width, f"layer '{name}' ({cls})")
    act = keras_activation(dcfg.get("activation"), mj, f"layer '{name}' ({cls}) activation", allow_softmax=True)
    return Dense(kernel=kernel, bias=bias, name=name, activation=act, per_step=cls == "TimeDistributed")
