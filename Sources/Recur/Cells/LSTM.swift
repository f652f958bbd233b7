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
/// σ is the layer's recurrent activation and tanh its activation.
enum LSTMCell {
    /// `gx` = W x + b (4H). `h` and `c` are updated in place. `scratch` holds ≥ 4H floats.
    @inline(__always)
    static func step(_ l: RecurrentWeights, gx: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                     c: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        matvec(scratch, l.recurrent, h)
        gates(l, gx: gx, g: UnsafePointer(scratch), h: h, c: c)
    }

    /// The gates given g = U h (4H).
    @inline(__always)
    static func gates(_ l: RecurrentWeights, gx: UnsafePointer<Float>, g: UnsafePointer<Float>,
                      h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>) {
        let H = l.spec.units
        let ga = l.spec.recurrentActivation, act = l.spec.activation
        if let p = l.peephole {
            for k in 0..<H {
                let i = activate(ga, gx[k] + g[k] + p[k] * c[k])
                let f = activate(ga, gx[H + k] + g[H + k] + p[H + k] * c[k])
                let cand = activate(act, gx[2 * H + k] + g[2 * H + k])
                let cn = f * c[k] + i * cand
                let o = activate(ga, gx[3 * H + k] + g[3 * H + k] + p[2 * H + k] * cn)
                c[k] = cn
                h[k] = o * activate(act, cn)
            }
        } else {
            for k in 0..<H {
                let i = activate(ga, gx[k] + g[k])
                let f = activate(ga, gx[H + k] + g[H + k])
                let cand = activate(act, gx[2 * H + k] + g[2 * H + k])
                let o = activate(ga, gx[3 * H + k] + g[3 * H + k])
                let cn = f * c[k] + i * cand
                c[k] = cn
                h[k] = o * activate(act, cn)
            }
        }
    }
}
