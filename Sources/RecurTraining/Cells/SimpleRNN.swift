import Recur

// SimpleRNN training steps: h = act(gx + U h_prev). Backward: da = dh ⊙ act'(h), dh_prev = da · U.

/// SimpleRNN (one gate block: G = H).
final class TrainingSimpleRNN: TrainingCell {
    init(_ tensors: RecurrentTensors, streams: Int, steps: Int, withGradients: Bool) {}

    func forwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int) {
        let s = pass.step(t)
        pass.recurrentProduct(P, t, columns: s.H)
        for i in 0..<(s.B * s.H) {
            s.hn[i] = activate(s.act, s.gx[i] + s.gh[i])
        }
    }

    func backwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ t: Int) {
        let s = pass.step(t)
        for i in 0..<(s.B * s.H) {
            s.dgx[i] = (s.dout[i] + s.dh[i]) * derivative(s.act, output: s.hn[i])
        }
    }
}
