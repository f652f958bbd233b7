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

/// Accuracy, per-class precision / recall / F1 and the confusion matrix of a classifier or a tagger
/// (one entry per sentence, or per token), shared by `recur eval`, `recur train --task` and the frame
/// classifiers.
///
/// Conventions: `confusion[t][p]` counts the examples of true class t predicted as p (rows: true
/// class, columns: predicted). A ratio with a zero denominator is 0, never NaN: the precision of a class
/// never predicted, the recall of a class absent from the data, and F1 when precision + recall = 0
/// (scikit-learn's `zero_division=0`). The macro average is the unweighted mean over the classes that
/// occur in the data or in the predictions (scikit-learn's default set of labels; a class of the model
/// that is neither is left out); the weighted average weights each class by its support (its count in
/// the data).
public struct ClassificationMetrics: Sendable, Equatable {
    public var labels: [String]
    public var confusion: [[Int]]

    public init(labels: [String], confusion: [[Int]]) {
        precondition(confusion.count == labels.count && confusion.allSatisfy { $0.count == labels.count }, "confusion must be K × K")
        self.labels = labels
        self.confusion = confusion
    }

    /// From parallel lists of true and predicted class indices (each in 0..<labels.count).
    public init(labels: [String], truth: [Int], predicted: [Int]) {
        precondition(truth.count == predicted.count, "truth and predictions differ in length")
        var c = [[Int]](repeating: [Int](repeating: 0, count: labels.count), count: labels.count)
        for (t, p) in zip(truth, predicted) { c[t][p] += 1 }
        self.init(labels: labels, confusion: c)
    }

    public var count: Int { confusion.reduce(0) { $0 + $1.reduce(0, +) } }
    public var correct: Int { confusion.indices.reduce(0) { $0 + confusion[$1][$1] } }
    public var accuracy: Double { ratio(correct, count) }
    /// Examples of each true class.
    public var support: [Int] { confusion.map { $0.reduce(0, +) } }
    /// Predictions of each class.
    public var predictedCounts: [Int] { labels.indices.map { p in confusion.reduce(0) { $0 + $1[p] } } }
    public var precision: [Double] { labels.indices.map { ratio(confusion[$0][$0], predictedCounts[$0]) } }
    public var recall: [Double] { labels.indices.map { ratio(confusion[$0][$0], support[$0]) } }
    public var f1: [Double] {
        zip(precision, recall).map { p, r in p + r > 0 ? 2 * p * r / (p + r) : 0 }
    }
    /// The classes the macro average runs over: those in the data or in the predictions.
    public var present: [Int] { labels.indices.filter { support[$0] > 0 || predictedCounts[$0] > 0 } }

    /// (precision, recall, F1), unweighted mean over `present`.
    public var macro: (precision: Double, recall: Double, f1: Double) {
        let ks = present, n = Double(max(ks.count, 1))
        let p = precision, r = recall, f = f1
        return (ks.reduce(0) { $0 + p[$1] } / n, ks.reduce(0) { $0 + r[$1] } / n, ks.reduce(0) { $0 + f[$1] } / n)
    }

    /// (precision, recall, F1), weighted by support.
    public var weighted: (precision: Double, recall: Double, f1: Double) {
        let s = support, total = Double(max(count, 1))
        func avg(_ xs: [Double]) -> Double { zip(xs, s).reduce(0) { $0 + $1.0 * Double($1.1) } / total }
        return (avg(precision), avg(recall), avg(f1))
    }

    /// The index of the largest value (the first of equal ones): the predicted class of a probability row.
    public static func argmax(_ p: [Float]) -> Int {
        var best = 0
        for k in p.indices where p[k] > p[best] { best = k }
        return best
    }

    /// A JSON-ready dictionary: accuracy, per-class figures, averages and the confusion matrix.
    public var dictionary: [String: Any] {
        let p = precision, r = recall, f = f1, s = support
        let m = macro, w = weighted
        return [
            "count": count, "correct": correct, "accuracy": accuracy, "labels": labels, "confusion": confusion,
            "per_class": labels.indices.map { ["label": labels[$0], "precision": p[$0], "recall": r[$0], "f1": f[$0], "support": s[$0]] as [String: Any] },
            "macro": ["precision": m.precision, "recall": m.recall, "f1": m.f1],
            "weighted": ["precision": w.precision, "recall": w.recall, "f1": w.f1],
        ]
    }

