#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Recur

/// A character generator being trained: Embedding → recurrent layers → Dense(vocabulary), softmax
/// cross-entropy. The weights live in one flat buffer (`ParameterLayout`) in exactly the layouts and gate
/// orders the runtime reads, so writing a model is a copy.
///
/// The forward and backward passes run over a window of T steps for B streams at once, time-major
/// (row t·B + b holds stream b at step t); each recurrent layer is a `RecurrentPass` on the flat buffer.
public final class Network: @unchecked Sendable {
    public let architecture: Architecture
    public let vocabulary: Vocabulary
    public let layout: ParameterLayout
    let params: FloatBuffer
    let plan: Plan

    struct Plan {
        let V: Int, E: Int
        let embeddings: Int
        let rec: [RecurrentTensors]
        let denseW: Int, denseB: Int, denseIn: Int
    }

    /// Checks that `architecture` is a generator the trainer handles: an embedding, one or more
    /// unidirectional recurrent layers returning sequences, and a linear dense layer over the vocabulary.
    public init(architecture: Architecture, vocabulary: Vocabulary) throws {
        try architecture.validate()
        let layout = ParameterLayout(architecture)
        var layers = architecture.layers[...]
        guard case .embedding(let v, let e)? = layers.popFirst() else {
            throw RecurError(.unsupported, "the trainer needs an embedding as the first layer")
        }
        guard v == vocabulary.count else {
            throw RecurError(.model, "the embedding has \(v) rows but the vocabulary has \(vocabulary.count) tokens")
        }
        guard case .dense(let dIn, let dOut, let act)? = layers.popLast(), dOut == v, act == .linear else {
            throw RecurError(.unsupported, "the trainer needs a linear dense layer over the vocabulary as the last layer (softmax is in the loss)")
        }
        var rec: [RecurrentTensors] = []
        for (k, layer) in layers.enumerated() {
            guard case .recurrent(let r) = layer else {
                throw RecurError(.unsupported, "layer \(k + 1): the trainer handles only recurrent layers between the embedding and the output layer")
            }
            guard !r.bidirectional, r.returnSequences else {
                throw RecurError(.unsupported, "layer \(k + 1): the trainer handles only unidirectional layers that return sequences")
            }
            rec.append(try RecurrentTensors(spec: r, prefix: "layer.\(k + 1).", layout: layout))
        }
        guard !rec.isEmpty else { throw RecurError(.unsupported, "the trainer needs at least one recurrent layer") }
        let last = "layer.\(rec.count + 1)."
        plan = Plan(V: v, E: e, embeddings: layout.entry("layer.0.embeddings")!.offset, rec: rec,
                    denseW: layout.entry(last + "kernel")!.offset, denseB: layout.entry(last + "bias")!.offset, denseIn: dIn)
        self.architecture = architecture
        self.vocabulary = vocabulary
        self.layout = layout
        params = FloatBuffer(layout.count)
    }

    /// All weights, flat, in `layout` order.
    public var parameters: [Float] {
        get { params.array }
        set { params.load(newValue) }
    }

    public var parameterCount: Int { layout.count }

    /// Fills the weights as PyTorch initializes these layers: embeddings N(0, 1); recurrent and dense
    /// weights and biases U(−1/√fan, 1/√fan) with fan the layer's units (recurrent) or inputs (dense).
    /// LSTM forget-gate biases start at 1, peephole weights at 0.
    public func initialize(rng: inout SplitMix64) {
        let P = params.p
        func uniform(_ offset: Int, _ n: Int, _ bound: Float) {
            for i in 0..<n { P[offset + i] = Float(rng.nextUnit() * 2 - 1) * bound }
        }
        let n = plan.V * plan.E
        var i = 0
        while i < n {   // Box–Muller: two normals from two uniforms
            let u1 = max(rng.nextUnit(), 1e-300), u2 = rng.nextUnit()
            let r = (-2 * log(u1)).squareRoot()
            P[plan.embeddings + i] = Float(r * cos(2 * Double.pi * u2))
            if i + 1 < n { P[plan.embeddings + i + 1] = Float(r * sin(2 * Double.pi * u2)) }
            i += 2
        }
        for r in plan.rec {
            let k = 1 / Float(r.H).squareRoot()
            uniform(r.w, r.G * r.In, k)
            uniform(r.u, r.G * r.H, k)
            uniform(r.b, r.G, k)
            if let bh = r.bh { uniform(bh, r.G, k) }
            if let p = r.peep { (P + p).update(repeating: 0, count: 3 * r.H) }
            r.cell.initializeBias(P + r.b, units: r.H)
        }
        let k = 1 / Float(plan.denseIn).squareRoot()
        uniform(plan.denseW, plan.V * plan.denseIn, k)
        uniform(plan.denseB, plan.V, k)
    }

    /// A model builder holding the current weights as f32 tensors, plus `metadata`.
    public func modelBuilder(metadata: [(String, MetaValue)] = []) -> ModelBuilder {
        layout.modelBuilder(architecture, vocabulary, weights: params.p, metadata: metadata)
    }

