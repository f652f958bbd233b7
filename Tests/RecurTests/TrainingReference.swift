import Foundation
@testable import Recur
@testable import RecurTraining

/// A plain Double-precision forward pass of a generator over a window of several streams, with the
/// softmax cross-entropy loss, written from the cell equations (docs and Sources/Recur/Cells comments).
/// It shares no code with the trainer: the gradient tests differentiate it numerically.
struct TrainingReference {
    let arch: Architecture
    /// Tensors by name, row-major, in the runtime's layouts.
    var w: [String: [Double]]

    init(_ net: Network) {
        arch = net.architecture
        let p = net.parameters
        var w: [String: [Double]] = [:]
        for e in net.layout.entries { w[e.name] = p[e.offset..<(e.offset + e.count)].map(Double.init) }
        self.w = w
    }

    var recurrent: [RecurrentSpec] {
        arch.layers.compactMap { if case .recurrent(let r) = $0 { return r }; return nil }
    }

    static func act(_ a: Activation, _ x: Double) -> Double {
        switch a {
        case .linear, .softmax: return x
        case .relu: return max(0, x)
        case .tanh: return tanh(x)
        case .sigmoid: return 1 / (1 + exp(-x))
        case .hardSigmoidKeras2: return min(1, max(0, 0.2 * x + 0.5))
        case .hardSigmoidKeras3: return min(1, max(0, x / 6 + 0.5))
        }
    }

    /// rows [r0, r0 + n) of W (cols = x.count) times x.
    static func mv(_ W: [Double], _ x: [Double], _ r0: Int, _ n: Int) -> [Double] {
        let c = x.count
        return (r0..<(r0 + n)).map { r in (0..<c).reduce(0.0) { $0 + W[r * c + $1] * x[$1] } }
    }

    /// The recurrent state: h[layer][stream][unit], c likewise (zeros for non-LSTM layers).
    struct StateSet { var h: [[[Double]]]; var c: [[[Double]]] }

    func zeroState(streams B: Int) -> StateSet {
        let z = recurrent.map { r in [[Double]](repeating: [Double](repeating: 0, count: r.units), count: B) }
        return StateSet(h: z, c: z)
    }

    /// Summed cross-entropy of `targets[t][b]` given `inputs[t][b]`, from `state` (updated to the state
    /// after the window). `masks[k]` multiplies the input of recurrent layer k (k ≥ 1) or, for k = the
    /// number of recurrent layers, the output layer's input; element (t·B + b)·width + j.
    func loss(inputs: [[Int]], targets: [[Int]], state: inout StateSet, masks: [Int: [Double]] = [:]) -> Double {
        let T = inputs.count, B = inputs[0].count
        let rec = recurrent
        var total = 0.0
        for t in 0..<T {
            for b in 0..<B {
                let E = w["layer.0.embeddings"]!
                guard case .embedding(_, let d) = arch.layers[0] else { fatalError() }
                var x = Array(E[(inputs[t][b] * d)..<((inputs[t][b] + 1) * d)])
                for (k, r) in rec.enumerated() {
                    if k > 0, let m = masks[k] {
                        x = x.enumerated().map { $1 * m[(t * B + b) * x.count + $0] }
                    }
                    let p = "layer.\(k + 1)."
                    let W = w[p + "kernel"]!, U = w[p + "recurrent_kernel"]!, bias = w[p + "bias"]!
                    let H = r.units
                    let hp = state.h[k][b], cp = state.c[k][b]
                    func gx(_ g: Int) -> [Double] { zip(Self.mv(W, x, g * H, H), bias[(g * H)..<((g + 1) * H)]).map { $0 + $1 } }
                    func uh(_ g: Int, _ v: [Double]) -> [Double] { Self.mv(U, v, g * H, H) }
                    var hn = [Double](repeating: 0, count: H)
                    switch r.cell {
                    case .rnn:
                        let a = gx(0), u = uh(0, hp)
                        hn = (0..<H).map { Self.act(r.activation, a[$0] + u[$0]) }
                    case .gru:
                        let xr = gx(0), xz = gx(1), xn = gx(2)
                        if r.resetAfter {
                            let bh = w[p + "recurrent_bias"]!
                            let ur = uh(0, hp), uz = uh(1, hp), un = uh(2, hp)
                            for j in 0..<H {
                                let rg = Self.act(r.recurrentActivation, xr[j] + ur[j] + bh[j])
                                let zg = Self.act(r.recurrentActivation, xz[j] + uz[j] + bh[H + j])
                                let n = Self.act(r.activation, xn[j] + rg * (un[j] + bh[2 * H + j]))
                                hn[j] = (1 - zg) * n + zg * hp[j]
                            }
                        } else {
                            let ur = uh(0, hp), uz = uh(1, hp)
                            let rg = (0..<H).map { Self.act(r.recurrentActivation, xr[$0] + ur[$0]) }
                            let zg = (0..<H).map { Self.act(r.recurrentActivation, xz[$0] + uz[$0]) }
                            let un = uh(2, (0..<H).map { rg[$0] * hp[$0] })
                            for j in 0..<H {
                                let n = Self.act(r.activation, xn[j] + un[j])
                                hn[j] = (1 - zg[j]) * n + zg[j] * hp[j]
                            }
                        }
                    case .lstm:
                        let P = r.peephole ? w[p + "peephole"]! : [Double](repeating: 0, count: 3 * H)
                        let xi = gx(0), xf = gx(1), xg = gx(2), xo = gx(3)
                        let ui = uh(0, hp), uf = uh(1, hp), ug = uh(2, hp), uo = uh(3, hp)
                        var cn = [Double](repeating: 0, count: H)
                        for j in 0..<H {
                            let ig = Self.act(r.recurrentActivation, xi[j] + ui[j] + P[j] * cp[j])
                            let fg = Self.act(r.recurrentActivation, xf[j] + uf[j] + P[H + j] * cp[j])
                            let g = Self.act(r.activation, xg[j] + ug[j])
                            cn[j] = fg * cp[j] + ig * g
                            let og = Self.act(r.recurrentActivation, xo[j] + uo[j] + P[2 * H + j] * cn[j])
                            hn[j] = og * Self.act(r.activation, cn[j])
                        }
                        state.c[k][b] = cn
                    }
                    state.h[k][b] = hn
                    x = hn
                }
                if let m = masks[rec.count] {
                    x = x.enumerated().map { $1 * m[(t * B + b) * x.count + $0] }
                }
                let last = "layer.\(rec.count + 1)."
                let Wd = w[last + "kernel"]!, bd = w[last + "bias"]!
                let logits = zip(Self.mv(Wd, x, 0, bd.count), bd).map { $0 + $1 }
                let m = logits.max()!
                let lse = m + log(logits.reduce(0.0) { $0 + exp($1 - m) })
                total += lse - logits[targets[t][b]]
            }
        }
        return total
    }
}
