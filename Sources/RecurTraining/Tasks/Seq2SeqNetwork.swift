#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Recur

/// A padded batch of source/target pairs, time-major. The source rows end with EOS (when the source
/// vocabulary has one) and are right-padded; the decoder reads [BOS, y₁ … yₙ] and predicts [y₁ … yₙ, EOS].
public struct PairBatch: Sendable {
    public var B: Int, S: Int, T: Int
    public var source: [Int32], sourceMask: [Float]
    public var input: [Int32], target: [Int32], targetMask: [Float]

    /// `sources` already end with EOS; `targets` are the target tokens without BOS/EOS.
    public init(sources: [[Int]], targets: [[Int]], rows B: Int, pad: Int, bos: Int, eos: Int) {
        self.B = B
        S = max(sources.map(\.count).max() ?? 1, 1)
        T = (targets.map(\.count).max() ?? 0) + 1
        source = [Int32](repeating: Int32(pad), count: S * B); sourceMask = [Float](repeating: 0, count: S * B)
        input = [Int32](repeating: Int32(pad), count: T * B); target = input; targetMask = [Float](repeating: 0, count: T * B)
        for (b, s) in sources.enumerated() {
            for (t, tok) in s.enumerated() { source[t * B + b] = Int32(tok); sourceMask[t * B + b] = 1 }
            let y = targets[b]
            for t in 0...y.count {
                input[t * B + b] = Int32(t == 0 ? bos : y[t - 1])
                target[t * B + b] = Int32(t == y.count ? eos : y[t])
                targetMask[t * B + b] = 1
            }
        }
    }
}

/// An encoder-decoder being trained: encoder Embedding → GRU; decoder Embedding → GRU (started from the
/// encoder's final state) → Dense(softmax over the target vocabulary); softmax cross-entropy over the real
/// target tokens (teacher forcing). Scheduled sampling, when asked for, is the two-pass (parallel) kind:
/// a first teacher-forced pass predicts every step, and each decoder input after BOS is replaced by the
/// previous step's prediction with probability `samplingRate` before the pass that is trained.
/// With `dropout` p > 0, training passes zero each element of the source and target embeddings and of the
/// decoder's output (the head's input) with probability p and scale the others by 1/(1 − p) (inverted
/// dropout on the non-recurrent connections, as in Zaremba et al. 2014); the written model has none.
public final class Seq2SeqNetwork: @unchecked Sendable {
    public let architecture: Architecture
    public let vocabulary: Vocabulary
    public let sourceVocabulary: Vocabulary
    public let layout: ParameterLayout
    let params: FloatBuffer, grads: FloatBuffer
    let maxB: Int, maxS: Int, maxT: Int
    let Es: Int, Et: Int, H: Int, V: Int
    let srcEmb: Int, tgtEmb: Int
    let enc: RecurrentPass, dec: RecurrentPass
    let head: DenseLayer
    let xs: FloatBuffer, xt: FloatBuffer, dxs: FloatBuffer, dxt: FloatBuffer, probs: FloatBuffer, dzs: FloatBuffer, dh0: FloatBuffer
    let maskS: FloatBuffer, maskT: FloatBuffer, maskO: FloatBuffer, xo: FloatBuffer
    /// Dropout probability of training passes (0: none).
    public var dropout: Float = 0

