import Recur

/// Everything that determines a training run's result: model shape, data layout, optimizer, schedule,
/// regularization, seed. Stored in checkpoints (as `config.*` metadata) so a run resumes exactly.
///
/// Defaults follow the classic character-level example: windows of 100 characters, 64 streams, Adam.
public struct TrainingConfig: Sendable, Equatable {
    /// A `RecurrentSpec.Template` name: gru, gru-reset-before, lstm, peephole-lstm, rnn, rnn-relu.
    public var cell = "gru"
    public var layers = 1
    public var hidden = 256
    public var embedding = 64
    /// Characters per window (steps of backpropagation through time).
    public var seqLen = 100
    /// Parallel streams over the text.
    public var batch = 64
    public var epochs = 20
    public var optimizer: OptimizerKind = .adam
    public var learningRate: Float = 0.002
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    /// SGD only.
    public var momentum: Float = 0
    /// Clip the gradient to this global L2 norm (nil: no clipping).
    public var clipNorm: Float? = 5
    /// Clip every gradient component to ± this value (nil: no clipping).
    public var clipValue: Float? = nil
    public var schedule: LRSchedule = .constant
    /// Cosine schedule: the final learning rate.
    public var minLearningRate: Float = 0
    /// Step schedule: multiply the learning rate by `stepGamma` every `stepEpochs` epochs.
    public var stepEpochs = 10
    public var stepGamma: Float = 0.5
    /// Probability of zeroing an input of the layers above the first recurrent layer and of the output
    /// layer (inverted dropout: kept values are scaled by 1/(1 − p)).
    public var dropout: Float = 0
    public var seed: UInt64 = 1
    /// Fraction of the text, taken from its end, held out for validation.
    public var validationFraction = 0.1
    /// Stop after this many epochs without a better validation loss (0: never stop early).
    public var patience = 5
    /// Start every window from a zero state instead of the state the previous window left.
    public var resetState = false
    /// The batch is split into this many shards computed in parallel; their gradients are summed in a
    /// fixed order, so a run's result depends on the shard count but not on the number of threads.
    public var shards = 1
    /// Text sampled after each epoch: prompt, length, temperature.
    public var samplePrompt = "Alice"
    public var sampleLength = 200
    public var sampleTemperature: Float = 0.8

    public init() {}

    public var template: RecurrentSpec.Template? { RecurrentSpec.Template(name: cell) }

    public func validate() throws {
        func bad(_ m: String) -> RecurError { RecurError(.invalidArgument, m) }
        guard template != nil else {
            throw bad("unknown cell '\(cell)' (known: \(RecurrentSpec.Template.names.joined(separator: ", ")))")
        }
        guard layers >= 1, layers <= 16 else { throw bad("--layers must be 1...16 (got \(layers))") }
        guard hidden >= 1, hidden <= 8192 else { throw bad("--hidden must be 1...8192 (got \(hidden))") }
        guard embedding >= 1, embedding <= 8192 else { throw bad("--embedding must be 1...8192 (got \(embedding))") }
        guard seqLen >= 1, seqLen <= 100_000 else { throw bad("--seq-len must be ≥ 1 (got \(seqLen))") }
        guard batch >= 1, batch <= 100_000 else { throw bad("--batch must be ≥ 1 (got \(batch))") }
        guard epochs >= 1 else { throw bad("--epochs must be ≥ 1 (got \(epochs))") }
        guard learningRate.isFinite, learningRate > 0 else { throw bad("--lr must be a positive number (got \(learningRate))") }
        guard beta1 >= 0, beta1 < 1, beta2 >= 0, beta2 < 1, epsilon > 0 else { throw bad("Adam needs 0 ≤ β1, β2 < 1 and ε > 0") }
        guard momentum >= 0, momentum < 1 else { throw bad("--momentum must be in [0, 1) (got \(momentum))") }
        if let c = clipNorm { guard c.isFinite, c > 0 else { throw bad("--clip-norm must be positive (got \(c))") } }
        if let c = clipValue { guard c.isFinite, c > 0 else { throw bad("--clip-value must be positive (got \(c))") } }
        guard minLearningRate >= 0, minLearningRate <= learningRate else { throw bad("--lr-min must be in [0, lr] (got \(minLearningRate))") }
        guard stepEpochs >= 1, stepGamma > 0, stepGamma.isFinite else { throw bad("the step schedule needs --lr-step-epochs ≥ 1 and --lr-gamma > 0") }
        guard dropout >= 0, dropout < 1 else { throw bad("--dropout must be in [0, 1) (got \(dropout))") }
        guard validationFraction >= 0, validationFraction < 1 else { throw bad("--val-fraction must be in [0, 1) (got \(validationFraction))") }
        guard patience >= 0 else { throw bad("--patience must be ≥ 0 (got \(patience))") }
        guard shards >= 1, shards <= batch else { throw bad("the batch (\(batch)) cannot be split into \(shards) shards") }
        guard sampleLength >= 0, sampleTemperature >= 0, sampleTemperature.isFinite else { throw bad("invalid sampling settings") }
    }

