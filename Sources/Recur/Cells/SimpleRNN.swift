/// Elman recurrent layer, one step: h' = act(W x + b + U h), with act tanh or relu.
/// Kernel W is H × In, recurrent kernel U is H × H, bias b is H.
enum SimpleRNNCell {
    /// `gx` = W x + b (H). `h` is updated in place. `scratch` holds ≥ H floats.
    @inline(__always)
    static func step(_ l: RecurrentWeights, gx: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                     scratch: UnsafeMutablePointer<Float>) {
        matvec(scratch, l.recurrent, h)
        gates(l, gx: gx, u: scratch, h: h)
    }

    /// h' = act(gx + u) given u = U h (overwritten).
    @inline(__always)
    static func gates(_ l: RecurrentWeights, gx: UnsafePointer<Float>, u: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>) {
        let H = l.spec.units
        for i in 0..<H { u[i] += gx[i] }
        applyElementwise(l.spec.activation, u, H)
        h.update(from: u, count: H)
    }
}
