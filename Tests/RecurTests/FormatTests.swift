import CRecurKernels
import XCTest
@testable import Recur

final class FormatTests: XCTestCase {
    func sample() -> RecurWriter {
        var w = RecurWriter()
        w.set("a.int", .int(-42))
        w.set("a.float", .float(2.5))
        w.set("a.bool", .bool(true))
        w.set("a.string", .string("héllo ✓"))
        w.set("a.strings", .strings(["x", "", "yz"]))
        w.set("a.ints", .ints([1, -2, 3]))
        w.set("a.floats", .floats([0.5, -1e300]))
        w.addTensor("t.one", shape: [3, 5], values: (0..<15).map { Float($0) * 0.5 })
        w.addTensor("t.two", shape: [7], values: (0..<7).map { -Float($0) })
        w.addTensor("t.half", dtype: .f16, shape: [2, 3], bytes: quantizeMatrix([1, 2, 3, 4, 5, 6], rows: 2, cols: 3, to: .f16))
        return w
    }

    func parse(_ bytes: [UInt8], verify: Bool = true) throws -> RecurFile {
        try RecurFile(storage: try FileStorage.copying(bytes), options: .init(verifyChecksum: verify), name: "test")
    }

    func testRoundTrip() throws {
        let bytes = sample().serialize()
        let f = try parse(bytes)
        XCTAssertEqual(f.versionMajor, 1, "no q8r tensor: written as 1.0")
        XCTAssertEqual(f.value("a.int"), .int(-42))
        XCTAssertEqual(f.value("a.float"), .float(2.5))
        XCTAssertEqual(f.value("a.bool"), .bool(true))
        XCTAssertEqual(f.value("a.string"), .string("héllo ✓"))
        XCTAssertEqual(f.value("a.strings"), .strings(["x", "", "yz"]))
        XCTAssertEqual(f.value("a.ints"), .ints([1, -2, 3]))
        XCTAssertEqual(f.value("a.floats"), .floats([0.5, -1e300]))
        XCTAssertEqual(f.metadata.map(\.key), ["a.int", "a.float", "a.bool", "a.string", "a.strings", "a.ints", "a.floats"])
        let t = f.tensor("t.one")!
        XCTAssertEqual(t.shape, [3, 5])
        XCTAssertEqual(t.dtype, .f32)
        XCTAssertEqual((f.dataOffset + t.offset) % 64, 0)
        XCTAssertEqual(Array(f.bytes(of: t).bindMemory(to: Float.self)), (0..<15).map { Float($0) * 0.5 })
        let two = f.tensor("t.two")!
        XCTAssertEqual((f.dataOffset + two.offset) % 64, 0)
        XCTAssertEqual(Array(f.bytes(of: two).bindMemory(to: Float.self)), (0..<7).map { -Float($0) })
        XCTAssertEqual(f.tensor("t.half")!.byteLength, 12)
        // Serializing again gives the same bytes.
        XCTAssertEqual(sample().serialize(), bytes)
    }

    /// The lowest version that describes the file: 2.0 for a q8r tensor or `encoder.reverse_source = true`
    /// (which a 1.x reader would ignore, misreading the model), 1.0 otherwise.
    func testWritesTheLowestVersion() throws {
        var w = sample()
        w.set("encoder.reverse_source", .bool(false))
        XCTAssertEqual(try parse(w.serialize()).versionMajor, 1)
        w.set("encoder.reverse_source", .bool(true))
        XCTAssertEqual(try parse(w.serialize()).versionMajor, 2)
        var q = sample()
        q.addTensor("t.q8r", dtype: .q8r, shape: [2, 3], bytes: quantizeMatrix([1, 2, 3, 4, 5, 6], rows: 2, cols: 3, to: .q8r))
        XCTAssertEqual(try parse(q.serialize()).versionMajor, 2)
    }

    func testFileRoundTripThroughMmap() throws {
        let path = NSTemporaryDirectory() + "/recur-format-\(getpid()).recur"
        defer { unlink(path) }
        try sample().write(to: path)
        let f = try RecurFile.open(path: path)
        XCTAssertEqual(f.tensors.count, 3)
        XCTAssertEqual(f.storage.bytes.count, sample().serialize().count)
    }

