import CRecurKernels

/// Elman recurrent layer, one step: h' = act(W x + b + U h), with act tanh or relu.
/// Kernel W is H × In, recurrent kernel U is H × H, bias b is H.
enum SimpleRNNCell: RecurrentCell {
    static let gates = 1
    static let stateVectors = 1
    static func scratch(_ spec: RecurrentSpec) -> Int { spec.units }
    static func extraTensors(_ spec: RecurrentSpec) -> [(name: String, shape: [Int])] { [] }
    static func options(_ spec: RecurrentSpec) -> [(key: String, value: MetaValue)] { [] }

    static func notes(_ spec: RecurrentSpec) -> [String] { [] }

    static func problem(_ spec: RecurrentSpec) -> String? {
        spec.peephole ? "peephole weights exist only for LSTM layers" : nil
    }

    static func batchesRecurrentProduct(_ spec: RecurrentSpec) -> Bool { true }

    /// `gx` = W x + b (H). `h` is updated in place. `scratch` holds ≥ H floats.
    @inline(__always)
    static func step(_ l: RecurrentWeights, gx: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                     c: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>, hq: UnsafeRawPointer?) {
        matvec(scratch, l.recurrent, h, prepared: hq)
        gates(l, gx: gx, gu: scratch, h: h, c: nil, tmp: scratch)
    }

    /// h' = act(gx + gu) given gu = U h (overwritten).
    @inline(__always)
    static func gates(_ l: RecurrentWeights, gx: UnsafePointer<Float>, gu u: UnsafeMutablePointer<Float>,
                      h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>?, tmp: UnsafeMutablePointer<Float>) {
        let H = l.spec.units
        rk_add(u, gx, H)
        applyElementwise(l.spec.activation, u, H)
        h.update(from: u, count: H)
    }
}
