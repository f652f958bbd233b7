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
        var width = emb.table.cols
        var x = [Float](repeating: 0, count: T * width)
        x.withUnsafeMutableBufferPointer { xp in
            for t in 0..<T { emb.lookup(tokens[t], into: xp.baseAddress! + t * width) }
        }
        let state = makeState()
        let mask = [Bool](repeating: true, count: T)
        for (i, layer) in enc.recurrent.enumerated() {
            var h: [Float] = [], c: [Float] = []
            let H = layer.spec.units
            let f = runDirection(layer.forward, x, T: T, mask: mask, reverse: false, finalH: &h, finalC: &c)
            if let back = layer.backward {
                // A bidirectional (concat) encoder layer: outputs [f_t; b_t]; the decoder layer, twice as
                // wide, starts from [f_T; b_1] (and [c_fwd; c_bwd]).
                var hb: [Float] = [], cb: [Float] = []
                let b = runDirection(back, x, T: T, mask: mask, reverse: true, finalH: &hb, finalC: &cb)
                x = [Float](repeating: 0, count: T * 2 * H)
                for t in 0..<T {
                    for j in 0..<H { x[t * 2 * H + j] = f[t * H + j]; x[t * 2 * H + H + j] = b[t * H + j] }
                }
                state.setLayer(i, h: h + hb, c: c + cb)
                width = 2 * H
            } else {
                x = f
                state.setLayer(i, h: h, c: c)
                width = H
            }
        }
        if let att = attention, let a = state.attention {
            let pad = src.pad
            guard tokens.contains(where: { $0 != pad }) else {
                throw RecurError(.invalidArgument, "the source holds only padding")
            }
            guard width == att.spec.memorySize else {   // Architecture.validate has checked it
                throw RecurError(.model, "the encoder outputs \(width) floats per step; the attention layer reads \(att.spec.memorySize)")
            }
            a.start(AttentionMemory(values: x, steps: T, attention: att, tokens: tokens, pad: pad))
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
        /// With `attention: true`: the source tokens the decoder attended over, in the encoder's reading
        /// order (`State.attentionSource`), else empty.
        public var source: [Int] = []
        /// With `attention: true`: for each emitted token (EOS not included), the attention weights of the
        /// decoder step that produced it over `source` (rows sum to 1; PAD positions are 0), else empty.
        public var attention: [[Float]] = []
    }

    func checkAttention(_ wanted: Bool) throws {
        if wanted && attention == nil {
            throw RecurError(.unsupported, "this model has no attention layer (its decoder starts from the encoder's final state only)")
        }
    }

    func checkSeq2Seq(_ maxLength: Int) throws -> (bos: Int, eos: Int) {
        guard architecture.task == .seq2seq, let bos = vocabulary.bos, let eos = vocabulary.eos else {
            throw RecurError(.unsupported, "translation needs a seq2seq model (this one is '\(architecture.task)')")
        }
        guard maxLength >= 1 else { throw RecurError(.invalidArgument, "the maximum length must be ≥ 1 (got \(maxLength))") }
        return (bos, eos)
    }

    /// Greedy decoding: the most likely token at every step (lowest id among ties), until EOS or `maxLength`.
    /// With `attention`, the result holds the attention weights of every step (`Translation.attention`);
    /// a model without attention refuses it (`unsupported`).
    public func translateGreedy(source: [Int], maxLength: Int = 100, padding: PaddingMode = .trained,
                                attention wanted: Bool = false) throws -> Translation {
        let (bos, eos) = try checkSeq2Seq(maxLength)
        try checkAttention(wanted)
        let st = try encode(source: source, padding: padding)
        try st.step(bos)
        var toks: [Int] = []
        var rows: [[Float]] = []
        var lp = 0.0
        while toks.count < maxLength {
            let p = try logProbabilities(UnsafeBufferPointer(start: st.output, count: outputSize))
            var best = 0
            for i in 1..<p.count where p[i] > p[best] { best = i }
            lp += p[best]
            if best == eos { break }
            toks.append(best)
            if wanted { rows.append(st.attentionWeights!) }
            try st.step(best)
        }
        let score = lengthNormalizedScore(lp, tokens: toks.count, eos: toks.count < maxLength, penalty: 1)
        return Translation(tokens: toks, text: try vocabulary.decode(toks), logProbability: lp, score: score,
                           source: wanted ? st.attentionSource! : [], attention: rows)
    }

    /// Beam search of width `beam`. Each step expands every live hypothesis by its `beam` most likely next
    /// tokens and keeps the `beam` best by total log-probability (ties: earlier hypothesis, then lower id).
    /// A hypothesis that emits EOS is finished; the search stops when `beam` hypotheses are finished or the
    /// longest reaches `maxLength`. The result is the finished hypothesis with the best
    /// log-probability / length^lengthPenalty (length counts EOS). With beam 1 this is greedy decoding.
    /// With `attention`, the result holds the attention weights of the steps that produced its tokens.
    public func translate(source: [Int], beam: Int = 4, maxLength: Int = 100, lengthPenalty: Double = 1,
                          padding: PaddingMode = .trained, attention wanted: Bool = false) throws -> Translation {
        let (bos, eos) = try checkSeq2Seq(maxLength)
        guard beam >= 1, beam <= 256 else { throw RecurError(.invalidArgument, "the beam width must be 1...256 (got \(beam))") }
        try checkAttention(wanted)
        let first = try encode(source: source, padding: padding)
        try first.step(bos)
        let attended = wanted ? first.attentionSource! : []
        struct Hyp { var state: State; var tokens: [Int]; var lp: Double; var rows: [[Float]] }
        var live = [Hyp(state: first, tokens: [], lp: 0, rows: [])]
        var finished: [Translation] = []
        func finish(_ toks: [Int], _ lp: Double, eosEmitted: Bool, _ rows: [[Float]]) throws {
            finished.append(Translation(tokens: toks, text: try vocabulary.decode(toks), logProbability: lp,
                                        score: lengthNormalizedScore(lp, tokens: toks.count, eos: eosEmitted, penalty: lengthPenalty),
                                        source: attended, attention: rows))
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
                    try finish(parent.tokens, c.lp, eosEmitted: true, parent.rows)
                    continue
                }
                let toks = parent.tokens + [c.tok]
                let rows = wanted ? parent.rows + [parent.state.attentionWeights!] : []
                if toks.count >= maxLength {
                    try finish(toks, c.lp, eosEmitted: false, rows)
                    continue
                }
                let s = parent.state.fork()
                try s.step(c.tok)
                next.append(Hyp(state: s, tokens: toks, lp: c.lp, rows: rows))
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
                          unknown: Vocabulary.UnknownPolicy = .error, padding: PaddingMode = .trained,
                          attention wanted: Bool = false) throws -> Translation {
        guard let src = sourceVocabulary else {
            throw RecurError(.unsupported, "translation needs a seq2seq model (this one is '\(architecture.task)')")
        }
        var ids = try src.encode(text, unknown: unknown)
        guard !ids.isEmpty else { throw RecurError(.invalidArgument, "the text has no tokens") }
        if let e = src.eos { ids.append(e) }
        return beam == 1 && lengthPenalty == 1
            ? try translateGreedy(source: ids, maxLength: maxLength, padding: padding, attention: wanted)
            : try translate(source: ids, beam: beam, maxLength: maxLength, lengthPenalty: lengthPenalty, padding: padding,
                            attention: wanted)
    }
}
