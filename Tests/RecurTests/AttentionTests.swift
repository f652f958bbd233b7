import XCTest
@testable import Recur

/// Translators with attention (format 5): the builder's architecture round trip, one step's weights and
/// context against an independent computation (the encoder's outputs from the Double whole-sequence
/// reference, then softmax and the weighted sum in Double), the shared memory of forked states, and the
/// refusals.
final class AttentionTests: XCTestCase {
    let source = try! Vocabulary(kind: .word, pieces: ["<pad>", "<unk>", "<eos>", "s3", "s4", "s5", "s6"], pad: 0, unk: 1, eos: 2)

    func translator(_ attention: AttentionSpec?, bidirectional: Bool = false, target: [String], hidden: Int = 2,
                    embedding: Int = 3, cell: CellKind = .gru, seed: UInt64 = 5) throws -> (ModelBuilder, Model) {
        let vocab = try Vocabulary(kind: .word, pieces: target, bos: 0, eos: 1)
        let arch = try Architecture.translator(source: source.count, target: vocab.count, embedding: embedding,
                                               cells: [.init(cell: cell)], hidden: hidden,
                                               bidirectionalEncoder: bidirectional, attention: attention)
        var b = ModelBuilder(architecture: arch, vocabulary: vocab)
        b.sourceVocabulary = source
        b.randomize(seed: seed, scale: 2)
        let bytes = b.writer().serialize()
        let m = try bytes.withUnsafeBytes { try Model(bytes: $0) }
        return (b, m)
    }

    func testBuilderWritesVersion5AndTheArchitectureRoundTrips() throws {
        for a in [AttentionSpec(score: .additive, inputSize: 0, memorySize: 0, attentionUnits: 3, useBias: true, units: 5, inputFeeding: true),
                  AttentionSpec(score: .dot, inputSize: 0, memorySize: 0, combine: .none),
                  AttentionSpec(score: .general, inputSize: 0, memorySize: 0, units: 4)] {
            let (b, m) = try translator(a, bidirectional: a.score != .general, target: ["<bos>", "<eos>", "a", "b", "c"])
            XCTAssertEqual(m.file.versionMajor, 5)
            XCTAssertEqual(m.architecture, b.architecture)
            XCTAssertEqual(m.architecture.attention?.memorySize, a.score != .general ? 4 : 2)
            let t = try m.translate("s3 s4 s5", beam: 2, maxLength: 6, attention: true)
            XCTAssertEqual(t.source, [3, 4, 5, 2])
            XCTAssertEqual(t.attention.count, t.tokens.count)
            for row in t.attention { XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-5) }
        }
        // Without attention: version 1, and the weights are refused.
        let (_, plain) = try translator(nil, target: ["<bos>", "<eos>", "a"])
        XCTAssertEqual(plain.file.versionMajor, 1)
        assertThrowsRecur(.unsupported, "no attention layer") { _ = try plain.translate("s3", beam: 1, attention: true) }
        XCTAssertNil(try plain.encode(source: [3, 2]).attentionWeights)
    }

    /// Dot scoring, combine none and an identity head: the output after a step is [c_t; h_t] itself, so
    /// c_t and the weights can be checked against the encoder's outputs computed apart.
    func testOneStepAgainstAnIndependentComputation() throws {
        let H = 2
        let (b0, _) = try translator(AttentionSpec(score: .dot, inputSize: 0, memorySize: 0, combine: .none),
                                     target: ["<bos>", "<eos>", "a", "b"], hidden: H)
        var b = b0
        let head = b.architecture.layers.count - 1
        b.set("layer.\(head).kernel", shape: [4, 4], values: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])
        b.set("layer.\(head).bias", shape: [4], values: [0, 0, 0, 0])
        let m = try b.writer().serialize().withUnsafeBytes { try Model(bytes: $0) }
        // The encoder as a tagger of its own (same tensors), run by the Double reference.
        var tagger = ModelBuilder(architecture: Architecture(task: .tag, layers: Array(b.architecture.encoder)
                + [.dense(inputSize: H, units: 2, activation: .linear)], labels: ["x", "y"]), vocabulary: source)
        for t in b.tensors where t.name.hasPrefix("encoder.") {
            tagger.set(String(t.name.dropFirst("encoder.".count)), shape: t.shape, values: t.values)
        }
        tagger.set("layer.2.kernel", shape: [2, H], values: [1, 0, 0, 1])
        tagger.set("layer.2.bias", shape: [2], values: [0, 0])
        let src = [3, 5, 4, 6, 2]
        let memory = referenceLayers(tagger, src)[1]     // the GRU's outputs, T × H
        let state = try m.encode(source: src)
        XCTAssertEqual(state.attentionSource, src)
        XCTAssertNil(state.attentionWeights)            // no step yet
        for token in [0, 2, 3, 2] {
            let out = Array(try state.step(token))
            let h = state.hidden(0)
            let scores = memory.map { row in zip(row, h).reduce(0.0) { $0 + $1.0 * Double($1.1) } }
            let top = scores.max()!
            let e = scores.map { exp($0 - top) }
            let a = e.map { $0 / e.reduce(0, +) }
            let weights = state.attentionWeights!
            for s in 0..<src.count { XCTAssertEqual(Double(weights[s]), a[s], accuracy: 1e-5) }
            for j in 0..<H {
                let c = zip(a, memory).reduce(0.0) { $0 + $1.0 * $1.1[j] }
                XCTAssertEqual(Double(out[j]), c, accuracy: 1e-5)
                XCTAssertEqual(out[H + j], h[j], accuracy: 1e-6)
            }
        }
    }

    func testForksShareTheMemoryAndStatesRefuseWhatTheyCannotDo() throws {
        let (_, m) = try translator(AttentionSpec(score: .general, inputSize: 0, memorySize: 0, units: 3, inputFeeding: true),
                                    target: ["<bos>", "<eos>", "a", "b"], cell: .lstm)
        let s = try m.encode(source: [3, 4, 2])
        try s.step(0)
        let f = s.fork()
        XCTAssertTrue(s.attention!.memory === f.attention!.memory, "forks share the encoder's outputs")
        XCTAssertEqual(f.attentionWeights, s.attentionWeights)
        // Stepping a fork equals stepping the original (input feeding included).
        let a = Array(try s.step(2)), b = Array(try f.step(2))
        XCTAssertEqual(a, b)
        // Stepped one by one or as a batch: the same outputs.
        let g = s.fork(), k = s.fork()
        try m.stepBatch(states: [g, k], tokens: [3, 2])
        let g1 = s.fork(); try g1.step(3)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: g.output, count: m.outputSize)),
                       Array(UnsafeBufferPointer(start: g1.output, count: m.outputSize)))
        // A fresh state has no source; a saved state cannot bring one back.
        let fresh = m.makeState()
        assertThrowsRecur(.unsupported, "encod") { try fresh.step(0) }
        assertThrowsRecur(.unsupported, "encod") { try m.stepBatch(states: [s.fork(), fresh], tokens: [2, 2]) }
        // A saved state restores (its vectors and output) but brings no source back: stepping it is refused.
        let restored = m.makeState()
        try restored.restore(s.save())
        XCTAssertEqual(restored.vector, s.vector)
        XCTAssertNil(restored.attentionSource)
        assertThrowsRecur(.unsupported, "encod") { try restored.step(0) }
        s.reset()
        XCTAssertNil(s.attentionSource)
        assertThrowsRecur(.unsupported, "encod") { try s.step(0) }
    }
}
