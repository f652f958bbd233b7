#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Settings of a beam-search generation.
public struct BeamParams: Sendable, Equatable {
    /// Hypotheses kept at each step, 1...256; 1 is greedy decoding.
    public var beam: Int
    /// Continuations returned, 1...beam, best first.
    public var best: Int
    /// Continuations are ranked by log-probability / length^lengthPenalty (finite, ≥ 0; 0 ranks by the
    /// log-probability alone). The length counts EOS when it was emitted.
    public var lengthPenalty: Double

    public init(beam: Int = 4, best: Int = 1, lengthPenalty: Double = 1) {
        self.beam = beam
        self.best = best
        self.lengthPenalty = lengthPenalty
    }

    /// Throws `.invalidArgument` naming the first setting out of range.
    public func validate() throws {
        guard (1...256).contains(beam) else { throw RecurError(.invalidArgument, "the beam width must be 1...256 (got \(beam))") }
        guard (1...beam).contains(best) else {
            throw RecurError(.invalidArgument, "the number of continuations must be 1...\(beam), the beam width (got \(best))")
        }
        guard lengthPenalty.isFinite && lengthPenalty >= 0 else {
            throw RecurError(.invalidArgument, "the length penalty must be a finite number ≥ 0 (got \(lengthPenalty))")
        }
    }
}

/// The figure beam search ranks finished hypotheses by (generation and translation alike): log-probability
/// / length^penalty, the length counting EOS when it was emitted (at least 1). Penalty 0 is the
/// log-probability itself.
func lengthNormalizedScore(_ logProbability: Double, tokens: Int, eos: Bool, penalty: Double) -> Double {
    logProbability / pow(Double(max(tokens + (eos ? 1 : 0), 1)), penalty)
}

/// One continuation found by beam search.
public struct BeamContinuation: Sendable, Equatable {
    /// The generated tokens (EOS not included).
    public var tokens: [Int]
    /// Their text, as `generate` delivers it.
    public var text: String
    /// Sum of the natural-log probabilities of the tokens (and of EOS when it was emitted).
    public var logProbability: Double
    /// logProbability / length^lengthPenalty, the figure continuations are ranked by.
    public var score: Double
    /// `.endOfSequence`, `.maxTokens`, or `.callback` for the prefix delivered before the callback stopped.
    public var reason: StopReason
}

extension Model {
    /// Continues `prompt` by beam search instead of sampling.
    ///
    /// The prompt is fed as `generate` feeds it (after BOS, if the model has one; an empty prompt continues
    /// `state`). Then each step extends every live hypothesis by its `beam` most likely next tokens and keeps
    /// the `beam` best extensions by total log-probability (ties: the earlier hypothesis, then the lower
    /// id). A hypothesis that emits EOS, or reaches `maxTokens` tokens, is finished; the search ends when
    /// `beam` hypotheses are finished or none is live. The `best` finished ones with the highest score are
    /// returned, best first (ties: the one finished first). With beam 1 this is greedy decoding: the text
    /// of `generate` at temperature 0.
    ///
    /// The live hypotheses are stepped together (`stepBatch`), so each step reads the weights once.
    /// `onPiece` receives the best continuation's text as it becomes certain: the tokens that every
    /// hypothesis still in the running shares are delivered as soon as they are shared, the rest when the
    /// search ends. When `onPiece` returns false the search stops, and the result is the delivered prefix
    /// alone (reason `.callback`). Afterwards `state` holds the prompt and the first continuation, as if
    /// its tokens had been stepped one by one (EOS is not fed).
    @discardableResult
    public func generateBeam(prompt: String, state: State? = nil, maxTokens: Int, params: BeamParams = BeamParams(),
                             unknown: Vocabulary.UnknownPolicy = .error,
                             onPiece: (String) throws -> Bool = { _ in true }) throws -> [BeamContinuation] {
        guard maxTokens >= 0 else { throw RecurError(.invalidArgument, "max tokens must be ≥ 0 (got \(maxTokens))") }
        try params.validate()
        let st = try feedPrompt(prompt, state: state, unknown: unknown)
        var search = BeamSearch(model: self, root: st, params: params, maxTokens: maxTokens)
        var stream = TextStream(stop: [], vocabulary: vocabulary)
        var delivered = 0
        var stopped = false
        func deliver(_ tokens: ArraySlice<Int>) throws {
            for tok in tokens {
                delivered += 1
                let (ready, _) = stream.push(tok)
                if !ready.isEmpty, try !onPiece(ready) { stopped = true; return }
            }
        }
        while try search.advance() {
            let settled = search.settledPrefix()
            if settled.count > delivered { try deliver(settled[delivered...]) }
            if stopped { break }
        }
        var results: [BeamContinuation] = []
        if !stopped {
            results = try search.ranked().map { continuation($0.tokens, $0.lp, score: $0.score,
                                                             reason: $0.eos ? .endOfSequence : .maxTokens) }
            let first = results[0].tokens
            if first.count > delivered { try deliver(first[delivered...]) }
        }
        if stopped {
            // The callback ended the search: the result is what it was given.
            let toks = Array((results.first?.tokens ?? search.settledPrefix()).prefix(delivered))
            let lp = try replay(toks, into: st)
            results = [continuation(toks, lp, score: lengthNormalizedScore(lp, tokens: toks.count, eos: false, penalty: params.lengthPenalty),
                                    reason: .callback)]
        } else {
            let rest = stream.flush()
            if !rest.isEmpty { _ = try onPiece(rest) }
            if state != nil { _ = try replay(results[0].tokens, into: st) }
        }
        return results
    }

