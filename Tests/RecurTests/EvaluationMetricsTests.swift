import XCTest
@testable import RecurTraining

/// The metrics of `recur eval` against hand-computed values.
final class EvaluationMetricsTests: XCTestCase {
    let w = { (s: String) in s.split(separator: " ").map(String.init) }

    /// 3 classes, C never predicted. Confusion (rows true, columns predicted):
    ///     A: 3 1 0   B: 1 2 0   C: 1 1 0      column sums 5, 4, 0; supports 4, 3, 2; 5 of 9 right.
    /// precision A 3/5, B 2/4, C 0 (never predicted: 0, not NaN); recall A 3/4, B 2/3, C 0/2;
    /// F1 A 2·0.6·0.75/1.35 = 2/3, B 2·(1/2)(2/3)/(7/6) = 4/7, C 0.
    /// macro: P (0.6 + 0.5 + 0)/3, R (3/4 + 2/3 + 0)/3 = 17/36, F1 (2/3 + 4/7)/3 = 26/63;
    /// weighted: P (4·0.6 + 3·0.5)/9 = 3.9/9, R 5/9 (the accuracy), F1 (4·2/3 + 3·4/7)/9 = 92/189.
    func testThreeClassConfusion() {
        let truth = [0, 0, 0, 0, 1, 1, 1, 2, 2], predicted = [0, 0, 0, 1, 0, 1, 1, 0, 1]
        let m = ClassificationMetrics(labels: ["A", "B", "C"], truth: truth, predicted: predicted)
        XCTAssertEqual(m.confusion, [[3, 1, 0], [1, 2, 0], [1, 1, 0]])
        XCTAssertEqual(m.count, 9); XCTAssertEqual(m.correct, 5)
        XCTAssertEqual(m.accuracy, 5.0 / 9, accuracy: 1e-12)
        XCTAssertEqual(m.support, [4, 3, 2]); XCTAssertEqual(m.predictedCounts, [5, 4, 0])
        for (a, b) in zip(m.precision, [0.6, 0.5, 0]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        for (a, b) in zip(m.recall, [0.75, 2.0 / 3, 0]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        for (a, b) in zip(m.f1, [2.0 / 3, 4.0 / 7, 0]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        XCTAssertFalse(m.precision.contains { $0.isNaN } || m.f1.contains { $0.isNaN })
        XCTAssertEqual(m.macro.precision, 1.1 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.macro.recall, 17.0 / 36, accuracy: 1e-12)
        XCTAssertEqual(m.macro.f1, 26.0 / 63, accuracy: 1e-12)
        XCTAssertEqual(m.weighted.precision, 3.9 / 9, accuracy: 1e-12)
        XCTAssertEqual(m.weighted.recall, 5.0 / 9, accuracy: 1e-12)
        XCTAssertEqual(m.weighted.f1, 92.0 / 189, accuracy: 1e-12)

        // A fourth class of the model that is neither in the data nor predicted stays out of the macro average.
        let m4 = ClassificationMetrics(labels: ["A", "B", "C", "D"], truth: truth, predicted: predicted)
        XCTAssertEqual(m4.present, [0, 1, 2])
        XCTAssertEqual(m4.macro.f1, 26.0 / 63, accuracy: 1e-12)
        XCTAssertEqual(m4.precision[3], 0); XCTAssertEqual(m4.recall[3], 0); XCTAssertEqual(m4.f1[3], 0)
        XCTAssertEqual(m4.weighted.f1, 92.0 / 189, accuracy: 1e-12)

        // The report has a row per class, the two averages and the matrix.
        let r = m.report()
        XCTAssertTrue(r.contains { $0.hasPrefix("           A     60.00     75.00     66.67         4") }, r.joined(separator: "\n"))
        XCTAssertTrue(r.contains { $0.contains("macro avg") && $0.contains("41.27") })
        XCTAssertTrue(r.contains { $0.hasSuffix("C   1   1   0") })
        // Nothing at all: zeros, no NaN.
        let empty = ClassificationMetrics(labels: ["A", "B"], truth: [], predicted: [])
        XCTAssertEqual(empty.accuracy, 0); XCTAssertEqual(empty.macro.f1, 0); XCTAssertEqual(empty.weighted.f1, 0)
        XCTAssertEqual(ClassificationMetrics.argmax([0.2, 0.5, 0.5, 0.1]), 1)
    }

    func testCorpusAndSentenceBLEU() {
        // Identical candidate and reference: 1.
        XCTAssertEqual(BLEU.corpus(hypotheses: [w("a b c d e")], references: [w("a b c d e")]), 1, accuracy: 1e-12)
        XCTAssertEqual(BLEU.sentence(hypothesis: w("a b c d e"), reference: w("a b c d e")), 1, accuracy: 1e-12)

        // No 4-gram in common: hypothesis a b c x d e f, reference a b c y d e f (7 words each, BP 1).
        // Matches / n-grams: 1-grams 6/7, 2-grams (ab bc de ef) 4/6, 3-grams (abc def) 2/5, 4-grams 0/4.
        let h1 = w("a b c x d e f"), r1 = w("a b c y d e f")
        XCTAssertEqual(BLEU.counts(hypothesis: h1, reference: r1, maxN: 4).matches, [6, 4, 2, 0])
        XCTAssertEqual(BLEU.counts(hypothesis: h1, reference: r1, maxN: 4).totals, [7, 6, 5, 4])
        XCTAssertEqual(BLEU.corpus(hypotheses: [h1], references: [r1]), 0)   // unsmoothed
        XCTAssertEqual(BLEU.corpus(hypotheses: [h1], references: [r1], maxN: 3), pow(6.0 / 7 * 4 / 6 * 2 / 5, 1.0 / 3), accuracy: 1e-12)
        XCTAssertEqual(BLEU.corpus(hypotheses: [h1], references: [r1], maxN: 1), 6.0 / 7, accuracy: 1e-12)
        // Smoothed (method 1): the 4-gram precision is 0.1/4, so (6/7 · 4/6 · 2/5 · 1/40)^(1/4) = (1/175)^(1/4).
        XCTAssertEqual(BLEU.sentence(hypothesis: h1, reference: r1), pow(1.0 / 175, 0.25), accuracy: 1e-12)

        // Brevity penalty: 4 words against 8, every n-gram matching: exp(1 − 8/4).
        let h2 = w("a b c d"), r2 = w("a b c d e f g h")
        XCTAssertEqual(BLEU.corpus(hypotheses: [h2], references: [r2]), exp(-1.0), accuracy: 1e-12)
        XCTAssertEqual(BLEU.sentence(hypothesis: h2, reference: r2), exp(-1.0), accuracy: 1e-12)

        // The corpus sums before dividing: c = 11, r = 15; matches 10/11, 7/9, 4/7, 1/5 → exp(1 − 15/11) · (8/99)^(1/4).
        XCTAssertEqual(BLEU.corpus(hypotheses: [h1, h2], references: [r1, r2]), exp(-4.0 / 11) * pow(8.0 / 99, 0.25), accuracy: 1e-12)
        // The mean of the sentence figures is another number.
        XCTAssertNotEqual(BLEU.corpus(hypotheses: [h1, h2], references: [r1, r2]),
                          (BLEU.sentence(hypothesis: h1, reference: r1) + BLEU.sentence(hypothesis: h2, reference: r2)) / 2, accuracy: 1e-3)

        // Shorter than 4 words: the missing orders count ε / max(1, 0) = 0.1 (as NLTK): exp(1 − 3/2) · (1 · 1 · 0.1 · 0.1)^(1/4).
        XCTAssertEqual(BLEU.sentence(hypothesis: w("a b"), reference: w("a b c")), exp(-0.5) * 0.1.squareRoot(), accuracy: 1e-12)
        // No word in common, or nothing translated: 0.
        XCTAssertEqual(BLEU.sentence(hypothesis: w("x y"), reference: w("a b")), 0)
        XCTAssertEqual(BLEU.sentence(hypothesis: [], reference: w("a b")), 0)
        XCTAssertEqual(BLEU.corpus(hypotheses: [[]], references: [w("a b")]), 0)
        // Clipping: "the the the the" against "the cat": 1 of 4 unigrams.
        XCTAssertEqual(BLEU.corpus(hypotheses: [w("the the the the")], references: [w("the cat")], maxN: 1), 0.25, accuracy: 1e-12)
        // corpusBLEU (the trainer's name) is the same function.
        XCTAssertEqual(corpusBLEU(hypotheses: [h1, h2], references: [r1, r2]), BLEU.corpus(hypotheses: [h1, h2], references: [r1, r2]))
    }
}
