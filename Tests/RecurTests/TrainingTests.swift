import Foundation
import XCTest
@testable import Recur
@testable import RecurTraining

/// Training end to end on tiny models: the written file against the trainer's forward pass, resuming,
/// the best model, and errors for bad input.
final class TrainingTests: XCTestCase {
    static let text: [UInt8] = Array("""
        Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing \
        to do: once or twice she had peeped into the book her sister was reading, but it had no pictures \
        or conversations in it, `and what is the use of a book,' thought Alice `without pictures or \
        conversation?'\r\nSo she was considering in her own mind (as well as she could, for the hot day \
        made her feel very sleepy and stupid), whether the pleasure of making a daisy-chain would be worth \
        the trouble of getting up and picking the daisies, when suddenly a White Rabbit with pink eyes ran \
        close by her.\r\n
        """.utf8)

    func tinyConfig(_ cell: String = "gru") -> TrainingConfig {
        var c = TrainingConfig()
        c.cell = cell
        c.hidden = 12
        c.embedding = 5
        c.seqLen = 10
        c.batch = 4
        c.epochs = 2
        c.sampleLength = 20
        return c
    }

    private var scratch: String?

    /// A path in this test's own folder (mkdtemp under $TMPDIR), removed when the test ends.
    func tempPath(_ name: String) -> String {
        if scratch == nil {
            var template = Array((NSTemporaryDirectory() + "/recur-training-tests.XXXXXX").utf8CString)
            let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
            scratch = dir
            addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        }
        return scratch! + "/" + name
    }

    // MARK: The written model

    func testWrittenModelGivesTheTrainersLogits() throws {
        for cell in RecurrentSpec.Template.names {
            var c = tinyConfig(cell)
            c.layers = cell == "gru" || cell == "lstm" ? 2 : 1
            c.epochs = 1
            let corpus = try Corpus(bytes: Self.text, name: "tiny")
            let trainer = try Trainer(config: c, corpus: corpus)
            var options = TrainingOptions()
            options.sample = false
            trainer.options = options
            try trainer.run()
            let bytes = trainer.network.modelBuilder().writer().serialize()
            let model = try bytes.withUnsafeBytes { try Model(bytes: $0) }
            let tokens = corpus.tokens.prefix(60).map { Int($0) }
            let mine = trainer.network.logits(tokens, window: 7)   // several windows, state carried
            let state = model.makeState()
            var worst: Float = 0
            for (i, t) in tokens.enumerated() {
                let out = try state.step(t)
                for k in 0..<out.count { worst = max(worst, abs(out[k] - mine[i][k])) }
            }
            XCTAssertLessThan(worst, 1e-5, "\(cell): runtime and trainer logits differ by \(worst)")
        }
    }

    func testBestModelIsWrittenWithItsValidationFigure() throws {
        var c = tinyConfig()
        c.epochs = 3
        c.learningRate = 0.01
        let corpus = try Corpus(bytes: Self.text, name: "tiny", validationFraction: 0.2)
        var options = TrainingOptions()
        options.outPath = tempPath("best.recur")
        options.modelMetadata = [("general.name", .string("tiny-test"))]
        let trainer = try Trainer(config: c, corpus: corpus, options: options)
        var epochs: [EpochReport] = []
        let summary = try trainer.run { e in
            if case .epoch(let r) = e { epochs.append(r) }
            return true
        }
        XCTAssertEqual(epochs.count, 3)
        let best = try XCTUnwrap(epochs.compactMap(\.validationLoss).min())
        XCTAssertEqual(summary.bestValidationLoss, best)
        // The file holds the best epoch's weights: its loss on the held-out text, measured by the
        // runtime and independently by the trainer's forward pass, is the best validation loss.
        let model = try Model(path: options.outPath!)
        let eval = try TextEvaluation.evaluate(model, tokens: corpus.validation.map { Int($0) })
        XCTAssertEqual(eval.loss, best, accuracy: 1e-12)
        let net = try Network(architecture: model.architecture, vocabulary: model.vocabulary)
        net.parameters = trainer.bestParameters
        XCTAssertEqual(net.meanLoss(corpus.validation, window: 10), best, accuracy: 1e-5)
        XCTAssertEqual(model.file.value("general.name")?.stringValue, "tiny-test")
        XCTAssertEqual(model.file.value("training.val_bits_per_char")?.floatValue ?? 0, best / M_LN2, accuracy: 1e-12)
        XCTAssertEqual(model.file.value("training.corpus")?.stringValue, "tiny")
        XCTAssertEqual(model.file.value("training.cell")?.stringValue, "gru")
    }

