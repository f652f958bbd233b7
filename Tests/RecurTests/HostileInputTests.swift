import Foundation
import XCTest
@testable import Recur

/// Untrusted inputs past the loader: saved states at the edge of their range, quantized weights whose
/// decoded values overflow or whose padding is not zero, files that change while open, stale temporaries.
final class HostileInputTests: XCTestCase {
    /// A saved state whose position is Int.max (the format allows it): stepping, prefill, the batched step
    /// and generation refuse to advance it, and leave the state as it was.
    func testPositionAtTheLimitIsRefusedNotTrapped() throws {
        let (model, _) = try makeModel(cells: [.init(cell: .gru)])
        let s = model.makeState()
        try s.prefill([1, 2, 3])
        var saved = s.save()
        // The position is the u64 at byte 24 of a saved state; it is not covered by the payload CRC.
        withUnsafeBytes(of: UInt64(Int.max).littleEndian) { for k in 0..<8 { saved[24 + k] = $0[k] } }
        let t = model.makeState()
        try t.restore(saved)
        XCTAssertEqual(t.position, Int.max)
        let vector = t.vector
        assertThrowsRecur(.outOfRange, "cannot advance") { try t.step(1) }
        assertThrowsRecur(.outOfRange, "cannot advance") { try t.prefill([1, 2]) }
        let other = model.makeState()
        assertThrowsRecur(.outOfRange, "cannot advance") { try model.stepBatch(states: [other, t], tokens: [1, 2]) }
        XCTAssertEqual(other.position, 0, "a refused batch changes no state")
        var sampler = try Sampler(SamplerParams(temperature: 0))
        assertThrowsRecur(.outOfRange, "cannot advance") {
            try model.generate(prompt: "", state: t, maxTokens: 3, sampler: &sampler) { _ in true }
        }
        XCTAssertEqual(t.position, Int.max)
        XCTAssertEqual(t.vector, vector, "refused calls leave the state unchanged")
        // One step short of the limit still works, and the next is refused.
        withUnsafeBytes(of: UInt64(Int.max - 1).littleEndian) { for k in 0..<8 { saved[24 + k] = $0[k] } }
        try t.restore(saved)
        try t.step(1)
        XCTAssertEqual(t.position, Int.max)
        assertThrowsRecur(.outOfRange, "cannot advance") { try t.step(1) }
        t.reset()
        try t.step(1)
        XCTAssertEqual(t.position, 1)
    }

    /// A model whose tensor `name` is stored as `dtype`, with its bytes changed by `edit`.
    func quantizedModel(_ name: String, _ dtype: DType, edit: (inout [UInt8], Int) -> Void) throws -> [UInt8] {
        let (_, b) = try makeModel(cells: [.init(cell: .gru)])
        let w = b.writer(dtypes: [name: dtype])
        var out = RecurWriter()
        for (k, v) in w.metadata { out.set(k, v) }
        for t in w.tensors {
            var data = t.data
            if t.name == name { edit(&data, t.shape.last!) }
            out.addTensor(t.name, dtype: t.dtype, shape: t.shape, bytes: data)
        }
        return out.serialize()
    }

    func load(_ bytes: [UInt8]) throws -> Model {
        try bytes.withUnsafeBytes { try Model(bytes: $0) }
    }

    /// NaN and infinities in f32 and f16 weights are refused with the first one's text, wherever they
    /// are (the scan reads chunks of 4096 values: the first and last value, both sides of a chunk
    /// boundary); the same files load when non-finite weights are allowed.
    func testNonFiniteWeightsAreFoundAnywhere() throws {
        let name = "layer.1.recurrent_kernel"   // 192 × 64 = 12,288 values
        func model(_ dtype: DType, _ bad: [(index: Int, value: Float)]) throws -> [UInt8] {
            let (_, b) = try makeModel(cells: [.init(cell: .gru)], hidden: 64)
            let w = b.writer(dtypes: [name: dtype])
            var out = RecurWriter()
            for (k, v) in w.metadata { out.set(k, v) }
            for t in w.tensors {
                var data = t.data
                if t.name == name {
                    XCTAssertEqual(t.shape, [192, 64])
                    for (i, v) in bad {
                        if dtype == .f32 {
                            withUnsafeBytes(of: v.bitPattern.littleEndian) { for k in 0..<4 { data[4 * i + k] = $0[k] } }
                        } else {
                            let h: UInt16 = v.isNaN ? 0x7E00 : (v > 0 ? 0x7C00 : 0xFC00)
                            data[2 * i] = UInt8(h & 0xFF); data[2 * i + 1] = UInt8(h >> 8)
                        }
                    }
                }
                out.addTensor(t.name, dtype: t.dtype, shape: t.shape, bytes: data)
            }
            return out.serialize()
        }
        var lenient = Model.Options()
        lenient.rejectNonFinite = false
        for dtype in [DType.f32, .f16] {
            XCTAssertNoThrow(try load(try model(dtype, [])), "\(dtype)")
            for i in [0, 1, 4095, 4096, 8191, 8192, 12_287] {
                for (v, text) in [(Float.nan, "nan"), (.infinity, "inf"), (-.infinity, "-inf")] {
                    let bytes = try model(dtype, [(i, v)])
                    assertThrowsRecur(.numerical, "tensor '\(name)' holds a non-finite value (\(text)); the file is unusable") {
                        _ = try self.load(bytes)
                    }
                    XCTAssertNoThrow(try bytes.withUnsafeBytes { try Model(bytes: $0, options: lenient) }, "\(dtype) \(i)")
                }
            }
            // The first one is named.
            assertThrowsRecur(.numerical, "non-finite value (-inf)") { _ = try self.load(try model(dtype, [(5000, -.infinity), (9000, .nan)])) }
            assertThrowsRecur(.numerical, "non-finite value (inf)") { _ = try self.load(try model(dtype, [(4100, .infinity), (4101, .nan)])) }
        }
    }

