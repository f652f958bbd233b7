import XCTest
@testable import Recur
import CRecurKernels

/// Frame models: the batched step and the prefill compute what single frame steps compute, in every
/// dtype; the format version, the architecture's checks and the refusals of bad frames.
final class FrameTests: XCTestCase {
    static let F = 11

    func frameModel(_ cells: [RecurrentSpec.Template], hidden: Int, dtype: DType = .f32, task: Task = .regress,
                    normalized: Bool = true, maskValue: Float? = nil) throws -> Model {
        var layers: [LayerSpec] = []
        var width = Self.F
        for t in cells {
            var r = RecurrentSpec(cell: t.cell, inputSize: width, units: hidden, activation: t.activation,
                                  resetAfter: t.resetAfter, peephole: t.peephole)
            r.returnSequences = task != .classify || t.cell != cells.last!.cell
            layers.append(.recurrent(r))
            width = hidden
        }
        layers.append(.dense(inputSize: width, units: 4, activation: task == .regress ? .linear : .softmax))
        var arch = Architecture(task: task, layers: layers, labels: task == .regress ? [] : ["a", "b", "c", "d"])
        arch.input = .frames(size: Self.F)
        arch.maskValue = maskValue
        var b = ModelBuilder(architecture: arch, vocabulary: .empty)
        b.randomize(seed: 5, scale: 1.5)
        if normalized {
            b.set("input.mean", shape: [Self.F], values: (0..<Self.F).map { Float($0) * 0.1 - 0.5 })
            b.set("input.scale", shape: [Self.F], values: (0..<Self.F).map { 0.5 + Float($0) * 0.05 })
        }
        var bytes = b.writer().serialize()
        if dtype != .f32 {
            let file = try bytes.withUnsafeBytes { try RecurFile(storage: try FileStorage(copying: $0)) }
            bytes = try Quantizer.quantize(file, to: dtype).writer.serialize()
        }
        return try bytes.withUnsafeBytes { try Model(bytes: $0) }
    }