    /// Steps `tokens` into `state` one by one; the sum of their log-probabilities.
    private func replay(_ tokens: [Int], into state: State) throws -> Double {
        var lp = 0.0
        for tok in tokens {
            lp += try logProbabilities(UnsafeBufferPointer(start: state.output, count: outputSize))[tok]
            try state.step(tok)
        }
        return lp
    }

    private func continuation(_ tokens: [Int], _ lp: Double, score: Double, reason: StopReason) -> BeamContinuation {
        var stream = TextStream(stop: [], vocabulary: vocabulary)
        for tok in tokens { _ = stream.push(tok) }
        _ = stream.flush()
        return BeamContinuation(tokens: tokens, text: stream.text, logProbability: lp, score: score, reason: reason)
    }
}

/// The hypotheses of one beam search and the states they are stepped in: `beam` states for the live
/// hypotheses and `beam` for their extensions, swapped after every step, so a step copies at most `beam`
/// states and allocates none.
struct BeamSearch {
    struct Hypothesis { var slot: Int; var tokens: [Int]; var lp: Double }
    struct Finished { var tokens: [Int]; var lp: Double; var eos: Bool; var score: Double }

    let model: Model
    let params: BeamParams
    let maxTokens: Int
    let eos: Int?
    private var live: [Hypothesis]
    private var finished: [Finished] = []
    private var current: [State]
    private var next: [State]

    init(model: Model, root: State, params: BeamParams, maxTokens: Int) {
        self.model = model
        self.params = params
        self.maxTokens = maxTokens
        eos = model.vocabulary.eos
        current = (0..<params.beam).map { _ in model.makeState() }
        next = (0..<params.beam).map { _ in model.makeState() }
        try! current[0].copy(from: root)      // same model: cannot fail
        live = [Hypothesis(slot: 0, tokens: [], lp: 0)]
        if maxTokens == 0 { finish([], 0, eos: false); live = [] }
    }

    private mutating func finish(_ tokens: [Int], _ lp: Double, eos: Bool) {
        finished.append(Finished(tokens: tokens, lp: lp, eos: eos,
                                 score: lengthNormalizedScore(lp, tokens: tokens.count, eos: eos, penalty: params.lengthPenalty)))
    }

    /// One step of the search; false when it has ended (nothing was done).
    mutating func advance() throws -> Bool {
        let beam = params.beam
        guard !live.isEmpty && finished.count < beam else { return false }
        let V = model.outputSize
        var cands: [(hyp: Int, tok: Int, lp: Double)] = []
        cands.reserveCapacity(live.count * beam)
        for (hi, h) in live.enumerated() {
            let p = try model.logProbabilities(UnsafeBufferPointer(start: current[h.slot].output, count: V))
            for tok in topIndices(p, beam) { cands.append((hi, tok, h.lp + p[tok])) }
        }
        cands.sort { $0.lp != $1.lp ? $0.lp > $1.lp : ($0.hyp != $1.hyp ? $0.hyp < $1.hyp : $0.tok < $1.tok) }
        var extended: [Hypothesis] = []
        var tokens: [Int] = []
        for c in cands {
            if extended.count + finished.count >= beam { break }
            let parent = live[c.hyp]
            if c.tok == eos { finish(parent.tokens, c.lp, eos: true); continue }
            let toks = parent.tokens + [c.tok]
            if toks.count >= maxTokens { finish(toks, c.lp, eos: false); continue }
            let slot = extended.count
            try next[slot].copy(from: current[parent.slot])
            extended.append(Hypothesis(slot: slot, tokens: toks, lp: c.lp))
            tokens.append(c.tok)
        }
        if !extended.isEmpty { try model.stepBatch(states: Array(next[0..<extended.count]), tokens: tokens) }
        swap(&current, &next)
        live = extended
        return true
    }

    /// The tokens every live and finished hypothesis starts with: the start of any result.
    func settledPrefix() -> [Int] {
        let all = live.map(\.tokens) + finished.map(\.tokens)
        guard var prefix = all.first else { return [] }
        for t in all.dropFirst() {
            var k = 0
            while k < prefix.count && k < t.count && prefix[k] == t[k] { k += 1 }
            prefix.removeLast(prefix.count - k)
        }
        return prefix
    }

    /// The `best` finished hypotheses by score, best first (ties: the one finished first).
    func ranked() throws -> [Finished] {
        guard !finished.isEmpty else { throw RecurError(.numerical, "beam search produced no hypothesis") }
        let order = finished.indices.sorted { a, b in
            finished[a].score != finished[b].score ? finished[a].score > finished[b].score : a < b
        }
        return order.prefix(params.best).map { finished[$0] }
    }
}

/// The indices of the k largest values of p, largest first (ties: the lower index first).
func topIndices(_ p: [Double], _ k: Int) -> [Int] {
    var top: [Int] = []
    top.reserveCapacity(k + 1)
    for i in p.indices {
        if top.count == k, let last = top.last, !(p[i] > p[last]) { continue }
        var j = top.count
        while j > 0 && p[i] > p[top[j - 1]] { j -= 1 }
        top.insert(i, at: j)
        if top.count > k { top.removeLast() }
    }
    return top
}
