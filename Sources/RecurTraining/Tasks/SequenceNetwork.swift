#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Recur

/// A padded batch of B sequences of at most T tokens, time-major (row t·B + b holds sequence b at step t).
/// Sequences are right-padded with PAD; `mask` is 1 at real tokens and 0 at padding.
public struct SequenceBatch: Sendable {
    public var B: Int, T: Int
    public var tokens: [Int32]
    public var mask: [Float]
    /// classify: one label per sequence [B] (−1: an empty filler row); tag: one label per step [T·B]
    /// (ignored where the mask is 0).
    public var labels: [Int32]

    /// Builds a batch from sequences (each non-empty) and their labels (one per sequence, or one per token
    /// when `perStep`), padded to B rows with empty rows.
    public init(_ seqs: [[Int]], labels: [[Int]], rows B: Int, pad: Int, perStep: Bool) {
        precondition(seqs.count <= B)
        self.B = B
        T = max(seqs.map(\.count).max() ?? 1, 1)
        tokens = [Int32](repeating: Int32(pad), count: T * B)
        mask = [Float](repeating: 0, count: T * B)
        self.labels = [Int32](repeating: -1, count: perStep ? T * B : B)
        for (b, s) in seqs.enumerated() {
            for (t, tok) in s.enumerated() {
                tokens[t * B + b] = Int32(tok)
                mask[t * B + b] = 1
                if perStep { self.labels[t * B + b] = Int32(labels[b][t]) }
            }
            if !perStep { self.labels[b] = Int32(labels[b][0]) }
        }
    }
}

/// What a forward pass over a batch found.
public struct BatchResult: Sendable {
    /// Summed loss (nats) over the counted items (sequences or real tokens).
    public var loss: Double
    /// Correct predictions and counted items: sequences (classify) or real, non-PAD tokens (tag).
    public var correct: Int
    public var count: Int
}

/// A sequence classifier or tagger being trained: Embedding → one recurrent layer (unidirectional or
/// bidirectional with concat merge; returning its last step for "classify", every step for "tag") →
/// Dense layers. The loss is binary cross-entropy on a single sigmoid output, or softmax cross-entropy
/// (per sequence, or per real token for "tag"; padding counts neither in the loss nor in the accuracy).
///
/// The weights live in one flat buffer in `ParameterLayout` order (the runtime's tensors), so writing
/// the model is a copy. Each direction is a `RecurrentPass` on that buffer; the backward direction runs over
/// the time-reversed rows (inputs, mask and outputs reversed here), so right padding becomes left padding,
/// skipped from a zero state — the runtime's backward direction.
public final class SequenceNetwork: @unchecked Sendable {
    public let architecture: Architecture
    public let vocabulary: Vocabulary
    public let layout: ParameterLayout
    let params: FloatBuffer
    let grads: FloatBuffer
    let maxB: Int, maxT: Int
    let E: Int, embeddings: Int
    let spec: RecurrentSpec
    let dirs: [RecurrentPass]
    let dense: [DenseLayer]
    let tagging: Bool
    // Activations, allocated once.
    let x0: FloatBuffer, xr: FloatBuffer, maskR: FloatBuffer, dxf: FloatBuffer, dxb: FloatBuffer
    let y: FloatBuffer, acts: [FloatBuffer], dA: FloatBuffer, dB: FloatBuffer

