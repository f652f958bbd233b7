import ArgumentParser
import Foundation
import Recur
import RecurTraining

/// `recur predict MODEL --csv FILE`: a frame model over frames read as CSV lines, printing as it reads.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a frame model over frames read from a CSV file or standard input, printing as frames arrive.",
        discussion: """
            Each line is one frame: the model's frame size in numbers separated by commas (or spaces). An empty \
            line ends a sequence (the state starts again from zero); a first line that is not numbers is a header \
            and is skipped.
            tag and regress models print one line per frame as soon as it is read (a model with a bidirectional \
            layer, which needs the whole sequence, prints them at the sequence's end). classify models print one \
            line per sequence at its end; with --running, a line per frame: the prediction for the frames so far.
            A line: regress, the values separated by commas; tag and classify, the label and its probability \
            ("label,0.912345"). With --json, one JSON object per line.
            """)

    @Argument(help: "The frame model (model.input = frames).")
    var model: String

    @Option(name: .long, help: "The CSV file of frames; - for standard input.")
    var csv: String

    @Flag(name: .long, help: "classify models: print the prediction after every frame.")
    var running = false

    @Flag(name: .long, help: "Print one JSON object per line.")
    var json = false

    @OptionGroup var load: LoadOptions

    func run() throws {
        let m = try loadModel(model, load: load)
        guard let f = m.frameSize else {
            throw CLIError("\(model) reads tokens, not frames; run it with `recur \(m.architecture.task.call)`")
        }
        let task = m.architecture.task
        if running && (task != .classify || !m.canStep || m.architecture.pooling != .last) {
            throw CLIError("--running needs a classify model that can be stepped (forward-only layers, last-step pooling)")
        }
        guard let input = csv == "-" ? stdin : fopen(csv, "r") else {
            throw CLIError("cannot open \(csv): \(String(cString: strerror(errno)))")
        }
        defer { if input != stdin { fclose(input) } }
        let streaming = m.canStep && (task != .classify || running)
        let state = m.makeState()
        var sequence: [Float] = []          // the frames of the current sequence (whole-sequence runs)
        var frames = 0, number = 0
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }

        func finishSequence() throws {
            defer { sequence = []; frames = 0; state.reset() }
            guard frames > 0, !streaming else { return }
            let rows = try m.forwardSequence(frames: sequence)
            for r in rows { emit(r) }
        }
        func emit(_ row: [Float]) {
            print(Self.format(row, task: task, labels: m.labels, json: json))
            fflush(stdout)
        }

        while getline(&line, &capacity, input) >= 0 {
            number += 1
            let text = String(cString: line!).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty {
                try finishSequence()
                continue
            }
            guard let values = Self.numbers(text) else {
                if number == 1 { continue }   // a header
                throw CLIError("\(csv == "-" ? "stdin" : csv) line \(number): not a list of numbers")
            }
            guard values.count == f else {
                throw CLIError("\(csv == "-" ? "stdin" : csv) line \(number): \(values.count) numbers; frames of this model have \(f)")
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw CLIError("\(csv == "-" ? "stdin" : csv) line \(number): value \(bad + 1) is \(values[bad]); frames must be finite")
            }
            frames += 1
            if streaming {
                emit(Array(try state.step(frame: values)))
            } else {
                sequence += values
            }
        }
        if ferror(input) != 0 { throw CLIError("cannot read \(csv): \(String(cString: strerror(errno)))") }
        try finishSequence()
    }

    /// The numbers of a line separated by commas, semicolons, tabs or spaces, or nil when one is not a number.
    static func numbers(_ text: String) -> [Float]? {
        var out: [Float] = []
        for field in text.split(whereSeparator: { $0 == "," || $0 == ";" || $0 == " " || $0 == "\t" }) {
            guard let v = Float(field) else { return nil }
            out.append(v)
        }
        return out.isEmpty ? nil : out
    }

    /// One output line: the values of a regress model, or the most likely label and its probability.
    static func format(_ row: [Float], task: Task, labels: [String], json: Bool) -> String {
        if task == .regress {
            let values = row.map { String(format: "%.6g", $0) }
            return json ? "{\"values\":[\(values.joined(separator: ","))]}" : values.joined(separator: ",")
        }
        let p = row.count == 1 ? [1 - row[0], row[0]] : row      // a single sigmoid output
        let best = p.indices.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }!
        let name = best < labels.count ? labels[best] : String(best)
        let prob = String(format: "%.6f", p[best])
        return json ? "{\"label\":\(jsonString(name)),\"probability\":\(prob)}" : "\(name),\(prob)"
    }
}
