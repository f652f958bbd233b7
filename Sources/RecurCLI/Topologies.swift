import ArgumentParser
import Foundation
import Recur

func paddingMode(_ name: String) throws -> Model.PaddingMode {
    guard let m = Model.PaddingMode(rawValue: name) else {
        throw ValidationError("--padding must be 'trained' or 'none' (not '\(name)')")
    }
    return m
}

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify a text with a many-to-one model (e.g. sentiment): class probabilities.")

    @Argument(help: "The model file (model.task = classify).")
    var model: String

    @OptionGroup var load: LoadOptions

    @OptionGroup var unknown: UnknownOption

    @Option(name: .long, help: "Padding: 'trained' (default) cuts and pads the tokens to the length the file records, as the framework's pad_sequences did; 'none' runs them as they are.")
    var padding: String = "trained"

    @Option(name: .long, help: "The text to classify.")
    var text: String

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() throws {
        let m = try loadModel(model, task: .classify, load: load)
        let p = try m.classify(text, unknown: try unknown.policy(), padding: try paddingMode(padding))
        let names = m.labels
        let best = p.indices.max { p[$0] < p[$1] }!
        if json {
            let obj: [String: Any] = ["label": names[best], "probabilities": Dictionary(uniqueKeysWithValues: zip(names, p.map(Double.init)))]
            print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
        } else {
            print(names[best])
            for (n, v) in zip(names, p) { print("  \(n)\t\(String(format: "%.4f", v))") }
        }
    }
}

struct Tag: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tag every token of a text with a many-to-many model (e.g. part-of-speech).")

    @Argument(help: "The model file (model.task = tag).")
    var model: String

    @OptionGroup var load: LoadOptions

    @OptionGroup var unknown: UnknownOption

    @Option(name: .long, help: "Padding: 'trained' (default) cuts and pads the tokens to the length the file records, as the framework's pad_sequences did; 'none' runs them as they are.")
    var padding: String = "trained"

    @Option(name: .long, help: "The text to tag.")
    var text: String

    @Flag(name: .long, help: "Print one JSON array of [token, tag] pairs.")
    var json = false

    func run() throws {
        let m = try loadModel(model, task: .tag, load: load)
        let tagged = try m.tag(text, unknown: try unknown.policy(), padding: try paddingMode(padding))
        if json {
            let arr = tagged.map { [$0.0, $0.1] }
            print(String(data: try JSONSerialization.data(withJSONObject: arr), encoding: .utf8)!)
        } else {
            print(tagged.map { "\($0.0)/\($0.1)" }.joined(separator: " "))
        }
    }
}

struct Translate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Translate a text with an encoder-decoder model, greedily or by beam search.")

    @Argument(help: "The model file (model.task = seq2seq).")
    var model: String

    @OptionGroup var load: LoadOptions

    @OptionGroup var unknown: UnknownOption

    @Option(name: .long, help: "Padding: 'trained' (default) cuts and pads the source to the length the file records, as the framework's pad_sequences did; 'none' reads it as it is.")
    var padding: String = "trained"

    @Option(name: .long, help: "The source text.")
    var text: String

    @Option(name: .long, help: "Beam width (1 = greedy).")
    var beam: Int = 4

    @Option(name: .customLong("max-length"), help: "Maximum number of target tokens.")
    var maxLength: Int = 100

    @Option(name: .customLong("length-penalty"), help: "Hypotheses are ranked by log p / length^penalty.")
    var lengthPenalty: Double = 1

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Flag(name: .long, help: "Models with attention: also the attention weights of every target token over the source tokens (JSON: \"source\", \"attention\").")
    var attention = false

    func run() throws {
        let m = try loadModel(model, task: .seq2seq, load: load)
        let t = try m.translate(text, beam: beam, maxLength: maxLength, lengthPenalty: lengthPenalty,
                                unknown: try unknown.policy(), padding: try paddingMode(padding), attention: attention)
        if json {
            var obj: [String: Any] = ["text": t.text, "tokens": t.tokens, "log_probability": t.logProbability, "score": t.score]
            if attention {
                obj["source"] = t.source
                obj["attention"] = t.attention.map { $0.map(Double.init) }
            }
            print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
        } else {
            print(t.text)
            if attention, let src = m.sourceVocabulary {
                // One line per target token: the token, then its weight over each source token.
                print("\t" + t.source.map { src.pieces[$0] }.joined(separator: "\t"))
                for (tok, row) in zip(t.tokens, t.attention) {
                    print(m.vocabulary.pieces[tok] + "\t" + row.map { String(format: "%.3f", $0) }.joined(separator: "\t"))
                }
            }
        }
    }
}
