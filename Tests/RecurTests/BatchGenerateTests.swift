import XCTest
@testable import Recur

/// The batched generate gives each prompt the text of a single generate with the same sampler, whatever
/// the slots, the dtype and the order in which streams finish.
final class BatchGenerateTests: XCTestCase {
    /// A character generator over "a"…"t" plus a space, with EOS (so that some streams end early).
    func generator(_ dtype: DType, cell: RecurrentSpec.Template = .init(cell: .gru)) throws -> Model {
        let pieces = (0..<20).map { String(UnicodeScalar(UInt32(0x61 + $0))!) } + [" ", "<eos>"]
        let v = try Vocabulary(kind: .char, pieces: pieces, eos: 21)
        var b = ModelBuilder(architecture: Architecture.generator(vocabulary: pieces.count, embedding: 9, cells: [cell], hidden: 24), vocabulary: v)
        b.randomize(seed: 11, scale: 1.2)
        var bytes = b.writer().serialize()
        if dtype != .f32 {
            let file = try bytes.withUnsafeBytes { try RecurFile(storage: try FileStorage(copying: $0)) }
            bytes = try Quantizer.quantize(file, to: dtype).writer.serialize()
        }
        return try bytes.withUnsafeBytes { try Model(bytes: $0) }
    }

    func prompts(_ n: Int) -> [BatchPrompt] {
        (0..<n).map { k in
            BatchPrompt(prompt: String(repeating: "abc"[String.Index(utf16Offset: k % 3, in: "abc")], count: 1 + k % 4),
                        maxTokens: [0, 1, 7, 30, 64][k % 5], sampler: SamplerParams(temperature: k % 4 == 0 ? 0 : 0.9, seed: UInt64(100 + k)))
        }
    }

    func single(_ m: Model, _ p: BatchPrompt, stop: [String] = []) throws -> GenerationResult {
        var s = try Sampler(p.sampler)
        return try m.generate(prompt: p.prompt, maxTokens: p.maxTokens, sampler: &s, stop: stop) { _ in true }
    }

    func testEqualsSingleGeneratePerPrompt() throws {
        for dtype in [DType.f32, .f16, .q8, .q4, .q8r, .q8ri, .q4i] {
            for cell in [RecurrentSpec.Template(cell: .gru), .init(cell: .lstm)] {
                let m = try generator(dtype, cell: cell)
                let ps = prompts(13)
                for stop in [[], ["ab", "q"]] {
                    let want = try ps.map { try single(m, $0, stop: stop) }
                    XCTAssertTrue(want.contains { $0.text.count > 10 } && want.contains { $0.reason == .endOfSequence || $0.reason == .stopString })
                    for slots in [1, 4, 20] {
                        var pieces = [String](repeating: "", count: ps.count)
                        let got = try m.generateBatch(ps, slots: slots, stop: stop) { k, piece in
                            pieces[k] += piece
                            return .proceed
                        }
                        for k in ps.indices {
                            let tag = "\(dtype.name) \(cell.cell) stop \(stop) slots \(slots) prompt \(k)"
                            XCTAssertEqual(got[k].text, want[k].text, tag)
                            XCTAssertEqual(pieces[k], want[k].text, tag)
                            XCTAssertEqual(got[k].tokens, want[k].tokens, tag)
                            XCTAssertEqual(got[k].reason, want[k].reason, tag)
                        }
                    }
                }
            }
        }
    }

    /// More prompts than slots: at most `slots` streams are under way at once, every prompt is run, and
    /// streams finish at different times.
    func testContinuousBatching() throws {
        let m = try generator(.q8ri)
        let ps = prompts(11)
        let want = try ps.map { try single(m, $0) }
        var open = Set<Int>(), order: [Int] = []
        let got = try m.generateBatch(ps, slots: 3) { k, _ in
            if open.insert(k).inserted { order.append(k) }
            return .proceed
        }
        // Streams that delivered something, in the order they started.
        XCTAssertEqual(order, order.sorted())
        XCTAssertEqual(Set(order), Set(ps.indices.filter { !want[$0].text.isEmpty }))
        XCTAssertEqual(got.map(\.text), want.map(\.text))
        // Streams finish at different times: their token counts differ.
        XCTAssertGreaterThan(Set(got.map(\.tokens.count)).count, 3)
    }

    func testStopStreamAndStopAll() throws {
        let m = try generator(.f32)
        let ps = (0..<6).map { BatchPrompt(prompt: "ab", maxTokens: 40, sampler: SamplerParams(temperature: 1, seed: UInt64($0))) }
        var count = [Int](repeating: 0, count: ps.count)
        let r = try m.generateBatch(ps, slots: 2) { k, _ in
            count[k] += 1
            return count[k] == 3 && k % 2 == 0 ? .stopStream : .proceed
        }
        for k in ps.indices where k % 2 == 0 && r[k].reason == .callback { XCTAssertEqual(count[k], 3) }
        var calls = 0
        let all = try m.generateBatch(ps, slots: 2) { _, _ in calls += 1; return calls == 5 ? .stopAll : .proceed }
        XCTAssertEqual(calls, 5)
        XCTAssertTrue(all[5].tokens.isEmpty)
    }

    func testRejectsBadPrompts() throws {
        let m = try generator(.f32)
        var ps = prompts(3)
        ps[2].prompt = "aZ"
        assertThrowsRecur(.outOfRange, "prompt 2:") { _ = try m.generateBatch(ps, slots: 2) { _, _ in .proceed } }
        ps = prompts(3)
        ps[1].maxTokens = -1
        assertThrowsRecur(.invalidArgument, "prompt 1: max tokens") { _ = try m.generateBatch(ps, slots: 2) { _, _ in .proceed } }
        ps = prompts(3)
        ps[0].prompt = ""
        assertThrowsRecur(.invalidArgument, "prompt 0: the prompt is empty") { _ = try m.generateBatch(ps, slots: 2) { _, _ in .proceed } }
        assertThrowsRecur(.invalidArgument, "slots") { _ = try m.generateBatch(prompts(2), slots: 0) { _, _ in .proceed } }
        XCTAssertEqual(try m.generateBatch([], slots: 4) { _, _ in .proceed }.count, 0)
    }
}
