import ArgumentParser
import Foundation
import Recur

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a generator model with random weights (for tests and benchmarks).")

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
}
