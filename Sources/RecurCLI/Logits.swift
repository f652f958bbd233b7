import ArgumentParser
import Foundation
import Recur

/// `recur logits MODEL --tokens 1,2,3 [--prefill | --sequence]`: the model's raw output vectors as JSON, for
/// comparing the runtime with an independent implementation. Hidden from `recur --help`.
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the model's output after each token (one JSON array of arrays).",
        shouldDisplay: false)

    @Argument(help: "The model file.")
    var model: String

    @Option(name: .long, help: "Comma-separated token ids.")
    var tokens: String

    @Flag(name: .long, help: "Feed all tokens with State.prefill and print only the final output (one array).")
    var prefill = false

    @Flag(name: .long, help: "Run Model.forwardSequence over all tokens (whole-sequence models) and print its rows.")
    var sequence = false

    @Flag(name: .customLong("no-input-table"), help: "Do not precompute the first layer's input projections.")
    var noInputTable = false

    @Flag(name: .customLong("skip-checksum"), help: "Do not verify the file's CRC-32.")
    var skipChecksum = false

    func run() throws {
        let ids = try tokens.split(separator: ",", omittingEmptySubsequences: false).map { s -> Int in
            guard let v = Int(s.trimmingCharacters(in: .whitespaces)) else { throw CLIError("--tokens: '\(s)' is not an integer") }
            return v
        }
        var o = Model.Options()
        o.verifyChecksum = !skipChecksum
        if noInputTable { o.inputTableBudget = 0 }
        let m = try Model(path: model, options: o)
        if sequence {
            emit("[" + (try m.forwardSequence(ids)).map(json).joined(separator: ",\n") + "]\n")
            return
        }
        let state = m.makeState()
        if prefill {
            emit(json(Array(try state.prefill(ids))) + "\n")
            return
        }
        var rows: [String] = []
        for t in ids { rows.append(json(Array(try state.step(t)))) }
        emit("[" + rows.joined(separator: ",\n") + "]\n")
    }

    /// Shortest round-tripping decimal of each float; non-finite values as NaN / Infinity / -Infinity.
    func json(_ v: [Float]) -> String {
        "[" + v.map { x -> String in
            if x.isNaN { return "NaN" }
            if x.isInfinite { return x > 0 ? "Infinity" : "-Infinity" }
            return "\(x)"
        }.joined(separator: ",") + "]"
    }
}
