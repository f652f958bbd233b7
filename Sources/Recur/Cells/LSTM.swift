import CRecurKernels

/// Long short-term memory, one step. Weights are stacked by gate in the order i (input), f (forget),
/// g (cell candidate), o (output): kernel W is 4H × In, recurrent kernel U is 4H × H, bias b is 4H
/// (the sum of PyTorch's b_ih and b_hh). Peephole weights P are 3 × H, rows ordered i, f, o.
///
///     i = σ(W_i x + U_i h + b_i + P_i ⊙ c)
///     f = σ(W_f x + U_f h + b_f + P_f ⊙ c)
///     g = tanh(W_g x + U_g h + b_g)
///     c' = f ⊙ c + i ⊙ g
///     o = σ(W_o x + U_o h + b_o + P_o ⊙ c')
///     h' = o ⊙ tanh(c')
/// Without peepholes the P terms are absent. With peepholes the output gate sees the new cell state c',
/// as in Gers & Schmidhuber's formulation and TensorFlow's peephole cells; the input and forget gates see c.
/// σ is the layer's recurrent activation and tanh its activation. The state is h, then c.
enum LSTMCell: RecurrentCell {
    static let gates = 4
    static let stateVectors = 2
    static func scratch(_ spec: RecurrentSpec) -> Int { 5 * spec.units }

    /// P (3 × H) with peepholes.
    static func extraTensors(_ spec: RecurrentSpec) -> [(name: String, shape: [Int])] {
        spec.peephole ? [("peephole", [3, spec.units])] : []
    }

    static func options(_ spec: RecurrentSpec) -> [(key: String, value: MetaValue)] {
        [("recurrent_activation", .string(spec.recurrentActivation.rawValue)), ("peephole", .bool(spec.peephole))]
    }

    static func notes(_ spec: RecurrentSpec) -> [String] { spec.peephole ? ["peephole"] : [] }

    static func problem(_ spec: RecurrentSpec) -> String? { nil }

    static func batchesRecurrentProduct(_ spec: RecurrentSpec) -> Bool { true }

    /// `gx` = W x + b (4H). `h` and `c` are updated in place. `scratch` holds ≥ 5H floats.
    @inline(__always)
    static func step(_ l: RecurrentWeights, gx: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                     c: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>, hq: UnsafeRawPointer?) {
        matvec(scratch, l.recurrent, h, prepared: hq)
        gates(l, gx: gx, gu: scratch, h: h, c: c, tmp: scratch + 4 * l.spec.units)
    }

    /// The gates given gu = U h (4H, used as scratch): rk_lstm_gates; `tmp` holds H floats.
    @inline(__always)
    static func gates(_ l: RecurrentWeights, gx: UnsafePointer<Float>, gu g: UnsafeMutablePointer<Float>,
                      h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>?, tmp: UnsafeMutablePointer<Float>) {
        rk_lstm_gates(h, c!, g, gx, l.extra.first, l.spec.units, l.spec.recurrentActivation.kernelKind,
                      l.spec.activation.kernelKind, tmp)
    }
}