    func store(_ v: Float, _ data: inout [UInt8], at offset: Int) {
        withUnsafeBytes(of: v.bitPattern.littleEndian) { for k in 0..<4 { data[offset + k] = $0[k] } }
    }

    /// Scales that are finite but whose decoded weights are not (1e38 · 127 overflows f32) are refused,
    /// as are q8/q8r codes of −128 and non-zero padding; the unmodified files load.
    func testQuantizedWeightsAreCheckedAtLoad() throws {
        // layer.1.kernel is 39 × 7: one block per row, 25 values of padding.
        let name = "layer.1.kernel"
        for dtype in [DType.q8, .q4, .q8r] {
            XCTAssertNoThrow(try load(try quantizedModel(name, dtype) { _, _ in }), "\(dtype)")
            let big = try quantizedModel(name, dtype) { d, _ in store(1e38, &d, at: 0) }
            assertThrowsRecur(.numerical, "not finite") { _ = try self.load(big) }
            var lenient = Model.Options()
            lenient.rejectNonFinite = false
            XCTAssertNoThrow(try big.withUnsafeBytes { try Model(bytes: $0, options: lenient) }, "\(dtype)")
            let scales = 4    // bytes of scales before row 0's codes: one block (q8, q4) or one row (q8r)
            // A padding value past column 7 of row 0.
            let padded = try quantizedModel(name, dtype) { d, cols in
                if dtype == .q4 {
                    d[scales + 8] = (d[scales + 8] & 0x0F) | 0x30      // element 24's high nibble: 3, not 8
                } else {
                    d[scales + cols + 3] = 1
                }
            }
            assertThrowsRecur(.format, "padding") { _ = try self.load(padded) }
            if dtype != .q4 {
                let low = try quantizedModel(name, dtype) { d, _ in d[scales + 2] = 0x80 }
                assertThrowsRecur(.format, "-128") { _ = try self.load(low) }
            }
        }
    }

    /// q8ri's own rules: row sums equal to the sums of the codes, padding rows (past the last row of the
    /// last group of 16) all zero, and q8r's scale, code and padding rules.
    func testInterleavedWeightsAreCheckedAtLoad() throws {
        let name = "layer.1.kernel"   // 39 × 7: three groups of 16 rows (9 padding rows), one block per row
        let gb = 128 + 16 * 32
        XCTAssertNoThrow(try load(try quantizedModel(name, .q8ri) { _, _ in }))
        let big = try quantizedModel(name, .q8ri) { d, _ in store(1e38, &d, at: 4) }
        assertThrowsRecur(.numerical, "row 1 has a scale whose weights are not finite") { _ = try self.load(big) }
        let sum = try quantizedModel(name, .q8ri) { d, _ in d[64 + 8] ^= 1 }      // row 2's sum
        assertThrowsRecur(.format, "row 2 has a row sum that is not the sum of its codes") { _ = try self.load(sum) }
        let low = try quantizedModel(name, .q8ri) { d, _ in d[128 + 4 * 3] = 0x80 } // row 3, column 0
        assertThrowsRecur(.format, "-128") { _ = try self.load(low) }
        let pad = try quantizedModel(name, .q8ri) { d, _ in d[128 + 64 + 4 * 5 + 3] = 1 } // row 5, column 7
        assertThrowsRecur(.format, "padding past the last column") { _ = try self.load(pad) }
        let row = try quantizedModel(name, .q8ri) { d, _ in d[2 * gb + 4 * 10] = 1 }   // row 42's scale
        assertThrowsRecur(.format, "a padding row") { _ = try self.load(row) }
    }

    /// q4i's rules: q4's (finite scales, nibble 8 past the last column) per block, and padding rows all zero.
    func testInterleavedFourBitWeightsAreCheckedAtLoad() throws {
        let name = "layer.1.kernel"   // 39 × 7: three groups of 16 rows (9 padding rows), one block
        XCTAssertNoThrow(try load(try quantizedModel(name, .q4i) { _, _ in }))
        let big = try quantizedModel(name, .q4i) { d, _ in store(1e38, &d, at: 4 * 3) }      // row 3's scale
        assertThrowsRecur(.numerical, "row 3 has a scale whose weights are not finite") { _ = try self.load(big) }
        let pad = try quantizedModel(name, .q4i) { d, _ in d[64 + 64 * 0 + 4 * 2 + 3] = 0x38 }  // row 2, column 7
        assertThrowsRecur(.format, "row 2 has padding past the last column") { _ = try self.load(pad) }
        let row = try quantizedModel(name, .q4i) { d, _ in d[2 * 320 + 64 + 4 * 10] = 0x87 }    // row 42, column 0
        assertThrowsRecur(.format, "a padding row") { _ = try self.load(row) }
    }

