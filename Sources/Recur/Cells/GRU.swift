import CRecurKernels

/// Gated recurrent unit, one step. Weights are stacked by gate in the order r (reset), z (update), n (new):
/// kernel W is 3H × In, recurrent kernel U is 3H × H, bias b is 3H, recurrent bias b_h is 3H (reset-after only).
///
/// Reset after the recurrent product (PyTorch, cuDNN, Keras reset_after=True):
///     r = σ(W_r x + b_r + U_r h + bh_r)
///     z = σ(W_z x + b_z + U_z h + bh_z)
///     n = tanh(W_n x + b_n + r ⊙ (U_n h + bh_n))
///     h' = (1 − z) ⊙ n + z ⊙ h
/// Reset before it (original paper, Keras reset_after=False; no recurrent bias):
///     n = tanh(W_n x + b_n + U_n (r ⊙ h))
/// σ is the layer's recurrent activation and tanh its activation. The reset-after gates are one kernel,
/// rk_gru_gates; reset before, the gates are computed on whole vectors (applyElementwise).
enum GRUCell: RecurrentCell {
    static let gates = 3
    static let stateVectors = 1
    static func scratch(_ spec: RecurrentSpec) -> Int { 4 * spec.units }

    /// b_h (3H) when reset after.
    static func extraTensors(_ spec: RecurrentSpec) -> [(name: String, shape: [Int])] {
        spec.resetAfter ? [("recurrent_bias", [3 * spec.units])] : []
    }

    static func options(_ spec: RecurrentSpec) -> [(key: String, value: MetaValue)] {
        [("recurrent_activation", .string(spec.recurrentActivation.rawValue)), ("reset_after", .bool(spec.resetAfter))]
    }

    static func notes(_ spec: RecurrentSpec) -> [String] { [spec.resetAfter ? "reset after" : "reset before"] }

    static func problem(_ spec: RecurrentSpec) -> String? {
        spec.peephole ? "peephole weights exist only for LSTM layers" : nil
    }

    static func batchesRecurrentProduct(_ spec: RecurrentSpec) -> Bool { spec.resetAfter }

    /// Reset-after gates given gu = U h (3H, without the recurrent bias; used as scratch).
    @inline(__always)
    static func gates(_ l: RecurrentWeights, gx: UnsafePointer<Float>, gu gh: UnsafeMutablePointer<Float>,
                      h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>?, tmp: UnsafeMutablePointer<Float>) {
        rk_gru_gates(h, gh, l.extra.first, gx, l.spec.units, l.spec.recurrentActivation.kernelKind,
                     l.spec.activation.kernelKind)
    }

    /// `gx` = W x + b for this step (3H, read only). `h` is updated in place. `scratch` holds ≥ 4H floats.
    @inline(__always)
    static func step(_ l: RecurrentWeights, gx: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                     c: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>, hq: UnsafeRawPointer?) {
        let H = l.spec.units
        let gh = scratch
        if l.spec.resetAfter {
            matvec(gh, l.recurrent, h, prepared: hq)
            gates(l, gx: gx, gu: gh, h: h, c: nil, tmp: scratch + 3 * H)
        } else {
            matvec(gh, l.recurrent.rows(0, 2 * H), h, prepared: hq)
            rk_add(gh, gx, 2 * H)
            applyElementwise(l.spec.recurrentActivation, gh, 2 * H)      // r = gh[0..<H], z = gh[H..<2H]
            let rh = scratch + 3 * H
            rk_mul(rh, gh, h, H)                                         // r ⊙ h
            let n = scratch + 2 * H
            matvec(n, l.recurrent.rows(2 * H, H), rh)
            rk_add(n, gx + 2 * H, H)
            applyElementwise(l.spec.activation, n, H)
            rk_gru_update(h, gh + H, n, H)                               // h = (1 − z) ⊙ n + z ⊙ h
        }
    }
}