    func testEvaluationAgainstAReference() throws {
        let corpus = try Corpus(bytes: Self.text, name: "tiny")
        let trainer = try Trainer(config: tinyConfig(), corpus: corpus)
        let model = try trainer.network.runtimeModel()
        let tokens = corpus.tokens.prefix(80).map { Int($0) }
        let same = try TextEvaluation.evaluate(model, tokens: tokens, reference: model)
        XCTAssertEqual(same.meanKL ?? -1, 0, accuracy: 1e-12)
        XCTAssertEqual(same.top1Agreement, 1)
        XCTAssertEqual(same.loss, trainer.network.meanLoss(corpus.tokens.prefix(80), window: 100), accuracy: 1e-5)
        XCTAssertEqual(same.perplexity, exp(same.loss), accuracy: 1e-12)
        // A different model: positive divergence, and the reference's own loss reported.
        var other = trainer.network.parameters
        for i in other.indices { other[i] *= 0.5 }
        trainer.network.parameters = other
        let model2 = try trainer.network.runtimeModel()
        let diff = try TextEvaluation.evaluate(model2, tokens: tokens, reference: model)
        XCTAssertGreaterThan(diff.meanKL!, 0)
        XCTAssertEqual(diff.referenceLoss!, same.loss, accuracy: 1e-12)
    }

    // MARK: Resuming

