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

    /// Signatures computed by hand from FORMAT.md §11's rule.
    func testUnknownWordSignatures() throws {
        let sx = ["ing", "ly", "ed", "s"]
        let cases: [(String, String)] = [
            ("running", "<unk-ing>"), ("Running", "<unk-cap-ing>"), ("sing", "<unk>"), ("bus", "<unk>"),
            ("buses", "<unk-s>"), ("USA", "<unk-allcap>"), ("U", "<unk-cap>"), ("iPhone", "<unk-midcap>"),
            ("1984", "<unk-num>"), ("4th", "<unk-dig>"), ("F16s", "<unk-dig-cap-s>"), ("e-mail", "<unk-dash>"),
            (",", "<unk-sym>"), ("--", "<unk-dash-sym>"), ("ÉCOLES", "<unk-allcap-s>"), ("Ωmegas", "<unk-cap-s>"),
            ("naïvely", "<unk-ly>"), ("Ed", "<unk-cap>"), ("fled", "<unk>"), ("speed", "<unk-ed>"), ("٣٤٥", "<unk-num>"),
        ]
        for (w, want) in cases { XCTAssertEqual(Vocabulary.signature(of: w, suffixes: sx), want, w) }
        XCTAssertEqual(Vocabulary.signature(of: "talking", suffixes: ["s", "ing"]), "<unk-ing>", "the first suffix that matches")
        XCTAssertEqual(Vocabulary.signature(of: "talks", suffixes: []), "<unk>")
    }

    func testEncodingWithSignatures() throws {
        let v = try Vocabulary(kind: .word, pieces: ["<pad>", "<unk>", "<unk-cap>", "<unk-ing>", "<unk-num>", "the", "dog", "."],
                               pad: 0, unk: 1, lowercase: true, unkSignatures: true, unkSuffixes: ["ing"])
        XCTAssertEqual(try v.encode("The dog, Rex, was barking in 1984."), [5, 6, 1, 2, 1, 1, 3, 1, 4, 7])
        XCTAssertEqual(v.pieces(of: "The Dog"), ["the", "dog"])
        XCTAssertEqual(v.id(ofWord: "DOG"), 6)
        XCTAssertEqual(v.id(ofWord: "Zed"), 2)
        XCTAssertEqual(v.id(ofWord: "zed"), 1, "no plain <unk> signature piece: UNK")
        assertThrowsRecur(.model, "need an UNK token") {
            _ = try Vocabulary(kind: .word, pieces: ["a"], lowercase: true, unkSignatures: true, unkSuffixes: [])
        }
        assertThrowsRecur(.model, "need a word vocabulary") {
            _ = try Vocabulary(kind: .char, pieces: ["<unk>", "a"], unk: 0, unkSignatures: true)
        }
        assertThrowsRecur(.model, "signatures are off") { _ = try Vocabulary(kind: .word, pieces: ["a"], unkSuffixes: ["s"]) }
        assertThrowsRecur(.model, "must be 1…32") {
            _ = try Vocabulary(kind: .word, pieces: ["<unk>"], unk: 0, unkSignatures: true, unkSuffixes: [""])
        }
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

final class PreprocessingTests: XCTestCase {
    func testKerasSplitterFiltersLowersAndDropsUnknownWords() throws {
        let v = try Vocabulary(kind: .word, pieces: ["<pad>", "the", "cat", "isn't", "sat"], pad: 0, lowercase: true,
                               splitter: .keras)
        // Keras' default filters remove the punctuation ("'" is not among them); "mat" has no id: dropped.
        XCTAssertEqual(try v.encode("The cat, the MAT... isn't (sat)!"), [1, 2, 1, 3, 4])
        XCTAssertEqual(Vocabulary.kerasWords("a--b  c", filters: "-", split: "--"), ["a", "b  c"])
        XCTAssertEqual(Vocabulary.kerasWords("a,b", filters: "", split: " "), ["a,b"])
        let u = try Vocabulary(kind: .word, pieces: ["<pad>", "<OOV>", "cat"], pad: 0, unk: 1, lowercase: true,
                               splitter: .keras)
        XCTAssertEqual(try u.encode("Cat dog."), [2, 1])
        let c = try Vocabulary(kind: .char, pieces: ["<pad>", " ", "a", "!"], pad: 0, lowercase: true, splitter: .keras)
        XCTAssertEqual(try c.encode("A a!?"), [2, 1, 2, 3], "character tokenizers lower but do not filter")
    }

    func testWhitespaceAndBasicEnglish() throws {
        XCTAssertEqual(Vocabulary.whitespaceWords("  a\tb\nc  "), ["a", "b", "c"])
        XCTAssertEqual(Vocabulary.basicEnglish("The cat's \"hat\" (big)!<br />Yes: no; ok?"),
                       ["the", "cat", "'", "s", "hat", "(", "big", ")", "!", "yes", "no", "ok", "?"])
        let v = try Vocabulary(kind: .word, pieces: ["<unk>", "the", "cat"], unk: 0, splitter: .basicEnglish)
        XCTAssertEqual(try v.encode("The CAT."), [1, 2, 0])
        let w = try Vocabulary(kind: .word, pieces: ["the", "cat"], splitter: .whitespace)
        assertThrowsRecur(.outOfRange, "word 'dog'") { _ = try w.encode("the dog") }
    }

    func testMetadataRoundTripAndVersion() throws {
        let v = try Vocabulary(kind: .word, pieces: ["<pad>", "a", "b"], pad: 0, lowercase: true, splitter: .keras,
                               filters: "!", split: " ", padMask: false, padLength: 7, padding: .post, truncating: .post)
        let arch = Architecture(task: .classify, layers: [
            .embedding(vocabulary: 3, dimension: 2), .recurrent({ var r = RecurrentSpec(cell: .gru, inputSize: 2, units: 3); r.returnSequences = false; return r }()),
            .dense(inputSize: 3, units: 1, activation: .sigmoid)])
        let (m, _) = try buildModel(arch, vocab: v)
        XCTAssertEqual(m.file.versionMajor, 3)
        XCTAssertEqual(m.vocabulary.splitter, .keras)
        XCTAssertEqual(m.vocabulary.filters, "!")
        XCTAssertEqual(m.vocabulary.padMask, false)
        XCTAssertEqual(m.vocabulary.padLength, 7)
        XCTAssertEqual(m.vocabulary.padding, .post)
        XCTAssertEqual(m.vocabulary.truncating, .post)
        let plain = try Vocabulary(kind: .word, pieces: ["<pad>", "a", "b"], pad: 0)
        XCTAssertEqual(try buildModel(arch, vocab: plain).0.file.versionMajor, 1)
        let signed = try Vocabulary(kind: .word, pieces: ["<pad>", "<unk>", "<unk-s>"], pad: 0, unk: 1, lowercase: true,
                                    unkSignatures: true, unkSuffixes: ["s"])
        let s = try buildModel(arch, vocab: signed).0
        XCTAssertEqual(s.file.versionMajor, 6, "unknown-word signatures are a format 6 feature")
        XCTAssertTrue(s.vocabulary.unkSignatures); XCTAssertEqual(s.vocabulary.unkSuffixes, ["s"])
        XCTAssertEqual(try s.vocabulary.encode("cats Cats"), [2, 1])
        assertThrowsRecur(.model, "needs a PAD token") { _ = try Vocabulary(kind: .word, pieces: ["a"], padLength: 3) }
    }

    func testPaddedSequenceAsPadSequences() throws {
        func model(_ padding: Vocabulary.PadSide, _ truncating: Vocabulary.PadSide) throws -> Model {
            let v = try Vocabulary(kind: .word, pieces: ["<pad>"] + (1..<10).map { "w\($0)" }, pad: 0, padMask: false,
                                   padLength: 4, padding: padding, truncating: truncating)
            var r = RecurrentSpec(cell: .gru, inputSize: 3, units: 4)
            r.bidirectional = true
            let arch = Architecture(task: .tag, layers: [.embedding(vocabulary: 10, dimension: 3), .recurrent(r),
                                                          .dense(inputSize: 8, units: 3, activation: .softmax)])
            return try buildModel(arch, vocab: v).0
        }
        let pre = try model(.pre, .pre), post = try model(.post, .post)
        XCTAssertEqual(pre.sequenceInput([5, 6]).tokens, [0, 0, 5, 6])
        XCTAssertEqual(post.sequenceInput([5, 6]).tokens, [5, 6, 0, 0])
        XCTAssertEqual(pre.sequenceInput([1, 2, 3, 4, 5, 6]).tokens, [3, 4, 5, 6])
        XCTAssertEqual(post.sequenceInput([1, 2, 3, 4, 5, 6]).tokens, [1, 2, 3, 4])
        XCTAssertEqual(pre.sequenceInput([1, 2, 3, 4, 5, 6], padding: .none).tokens, [1, 2, 3, 4, 5, 6])
        // Tags of the kept tokens only; an unmasked model's PAD steps change the real tokens' outputs.
        XCTAssertEqual(try pre.tag(tokens: [1, 2, 3, 4, 5, 6]).count, 4)
        XCTAssertEqual(try post.tag(tokens: [5, 6]).count, 2)
        let padded = try post.forwardSequence([5, 6, 0, 0]), alone = try post.forwardSequence([5, 6])
        XCTAssertNotEqual(padded[0], alone[0], "the backward direction reads the PAD steps first")
    }
}
