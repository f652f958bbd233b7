/// Elman recurrent layer, one step: h' = act(W x + b + U h), with act tanh or relu.
/// Kernel W is H × In, recurrent kernel U is H × H, bias b is H.
enum SimpleRNNCell {
    /// `gx` = W x + b (H). `h` is updated in place. `scratch` holds ≥ H floats.
    @inline(__always)
    static func step(_ l: RecurrentWeights, gx: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                     scratch: UnsafeMutablePointer<Float>) {
        matvec(scratch, l.recurrent, h)
        gates(l, gx: gx, u: UnsafePointer(scratch), h: h)
    }

    /// h' = act(gx + u) given u = U h.
    @inline(__always)
    static func gates(_ l: RecurrentWeights, gx: UnsafePointer<Float>, u: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>) {
        let act = l.spec.activation
        for i in 0..<l.spec.units { h[i] = activate(act, gx[i] + u[i]) }
    }
}