    /// Runs `config` to the end, once straight through and once stopped after `stopAt` steps,
    /// checkpointed to disk and resumed in a new trainer; the weights must be identical.
    func assertResumeIsExact(_ c: TrainingConfig, stopAt: Int, threads: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let corpus = try Corpus(bytes: Self.text, name: "tiny")
        var options = TrainingOptions()
        options.threads = threads
        options.sample = false
        let straight = try Trainer(config: c, corpus: corpus, options: options)
        let s1 = try straight.run()

        let path = tempPath("resume-\(stopAt).ckpt")
        var o2 = options
        o2.checkpointPath = path
        let first = try Trainer(config: c, corpus: corpus, options: o2)
        let partial = try first.run { e in
            if case .step(let r) = e, r.globalStep == stopAt { return false }
            if case .epoch(let r) = e, r.globalStep == stopAt { return false }
            return true
        }
        XCTAssertEqual(partial.reason, .interrupted, file: file, line: line)
        XCTAssertEqual(first.globalStep, stopAt, file: file, line: line)
        let resumed = try Trainer(checkpoint: try Trainer.openCheckpoint(path: path), corpus: corpus, options: o2)
        XCTAssertEqual(resumed.globalStep, stopAt, file: file, line: line)
        let s2 = try resumed.run()
        XCTAssertEqual(s2.steps, s1.steps, file: file, line: line)
        func same(_ a: [Float], _ b: [Float], _ what: String) {
            let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            XCTAssertTrue(a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern },
                          "\(what) differ after resuming (max difference \(diff))", file: file, line: line)
        }
        same(resumed.network.parameters, straight.network.parameters, "weights")
        same(resumed.bestParameters, straight.bestParameters, "best weights")
        same(resumed.optimizer.m.array, straight.optimizer.m.array, "first moments")
        same(resumed.optimizer.v.array, straight.optimizer.v.array, "second moments")
        XCTAssertEqual(s2.bestValidationLoss, s1.bestValidationLoss, file: file, line: line)
        XCTAssertEqual(resumed.rng.state, straight.rng.state, file: file, line: line)
    }

    func testResumeMidEpochIsExact() throws {
        var c = tinyConfig("lstm")
        c.layers = 2
        c.dropout = 0.2
        c.shards = 2
        c.epochs = 3
        let spe = try Trainer(config: c, corpus: try Corpus(bytes: Self.text)).stepsPerEpoch
        XCTAssertGreaterThan(spe, 3)
        try assertResumeIsExact(c, stopAt: spe + 2, threads: 2)
    }

    func testResumeAtEpochBoundaryIsExact() throws {
        var c = tinyConfig("gru")
        c.epochs = 3
        c.schedule = .cosine
        c.optimizer = .sgd
        c.momentum = 0.9
        c.learningRate = 0.1
        c.clipValue = 0.5
        let spe = try Trainer(config: c, corpus: try Corpus(bytes: Self.text)).stepsPerEpoch
        try assertResumeIsExact(c, stopAt: spe, threads: 1)
    }

    func testResumeRejectsAnotherText() throws {
        let corpus = try Corpus(bytes: Self.text, name: "tiny")
        let t = try Trainer(config: tinyConfig(), corpus: corpus)
        let path = tempPath("other.ckpt")
        try t.saveCheckpoint(to: path)
        var changed = Self.text
        changed[5] = UInt8(ascii: "X")
        assertThrowsRecur(.mismatch, "not the one this checkpoint was trained on") {
            _ = try Trainer(checkpoint: try Trainer.openCheckpoint(path: path), corpus: try Corpus(bytes: changed))
        }
        let model = tempPath("model.recur")
        try t.writeModel(to: model)
        assertThrowsRecur(.format, "not a training checkpoint") { _ = try Trainer.openCheckpoint(path: model) }
    }

    func testConfigRoundTripsThroughCheckpointMetadata() throws {
        var c = tinyConfig("peephole-lstm")
        c.clipNorm = nil
        c.clipValue = 0.25
        c.schedule = .step
        c.seed = UInt64.max - 3
        c.resetState = true
        var w = RecurWriter()
        for (k, v) in c.metadata { w.set(k, v) }
        let file = try RecurFile(storage: try FileStorage.copying(w.serialize()))
        XCTAssertEqual(try TrainingConfig(file: file), c)
    }

    // MARK: Bad input

    func testBadTextsAreRejectedWithClearErrors() throws {
        assertThrowsRecur(.invalidArgument, "is empty") { _ = try Corpus(bytes: [], name: "e.txt") }
        assertThrowsRecur(.invalidArgument, "not valid UTF-8 (bad byte 0xff at offset 3)") {
            _ = try Corpus(bytes: [0x41, 0x42, 0x43, 0xFF, 0x44], name: "b.txt")
        }
        assertThrowsRecur(.invalidArgument, "not valid UTF-8") { _ = try Corpus(bytes: [0x41, 0xC3], name: "b.txt") }
        let short = try Corpus(bytes: Array("hello world, this is short".utf8), validationFraction: 0)
        assertThrowsRecur(.invalidArgument, "shorter than one window") {
            var c = self.tinyConfig(); c.seqLen = 100
            _ = try Trainer(config: c, corpus: short)
        }
        assertThrowsRecur(.invalidArgument, "smaller --batch") {
            var c = self.tinyConfig(); c.seqLen = 10; c.batch = 8
            _ = try Trainer(config: c, corpus: short)
        }
        assertThrowsRecur(.invalidArgument, "unknown cell 'tree'") {
            var c = self.tinyConfig(); c.cell = "tree"
            _ = try Trainer(config: c, corpus: short)
        }
    }

    func testLineEndingsAreNormalized() throws {
        let crlf = try Corpus(bytes: Array("ab\r\ncd\r\n\rx".utf8), validationFraction: 0)
        XCTAssertEqual(crlf.text, "ab\ncd\n\rx")
        XCTAssertEqual(crlf.vocabulary.pieces, ["\n", "\r", "a", "b", "c", "d", "x"])
        XCTAssertEqual(crlf.tokens.count, 8)
        let multi = try Corpus(bytes: Array("é😀é".utf8), validationFraction: 0)
        XCTAssertEqual(multi.vocabulary.pieces, ["é", "😀"])
    }

    func testNaNStopsTrainingAndKeepsTheLastGoodCheckpoint() throws {
        let corpus = try Corpus(bytes: Self.text, name: "tiny")
        var options = TrainingOptions()
        options.checkpointPath = tempPath("nan.ckpt")
        options.outPath = tempPath("nan.recur")
        options.sample = false
        var c = tinyConfig()
        c.epochs = 3
        let t = try Trainer(config: c, corpus: corpus, options: options)
        var caught: RecurError? = nil
        var poisoned = false
        do {
            try t.run { e in
                if case .epoch = e, !poisoned {   // after the first epoch's checkpoint... poison the weights
                    poisoned = true
                }
                if case .checkpointWritten = e, poisoned {
                    var p = t.network.parameters
                    p[p.count - 1] = .nan
                    t.network.parameters = p
                }
                return true
            }
        } catch let e as RecurError {
            caught = e
        }
        let e = try XCTUnwrap(caught)
        XCTAssertEqual(e.code, .numerical)
        XCTAssertTrue(e.message.contains("became nan"), e.message)
        XCTAssertTrue(e.message.contains("last good checkpoint is '\(options.checkpointPath!)' (step \(t.stepsPerEpoch))"), e.message)
        XCTAssertTrue(e.message.contains("best model so far (epoch 1)"), e.message)
        // The checkpoint on disk is the good one: it resumes, with finite weights.
        let resumed = try Trainer(checkpoint: try Trainer.openCheckpoint(path: options.checkpointPath!), corpus: corpus)
        XCTAssertEqual(resumed.globalStep, t.stepsPerEpoch)
        XCTAssertTrue(resumed.network.parameters.allSatisfy(\.isFinite))
        XCTAssertNoThrow(try Model(path: options.outPath!))
    }

    // MARK: Optimizer pieces

    func testClippingAndSchedules() {
        var g: [Float] = [3, -4, 0.5, -0.5]
        let norm = g.withUnsafeMutableBufferPointer { clipGradients($0.baseAddress!, 4, value: 2, norm: 1) }
        // by value: [2, -2, 0.5, -0.5], norm √8.5; then scaled to norm 1
        XCTAssertEqual(norm, Float(8.5.squareRoot()), accuracy: 1e-6)
        let s = 1 / Float(8.5.squareRoot())
        for (a, b) in zip(g, [2 * s, -2 * s, 0.5 * s, -0.5 * s]) { XCTAssertEqual(a, b, accuracy: 1e-6) }

        var c = TrainingConfig()
        c.learningRate = 0.01
        c.schedule = .cosine
        c.minLearningRate = 0.001
        XCTAssertEqual(learningRate(c, step: 0, totalSteps: 100, epoch: 0), 0.01, accuracy: 1e-9)
        XCTAssertEqual(learningRate(c, step: 50, totalSteps: 100, epoch: 0), 0.0055, accuracy: 1e-7)
        XCTAssertEqual(learningRate(c, step: 100, totalSteps: 100, epoch: 0), 0.001, accuracy: 1e-9)
        c.schedule = .step
        c.stepEpochs = 3
        c.stepGamma = 0.5
        XCTAssertEqual(learningRate(c, step: 0, totalSteps: 100, epoch: 2), 0.01)
        XCTAssertEqual(learningRate(c, step: 0, totalSteps: 100, epoch: 7), 0.0025)
    }

    func testAdamStepMatchesTheFormula() {
        var c = TrainingConfig()
        c.beta1 = 0.9; c.beta2 = 0.99; c.epsilon = 1e-8
        let opt = Optimizer(kind: .adam, count: 2)
        var p: [Float] = [1, -1]
        let g1: [Float] = [0.5, -2], g2: [Float] = [0.1, 1]
        p.withUnsafeMutableBufferPointer { pp in
            opt.update(pp.baseAddress!, g1, lr: 0.1, config: c)
            opt.update(pp.baseAddress!, g2, lr: 0.1, config: c)
        }
        for i in 0..<2 {
            var m = 0.0, v = 0.0, x = [1.0, -1.0][i]
            for (t, g) in [Double(g1[i]), Double(g2[i])].enumerated() {
                m = 0.9 * m + 0.1 * g
                v = 0.99 * v + 0.01 * g * g
                let mh = m / (1 - pow(0.9, Double(t + 1))), vh = v / (1 - pow(0.99, Double(t + 1)))
                x -= 0.1 * mh / (vh.squareRoot() + 1e-8)
            }
            XCTAssertEqual(Double(p[i]), x, accuracy: 1e-6)
        }
    }
}
