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
    /// (ignored where the mask is 0); regress: per step, 1 where the step's outputs count in the loss and
    /// −1 where they do not (a burn-in).
    public var labels: [Int32]
    /// Frame models: the frames, already normalised, [T·B, F] (zeros at padding); empty for token models.
    public var frames: [Float] = []
    /// regress: the targets of every step [T·B, outputs]; empty otherwise.
    public var targets: [Float] = []

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

    /// Builds a batch of frame sequences (each T_i × F floats, row-major, normalised, non-empty), padded to
    /// B rows with empty rows: one label per sequence, or per step when `perStep`; for a regressor also the
    /// targets of every step (T_i × `outputs` floats per sequence).
    public init(frames seqs: [[Float]], frameSize F: Int, labels: [[Int]], rows B: Int, perStep: Bool,
                targets: [[Float]] = [], outputs U: Int = 0) {
        precondition(seqs.count <= B && F >= 1)
        self.B = B
        T = max(seqs.map { $0.count / F }.max() ?? 1, 1)
        tokens = [Int32](repeating: 0, count: T * B)
        mask = [Float](repeating: 0, count: T * B)
        self.labels = [Int32](repeating: -1, count: perStep ? T * B : B)
        frames = [Float](repeating: 0, count: T * B * F)
        if !targets.isEmpty { self.targets = [Float](repeating: 0, count: T * B * U) }
        for (b, s) in seqs.enumerated() {
            precondition(s.count % F == 0)
            for t in 0..<(s.count / F) {
                let row = t * B + b
                mask[row] = 1
                for j in 0..<F { frames[row * F + j] = s[t * F + j] }
                if perStep { self.labels[row] = Int32(labels[b][t]) }
                if !targets.isEmpty { for k in 0..<U { self.targets[row * U + k] = targets[b][t * U + k] } }
            }
            if !perStep { self.labels[b] = Int32(labels[b][0]) }
        }
    }
}

/// The loss of a regressor, per counted step: the mean over its outputs of the squared or absolute error.
public enum RegressionLoss: String, Sendable, CaseIterable {
    case mse, mae
}

/// Dropout rates of a classifier's or tagger's training passes (each in [0, 1); 0: none). Every mask is
/// inverted dropout (kept values scaled by 1/(1 − p)) and drawn afresh for each batch; the written model has
/// no dropout.
public struct SequenceDropout: Sendable, Equatable {
    /// Word dropout (token models): each real token is read as UNK with this probability, so the UNK
    /// embedding the runtime uses for words outside the vocabulary is trained.
    public var word: Float = 0
    /// Spatial dropout of the embeddings (Keras `SpatialDropout1D`): whole embedding channels, one mask
    /// [B, E] per sequence, shared by every step and both directions.
    public var spatial: Float = 0
    /// Dropout of the recurrent layer's inputs (Keras `dropout=` of the cell): one mask [B, In] per sequence
    /// and direction, the same at every step.
    public var input: Float = 0
    /// Recurrent (variational) dropout (Keras `recurrent_dropout=`): per direction one mask [B, H] per gate
    /// block on h_prev where it enters the recurrent kernel, the same at every step; the carried state
    /// itself is not dropped.
    public var recurrent: Float = 0
    /// Dropout of the recurrent layer's (merged) outputs (a Keras `Dropout` layer after it): every element
    /// of the rows that feed the Dense layers.
    public var output: Float = 0

    public init(word: Float = 0, spatial: Float = 0, input: Float = 0, recurrent: Float = 0, output: Float = 0) {
        self.word = word; self.spatial = spatial; self.input = input; self.recurrent = recurrent; self.output = output
    }

    /// Whether any mask is drawn.
    public var active: Bool { word > 0 || spatial > 0 || input > 0 || recurrent > 0 || output > 0 }

