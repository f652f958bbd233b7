import Foundation
@testable import Recur

/// An independent, plain Double-precision implementation of the generator stack, written from the
/// equations in docs/FORMAT.md. It reads the builder's f32 values, not the file.
struct ReferenceGenerator {
    let arch: Architecture
    let b: ModelBuilder
    var h: [[Double]]
    var c: [[Double]]

    init(_ b: ModelBuilder) {
        self.b = b
        arch = b.architecture
        let rec = arch.layers.compactMap { l -> RecurrentSpec? in if case .recurrent(let r) = l { return r }; return nil }
        h = rec.map { [Double](repeating: 0, count: $0.units) }
        c = rec.map { [Double](repeating: 0, count: $0.units) }
    }

    static func act(_ a: Activation, _ x: Double) -> Double {
        switch a {
        case .linear, .softmax: return x
        case .relu: return max(0, x)
        case .tanh: return Foundation.tanh(x)
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .hardSigmoidKeras2: return min(1, max(0, 0.2 * x + 0.5))
        case .hardSigmoidKeras3: return min(1, max(0, x / 6 + 0.5))
        }
    }

    /// y = W x for W rows × cols given row-major.
    static func mv(_ w: [Double], _ x: [Double], rows: Int, from r0: Int = 0) -> [Double] {
        let cols = x.count
        return (r0..<(r0 + rows)).map { r in (0..<cols).reduce(0.0) { $0 + w[r * cols + $1] * x[$1] } }
    }

    /// One step of a recurrent cell whose tensors are `prefix` + kernel, recurrent_kernel, bias, ...
    static func cellStep(_ b: ModelBuilder, _ r: RecurrentSpec, prefix p: String, x: [Double], h hp: [Double], c cp: [Double]) -> ([Double], [Double]) {
        let H = r.units
        let W = tensorValues(b, p + "kernel"), U = tensorValues(b, p + "recurrent_kernel")
        let bias = tensorValues(b, p + "bias")
        let ga = r.recurrentActivation, act = r.activation
        func gate(_ k: Int) -> [Double] {   // W_k x + b_k
            let wx = mv(W, x, rows: H, from: k * H)
            return (0..<H).map { wx[$0] + bias[k * H + $0] }
        }
        func rec(_ k: Int, _ v: [Double]) -> [Double] { mv(U, v, rows: H, from: k * H) }
        var hn = [Double](repeating: 0, count: H)
        var cOut = cp
        switch r.cell {
        case .rnn:
            let a = gate(0), u = rec(0, hp)
            hn = (0..<H).map { Self.act(act, a[$0] + u[$0]) }
        case .gru:
            let xr = gate(0), xz = gate(1), xn = gate(2)
            if r.resetAfter {
                let bh = tensorValues(b, p + "recurrent_bias")
                let ur = rec(0, hp), uz = rec(1, hp), un = rec(2, hp)
                for j in 0..<H {
                    let rg = Self.act(ga, xr[j] + ur[j] + bh[j])
                    let zg = Self.act(ga, xz[j] + uz[j] + bh[H + j])
                    let n = Self.act(act, xn[j] + rg * (un[j] + bh[2 * H + j]))
                    hn[j] = (1 - zg) * n + zg * hp[j]
                }
            } else {
                let ur = rec(0, hp), uz = rec(1, hp)
                let rg = (0..<H).map { Self.act(ga, xr[$0] + ur[$0]) }
                let zg = (0..<H).map { Self.act(ga, xz[$0] + uz[$0]) }
                let un = rec(2, (0..<H).map { rg[$0] * hp[$0] })
                for j in 0..<H {
                    let n = Self.act(act, xn[j] + un[j])
                    hn[j] = (1 - zg[j]) * n + zg[j] * hp[j]
                }
            }
        case .lstm:
            let P = r.peephole ? tensorValues(b, p + "peephole") : [Double](repeating: 0, count: 3 * H)
            let xi = gate(0), xf = gate(1), xg = gate(2), xo = gate(3)
            let ui = rec(0, hp), uf = rec(1, hp), ug = rec(2, hp), uo = rec(3, hp)
            var cn = [Double](repeating: 0, count: H)
            for j in 0..<H {
                let ig = Self.act(ga, xi[j] + ui[j] + P[j] * cp[j])
                let fg = Self.act(ga, xf[j] + uf[j] + P[H + j] * cp[j])
                let g = Self.act(act, xg[j] + ug[j])
                cn[j] = fg * cp[j] + ig * g
                let og = Self.act(ga, xo[j] + uo[j] + P[2 * H + j] * cn[j])
                hn[j] = og * Self.act(act, cn[j])
            }
            cOut = cn
        }
        return (hn, cOut)
    }

    /// Dense layer: act(W x + b), softmax over the vector.
    static func dense(_ b: ModelBuilder, prefix p: String, units u: Int, activation a: Activation, _ x: [Double]) -> [Double] {
        let W = tensorValues(b, p + "kernel"), bias = tensorValues(b, p + "bias")
        let wx = mv(W, x, rows: u)
        let y = (0..<u).map { wx[$0] + bias[$0] }
        if a == .softmax {
            let m = y.max()!
            let e = y.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        return y.map { Self.act(a, $0) }
    }

    mutating func step(_ token: Int) -> [Double] {
        var x: [Double] = []
        var ri = 0
        for (i, layer) in arch.layers.enumerated() {
            let p = "layer.\(i)."
            switch layer {
            case .embedding(_, let d):
                let e = tensorValues(b, p + "embeddings")
                x = Array(e[(token * d)..<((token + 1) * d)])
            case .recurrent(let r):
                let (hn, cn) = Self.cellStep(b, r, prefix: p, x: x, h: h[ri], c: c[ri])
                h[ri] = hn
                c[ri] = cn
                x = hn
                ri += 1
            case .dense(_, let u, let a):
                let W = tensorValues(b, p + "kernel"), bias = tensorValues(b, p + "bias")
                let wx = Self.mv(W, x, rows: u)
                var y = (0..<u).map { wx[$0] + bias[$0] }
                if a == .softmax {
                    let m = y.max()!
                    let e = y.map { Foundation.exp($0 - m) }
                    let s = e.reduce(0, +)
                    y = e.map { $0 / s }
                } else {
                    y = y.map { Self.act(a, $0) }
                }
                x = y
            case .attention:
                preconditionFailure("the Double reference has no attention (AttentionTests computes it)")
            }
        }
        return x
    }
}