    /// The runtime's model of the current weights, loaded from memory. It steps on the calling thread
    /// (no kernel pool): the trainer's own threads are busy or idle between epochs, and a pool's hand-offs
    /// cost more than they save when the processors are shared.
    public func runtimeModel(metadata: [(String, MetaValue)] = []) throws -> Model {
        let bytes = modelBuilder(metadata: metadata).writer().serialize()
        var options = Model.Options()
        options.threads = 1
        return try bytes.withUnsafeBytes { try Model(bytes: $0, options: options) }
    }

    /// The logits after each token of `tokens`, read by one stream from a zero state in windows of
    /// `window` tokens (the state carried from window to window). For comparing with the runtime.
    public func logits(_ tokens: [Int], window: Int = 100) -> [[Float]] {
        let ws = Workspace(self, streams: 1, steps: window)
        var out: [[Float]] = []
        var start = 0
        while start < tokens.count {
            let T = min(window, tokens.count - start)
            for t in 0..<T {
                ws.inputs[t] = Int32(tokens[start + t])
                ws.targets[t] = 0
            }
            forward(ws, steps: T, mode: .logits)
            for t in 0..<T {
                out.append(Array(UnsafeBufferPointer(start: ws.logits.p + t * plan.V, count: plan.V)))
            }
            start += T
        }
        return out
    }

    /// Mean cross-entropy (nats per token) of predicting each token of `tokens` from the ones before it,
    /// one stream from a zero state, in windows of `window` steps with the state carried along.
    public func meanLoss(_ tokens: ArraySlice<Int32>, window: Int) -> Double {
        guard tokens.count >= 2 else { return .nan }
        let ws = Workspace(self, streams: 1, steps: window)
        var total = 0.0
        var start = tokens.startIndex
        let end = tokens.endIndex - 1    // last input position + 1
        while start < end {
            let T = min(window, end - start)
            for t in 0..<T {
                ws.inputs[t] = tokens[start + t]
                ws.targets[t] = tokens[start + t + 1]
            }
            total += forward(ws, steps: T, mode: .loss)
            start += T
        }
        return total / Double(tokens.count - 1)
    }
}

/// What a forward pass computes besides the loss.
enum ForwardMode {
    /// Loss only.
    case loss
    /// Loss, and d(loss·scale)/d(logits) in place of the logits, ready for `backward`.
    case train(scale: Float, dropoutSeed: UInt64?, dropout: Float)
    /// Keep the logits (no loss).
    case logits
}

/// Activations and gradients of one shard of streams over one window, allocated once and reused.
/// The carried recurrent state of each layer (`layers[l].carryH`, `carryC`) survives from one window to the next.
final class Workspace: @unchecked Sendable {
    let B: Int, T: Int
    var inputs: [Int32]
    var targets: [Int32]
    /// Layer inputs that must be materialized: the embeddings (layer 0) or the dropped-out outputs of the
    /// layer below. [T·B, In]
    let x: [FloatBuffer]
    /// The recurrent layers' passes (activations, carried state, gradients with respect to their outputs).
    let layers: [RecurrentPass]
    /// Dropout masks of layer inputs (index ≥ 1) and of the output layer's input (index = layer count).
    let mask: [FloatBuffer?]
    let dx0: FloatBuffer
    /// The output layer's input when dropout applies. [T·B, H_top]
    let xd: FloatBuffer
    let logits: FloatBuffer
    let grads: FloatBuffer
    var dropoutActive = false

    init(_ net: Network, streams B: Int, steps T: Int, withGradients: Bool = false) {
        self.B = B; self.T = T
        let plan = net.plan
        let TB = T * B
        inputs = [Int32](repeating: 0, count: TB)
        targets = [Int32](repeating: 0, count: TB)
        x = plan.rec.map { FloatBuffer(TB * $0.In) }
        let g = withGradients
        layers = plan.rec.map { RecurrentPass($0, streams: B, steps: T, withGradients: g) }
        mask = (0...plan.rec.count).map { i in g && i >= 1 ? FloatBuffer(TB * (i < plan.rec.count ? plan.rec[i].In : plan.denseIn)) : nil }
        dx0 = FloatBuffer(g ? TB * plan.E : 0)
        xd = FloatBuffer(g ? TB * plan.denseIn : 0)
        logits = FloatBuffer(TB * plan.V)
        grads = FloatBuffer(g ? net.layout.count : 0)
    }

    /// Zeroes the carried state of every layer.
    func resetState() {
        for l in layers { l.resetState() }
    }
}

