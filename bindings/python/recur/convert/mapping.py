"""From each framework's weight layout to the runtime's.

Runtime layout (docs/FORMAT.md §12): row-major, gate blocks stacked along the rows, kernel [G·H, In],
recurrent kernel [G·H, H]; GRU rows r, z, n; LSTM rows i, f, g, o; dense kernel [units, In].

Keras stores kernels transposed ([In, G·H], gate blocks along the columns) with GRU blocks ordered
z, r, h and LSTM blocks i, f, c, o. A Keras GRU with ``reset_after=True`` has a bias of shape [2, 3H]:
row 0 the input bias, row 1 the recurrent bias.

PyTorch stores ``weight_ih_l{k}`` [G·H, In] and ``weight_hh_l{k}`` [G·H, H] in runtime layout already, GRU
rows r, z, n, LSTM rows i, f, g, o, with two biases ``b_ih`` and ``b_hh``. For LSTM and RNN cells both
biases are added to the same pre-activation, so the runtime's single bias is their sum; a GRU keeps them
apart (``b_hh`` of the n block sits inside the reset gate product) as bias and recurrent_bias.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .common import GATES, ConvertError, Direction, expect_shape, f32, gate_blocks

# Keras GRU column blocks z, r, h → runtime rows r, z, n: take source blocks 1, 0, 2.
KERAS_GRU_ORDER = [1, 0, 2]


def keras_direction(cell: str, units: int, input_size: int, kernel, recurrent_kernel, bias,
                    reset_after: bool, what: str) -> Direction:
    """Maps one Keras cell's (kernel, recurrent_kernel, bias) — bias None when use_bias=False."""
    G, H = GATES[cell], units
    k = expect_shape(f32(kernel, f"{what} kernel"), (input_size, G * H), f"{what} kernel")
    u = expect_shape(f32(recurrent_kernel, f"{what} recurrent_kernel"), (H, G * H), f"{what} recurrent_kernel")
    W, U = k.T, u.T
    rb: Optional[np.ndarray] = None
    if cell == "gru" and reset_after:
        if bias is None:
            b, rb = np.zeros(G * H, np.float32), np.zeros(G * H, np.float32)
        else:
            bb = expect_shape(f32(bias, f"{what} bias"), (2, G * H), f"{what} bias (GRU reset_after=True)")
            b, rb = bb[0], bb[1]
    else:
        if bias is None:
            b = np.zeros(G * H, np.float32)
        else:
            what_b = f"{what} bias" + (" (GRU reset_after=False)" if cell == "gru" else "")
            b = expect_shape(f32(bias, f"{what} bias"), (G * H,), what_b)
    if cell == "gru":
        W, U = gate_blocks(W, KERAS_GRU_ORDER, 3), gate_blocks(U, KERAS_GRU_ORDER, 3)
        b = gate_blocks(b, KERAS_GRU_ORDER, 3)
        if rb is not None:
            rb = gate_blocks(rb, KERAS_GRU_ORDER, 3)
    return Direction(np.ascontiguousarray(W), np.ascontiguousarray(U), np.ascontiguousarray(b),
                     None if rb is None else np.ascontiguousarray(rb))


def torch_direction(cell: str, units: int, input_size: int, w_ih, w_hh, b_ih, b_hh, what: str) -> Direction:
    """Maps one PyTorch direction (weight_ih, weight_hh, bias_ih, bias_hh — biases None when bias=False)."""
    G, H = GATES[cell], units
    W = expect_shape(f32(w_ih, f"{what} weight_ih"), (G * H, input_size), f"{what} weight_ih")
    U = expect_shape(f32(w_hh, f"{what} weight_hh"), (G * H, H), f"{what} weight_hh")
    zeros = np.zeros(G * H, np.float32)
    bi = zeros if b_ih is None else expect_shape(f32(b_ih, f"{what} bias_ih"), (G * H,), f"{what} bias_ih")
    bh = zeros if b_hh is None else expect_shape(f32(b_hh, f"{what} bias_hh"), (G * H,), f"{what} bias_hh")
    # The arrays are used as they are (read-only views of the source's bytes when they were float32
    # already): nothing writes to them, and a copy would only double the memory a conversion takes.
    if cell == "gru":
        return Direction(W, U, bi, bh)
    # Summed in float64 and rounded once, as close as f32 allows to the framework's two f32 additions.
    b = (bi.astype(np.float64) + bh.astype(np.float64)).astype(np.float32)
    return Direction(W, U, b)


def keras_dense(kernel, bias, units: int, input_size: int, what: str):
    """Keras Dense kernel [In, units] → runtime [units, In]; bias None (use_bias=False) → zeros."""
    k = expect_shape(f32(kernel, f"{what} kernel"), (input_size, units), f"{what} kernel")
    b = np.zeros(units, np.float32) if bias is None else expect_shape(f32(bias, f"{what} bias"), (units,), f"{what} bias")
    return np.ascontiguousarray(k.T), b


def keras_activation(value, keras_major: int, what: str, allow_softmax: bool = False) -> str:
    """The runtime name of a Keras activation given in a layer config (a string, None, or Keras 3's
    serialized-function dict). ``hard_sigmoid`` means 0.2x+0.5 before Keras 3 and x/6+0.5 from Keras 3 on."""
    name = value
    if isinstance(value, dict):
        cfg = value.get("config")
        if isinstance(cfg, str):
            name = cfg
        elif isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
            name = cfg["name"]
        else:
            name = value.get("class_name")
    if name is None:
        return "linear"
    if not isinstance(name, str):
        raise ConvertError(f"{what}: cannot read the activation {value!r}")
    n = name.lower()
    if n in ("linear", "tanh", "relu", "sigmoid"):
        return n
    if n == "hard_sigmoid":
        return "hard_sigmoid_keras3" if keras_major >= 3 else "hard_sigmoid_keras2"
    if n == "softmax" and allow_softmax:
        return "softmax"
    raise ConvertError(f"{what}: activation '{name}' is not supported (supported: linear, tanh, relu, sigmoid, "
                       f"hard_sigmoid{', softmax' if allow_softmax else ''})")
