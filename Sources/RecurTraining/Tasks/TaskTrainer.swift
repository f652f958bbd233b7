#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Recur

/// Settings of a classify, tag or seq2seq training run.
public struct TaskConfig: Sendable {
    public var task = Task.classify
    /// classify: lstm; tag and seq2seq: gru (any `RecurrentSpec.Template` name for classify and tag).
    public var cell: String?
    public var hidden = 64
    public var embedding = 64
    /// classify: units of the Dense(relu) layer before the sigmoid output.
    public var denseUnits = 32
    /// Vocabulary size cap (specials included), for each side of a seq2seq model.
    public var vocabulary = 8000
    public var minCount = 1
    /// Longest sequence read (classify and tag: longer ones are cut; seq2seq: pairs with more words on
    /// either side are left out).
    public var maxLength = 60
    public var batch = 32
    public var epochs = 10
    public var learningRate: Float = 0.002
    public var clipNorm: Float? = 5
    public var seed: UInt64 = 1
    /// seq2seq: scheduled sampling, the probability of feeding the model's own prediction of the step
    /// before instead of the target token (its final value under `samplingSchedule`; 0: teacher forcing).
    public var samplingRate = 0.0
    /// seq2seq: how the sampling rate rises over the updates of training, and over how many (`samplingRamp`).
    public var samplingSchedule = SamplingSchedule.constant
    public var samplingRamp = 1000
    /// seq2seq: the prediction fed: the most likely token or one drawn from the distribution.
    public var samplingDraw = SamplingDraw.argmax
    /// seq2seq: the encoder reads each source last word first (its EOS last); recorded in the model as
    /// `encoder.reverse_source`, which the runtime honours.
    public var reverseSource = false
    /// seq2seq: dropout on the embeddings and on the decoder's output while training; classify and tag:
    /// dropout on the recurrent layer's outputs (0: none).
    public var dropout: Float = 0
    /// classify and tag: spatial dropout of the embeddings, dropout of the recurrent layer's inputs and
    /// recurrent (variational) dropout (see `SequenceDropout`; 0: none).
    public var spatialDropout: Float = 0
    /// classify and tag: word dropout (real tokens read as UNK while training; 0: none).
    public var wordDropout: Float = 0
    public var inputDropout: Float = 0
    public var recurrentDropout: Float = 0
    /// classify and tag: how the weights start.
    public var initializer = TaskInitializer.uniform
    /// classify and tag: L2 weight decay on the kernels (0: none; see `SequenceNetwork.l2`).
    public var l2: Float = 0
    /// seq2seq: attention in the decoder with this scoring (nil: none): dot or general (Luong), additive
    /// (Bahdanau), each with h̃ = tanh(W_c [c; h] + b_c) read by the head.
    public var attention: AttentionScore?
    /// seq2seq, additive attention: A, the width of W_q h and W_k h̄ (nil: `hidden`).
    public var attentionUnits: Int?
    /// seq2seq, with attention: a bidirectional (concat) encoder, the decoder of 2 × `hidden` units started
    /// from [forward final; backward final].
    public var bidirectionalEncoder = false
    /// seq2seq, with attention: input feeding, the decoder's GRU reads [E[y_t]; h̃_{t−1}] (h̃_0 = 0).
    public var inputFeeding = false
    /// Stop starting epochs after this many seconds (0: no limit).
    public var maxSeconds = 0.0
    /// Stop after this many epochs without a better validation figure (0: never).
    public var patience = 3
    /// An exponential moving average of the weights (Polyak averaging) with this decay, 0 < d < 1 (0:
    /// none): after update t, a ← d a + (1 − d) θ from a₀ = 0, read as â = a / (1 − dᵗ) (debiased, as Adam's
    /// moments and optax.ema(debias=True)): a weighted mean of the last ≈ 1 / (1 − d) updates' weights from
    /// the first update on. Validation, the kept weights and the written model are â; training continues
    /// from θ.
    public var weightAverage: Float = 0

    // Frame models (classify on frame sequences, regress on a series).
    /// Frame classifiers: a bidirectional recurrent layer (forecasters are one-directional: they are stepped).
    public var bidirectional = true
    /// Classifiers (of tokens or frames): the last step or the mean over the real steps feeds the head.
    public var pooling = Pooling.last
    /// Forecasters: the values predicted at each step (the next 1…k).
    public var horizon = 12
    public var regressionLoss = RegressionLoss.mae
    /// Forecasters: training windows of this many steps, starting every `stride` values of the training
    /// part, from a zero state; the first `burnIn` steps of a window count in no loss.
    public var window = 240
    public var stride = 12
    public var burnIn = 0

    public init() {}

    var optimizerConfig: TrainingConfig {
        var c = TrainingConfig()
        c.learningRate = learningRate
        c.clipNorm = clipNorm
        return c
    }
}

