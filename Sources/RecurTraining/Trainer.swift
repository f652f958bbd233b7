#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Recur

/// How a run is carried out, as opposed to what it computes (`TrainingConfig`): none of these change
/// the trained weights.
public struct TrainingOptions: Sendable {
    /// Worker threads. With one shard, OpenBLAS uses them inside each matrix product; with several
    /// shards, shards run in parallel and OpenBLAS runs single-threaded in each.
    public var threads = 1
    /// Where to write checkpoints (atomically): after every epoch, and every `checkpointEvery` steps.
    public var checkpointPath: String?
    public var checkpointEvery = 0
    /// Where to write the model with the best validation loss (each time it improves).
    public var outPath: String?
    /// Extra metadata for the written model (general.name, training.command, ...).
    public var modelMetadata: [(String, MetaValue)] = []
    /// Sample text through the runtime after each epoch.
    public var sample = true
    public init() {}
}

/// Trains a character-level generator by truncated backpropagation through time.
///
/// The training text is cut into `batch` contiguous streams of equal length; step k of an epoch reads
/// window k (`seqLen` characters) of every stream and predicts each next character. The recurrent state
/// left by a window starts the next one (reset at each epoch, or every window with `resetState`).
/// After each epoch the validation text is read as one stream from a zero state; the weights with the
/// lowest validation loss are kept and written. A checkpoint holds everything the run depends on, so a
/// resumed run computes the same weights as one that was never interrupted.
///
///     var config = TrainingConfig(); config.hidden = 128; config.epochs = 10
///     let corpus = try Corpus(bytes: bytes, name: "alice29.txt")
///     let trainer = try Trainer(config: config, corpus: corpus)
///     let summary = try trainer.run { event in print(event); return true }
public final class Trainer {
    public let config: TrainingConfig
    public let corpus: Corpus
    public let network: Network
    public var options: TrainingOptions
    /// Epochs to run (may be raised when resuming) and the early-stopping patience.
    public var epochs: Int
    public var patience: Int

    /// 0-based epoch in progress, and windows already done in it.
    public internal(set) var epoch = 0
    public internal(set) var position = 0
    /// Optimizer steps done in the whole run.
    public internal(set) var globalStep = 0
    public internal(set) var bestValidationLoss: Double?
    public internal(set) var bestEpoch: Int?
    public internal(set) var badEpochs = 0
    /// Seconds spent training, over every resumed part.
    public internal(set) var elapsed = 0.0
    public internal(set) var lastCheckpointStep: Int?
    var rng: SplitMix64
    var best: FloatBuffer?
    var epochLossSum = 0.0
    var epochChars = 0
    let optimizer: Optimizer
    let shards: [Workspace]
    let streamLength: Int
    public let stepsPerEpoch: Int
    var stepTimeAverage: Double?
    var validationSeconds = 0.0

    /// A new run: random weights from `config.seed`.
    public convenience init(config: TrainingConfig, corpus: Corpus, options: TrainingOptions = TrainingOptions()) throws {
        try self.init(config: config, corpus: corpus, options: options, fresh: true)
    }

    init(config: TrainingConfig, corpus: Corpus, options: TrainingOptions, fresh: Bool) throws {
        try config.validate()
        guard options.threads >= 1 else { throw RecurError(.invalidArgument, "--threads must be ≥ 1") }
        let n = corpus.train.count
        let T = config.seqLen, B = config.batch
        if n < T + 1 {
            throw RecurError(.invalidArgument, "the training text has \(n) characters, shorter than one window of \(T) characters plus the one it predicts; use a longer text or a smaller --seq-len")
        }
        let L = n / B
        if L < T + 1 {
            throw RecurError(.invalidArgument, "the training text (\(n) characters) cut into \(B) streams gives each \(L) characters, less than one window of \(T) + 1; use a smaller --batch or --seq-len")
        }
        self.config = config
        self.corpus = corpus
        self.options = options
        epochs = config.epochs
        patience = config.patience
        streamLength = L
        stepsPerEpoch = (L - 1 + T - 1) / T
        let arch = try config.architecture(vocabularySize: corpus.vocabulary.count)
        network = try Network(architecture: arch, vocabulary: corpus.vocabulary)
        let net = network
        optimizer = Optimizer(kind: config.optimizer, count: net.layout.count)
        shards = (0..<config.shards).map { s in
            let lo = s * B / config.shards, hi = (s + 1) * B / config.shards
            return Workspace(net, streams: hi - lo, steps: T, withGradients: true)
        }
        rng = SplitMix64(seed: config.seed)
        if fresh { network.initialize(rng: &rng) }
    }

