import ArgumentParser
import Foundation
import Recur

/// `recur logits MODEL --tokens 1,2,3 [--prefill | --sequence]`: the model's raw output vectors as JSON, for
/// comparing the runtime with an independent implementation. Hidden from `recur --help`. A frame model
/// takes `--frames` instead: the frames' floats, comma-separated (frame after frame).
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the model's output after each token (one JSON array of arrays).",
        shouldDisplay: false)

    @Argument(help: "The model file.")
    var model: String

    @Option(name: .long, help: "Comma-separated token ids.")
    var tokens: String?

    @Option(name: .long, help: "Frame models: the frames' floats, comma-separated, frame after frame.")
    var frames: String?

    @Flag(name: .long, help: "Feed all tokens with State.prefill and print only the final output (one array).")
    var prefill = false

    @Flag(name: .long, help: "Run Model.forwardSequence over all tokens (whole-sequence models) and print its rows.")
    var sequence = false

    @Flag(name: .customLong("no-input-table"), help: "Do not precompute the first layer's input projections.")
    var noInputTable = false

    @Flag(name: .customLong("skip-checksum"), help: "Do not verify the file's CRC-32.")
    var skipChecksum = false

    func run() throws {
        var o = Model.Options()
        o.verifyChecksum = !skipChecksum
        if noInputTable { o.inputTableBudget = 0 }
        let m = try Model(path: model, options: o)
        if let frames {
            guard tokens == nil else { throw CLIError("give --tokens or --frames, not both") }
            try runFrames(m, frames)
            return
        }
        guard let tokens else { throw CLIError("give --tokens (or --frames for a frame model)") }
        let ids = try tokens.split(separator: ",", omittingEmptySubsequences: false).map { s -> Int in
            guard let v = Int(s.trimmingCharacters(in: .whitespaces)) else { throw CLIError("--tokens: '\(s)' is not an integer") }
            return v
        }
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

    func runFrames(_ m: Model, _ text: String) throws {
        let x = try text.split(separator: ",", omittingEmptySubsequences: false).map { s -> Float in
            guard let v = Float(s.trimmingCharacters(in: .whitespaces)) else { throw CLIError("--frames: '\(s)' is not a number") }
            return v
        }
        if sequence {
            emit("[" + (try m.forwardSequence(frames: x)).map(json).joined(separator: ",\n") + "]\n")
            return
        }
        let state = m.makeState()
        if prefill {
            emit(json(Array(try state.prefill(frames: x))) + "\n")
            return
        }
        guard let f = m.frameSize, x.count % f == 0 else { throw CLIError("--frames: not a whole number of frames of this model") }
        var rows: [String] = []
        for t in 0..<(x.count / f) { rows.append(json(Array(try state.step(frame: Array(x[(t * f)..<((t + 1) * f)]))))) }
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