extension Network {
    /// Runs one window of `steps` ≤ ws.T steps on the inputs in `ws`, from its carried state, and leaves the
    /// state after the window in it. Returns the summed cross-entropy (nats) of the targets, except in
    /// `.logits` mode. In `.train` mode the logits are replaced by the scaled loss gradient.
    @discardableResult
    func forward(_ ws: Workspace, steps T: Int, mode: ForwardMode) -> Double {
        let B = ws.B, TB = T * B
        let P = params.p
        let E = plan.E
        // Embedding lookup: X0 [T·B, E]
        let x0 = ws.x[0].p
        lookUpEmbeddings(P + plan.embeddings, E, ws.inputs, count: TB, into: x0)
        var dropout: Float = 0
        var seed: UInt64 = 0
        if case .train(_, let s?, let p) = mode, p > 0 { dropout = p; seed = s }
        ws.dropoutActive = dropout > 0
        var input = UnsafePointer(x0)
        for l in 0..<plan.rec.count {
            if l > 0 {
                let below = UnsafePointer(ws.layers[l - 1].output)
                input = dropout > 0 ? applyDropout(below, TB * plan.rec[l].In, ws.mask[l]!, ws.x[l], dropout, seed, l) : below
            }
            ws.layers[l].forward(P, steps: T, input: input)
        }
        let top = plan.rec.count - 1
        let topOut = UnsafePointer(ws.layers[top].output)
        let xd = dropout > 0 ? applyDropout(topOut, TB * plan.denseIn, ws.mask[plan.rec.count]!, ws.xd, dropout, seed, plan.rec.count) : topOut
        // logits [T·B, V] = Xd · Wdᵀ + bd
        let V = plan.V
        let logits = ws.logits.p
        for i in 0..<TB { (logits + i * V).update(from: P + plan.denseB, count: V) }
        sgemm(false, true, m: TB, n: V, k: plan.denseIn, xd, lda: plan.denseIn, P + plan.denseW, ldb: plan.denseIn,
              beta: 1, logits, ldc: V)
        if case .logits = mode { return 0 }
        var scale: Float = 0
        var train = false
        if case .train(let s, _, _) = mode { scale = s; train = true }
        // Softmax cross-entropy; in training, logits ← scale · (softmax − onehot(target)).
        var total = 0.0
        for i in 0..<TB {
            let row = logits + i * V
            let y = Int(ws.targets[i])
            var m = row[0]
            for k in 1..<V where row[k] > m { m = row[k] }
            let ly = row[y]
            var s: Float = 0
            for k in 0..<V {
                let e = expf(row[k] - m)
                row[k] = e
                s += e
            }
            total -= Double(ly - m - logf(s))
            if train {
                let f = scale / s
                for k in 0..<V { row[k] *= f }
                row[y] -= scale
            }
        }
        return total
    }

    /// dst = src ⊙ mask with mask ∈ {0, 1/(1−p)} drawn from a generator seeded by (seed, layer).
    private func applyDropout(_ src: UnsafePointer<Float>, _ n: Int, _ mask: FloatBuffer, _ dst: FloatBuffer,
                              _ p: Float, _ seed: UInt64, _ layer: Int) -> UnsafePointer<Float> {
        var rng = SplitMix64(seed: seed ^ (UInt64(layer + 1) &* 0xD1B5_4A32_D192_ED03))
        let keep = 1 / (1 - p)
        let pd = Double(p)
        for i in 0..<n {
            let m: Float = rng.nextUnit() < pd ? 0 : keep
            mask.p[i] = m
            dst.p[i] = src[i] * m
        }
        return UnsafePointer(dst.p)
    }

    /// Backward pass of the window last run by `forward(ws, steps: T, mode: .train(...))`. Adds the
    /// gradients of every weight to `ws.grads` (which the caller zeroes at the start of a step).
    func backward(_ ws: Workspace, steps T: Int) {
        let B = ws.B, TB = T * B
        let P = params.p, g = ws.grads.p
        let V = plan.V, Hd = plan.denseIn
        let top = plan.rec.count - 1
        let topOut = UnsafePointer(ws.layers[top].output)
        let xd = ws.dropoutActive ? UnsafePointer(ws.xd.p) : topOut
        let dl = UnsafePointer(ws.logits.p)
        // Dense: dWd += dlᵀ · Xd, dbd += Σ rows dl, dXd = dl · Wd
        sgemm(true, false, m: V, n: Hd, k: TB, dl, lda: V, xd, ldb: Hd, beta: 1, g + plan.denseW, ldc: Hd)
        columnSums(dl, rows: TB, cols: V, into: g + plan.denseB)
        sgemm(false, false, m: TB, n: Hd, k: V, dl, lda: V, P + plan.denseW, ldb: Hd, beta: 0, ws.layers[top].dout.p, ldc: Hd)
        if ws.dropoutActive { multiply(ws.layers[top].dout.p, ws.mask[plan.rec.count]!.p, TB * Hd) }
        for l in stride(from: top, through: 0, by: -1) {
            let r = plan.rec[l]
            let input: UnsafePointer<Float>
            if l == 0 {
                input = UnsafePointer(ws.x[0].p)
            } else {
                input = ws.dropoutActive ? UnsafePointer(ws.x[l].p) : UnsafePointer(ws.layers[l - 1].output)
            }
            let dx = l == 0 ? ws.dx0.p : ws.layers[l - 1].dout.p
            ws.layers[l].backward(P, g, steps: T, input: input, dx: dx)
            if l > 0 && ws.dropoutActive { multiply(dx, ws.mask[l]!.p, TB * r.In) }
        }
        // Embedding: dE[token] += dX0 row
        addEmbeddingGradients(ws.dx0.p, plan.E, ws.inputs, count: TB, into: g + plan.embeddings)
    }
}
