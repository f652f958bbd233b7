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
/// target tokens (teacher forcing). Scheduled sampling (Bengio et al. 2015), when asked for, runs the
/// decoder step by step: before step t ≥ 1 of each real target position, with probability `samplingRate`,
/// the input is the model's own prediction from step t − 1 of the same pass (its most likely token, or
/// one drawn from its distribution) instead of the target token; the choice is a constant for the
/// backward pass (no gradient flows through it). `SamplingSchedule` raises the rate over training.
/// With `dropout` p > 0, training passes zero each element of the source and target embeddings and of the
/// head's input with probability p and scale the others by 1/(1 − p) (inverted dropout on the
/// non-recurrent connections, as in Zaremba et al. 2014); the written model has none.
///
/// A decoder may have an attention layer between its GRU and the head (`dot`, `general` or `additive`
/// scoring, the attentional state h̃_t = tanh(W_c [c_t; h_t] + b_c) of FORMAT.md §13.9; `AttentionPass`):
/// each step attends over the encoder's outputs at the source's real (non-PAD) positions, and the head
/// reads h̃_t. With attention the encoder's GRU may be bidirectional (concat; `BidirectionalPass`): the
/// memory is then [f_s; b_s], and the decoder, of twice the encoder's units, starts from [f_S; b_1] (the
/// backward direction starts at each source's last real token). With input feeding the decoder's GRU reads
/// [E[y_t]; h̃_{t−1}] (h̃_0 = 0), so the decoder runs step by step, forward and backward (the gradient of
/// h̃_{t−1} through step t's input joins the head's before the attention's step t − 1 is differentiated);
/// dropout does not touch the h̃ fed back.
public final class Seq2SeqNetwork: @unchecked Sendable {
    public let architecture: Architecture
    public let vocabulary: Vocabulary
    public let sourceVocabulary: Vocabulary
    public let layout: ParameterLayout
    let params: FloatBuffer, grads: FloatBuffer
    let maxB: Int, maxS: Int, maxT: Int
    /// Embedding widths, the decoder's units, the encoder's units (per direction), the target vocabulary.
    let Es: Int, Et: Int, H: Int, He: Int, V: Int
    let srcEmb: Int, tgtEmb: Int
    /// The encoder: one direction (`enc`), or both (`encBi`, whose forward direction `enc` then is).
    let enc: RecurrentPass, encBi: BidirectionalPass?
    let dec: RecurrentPass
    /// A bidirectional encoder's merged outputs [S·B, 2He] (the memory), its final states [B, 2He] and the
    /// memory's gradient.
    let encOut: FloatBuffer, encFinal: FloatBuffer, dEncOut: FloatBuffer
    let head: DenseLayer
    let xs: FloatBuffer, xt: FloatBuffer, dxs: FloatBuffer, dxt: FloatBuffer, probs: FloatBuffer, dzs: FloatBuffer, dh0: FloatBuffer
    let maskS: FloatBuffer, maskT: FloatBuffer, maskO: FloatBuffer, xo: FloatBuffer
    /// The attention layer, when the decoder has one, and its buffers.
    let attention: AttentionPass?
    /// Width of the head's input: the attention's units, or the decoder's.
    let headWidth: Int
    /// Input feeding: the decoder's inputs [E[y_t]; h̃_{t−1}] [T·B, Et + headWidth] and their gradient.
    let feeding: Bool, xf: FloatBuffer, dxf: FloatBuffer
    /// Dropout probability of training passes (0: none).
    public var dropout: Float = 0
    /// The decoder inputs of the last pass [T·B] (the batch's, where scheduled sampling fed none).
    public private(set) var lastInputs: [Int32] = []
    /// Where the last pass fed the model's own prediction [T·B].
    public private(set) var lastFed: [Bool] = []

