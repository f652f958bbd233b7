import ArgumentParser
import Foundation
import Recur
import RecurTraining

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a character-level language model on a text and write it as a .recur file.",
        discussion: """
        Embedding → recurrent layers → Dense over the characters of the text, trained by truncated
        backpropagation through time: the text is cut into --batch streams read in windows of --seq-len
        characters, the state carried from window to window (reset each epoch, or every window with
        --reset-state). The last --val-fraction of the text is held out; the model with the best
        validation loss is written to --out. Progress goes to stderr; --log writes every step and epoch
        as JSON lines (plot them with scripts/plot_training.py).

        Example: recur train --text data/alice29.txt --out alice.recur --hidden 256 --epochs 30

        With --task classify, tag, seq2seq or regress, `recur train` trains a whole-sequence
        model instead, with the options of `recur train-task` (see its --help):
        recur train --task classify --out sentiment.recur --epochs 8
        recur train --task classify --frames data/frames/JapaneseVowels_TRAIN.ts --test data/frames/JapaneseVowels_TEST.ts --out vowels.recur
        recur train --task regress --series data/frames/sunspots_monthly.csv --out sunspots.recur
        """)

    @Option(name: .long, help: "generate (this command's character generator), or classify, tag, seq2seq or regress (the options of `recur train-task`). (default: generate)")
    var task: String?

    @Option(name: .long, help: "Training text (UTF-8; CRLF is read as LF).")
    var text: String

    @Option(name: .long, help: "Where to write the model with the best validation loss.")
    var out: String

    @Option(name: .long, help: "Cell: \(RecurrentSpec.Template.names.joined(separator: ", ")). (default: gru)")
    var cell: String?

    @Option(name: .long, help: "Recurrent layers. (default: 1)")
    var layers: Int?

    @Option(name: .long, help: "Units per recurrent layer. (default: 256)")
    var hidden: Int?

    @Option(name: .long, help: "Embedding width. (default: 64)")
    var embedding: Int?

    @Option(name: .customLong("seq-len"), help: "Characters per window (BPTT steps). (default: 100)")
    var seqLen: Int?

    @Option(name: .long, help: "Parallel streams per step. (default: 64)")
    var batch: Int?

    @Option(name: .long, help: "Epochs. May be raised when resuming. (default: 20)")
    var epochs: Int?

    @Option(name: .long, help: "adam or sgd. (default: adam)")
    var optimizer: String?

    @Option(name: .long, help: "Learning rate. (default: 0.002)")
    var lr: Float?

    @Option(name: .long, help: "SGD momentum. (default: 0)")
    var momentum: Float?

    @Option(name: .customLong("lr-schedule"), help: "constant, cosine (to --lr-min over all steps) or step (×--lr-gamma every --lr-step-epochs). (default: constant)")
    var lrSchedule: String?

    @Option(name: .customLong("lr-min"), help: "Final learning rate of the cosine schedule. (default: 0)")
    var lrMin: Float?

    @Option(name: .customLong("lr-step-epochs"), help: "Step schedule period in epochs. (default: 10)")
    var lrStepEpochs: Int?

    @Option(name: .customLong("lr-gamma"), help: "Step schedule factor. (default: 0.5)")
    var lrGamma: Float?

    @Option(name: .customLong("clip-norm"), help: "Clip the gradient to this global L2 norm; 0 turns it off. (default: 5)")
    var clipNorm: Float?

    @Option(name: .customLong("clip-value"), help: "Clip each gradient component to ± this value. (default: off)")
    var clipValue: Float?

    @Option(name: .long, help: "Dropout on the inputs of the upper recurrent layers and of the output layer. (default: 0)")
    var dropout: Float?

    @Option(name: .long, help: "Random seed (weights, dropout). (default: 1)")
    var seed: UInt64?

    @Flag(name: .customLong("reset-state"), help: "Start every window from a zero state instead of carrying it along the text.")
    var resetState = false

    @Option(name: .customLong("val-fraction"), help: "Fraction of the text, from its end, held out for validation. (default: 0.1)")
    var valFraction: Double?

    @Option(name: .long, help: "Stop after this many epochs without a better validation loss; 0 never stops early. (default: 5)")
    var patience: Int?

    @Option(name: .long, help: "Worker threads. (default: the number of processors)")
    var threads: Int?

    @Option(name: .long, help: "Split each batch into this many shards computed in parallel; the result depends on it, not on --threads. (default: --threads)")
    var shards: Int?

    @Option(name: .long, help: "Continue the run saved in this checkpoint (its settings apply; --epochs and --patience may be changed).")
    var resume: String?

    @Option(name: .long, help: "Write a checkpoint here after every epoch (atomically).")
    var checkpoint: String?

    @Option(name: .customLong("checkpoint-every"), help: "Also write the checkpoint every N steps.")
    var checkpointEvery: Int = 0

    @Option(name: .long, help: "Append every step's loss and each epoch's figures to this file as JSON lines.")
    var log: String?

    @Option(name: .long, help: "general.name of the written model.")
    var name: String?

    @Option(name: .customLong("sample-length"), help: "Characters sampled from \"Alice\" after each epoch; 0 turns it off. (default: 200)")
    var sampleLength: Int?

    @Flag(name: .long, help: "No progress bar or samples; only the epoch lines.")
    var quiet = false

    func run() throws {
        if let task, task != Task.generate.rawValue {   // routed to train-task by RecurCommand.main before parsing
            throw CLIError("--task must be generate, classify, tag, seq2seq or regress (got '\(task)')")
        }
        try requireWritable(out, "--out")
        if let checkpoint { try requireWritable(checkpoint, "--checkpoint") }
        if let log { try requireWritable(log, "--log") }
        let bytes = try readFile(text)
        let name = URL(fileURLWithPath: text).lastPathComponent
        var options = TrainingOptions()
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        options.threads = threads ?? cpus
        guard options.threads >= 1 else { throw CLIError("--threads must be ≥ 1") }
        options.checkpointPath = checkpoint ?? resume
        options.checkpointEvery = checkpointEvery
        options.outPath = out
        let trainer: Trainer
        if let resume {
            let file = try Trainer.openCheckpoint(path: resume)
            let config = try TrainingConfig(file: file)
            try checkUnchanged(config)
            let corpus = try Corpus(bytes: bytes, name: name, validationFraction: config.validationFraction)
            trainer = try Trainer(checkpoint: file, corpus: corpus, options: options)
            if let e = epochs { trainer.epochs = e }
            if let p = patience { trainer.patience = p }
        } else {
            var c = TrainingConfig()
            if let v = cell { c.cell = v }
            if let v = layers { c.layers = v }
            if let v = hidden { c.hidden = v }
            if let v = embedding { c.embedding = v }
            if let v = seqLen { c.seqLen = v }
            if let v = batch { c.batch = v }
            if let v = epochs { c.epochs = v }
            if let v = optimizer {
                guard let o = OptimizerKind(rawValue: v) else { throw CLIError("unknown optimizer '\(v)' (known: adam, sgd)") }
                c.optimizer = o
            }
            if let v = lr { c.learningRate = v }
            if let v = momentum { c.momentum = v }
            if let v = lrSchedule {
                guard let s = LRSchedule(rawValue: v) else { throw CLIError("unknown schedule '\(v)' (known: constant, cosine, step)") }
                c.schedule = s
            }
            if let v = lrMin { c.minLearningRate = v }
            if let v = lrStepEpochs { c.stepEpochs = v }
            if let v = lrGamma { c.stepGamma = v }
            if let v = clipNorm { c.clipNorm = v == 0 ? nil : v }
            if let v = clipValue { c.clipValue = v == 0 ? nil : v }
            if let v = dropout { c.dropout = v }
            if let v = seed { c.seed = v }
            c.resetState = resetState
            if let v = valFraction { c.validationFraction = v }
            if let v = patience { c.patience = v }
            c.shards = min(shards ?? options.threads, c.batch)
            if let v = sampleLength { c.sampleLength = v }
            try c.validate()
            let corpus = try Corpus(bytes: bytes, name: name, validationFraction: c.validationFraction)
            trainer = try Trainer(config: c, corpus: corpus, options: options)
        }
        let config = trainer.config
        trainer.options.sample = config.sampleLength > 0 && !quiet
        trainer.options.modelMetadata = [
            ("training.command", .string(commandLine())),
        ] + (self.name.map { [("general.name", MetaValue.string($0))] } ?? [])

        let logHandle = try log.map { try openLog($0, append: resume != nil) }
        func logLine(_ s: String) {
            logHandle?.write((s + "\n").data(using: .utf8)!)
        }
        if resume == nil {
            logLine("{\"type\":\"config\",\"text\":\(jsonString(name)),\"characters\":\(trainer.corpus.tokens.count),\"vocabulary\":\(trainer.corpus.vocabulary.count),\"parameters\":\(trainer.network.parameterCount),\"steps_per_epoch\":\(trainer.stepsPerEpoch),\"command\":\(jsonString(commandLine()))}")
        } else {
            logLine("{\"type\":\"resume\",\"global_step\":\(trainer.globalStep),\"epoch\":\(trainer.epoch + 1)}")
        }

        let c = trainer.corpus
        note("training \(config.cell) × \(config.layers), hidden \(config.hidden), embedding \(config.embedding): \(trainer.network.parameterCount) parameters")
        note("text \(name): \(c.tokens.count) characters, \(c.vocabulary.count) distinct; \(c.train.count) for training, \(c.validation.count) for validation")
        note("\(config.batch) streams × windows of \(config.seqLen): \(trainer.stepsPerEpoch) steps per epoch; \(config.optimizer.rawValue), lr \(config.learningRate) (\(config.schedule.rawValue)), \(options.threads) thread(s), \(config.shards) shard(s)")
        if resume != nil { note("resuming at epoch \(trainer.epoch + 1), step \(trainer.position) of \(trainer.stepsPerEpoch) (step \(trainer.globalStep) of the run)") }

        let bar = ProgressBar(enabled: !quiet)
        let summary = try trainer.run { event in
            switch event {
            case .step(let r):
                logLine(r.jsonLine)
                bar.step(r)
            case .epoch(let r):
                logLine(r.jsonLine)
                bar.clear()
                var line = "epoch \(r.epoch + 1)/\(trainer.epochs)  train \(fmt(r.trainBitsPerChar)) bits/char"
                if let v = r.validationBitsPerChar {
                    line += "  val \(fmt(v)) bits/char\(r.improved ? " (best)" : "")"
                }
                line += "  \(duration(r.elapsed))"
                note(line)
                if let s = r.sample, !quiet {
                    note("  | " + s.replacingOccurrences(of: "\n", with: "\n  | "))
                }
            case .checkpointWritten:
                break
            case .modelWritten(let path, let epoch):
                if !quiet { note("  wrote \(path) (epoch \(epoch + 1))") }
            }
            return true
        }
        bar.clear()
        var done = "done: \(summary.reason.rawValue.replacingOccurrences(of: "_", with: " ")) after \(summary.epochsCompleted) epochs, \(summary.steps) steps, \(duration(summary.seconds)), \(Int(summary.charsPerSecond)) chars/s"
        if let b = summary.bestValidationBitsPerChar, let e = summary.bestEpoch {
            done += "; best validation \(fmt(b)) bits/char (epoch \(e + 1)) written to \(out)"
        } else {
            done += "; model written to \(out)"
        }
        note(done)
        logLine("{\"type\":\"summary\",\"reason\":\"\(summary.reason.rawValue)\",\"epochs\":\(summary.epochsCompleted),\"steps\":\(summary.steps),\"seconds\":\(summary.seconds),\"chars_per_sec\":\(summary.charsPerSecond)\(summary.bestValidationBitsPerChar.map { ",\"best_val_bits_per_char\":\($0)" } ?? "")}")
        try logHandle?.close()
    }

    /// With --resume, options that shape the run must agree with the checkpoint.
    func checkUnchanged(_ c: TrainingConfig) throws {
        var bad: [String] = []
        func check<T: Equatable>(_ flag: String, _ given: T?, _ saved: T) { if let g = given, g != saved { bad.append("\(flag) (checkpoint: \(saved))") } }
        check("--cell", cell, c.cell); check("--layers", layers, c.layers); check("--hidden", hidden, c.hidden)
        check("--embedding", embedding, c.embedding); check("--seq-len", seqLen, c.seqLen); check("--batch", batch, c.batch)
        check("--optimizer", optimizer, c.optimizer.rawValue); check("--lr", lr, c.learningRate); check("--seed", seed, c.seed)
        check("--dropout", dropout, c.dropout); check("--val-fraction", valFraction, c.validationFraction)
        check("--shards", shards, c.shards); check("--lr-schedule", lrSchedule, c.schedule.rawValue)
        if resetState != c.resetState { bad.append("--reset-state (checkpoint: \(c.resetState))") }
        if !bad.isEmpty {
            throw CLIError("these options differ from the checkpoint being resumed: \(bad.joined(separator: ", ")); leave them out")
        }
    }
}