    public init(architecture: Architecture, vocabulary: Vocabulary, sourceVocabulary: Vocabulary,
                maxBatch: Int, maxSource: Int, maxTarget: Int) throws {
        try architecture.validate()
        guard architecture.task == .seq2seq, architecture.encoder.count == 2, architecture.layers.count == 3,
              case .embedding(let vs, let es) = architecture.encoder[0], case .recurrent(let re) = architecture.encoder[1],
              case .embedding(let vt, let et) = architecture.layers[0], case .recurrent(let rd) = architecture.layers[1],
              case .dense(let n, let u, .softmax) = architecture.layers[2]
        else {
            throw RecurError(.unsupported, "the seq2seq trainer needs encoder [Embedding, GRU] and decoder [Embedding, GRU, Dense(softmax)]")
        }
        guard re.cell == .gru, re.resetAfter, rd.cell == .gru, rd.resetAfter else {
            throw RecurError(.unsupported, "the seq2seq trainer handles GRU layers with the reset gate after the product")
        }
        guard vs == sourceVocabulary.count, vt == vocabulary.count, u == vt, sourceVocabulary.pad != nil,
              vocabulary.pad != nil, vocabulary.bos != nil, vocabulary.eos != nil else {
            throw RecurError(.model, "the embeddings and the output must cover the vocabularies; the target vocabulary needs PAD, BOS and EOS, the source one PAD")
        }
        self.architecture = architecture
        self.vocabulary = vocabulary
        self.sourceVocabulary = sourceVocabulary
        layout = ParameterLayout(architecture)
        params = FloatBuffer(layout.count); grads = FloatBuffer(layout.count)
        maxB = maxBatch; maxS = maxSource; maxT = maxTarget
        Es = es; Et = et; H = rd.units; V = vt
        srcEmb = layout.entry("encoder.layer.0.embeddings")!.offset
        tgtEmb = layout.entry("layer.0.embeddings")!.offset
        enc = RecurrentPass(try RecurrentTensors(spec: re, prefix: "encoder.layer.1.", layout: layout), streams: maxBatch, steps: maxSource, withGradients: true)
        dec = RecurrentPass(try RecurrentTensors(spec: rd, prefix: "layer.1.", layout: layout), streams: maxBatch, steps: maxTarget, withGradients: true)
        head = DenseLayer(w: layout.entry("layer.2.kernel")!.offset, b: layout.entry("layer.2.bias")!.offset,
                          inputs: n, units: u, activation: .softmax)
        xs = FloatBuffer(maxB * maxS * es); dxs = FloatBuffer(maxB * maxS * es)
        xt = FloatBuffer(maxB * maxT * et); dxt = FloatBuffer(maxB * maxT * et)
        probs = FloatBuffer(maxB * maxT * vt); dzs = FloatBuffer(maxB * maxT * vt)
        dh0 = FloatBuffer(maxB * rd.units)
        maskS = FloatBuffer(maxB * maxS * es); maskT = FloatBuffer(maxB * maxT * et)
        maskO = FloatBuffer(maxB * maxT * rd.units); xo = FloatBuffer(maxB * maxT * rd.units)
    }

    public var parameters: [Float] {
        get { params.array }
        set { params.load(newValue) }
    }

    public var gradients: [Float] { grads.array }

    /// A batch of pairs (sources end with EOS; targets without BOS/EOS) with each source in the order the
    /// encoder reads it (`Architecture.encoderInput`: reversed for a `reverseSource` model, as the
    /// runtime's `Model.encode(source:)` reads it).
    public func batch(_ items: [(source: [Int], target: [Int])], rows: Int) -> PairBatch {
        PairBatch(sources: items.map { architecture.encoderInput($0.source, pad: sourceVocabulary.pad, eos: sourceVocabulary.eos) },
                  targets: items.map(\.target), rows: rows, pad: vocabulary.pad!, bos: vocabulary.bos!, eos: vocabulary.eos!)
    }

    public func initialize(seed: UInt64) { initializeTaskWeights(layout, architecture, params.p, seed: seed) }

    /// The decoder's output distributions [T·B, V] after `forward`.
    func distributions(_ batch: PairBatch) -> [Float] { Array(UnsafeBufferPointer(start: probs.p, count: batch.T * batch.B * V)) }

    /// Forward pass (teacher forcing); with `train`, the backward pass too (gradient of the mean loss per
    /// real target token in `grads`), with dropout when `dropout` > 0 (masks drawn from `rng`).
    /// `samplingRate` > 0 mixes in the model's own predictions (see above).
    @discardableResult
    public func forward(_ batch: PairBatch, train: Bool = false, samplingRate: Double = 0, rng: inout SplitMix64) -> BatchResult {
        var b = batch
        if samplingRate > 0 {
            _ = run(batch, train: false, dropoutSeed: nil)
            for t in 1..<batch.T {
                for s in 0..<batch.B where batch.targetMask[t * batch.B + s] != 0 && rng.nextUnit() < samplingRate {
                    let row = probs.p + ((t - 1) * batch.B + s) * V
                    b.input[t * batch.B + s] = Int32(argmax(row, V))
                }
            }
        }
        return run(b, train: train, dropoutSeed: train && dropout > 0 ? rng.next() : nil)
    }

    /// A pass without dropout (the weights as the runtime uses them).
    @discardableResult
    public func forward(_ batch: PairBatch, train: Bool = false) -> BatchResult {
        run(batch, train: train, dropoutSeed: nil)
    }

    /// A pass with the dropout masks of `dropoutSeed` (none when nil), whether or not it trains.
    @discardableResult
    func forward(_ batch: PairBatch, train: Bool, dropoutSeed: UInt64?) -> BatchResult {
        run(batch, train: train, dropoutSeed: dropoutSeed)
    }