    func frames(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<(n * Self.F)).map { _ in Float(rng.nextUnit() * 4 - 2) }
    }

    func testFrameModelsAreFormatThree() throws {
        let m = try frameModel([.init(cell: .gru)], hidden: 6)
        XCTAssertEqual(m.file.versionMajor, 3)
        XCTAssertEqual(m.frameSize, Self.F)
        XCTAssertEqual(m.vocabulary.count, 0)
        XCTAssertEqual(m.outputKind, .values)
        XCTAssertTrue(m.canStep)
    }

    /// Which matrices a model copies into column blocks at load (ColumnBlocks): the f32 ones of few enough
    /// columns for the level in use (rk_f32_columns_max) and at least 16 rows — a frame model's input kernel
    /// and small recurrent matrices — but not a token model's first kernel while its input table replaces
    /// it, nor quantized ones. (That a copy leaves every output's bits as they were is checked by
    /// KernelTests and the golden records.)
    func testColumnBlocksAreMadeWhereTheKernelReadsThem() throws {
        let most = Int(rk_f32_columns_max())
        let frames = try frameModel([.init(cell: .gru), .init(cell: .lstm)], hidden: 13)
        let l0 = frames.recurrent[0].forward, l1 = frames.recurrent[1].forward
        XCTAssertEqual(l0.kernel.columns != nil, Self.F <= most, "[39, 11] input kernel")
        XCTAssertEqual(l0.recurrent.columns != nil, 13 <= most, "[39, 13] recurrent kernel")
        XCTAssertEqual(l1.kernel.columns != nil, 13 <= most, "[52, 13] second layer's kernel")
        XCTAssertNil(frames.head[0].kernel.columns, "[4, 13] head: fewer rows than a block")
        let wide = try frameModel([.init(cell: .gru)], hidden: 70)
        XCTAssertEqual(wide.recurrent[0].forward.kernel.columns != nil, Self.F <= most)
        XCTAssertNil(wide.recurrent[0].forward.recurrent.columns, "[210, 70]: more columns than any level takes")
        let quantized = try frameModel([.init(cell: .gru)], hidden: 40, dtype: .q8r).recurrent[0].forward.recurrent
        XCTAssertEqual(quantized.dtype, .q8r)
        XCTAssertNil(quantized.columns, "[120, 40] in q8r")

        let (tabled, _) = try makeModel(cells: [.init(cell: .gru)])
        XCTAssertTrue(tabled.usesInputTable)
        XCTAssertNil(tabled.recurrent[0].forward.kernel.columns, "the input table replaces the first kernel")
        XCTAssertEqual(tabled.recurrent[0].forward.recurrent.columns != nil, 13 <= most)
        var o = Model.Options()
        o.inputTableBudget = 0
        let (untabled, _) = try makeModel(cells: [.init(cell: .gru)], options: o)
        XCTAssertFalse(untabled.usesInputTable)
        XCTAssertEqual(untabled.recurrent[0].forward.kernel.columns != nil, 7 <= most, "[39, 7] without a table")
    }

    func testStepBatchOfFramesEqualsSingleSteps() throws {
        for cells in KernelBatchTests.stacks {
            for dtype in [DType.f32, .f16, .q8, .q4, .q8r, .q8ri, .q4i] {
                let m = try frameModel(cells, hidden: 13, dtype: dtype)
                for n in [1, 3, 5] {
                    let batch = (0..<n).map { _ in m.makeState() }
                    let single = (0..<n).map { _ in m.makeState() }
                    for k in 0..<n where k > 0 {
                        let warm = frames(k, seed: UInt64(k))
                        try batch[k].prefill(frames: warm); try single[k].prefill(frames: warm)
                    }
                    var differing = 0
                    for step in 0..<8 {
                        let x = frames(n, seed: UInt64(100 * n + step))
                        try x.withUnsafeBufferPointer { try m.stepBatch(states: batch, frames: $0) }
                        for k in 0..<n {
                            let want = try single[k].step(frame: Array(x[(k * Self.F)..<((k + 1) * Self.F)]))
                            for j in 0..<m.outputSize where batch[k].output[j].bitPattern != want[j].bitPattern { differing += 1 }
                            XCTAssertEqual(batch[k].position, single[k].position)
                        }
                    }
                    XCTAssertEqual(differing, 0, "\(cells.map(\.cell)) \(dtype.name) n=\(n): outputs not bit for bit the single steps'")
                }
            }
        }
    }

    func testPrefillOfFramesEqualsSteps() throws {
        for cells in KernelBatchTests.stacks {
            for dtype in [DType.f32, .q8r, .q8ri] {
                let m = try frameModel(cells, hidden: 9, dtype: dtype)
                let x = frames(300, seed: 9)        // more than one 256-frame chunk
                let a = m.makeState(), b = m.makeState()
                try a.prefill(frames: x)
                for t in 0..<300 { try b.step(frame: Array(x[(t * Self.F)..<((t + 1) * Self.F)])) }
                XCTAssertEqual(a.position, 300)
                var worst: Float = 0
                for (u, v) in zip(a.vector, b.vector) { worst = max(worst, abs(u - v)) }
                for j in 0..<m.outputSize { worst = max(worst, abs(a.output[j] - b.output[j])) }
                // prefill's input projections use exact activations (QUANTIZATION.md); q8r's steps quantize x
                XCTAssertLessThan(worst, dtype == .f32 ? 1e-4 : 0.05, "\(cells.map(\.cell)) \(dtype.name)")
            }
        }
    }

    func testMaskedFramesInTheBatchLeaveTheirStreams() throws {
        let m = try frameModel([.init(cell: .lstm)], hidden: 7, maskValue: -9)
        let s = (0..<3).map { _ in m.makeState() }
        var x = frames(3, seed: 1)
        try x.withUnsafeBufferPointer { try m.stepBatch(states: s, frames: $0) }
        let before = s[1].vector
        for j in 0..<Self.F { x[Self.F + j] = -9 }
        try x.withUnsafeBufferPointer { try m.stepBatch(states: s, frames: $0) }
        XCTAssertEqual(s[1].vector, before)
        XCTAssertNotEqual(s[0].vector, before)
        XCTAssertEqual(s.map(\.position), [2, 2, 2])
    }

    func testBadFramesAndWrongInputsAreRefused() throws {
        let m = try frameModel([.init(cell: .gru)], hidden: 6, task: .tag)
        let s = m.makeState()
        try s.step(frame: frames(1, seed: 2))
        let saved = s.save()
        var nan = frames(1, seed: 3); nan[4] = .nan
        assertThrowsRecur(.numerical, "frame 0 holds nan at feature 4") { try s.step(frame: nan) }
        assertThrowsRecur(.invalidArgument, "got 10 floats; frames of this model have 11") { try s.step(frame: Array(repeating: 0, count: 10)) }
        assertThrowsRecur(.invalidArgument, "a positive multiple of 11") { try s.prefill(frames: [Float]()) }
        var inf = frames(4, seed: 4); inf[3 * Self.F] = .infinity
        assertThrowsRecur(.numerical, "frame 3 holds inf at feature 0") { try s.prefill(frames: inf) }
        assertThrowsRecur(.unsupported, "reads frames of 11 floats, not tokens") { try s.step(1) }
        assertThrowsRecur(.unsupported, "reads frames of 11 floats, not tokens") { try s.prefill([1, 2]) }
        assertThrowsRecur(.unsupported, "not tokens or text") { _ = try m.tag("ab") }
        assertThrowsRecur(.invalidArgument, "the sequence is empty") { _ = try m.forwardSequence(frames: [Float]()) }
        XCTAssertEqual(s.save(), saved)
        let v = try Vocabulary(kind: .char, pieces: ["a", "b", "c"])
        var tb = ModelBuilder(architecture: Architecture.generator(vocabulary: 3, embedding: 4, cells: [.init(cell: .gru)], hidden: 5), vocabulary: v)
        tb.randomize(seed: 1)
        let t = try tb.writer().serialize().withUnsafeBytes { try Model(bytes: $0) }
        assertThrowsRecur(.unsupported, "reads tokens, not frames") { try t.makeState().step(frame: frames(1, seed: 5)) }
        assertThrowsRecur(.unsupported, "reads tokens, not frames") { _ = try t.forwardSequence(frames: frames(2, seed: 5)) }
    }

    func testArchitectureChecksOfFrameModels() throws {
        var arch = Architecture(task: .generate, layers: [.recurrent(RecurrentSpec(cell: .gru, inputSize: 3, units: 4)),
                                                          .dense(inputSize: 4, units: 2, activation: .linear)])
        arch.input = .frames(size: 3)
        assertThrowsRecur(.model, "frame models are classify, tag or regress models") { try arch.validate() }
        arch.task = .regress
        try arch.validate()
        arch.input = .frames(size: 5)
        assertThrowsRecur(.model, "expects input size 3 but frames have 5 floats") { try arch.validate() }
        arch.input = .tokens
        arch.maskValue = 0
        assertThrowsRecur(.model, "only for frame models") { try arch.validate() }
        arch.maskValue = nil
        arch.pooling = .mean
        assertThrowsRecur(.model, "only for classify models") { try arch.validate() }
    }
}
