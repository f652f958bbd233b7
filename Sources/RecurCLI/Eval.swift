import ArgumentParser
import Foundation
import Recur
import RecurTraining

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure how well a model predicts a text: bits per character and perplexity.",
        discussion: """
            Steps the model over the text through the inference runtime, from a zero state, predicting \
            each character from the ones before it. With --reference (for example the f32 model a \
            quantized one was made from), also reports the mean KL divergence KL(reference ‖ model) and \
            how often both rank the same character first. Generator models only.
            """)

    @Argument(help: "The model file (default: the shipped model).")
    var model: String?

    @Option(name: .long, help: "The text (UTF-8; CRLF is read as LF).")
    var text: String

    @Option(name: .long, help: "A reference model with the same vocabulary to compare against.")
    var reference: String?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @OptionGroup var load: LoadOptions

    func run() throws {
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