    func testChecksumMatchesZlib() throws {
        // The stored CRC is zlib's crc32 of the file with the checksum field zeroed; check the CRC routine
        // against the standard check value of CRC-32/ISO-HDLC ("123456789" → 0xCBF43926).
        XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes { CRC32.checksum($0) }, 0xCBF4_3926)
    }

    func testCRC32KnownValuesAndIncrementalUpdates() throws {
        func crc(_ b: [UInt8]) -> UInt32 { b.withUnsafeBytes { CRC32.checksum($0) } }
        XCTAssertEqual(crc([]), 0)
        XCTAssertEqual(CRC32().value, 0)
        XCTAssertEqual(crc(Array("a".utf8)), 0xE8B7_BE43)
        XCTAssertEqual(crc(Array("123456789".utf8)), 0xCBF4_3926)
        // 1,000,003 bytes, byte i = (7·i + 13·(i >> 8)) mod 256. The expected value was computed with Python:
        //   zlib.crc32(bytes(((i*7)+(i>>8)*13) & 0xFF for i in range(1_000_003)))  →  0xc6bb6f8b
        let n = 1_000_003
        let big = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ ($0 >> 8) &* 13) }
        XCTAssertEqual(crc(big), 0xC6BB_6F8B)
        // Updating in pieces gives the one-shot value, whatever the split (empty pieces, odd sizes, the
        // sizes around the implementation's block lengths).
        for splits in [[0], [1], [n - 1], [n], [3, 64], [7, 8, 9, 4096, 100_000], [15, 16, 17, 255, 256, 257]] {
            var c = CRC32()
            var at = 0
            big.withUnsafeBytes { b in
                for s in splits {
                    let end = min(n, at + s)
                    c.update(UnsafeRawBufferPointer(rebasing: b[at..<end]))
                    at = end
                }
                c.update(UnsafeRawBufferPointer(rebasing: b[at..<n]))
            }
            XCTAssertEqual(c.value, 0xC6BB_6F8B, "split \(splits)")
        }
        var c = CRC32()
        c.update(Array("1234".utf8))
        c.update([])
        c.update(Array("56789".utf8))
        XCTAssertEqual(c.value, 0xCBF4_3926)
    }

    func testRejectsTruncatedFiles() throws {
        let bytes = sample().serialize()
        for n in [0, 1, 7, 8, 40, 63, 64, 100, bytes.count - 1] {
            XCTAssertThrowsError(try parse(Array(bytes.prefix(n)))) { e in
                let r = e as! RecurError
                XCTAssertEqual(r.code, .format, "\(n): \(r.message)")
                if n >= 8 { XCTAssertTrue(r.message.contains("truncated") || r.message.contains("empty"), r.message) }
            }
        }
    }

    func testRejectsBadMagic() throws {
        var bytes = sample().serialize()
        bytes[1] = UInt8(ascii: "X")
        assertThrowsRecur(.format, "bad magic") { _ = try parse(bytes) }
        assertThrowsRecur(.format, "bad magic") { _ = try parse(Array("hello world, this is text".utf8)) }
    }

    func testRejectsUnknownMajorVersion() throws {
        var bytes = sample().serialize()
        bytes[8] = 7
        assertThrowsRecur(.unsupportedVersion, "format version 7.0 is not supported; this library reads version 1") { _ = try parse(bytes) }
    }

    func testRejectsChecksumMismatch() throws {
        var bytes = sample().serialize()
        bytes[bytes.count - 3] ^= 1
        assertThrowsRecur(.checksum, "checksum mismatch") { _ = try parse(bytes) }
        // Skipping verification accepts the (structurally valid) file.
        XCTAssertNoThrow(try parse(bytes, verify: false))
    }

    /// Rewrites a header or directory field and recomputes the checksum, so the structural check is what fails.
    func patched(_ edit: (inout [UInt8], RecurFile) -> Void) throws -> [UInt8] {
        var bytes = sample().serialize()
        let f = try parse(bytes)
        edit(&bytes, f)
        for i in 56..<60 { bytes[i] = 0 }
        let crc = bytes.withUnsafeBytes { CRC32.checksum($0) }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[56 + i] = $0[i] } }
        return bytes
    }

    func put64(_ bytes: inout [UInt8], _ at: Int, _ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { for i in 0..<8 { bytes[at + i] = $0[i] } }
    }

    /// Byte offset, inside the directory, of tensor `name`'s fields.
    func directoryEntry(_ bytes: [UInt8], _ f: RecurFile, _ name: String) -> (dims: Int, offset: Int, length: Int) {
        var p = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 40, as: UInt64.self) })
        for t in f.tensors {
            let start = p + 2 + t.name.utf8.count + 4
            let off = start + 8 * t.shape.count
            if t.name == name { return (start, off, off + 8) }
            p = off + 16
        }
        fatalError("no tensor \(name)")
    }

    func testRejectsTensorPastTheEnd() throws {
        let bytes = try patched { b, f in
            let e = directoryEntry(b, f, "t.two")
            put64(&b, e.offset, 1 << 20)
        }
        assertThrowsRecur(.format, "extends past the end of the data section") { _ = try parse(bytes) }
    }

    func testRejectsWrongByteLength() throws {
        let bytes = try patched { b, f in
            let e = directoryEntry(b, f, "t.one")
            put64(&b, e.length, 61)
        }
        assertThrowsRecur(.format, "has byte length 61") { _ = try parse(bytes) }
    }

    func testRejectsShapeWhoseSizeOverflows() throws {
        let bytes = try patched { b, f in
            let e = directoryEntry(b, f, "t.one")
            put64(&b, e.dims, UInt64(1) << 31)
            put64(&b, e.dims + 8, UInt64(1) << 31)
        }
        // 2^31 · 2^31 · 4 bytes overflows no Int64 but exceeds the data section; 2^31·2^31·2^31 would overflow.
        XCTAssertThrowsError(try parse(bytes)) { e in
            let r = e as! RecurError
            XCTAssertEqual(r.code, .format)
            XCTAssertTrue(r.message.contains("byte length") || r.message.contains("overflows"), r.message)
        }
        XCTAssertNil(DType.f32.byteCount(shape: [1 << 31, 1 << 31, 1 << 31]))
    }

    func testRejectsOffsetsOutOfOrder() throws {
        let bytes = try patched { b, _ in put64(&b, 40, 1 << 40) }
        assertThrowsRecur(.format, "section offsets") { _ = try parse(bytes) }
    }

    func testRejectsHugeCounts() throws {
        let bytes = try patched { b, _ in
            withUnsafeBytes(of: UInt32(1 << 20).littleEndian) { for i in 0..<4 { b[24 + i] = $0[i] } }
        }
        assertThrowsRecur(.format, "cannot fit") { _ = try parse(bytes) }
    }

    func testFailedWriteLeavesOldFileIntact() throws {
        let dir = NSTemporaryDirectory() + "/recur-atomic-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.recur"
        try sample().write(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        // A write into a folder that does not exist fails and touches nothing else.
        XCTAssertThrowsError(try sample().write(to: dir + "/missing/m.recur"))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["m.recur"])
    }
}

