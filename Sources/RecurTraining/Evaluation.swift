#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Recur

/// How well a generator predicts a text, measured through the inference runtime (`State.step`): each
/// character is predicted from the ones before it, the first from the state after the first character.
///
/// With a reference model (for instance the f32 model a quantized one was made from), it also reports
/// how far the model's next-token distributions are from the reference's: the mean KL divergence
/// KL(reference ‖ model) in nats and how often both rank the same token first.
public struct TextEvaluation: Sendable {
    /// Number of predictions (tokens − 1).
    public var predictions: Int
    /// Mean negative log-likelihood, nats per token.
    public var loss: Double
    public var bitsPerToken: Double { loss / M_LN2 }
    public var perplexity: Double { exp(loss) }
    /// The reference model's own loss on the same text.
    public var referenceLoss: Double?
    /// Mean KL(reference ‖ model) over the predictions, nats.
    public var meanKL: Double?
    /// Fraction of predictions where the model's most likely token is the reference's.
    public var top1Agreement: Double?

    /// Steps `model` (and `reference`, if any) over `tokens` from a zero state.
    public static func evaluate(_ model: Model, tokens: [Int], reference: Model? = nil) throws -> TextEvaluation {
        guard tokens.count >= 2 else {
            throw RecurError(.invalidArgument, "the text must hold at least 2 tokens to measure a prediction (got \(tokens.count))")
        }
        if let r = reference {
            guard r.vocabulary.pieces == model.vocabulary.pieces, r.outputSize == model.outputSize else {
                throw RecurError(.mismatch, "the reference model has a different vocabulary; they cannot be compared")
            }
        }
        let state = model.makeState()
        let refState = reference?.makeState()
        let V = model.outputSize
        var lp = [Double](repeating: 0, count: V), lq = [Double](repeating: 0, count: V)
        var nll = 0.0, refNLL = 0.0, kl = 0.0
        var agree = 0
        for i in 0..<(tokens.count - 1) {
            let out = try state.step(tokens[i])
            try logSoftmax(out, probabilities: model.outputIsProbability, into: &lp)
            nll -= lp[tokens[i + 1]]
            if let rs = refState, let r = reference {
                let ro = try rs.step(tokens[i])
                try logSoftmax(ro, probabilities: r.outputIsProbability, into: &lq)
                refNLL -= lq[tokens[i + 1]]
                var d = 0.0
                for k in 0..<V where lq[k] > -.infinity { d += exp(lq[k]) * (lq[k] - lp[k]) }
                kl += d
                if argmax(lp) == argmax(lq) { agree += 1 }
            }
        }
        let n = Double(tokens.count - 1)
        return TextEvaluation(predictions: tokens.count - 1, loss: nll / n,
                              referenceLoss: reference == nil ? nil : refNLL / n,
                              meanKL: reference == nil ? nil : kl / n,
                              top1Agreement: reference == nil ? nil : Double(agree) / n)
    }

    /// log softmax of logits (or log of probabilities), in Double.
    static func logSoftmax(_ x: UnsafeBufferPointer<Float>, probabilities: Bool, into out: inout [Double]) throws {
        for v in x where v.isNaN { throw RecurError(.numerical, "the model produced NaN") }
        if probabilities {
            for k in 0..<x.count { out[k] = log(Double(x[k])) }
            return
        }
        var m = -Double.infinity
        for v in x { m = max(m, Double(v)) }
        var s = 0.0
        for v in x { s += exp(Double(v) - m) }
        let lse = m + log(s)
        for k in 0..<x.count { out[k] = Double(x[k]) - lse }
    }

    static func argmax(_ x: [Double]) -> Int {
        var best = 0
        for k in 1..<x.count where x[k] > x[best] { best = k }
        return best
    }
}