    public init(architecture: Architecture, vocabulary: Vocabulary, sourceVocabulary: Vocabulary,
                maxBatch: Int, maxSource: Int, maxTarget: Int) throws {
        try architecture.validate()
        let L = architecture.layers
        var spec: AttentionSpec?
        if L.count == 4, case .attention(let a) = L[2] { spec = a }
        guard architecture.task == .seq2seq, architecture.encoder.count == 2, L.count == (spec == nil ? 3 : 4),
              case .embedding(let vs, let es) = architecture.encoder[0], case .recurrent(let re) = architecture.encoder[1],
              case .embedding(let vt, let et) = L[0], case .recurrent(let rd) = L[1],
              case .dense(let n, let u, .softmax) = L[L.count - 1]
        else {
            throw RecurError(.unsupported, "the seq2seq trainer needs encoder [Embedding, GRU] and decoder [Embedding, GRU, (Attention,) Dense(softmax)]")
        }
        if let a = spec {
            guard a.combine == .tanh else {
                throw RecurError(.unsupported, "the seq2seq trainer trains attention with the combination tanh(W_c [c; h] + b_c)")
            }
        }
        guard !re.bidirectional || (spec != nil && re.mergeMode == .concat) else {
            throw RecurError(.unsupported, "the seq2seq trainer trains a bidirectional encoder (concat) only with attention")
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
        Es = es; Et = et; H = rd.units; He = re.units; V = vt
        srcEmb = layout.entry("encoder.layer.0.embeddings")!.offset
        tgtEmb = layout.entry("layer.0.embeddings")!.offset
        if re.bidirectional {
            let pair = try BidirectionalPass(spec: re, prefix: "encoder.layer.1.", layout: layout, streams: maxBatch, steps: maxSource, withGradients: true)
            encBi = pair; enc = pair.forward
            encOut = FloatBuffer(maxBatch * maxSource * 2 * re.units); dEncOut = FloatBuffer(maxBatch * maxSource * 2 * re.units)
            encFinal = FloatBuffer(maxBatch * 2 * re.units)
        } else {
            encBi = nil
            enc = RecurrentPass(try RecurrentTensors(spec: re, prefix: "encoder.layer.1.", layout: layout), streams: maxBatch, steps: maxSource, withGradients: true)
            encOut = FloatBuffer(0); dEncOut = FloatBuffer(0); encFinal = FloatBuffer(0)
        }
        dec = RecurrentPass(try RecurrentTensors(spec: rd, prefix: "layer.1.", layout: layout), streams: maxBatch, steps: maxTarget, withGradients: true)
        let hp = "layer.\(L.count - 1)."
        head = DenseLayer(w: layout.entry(hp + "kernel")!.offset, b: layout.entry(hp + "bias")!.offset,
                          inputs: n, units: u, activation: .softmax)
        headWidth = n
        feeding = spec?.inputFeeding ?? false
        xf = FloatBuffer(feeding ? maxBatch * maxTarget * rd.inputSize : 0); dxf = FloatBuffer(feeding ? maxBatch * maxTarget * rd.inputSize : 0)
        let lay = layout
        attention = spec.map { AttentionPass($0, layout: lay, prefix: "layer.2.", streams: maxBatch, source: maxSource, target: maxTarget) }
        xs = FloatBuffer(maxB * maxS * es); dxs = FloatBuffer(maxB * maxS * es)
        xt = FloatBuffer(maxB * maxT * et); dxt = FloatBuffer(maxB * maxT * et)
        probs = FloatBuffer(maxB * maxT * vt); dzs = FloatBuffer(maxB * maxT * vt)
        dh0 = FloatBuffer(maxB * rd.units)
        maskS = FloatBuffer(maxB * maxS * es); maskT = FloatBuffer(maxB * maxT * et)
        maskO = FloatBuffer(maxB * maxT * n); xo = FloatBuffer(maxB * maxT * n)
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
    /// `samplingRate` > 0 feeds the model's own predictions (see above), picked by `draw`.
    @discardableResult
    public func forward(_ batch: PairBatch, train: Bool = false, samplingRate: Double = 0, draw: SamplingDraw = .argmax,
                        rng: inout SplitMix64) -> BatchResult {
        let dropoutSeed = train && dropout > 0 ? rng.next() : nil
        guard samplingRate > 0 else { return run(batch, train: train, dropoutSeed: dropoutSeed) }
        return run(batch, train: train, dropoutSeed: dropoutSeed, sampling: (min(samplingRate, 1), draw, rng.next()))
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
        drawMask(mask, n, &rng)
        for i in 0..<n { x[i] *= mask[i] }
    }

    /// Fills `mask` with 0 (probability `dropout`) or 1/(1 − dropout).
    private func drawMask(_ mask: UnsafeMutablePointer<Float>, _ n: Int, _ rng: inout SplitMix64) {
        let keep = 1 / (1 - dropout), p = Double(dropout)
        for i in 0..<n { mask[i] = rng.nextUnit() < p ? 0 : keep }
    }

    /// Scheduled sampling before decoder step t ≥ 1: the head's prediction of step t − 1 (from h(t), through
    /// the attention's row of step t − 1, which must be computed, and the head's dropout mask) replaces the
    /// target input of each real row with probability `rate`; returns whether any did.
    private func feedPredictions(_ t: Int, _ sampling: (rate: Double, draw: SamplingDraw, seed: UInt64), _ m: UnsafePointer<Float>,
                                 _ srng: inout SplitMix64, _ input: inout [Int32], _ fed: inout [Bool], dropping: Bool,
                                 table: UnsafePointer<Float>) -> Bool {
        let B = maxB, W = headWidth
        let P = UnsafePointer(params.p)
        var hin = UnsafePointer(dec.h(t))
        if let att = attention { hin = UnsafePointer(att.output + (t - 1) * B * W) }
        if dropping {
            let o = xo.p + (t - 1) * B * W, mo = maskO.p + (t - 1) * B * W
            for i in 0..<(B * W) { o[i] = hin[i] * mo[i] }
            hin = UnsafePointer(o)
        }
        let rows = probs.p + (t - 1) * B * V
        head.forward(P, hin, rows: B, rows)
        var changed = false
        for b in 0..<B where m[t * B + b] != 0 && srng.nextUnit() < sampling.rate {
            let tok = sampling.draw.pick(rows + b * V, V, &srng)
            let i = t * B + b
            input[i] = Int32(tok)
            fed[i] = true
            let x = xt.p + i * Et
            x.update(from: table + tok * Et, count: Et)
            if dropping { for k in 0..<Et { x[k] *= maskT.p[i * Et + k] } }
            changed = true
        }
        return changed
    }

    private func run(_ batch: PairBatch, train: Bool, dropoutSeed: UInt64?,
                     sampling: (rate: Double, draw: SamplingDraw, seed: UInt64)? = nil) -> BatchResult {
        let B = batch.B, S = batch.S, T = batch.T
        precondition(B == maxB && S <= maxS && T <= maxT)
        precondition(dropout >= 0 && dropout < 1)
        let P = UnsafePointer(params.p)
        let dropping = dropoutSeed != nil && dropout > 0
        var drng = SplitMix64(seed: dropoutSeed ?? 0)
        var input = batch.input
        var fed = [Bool](repeating: false, count: T * B)
        lookUpEmbeddings(P + srcEmb, Es, batch.source, count: S * B, into: xs.p)
        lookUpEmbeddings(P + tgtEmb, Et, batch.input, count: T * B, into: xt.p)
        if dropping {
            drop(xs.p, maskS.p, S * B * Es, &drng)
            drop(xt.p, maskT.p, T * B * Et, &drng)
        }
        // The encoder; its outputs are the memory, its final state starts the decoder.
        var memory = UnsafePointer(enc.output)
        batch.sourceMask.withUnsafeBufferPointer { m in
            if let encBi {
                encBi.reverseInput(xs.p, mask: m.baseAddress!, steps: S)
                encBi.run(P, steps: S, input: xs.p, mask: m.baseAddress!)
                encBi.mergedSequence(into: encOut.p, steps: S)
                encBi.finalStates(into: encFinal.p, steps: S)
                memory = UnsafePointer(encOut.p)
            } else {
                enc.start(from: nil)
                enc.forward(P, steps: S, input: xs.p, mask: m.baseAddress!)
            }
        }
        dec.start(from: encBi == nil ? enc.h(S) : encFinal.p)
        let N = T * B, W = headWidth, Din = dec.In
        attention?.start(P, memory: memory, mask: batch.sourceMask, steps: S, streams: B)
        // Input feeding: the decoder reads [E[y_t]; h̃_{t−1}], h̃_{−1} = 0 (rows of t ≥ 1 are set before their step).
        let decoderInput = feeding ? xf.p : xt.p
        if feeding {
            xf.p.update(repeating: 0, count: N * Din)
            for i in 0..<B { (xf.p + i * Din).update(from: xt.p + i * Et, count: Et) }
        }
        if sampling != nil || feeding {
            // The head reads each step's output as it is made, so its dropout mask is drawn first.
            if dropping && sampling != nil { drawMask(maskO.p, N * W, &drng) }
            var srng = SplitMix64(seed: sampling?.seed ?? 0)
            let table = P + tgtEmb
            batch.targetMask.withUnsafeBufferPointer { m in
                dec.forward(P, steps: T, input: decoderInput, mask: m.baseAddress!) { [self] t in
                    guard t > 0 else { return false }
                    // Step t − 1's h̃, from its output h(t).
                    attention?.forward(P, UnsafePointer(dec.h(t)), step: t - 1, streams: B)
                    var changed = false
                    if let sampling { changed = feedPredictions(t, sampling, m.baseAddress!, &srng, &input, &fed, dropping: dropping, table: table) }
                    if feeding {
                        let a = attention!.output + (t - 1) * B * W
                        for b in 0..<B {
                            let row = xf.p + (t * B + b) * Din
                            row.update(from: xt.p + (t * B + b) * Et, count: Et)
                            (row + Et).update(from: a + b * W, count: W)
                        }
                        changed = true
                    }
                    return changed
                }
            }
        } else {
            batch.targetMask.withUnsafeBufferPointer { m in dec.forward(P, steps: T, input: xt.p, mask: m.baseAddress!) }
        }
        lastInputs = input
        lastFed = fed
        var headInput = UnsafePointer(dec.output)
        if let att = attention {
            for t in 0..<T { att.forward(P, UnsafePointer(dec.h(t + 1)), step: t, streams: B) }
            headInput = UnsafePointer(att.output)
        }
        if dropping {
            xo.p.update(from: headInput, count: N * W)
            if sampling == nil {
                drop(xo.p, maskO.p, N * W, &drng)
            } else {
                for i in 0..<(N * W) { xo.p[i] *= maskO.p[i] }
            }
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
            if let att = attention {
                head.backward(P, G, headInput, rows: N, dz.p, att.doutput)
                if dropping { for i in 0..<(N * W) { att.doutput[i] *= maskO.p[i] } }
            } else {
                head.backward(P, G, headInput, rows: N, dz.p, dec.dout.p)
                if dropping { for i in 0..<(N * H) { dec.dout.p[i] *= maskO.p[i] } }
            }
            if let att = attention, feeding {
                // Step by step: once decoder step t is differentiated, ∂loss/∂h̃_{t−1} through its input
                // (dgx_t · W[:, Et...]) joins the head's, then the attention's step t − 1 gives ∂loss/∂h of step t − 1.
                att.beginBackward()
                let hs = UnsafePointer(dec.output), dh = dec.dout.p, Gd = dec.G
                att.backwardStep(P, G, decoder: hs + (T - 1) * B * H, dDecoder: dh + (T - 1) * B * H, mask: batch.targetMask, step: T - 1)
                batch.targetMask.withUnsafeBufferPointer { m in
                    dec.backward(P, G, steps: T, input: xf.p, dx: dxf.p, mask: m.baseAddress!) { [self] t in
                        guard t > 0 else { return }
                        sgemm(false, false, m: B, n: W, k: Gd, dec.rows(dec.dgx, t), lda: Gd, P + dec.tensors.w + Et, ldb: Din,
                              beta: 1, att.doutput + (t - 1) * B * W, ldc: W)
                        att.backwardStep(P, G, decoder: hs + (t - 1) * B * H, dDecoder: dh + (t - 1) * B * H, mask: batch.targetMask, step: t - 1)
                    }
                }
                att.finishBackward(P, G, decoder: hs, steps: T)
                for i in 0..<N { (dxt.p + i * Et).update(from: dxf.p + i * Din, count: Et) }
            } else {
                attention?.backward(P, G, decoder: UnsafePointer(dec.output), dDecoder: dec.dout.p, mask: batch.targetMask, steps: T)
                batch.targetMask.withUnsafeBufferPointer { m in dec.backward(P, G, steps: T, input: xt.p, dx: dxt.p, mask: m.baseAddress!) }
            }
            dec.initialStateGradient(P, into: dh0.p)
            // The encoder's final state is its output at the last step (carried through the padding).
            // With attention, every encoder step also gets the gradient of the memory.
            batch.sourceMask.withUnsafeBufferPointer { m in
                if let encBi {
                    encBi.setSequenceGradient(attention!.dmemory, steps: S)
                    encBi.addFinalStateGradient(dh0.p, steps: S)
                    encBi.backward(P, G, steps: S, input: xs.p, dx: dxs.p, mask: m.baseAddress!)
                    encBi.addReversedInputGradient(into: dxs.p, steps: S)
                } else {
                    let de = enc.dout.p
                    if let att = attention { de.update(from: att.dmemory, count: S * B * He) } else { de.update(repeating: 0, count: S * B * He) }
                    let last = de + (S - 1) * B * He
                    for i in 0..<(B * He) { last[i] += dh0.p[i] }
                    enc.backward(P, G, steps: S, input: xs.p, dx: dxs.p, mask: m.baseAddress!)
                }
            }
            if dropping {
                for i in 0..<(T * B * Et) { dxt.p[i] *= maskT.p[i] }
                for i in 0..<(S * B * Es) { dxs.p[i] *= maskS.p[i] }
            }
            addEmbeddingGradients(dxt.p, Et, input, count: T * B, mask: batch.targetMask, into: G + tgtEmb)
            addEmbeddingGradients(dxs.p, Es, batch.source, count: S * B, mask: batch.sourceMask, into: G + srcEmb)
        }
        return BatchResult(loss: loss, correct: correct, count: count)
    }

    /// A model builder holding the current weights (both vocabularies).
    public func modelBuilder(metadata: [(String, MetaValue)] = []) -> ModelBuilder {
        layout.modelBuilder(architecture, vocabulary, sourceVocabulary: sourceVocabulary, weights: params.p, metadata: metadata)
    }
}

/// Which of the model's tokens scheduled sampling feeds.
public enum SamplingDraw: String, Sendable, CaseIterable {
    /// The most likely one (the lowest id among equals).
    case argmax
    /// One drawn from the model's distribution.
    case sample

    /// A token of the distribution p[0..<n].
    func pick(_ p: UnsafePointer<Float>, _ n: Int, _ rng: inout SplitMix64) -> Int {
        switch self {
        case .argmax:
            return RecurTraining.argmax(p, n)
        case .sample:
            let u = rng.nextUnit()
            var total = 0.0
            for k in 0..<n { total += Double(p[k]) }
            var acc = 0.0, last = 0
            for k in 0..<n where p[k] > 0 {
                acc += Double(p[k])
                last = k
                if u * total < acc { return k }
            }
            return last
        }
    }
}

/// How the scheduled-sampling rate rises over training, as a function of the update count i (0 first),
/// to the final rate r: `constant` r; `linear` r · min(1, i / ramp); `inverseSigmoid` r · (1 − k / (k +
/// exp(i / k))) with k = ramp (the teacher-forcing decay of Bengio et al. 2015: half of r at i = k·ln k).
public enum SamplingSchedule: String, Sendable, CaseIterable {
    case constant
    case linear
    case inverseSigmoid = "inverse-sigmoid"

    public func rate(_ r: Double, update i: Int, ramp: Int) -> Double {
        switch self {
        case .constant: return r
        case .linear: return r * min(1, Double(i) / Double(max(ramp, 1)))
        case .inverseSigmoid:
            let k = Double(max(ramp, 1))
            return r * (1 - k / (k + exp(Double(i) / k)))
        }
    }
}