/// The model loader's checks of the declared architecture against the tensors.
final class ModelValidationTests: XCTestCase {
    func build(_ edit: (inout ModelBuilder) -> Void) throws -> [UInt8] {
        let v = try Vocabulary(kind: .char, pieces: ["a", "b", "c", "d"])
        var b = ModelBuilder(architecture: .generator(vocabulary: 4, embedding: 3, cells: [.init(cell: .gru)], hidden: 5), vocabulary: v)
        b.randomize(seed: 1)
        edit(&b)
        return b.writer().serialize()
    }

    func load(_ bytes: [UInt8]) throws -> Model {
        try bytes.withUnsafeBytes { try Model(bytes: $0) }
    }

    func testMissingTensor() throws {
        let bytes = try build { b in b.tensors.removeAll { $0.name == "layer.1.recurrent_kernel" } }
        assertThrowsRecur(.model, "missing tensor 'layer.1.recurrent_kernel' (expected shape [15, 5])") { _ = try load(bytes) }
    }

    func testWrongShape() throws {
        let bytes = try build { b in b.set("layer.2.kernel", shape: [4, 6], values: [Float](repeating: 0, count: 24)) }
        assertThrowsRecur(.model, "tensor 'layer.2.kernel' has shape [4, 6], expected [4, 5]") { _ = try load(bytes) }
    }

