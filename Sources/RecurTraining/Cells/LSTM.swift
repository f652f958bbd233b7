import Recur

// LSTM training steps, gate rows i, f, g, o; optional peepholes P_i, P_f on c_prev and P_o on c:
//     c = f ⊙ c_prev + i ⊙ g,  h = o ⊙ act(c)
// Backward, for dh = ∂loss/∂h and dc_next = ∂loss/∂c from the step after:
//     dc = dc_next + dh ⊙ o ⊙ act'(act(c)) + da_o ⊙ P_o       da_o = dh ⊙ act(c) ⊙ σ'(o)
//     da_i = dc ⊙ g ⊙ σ'(i)   da_f = dc ⊙ c_prev ⊙ σ'(f)   da_g = dc ⊙ i ⊙ act'(g)
//     dc_prev = dc ⊙ f + da_i ⊙ P_i + da_f ⊙ P_f            dh_prev = dgx · U

/// LSTM, with or without peepholes. Its cell state c is the second state vector the pass carries.
final class TrainingLSTM: TrainingCell {
    static var hasCellState: Bool { true }

    /// The forget gate's biases start at 1.
    static func initializeBias(_ bias: UnsafeMutablePointer<Float>, units H: Int) {
        for j in 0..<H { bias[H + j] += 1 }
    }

    init(_ tensors: RecurrentTensors, streams: Int, steps: Int, withGradients: Bool) {}

    func forwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int) {
        let s = pass.step(t), B = s.B, H = s.H, G = s.G, ga = s.ga, act = s.act
        pass.recurrentProduct(P, t, columns: G)
        let peep = pass.tensors.peep.map { P + $0 }
        for b in 0..<B {
            let x = s.gx + b * G, g = s.gh + b * G, a = s.gates + b * G, h1 = s.hn + b * H
            let c0 = pass.c(t) + b * H, c1 = pass.c(t + 1) + b * H
            if let p = peep {
                for k in 0..<H {
                    let i = activate(ga, x[k] + g[k] + p[k] * c0[k])
                    let f = activate(ga, x[H + k] + g[H + k] + p[H + k] * c0[k])
                    let cand = activate(act, x[2 * H + k] + g[2 * H + k])
                    let cn = f * c0[k] + i * cand
                    let o = activate(ga, x[3 * H + k] + g[3 * H + k] + p[2 * H + k] * cn)
                    a[k] = i; a[H + k] = f; a[2 * H + k] = cand; a[3 * H + k] = o
                    c1[k] = cn
                    h1[k] = o * activate(act, cn)
                }
            } else {
                for k in 0..<H {
                    let i = activate(ga, x[k] + g[k])
                    let f = activate(ga, x[H + k] + g[H + k])
                    let cand = activate(act, x[2 * H + k] + g[2 * H + k])
                    let o = activate(ga, x[3 * H + k] + g[3 * H + k])
                    let cn = f * c0[k] + i * cand
                    a[k] = i; a[H + k] = f; a[2 * H + k] = cand; a[3 * H + k] = o
                    c1[k] = cn
                    h1[k] = o * activate(act, cn)
                }
            }
        }
    }

    func backwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ t: Int) {
        let s = pass.step(t), B = s.B, H = s.H, G = s.G, ga = s.ga, act = s.act
        let dh = s.dh, dc = pass.dc!.p
        let peep = pass.tensors.peep.map { P + $0 }
        let gp = pass.tensors.peep.map { grad + $0 }
        for b in 0..<B {
            let a = s.gates + b * G, d = s.dgx + b * G
            let c0 = pass.c(t) + b * H, c1 = pass.c(t + 1) + b * H
            for k in 0..<H {
                let dht = s.dout[b * H + k] + dh[b * H + k]
                let i = a[k], f = a[H + k], cand = a[2 * H + k], o = a[3 * H + k]
                let tc = activate(act, c1[k])
                let dao = dht * tc * derivative(ga, output: o)
                var dcn = dc[b * H + k] + dht * o * derivative(act, output: tc)
                if let p = peep { dcn += dao * p[2 * H + k]; gp![2 * H + k] += dao * c1[k] }
                let dai = dcn * cand * derivative(ga, output: i)
                let daf = dcn * c0[k] * derivative(ga, output: f)
                let dag = dcn * i * derivative(act, output: cand)
                var dcp = dcn * f
                if let p = peep {
                    dcp += dai * p[k] + daf * p[H + k]
                    gp![k] += dai * c0[k]
                    gp![H + k] += daf * c0[k]
                }
                d[k] = dai; d[H + k] = daf; d[2 * H + k] = dag; d[3 * H + k] = dao
                dc[b * H + k] = dcp
            }
        }
    }
}