    /// Fills `mask` with 0 (probability `dropout`) or 1/(1 − dropout) and multiplies `x` by it.
    private func drop(_ x: UnsafeMutablePointer<Float>, _ mask: UnsafeMutablePointer<Float>, _ n: Int, _ rng: inout SplitMix64) {
        let keep = 1 / (1 - dropout), p = Double(dropout)
        for i in 0..<n {
            mask[i] = rng.nextUnit() < p ? 0 : keep
            x[i] *= mask[i]
        }
    }

    private func run(_ batch: PairBatch, train: Bool, dropoutSeed: UInt64?) -> BatchResult {
        let B = batch.B, S = batch.S, T = batch.T
        precondition(B == maxB && S <= maxS && T <= maxT)
        precondition(dropout >= 0 && dropout < 1)
        let P = UnsafePointer(params.p)
        let dropping = dropoutSeed != nil && dropout > 0
        var drng = SplitMix64(seed: dropoutSeed ?? 0)
        lookUpEmbeddings(P + srcEmb, Es, batch.source, count: S * B, into: xs.p)
        lookUpEmbeddings(P + tgtEmb, Et, batch.input, count: T * B, into: xt.p)
        if dropping {
            drop(xs.p, maskS.p, S * B * Es, &drng)
            drop(xt.p, maskT.p, T * B * Et, &drng)
        }
        enc.start(from: nil)
        batch.sourceMask.withUnsafeBufferPointer { m in enc.forward(P, steps: S, input: xs.p, mask: m.baseAddress!) }
        dec.start(from: enc.h(S))
        batch.targetMask.withUnsafeBufferPointer { m in dec.forward(P, steps: T, input: xt.p, mask: m.baseAddress!) }
        let N = T * B
        var headInput = UnsafePointer(dec.output)
        if dropping {
            xo.p.update(from: dec.output, count: N * H)
            drop(xo.p, maskO.p, N * H, &drng)
            headInput = UnsafePointer(xo.p)
        }
        head.forward(P, headInput, rows: N, probs.p)
        var loss = 0.0, correct = 0, count = 0
        for i in 0..<N {
            let row = probs.p + i * V
            guard batch.targetMask[i] != 0 else { row.update(repeating: 0, count: V); continue }
            let y = Int(batch.target[i])
            count += 1
            loss -= log(max(Double(row[y]), 1e-30))
            if argmax(row, V) == y { correct += 1 }
        }
        if train && count > 0 {
            let G = grads.p
            grads.zero()
            // ∂loss/∂z = (p − onehot) / count on real steps (zero rows elsewhere); keep p for `distributions`.
            let dz = dzs
            dz.p.update(repeating: 0, count: N * V)
            let scale = 1 / Float(count)
            for i in 0..<N where batch.targetMask[i] != 0 {
                let row = probs.p + i * V, d = dz.p + i * V
                for k in 0..<V { d[k] = row[k] * scale }
                d[Int(batch.target[i])] -= scale
            }
            head.backward(P, G, headInput, rows: N, dz.p, dec.dout.p)
            if dropping { for i in 0..<(N * H) { dec.dout.p[i] *= maskO.p[i] } }
            batch.targetMask.withUnsafeBufferPointer { m in dec.backward(P, G, steps: T, input: xt.p, dx: dxt.p, mask: m.baseAddress!) }
            dec.initialStateGradient(P, into: dh0.p)
            // The encoder's final state is its output at the last step (carried through the padding).
            let de = enc.dout.p
            de.update(repeating: 0, count: S * B * H)
            (de + (S - 1) * B * H).update(from: dh0.p, count: B * H)
            batch.sourceMask.withUnsafeBufferPointer { m in enc.backward(P, G, steps: S, input: xs.p, dx: dxs.p, mask: m.baseAddress!) }
            if dropping {
                for i in 0..<(T * B * Et) { dxt.p[i] *= maskT.p[i] }
                for i in 0..<(S * B * Es) { dxs.p[i] *= maskS.p[i] }
            }
            addEmbeddingGradients(dxt.p, Et, batch.input, count: T * B, mask: batch.targetMask, into: G + tgtEmb)
            addEmbeddingGradients(dxs.p, Es, batch.source, count: S * B, mask: batch.sourceMask, into: G + srcEmb)
        }
        return BatchResult(loss: loss, correct: correct, count: count)
    }

    /// A model builder holding the current weights (both vocabularies).
    public func modelBuilder(metadata: [(String, MetaValue)] = []) -> ModelBuilder {
        layout.modelBuilder(architecture, vocabulary, sourceVocabulary: sourceVocabulary, weights: params.p, metadata: metadata)
    }
}
