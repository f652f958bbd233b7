import ArgumentParser
import Foundation
import Recur
import RecurTraining

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a model on held-out data: a text, labelled sentences, sentence pairs, frames or a series.",
        discussion: """
            Steps the model over the text through the inference runtime, from a zero state, predicting \
            each character from the ones before it. With --reference (for example the f32 model a \
            quantized one was made from), also reports the mean KL divergence KL(reference ‖ model) and \
            how often both rank the same character first (generator models). \
            Classifiers and taggers: --data FILE… (a classifier: sentence<TAB>label lines, the label one of \
            the model's labels or its index, as data/sentiment/*.tsv; a tagger: word/TAG lines, as \
            data/pos/*.upos.txt, scored per token) reports accuracy, per-class precision, recall and F1, their \
            macro average (over the classes in the data or the predictions) and weighted average (by support), \
            and the confusion matrix (rows: true class, columns: predicted); a ratio with a zero denominator \
            (the precision of a class never predicted) is 0. \
            Translators: --pairs FILE… (source<TAB>target lines) translates each source (greedy, or --beam N) \
            and reports corpus BLEU-1…4 (Papineni et al.: clipped n-gram precisions summed over the corpus, \
            geometric mean, brevity penalty over the corpus; no smoothing) and the mean sentence BLEU-4 \
            smoothed by Chen & Cherry (2014) method 1 as NLTK's SmoothingFunction().method1 (ε = 0.1). Words \
            are split and lowercased as `recur train --task` splits them. \
            --part test|validation|train keeps that part of the 80/10/10 split `recur train --task` makes of \
            the same files in the same order (example i is validation when i mod 10 = 8, test when \
            i mod 10 = 9; pairs after --max-length has left out the longer ones, as in training). \
            Frame models: --frames FILE.ts|FILE.csv evaluates a frame classifier (the same table and confusion \
            matrix; the file's classes are matched to the model's labels by name); --series FILE.csv streams \
            a series through a forecaster from its first value and reports MAE and RMSE at every horizon \
            over the last --test-fraction of the values. --json prints one object (with the predictions, or \
            the translations and the references as split).
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

    @Option(name: .long, parsing: .upToNextOption, help: "Classifier or tagger: sentence<TAB>label or word/TAG files.")
    var data: [String] = []

    @Option(name: .long, parsing: .upToNextOption, help: "Translator: source<TAB>target files.")
    var pairs: [String] = []

    @Option(name: .long, help: "--data/--pairs: all, or the test, validation or train part of the training split. (default: all)")
    var part: String?

    @Option(name: .long, help: "--pairs: beam width (1: greedy). (default: 1)")
    var beam: Int?

    @Option(name: .customLong("max-length"), help: "--pairs: keep the pairs with at most this many words each side (before --part, as in training); translations stop at twice it. (default: all pairs, translations of at most 2 × max(60, the longest side))")
    var maxLength: Int?

    @Option(name: .long, help: "A reference model with the same vocabulary to compare against.")
    var reference: String?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @OptionGroup var load: LoadOptions

    func run() throws {
        let inputs = [text != nil, frames != nil, series != nil, !data.isEmpty, !pairs.isEmpty].filter { $0 }.count
        guard inputs == 1 else {
            throw CLIError(inputs == 0 ? "give --text, --data, --pairs, --frames or --series" : "give one of --text, --data, --pairs, --frames and --series")
        }
        let tasksOnly: [(String, Bool, String)] = [("--part", part != nil, "--data and --pairs"), ("--beam", beam != nil, "--pairs"),
                                                   ("--max-length", maxLength != nil, "--pairs")]
        if data.isEmpty && pairs.isEmpty, let given = tasksOnly.first(where: \.1) { throw CLIError("\(given.0) is an option of \(given.2)") }
        if !data.isEmpty || !pairs.isEmpty {
            for (flag, given) in [("--reference", reference != nil), ("--sequence-column", sequenceColumn != nil), ("--label-column", labelColumn != nil),
                                  ("--column", column != nil), ("--test-fraction", testFraction != nil)] where given {
                throw CLIError("\(flag) is not an option of --data or --pairs")
            }
            return try data.isEmpty ? runPairs(pairs) : runData(data)
        }
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
            guard m.architecture.input.frameSize != nil else { throw CLIError("\(path) reads tokens, not frames; evaluate it with --data (classifiers, taggers), --pairs (translators) or --text (generators)") }
            let data = try readFrameSequences(frames, sequenceColumn: sequenceColumn, labelColumn: labelColumn)
            let e = try evaluateFrameClassifier(m, data, file: frames)
            if json {
                var obj = e.dictionary
                obj["model"] = path; obj["frames"] = frames; obj["sequences"] = e.count
                print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
                return
            }
            print("model        \(path)")
            print("frames       \(frames) (\(e.count) sequences)")
            print("accuracy     \(String(format: "%.2f", e.accuracy * 100))% (\(e.correct) of \(e.count))")
            print("macro F1     \(String(format: "%.2f", e.macro.f1 * 100))%")
            for line in e.report() { print(line) }
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
