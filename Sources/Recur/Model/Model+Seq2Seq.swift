#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Encoder-decoder inference. The encoder (embedding and recurrent layers) reads the source; the final h
/// (and c) of its layer i starts decoder layer i. The decoder is stepped like a generator: it starts from
/// BOS and emits target tokens until EOS or a maximum length.
extension Model {
    /// A decoder state whose recurrent vectors are the encoder's final states for `source`.
    /// PAD tokens in the source are skipped (unless the source vocabulary is unmasked); a model with
    /// `encoder.reverse_source` reads the tokens last first, a final EOS staying last
    /// (`Architecture.encoderInput`); a source padding length cuts and pads them (`encoderTokens`).
    public func encode(source: [Int], padding: PaddingMode = .trained) throws -> State {
        guard let enc = encoderStack, let src = sourceVocabulary, let emb = enc.embedding else {
            throw RecurError(.unsupported, "this model has no encoder (model.task is '\(architecture.task)', not 'seq2seq')")
        }
        guard !source.isEmpty else { throw RecurError(.invalidArgument, "the source sequence is empty") }
        for t in source where t < 0 || t >= src.count {
            throw RecurError(.outOfRange, "source token id \(t) is outside the source vocabulary (0..<\(src.count))")
        }
        let tokens = encoderTokens(source, src, padding: padding)
        guard !tokens.isEmpty else { throw RecurError(.invalidArgument, "the source holds only padding") }
        let T = tokens.count
        let width = emb.table.cols
        var x = [Float](repeating: 0, count: T * width)
        x.withUnsafeMutableBufferPointer { xp in
            for t in 0..<T { emb.lookup(tokens[t], into: xp.baseAddress! + t * width) }
        }
        let state = makeState()
        let mask = [Bool](repeating: true, count: T)
        for (i, layer) in enc.recurrent.enumerated() {
            var h: [Float] = [], c: [Float] = []
            x = runDirection(layer.forward, x, T: T, mask: mask, reverse: false, finalH: &h, finalC: &c)
            state.setLayer(i, h: h, c: c)
        }
        return state
    }

    /// log-probabilities of a decoder's or generator's output (log-softmax of logits, or log of a softmax head).
    func logProbabilities(_ out: UnsafeBufferPointer<Float>) throws -> [Double] {
        // As the sampler: −∞ is a token that cannot follow; NaN, +∞ or nothing but −∞ is an error.
        for v in out where v.isNaN || v == .infinity || outputIsProbability && !v.isFinite {
            throw RecurError(.numerical, "the model's output holds a non-finite value (\(v))")
        }
        if outputIsProbability { return out.map { log(max(Double($0), 1e-45)) } }
        let m = Double(out.max()!)
        guard m > -.infinity else { throw RecurError(.numerical, "the model's output is −∞ for every token") }
        let lse = m + log(out.reduce(0.0) { $0 + exp(Double($1) - m) })
        return out.map { Double($0) - lse }
    }

    public struct Translation: Sendable {
        public var tokens: [Int]
        public var text: String
        /// Sum of the log-probabilities of the emitted tokens (EOS included when it was emitted).
        public var logProbability: Double
        /// The score hypotheses are ranked by: logProbability / length^lengthPenalty.
        public var score: Double
    }

    func checkSeq2Seq(_ maxLength: Int) throws -> (bos: Int, eos: Int) {
        guard architecture.task == .seq2seq, let bos = vocabulary.bos, let eos = vocabulary.eos else {
            throw RecurError(.unsupported, "translation needs a seq2seq model (this one is '\(architecture.task)')")
        }
        guard maxLength >= 1 else { throw RecurError(.invalidArgument, "the maximum length must be ≥ 1 (got \(maxLength))") }
        return (bos, eos)
    }

    /// Greedy decoding: the most likely token at every step (lowest id among ties), until EOS or `maxLength`.
    public func translateGreedy(source: [Int], maxLength: Int = 100, padding: PaddingMode = .trained) throws -> Translation {
        let (bos, eos) = try checkSeq2Seq(maxLength)
        let st = try encode(source: source, padding: padding)
        try st.step(bos)
        var toks: [Int] = []
        var lp = 0.0
        while toks.count < maxLength {
            let p = try logProbabilities(UnsafeBufferPointer(start: st.output, count: outputSize))
            var best = 0
            for i in 1..<p.count where p[i] > p[best] { best = i }
            lp += p[best]
            if best == eos { break }
            toks.append(best)
            try st.step(best)
        }
        let len = Double(max(toks.count + (toks.count < maxLength ? 1 : 0), 1))
        return Translation(tokens: toks, text: try vocabulary.decode(toks), logProbability: lp, score: lp / len)
    }