    public init(architecture: Architecture, vocabulary: Vocabulary, maxBatch: Int, maxSteps: Int) throws {
        try architecture.validate()
        guard architecture.task == .classify || architecture.task == .tag else {
            throw RecurError(.unsupported, "a sequence network is a classify or tag model (got '\(architecture.task.rawValue)')")
        }
        tagging = architecture.task == .tag
        let L = architecture.layers
        guard L.count >= 3, case .embedding(let v, let e) = L[0], case .recurrent(let r) = L[1] else {
            throw RecurError(.unsupported, "the task trainer needs Embedding → one recurrent layer → Dense layers")
        }
        guard v == vocabulary.count, vocabulary.pad != nil else {
            throw RecurError(.model, "the embedding must cover the vocabulary, which needs a PAD token")
        }
        guard !r.bidirectional || r.mergeMode == .concat else { throw RecurError(.unsupported, "only the concat merge mode is trained") }
        guard r.returnSequences == tagging else {
            throw RecurError(.unsupported, tagging ? "a tagger's recurrent layer returns sequences" : "a classifier's recurrent layer returns its last step")
        }
        self.architecture = architecture
        self.vocabulary = vocabulary
        let layout = ParameterLayout(architecture)
        self.layout = layout
        params = FloatBuffer(layout.count)
        grads = FloatBuffer(layout.count)
        maxB = maxBatch; maxT = maxSteps
        E = e
        embeddings = layout.entry("layer.0.embeddings")!.offset
        spec = r
        dirs = try (r.bidirectional ? ["layer.1.forward.", "layer.1.backward."] : ["layer.1."]).map {
            RecurrentPass(try RecurrentTensors(spec: r, prefix: $0, layout: layout), streams: maxBatch, steps: maxSteps, withGradients: true)
        }
        var dense: [DenseLayer] = []
        for i in 2..<L.count {
            guard case .dense(let n, let u, let a) = L[i] else { throw RecurError(.unsupported, "layer \(i) must be dense") }
            dense.append(DenseLayer(w: layout.entry("layer.\(i).kernel")!.offset, b: layout.entry("layer.\(i).bias")!.offset,
                                    inputs: n, units: u, activation: a))
        }
        let head = dense.last!
        guard (head.units == 1 && head.activation == .sigmoid && !tagging) || (head.units >= 2 && head.activation == .softmax) else {
            throw RecurError(.unsupported, "the last layer must be Dense(1, sigmoid) (classify) or Dense(classes, softmax)")
        }
        guard dense.dropLast().allSatisfy({ $0.activation != .softmax }) else { throw RecurError(.unsupported, "softmax only in the last layer") }
        self.dense = dense
        let TB = maxB * maxT, rows = tagging ? TB : maxB
        x0 = FloatBuffer(TB * e); xr = FloatBuffer(TB * e); maskR = FloatBuffer(TB)
        dxf = FloatBuffer(TB * e); dxb = FloatBuffer(TB * e)
        y = FloatBuffer(rows * r.outputSize)
        acts = dense.map { FloatBuffer(rows * $0.units) }
        let widest = max(r.outputSize, dense.map(\.units).max()!)
        dA = FloatBuffer(rows * widest); dB = FloatBuffer(rows * widest)
    }

    /// All weights, flat, in `layout` order.
    public var parameters: [Float] {
        get { params.array }
        set { params.load(newValue) }
    }

    public func initialize(seed: UInt64) { initializeTaskWeights(layout, architecture, params.p, seed: seed) }

    /// Number of output rows of a batch: one per sequence (classify) or per step (tag).
    func rows(_ batch: SequenceBatch) -> Int { tagging ? batch.T * batch.B : batch.B }

    /// The head's outputs [rows, units] after `forward`: probabilities (softmax or sigmoid).
    func outputs(_ batch: SequenceBatch) -> [Float] {
        Array(UnsafeBufferPointer(start: acts.last!.p, count: rows(batch) * dense.last!.units))
    }

    /// Forward pass; with `train`, also the backward pass, the gradient of the mean loss left in `grads`.
    @discardableResult
    public func forward(_ batch: SequenceBatch, train: Bool = false) -> BatchResult {
        let B = batch.B, T = batch.T, TB = T * B
        precondition(B == maxB && T <= maxT)
        let P = UnsafePointer(params.p)
        let H = spec.units, W = spec.outputSize
        lookUpEmbeddings(P + embeddings, E, batch.tokens, count: TB, into: x0.p)
        batch.mask.withUnsafeBufferPointer { m in
            dirs[0].start(from: nil)
            dirs[0].forward(P, steps: T, input: x0.p, mask: m.baseAddress!)
            if dirs.count == 2 {
                for t in 0..<T {
                    (xr.p + t * B * E).update(from: x0.p + (T - 1 - t) * B * E, count: B * E)
                    (maskR.p + t * B).update(from: m.baseAddress! + (T - 1 - t) * B, count: B)
                }
                dirs[1].start(from: nil)
                dirs[1].forward(P, steps: T, input: xr.p, mask: maskR.p)
            }
        }
        // Merge (concat): Y [rows, W]
        let fo = dirs[0].output
        let bo = dirs.count == 2 ? dirs[1].output : nil
        if tagging {
            for t in 0..<T {
                for b in 0..<B {
                    let row = y.p + (t * B + b) * W
                    row.update(from: fo + (t * B + b) * H, count: H)
                    if let bo { (row + H).update(from: bo + ((T - 1 - t) * B + b) * H, count: H) }
                }
            }
        } else {
            for b in 0..<B {
                let row = y.p + b * W
                row.update(from: fo + ((T - 1) * B + b) * H, count: H)
                if let bo { (row + H).update(from: bo + ((T - 1) * B + b) * H, count: H) }
            }
        }
        let N = rows(batch)
        var input = UnsafePointer(y.p)
        for (k, d) in dense.enumerated() {
            d.forward(P, input, rows: N, acts[k].p)
            input = UnsafePointer(acts[k].p)
        }
        // Loss, accuracy and ∂loss/∂z of the head.
        let head = dense.last!, U = head.units
        let out = acts.last!.p
        var loss = 0.0, correct = 0, count = 0
        let dz = dA.p
        dz.update(repeating: 0, count: N * U)
        for i in 0..<N {
            let y = Int(batch.labels[i])
            if tagging ? batch.mask[i] == 0 : y < 0 { continue }
            count += 1
            let o = out + i * U
            if U == 1 {
                let p = Double(o[0])
                loss -= y == 1 ? log(max(p, 1e-12)) : log(max(1 - p, 1e-12))
                if (p >= 0.5 ? 1 : 0) == y { correct += 1 }
                dz[i] = o[0] - Float(y)
            } else {
                loss -= log(max(Double(o[y]), 1e-30))
                if argmax(o, U) == y { correct += 1 }
                for k in 0..<U { dz[i * U + k] = o[k] }
                dz[i * U + y] -= 1
            }
        }
        if train && count > 0 {
            let scale = 1 / Float(count)
            for i in 0..<(N * U) { dz[i] *= scale }
            backward(batch, rows: N)
        }
        return BatchResult(loss: loss, correct: correct, count: count)
    }

