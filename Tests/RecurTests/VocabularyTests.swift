import XCTest
@testable import Recur

final class VocabularyTests: XCTestCase {
    func testCharEncodeDecode() throws {
        let v = try Vocabulary(kind: .char, pieces: ["<unk>", "a", "b", "é", "\n"], unk: 0)
        XCTAssertEqual(try v.encode("abé\nz"), [1, 2, 3, 4, 0])
        XCTAssertEqual(try v.decode([1, 2, 0, 3]), "abé")
    }

    func testCharWithoutUnkRejectsUnknown() throws {
        let v = try Vocabulary(kind: .char, pieces: ["a", "b"])
        assertThrowsRecur(.outOfRange, "character 'z' (U+007A) at position 3") { _ = try v.encode("abz") }
        XCTAssertEqual(try v.encode("abz", unknown: .skip), [0, 1])
        assertThrowsRecur(.outOfRange, "no look-alike") { _ = try v.encode("abz", unknown: .replace) }
        XCTAssertEqual(try v.encode("àbå", unknown: .replace), [0, 1, 0])
        let w = try Vocabulary(kind: .word, pieces: ["naive", "cafe", "."], lowercase: true)
        assertThrowsRecur(.outOfRange, "word 'naïve' (word 1)") { _ = try w.encode("Naïve café.") }
        XCTAssertEqual(try w.encode("Naïve café.", unknown: .replace), [0, 1, 2])
        XCTAssertEqual(try w.encode("Naïve tea café.", unknown: .skip), [2])
        let u = try Vocabulary(kind: .char, pieces: ["<unk>", "a"], unk: 0)
        XCTAssertEqual(try u.encode("aé", unknown: .skip), [1, 0], "a model with UNK maps unknowns to it under every policy")
        assertThrowsRecur(.outOfRange, "token id 5") { _ = try v.decode([5]) }
    }

    func testWordSplitting() throws {
        XCTAssertEqual(Vocabulary.words("Don't stop, Alice!  Now."), ["Don't", "stop", ",", "Alice", "!", "Now", "."])
        let v = try Vocabulary(kind: .word, pieces: ["<pad>", "<unk>", "alice", "ran", "."], pad: 0, unk: 1, lowercase: true)
        XCTAssertEqual(try v.encode("Alice ran home."), [2, 3, 1, 4])
        XCTAssertEqual(try v.decode([2, 3, 4]), "alice ran .")
    }

    func testInvalidVocabularies() {
        assertThrowsRecur(.model, "appears twice") { _ = try Vocabulary(kind: .char, pieces: ["a", "a"]) }
        assertThrowsRecur(.model, "exactly one") { _ = try Vocabulary(kind: .char, pieces: ["ab"]) }
        assertThrowsRecur(.model, "outside the vocabulary") { _ = try Vocabulary(kind: .char, pieces: ["a"], eos: 3) }
    }
}

final class GenerateTests: XCTestCase {
    func testGreedyGenerationMatchesReferenceArgmax() throws {
        let (model, builder) = try makeModel(cells: [.init(cell: .gru), .init(cell: .lstm)])
        var sampler = try Sampler(SamplerParams(temperature: 0))
        var pieces: [String] = []
        let r = try model.generate(prompt: "ABC", maxTokens: 30, sampler: &sampler) { pieces.append($0); return true }
        XCTAssertEqual(r.tokens.count, 30)
        XCTAssertEqual(pieces.joined(), r.text)
        XCTAssertEqual(pieces.count, 30, "one piece per sampled character")
        // Reference: feed the prompt, then repeatedly take the argmax of the reference logits.
        var ref = ReferenceGenerator(builder)
        var logits: [Double] = []
        for t in try model.vocabulary.encode("ABC") { logits = ref.step(t) }
        var want: [Int] = []
        for _ in 0..<30 {
            let t = logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) }!
            want.append(t)
            logits = ref.step(t)
        }
        XCTAssertEqual(r.tokens, want)
    }

    func testStopsAndSeeds() throws {
        let (model, _) = try makeModel(cells: [.init(cell: .gru)], hidden: 17)
        func gen(seed: UInt64, stop: [String] = [], n: Int = 60) throws -> GenerationResult {
            var s = try Sampler(SamplerParams(temperature: 1, seed: seed))
            return try model.generate(prompt: "AB", maxTokens: n, sampler: &s, stop: stop) { _ in true }
        }
        let a = try gen(seed: 5), b = try gen(seed: 5), c = try gen(seed: 6)
        XCTAssertEqual(a.text, b.text)
        XCTAssertNotEqual(a.text, c.text)
        // Stop at the first occurrence of a string that appears in the unconstrained text.
        let full = a.text
        let chars = Array(full)
        let stop = String(chars[20...21])
        let s = try gen(seed: 5, stop: [stop])
        XCTAssertEqual(s.reason, .stopString)
        XCTAssertTrue(full.hasPrefix(s.text + stop))
        XCTAssertFalse(s.text.contains(stop))
        // The callback can stop generation.
        var sampler = try Sampler(SamplerParams(temperature: 1, seed: 5))
        var n = 0
        let cb = try model.generate(prompt: "AB", maxTokens: 60, sampler: &sampler) { _ in n += 1; return n < 5 }
        XCTAssertEqual(cb.reason, .callback)
        XCTAssertEqual(cb.tokens.count, 5)
    }

    func testEmptyPromptWithoutBOSIsAnError() throws {
        let (model, _) = try makeModel(cells: [.init(cell: .gru)])
        var s = try Sampler(SamplerParams())
        assertThrowsRecur(.invalidArgument, "prompt is empty") { try model.generate(prompt: "", maxTokens: 3, sampler: &s) { _ in true } }
    }
}