    /// The per-class table and the confusion matrix as text lines.
    public func report() -> [String] {
        let p = precision, r = recall, f = f1, s = support
        let lw = max(labels.map(\.count).max() ?? 0, "weighted avg".count)
        func padL(_ x: String, _ w: Int) -> String { String(repeating: " ", count: max(w - x.count, 0)) + x }
        func pct(_ x: Double) -> String {
            let v = Int((x * 10000).rounded()), f = v % 100
            return padL("\(v / 100).\(f < 10 ? "0" : "")\(f)", 9)
        }
        var out = ["\(padL("class", lw)) precision    recall        F1   support"]
        for k in labels.indices {
            out.append("\(padL(labels[k], lw)) \(pct(p[k])) \(pct(r[k])) \(pct(f[k])) \(padL(String(s[k]), 9))")
        }
        let m = macro, w = weighted
        out.append("\(padL("macro avg", lw)) \(pct(m.precision)) \(pct(m.recall)) \(pct(m.f1)) \(padL(String(count), 9))")
        out.append("\(padL("weighted avg", lw)) \(pct(w.precision)) \(pct(w.recall)) \(pct(w.f1)) \(padL(String(count), 9))")
        out.append("confusion (rows: true class, columns: predicted)")
        let cw = max(labels.map(\.count).max() ?? 0, confusion.flatMap { $0 }.map { String($0).count }.max() ?? 0, 3)
        out.append("  " + padL("", cw) + " " + labels.map { padL($0, cw) }.joined(separator: " "))
        for (i, row) in confusion.enumerated() {
            out.append("  " + padL(labels[i], cw) + " " + row.map { padL(String($0), cw) }.joined(separator: " "))
        }
        return out
    }

    private func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
}

/// BLEU (Papineni et al. 2002) on already split words, one reference per hypothesis.
///
/// Corpus BLEU-N: the clipped n-gram matches and the hypothesis n-gram counts, n = 1…N, summed over the
/// corpus; the geometric mean of their ratios times the brevity penalty exp(min(0, 1 − r/c)), r and c the
/// total reference and hypothesis lengths; no smoothing (0 when some order has no match).
///
/// Sentence BLEU-N is smoothed by Chen & Cherry (2014) method 1 as NLTK implements it
/// (`SmoothingFunction().method1`, ε = 0.1): each precision is m_n / max(1, t_n), an order with no
/// match counts ε / max(1, t_n) instead; 0 when no unigram matches (or the hypothesis is empty); the
/// brevity penalty is the sentence's own.
public enum BLEU {
    /// Clipped n-gram matches and hypothesis n-gram counts for n = 1…maxN.
    public static func counts(hypothesis h: [String], reference r: [String], maxN: Int) -> (matches: [Int], totals: [Int]) {
        var matches = [Int](repeating: 0, count: maxN), totals = [Int](repeating: 0, count: maxN)
        for n in 1...maxN where h.count >= n {
            var refCounts: [ArraySlice<String>: Int] = [:]
            if r.count >= n { for i in 0...(r.count - n) { refCounts[r[i..<(i + n)], default: 0] += 1 } }
            var hypCounts: [ArraySlice<String>: Int] = [:]
            for i in 0...(h.count - n) { hypCounts[h[i..<(i + n)], default: 0] += 1 }
            for (g, c) in hypCounts { matches[n - 1] += min(c, refCounts[g] ?? 0) }
            totals[n - 1] = h.count - n + 1
        }
        return (matches, totals)
    }

    static func brevityPenalty(reference r: Int, hypothesis c: Int) -> Double {
        c == 0 ? 0 : c >= r ? 1 : exp(1 - Double(r) / Double(c))
    }

    /// Corpus BLEU-maxN in [0, 1].
    public static func corpus(hypotheses: [[String]], references: [[String]], maxN: Int = 4) -> Double {
        var matches = [Int](repeating: 0, count: maxN), totals = [Int](repeating: 0, count: maxN)
        var hypLen = 0, refLen = 0
        for (h, r) in zip(hypotheses, references) {
            hypLen += h.count; refLen += r.count
            let c = counts(hypothesis: h, reference: r, maxN: maxN)
            for n in 0..<maxN { matches[n] += c.matches[n]; totals[n] += c.totals[n] }
        }
        guard hypLen > 0, matches.allSatisfy({ $0 > 0 }) else { return 0 }
        var logSum = 0.0
        for n in 0..<maxN { logSum += log(Double(matches[n]) / Double(totals[n])) }
        return brevityPenalty(reference: refLen, hypothesis: hypLen) * exp(logSum / Double(maxN))
    }

    /// Smoothed sentence BLEU-maxN in [0, 1] (Chen & Cherry method 1, ε = `epsilon`).
    public static func sentence(hypothesis h: [String], reference r: [String], maxN: Int = 4, epsilon: Double = 0.1) -> Double {
        let c = counts(hypothesis: h, reference: r, maxN: maxN)
        guard !h.isEmpty, c.matches[0] > 0 else { return 0 }
        var logSum = 0.0
        for n in 0..<maxN {
            let t = Double(max(1, c.totals[n]))
            logSum += log(c.matches[n] > 0 ? Double(c.matches[n]) / t : epsilon / t)
        }
        return brevityPenalty(reference: r.count, hypothesis: h.count) * exp(logSum / Double(maxN))
    }
}
