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
        let stops = stop.filter { !$0.isEmpty }
        var out: [Int] = []
        var text = ""
        var pending = ""       // sampled text not yet delivered (may start a stop string)
        var reason = StopReason.maxTokens
        func deliver(_ s: String) throws -> Bool {
            if s.isEmpty { return true }
            text += s
            return try onPiece(s)
        }
        loop: while out.count < maxTokens {
            let logits = UnsafeBufferPointer(start: st.output, count: outputSize)
            let tok = try sampler.sample(logits, probabilities: outputIsProbability)
            if tok == vocabulary.eos { reason = .endOfSequence; break }
            out.append(tok)
            try st.step(tok)     // the state has consumed every delivered token; its output is ready
            let piece = vocabulary.isSpecial(tok) ? "" : (vocabulary.kind == .word && !(text.isEmpty && pending.isEmpty) ? " " : "") + vocabulary.pieces[tok]
            pending += piece
            if !stops.isEmpty {
                if let cut = stops.compactMap({ s in pending.range(of: s).map { pending.distance(from: pending.startIndex, to: $0.lowerBound) } }).min() {
                    if try !deliver(String(pending.prefix(cut))) { reason = .callback; break loop }
                    pending = ""
                    reason = .stopString
                    break loop
                }
                // Deliver everything that cannot start a stop string.
                var keep = 0
                for s in stops {
                    for k in stride(from: min(s.count - 1, pending.count), through: 1, by: -1) where pending.hasSuffix(String(s.prefix(k))) {
                        keep = max(keep, k); break
                    }
                }
                let ready = String(pending.dropLast(keep))
                pending = String(pending.suffix(keep))
                if try !deliver(ready) { reason = .callback; break }
            } else {
                let ready = pending
                pending = ""
                if try !deliver(ready) { reason = .callback; break }
            }
        }
        if reason != .stopString && reason != .callback && !pending.isEmpty {
            _ = try deliver(pending)
        }
        return GenerationResult(tokens: out, text: text, reason: reason)
    }
}

extension Model {
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