    /// Beam search of width `beam`. Each step expands every live hypothesis by its `beam` most likely next
    /// tokens and keeps the `beam` best by total log-probability (ties: earlier hypothesis, then lower id).
    /// A hypothesis that emits EOS is finished; the search stops when `beam` hypotheses are finished or the
    /// longest reaches `maxLength`. The result is the finished hypothesis with the best
    /// log-probability / length^lengthPenalty (length counts EOS). With beam 1 this is greedy decoding.
    public func translate(source: [Int], beam: Int = 4, maxLength: Int = 100, lengthPenalty: Double = 1,
                          padding: PaddingMode = .trained) throws -> Translation {
        let (bos, eos) = try checkSeq2Seq(maxLength)
        guard beam >= 1, beam <= 256 else { throw RecurError(.invalidArgument, "the beam width must be 1...256 (got \(beam))") }
        let first = try encode(source: source, padding: padding)
        try first.step(bos)
        struct Hyp { var state: State; var tokens: [Int]; var lp: Double }
        var live = [Hyp(state: first, tokens: [], lp: 0)]
        var finished: [Translation] = []
        func finish(_ toks: [Int], _ lp: Double, eosEmitted: Bool) throws {
            let len = Double(max(toks.count + (eosEmitted ? 1 : 0), 1))
            finished.append(Translation(tokens: toks, text: try vocabulary.decode(toks), logProbability: lp,
                                        score: lp / pow(len, lengthPenalty)))
        }
        while !live.isEmpty && finished.count < beam {
            var cands: [(hyp: Int, tok: Int, lp: Double)] = []
            for (hi, h) in live.enumerated() {
                let p = try logProbabilities(UnsafeBufferPointer(start: h.state.output, count: outputSize))
                let order = p.indices.sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
                for tok in order.prefix(beam) { cands.append((hi, tok, h.lp + p[tok])) }
            }
            cands.sort { $0.lp != $1.lp ? $0.lp > $1.lp : ($0.hyp != $1.hyp ? $0.hyp < $1.hyp : $0.tok < $1.tok) }
            var next: [Hyp] = []
            for c in cands {
                if next.count + finished.count >= beam { break }
                let parent = live[c.hyp]
                if c.tok == eos {
                    try finish(parent.tokens, c.lp, eosEmitted: true)
                    continue
                }
                let toks = parent.tokens + [c.tok]
                if toks.count >= maxLength {
                    try finish(toks, c.lp, eosEmitted: false)
                    continue
                }
                let s = parent.state.fork()
                try s.step(c.tok)
                next.append(Hyp(state: s, tokens: toks, lp: c.lp))
            }
            live = next
        }
        guard let best = finished.enumerated().max(by: { a, b in
            a.element.score != b.element.score ? a.element.score < b.element.score : a.offset > b.offset
        })?.element else {
            throw RecurError(.numerical, "beam search produced no hypothesis")
        }
        return best
    }

    /// Translates a source text (encoded with the source vocabulary; EOS appended when the source
    /// vocabulary has one; cut and padded when the source vocabulary records a padding length and
    /// `padding` is `.trained`).
    public func translate(_ text: String, beam: Int = 4, maxLength: Int = 100, lengthPenalty: Double = 1,
                          unknown: Vocabulary.UnknownPolicy = .error, padding: PaddingMode = .trained) throws -> Translation {
        guard let src = sourceVocabulary else {
            throw RecurError(.unsupported, "translation needs a seq2seq model (this one is '\(architecture.task)')")
        }
        var ids = try src.encode(text, unknown: unknown)
        guard !ids.isEmpty else { throw RecurError(.invalidArgument, "the text has no tokens") }
        if let e = src.eos { ids.append(e) }
        return beam == 1 && lengthPenalty == 1
            ? try translateGreedy(source: ids, maxLength: maxLength, padding: padding)
            : try translate(source: ids, beam: beam, maxLength: maxLength, lengthPenalty: lengthPenalty, padding: padding)
    }
}
