import ArgumentParser
import Foundation
import Recur

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model with random weights (for tests and benchmarks).",
        discussion: """
            --task generate (default): Embedding → recurrent layers → Dense(vocabulary), a character generator.
            --task classify: word vocabulary (PAD, UNK, w2 … w39) → bidirectional recurrent layer (last step) →
              Dense(relu) → Dense(sigmoid); labels negative, positive.
            --task tag: word vocabulary → bidirectional recurrent layer (every step) → Dense(softmax over 5 tags).
            --task seq2seq: word vocabularies (source s3 …, target t3 …) → encoder and decoder stacks of --layers
              recurrent layers each; --attention dot|general|additive adds an attention layer before the head
              (--combine tanh|none, --input-feeding; --bidirectional: a bidirectional encoder, the decoder 2 × hidden).
            With --frame-size F the model reads frames of F floats (no vocabulary, no embedding): --task classify
              (last step → Dense(softmax over 3 classes)), tag (every step → Dense(softmax over 3 labels)) or
              regress (every step → Dense(linear, --outputs values)); the recurrent layers are forward-only unless
              --bidirectional; --normalized adds random input.mean and input.scale.
            """)

    @Option(name: .long, help: "generate, classify, tag or seq2seq; with --frame-size: classify, tag or regress.")
    var task: String = Task.generate.rawValue

    @Option(name: .customLong("frame-size"), help: "Make a frame model: F floats per step.")
    var frameSize: Int?

    @Option(name: .long, help: "Frame models, --task regress: values per step.")
    var outputs: Int = 1

    @Flag(name: .long, help: "Frame models: a bidirectional first layer (runs whole sequences only). --task seq2seq with --attention: bidirectional encoder layers.")
    var bidirectional = false

    @Option(name: .long, help: "--task seq2seq: an attention layer scoring dot, general or additive.")
    var attention: String?

    @Option(name: .long, help: "With --attention: tanh (h̃ = tanh(W_c [c; h] + b_c), --hidden units) or none ([c; h]).")
    var combine: String = "tanh"

    @Flag(name: .customLong("input-feeding"), help: "With --attention: the first decoder layer also reads the attention's last output.")
    var inputFeeding = false

    @Flag(name: .long, help: "Frame models: random input.mean and input.scale.")
    var normalized = false

    @Option(name: .customLong("merge-mode"), help: "Bidirectional merge for classify/tag: concat, sum, mul, ave.")
    var mergeMode: String = "concat"

    @Option(name: .long, help: "Output file.")
    var out: String

    @Option(name: .long, help: "Cell: \(RecurrentSpec.Template.names.joined(separator: ", ")).")
    var cell: String = "gru"

    @Option(name: .long, help: "Number of recurrent layers.")
    var layers: Int = 1

    @Option(name: .long, help: "Hidden units per layer.")
    var hidden: Int = 64

    @Option(name: .long, help: "Embedding width.")
    var embedding: Int = 32

    @Option(name: .long, help: "Characters of the vocabulary (default: printable ASCII and newline).")
    var chars: String?

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 1

    func run() throws {
        guard let t = RecurrentSpec.Template(name: cell) else {
            throw CLIError("unknown cell '\(cell)' (known: \(RecurrentSpec.Template.names.joined(separator: ", ")))")
        }
        guard layers >= 1, hidden >= 1, embedding >= 1 else { throw CLIError("--layers, --hidden and --embedding must be ≥ 1") }
        guard let kind = Task(rawValue: task) else {
            throw CLIError("unknown task '\(task)' (known: \(Task.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if attention == nil && (combine != "tanh" || inputFeeding) {
            throw CLIError("--combine and --input-feeding are options of --attention")
        }
        if attention != nil && kind != .seq2seq { throw CLIError("--attention is for --task seq2seq") }
        if let f = frameSize {
            try createFrameModel(t, kind, frameSize: f)
            return
        }
        if kind == .regress || bidirectional && attention == nil || normalized {
            throw CLIError("--task regress, --bidirectional and --normalized are for frame models (--frame-size)")
        }
        if kind != .generate {
            try createTopology(t, kind)
            return
        }
        let pieces: [String]
        if let chars {
            pieces = Array(Set(chars.unicodeScalars.map { String($0) })).sorted()
        } else {
            pieces = ["\n"] + (32...126).map { String(UnicodeScalar(UInt8($0))) }
        }
        let vocab = try Vocabulary(kind: .char, pieces: pieces)
        let arch = Architecture.generator(vocabulary: vocab.count, embedding: embedding,
                                          cells: Array(repeating: t, count: layers), hidden: hidden)
        var b = ModelBuilder(architecture: arch, vocabulary: vocab)
        b.randomize(seed: seed)
        b.metadata.append(("general.name", .string("random-\(cell)-\(hidden)")))
        b.metadata.append(("general.description", .string("random weights (seed \(seed)); for tests and benchmarks")))
        try b.writer().write(to: out)
        print("wrote \(out): \(cell) × \(layers), hidden \(hidden), embedding \(embedding), vocabulary \(vocab.count), \(arch.parameterCount) parameters")
    }

    func createTopology(_ t: RecurrentSpec.Template, _ task: Task) throws {
        guard let merge = MergeMode(rawValue: mergeMode) else { throw CLIError("unknown merge mode '\(mergeMode)'") }
        func spec(_ input: Int) -> RecurrentSpec {
            var r = RecurrentSpec(cell: t.cell, inputSize: input, units: hidden)
            r.resetAfter = t.resetAfter; r.peephole = t.peephole; r.activation = t.activation
            return r
        }
        let words = try Vocabulary(kind: .word, pieces: ["<pad>", "<unk>"] + (2..<40).map { "w\($0)" }, pad: 0, unk: 1, lowercase: true)
        var arch: Architecture
        var vocab = words
        var source: Vocabulary? = nil
        switch task {
        case .classify, .tag:
            var layers: [LayerSpec] = [.embedding(vocabulary: words.count, dimension: embedding)]
            var width = embedding
            for i in 0..<layers_ {
                var r = spec(width)
                r.bidirectional = i == 0
                r.mergeMode = merge
                r.returnSequences = task == .tag || i < layers_ - 1
                layers.append(.recurrent(r))
                width = r.outputSize
            }
            if task == .classify {
                layers.append(.dense(inputSize: width, units: 8, activation: .relu))
                layers.append(.dense(inputSize: 8, units: 1, activation: .sigmoid))
                arch = Architecture(task: .classify, layers: layers, labels: ["negative", "positive"])
            } else {
                layers.append(.dense(inputSize: width, units: 5, activation: .softmax))
                arch = Architecture(task: .tag, layers: layers, labels: ["NOUN", "VERB", "ADJ", "DET", "PUNCT"])
            }
        case .seq2seq:
            source = try Vocabulary(kind: .word, pieces: ["<pad>", "<unk>", "<eos>"] + (3..<40).map { "s\($0)" }, pad: 0, unk: 1, eos: 2, lowercase: true)
            vocab = try Vocabulary(kind: .word, pieces: ["<pad>", "<bos>", "<eos>", "<unk>"] + (4..<40).map { "t\($0)" }, pad: 0, unk: 3, bos: 1, eos: 2, lowercase: true)
            if let name = attention {
                guard let score = AttentionScore(rawValue: name) else {
                    throw CLIError("unknown attention score '\(name)' (known: \(AttentionScore.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                guard let comb = AttentionCombine(rawValue: combine) else {
                    throw CLIError("unknown --combine '\(combine)' (known: tanh, none)")
                }
                let a = AttentionSpec(score: score, inputSize: 0, memorySize: 0, attentionUnits: score == .additive ? hidden : 0,
                                      useBias: score == .additive, combine: comb, units: hidden, inputFeeding: inputFeeding)
                arch = try Architecture.translator(source: source!.count, target: vocab.count, embedding: embedding,
                                                   cells: Array(repeating: t, count: layers_), hidden: hidden,
                                                   bidirectionalEncoder: bidirectional, attention: a)
                break
            }
            var enc: [LayerSpec] = [.embedding(vocabulary: source!.count, dimension: embedding)]
            var dec: [LayerSpec] = [.embedding(vocabulary: vocab.count, dimension: embedding)]
            var width = embedding
            for _ in 0..<layers_ {
                enc.append(.recurrent(spec(width)))
                dec.append(.recurrent(spec(width)))
                width = hidden
            }
            dec.append(.dense(inputSize: hidden, units: vocab.count, activation: .linear))
            arch = Architecture(task: .seq2seq, layers: dec, encoder: enc)
        case .generate, .regress:
            throw CLIError("a \(task.rawValue) model has no topology to make here")   // run() and createFrameModel make them
        }
        var b = ModelBuilder(architecture: arch, vocabulary: vocab)
        b.sourceVocabulary = source
        b.randomize(seed: seed, scale: 2)
        b.metadata.append(("general.name", .string("random-\(task)-\(cell)-\(hidden)")))
        b.metadata.append(("general.description", .string("random weights (seed \(seed)); for tests and benchmarks")))
        try b.writer().write(to: out)
        print("wrote \(out): \(task), \(cell) × \(layers_), hidden \(hidden), embedding \(embedding), \(arch.parameterCount) parameters")
    }

    var layers_: Int { layers }

    /// A frame model: recurrent layers over frames of F floats, then the task's dense head.
    func createFrameModel(_ t: RecurrentSpec.Template, _ task: Task, frameSize f: Int) throws {
        guard f >= 1, outputs >= 1 else { throw CLIError("--frame-size and --outputs must be ≥ 1") }
        guard task == .classify || task == .tag || task == .regress else {
            throw CLIError("a frame model is a classify, tag or regress model, not \(task.rawValue)")
        }
        guard let merge = MergeMode(rawValue: mergeMode) else { throw CLIError("unknown merge mode '\(mergeMode)'") }
        var layers: [LayerSpec] = []
        var width = f
        for i in 0..<layers_ {
            var r = RecurrentSpec(cell: t.cell, inputSize: width, units: hidden, activation: t.activation,
                                  resetAfter: t.resetAfter, peephole: t.peephole)
            r.bidirectional = bidirectional && i == 0
            r.mergeMode = merge
            r.returnSequences = task != .classify || i < layers_ - 1
            layers.append(.recurrent(r))
            width = r.outputSize
        }
        let labels = task == .regress ? [] : ["a", "b", "c"]
        layers.append(.dense(inputSize: width, units: task == .regress ? outputs : labels.count,
                             activation: task == .regress ? .linear : .softmax))
        var arch = Architecture(task: task, layers: layers, labels: labels)
        arch.input = .frames(size: f)
        var b = ModelBuilder(architecture: arch, vocabulary: .empty)
        b.randomize(seed: seed, scale: 2)
        if normalized {
            var rng = SplitMix64(seed: seed ^ 0x5eed)
            b.set("input.mean", shape: [f], values: (0..<f).map { _ in Float(rng.nextUnit() * 2 - 1) })
            b.set("input.scale", shape: [f], values: (0..<f).map { _ in Float(0.5 + rng.nextUnit()) })
        }
        b.metadata.append(("general.name", .string("random-frames-\(task.rawValue)-\(cell)-\(hidden)")))
        b.metadata.append(("general.description", .string("random weights (seed \(seed)); for tests and benchmarks")))
        try b.writer().write(to: out)
        print("wrote \(out): \(task.rawValue) on frames of \(f), \(cell) × \(layers_), hidden \(hidden), \(arch.parameterCount) parameters")
    }
}
