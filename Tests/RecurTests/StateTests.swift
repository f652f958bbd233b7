import XCTest
@testable import Recur

final class StateTests: XCTestCase {
    let cells: [[RecurrentSpec.Template]] = [
        [.init(cell: .gru)], [.init(cell: .gru, resetAfter: false)], [.init(cell: .lstm)],
        [.init(cell: .lstm, peephole: true)], [.init(cell: .rnn)],
        [.init(cell: .gru), .init(cell: .lstm)], [.init(cell: .lstm), .init(cell: .gru, resetAfter: false), .init(cell: .rnn)],
    ]

    /// Prefill (sgemm input projections) gives the state and logits of stepping token by token.
    func testPrefillEqualsStepping() throws {
        for c in cells {
            for budget in [64 << 20, 0] {
                var o = Model.Options()
                o.inputTableBudget = budget
                let (model, _) = try makeModel(cells: c, options: o)
                var rng = SplitMix64(seed: 3)
                // 300 tokens: crosses the 256-token chunk boundary.
                let tokens = (0..<300).map { _ in Int(rng.next() % 20) }
                let a = model.makeState(), b = model.makeState()
                var stepped: [Float] = []
                for t in tokens { stepped = Array(try a.step(t)) }
                let pre = Array(try b.prefill(tokens))
                let d = zip(stepped, pre).map { abs($0 - $1) }.max()!
                let ds = zip(a.vector, b.vector).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(d, 1e-4, "\(c.map(\.cell)) budget \(budget)")
                XCTAssertLessThan(ds, 1e-5, "\(c.map(\.cell)) budget \(budget)")
                if c.count == 1 && budget > 0 {
                    // One layer reading the precomputed table: the very same arithmetic, bit for bit.
                    XCTAssertEqual(stepped, pre)
                    XCTAssertEqual(a.vector, b.vector)
                }
                XCTAssertEqual(a.position, b.position)
            }
        }
    }

    func testSaveRestoreContinuesIdentically() throws {
        let (model, _) = try makeModel(cells: [.init(cell: .lstm), .init(cell: .gru)])
        let s = model.makeState()
        try s.prefill([1, 2, 3, 4, 5])
        let saved = s.save()
        XCTAssertEqual(saved.count, s.savedSize)
        let after1 = Array(try s.step(7))
        let t = model.makeState()
        try t.restore(saved)
        XCTAssertEqual(t.position, 5)
        let after2 = Array(try t.step(7))
        XCTAssertEqual(after1, after2)
        // fork and copy
        let f = t.fork()
        XCTAssertEqual(Array(try f.step(2)), Array(try t.step(2)))
        t.reset()
        XCTAssertEqual(t.position, 0)
        XCTAssertTrue(t.vector.allSatisfy { $0 == 0 })
    }

    func testRestoreRejectsOtherModelAndCorruption() throws {
        let (m1, _) = try makeModel(cells: [.init(cell: .gru)], seed: 1)
        let (m2, _) = try makeModel(cells: [.init(cell: .gru)], seed: 2)
        let s1 = m1.makeState()
        try s1.step(3)
        let saved = s1.save()
        let s2 = m2.makeState()
        let before = s2.vector
        assertThrowsRecur(.mismatch, "another model") { try s2.restore(saved) }
        XCTAssertEqual(s2.vector, before, "a failed restore leaves the state unchanged")
        var bad = saved
        bad[bad.count - 1] ^= 0x40
        assertThrowsRecur(.checksum, "checksum") { try m1.makeState().restore(bad) }
        assertThrowsRecur(.format, "truncated") { try m1.makeState().restore(Array(saved.prefix(20))) }
        assertThrowsRecur(.format, "truncated") { try m1.makeState().restore(Array(saved.dropLast(4))) }
        var magic = saved
        magic[0] = 0
        assertThrowsRecur(.format, "bad magic") { try m1.makeState().restore(magic) }
        var version = saved
        version[8] = 9
        assertThrowsRecur(.unsupportedVersion, "version 9") { try m1.makeState().restore(version) }
    }

    func testTokenOutOfRange() throws {
        let (model, _) = try makeModel(cells: [.init(cell: .gru)])
        let s = model.makeState()
        assertThrowsRecur(.outOfRange, "token id 20") { try s.step(20) }
        assertThrowsRecur(.outOfRange, "token id -1") { try s.step(-1) }
        assertThrowsRecur(.outOfRange, "token id 99") { try s.prefill([1, 99]) }
        assertThrowsRecur(.invalidArgument, "at least one token") { try s.prefill([]) }
        XCTAssertEqual(s.position, 0, "failed calls consume nothing")
    }

    func testModelSharedAcrossThreads() throws {
        let (model, _) = try makeModel(cells: [.init(cell: .gru), .init(cell: .lstm)], hidden: 31)
        let seqs = (0..<8).map { k in (0..<200).map { ($0 * 7 + k * 3) % 20 } }
        func run(_ s: [Int]) -> [Float] {
            let st = model.makeState()
            var out: [Float] = []
            for t in s { out = Array(try! st.step(t)) }
            return out
        }
        let serial = seqs.map(run)
        var parallel = [[Float]](repeating: [], count: 8)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let r = run(seqs[i])
            lock.lock(); parallel[i] = r; lock.unlock()
        }
        XCTAssertEqual(serial, parallel)
    }
}