    /// A model read into memory (mapFile = false) keeps working when its file is truncated or overwritten
    /// by someone else; the default mapping is what the documentation warns about.
    func testUnmappedModelSurvivesChangesToItsFile() throws {
        let (_, b) = try makeModel(cells: [.init(cell: .lstm)])
        let bytes = b.writer().serialize()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("recur-nommap-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.recur").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var o = Model.Options()
        o.mapFile = false
        let model = try Model(path: path, options: o)
        let first = model.makeState()
        let expected = Array(try first.prefill([1, 2, 3]))
        // Overwritten in place with NaN bytes, then truncated to nothing.
        let fd = open(path, O_WRONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let junk = [UInt8](repeating: 0xFF, count: bytes.count)
        XCTAssertEqual(junk.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }, bytes.count)
        XCTAssertEqual(ftruncate(fd, 0), 0)
        close(fd)
        let second = model.makeState()
        XCTAssertEqual(Array(try second.prefill([1, 2, 3])), expected)
        XCTAssertTrue(expected.allSatisfy { $0.isFinite })
        // Reading fails cleanly for a file that is gone or empty.
        assertThrowsRecur(.format, "empty") { _ = try Model(path: path, options: o) }
        unlink(path)
        assertThrowsRecur(.io, "cannot open") { _ = try Model(path: path, options: o) }
    }

    /// A writer killed before its rename leaves `path.tmp-PID-N`; the next write removes those of dead
    /// processes once they are a minute old, and leaves live writers' and fresh ones alone.
    func testStaleTemporariesOfDeadWritersAreRemoved() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("recur-stale-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("model.recur").path
        // A PID that no longer exists: a child that has exited and been reaped.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let dead = child.processIdentifier
        let old = Date(timeIntervalSinceNow: -3600)
        func make(_ name: String, age: Date?) throws -> String {
            let p = dir.appendingPathComponent(name).path
            XCTAssertTrue(FileManager.default.createFile(atPath: p, contents: Data([1, 2, 3])))
            if let age { try FileManager.default.setAttributes([.modificationDate: age], ofItemAtPath: p) }
            return p
        }
        let stale = try make("model.recur.tmp-\(dead)-17", age: old)
        let fresh = try make("model.recur.tmp-\(dead)-18", age: nil)
        let live = try make("model.recur.tmp-\(getpid() == 1 ? 2 : 1)-19", age: old)    // PID 1 is alive
        let otherFile = try make("other.recur.tmp-\(dead)-20", age: old)
        let notOurs = try make("model.recur.tmp-notapid", age: old)
        try AtomicFile.write([9, 9], to: path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "a dead writer's old temporary is removed")
        for p in [fresh, live, otherFile, notOurs] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: p), "\(p) is kept")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data([9, 9]))
    }

    /// RECUR_THREADS / RECUR_KERNELS values that cannot be honoured are refused at load (the check reads
    /// the environment once per process, so it is exercised through the CLI and C tests); explicit thread
    /// counts out of range are refused here.
    func testThreadCountsOutOfRangeAreRefused() throws {
        let (_, b) = try makeModel(cells: [.init(cell: .gru)])
        let bytes = b.writer().serialize()
        for n in [-1, 65, 1000] {
            var o = Model.Options()
            o.threads = n
            assertThrowsRecur(.invalidArgument, "threads must be") { _ = try bytes.withUnsafeBytes { try Model(bytes: $0, options: o) } }
        }
        var o = Model.Options()
        o.threads = 2
        let m = try bytes.withUnsafeBytes { try Model(bytes: $0, options: o) }
        XCTAssertEqual(m.threads, 1, "matrices too small to split run on one thread, and say so")
    }

    /// An array value of more items than any vocabulary or label list (2²¹) is refused while the metadata
    /// is read, instead of building millions of strings (a 64 MB file of empty strings took 35 s).
    func testHugeMetadataArraysAreRefused() throws {
        let (_, b) = try makeModel(cells: [.init(cell: .gru)])
        var w = b.writer()
        w.set("junk.ignored", .strings([String](repeating: "", count: RecurFormat.maxArrayItems + 1)))
        let bytes = w.serialize()
        assertThrowsRecur(.format, "over the cap of \(RecurFormat.maxArrayItems)") {
            _ = try bytes.withUnsafeBytes { try Model(bytes: $0) }
        }
        var ok = b.writer()
        ok.set("junk.ignored", .strings([String](repeating: "", count: 1000)))
        let fine = ok.serialize()
        XCTAssertNoThrow(try fine.withUnsafeBytes { try Model(bytes: $0) })
    }
}
