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

    @Option(name: .long, help: "Sampling temperature; 0 is greedy. (default: 0.8)")
    var temperature: Float?

    @Option(name: .customLong("top-k"), help: "Keep only the k most likely tokens (0: all). (default: 0)")
    var topK: Int?

    @Option(name: .customLong("top-p"), help: "Nucleus sampling: keep the most likely tokens up to this mass. (default: 1)")
    var topP: Float?

    @Option(name: .long, help: "Random seed; the same seed gives the same text. (default: 42)")
    var seed: UInt64?

    @Option(name: .long, help: "Stop when this text is generated (may be repeated).")
    var stop: [String] = []

    @Option(name: .long, help: "Beam search of this width (1 ... 256) instead of sampling; 1 is greedy.")
    var beam: Int?

    @Option(name: .long, help: "With --beam: print this many best continuations (1 ... beam), each with its log-probability. (default: 1)")
    var best: Int?

    @Option(name: .customLong("length-penalty"), help: "With --beam: continuations are ranked by log p / length^penalty. (default: 1)")
    var lengthPenalty: Double?

    @Flag(name: .customLong("no-prompt"), help: "Do not echo the prompt before the generated text.")
    var noPrompt = false

    func run() throws {
        if tokens < 0 { throw CLIError("--tokens must be ≥ 0 (got \(tokens))") }
        if let beam { return try runBeam(beam) }
        for (given, name) in [(best != nil, "--best"), (lengthPenalty != nil, "--length-penalty")] where given {
            throw CLIError("\(name) applies to beam search; add --beam N")
        }
        var sampler = try Sampler(SamplerParams(temperature: temperature ?? 0.8, topK: topK ?? 0, topP: topP ?? 1,
                                                seed: seed ?? 42))
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

    /// --beam: the best continuation streamed as it becomes certain, or with --best K the K best, each
    /// under a line giving its rank, log-probability and score.
    private func runBeam(_ beam: Int) throws {
        for (given, name) in [(temperature != nil, "--temperature"), (topK != nil, "--top-k"), (topP != nil, "--top-p"),
                              (seed != nil, "--seed"), (!stop.isEmpty, "--stop")] where given {
            throw CLIError("\(name) applies to sampling, not to beam search (--beam)")
        }
        let params = BeamParams(beam: beam, best: best ?? 1, lengthPenalty: lengthPenalty ?? 1)
        try params.validate()
        let policy = try unknown.policy()
        let m = try loadModel(model, task: .generate, load: load)
        _ = try m.vocabulary.encode(prompt, unknown: policy)     // fail before printing anything
        if params.best == 1 {
            if !noPrompt { emit(prompt) }
            try m.generateBeam(prompt: prompt, maxTokens: tokens, params: params, unknown: policy) { piece in
                emit(piece)
                return true
            }
            emit("\n")
            return
        }
        let found = try m.generateBeam(prompt: prompt, maxTokens: tokens, params: params, unknown: policy)
        for (rank, c) in found.enumerated() {
            emit("--- \(rank + 1) of \(found.count): " + String(format: "log-probability %.4f, score %.4f, ", c.logProbability, c.score) + "\(c.tokens.count) tokens (\(c.reason.rawValue))\n")
            emit((noPrompt ? "" : prompt) + c.text + "\n")
        }
    }
}
