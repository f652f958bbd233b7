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
              recurrent layers each.
            """)

    @Option(name: .long, help: "generate, classify, tag or seq2seq.")
    var task: String = Task.generate.rawValue

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
        case .generate:
            throw CLIError("a generator has no topology to make here")   // run() makes generators
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
}
