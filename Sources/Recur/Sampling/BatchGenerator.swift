/// Many generations at once with continuous batching: a fixed number of slots, each a stream (a state and
/// a sampler) working on one prompt; the slots that are still generating are stepped together
/// (`Model.stepBatch`), and a slot whose stream has finished takes the next prompt, until every prompt
/// is done.

/// What the receiver of a batched generation's pieces asks for next.
public enum BatchReply: Sendable {
    /// Go on.
    case proceed
    /// End this stream (as `onPiece` returning false does for `generate`); its slot takes the next prompt.
    case stopStream
    /// End the whole generation: no stream is stepped again and the prompts not yet started are not run.
    case stopAll
}

/// One prompt of a batched generation.
public struct BatchPrompt: Sendable {
    public var prompt: String
    public var maxTokens: Int
    public var sampler: SamplerParams
    public init(prompt: String, maxTokens: Int, sampler: SamplerParams) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampler = sampler
    }
}

extension Model {
    /// Generates for every prompt of `prompts`, `slots` streams at a time, handing each piece to `onPiece`
    /// with the prompt's index as soon as it is sampled. Each prompt's text, tokens and stop reason are
    /// those of `generate(prompt:maxTokens:sampler:stop:)` with a fresh state and a sampler of the same
    /// parameters: the batched step is bit for bit the single step, and each stream has its own sampler.
    /// A stream ends at its max tokens, at EOS, at a stop string, or when `onPiece` says so; its slot
    /// then takes the next prompt (continuous batching). Pieces of one step are delivered in slot order.
    ///
    /// Every prompt is encoded and every parameter checked before anything runs (errors name the prompt:
    /// "prompt 3: ..."). A prompt that is empty needs a model with a BOS token. Returns one result per
    /// prompt, in order; prompts not started because of `.stopAll` give empty results with reason
    /// `.callback`.
    public func generateBatch(_ prompts: [BatchPrompt], slots: Int, stop: [String] = [],
                              unknown: Vocabulary.UnknownPolicy = .error,
                              onPiece: (Int, String) throws -> BatchReply) throws -> [GenerationResult] {
        try requireGenerator()
        if let why = stepRefusals.tokens { throw RecurError(.unsupported, why) }
        guard slots >= 1 else { throw RecurError(.invalidArgument, "slots must be at least 1 (got \(slots))") }
        var inputs: [[Int]] = []
        var samplers: [Sampler] = []
        inputs.reserveCapacity(prompts.count)
        samplers.reserveCapacity(prompts.count)
        for (k, p) in prompts.enumerated() {
            try inStream(k, what: "prompt") {
                guard p.maxTokens >= 0 else { throw RecurError(.invalidArgument, "max tokens must be ≥ 0 (got \(p.maxTokens))") }
                var ids = try encode(p.prompt, unknown: unknown)
                if let bos = vocabulary.bos { ids.insert(bos, at: 0) }
                guard !ids.isEmpty else {
                    throw RecurError(.invalidArgument, "the prompt is empty and the model has no BOS token to start from")
                }
                inputs.append(ids)
                samplers.append(try Sampler(p.sampler))
            }
        }

        struct Stream {
            let index: Int
            var text: TextStream
            var tokens: [Int] = []
        }
        var results = [GenerationResult](repeating: GenerationResult(tokens: [], text: "", reason: .callback),
                                         count: prompts.count)
        let states = (0..<min(slots, prompts.count)).map { _ in makeState() }
        var streams = [Stream?](repeating: nil, count: states.count)
        var next = 0
        var abort = false

        func finish(_ slot: Int, _ reason: StopReason) throws {
            guard var s = streams[slot] else { return }
            streams[slot] = nil
            if reason != .stopString && reason != .callback {
                let rest = s.text.flush()
                if !rest.isEmpty, try onPiece(s.index, rest) == .stopAll { abort = true }
            }
            results[s.index] = GenerationResult(tokens: s.tokens, text: s.text.text, reason: reason)
        }
        /// Gives the slot the next prompt that has tokens to generate.
        func refill(_ slot: Int) throws {
            while !abort && streams[slot] == nil && next < prompts.count {
                let k = next
                next += 1
                if prompts[k].maxTokens == 0 {
                    results[k] = GenerationResult(tokens: [], text: "", reason: .maxTokens)
                    continue
                }
                states[slot].reset()
                try states[slot].prefill(inputs[k])
                streams[slot] = Stream(index: k, text: TextStream(stop: stop, vocabulary: vocabulary))
            }
        }

        for slot in states.indices { try refill(slot) }
        var stepStates: [State] = [], stepTokens: [Int] = [], stepSlots: [Int] = []
        while !abort && streams.contains(where: { $0 != nil }) {
            stepStates.removeAll(keepingCapacity: true)
            stepTokens.removeAll(keepingCapacity: true)
            stepSlots.removeAll(keepingCapacity: true)
            for slot in states.indices {
                guard let s = streams[slot] else { continue }
                let st = states[slot]
                let tok = try inStream(s.index, what: "prompt") {
                    try samplers[s.index].sample(UnsafeBufferPointer(start: st.output, count: outputSize),
                                                 probabilities: outputIsProbability)
                }
                if tok == vocabulary.eos {
                    try finish(slot, .endOfSequence)
                    continue
                }
                streams[slot]!.tokens.append(tok)
                stepStates.append(st)
                stepTokens.append(tok)
                stepSlots.append(slot)
            }
            // Every stream has consumed every token it delivers: step before handing out the pieces.
            if !stepStates.isEmpty { try stepBatch(states: stepStates, tokens: stepTokens) }
            for (slot, tok) in zip(stepSlots, stepTokens) {
                guard !abort, var s = streams[slot] else { continue }
                let (ready, stopped) = s.text.push(tok)
                streams[slot] = s
                var reply = BatchReply.proceed
                if !ready.isEmpty { reply = try onPiece(s.index, ready) }
                switch reply {
                case .stopAll: abort = true; try finish(slot, .callback)
                case .stopStream: try finish(slot, .callback)
                case .proceed:
                    if stopped { try finish(slot, .stopString) }
                    else if s.tokens.count >= prompts[s.index].maxTokens { try finish(slot, .maxTokens) }
                }
            }
            for slot in states.indices where streams[slot] == nil { try refill(slot) }
        }
        // Streams cut short by .stopAll keep what they generated.
        for slot in states.indices {
            if let s = streams[slot] { results[s.index] = GenerationResult(tokens: s.tokens, text: s.text.text, reason: .callback) }
        }
        return results
    }
}