    /// The model this configuration trains, for a vocabulary of `vocabularySize` characters.
    public func architecture(vocabularySize: Int) throws -> Architecture {
        try validate()
        return Architecture.generator(vocabulary: vocabularySize, embedding: embedding,
                                      cells: Array(repeating: template!, count: layers), hidden: hidden)
    }

    /// The configuration as `config.*` metadata. Float settings are written as the Double with the same
    /// shortest decimal form (0.002, not 0.0020000000949949026); they read back to the same Float.
    public var metadata: [(String, MetaValue)] {
        func f(_ x: Float) -> MetaValue { .float(Double("\(x)") ?? Double(x)) }
        var m: [(String, MetaValue)] = [
            ("config.cell", .string(cell)), ("config.layers", .int(Int64(layers))),
            ("config.hidden", .int(Int64(hidden))), ("config.embedding", .int(Int64(embedding))),
            ("config.seq_len", .int(Int64(seqLen))), ("config.batch", .int(Int64(batch))),
            ("config.epochs", .int(Int64(epochs))), ("config.optimizer", .string(optimizer.rawValue)),
            ("config.lr", f(learningRate)), ("config.beta1", f(beta1)),
            ("config.beta2", f(beta2)), ("config.epsilon", f(epsilon)),
            ("config.momentum", f(momentum)),
            ("config.lr_schedule", .string(schedule.rawValue)), ("config.lr_min", f(minLearningRate)),
            ("config.lr_step_epochs", .int(Int64(stepEpochs))), ("config.lr_gamma", f(stepGamma)),
            ("config.dropout", f(dropout)), ("config.seed", .int(Int64(bitPattern: seed))),
            ("config.val_fraction", .float(validationFraction)), ("config.patience", .int(Int64(patience))),
            ("config.reset_state", .bool(resetState)), ("config.shards", .int(Int64(shards))),
            ("config.sample_prompt", .string(samplePrompt)), ("config.sample_length", .int(Int64(sampleLength))),
            ("config.sample_temperature", f(sampleTemperature)),
        ]
        if let c = clipNorm { m.append(("config.clip_norm", f(c))) }
        if let c = clipValue { m.append(("config.clip_value", f(c))) }
        return m
    }

    /// Reads a configuration written by `metadata`.
    public init(file: RecurFile) throws {
        func v(_ k: String) throws -> MetaValue {
            guard let x = file.value("config." + k) else { throw RecurError(.format, "checkpoint: missing 'config.\(k)'") }
            return x
        }
        func int(_ k: String) throws -> Int {
            guard let x = try v(k).intValue else { throw RecurError(.format, "checkpoint: 'config.\(k)' must be an integer") }
            return Int(x)
        }
        func float(_ k: String) throws -> Double {
            guard let x = try v(k).floatValue else { throw RecurError(.format, "checkpoint: 'config.\(k)' must be a number") }
            return x
        }
        func string(_ k: String) throws -> String {
            guard let x = try v(k).stringValue else { throw RecurError(.format, "checkpoint: 'config.\(k)' must be a string") }
            return x
        }
        cell = try string("cell"); layers = try int("layers"); hidden = try int("hidden"); embedding = try int("embedding")
        seqLen = try int("seq_len"); batch = try int("batch"); epochs = try int("epochs")
        guard let o = OptimizerKind(rawValue: try string("optimizer")) else { throw RecurError(.format, "checkpoint: unknown optimizer") }
        optimizer = o
        learningRate = Float(try float("lr")); beta1 = Float(try float("beta1")); beta2 = Float(try float("beta2"))
        epsilon = Float(try float("epsilon")); momentum = Float(try float("momentum"))
        guard let s = LRSchedule(rawValue: try string("lr_schedule")) else { throw RecurError(.format, "checkpoint: unknown schedule") }
        schedule = s
        minLearningRate = Float(try float("lr_min")); stepEpochs = try int("lr_step_epochs"); stepGamma = Float(try float("lr_gamma"))
        dropout = Float(try float("dropout"))
        guard let sd = try v("seed").intValue else { throw RecurError(.format, "checkpoint: 'config.seed' must be an integer") }
        seed = UInt64(bitPattern: sd)
        validationFraction = try float("val_fraction"); patience = try int("patience")
        guard let rs = try v("reset_state").boolValue else { throw RecurError(.format, "checkpoint: 'config.reset_state' must be a boolean") }
        resetState = rs
        shards = try int("shards")
        samplePrompt = try string("sample_prompt"); sampleLength = try int("sample_length")
        sampleTemperature = Float(try float("sample_temperature"))
        clipNorm = file.value("config.clip_norm")?.floatValue.map { Float($0) }
        clipValue = file.value("config.clip_value")?.floatValue.map { Float($0) }
        try validate()
    }
}
