import Foundation
import XCTest
@testable import Recur

/// The batched step and the threaded step compute what single-threaded single steps compute.
final class KernelBatchTests: XCTestCase {
    func model(_ cells: [RecurrentSpec.Template], hidden: Int, dtype: DType, threads: Int = 1) throws -> Model {
        try makeGenerator(cells, hidden: hidden, dtype: dtype, threads: threads)
    }

    static let stacks: [[RecurrentSpec.Template]] = [
        [.init(cell: .gru)], [.init(cell: .gru, resetAfter: false)], [.init(cell: .lstm, peephole: true)],
        [.init(cell: .rnn)], [.init(cell: .gru), .init(cell: .lstm)],
    ]

    func testStepBatchEqualsSingleSteps() throws {
        for cells in Self.stacks {
            for dtype in [DType.f32, .f16, .q8, .q4, .q8r, .q8ri, .q4i] {
                let m = try model(cells, hidden: 21, dtype: dtype)
                for n in [1, 3, 6, 9] {
                    // Streams at different positions.
                    let batch = (0..<n).map { _ in m.makeState() }
                    let single = (0..<n).map { _ in m.makeState() }
                    for k in 0..<n {
                        let warm = (0..<k).map { ($0 * 7 + k) % 25 }
                        if !warm.isEmpty { try batch[k].prefill(warm); try single[k].prefill(warm) }
                    }
                    var rng = SplitMix64(seed: UInt64(n))
                    var worst: Float = 0
                    for _ in 0..<12 {
                        let toks = (0..<n).map { _ in Int(rng.next() % 25) }
                        try m.stepBatch(states: batch, tokens: toks)
                        for k in 0..<n {
                            let want = try single[k].step(toks[k])
                            for j in 0..<m.outputSize { worst = max(worst, abs(batch[k].output[j] - want[j])) }
                            XCTAssertEqual(batch[k].position, single[k].position)
                        }
                    }
                    for k in 0..<n {
                        for (a, b) in zip(batch[k].vector, single[k].vector) { worst = max(worst, abs(a - b)) }
                    }
                    // Every type: each stream's products are its single step's products (the same int8
                    // activations and integer sums for quantized types, the single kernel for f32/f16).
                    XCTAssertEqual(worst, 0, "\(cells.map(\.cell)) \(dtype.name) n=\(n) at \(kernelLevelName)")
                }
            }
        }
    }

    /// A model whose matrices are split across the worker pool: the batched step multiplies them vector by
    /// vector on the pool, as single steps do, so it too gives their bits.
    func testThreadedStepBatchEqualsSingleSteps() throws {
        for dtype in [DType.f32, .f16, .q8, .q4, .q8r, .q8ri, .q4i] {
            let m = try model([.init(cell: .lstm)], hidden: 150, dtype: dtype, threads: 2)
            let batch = (0..<5).map { _ in m.makeState() }, single = (0..<5).map { _ in m.makeState() }
            for t in 0..<4 {
                let toks = (0..<5).map { ($0 * 5 + t * 3) % 25 }
                try m.stepBatch(states: batch, tokens: toks)
                for k in 0..<5 {
                    let want = Array(try single[k].step(toks[k]))
                    XCTAssertEqual(Array(UnsafeBufferPointer(start: batch[k].output, count: m.outputSize)).map(\.bitPattern),
                                   want.map(\.bitPattern), "\(dtype.name) step \(t) stream \(k)")
                }
            }
            for k in 0..<5 { XCTAssertEqual(batch[k].vector.map(\.bitPattern), single[k].vector.map(\.bitPattern)) }
        }
    }