/// The progress line on stderr: redrawn in place on a terminal, an occasional line otherwise.
final class ProgressBar {
    let enabled: Bool
    let tty = isatty(2) != 0
    var shown = false
    var lastPrint = 0.0

    init(enabled: Bool) { self.enabled = enabled }

    func step(_ r: StepReport) {
        guard enabled else { return }
        let width = 24
        let done = Int(Double(width) * Double(r.step) / Double(max(r.stepsPerEpoch, 1)))
        let bar = String(repeating: "█", count: done) + String(repeating: "·", count: width - done)
        let line = "epoch \(r.epoch + 1)/\(r.epochs) \(bar) \(r.step)/\(r.stepsPerEpoch)  loss \(fmt(r.bitsPerChar)) bits/char  \(Int(r.charsPerSecond)) chars/s  \(duration(r.secondsLeft)) left"
        if tty {
            FileHandle.standardError.write(("\r\u{1B}[K" + line).data(using: .utf8)!)
            shown = true
        } else if r.elapsed - lastPrint >= 30 || r.step == r.stepsPerEpoch {
            lastPrint = r.elapsed
            note(line)
        }
    }

    func clear() {
        if shown { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!); shown = false }
    }
}

func note(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

func fmt(_ x: Double) -> String { String(format: "%.3f", x) }

func duration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    if t >= 3600 { return "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m" }
    if t >= 60 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
    return "\(t)s"
}

/// The command as typed, with `recur` as the program name and arguments quoted where needed.
func commandLine() -> String {
    let args = CommandLine.arguments.dropFirst().map { a -> String in
        a.isEmpty || a.contains(where: { " \t\"'$\\".contains($0) }) ? "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'" : a
    }
    return (["recur"] + args).joined(separator: " ")
}

func readFile(_ path: String) throws -> [UInt8] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw CLIError("cannot read '\(path)': no such file") }
    guard !isDir.boolValue else { throw CLIError("cannot read '\(path)': it is a directory") }
    guard let d = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read '\(path)'") }
    return [UInt8](d)
}

func openLog(_ path: String, append: Bool) throws -> FileHandle {
    if !append || !FileManager.default.fileExists(atPath: path) {
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw CLIError("cannot create the log '\(path)'") }
    }
    guard let h = FileHandle(forWritingAtPath: path) else { throw CLIError("cannot open the log '\(path)'") }
    h.seekToEndOfFile()
    return h
}
