import ArgumentParser
import Foundation
import Recur
import RecurTraining

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure how well a model predicts a text (bits per character, perplexity), classifies frame sequences or forecasts a series.",
        discussion: """
            Steps the model over the text through the inference runtime, from a zero state, predicting \
            each character from the ones before it. With --reference (for example the f32 model a \
            quantized one was made from), also reports the mean KL divergence KL(reference ‖ model) and \
            how often both rank the same character first (generator models). \
            Frame models: --frames FILE.ts|FILE.csv evaluates a frame classifier (accuracy and the confusion \
            matrix, rows the true class and columns the predicted one; the file's classes are matched to the \
            model's labels by name); --series FILE.csv streams a series through a forecaster from its first \
            value and reports MAE and RMSE at every horizon over the last --test-fraction of the values.
            """)

    @Argument(help: "The model file (default: the shipped model).")
    var model: String?

    @Option(name: .long, help: "The text (UTF-8; CRLF is read as LF).")
    var text: String?

    @Option(name: .long, help: "Frame sequences (.ts or .csv) for a frame classifier.")
    var frames: String?

    @Option(name: .customLong("sequence-column"), help: "CSV frames: the sequence-id column. (default: sequence)")
    var sequenceColumn: String?

    @Option(name: .customLong("label-column"), help: "CSV frames: the label column. (default: label)")
    var labelColumn: String?

    @Option(name: .long, help: "A series (.csv) for a forecaster.")
    var series: String?

    @Option(name: .long, help: "The column of the series. (default: the last column)")
    var column: String?

    @Option(name: .customLong("test-fraction"), help: "Series: the errors are those of the last part of the values (1: all). (default: 0.15)")
    var testFraction: Double?

    @Option(name: .long, help: "A reference model with the same vocabulary to compare against.")
    var reference: String?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @OptionGroup var load: LoadOptions

    func run() throws {
        let inputs = [text != nil, frames != nil, series != nil].filter { $0 }.count
        guard inputs == 1 else { throw CLIError(inputs == 0 ? "give --text, --frames or --series" : "give one of --text, --frames and --series") }
        if frames != nil || series != nil { return try runFrames() }
        for (flag, given) in [("--sequence-column", sequenceColumn != nil), ("--label-column", labelColumn != nil), ("--column", column != nil),
                              ("--test-fraction", testFraction != nil)] where given {
            throw CLIError("\(flag) is an option of --frames or --series")
        }
        let text = self.text!
        let path = try model ?? defaultModelPath()
        let m = try loadModel(path, task: .generate, load: load)
        let ref = try reference.map { try loadModel($0, task: .generate, load: load) }
        let bytes = try readFile(text)
        guard !bytes.isEmpty else { throw CLIError("the text '\(text)' is empty") }
        if let bad = Corpus.firstInvalidUTF8(bytes) {
            throw CLIError("the text '\(text)' is not valid UTF-8 (bad byte at offset \(bad))")
        }
        let s = String(decoding: Corpus.normalizeLineEndings(bytes), as: UTF8.self)
        let tokens = try m.vocabulary.encode(s)
        let r = try TextEvaluation.evaluate(m, tokens: tokens, reference: ref)
        let unit = m.vocabulary.kind == .char ? "char" : "token"
        if json {
            var obj: [String: Any] = [
                "model": path, "text": text, "predictions": r.predictions, "loss": r.loss,
                "bits_per_\(unit)": r.bitsPerToken, "perplexity": r.perplexity,
            ]
            if let ref = reference {
                obj["reference"] = ref
                obj["reference_bits_per_\(unit)"] = r.referenceLoss.map { $0 / M_LN2 }
                obj["mean_kl"] = r.meanKL
                obj["top1_agreement"] = r.top1Agreement
            }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(data: data, encoding: .utf8)!)
            return
        }
        print("model        \(path)")
        print("text         \(text) (\(r.predictions) predictions)")
        print("bits/\(unit)    \(String(format: "%.4f", r.bitsPerToken))")
        print("perplexity   \(String(format: "%.4f", r.perplexity))")
        if let ref = reference, let kl = r.meanKL, let a = r.top1Agreement, let rl = r.referenceLoss {
            print("reference    \(ref): \(String(format: "%.4f", rl / M_LN2)) bits/\(unit)")
            print("mean KL      \(String(format: "%.6f", kl)) nats")
            print("top-1 agree  \(String(format: "%.2f", a * 100))%")
        }
    }
}

extension Eval {
    func runFrames() throws {
        guard let path = model else { throw CLIError("name the frame model to evaluate") }
        if reference != nil { throw CLIError("--reference is an option of --text") }
        if let frames {
            if column != nil || testFraction != nil { throw CLIError("--column and --test-fraction are options of --series") }
            let m = try loadModel(path, task: .classify, load: load)
            guard m.architecture.input.frameSize != nil else { throw CLIError("\(path) reads tokens, not frames; evaluate it with --text or its task's command") }
            let data = try readFrameSequences(frames, sequenceColumn: sequenceColumn, labelColumn: labelColumn)
            let e = try evaluateFrameClassifier(m, data, file: frames)
            if json {
                let obj: [String: Any] = ["model": path, "frames": frames, "sequences": e.count, "accuracy": e.accuracy,
                                          "labels": m.labels, "confusion": e.confusion]
                print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
                return
            }
            print("model        \(path)")
            print("frames       \(frames) (\(e.count) sequences)")
            print("accuracy     \(String(format: "%.2f", e.accuracy * 100))% (\(e.confusion.indices.map { e.confusion[$0][$0] }.reduce(0, +)) of \(e.count))")
            print("confusion    rows: true class, columns: predicted")
            let w = max(m.labels.map(\.count).max()!, e.confusion.flatMap { $0 }.map { String($0).count }.max()!, 3)
            func pad(_ s: String) -> String { String(repeating: " ", count: max(w - s.count, 0)) + s }
            print("  " + pad("") + " " + m.labels.map(pad).joined(separator: " "))
            for (i, row) in e.confusion.enumerated() { print("  " + pad(m.labels[i]) + " " + row.map { pad(String($0)) }.joined(separator: " ")) }
        } else if let series {
            if sequenceColumn != nil || labelColumn != nil { throw CLIError("--sequence-column and --label-column are options of --frames") }
            let m = try loadModel(path, task: .regress, load: load)
            let values = try readSeries(series, column: column)
            let f = testFraction ?? 0.15
            guard f > 0, f <= 1 else { throw CLIError("--test-fraction must be in (0, 1]") }
            let start = values.count - Int((Double(values.count) * f).rounded())
            guard start < values.count else { throw CLIError("\(series): no values to evaluate") }
            let e = try evaluateForecaster(m, values, from: start)
            if json {
                let obj: [String: Any] = ["model": path, "series": series, "values": values.count, "first_evaluated": start,
                                          "mae": e.map(\.mae), "rmse": e.map(\.rmse), "counts": e.map(\.count)]
                print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
                return
            }
            print("model        \(path)")
            print("series       \(series) (\(values.count) values; errors on values \(start)…\(values.count - 1), forecasts streamed from value 0)")
            print("horizon      MAE          RMSE         forecasts")
            for (h, r) in e.enumerated() {
                print(String(format: "%-12d %-12.4f %-12.4f %d", h + 1, r.mae, r.rmse, r.count))
            }
        }
    }
}