    func testStepBatchRejectsBadInput() throws {
        let m = try model([.init(cell: .gru)], hidden: 8, dtype: .f32)
        let other = try model([.init(cell: .gru)], hidden: 8, dtype: .f32)
        let s = m.makeState()
        assertThrowsRecur(.invalidArgument, "2 states and 1 tokens") { try m.stepBatch(states: [s, m.makeState()], tokens: [1]) }
        assertThrowsRecur(.invalidArgument, "stream 1: the same state as stream 0") { try m.stepBatch(states: [s, s], tokens: [1, 2]) }
        assertThrowsRecur(.mismatch, "stream 1: the state belongs to another model") { try m.stepBatch(states: [s, other.makeState()], tokens: [1, 2]) }
        assertThrowsRecur(.outOfRange, "stream 1: token id 99 is outside the vocabulary") { try m.stepBatch(states: [s, m.makeState()], tokens: [1, 99]) }
        XCTAssertEqual(s.position, 0)
        try m.stepBatch(states: [], tokens: [])
    }

    /// Rows split across the worker pool are computed by the same kernels on the same quantized x:
    /// the outputs are bit for bit those of one thread, also when two streams step concurrently.
    func testThreadedStepEqualsSingleThread() throws {
        for dtype in [DType.f32, .f16, .q8, .q4, .q8r, .q8ri, .q4i] {
            // hidden 150: the LSTM's 600 × 150 recurrent matrix is ≥ 64 KiB in every type but q4 and q4i (56 KiB)
            let one = try model([.init(cell: .gru), .init(cell: .lstm)], hidden: 150, dtype: dtype, threads: 1)
            let two = try model([.init(cell: .gru), .init(cell: .lstm)], hidden: 150, dtype: dtype, threads: 3)
            XCTAssertNotNil(two.kernelPool)
            XCTAssertNil(one.kernelPool)
            XCTAssertEqual(two.recurrent[1].forward.recurrent.pool != nil, dtype != .q4 && dtype != .q4i)
            let toks = (0..<40).map { ($0 * 11 + 3) % 25 }
            let a = one.makeState()
            var want: [[Float]] = []
            for t in toks { want.append(Array(try a.step(t))) }
            // Two streams of the threaded model at once: one holds the pool, the other runs on its own thread.
            let results = UnsafeMutablePointer<[[Float]]>.allocate(capacity: 2)
            results.initialize(repeating: [], count: 2)
            defer { results.deinitialize(count: 2); results.deallocate() }
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                let s = two.makeState()
                var out: [[Float]] = []
                for t in toks { out.append(Array(try! s.step(t))) }
                results[i] = out
            }
            XCTAssertEqual(results[0], want, dtype.name)
            XCTAssertEqual(results[1], want, dtype.name)
        }
    }

    func testAutomaticThreads() throws {
        let small = try model([.init(cell: .gru)], hidden: 30, dtype: .f32, threads: 0)
        XCTAssertNil(small.kernelPool, "a small model uses one thread")
        if KernelPool.processors >= 2 {
            let big = try model([.init(cell: .gru)], hidden: 300, dtype: .f32, threads: 0)   // 900 × 300 f32 ≥ 1 MiB
            XCTAssertNotNil(big.kernelPool)
        }
    }

    /// Prefill of a two-layer quantized model: the upper layer's input projections are exact products of
    /// the decoded weights, so it matches stepping to within the int8 activation quantization of those
    /// products (f16: to rounding).
    func testQuantizedPrefillMatchesSteps() throws {
        for (dtype, tol) in [(DType.f16, Float(1e-4)), (.q8, 0.05), (.q4, 0.05), (.q8r, 0.05)] {
            let m = try model([.init(cell: .gru), .init(cell: .lstm)], hidden: 37, dtype: dtype)
            let toks = (0..<300).map { ($0 * 13 + 5) % 25 }
            let a = m.makeState(), b = m.makeState()
            let pre = Array(try a.prefill(toks))
            var last: [Float] = []
            for t in toks { last = Array(try b.step(t)) }
            let worst = zip(pre, last).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, tol, dtype.name)
            XCTAssertEqual(a.position, 300)
        }
    }
}