    func validate() throws {
        for (name, p) in [("word", word), ("spatial", spatial), ("input", input), ("recurrent", recurrent), ("output", output)] where !(p >= 0 && p < 1) {
            throw RecurError(.invalidArgument, "the \(name) dropout rate must be in [0, 1) (got \(p))")
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

/// A sequence classifier, tagger or regressor being trained: Embedding (token models) or frames (frame
/// models, `model.input = frames`, normalised before they reach the network) → one recurrent layer
/// (unidirectional or bidirectional with concat merge; returning its last step for "classify", every step
/// for "tag", "regress" and a classifier that pools by mean) → Dense layers. The loss is binary
/// cross-entropy on a single sigmoid output, softmax cross-entropy (per sequence, or per real step for
/// "tag"), or the mean squared or absolute error of a linear head ("regress", per counted step); padding
/// counts neither in the loss nor in the accuracy, and a mean-pooling classifier averages over real steps
/// only, as the runtime does.
///
/// The weights live in one flat buffer in `ParameterLayout` order (the runtime's tensors), so writing
/// the model is a copy. Each direction is a `RecurrentPass` on that buffer; the backward direction runs over
/// the time-reversed rows (`BidirectionalPass`), so right padding becomes left padding, skipped from a zero
/// state — the runtime's backward direction.
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
    /// The two directions of a bidirectional layer (`dirs` is then [forward, backward]).
    let bidi: BidirectionalPass?
    let dense: [DenseLayer]
    let tagging: Bool
    /// Frame models: the floats of a frame (the network's input width); nil for token models.
    let frameSize: Int?
    /// A regressor (per-step real outputs), and a classifier that pools the steps by mean.
    let regress: Bool, pooled: Bool
    /// regress: the loss.
    public var regressionLoss = RegressionLoss.mse
    /// Dropout of training passes (`forward(_:train:rng:)` and `forward(_:train:dropoutSeed:)`).
    public var dropout = SequenceDropout()
    /// L2 weight decay λ: training passes add λ·Σ w² over every kernel (the recurrent layer's input kernels
    /// and the Dense kernels, not the recurrent kernels, biases or embeddings) to the mean loss, as Keras'
    /// `kernel_regularizer=l2(λ)` on those layers, and 2λ·w to the kernels' gradients.
    public var l2: Float = 0
    /// The masks of the last pass with dropout (0 or 1/(1 − p)): spatial [B·E], input per direction [B·In],
    /// output [rows·W]; empty when that dropout is off. The recurrent masks are in the passes.
    var spatialMask: [Float] = [], inputMasks: [[Float]] = [], outputMask: [Float] = []
    /// The token ids the last pass read [T·B]: the batch's, with word dropout some replaced by UNK.
    var tokensRead: [Int32] = []
    /// The forward direction's masked input when input dropout applies. [T·B, E]
    let xm: FloatBuffer
    // Activations, allocated once.
    let x0: FloatBuffer, dxf: FloatBuffer
    let y: FloatBuffer, acts: [FloatBuffer], dA: FloatBuffer, dB: FloatBuffer
    /// Mean pooling: the merged per-step outputs [T·B, W] before pooling, and their gradient.
    let ys: FloatBuffer, dys: FloatBuffer
    /// One output row per step (tag, regress) rather than per sequence.
    var perStep: Bool { tagging || regress }

    public init(architecture: Architecture, vocabulary: Vocabulary, maxBatch: Int, maxSteps: Int) throws {
        try architecture.validate()
        guard architecture.task == .classify || architecture.task == .tag || architecture.task == .regress else {
            throw RecurError(.unsupported, "a sequence network is a classify, tag or regress model (got '\(architecture.task.rawValue)')")
        }
        tagging = architecture.task == .tag
        regress = architecture.task == .regress
        pooled = architecture.pooling == .mean
        frameSize = architecture.input.frameSize
        let L = architecture.layers
        let first: Int, e: Int, r: RecurrentSpec
        if let f = frameSize {
            guard L.count >= 2, case .recurrent(let spec) = L[0] else {
                throw RecurError(.unsupported, "the task trainer needs frames → one recurrent layer → Dense layers")
            }
            first = 0; e = f; r = spec
        } else {
            guard L.count >= 3, case .embedding(let v, let width) = L[0], case .recurrent(let spec) = L[1] else {
                throw RecurError(.unsupported, "the task trainer needs Embedding → one recurrent layer → Dense layers")
            }
            guard v == vocabulary.count, vocabulary.pad != nil else {
                throw RecurError(.model, "the embedding must cover the vocabulary, which needs a PAD token")
            }
            guard !regress else { throw RecurError(.unsupported, "a regressor reads frames") }
            first = 1; e = width; r = spec
        }
        guard !r.bidirectional || r.mergeMode == .concat else { throw RecurError(.unsupported, "only the concat merge mode is trained") }
        guard r.returnSequences == (tagging || regress || pooled) else {
            throw RecurError(.unsupported, tagging || regress || pooled
                ? "a \(pooled ? "mean-pooling classifier" : tagging ? "tagger" : "regressor")'s recurrent layer returns sequences"
                : "a classifier's recurrent layer returns its last step")
        }
        self.architecture = architecture
        self.vocabulary = vocabulary
        let layout = ParameterLayout(architecture)
        self.layout = layout
        params = FloatBuffer(layout.count)
        grads = FloatBuffer(layout.count)
        maxB = maxBatch; maxT = maxSteps
        E = e
        embeddings = frameSize == nil ? layout.entry("layer.0.embeddings")!.offset : -1
        spec = r
        let p = "layer.\(first)."
        if r.bidirectional {
            let pair = try BidirectionalPass(spec: r, prefix: p, layout: layout, streams: maxBatch, steps: maxSteps, withGradients: true)
            bidi = pair; dirs = pair.directions
        } else {
            bidi = nil
            dirs = [RecurrentPass(try RecurrentTensors(spec: r, prefix: p, layout: layout), streams: maxBatch, steps: maxSteps, withGradients: true)]
        }
        var dense: [DenseLayer] = []
        for i in (first + 1)..<L.count {
            guard case .dense(let n, let u, let a) = L[i] else { throw RecurError(.unsupported, "layer \(i) must be dense") }
            dense.append(DenseLayer(w: layout.entry("layer.\(i).kernel")!.offset, b: layout.entry("layer.\(i).bias")!.offset,
                                    inputs: n, units: u, activation: a))
        }
        let head = dense.last!
        if regress {
            guard head.activation == .linear else { throw RecurError(.unsupported, "a regressor's last layer must be a linear Dense layer") }
        } else {
            guard (head.units == 1 && head.activation == .sigmoid && !tagging) || (head.units >= 2 && head.activation == .softmax) else {
                throw RecurError(.unsupported, "the last layer must be Dense(1, sigmoid) (classify) or Dense(classes, softmax)")
            }
        }
        guard dense.dropLast().allSatisfy({ $0.activation != .softmax }) else { throw RecurError(.unsupported, "softmax only in the last layer") }
        self.dense = dense
        let TB = maxB * maxT, rows = tagging || regress ? TB : maxB
        ys = FloatBuffer(pooled ? TB * r.outputSize : 0); dys = FloatBuffer(pooled ? TB * r.outputSize : 0)
        x0 = FloatBuffer(TB * e); xm = FloatBuffer(TB * e)
        dxf = FloatBuffer(TB * e)
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

    public func initialize(seed: UInt64, scheme: TaskInitializer = .uniform) {
        initializeTaskWeights(layout, architecture, params.p, seed: seed, scheme: scheme)
    }

    /// Number of output rows of a batch: one per sequence (classify) or per step (tag).
    func rows(_ batch: SequenceBatch) -> Int { perStep ? batch.T * batch.B : batch.B }

    /// The head's outputs [rows, units] after `forward`: probabilities (softmax or sigmoid), or a regressor's
    /// values (in the units of the normalised series).
    func outputs(_ batch: SequenceBatch) -> [Float] {
        Array(UnsafeBufferPointer(start: acts.last!.p, count: rows(batch) * dense.last!.units))
    }

    /// Forward pass without dropout; with `train`, also the backward pass, the gradient of the mean loss
    /// left in `grads`.
    @discardableResult
    public func forward(_ batch: SequenceBatch, train: Bool = false) -> BatchResult {
        run(batch, train: train, dropoutSeed: nil)
    }

    /// A training pass: with dropout (`dropout.active`), its masks come from a seed drawn from `rng` (which
    /// is left untouched otherwise, so a run without dropout draws what it always drew).
    @discardableResult
    public func forward(_ batch: SequenceBatch, train: Bool, rng: inout SplitMix64) -> BatchResult {
        run(batch, train: train, dropoutSeed: train && dropout.active ? rng.next() : nil)
    }

    /// A pass with the dropout masks of `dropoutSeed` (none when nil), whether or not it trains.
    @discardableResult
    func forward(_ batch: SequenceBatch, train: Bool, dropoutSeed: UInt64?) -> BatchResult {
        run(batch, train: train, dropoutSeed: dropoutSeed)
    }

    /// `count` values 0 (probability p) or 1/(1 − p); empty when p is 0.
    private static func mask(_ count: Int, _ p: Float, _ rng: inout SplitMix64) -> [Float] {
        guard p > 0 else { return [] }
        let keep = 1 / (1 - p), q = Double(p)
        return (0..<count).map { _ in rng.nextUnit() < q ? 0 : keep }
    }

    /// x[t·B + b][k] *= m[b][k] for every step: a per-sequence mask [B, width] over rows [T·B, width].
    private static func multiplyPerSequence(_ x: UnsafeMutablePointer<Float>, _ m: [Float], steps T: Int, rows B: Int, width: Int) {
        for t in 0..<T {
            let r = x + t * B * width
            for i in 0..<(B * width) { r[i] *= m[i] }
        }
    }

    private func run(_ batch: SequenceBatch, train: Bool, dropoutSeed: UInt64?) -> BatchResult {
        let B = batch.B, T = batch.T, TB = T * B
        precondition(B == maxB && T <= maxT)
        let P = UnsafePointer(params.p)
        let H = spec.units, W = spec.outputSize
        // Dropout masks, in a fixed order from the pass's seed.
        let d = dropoutSeed == nil ? SequenceDropout() : dropout
        var drng = SplitMix64(seed: dropoutSeed ?? 0)
        tokensRead = batch.tokens
        if d.word > 0, frameSize == nil, let unk = vocabulary.unk {
            let q = Double(d.word)
            for i in 0..<TB where batch.mask[i] != 0 && drng.nextUnit() < q { tokensRead[i] = Int32(unk) }
        }
        spatialMask = Self.mask(B * E, d.spatial, &drng)
        inputMasks = dirs.map { _ in Self.mask(B * E, d.input, &drng) }
        for dir in dirs {
            precondition(d.recurrent == 0 || spec.cell != .gru || spec.resetAfter, "recurrent dropout needs a reset-after GRU")
            let m = Self.mask(dir.G * B, d.recurrent, &drng)
            dir.setRecurrentMask(m.isEmpty ? nil : m)
        }
        outputMask = Self.mask(rows(batch) * W, d.output, &drng)
        if let f = frameSize {
            precondition(batch.frames.count == TB * f)
            x0.p.update(from: batch.frames, count: TB * f)
        } else {
            lookUpEmbeddings(P + embeddings, E, tokensRead, count: TB, into: x0.p)
        }
        if !spatialMask.isEmpty { Self.multiplyPerSequence(x0.p, spatialMask, steps: T, rows: B, width: E) }
        let in0: UnsafeMutablePointer<Float>
        if inputMasks[0].isEmpty { in0 = x0.p } else {
            in0 = xm.p
            xm.p.update(from: x0.p, count: TB * E)
            Self.multiplyPerSequence(xm.p, inputMasks[0], steps: T, rows: B, width: E)
        }
        batch.mask.withUnsafeBufferPointer { m in
            if let bidi {
                bidi.reverseInput(x0.p, mask: m.baseAddress!, steps: T)
                if !inputMasks[1].isEmpty { Self.multiplyPerSequence(bidi.xr.p, inputMasks[1], steps: T, rows: B, width: E) }
                bidi.run(P, steps: T, input: in0, mask: m.baseAddress!)
            } else {
                dirs[0].start(from: nil)
                dirs[0].forward(P, steps: T, input: in0, mask: m.baseAddress!)
            }
        }
        // Merge (concat): Y [rows, W]
        let fo = dirs[0].output
        if perStep || pooled {
            let Y = pooled ? ys.p : y.p
            if let bidi { bidi.mergedSequence(into: Y, steps: T) } else { Y.update(from: fo, count: T * B * H) }
            if pooled {
                // The mean over each sequence's real steps (a filler row with none gets zeros).
                for b in 0..<B {
                    var sum = [Double](repeating: 0, count: W), n = 0
                    for t in 0..<T where batch.mask[t * B + b] != 0 {
                        n += 1
                        let row = ys.p + (t * B + b) * W
                        for j in 0..<W { sum[j] += Double(row[j]) }
                    }
                    for j in 0..<W { y.p[b * W + j] = n == 0 ? 0 : Float(sum[j] / Double(n)) }
                }
            }
        } else if let bidi {
            bidi.finalStates(into: y.p, steps: T)
        } else {
            y.p.update(from: fo + (T - 1) * B * H, count: B * H)
        }
        let N = rows(batch)
        if !outputMask.isEmpty { for i in 0..<(N * W) { y.p[i] *= outputMask[i] } }
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
        if regress {
            precondition(batch.targets.count == N * U)
            for i in 0..<N where batch.mask[i] != 0 && batch.labels[i] >= 0 {
                count += 1
                let o = out + i * U
                var l = 0.0
                for k in 0..<U {
                    let e = o[k] - batch.targets[i * U + k]
                    switch regressionLoss {
                    case .mse: l += Double(e) * Double(e); dz[i * U + k] = 2 * e / Float(U)
                    case .mae: l += Double(abs(e)); dz[i * U + k] = (e > 0 ? 1 : e < 0 ? -1 : 0) / Float(U)
                    }
                }
                loss += l / Double(U)
            }
        }
        for i in 0..<N where !regress {
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
            backward(batch, rows: N, input: in0)
            if l2 > 0 {
                // λ Σ w² on the mean loss (the summed loss gets it once per counted item) and 2λ w on the gradient.
                var sum = 0.0
                for e in layout.entries where e.name.hasSuffix(".kernel") {
                    for i in e.offset..<(e.offset + e.count) {
                        let w = params.p[i]
                        sum += Double(w) * Double(w)
                        grads.p[i] += 2 * l2 * w
                    }
                }
                loss += Double(count) * Double(l2) * sum
            }
        }
        return BatchResult(loss: loss, correct: correct, count: count)
    }

    private func backward(_ batch: SequenceBatch, rows N: Int, input in0: UnsafeMutablePointer<Float>) {
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
        // dz now holds ∂loss/∂Y [N, W] (after output dropout): back through its mask, then split it into
        // the directions' output gradients.
        if !outputMask.isEmpty { for i in 0..<(N * W) { dz[i] *= outputMask[i] } }
        let df = dirs[0].dout.p
        if pooled {
            // Each real step of sequence b received 1/n_b of the pooled vector's gradient.
            for b in 0..<B {
                var n = 0
                for t in 0..<T where batch.mask[t * B + b] != 0 { n += 1 }
                for t in 0..<T {
                    let row = dys.p + (t * B + b) * W
                    if batch.mask[t * B + b] == 0 || n == 0 {
                        row.update(repeating: 0, count: W)
                    } else {
                        for j in 0..<W { row[j] = dz[b * W + j] / Float(n) }
                    }
                }
            }
        }
        if perStep || pooled {
            let dY = pooled ? dys.p : dz
            if let bidi { bidi.setSequenceGradient(dY, steps: T) } else { df.update(from: dY, count: TB * H) }
        } else if let bidi {
            bidi.setSequenceGradient(nil, steps: T)
            bidi.addFinalStateGradient(dz, steps: T)
        } else {
            df.update(repeating: 0, count: TB * H)
            (df + (T - 1) * B * H).update(from: dz, count: B * H)
        }
        batch.mask.withUnsafeBufferPointer { m in
            if let bidi {
                bidi.backward(P, G, steps: T, input: in0, dx: dxf.p, mask: m.baseAddress!)
            } else {
                dirs[0].backward(P, G, steps: T, input: in0, dx: dxf.p, mask: m.baseAddress!)
            }
        }
        guard frameSize == nil else { return }   // frames: nothing below the recurrent layer is trained
        // Back through the input and spatial dropout masks to the embeddings' gradient.
        if !inputMasks[0].isEmpty { Self.multiplyPerSequence(dxf.p, inputMasks[0], steps: T, rows: B, width: E) }
        if let bidi, !inputMasks[1].isEmpty { Self.multiplyPerSequence(bidi.dxr.p, inputMasks[1], steps: T, rows: B, width: E) }
        if !spatialMask.isEmpty {
            Self.multiplyPerSequence(dxf.p, spatialMask, steps: T, rows: B, width: E)
            if let bidi { Self.multiplyPerSequence(bidi.dxr.p, spatialMask, steps: T, rows: B, width: E) }
        }
        let gE = G + embeddings
        for t in 0..<T {
            for b in 0..<B where batch.mask[t * B + b] != 0 {
                let dst = gE + Int(tokensRead[t * B + b]) * E
                let f = dxf.p + (t * B + b) * E
                for k in 0..<E { dst[k] += f[k] }
                if let bidi {
                    let r = bidi.dxr.p + ((T - 1 - t) * B + b) * E
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
