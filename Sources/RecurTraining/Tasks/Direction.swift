#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Recur

/// One direction of a recurrent layer trained on padded batches of whole sequences.
///
/// It runs the generator trainer's forward and backward passes (RecurrentLayer.swift) through a one-layer
/// `Network` that holds a copy of this layer's weights: `load` copies them in from the task model's flat
/// buffer, `addGradients` adds the window's weight gradients back. Rows are time-major (t·B + b); a mask
/// [T·B] marks real steps (1) and PAD steps (0), which carry the state unchanged. A reverse direction is
/// the same cell run over the time-reversed rows (the caller reverses inputs, mask and outputs), so right
/// padding becomes left padding, skipped from a zero state — the runtime's backward direction.
final class Direction {
    let spec: RecurrentSpec
    let net: Network
    let ws: Workspace
    let B: Int, H: Int, In: Int
    /// (offset in the task model's buffer, offset in `net`'s buffer, count) of each tensor.
    let copies: [(Int, Int, Int)]

    /// `prefix` names the tensors in `layout`, e.g. "layer.1.forward." or "encoder.layer.1.".
    init(spec: RecurrentSpec, prefix: String, layout: ParameterLayout, streams: Int, steps: Int) throws {
        var s = spec
        s.bidirectional = false
        s.returnSequences = true
        self.spec = s
        let t = RecurrentSpec.Template(cell: s.cell, resetAfter: s.resetAfter, peephole: s.peephole, activation: s.activation)
        var arch = Architecture.generator(vocabulary: 1, embedding: s.inputSize, cells: [t], hidden: s.units)
        arch.layers[1] = .recurrent(s)
        net = try Network(architecture: arch, vocabulary: try Vocabulary(kind: .char, pieces: ["a"]))
        ws = Workspace(net, streams: streams, steps: steps, withGradients: true)
        B = streams; H = s.units; In = s.inputSize
        var copies: [(Int, Int, Int)] = []
        for e in net.layout.entries where e.name.hasPrefix("layer.1.") {
            let name = prefix + e.name.dropFirst("layer.1.".count)
            guard let mine = layout.entry(name), mine.count == e.count else {
                throw RecurError(.model, "tensor '\(name)' is missing or has the wrong size")
            }
            copies.append((mine.offset, e.offset, e.count))
        }
        self.copies = copies
    }

    func load(_ params: UnsafePointer<Float>) {
        for (mine, sub, n) in copies { (net.params.p + sub).update(from: params + mine, count: n) }
    }

    /// Forward over T steps from `initial` h [B, H] (nil: zeros).
    func forward(_ x: UnsafePointer<Float>, steps T: Int, mask: UnsafePointer<Float>, initial: UnsafePointer<Float>? = nil) {
        ws.resetState()
        if let h0 = initial { ws.carryH[0].p.update(from: h0, count: B * H) }
        net.recurrentForward(0, ws, steps: T, input: x, mask: mask)
    }

    /// Outputs [T·B, H] of the last forward pass.
    var output: UnsafeMutablePointer<Float> { ws.hs[0].p + B * H }
    /// The final state [B, H] after `T` steps.
    func final(_ T: Int) -> UnsafeMutablePointer<Float> { ws.hs[0].p + T * B * H }
    /// Where the caller writes ∂loss/∂output [T·B, H] before `backward`.
    var dout: UnsafeMutablePointer<Float> { ws.dout[0].p }

    /// Backward of the last forward pass: ∂loss/∂x into `dx` [T·B, In]; weight gradients into the workspace.
    func backward(_ x: UnsafePointer<Float>, steps T: Int, mask: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        ws.grads.zero()
        net.recurrentBackward(0, ws, steps: T, input: x, dx: dx, mask: mask)
    }

    /// ∂loss/∂(initial h) [B, H] after `backward` (GRU with the reset gate after the product, and SimpleRNN).
    func initialStateGradient(into out: UnsafeMutablePointer<Float>) {
        let r = net.plan.rec[0]
        let U = UnsafePointer(net.params.p + r.u)
        out.update(from: ws.dhRun.p, count: B * H)
        switch spec.cell {
        case .gru where spec.resetAfter:
            // dh_prev = dh ⊙ z (in dhRun) + dgh₀ · U
            sgemm(false, false, m: B, n: H, k: r.G, ws.dgh[0].p, lda: r.G, U, ldb: H, beta: 1, out, ldc: H)
        default:
            break
        }
    }