    /// The total number of steps of `epochs` epochs.
    public var totalSteps: Int { epochs * stepsPerEpoch }

    /// Whether the run has nothing left to do (all epochs done, or stopped early).
    public var isFinished: Bool { epoch >= epochs || (patience > 0 && badEpochs >= patience && bestValidationLoss != nil) }

    // MARK: Running

    /// Trains until the configured epochs are done, early stopping triggers, or `onEvent` returns false
    /// (after the event it was given; the trainer can then be checkpointed and resumed).
    /// Throws a `.numerical` error when the loss or gradient becomes NaN or infinite; the weights, the
    /// written model and the checkpoint on disk are then those of the last good step.
    @discardableResult
    public func run(onEvent: (TrainingEvent) throws -> Bool = { _ in true }) throws -> TrainingSummary {
        let shardCount = shards.count
        let workers = min(options.threads, shardCount)
        BLASThreads.set(shardCount > 1 ? 1 : options.threads)
        let startStep = globalStep
        let startElapsed = elapsed
        var reason = TrainingSummary.Reason.completed
        func summary() -> TrainingSummary {
            let secs = elapsed - startElapsed
            let chars = Double(globalStep - startStep) * Double(config.batch * config.seqLen)
            return TrainingSummary(reason: reason, epochsCompleted: epoch, steps: globalStep,
                                   bestValidationLoss: bestValidationLoss, bestEpoch: bestEpoch,
                                   seconds: elapsed, charsPerSecond: secs > 0 ? chars / secs : 0)
        }
        if isFinished {
            reason = epoch >= epochs ? .completed : .earlyStopped
            return summary()
        }
        while epoch < epochs {
            if position == 0 {
                for s in shards { s.resetState() }
                epochLossSum = 0
                epochChars = 0
            }
            while position < stepsPerEpoch {
                let t0 = monotonicSeconds()
                let report = try trainStep(workers: workers)
                let dt = monotonicSeconds() - t0
                elapsed += dt
                stepTimeAverage = stepTimeAverage.map { 0.9 * $0 + 0.1 * dt } ?? dt
                var r = report
                r.charsPerSecond = Double(config.batch * windowLength(position - 1)) / max(dt, 1e-9)
                r.elapsed = elapsed
                r.secondsLeft = secondsLeft()
                if !(try onEvent(.step(r))) {
                    reason = .interrupted
                    try writeCheckpointIfAsked(onEvent)
                    return summary()
                }
                if options.checkpointEvery > 0 && globalStep % options.checkpointEvery == 0 && position < stepsPerEpoch {
                    try writeCheckpointIfAsked(onEvent)
                }
            }
            let report = try endEpoch()
            let proceed = try onEvent(.epoch(report))
            if report.improved, let out = options.outPath {
                try writeModel(to: out)
                _ = try onEvent(.modelWritten(path: out, epoch: report.epoch))
            }
            try writeCheckpointIfAsked(onEvent)
            if patience > 0 && badEpochs >= patience {
                reason = .earlyStopped
                break
            }
            if !proceed {
                reason = .interrupted
                return summary()
            }
        }
        if bestValidationLoss == nil, let out = options.outPath {
            try writeModel(to: out)   // no validation: the last weights
            _ = try onEvent(.modelWritten(path: out, epoch: epoch - 1))
        }
        return summary()
    }

    /// Characters per stream in window `k` of an epoch.
    func windowLength(_ k: Int) -> Int { min(config.seqLen, streamLength - 1 - k * config.seqLen) }