    func testUnusedTensor() throws {
        let bytes = try build { b in b.set("layer.9.stray", shape: [2], values: [1, 2]) }
        assertThrowsRecur(.model, "not used") { _ = try load(bytes) }
    }

    func testNonFiniteWeights() throws {
        let bytes = try build { b in
            var v = b.tensors.first { $0.name == "layer.1.kernel" }!.values
            v[3] = .nan
            b.set("layer.1.kernel", shape: [15, 3], values: v)
        }
        assertThrowsRecur(.numerical, "non-finite") { _ = try load(bytes) }
    }

    func testLayerSizesMustChain() throws {
        let bytes = try build { b in
            b.architecture.layers[2] = .dense(inputSize: 6, units: 4, activation: .linear)
        }
        assertThrowsRecur(.model, "expects input size 6 but the previous layer gives 5") { _ = try load(bytes) }
    }

    func testVocabularyMustMatchHead() throws {
        let bytes = try build { b in b.vocabulary = try! Vocabulary(kind: .char, pieces: ["a", "b", "c"]) }
        assertThrowsRecur(.model, "rows but the vocabulary has 3") { _ = try load(bytes) }
    }

    func testUnknownActivation() throws {
        let bytes = try build { b in b.metadata.append(("layer.1.activation", .string("swish"))) }
        assertThrowsRecur(.model, "unknown activation 'swish'") { _ = try load(bytes) }
    }
}

/// The kernels' dtype table (recur_kernels.h) against the layouts of FORMAT.md §7, written out here.
final class DTypeTableTests: XCTestCase {
    func testTableMatchesTheFormat() {
        let names: [DType: String] = [.f32: "f32", .f16: "f16", .q8: "q8", .q4: "q4", .q8r: "q8r", .q8ri: "q8ri", .q4i: "q4i"]
        for t in DType.allCases {
            XCTAssertEqual(t.name, names[t])
            for cols in [0, 1, 7, 31, 32, 33, 64, 100, 1000] {
                let nb = (cols + 31) / 32
                let expected: Int
                switch t {
                case .f32: expected = 4 * cols
                case .f16: expected = 2 * cols
                case .q8: expected = 36 * nb
                case .q4, .q4i: expected = 20 * nb
                case .q8r: expected = 4 + 32 * nb
                case .q8ri: expected = 8 + 32 * nb   // scale and row sum in the group's header, the codes
                }
                XCTAssertEqual(t.rowBytes(cols), expected, "\(t) \(cols)")
                // Interleaved rows come in groups of 16 (the last padded with zero rows).
                for rows in [1, 15, 16, 17, 40] {
                    let stored = t.rowGroup == 16 ? (rows + 15) / 16 * 16 : rows
                    XCTAssertEqual(t.byteCount(shape: [rows, cols]), stored * expected, "\(t) \(rows)×\(cols)")
                }
            }
            XCTAssertNil(t.rowBytes(-1))
            if t.blockSize == 1 { XCTAssertNil(t.rowBytes(Int.max), "overflow is nil, not a wrapped size") }
            XCTAssertEqual(t.blockSize, t == .f32 || t == .f16 ? 1 : 32)
            XCTAssertEqual(t.quantizesActivations, t != .f32 && t != .f16)
            XCTAssertEqual(t.quantizesPerVector, t == .q8r || t == .q8ri)
            XCTAssertEqual(t.formatMajor, t == .q8r ? 2 : t == .q8ri || t == .q4i ? 4 : 1)
            XCTAssertEqual(t.rowGroup, t == .q8ri || t == .q4i ? 16 : 1)
        }
        XCTAssertNil(rk_dtype_of(7))
        XCTAssertNil(rk_dtype_of(-1))
        XCTAssertEqual(rk_row_bytes(9, 10), -1)
    }
}
