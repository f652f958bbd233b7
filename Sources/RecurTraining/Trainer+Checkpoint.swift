import Recur

// Checkpoints of a character-generator run: everything the run depends on, so that a resumed run computes
// the same weights as one that was never interrupted.

extension Trainer {
    func writeCheckpointIfAsked(_ onEvent: (TrainingEvent) throws -> Bool) throws {
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