    /// One optimizer step on window `position` of every stream.
    func trainStep(workers: Int) throws -> StepReport {
        let T = windowLength(position)
        let B = config.batch
        let base = corpus.train.startIndex + position * config.seqLen
        let stepSeed = rng.next()
        let scale = 1 / Float(B * T)
        var losses = [Double](repeating: 0, count: shards.count)
        let count = shards.count
        if workers > 1 {
            losses.withUnsafeMutableBufferPointer { lp in
                let out = lp.baseAddress!
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    var s = w
                    while s < count {
                        out[s] = self.runShard(s, steps: T, base: base, stepSeed: stepSeed, scale: scale)
                        s += workers
                    }
                }
            }
        } else {
            for s in 0..<count { losses[s] = runShard(s, steps: T, base: base, stepSeed: stepSeed, scale: scale) }
        }
        let g = shards[0].grads.p
        let n = network.layout.count
        for s in 1..<max(count, 1) {
            let o = shards[s].grads.p
            for i in 0..<n { g[i] += o[i] }
        }
        let lossSum = losses.reduce(0, +)
        let loss = lossSum / Double(B * T)
        let lr = learningRate(config, step: globalStep, totalSteps: totalSteps, epoch: epoch)
        let norm = clipGradients(g, n, value: config.clipValue, norm: config.clipNorm)
        if !loss.isFinite || !norm.isFinite {
            let what = loss.isFinite ? "the gradient norm became \(norm)" : "the training loss became \(loss)"
            var m = "training stopped: \(what) at epoch \(epoch + 1), step \(position + 1) (step \(globalStep + 1) of the run); the weights were not updated."
            if let path = options.checkpointPath {
                m += lastCheckpointStep.map { " The last good checkpoint is '\(path)' (step \($0))." } ?? " No checkpoint was written yet."
            } else {
                m += " No checkpoint path was given."
            }
            if let out = options.outPath, let e = bestEpoch {
                m += " The best model so far (epoch \(e + 1)) is in '\(out)'."
            }
            m += " Try a lower --lr or --clip-norm."
            throw RecurError(.numerical, m)
        }
        optimizer.update(network.params.p, g, lr: lr, config: config)
        epochLossSum += lossSum
        epochChars += B * T
        globalStep += 1
        position += 1
        return StepReport(epoch: epoch, epochs: epochs, step: position, stepsPerEpoch: stepsPerEpoch,
                          globalStep: globalStep, totalSteps: totalSteps, loss: loss, learningRate: lr,
                          gradientNorm: norm, charsPerSecond: 0, elapsed: elapsed, secondsLeft: 0)
    }

    /// Forward and backward pass of shard `s` on the window starting at `base` (its gradients in its
    /// workspace). Returns the summed loss of its predictions.
    func runShard(_ s: Int, steps T: Int, base: Int, stepSeed: UInt64, scale: Float) -> Double {
        let ws = shards[s]
        let L = streamLength
        let train = corpus.train
        let first = s * config.batch / shards.count
        if config.resetState { ws.resetState() }
        for t in 0..<T {
            for b in 0..<ws.B {
                let at = base + (first + b) * L + t
                ws.inputs[t * ws.B + b] = train[at]
                ws.targets[t * ws.B + b] = train[at + 1]
            }
        }
        ws.grads.zero()
        var mix = SplitMix64(seed: stepSeed &+ UInt64(s) &* 0x9E37_79B9_7F4A_7C15)
        let mode = ForwardMode.train(scale: scale, dropoutSeed: mix.next(), dropout: config.dropout)
        let loss = network.forward(ws, steps: T, mode: mode)
        network.backward(ws, steps: T)
        return loss
    }

    func secondsLeft() -> Double {
        let steps = Double(max(totalSteps - globalStep, 0))
        let epochsLeft = Double(max(epochs - epoch - (position == stepsPerEpoch ? 1 : 0), 0))
        return steps * (stepTimeAverage ?? 0) + epochsLeft * validationSeconds
    }

    /// Validation, best-model bookkeeping and the sample at the end of an epoch.
    func endEpoch() throws -> EpochReport {
        let t0 = monotonicSeconds()
        var val: Double? = nil
        var improved = false
        // Validation and sampling go through the inference runtime, so the figure is what `recur eval`
        // reports on the held-out text.
        let model = try network.runtimeModel()
        if !corpus.validation.isEmpty {
            let v = try TextEvaluation.evaluate(model, tokens: corpus.validation.map { Int($0) }).loss
            guard v.isFinite else {
                throw RecurError(.numerical, "training stopped: the validation loss became \(v) after epoch \(epoch + 1)")
            }
            val = v
            if bestValidationLoss.map({ v < $0 }) ?? true {
                bestValidationLoss = v
                bestEpoch = epoch
                badEpochs = 0
                improved = true
                if best == nil { best = FloatBuffer(network.layout.count) }
                best!.p.update(from: network.params.p, count: network.layout.count)
            } else {
                badEpochs += 1
            }
        }
        let sample = options.sample ? try? sampleText(model) : nil
        let dt = monotonicSeconds() - t0
        validationSeconds = dt
        elapsed += dt
        let trainLoss = epochLossSum / Double(max(epochChars, 1))
        let report = EpochReport(epoch: epoch, globalStep: globalStep, trainLoss: trainLoss, validationLoss: val,
                                 improved: improved, bestValidationLoss: bestValidationLoss, bestEpoch: bestEpoch,
                                 badEpochs: badEpochs, sample: sample,
                                 charsPerSecond: 0, elapsed: elapsed)
        lastTrainLoss = trainLoss
        if improved { bestTrainLoss = trainLoss }
        epoch += 1
        position = 0
        return report
    }
    var lastTrainLoss: Double?
    var bestTrainLoss: Double?

    /// Text generated by the runtime from the current weights (or from `model`).
    public func sampleText(_ model: Model? = nil) throws -> String {
        let model = try model ?? network.runtimeModel()
        var prompt = config.samplePrompt
        if (try? model.vocabulary.encode(prompt)) == nil || prompt.isEmpty {
            prompt = String(corpus.text.unicodeScalars.first!)
        }
        var sampler = try Sampler(SamplerParams(temperature: config.sampleTemperature, seed: config.seed))
        let r = try model.generate(prompt: prompt, maxTokens: config.sampleLength, sampler: &sampler) { _ in true }
        return prompt + r.text
    }

    // MARK: Models

    /// The weights with the best validation loss (the current ones when there is no validation yet).
    public var bestParameters: [Float] { best?.array ?? network.parameters }

    /// The metadata written into models: `options.modelMetadata`, then training figures.
    public func modelMetadata() -> [(String, MetaValue)] {
        var m = options.modelMetadata
        func add(_ k: String, _ v: MetaValue) { if !m.contains(where: { $0.0 == k }) { m.append((k, v)) } }
        add("general.name", .string("\(corpus.name)-\(config.cell)-\(config.hidden)"))
        add("general.description", .string("character-level \(config.cell) language model trained on \(corpus.name)"))
        add("training.corpus", .string(corpus.name))
        add("training.corpus_characters", .int(Int64(corpus.tokens.count)))
        if let v = bestValidationLoss {
            add("training.val_bits_per_char", .float(v / M_LN2))
            add("training.val_loss", .float(v))
        }
        if let t = bestValidationLoss != nil ? bestTrainLoss : lastTrainLoss {
            add("training.train_bits_per_char", .float(t / M_LN2))
        }
        // The epoch and step these weights come from, and the training time up to them.
        add("training.best_epoch", .int(Int64(bestValidationLoss != nil ? (bestEpoch ?? 0) + 1 : epoch)))
        add("training.steps", .int(Int64(globalStep)))
        add("training.seconds", .float((elapsed * 10).rounded() / 10))
        for (k, v) in config.metadata where !k.hasPrefix("config.sample") {
            add("training." + k.dropFirst("config.".count), v)
        }
        return m
    }

    /// Writes the model with the best validation loss (atomically).
    public func writeModel(to path: String) throws {
        let current = network.parameters
        if let b = best { network.params.p.update(from: b.p, count: b.count) }
        defer { network.parameters = current }
        try network.modelBuilder(metadata: modelMetadata()).writer().write(to: path)
    }
}

/// Seconds from a monotonic clock.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
