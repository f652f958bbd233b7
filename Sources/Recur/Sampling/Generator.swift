/// Why a generation stopped.
public enum StopReason: String, Sendable {
    case maxTokens = "max_tokens"
    case endOfSequence = "eos"
    case stopString = "stop_string"
    case callback = "callback"
}

public struct GenerationResult: Sendable {
    public var tokens: [Int]
    public var text: String
    public var reason: StopReason
}

extension Model {
    /// Streams text: feeds `prompt` (prefill), then samples up to `maxTokens` tokens, handing each piece of
    /// text to `onPiece` as soon as it is sampled. Stops at `maxTokens`, at EOS, at the first occurrence of a
    /// stop string (which is not delivered), or when `onPiece` returns false.
    ///
    /// Text that might be the beginning of a stop string is held back until it is known not to be one.
    @discardableResult
    public func generate(prompt: String, state: State? = nil, maxTokens: Int, sampler: inout Sampler,
                         stop: [String] = [], unknown: Vocabulary.UnknownPolicy = .error,
                         onPiece: (String) throws -> Bool) throws -> GenerationResult {
        guard maxTokens >= 0 else { throw RecurError(.invalidArgument, "max tokens must be ≥ 0 (got \(maxTokens))") }
        let st = try feedPrompt(prompt, state: state, unknown: unknown)
        var stream = TextStream(stop: stop, vocabulary: vocabulary)
        var out: [Int] = []
        var reason = StopReason.maxTokens
        while out.count < maxTokens {
            let logits = UnsafeBufferPointer(start: st.output, count: outputSize)
            let tok = try sampler.sample(logits, probabilities: outputIsProbability)
            if tok == vocabulary.eos { reason = .endOfSequence; break }
            out.append(tok)
            try st.step(tok)     // the state has consumed every delivered token; its output is ready
            let (ready, stopped) = stream.push(tok)
            if !ready.isEmpty, try !onPiece(ready) { reason = .callback; break }
            if stopped { reason = .stopString; break }
        }
        if reason != .stopString && reason != .callback {
            let rest = stream.flush()
            if !rest.isEmpty { _ = try onPiece(rest) }
        }
        let text = stream.text
        return GenerationResult(tokens: out, text: text, reason: reason)
    }
}

/// The text side of one generation: each sampled token's piece (word vocabularies put a space between
/// words), held back while it may be the beginning of a stop string. `Model.generate` and
/// `Model.generateBatch` both deliver what `push` and `flush` return, so a stream's text is the same in both.
struct TextStream {
    let stops: [String]
    let vocabulary: Vocabulary
    /// Everything returned so far (delivered).
    private(set) var text = ""
    /// Sampled text not yet returned (may start a stop string).
    private var pending = ""

    init(stop: [String], vocabulary: Vocabulary) {
        self.stops = stop.filter { !$0.isEmpty }
        self.vocabulary = vocabulary
    }

    /// Token `tok`'s piece: the text now ready to deliver (possibly empty), and whether a stop string was
    /// found, in which case the ready text is what precedes it and the stream is over.
    mutating func push(_ tok: Int) -> (ready: String, stopped: Bool) {
        let v = vocabulary
        let piece = v.isSpecial(tok) ? "" : (v.kind == .word && !(text.isEmpty && pending.isEmpty) ? " " : "") + v.pieces[tok]
        pending += piece
        guard !stops.isEmpty else { return (take(pending.count), false) }
        if let cut = stops.compactMap({ s in pending.range(of: s).map { pending.distance(from: pending.startIndex, to: $0.lowerBound) } }).min() {
            let ready = String(pending.prefix(cut))
            pending = ""
            text += ready
            return (ready, true)
        }
        // Deliver everything that cannot start a stop string.
        var keep = 0
        for s in stops {
            for k in stride(from: min(s.count - 1, pending.count), through: 1, by: -1) where pending.hasSuffix(String(s.prefix(k))) {
                keep = max(keep, k); break
            }
        }
        return (take(pending.count - keep), false)
    }

    /// What is still held back, at the end of a stream that did not stop at a stop string.
    mutating func flush() -> String { take(pending.count) }

    /// The first `k` characters of pending, moved to text.
    private mutating func take(_ k: Int) -> String {
        let ready = String(pending.prefix(k))
        pending = String(pending.dropFirst(k))
        text += ready
        return ready
    }
}

extension Model {
    /// The state a generation continues (`state`, or a new one) after feeding it `prompt`, with BOS first
    /// when the model has one; an empty prompt without BOS needs a state that has consumed tokens.
    func feedPrompt(_ prompt: String, state: State?, unknown: Vocabulary.UnknownPolicy) throws -> State {
        let st = state ?? makeState()
        guard st.model === self else { throw RecurError(.mismatch, "the state belongs to another model") }
        try requireGenerator()
        var ids = try encode(prompt, unknown: unknown)
        if let bos = vocabulary.bos { ids.insert(bos, at: 0) }
        if ids.isEmpty {
            if st.position == 0 {
                throw RecurError(.invalidArgument, "the prompt is empty and the model has no BOS token to start from")
            }
        } else {
            try st.prefill(ids)
        }
        return st
    }

    /// Refuses models that are not generators: a seq2seq model's decoder can be stepped, but without its
    /// encoder it produces text unrelated to any input, and whole-sequence models cannot be stepped.
    public func requireGenerator() throws {
        let task = architecture.task
        guard task == .generate else {
            throw RecurError(.unsupported, "this is a \(task.rawValue) model, not a text generator; run it with \(task.call)")
        }
    }
}

extension String {
    /// Foundation-free substring search.
    func range(of needle: String) -> Range<String.Index>? {
        guard !needle.isEmpty, needle.count <= count else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
            i = index(after: i)
        }
        return nil
    }
}