    func addGradients(_ grads: UnsafeMutablePointer<Float>) {
        for (mine, sub, n) in copies {
            let g = grads + mine, s = ws.grads.p + sub
            for i in 0..<n { g[i] += s[i] }
        }
    }
}

/// A dense layer's place in a flat buffer and its forward and backward passes over N rows.
struct DenseLayer {
    let w: Int, b: Int, inputs: Int, units: Int, activation: Activation

    /// Y [N, units] = act(X · Wᵀ + b). Softmax is applied row by row.
    func forward(_ P: UnsafePointer<Float>, _ X: UnsafePointer<Float>, rows N: Int, _ Y: UnsafeMutablePointer<Float>) {
        for i in 0..<N { (Y + i * units).update(from: P + b, count: units) }
        sgemm(false, true, m: N, n: units, k: inputs, X, lda: inputs, P + w, ldb: inputs, beta: 1, Y, ldc: units)
        if activation == .softmax {
            for i in 0..<N { softmaxRow(Y + i * units, units) }
        } else if activation != .linear {
            for i in 0..<(N * units) { Y[i] = activate(activation, Y[i]) }
        }
    }

    /// From dZ [N, units] (gradient before the activation): adds dW, db and writes dX [N, inputs].
    func backward(_ P: UnsafePointer<Float>, _ G: UnsafeMutablePointer<Float>, _ X: UnsafePointer<Float>, rows N: Int,
                  _ dZ: UnsafePointer<Float>, _ dX: UnsafeMutablePointer<Float>?) {
        sgemm(true, false, m: units, n: inputs, k: N, dZ, lda: units, X, ldb: inputs, beta: 1, G + w, ldc: inputs)
        columnSums(dZ, rows: N, cols: units, into: G + b)
        if let dX { sgemm(false, false, m: N, n: inputs, k: units, dZ, lda: units, P + w, ldb: inputs, beta: 0, dX, ldc: inputs) }
    }
}

/// x ← softmax(x) (max subtracted).
@inline(__always)
func softmaxRow(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    var m = x[0]
    for k in 1..<n where x[k] > m { m = x[k] }
    var s: Float = 0
    for k in 0..<n { let e = expf(x[k] - m); x[k] = e; s += e }
    for k in 0..<n { x[k] /= s }
}

/// Fills a task model's weights: embeddings U(±0.05); recurrent weights and biases U(±1/√units), LSTM
/// forget-gate biases +1, peepholes 0; dense weights Glorot-uniform, biases 0.
func initializeTaskWeights(_ layout: ParameterLayout, _ arch: Architecture, _ P: UnsafeMutablePointer<Float>, seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    func fill(_ name: String, _ bound: Float) {
        guard let e = layout.entry(name) else { return }
        for i in 0..<e.count { P[e.offset + i] = Float(rng.nextUnit() * 2 - 1) * bound }
    }
    for (prefix, layers) in [("encoder.", arch.encoder), ("", arch.layers)] {
        for (i, layer) in layers.enumerated() {
            let p = "\(prefix)layer.\(i)."
            switch layer {
            case .embedding:
                fill(p + "embeddings", 0.05)
            case .recurrent(let r):
                for q in r.bidirectional ? [p + "forward.", p + "backward."] : [p] {
                    let k = 1 / Float(r.units).squareRoot()
                    for n in ["kernel", "recurrent_kernel", "bias", "recurrent_bias"] { fill(q + n, k) }
                    if let e = layout.entry(q + "peephole") { (P + e.offset).update(repeating: 0, count: e.count) }
                    if r.cell == .lstm, let e = layout.entry(q + "bias") {
                        for j in 0..<r.units { P[e.offset + r.units + j] += 1 }
                    }
                }
            case .dense(let n, let u, _):
                fill(p + "kernel", (6 / Float(n + u)).squareRoot())
                if let e = layout.entry(p + "bias") { (P + e.offset).update(repeating: 0, count: e.count) }
            }
        }
    }
}