    private func backward(_ batch: SequenceBatch, rows N: Int) {
        let B = batch.B, T = batch.T, TB = T * B
        let P = UnsafePointer(params.p), G = grads.p
        let H = spec.units, W = spec.outputSize
        grads.zero()
        var dz = dA.p, other = dB.p
        for k in stride(from: dense.count - 1, through: 0, by: -1) {
            let d = dense[k]
            let x = k == 0 ? UnsafePointer(y.p) : UnsafePointer(acts[k - 1].p)
            d.backward(P, G, x, rows: N, dz, other)
            if k > 0 {
                let a = dense[k - 1].activation
                for i in 0..<(N * d.inputs) { other[i] *= derivative(a, output: x[i]) }
            }
            swap(&dz, &other)
        }
        // dz now holds ∂loss/∂Y [N, W]: split it into the directions' output gradients.
        let df = dirs[0].dout.p
        df.update(repeating: 0, count: TB * H)
        let db = dirs.count == 2 ? dirs[1].dout.p : nil
        db?.update(repeating: 0, count: TB * H)
        if tagging {
            for t in 0..<T {
                for b in 0..<B {
                    let row = dz + (t * B + b) * W
                    (df + (t * B + b) * H).update(from: row, count: H)
                    if let db { (db + ((T - 1 - t) * B + b) * H).update(from: row + H, count: H) }
                }
            }
        } else {
            for b in 0..<B {
                (df + ((T - 1) * B + b) * H).update(from: dz + b * W, count: H)
                if let db { (db + ((T - 1) * B + b) * H).update(from: dz + b * W + H, count: H) }
            }
        }
        batch.mask.withUnsafeBufferPointer { m in
            dirs[0].backward(P, G, steps: T, input: x0.p, dx: dxf.p, mask: m.baseAddress!)
            if dirs.count == 2 {
                dirs[1].backward(P, G, steps: T, input: xr.p, dx: dxb.p, mask: maskR.p)
            }
        }
        let gE = G + embeddings
        for t in 0..<T {
            for b in 0..<B where batch.mask[t * B + b] != 0 {
                let dst = gE + Int(batch.tokens[t * B + b]) * E
                let f = dxf.p + (t * B + b) * E
                for k in 0..<E { dst[k] += f[k] }
                if dirs.count == 2 {
                    let r = dxb.p + ((T - 1 - t) * B + b) * E
                    for k in 0..<E { dst[k] += r[k] }
                }
            }
        }
    }

    /// The gradient of the last `forward(_, train: true)`, flat in `layout` order.
    public var gradients: [Float] { grads.array }

    /// A model builder holding the current weights.
    public func modelBuilder(metadata: [(String, MetaValue)] = []) -> ModelBuilder {
        layout.modelBuilder(architecture, vocabulary, weights: params.p, metadata: metadata)
    }
}
