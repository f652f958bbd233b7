import ArgumentParser
import Foundation
import Recur

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream text from a generator model, one piece at a time as it is sampled.",
        discussion: """
            Without MODEL, the first of these that exists: the file named by $RECUR_MODEL; \
            PREFIX/share/recur/alice.recur next to an installed `recur` (PREFIX/bin/recur); models/alice.recur \
            of the checkout the binary was built in; models/alice.recur under the current folder.
            """)

    @Argument(help: "The model file (default: the shipped generator; the lookup order is below).")
    var model: String?

    @OptionGroup var load: LoadOptions

    @OptionGroup var unknown: UnknownOption

    @Option(name: .long, help: "Text the model continues.")
    var prompt: String = "Alice"

    @Option(name: .long, help: "Number of tokens to generate.")
    var tokens: Int = 400

    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0.8

    @Option(name: .customLong("top-k"), help: "Keep only the k most likely tokens (0: all).")
    var topK: Int = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling: keep the most likely tokens up to this mass.")
    var topP: Float = 1

    @Option(name: .long, help: "Random seed; the same seed gives the same text.")
    var seed: UInt64 = 42

    @Option(name: .long, help: "Stop when this text is generated (may be repeated).")
    var stop: [String] = []

    @Flag(name: .customLong("no-prompt"), help: "Do not echo the prompt before the generated text.")
    var noPrompt = false

    func run() throws {
        if tokens < 0 { throw CLIError("--tokens must be ≥ 0 (got \(tokens))") }
        var sampler = try Sampler(SamplerParams(temperature: temperature, topK: topK, topP: topP, seed: seed))
        let policy = try unknown.policy()
        let m = try loadModel(model, task: .generate, load: load)
        _ = try m.vocabulary.encode(prompt, unknown: policy)     // fail before printing anything
        if !noPrompt { emit(prompt) }
        try m.generate(prompt: prompt, maxTokens: tokens, sampler: &sampler, stop: stop, unknown: policy) { piece in
            emit(piece)
            return true
        }
        emit("\n")
    }
}