/// The result of a run: validation figure of the kept weights and the model builder to write.
public struct TaskResult {
    public var builder: ModelBuilder
    public var bestEpoch: Int
    /// Accuracy (classify, tag) or mean loss per target token (seq2seq) on the validation part.
    public var validation: Double
    public var seconds: Double
}

/// Trains classify / tag / seq2seq models with Adam and gradient clipping; after each epoch the validation
/// figure decides which weights are kept (highest accuracy, or lowest seq2seq loss).
public enum TaskTrainer {
    /// Fisher–Yates with the run's generator.
    static func shuffle(_ n: Int, _ rng: inout SplitMix64) -> [Int] {
        var idx = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { idx.swapAt(i, Int(rng.next() % UInt64(i + 1))) } }
        return idx
    }

    /// Generic loop: `step(indices, train)` runs one batch; `validate()` returns (figure, higherIsBetter).
    static func loop(_ c: TaskConfig, count: Int, params: FloatBuffer, grads: FloatBuffer,
                     step: ([Int], inout SplitMix64) -> BatchResult, validate: () -> Double, higherIsBetter: Bool,
                     log: (String) -> Void) throws -> (best: [Float], epoch: Int, figure: Double, seconds: Double) {
        try loop(c, count: count, params: params, grads: grads, step: step, validateWithTieBreak: { (validate(), 0) },
                 higherIsBetter: higherIsBetter, log: log)
    }

    /// The same loop with a second validation figure that breaks ties of the first (lower is better).
    static func loop(_ c: TaskConfig, count: Int, params: FloatBuffer, grads: FloatBuffer,
                     step: ([Int], inout SplitMix64) -> BatchResult, validateWithTieBreak validate: () throws -> (Double, Double),
                     higherIsBetter: Bool,
                     log: (String) -> Void) throws -> (best: [Float], epoch: Int, figure: Double, seconds: Double) {
        let opt = Optimizer(kind: .adam, count: params.count)
        let oc = c.optimizerConfig
        var rng = SplitMix64(seed: c.seed &+ 0x9E37)
        var best = params.array, bestFigure = higherIsBetter ? -Double.infinity : .infinity, bestEpoch = 0, bestTie = Double.infinity
        var bad = 0
        let average: FloatBuffer? = c.weightAverage > 0 ? FloatBuffer(params.count) : nil   // a₀ = 0
        let start = monotonicSeconds()
        for epoch in 0..<c.epochs {
            let order = shuffle(count, &rng)
            var loss = 0.0, n = 0, correct = 0
            var i = 0
            while i < order.count {
                let r = step(Array(order[i..<min(i + c.batch, order.count)]), &rng)
                i += c.batch
                guard r.count > 0 else { continue }
                guard r.loss.isFinite else { throw RecurError(.numerical, "the loss became \(r.loss) in epoch \(epoch + 1)") }
                loss += r.loss; n += r.count; correct += r.correct
                _ = clipGradients(grads.p, grads.count, value: nil, norm: c.clipNorm)
                opt.update(params.p, UnsafePointer(grads.p), lr: c.learningRate, config: oc)
                if let a = average { accumulateAverage(a, params, decay: c.weightAverage) }
            }
            // With an average, validation reads it in place of the trained weights, which come back after.
            let trained = average.flatMap { a -> [Float]? in
                guard opt.t > 0 else { return nil }
                let t = params.array
                params.load(debiasedAverage(a, decay: c.weightAverage, updates: opt.t))
                return t
            }
            let (v, tie) = try validate()
            let better = (higherIsBetter ? v > bestFigure : v < bestFigure) || (v == bestFigure && bestFigure.isFinite && tie < bestTie)
            if better { best = params.array; bestFigure = v; bestTie = tie; bestEpoch = epoch; bad = 0 } else { bad += 1 }
            if let trained { params.load(trained) }
            log("{\"type\":\"epoch\",\"epoch\":\(epoch + 1),\"train_loss\":\(loss / Double(max(n, 1))),\"train_accuracy\":\(Double(correct) / Double(max(n, 1))),\"validation\":\(v)\(tie != 0 ? ",\"validation_tie_break\":\(tie)" : ""),\"best\":\(better),\"elapsed\":\(monotonicSeconds() - start)}")
            if c.patience > 0 && bad >= c.patience { break }
            if c.maxSeconds > 0 && monotonicSeconds() - start > c.maxSeconds { break }
        }
        return (best, bestEpoch, bestFigure, monotonicSeconds() - start)
    }

    /// a ← d a + (1 − d) θ (see `TaskConfig.weightAverage`).
    static func accumulateAverage(_ a: FloatBuffer, _ params: FloatBuffer, decay d: Float) {
        let e = 1 - d, ap = a.p, pp = params.p
        for i in 0..<a.count { ap[i] = d * ap[i] + e * pp[i] }
    }

    /// â = a / (1 − dᵗ) after t ≥ 1 updates.
    static func debiasedAverage(_ a: FloatBuffer, decay d: Float, updates t: Int) -> [Float] {
        let c = Float(1 / (1 - pow(Double(d), Double(t))))
        return a.array.map { $0 * c }
    }

    // MARK: classify and tag

    /// The classify architecture: Embedding → Bidirectional(cell, concat; its last step, or the mean of its
    /// steps with `pooling` = mean) → Dense(relu) → Dense(1, sigmoid).
    public static func classifierArchitecture(_ c: TaskConfig, vocabulary: Int) throws -> Architecture {
        var r = try recurrent(c.cell ?? "lstm", inputSize: c.embedding, units: c.hidden)
        r.bidirectional = true; r.returnSequences = c.pooling == .mean
        var a = Architecture(task: .classify, layers: [
            .embedding(vocabulary: vocabulary, dimension: c.embedding), .recurrent(r),
            .dense(inputSize: r.outputSize, units: c.denseUnits, activation: .relu),
            .dense(inputSize: c.denseUnits, units: 1, activation: .sigmoid),
        ], labels: ["negative", "positive"])
        a.pooling = c.pooling
        return a
    }

    /// The tag architecture: Embedding → Bidirectional(cell, sequences, concat) → Dense(tags, softmax).
    public static func taggerArchitecture(_ c: TaskConfig, vocabulary: Int, tags: [String]) throws -> Architecture {
        var r = try recurrent(c.cell ?? "gru", inputSize: c.embedding, units: c.hidden)
        r.bidirectional = true; r.returnSequences = true
        return Architecture(task: .tag, layers: [
            .embedding(vocabulary: vocabulary, dimension: c.embedding), .recurrent(r),
            .dense(inputSize: r.outputSize, units: tags.count, activation: .softmax),
        ], labels: tags)
    }

    static func recurrent(_ name: String, inputSize: Int, units: Int) throws -> RecurrentSpec {
        guard let t = RecurrentSpec.Template(name: name) else {
            throw RecurError(.invalidArgument, "unknown cell '\(name)' (known: \(RecurrentSpec.Template.names.joined(separator: ", ")))")
        }
        var r = RecurrentSpec(cell: t.cell, inputSize: inputSize, units: units)
        r.resetAfter = t.resetAfter; r.peephole = t.peephole; r.activation = t.activation
        return r
    }

    /// Trains a classifier (labels 0/1, one per sequence) or tagger (one label per token) on id sequences.
    public static func trainSequences(_ net: SequenceNetwork, _ c: TaskConfig,
                                      train: [(tokens: [Int], labels: [Int])], validation: [(tokens: [Int], labels: [Int])],
                                      log: (String) -> Void) throws -> TaskResult {
        let pad = net.vocabulary.pad!
        let perStep = net.architecture.task == .tag
        let d = SequenceDropout(word: c.wordDropout, spatial: c.spatialDropout, input: c.inputDropout, recurrent: c.recurrentDropout, output: c.dropout)
        try d.validate()
        if d.recurrent > 0, case .recurrent(let r) = net.architecture.layers[1], r.cell == .gru, !r.resetAfter {
            throw RecurError(.unsupported, "recurrent dropout is trained for the reset-after GRU, LSTM and SimpleRNN (not gru-reset-before)")
        }
        if d.word > 0 && net.vocabulary.unk == nil { throw RecurError(.unsupported, "word dropout needs an UNK token in the vocabulary") }
        guard c.l2 >= 0 else { throw RecurError(.invalidArgument, "the L2 factor must be ≥ 0") }
        net.dropout = d
        net.l2 = c.l2
        func batch(_ items: ArraySlice<(tokens: [Int], labels: [Int])>) -> SequenceBatch {
            SequenceBatch(items.map { Array($0.tokens.prefix(c.maxLength)) },
                          labels: items.map { perStep ? Array($0.labels.prefix(c.maxLength)) : $0.labels },
                          rows: c.batch, pad: pad, perStep: perStep)
        }
        net.initialize(seed: c.seed, scheme: c.initializer)
        let r = try loop(c, count: train.count, params: net.params, grads: net.grads, step: { idx, rng in
            net.forward(batch(idx.map { train[$0] }[...]), train: true, rng: &rng)
        }, validate: {
            var ok = 0, n = 0
            var i = 0
            while i < validation.count {
                let r = net.forward(batch(validation[i..<min(i + c.batch, validation.count)]))
                ok += r.correct; n += r.count; i += c.batch
            }
            return Double(ok) / Double(max(n, 1))
        }, higherIsBetter: true, log: log)
        net.parameters = r.best
        return TaskResult(builder: net.modelBuilder(), bestEpoch: r.epoch, validation: r.figure, seconds: r.seconds)
    }

    // MARK: seq2seq

    /// The seq2seq options `seq2seqArchitecture` can train, refused with the option's name otherwise (the
    /// command checks them before it reads any data).
    public static func checkSeq2Seq(_ c: TaskConfig) throws {
        if let cell = c.cell, cell != "gru" {
            throw RecurError(.unsupported, "--task seq2seq trains GRU encoder-decoders; --cell \(cell) is not supported for it (use --cell gru, or leave it out)")
        }
        guard c.attention != nil || !c.bidirectionalEncoder else {
            throw RecurError(.unsupported, "--bidirectional-encoder needs --attention (the format allows a bidirectional encoder only in a translator with attention)")
        }
        guard c.attention == .additive || c.attentionUnits == nil else {
            throw RecurError(.unsupported, "--attention-units is the width of additive scoring (--attention bahdanau)")
        }
        guard c.attention != nil || !c.inputFeeding else {
            throw RecurError(.unsupported, "--input-feeding needs --attention (the decoder reads the attention's output of the step before)")
        }
        if let a = c.attentionUnits, a < 1 { throw RecurError(.invalidArgument, "--attention-units must be ≥ 1 (got \(a))") }
    }

    /// Encoder [Embedding, GRU], decoder [Embedding, GRU, (Attention,) Dense(softmax)]. The seq2seq trainer
    /// trains GRU (reset-after) encoder-decoders only: another `cell` is refused, never replaced. With
    /// `bidirectionalEncoder` (only with attention) the encoder's GRU is bidirectional (concat) of `hidden`
    /// units per direction and the decoder's GRU has 2 × `hidden`; the attention layer's output has the
    /// decoder's units, and additive scoring has `attentionUnits` (default `hidden`) and the bias b. With
    /// `inputFeeding` (only with attention) the decoder's GRU reads [E[y_t]; h̃_{t−1}].
    public static func seq2seqArchitecture(_ c: TaskConfig, source: Int, target: Int) throws -> Architecture {
        try checkSeq2Seq(c)
        var re = RecurrentSpec(cell: .gru, inputSize: c.embedding, units: c.hidden)
        re.bidirectional = c.bidirectionalEncoder
        let units = c.bidirectionalEncoder ? 2 * c.hidden : c.hidden
        let rd = RecurrentSpec(cell: .gru, inputSize: c.embedding + (c.inputFeeding ? units : 0), units: units)
        var decoder: [LayerSpec] = [.embedding(vocabulary: target, dimension: c.embedding), .recurrent(rd)]
        if let score = c.attention {
            let additive = score == .additive
            decoder.append(.attention(AttentionSpec(score: score, inputSize: units, memorySize: re.outputSize,
                                                    attentionUnits: additive ? c.attentionUnits ?? c.hidden : 0, useBias: additive,
                                                    units: units, inputFeeding: c.inputFeeding)))
        }
        decoder.append(.dense(inputSize: units, units: target, activation: .softmax))
        return Architecture(task: .seq2seq, layers: decoder,
                            encoder: [.embedding(vocabulary: source, dimension: c.embedding), .recurrent(re)], reverseSource: c.reverseSource)
    }

    /// Trains a translator on id pairs (sources end with EOS, in reading order; the network reverses them
    /// when its architecture says so; targets without BOS/EOS).
    public static func trainPairs(_ net: Seq2SeqNetwork, _ c: TaskConfig,
                                  train: [(source: [Int], target: [Int])], validation: [(source: [Int], target: [Int])],
                                  log: (String) -> Void) throws -> TaskResult {
        func batch(_ items: [(source: [Int], target: [Int])]) -> PairBatch { net.batch(items, rows: c.batch) }
        net.initialize(seed: c.seed)
        net.dropout = c.dropout
        var updates = 0
        let r = try loop(c, count: train.count, params: net.params, grads: net.grads, step: { idx, rng in
            let rate = c.samplingSchedule.rate(c.samplingRate, update: updates, ramp: c.samplingRamp)
            updates += 1
            return net.forward(batch(idx.map { train[$0] }), train: true, samplingRate: rate, draw: c.samplingDraw, rng: &rng)
        }, validate: {
            var loss = 0.0, n = 0
            var i = 0
            while i < validation.count {
                let r = net.forward(batch(Array(validation[i..<min(i + c.batch, validation.count)])))
                loss += r.loss; n += r.count; i += c.batch
            }
            return loss / Double(max(n, 1))
        }, higherIsBetter: false, log: log)
        net.parameters = r.best
        return TaskResult(builder: net.modelBuilder(), bestEpoch: r.epoch, validation: r.figure, seconds: r.seconds)
    }
}
