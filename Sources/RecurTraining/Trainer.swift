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

/// One optimizer step.
public struct StepReport: Sendable {
    /// 0-based epoch, and the configured number of epochs.
    public var epoch: Int, epochs: Int
    /// 1-based step within the epoch, and steps per epoch.
    public var step: Int, stepsPerEpoch: Int
    /// Steps done in the whole run, and the total the run would take without early stopping.
    public var globalStep: Int, totalSteps: Int
    /// Mean cross-entropy of the step's predictions, nats per character.
    public var loss: Double
    public var learningRate: Float
    /// Global gradient norm before clipping by norm.
    public var gradientNorm: Float
    public var charsPerSecond: Double
    /// Seconds of training so far (over all resumed parts) and an estimate of the seconds left.
    public var elapsed: Double, secondsLeft: Double

    public var bitsPerChar: Double { loss / M_LN2 }

    public var jsonLine: String {
        "{\"type\":\"step\",\"epoch\":\(epoch + 1),\"step\":\(step),\"global_step\":\(globalStep),\"loss\":\(json(loss)),\"bits_per_char\":\(json(bitsPerChar)),\"lr\":\(json(Double(learningRate))),\"grad_norm\":\(json(Double(gradientNorm))),\"chars_per_sec\":\(json(charsPerSecond)),\"elapsed\":\(json(elapsed))}"
    }
}

/// The end of an epoch.
public struct EpochReport: Sendable {
    /// 0-based.
    public var epoch: Int
    public var globalStep: Int
    /// Mean training loss over the epoch's steps (nats per character).
    public var trainLoss: Double
    public var validationLoss: Double?
    /// Whether this epoch's validation loss is the best so far (the model written to `outPath`).
    public var improved: Bool
    public var bestValidationLoss: Double?
    public var bestEpoch: Int?
    /// Epochs in a row without improvement.
    public var badEpochs: Int
    public var sample: String?
    public var charsPerSecond: Double
    public var elapsed: Double

    public var trainBitsPerChar: Double { trainLoss / M_LN2 }
    public var validationBitsPerChar: Double? { validationLoss.map { $0 / M_LN2 } }

    public var jsonLine: String {
        var s = "{\"type\":\"epoch\",\"epoch\":\(epoch + 1),\"global_step\":\(globalStep),\"train_loss\":\(json(trainLoss)),\"train_bits_per_char\":\(json(trainBitsPerChar))"
        if let v = validationLoss {
            s += ",\"val_loss\":\(json(v)),\"val_bits_per_char\":\(json(v / M_LN2)),\"val_perplexity\":\(json(exp(v)))"
        }
        s += ",\"best\":\(improved),\"chars_per_sec\":\(json(charsPerSecond)),\"elapsed\":\(json(elapsed))"
        if let t = sample { s += ",\"sample\":\(jsonString(t))" }
        return s + "}"
    }
}

public enum TrainingEvent: Sendable {
    case step(StepReport)
    case epoch(EpochReport)
    case checkpointWritten(path: String, globalStep: Int)
    case modelWritten(path: String, epoch: Int)
}

public struct TrainingSummary: Sendable {
    public enum Reason: String, Sendable {
        case completed
        case earlyStopped = "early_stopped"
        case interrupted
    }
    public var reason: Reason
    public var epochsCompleted: Int
    public var steps: Int
    public var bestValidationLoss: Double?
    /// 0-based epoch of the best validation loss.
    public var bestEpoch: Int?
    public var seconds: Double
    public var charsPerSecond: Double
    public var bestValidationBitsPerChar: Double? { bestValidationLoss.map { $0 / M_LN2 } }
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
    public private(set) var epoch = 0
    public private(set) var position = 0
    /// Optimizer steps done in the whole run.
    public private(set) var globalStep = 0
    public private(set) var bestValidationLoss: Double?
    public private(set) var bestEpoch: Int?
    public private(set) var badEpochs = 0
    /// Seconds spent training, over every resumed part.
    public private(set) var elapsed = 0.0
    public private(set) var lastCheckpointStep: Int?
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

