import Recur

// SimpleRNN training steps: h = act(gx + U h_prev). Backward: da = dh ⊙ act'(h), dh_prev = da · U.

/// SimpleRNN (one gate block).
final class TrainingSimpleRNN: TrainingCell {
    init(_ tensors: RecurrentTensors, streams: Int, steps: Int, withGradients: Bool) {}

    func forwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int) {
        let B = pass.B, H = pass.H, G = pass.G, act = pass.tensors.spec.activation
        let hn = pass.h(t + 1), gxt = pass.rows(pass.gx, t), ght = pass.rows(pass.gh, t)
        sgemm(false, true, m: B, n: H, k: H, pass.h(t), lda: H, P + pass.tensors.u, ldb: H, beta: 0, ght, ldc: G)
        for i in 0..<(B * H) {
            hn[i] = activate(act, gxt[i] + ght[i])
        }
    }

    func backwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ t: Int) {
        let B = pass.B, H = pass.H, act = pass.tensors.spec.activation
        let hn = pass.h(t + 1), dh = pass.dh.p, doutt = pass.dout.p + t * B * H, dgxt = pass.rows(pass.dgx, t)
        for i in 0..<(B * H) {
            dgxt[i] = (doutt[i] + dh[i]) * derivative(act, output: hn[i])
        }
    }

    func addRecurrentGradient(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int, into dh: UnsafeMutablePointer<Float>) {
        let G = pass.G, H = pass.H
        sgemm(false, false, m: pass.B, n: H, k: H, pass.rows(pass.dgx, t), lda: G, P + pass.tensors.u, ldb: H, beta: 0, dh, ldc: H)
    }
}