    private init(config: TrainingConfig, corpus: Corpus, options: TrainingOptions, fresh: Bool) throws {
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

    // MARK: Checkpoints

    private func writeCheckpointIfAsked(_ onEvent: (TrainingEvent) throws -> Bool) throws {
        guard let path = options.checkpointPath else { return }
        try saveCheckpoint(to: path)
        _ = try onEvent(.checkpointWritten(path: path, globalStep: globalStep))
    }

    /// Writes a checkpoint atomically (temporary file, then rename).
    public func saveCheckpoint(to path: String) throws {
        try AtomicFile.write(checkpointBytes(), to: path)
        lastCheckpointStep = globalStep
    }

    public static let checkpointKind = "recur-training-checkpoint"
    public static let checkpointVersion: Int64 = 1

    /// The checkpoint: a .recur container whose metadata holds the configuration, architecture,
    /// vocabulary, corpus identity and progress, and whose tensors are the weights, the optimizer state,
    /// the best weights and the carried recurrent state of every stream.
    public func checkpointBytes() -> [UInt8] {
        var w = RecurWriter()
        w.set("checkpoint.kind", .string(Trainer.checkpointKind))
        w.set("checkpoint.version", .int(Trainer.checkpointVersion))
        w.set("general.producer", .string("recur \(RecurVersion.string)"))
        for (k, v) in network.architecture.metadata { w.set(k, v) }
        for (k, v) in network.vocabulary.metadata { w.set(k, v) }
        for (k, v) in config.metadata { w.set(k, v) }
        w.set("corpus.name", .string(corpus.name))
        w.set("corpus.checksum", .int(Int64(corpus.checksum)))
        w.set("corpus.characters", .int(Int64(corpus.tokens.count)))
        w.set("state.epochs", .int(Int64(epochs)))
        w.set("state.patience", .int(Int64(patience)))
        w.set("state.epoch", .int(Int64(epoch)))
        w.set("state.position", .int(Int64(position)))
        w.set("state.global_step", .int(Int64(globalStep)))
        w.set("state.optimizer_step", .int(Int64(optimizer.t)))
        w.set("state.rng", .int(Int64(bitPattern: rng.state)))
        w.set("state.bad_epochs", .int(Int64(badEpochs)))
        w.set("state.epoch_loss_sum", .float(epochLossSum))
        w.set("state.epoch_chars", .int(Int64(epochChars)))
        w.set("state.elapsed", .float(elapsed))
        if let v = bestValidationLoss { w.set("state.best_validation_loss", .float(v)) }
        if let e = bestEpoch { w.set("state.best_epoch", .int(Int64(e))) }
        if let t = lastTrainLoss { w.set("state.last_train_loss", .float(t)) }
        if let t = bestTrainLoss { w.set("state.best_train_loss", .float(t)) }
        let n = network.layout.count
        w.addTensor("params", shape: [n], values: network.parameters)
        w.addTensor("optimizer.m", shape: [n], values: optimizer.m.array)
        if optimizer.kind == .adam { w.addTensor("optimizer.v", shape: [n], values: optimizer.v.array) }
        if let b = best { w.addTensor("best", shape: [n], values: b.array) }
        for (l, r) in network.plan.rec.enumerated() {
            w.addTensor("carry.\(l).h", shape: [config.batch, r.H], values: shards.flatMap { $0.layers[l].carryH.array })
            if r.cell.hasCellState {
                w.addTensor("carry.\(l).c", shape: [config.batch, r.H], values: shards.flatMap { $0.layers[l].carryC!.array })
            }
        }
        return w.serialize()
    }

    /// Reads a checkpoint file (checked: format, checksum, kind, version).
    public static func openCheckpoint(path: String) throws -> RecurFile {
        let file = try RecurFile.open(path: path)
        guard file.value("checkpoint.kind")?.stringValue == checkpointKind else {
            throw RecurError(.format, "'\(path)' is not a training checkpoint")
        }
        guard let v = file.value("checkpoint.version")?.intValue, v == checkpointVersion else {
            throw RecurError(.unsupportedVersion, "'\(path)': checkpoint version \(file.value("checkpoint.version")?.intValue ?? -1) is not supported (this build reads \(checkpointVersion))")
        }
        return file
    }

    /// Resumes from a checkpoint. `corpus` must be the text the run was started on (checked by checksum),
    /// split with the checkpoint's validation fraction (`TrainingConfig(file:)`).
    public convenience init(checkpoint file: RecurFile, corpus: Corpus, options: TrainingOptions = TrainingOptions()) throws {
        let config = try TrainingConfig(file: file)
        guard let sum = file.value("corpus.checksum")?.intValue, let chars = file.value("corpus.characters")?.intValue else {
            throw RecurError(.format, "checkpoint: missing corpus identity")
        }
        if UInt32(truncatingIfNeeded: sum) != corpus.checksum || Int(chars) != corpus.tokens.count {
            throw RecurError(.mismatch, "the text '\(corpus.name)' is not the one this checkpoint was trained on ('\(file.value("corpus.name")?.stringValue ?? "?")', \(chars) characters)")
        }
        if corpus.validation.count != Int((Double(corpus.tokens.count) * config.validationFraction).rounded()) {
            throw RecurError(.mismatch, "the corpus must be split with the checkpoint's validation fraction (\(config.validationFraction))")
        }
        try self.init(config: config, corpus: corpus, options: options, fresh: false)
        let vocab = try Vocabulary(file: file)
        guard vocab.pieces == corpus.vocabulary.pieces else {
            throw RecurError(.mismatch, "the checkpoint's vocabulary differs from the text's")
        }
        guard try Architecture(file: file) == network.architecture else {
            throw RecurError(.mismatch, "the checkpoint's architecture differs from its configuration")
        }
        func int(_ k: String) throws -> Int {
            guard let v = file.value("state." + k)?.intValue else { throw RecurError(.format, "checkpoint: missing 'state.\(k)'") }
            return Int(v)
        }
        func float(_ k: String) throws -> Double {
            guard let v = file.value("state." + k)?.floatValue else { throw RecurError(.format, "checkpoint: missing 'state.\(k)'") }
            return v
        }
        func tensor(_ name: String, _ count: Int) throws -> [Float] {
            guard let t = file.tensor(name) else { throw RecurError(.format, "checkpoint: missing tensor '\(name)'") }
            guard t.dtype == .f32, t.elementCount == count else {
                throw RecurError(.format, "checkpoint: tensor '\(name)' has \(t.elementCount) \(t.dtype.name) values, expected \(count) f32")
            }
            let b = file.bytes(of: t)
            return (0..<count).map { Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        epochs = try int("epochs")
        patience = try int("patience")
        epoch = try int("epoch")
        position = try int("position")
        globalStep = try int("global_step")
        guard epoch >= 0, position >= 0, position <= stepsPerEpoch, globalStep >= 0 else {
            throw RecurError(.format, "checkpoint: progress out of range (epoch \(epoch), position \(position))")
        }
        optimizer.t = try int("optimizer_step")
        guard let r = file.value("state.rng")?.intValue else { throw RecurError(.format, "checkpoint: missing 'state.rng'") }
        rng = SplitMix64(seed: UInt64(bitPattern: r))
        badEpochs = try int("bad_epochs")
        epochLossSum = try float("epoch_loss_sum")
        epochChars = try int("epoch_chars")
        elapsed = try float("elapsed")
        bestValidationLoss = file.value("state.best_validation_loss")?.floatValue
        bestEpoch = file.value("state.best_epoch")?.intValue.map { Int($0) }
        lastTrainLoss = file.value("state.last_train_loss")?.floatValue
        bestTrainLoss = file.value("state.best_train_loss")?.floatValue
        let n = network.layout.count
        network.parameters = try tensor("params", n)
        optimizer.m.load(try tensor("optimizer.m", n))
        if optimizer.kind == .adam { optimizer.v.load(try tensor("optimizer.v", n)) }
        if file.tensor("best") != nil {
            let b = FloatBuffer(n)
            b.load(try tensor("best", n))
            best = b
        }
        for (l, rp) in network.plan.rec.enumerated() {
            let h = try tensor("carry.\(l).h", config.batch * rp.H)
            let c = rp.cell.hasCellState ? try tensor("carry.\(l).c", config.batch * rp.H) : nil
            var off = 0
            for ws in shards {
                let k = ws.B * rp.H
                ws.layers[l].carryH.load(Array(h[off..<(off + k)]))
                if let c { ws.layers[l].carryC!.load(Array(c[off..<(off + k)])) }
                off += k
            }
        }
        lastCheckpointStep = globalStep
    }
}

/// Seconds from a monotonic clock.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// A finite number as JSON (NaN and infinities become null).
func json(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }

/// A string as a JSON string literal.
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
