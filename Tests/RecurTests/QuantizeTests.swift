import XCTest
@testable import Recur

/// `Quantizer` (recur quantize): the default policy, overrides, metadata, and the accuracy of the
/// converted model against a Double-precision reference that uses the same decoded weights.
final class QuantizeTests: XCTestCase {
    func builder(_ cells: [RecurrentSpec.Template], hidden: Int = 40, embedding: Int = 24, vocab: Int = 30) throws -> ModelBuilder {
        let v = try Vocabulary(kind: .char, pieces: (0..<vocab).map { String(UnicodeScalar(UInt32(0x41 + $0))!) })
        let arch = Architecture.generator(vocabulary: vocab, embedding: embedding, cells: cells, hidden: hidden)
        var b = ModelBuilder(architecture: arch, vocabulary: v)
        b.randomize(seed: 5, scale: 1)
        b.metadata.append(("general.name", .string("quantize-test")))
        return b
    }

    func file(_ b: ModelBuilder) throws -> RecurFile {
        let bytes = b.writer().serialize()
        return try bytes.withUnsafeBytes { try RecurFile(storage: try FileStorage(copying: $0)) }
    }

    func load(_ w: RecurWriter) throws -> Model {
        let bytes = w.serialize()
        return try bytes.withUnsafeBytes { try Model(bytes: $0) }
    }

    /// The builder with every tensor replaced by its decoded value in the converted file.
    func decoded(_ b: ModelBuilder, _ w: RecurWriter) -> ModelBuilder {
        var d = b
        for t in w.tensors {
            let cols = t.shape.last!, rows = t.shape.reduce(1, *) / cols
            var values = [Float](repeating: 0, count: rows * cols)
            t.data.withUnsafeBytes { raw in
                let m = Matrix(rows: rows, cols: cols, dtype: t.dtype, data: raw.baseAddress!)
                values.withUnsafeMutableBufferPointer { out in
                    for r in 0..<rows { referenceDecodeRow(m, r, into: out.baseAddress! + r * cols) }
                }
            }
            d.set(t.name, shape: t.shape, values: values)
        }
        return d
    }

    func testDefaultPolicy() throws {
        let b = try builder([.init(cell: .gru), .init(cell: .lstm, peephole: true)])
        let f = try file(b)
        for (target, big, edge) in [(DType.f16, DType.f16, DType.f16), (.q8, .q8, .q8), (.q4, .q4, .q8), (.q8r, .q8r, .q8r),
                                    (.q8ri, .q8ri, .q8ri), (.q4i, .q4i, .q8ri)] {
            let (w, entries) = try Quantizer.quantize(f, to: target)
            let types = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0.to) })
            XCTAssertEqual(types["layer.0.embeddings"], edge)
            XCTAssertEqual(types["layer.3.kernel"], edge, "output layer")
            for n in ["layer.1.kernel", "layer.1.recurrent_kernel", "layer.2.kernel", "layer.2.recurrent_kernel"] {
                XCTAssertEqual(types[n], big, n)
            }
            for n in ["layer.1.bias", "layer.1.recurrent_bias", "layer.2.bias", "layer.2.peephole", "layer.3.bias"] {
                XCTAssertEqual(types[n], .f32, n)
            }
            XCTAssertEqual(w.metadata.first { $0.key == "general.quantization" }?.value, .string(target.name))
            XCTAssertEqual(w.metadata.first { $0.key == "general.name" }?.value, .string("quantize-test"))
            for (k, v) in f.metadata { XCTAssertEqual(w.metadata.first { $0.key == k }?.value, v, k) }
            for e in entries { XCTAssertEqual(e.bytesAfter, e.to.byteCount(shape: e.shape)) }
            // The lowest format version that describes the file: 2.0 when it holds q8r tensors, 4.0 for q8ri, q4i.
            let bytes = w.serialize()
            let version: [UInt8] = target == .q8r ? [2, 0, 0, 0] : target.formatMajor == 4 ? [4, 0, 0, 0] : [1, 0, 0, 0]
            XCTAssertEqual(Array(bytes[8..<12]), version, "version, \(target.name)")
            if target == .q8r || target == .q8ri {   // q8r in a file labelled 1.0, q8ri in one labelled 3.0, are refused
                var old = bytes
                old[8] = target == .q8r ? 1 : 3
                old.replaceSubrange(56..<60, with: [0, 0, 0, 0])
                var crc = CRC32()
                old.withUnsafeBytes { crc.update($0) }
                withUnsafeBytes(of: crc.value.littleEndian) { old.replaceSubrange(56..<60, with: $0) }
                assertThrowsRecur(.format, target == .q8r ? "needs format version 2;" : "needs format version 4;") {
                    _ = try old.withUnsafeBytes { try RecurFile(storage: try FileStorage(copying: $0)) }
                }
            }
            _ = try load(w)
        }
    }

    /// A frame model's first kernel narrower than a block: f32 for the row-major types, q8ri for the
    /// interleaved ones (at least 8 bits for int4); a wider one takes the target type.
    func testNarrowFirstKernelOfAFrameModel() throws {
        for (frame, target, want) in [(12, DType.q8r, DType.f32), (12, .q8, .f32), (12, .q4, .f32), (12, .f16, .f32),
                                      (12, .q8ri, .q8ri), (12, .q4i, .q8ri), (40, .q4i, .q4i), (40, .q8r, .q8r)] {
            var arch = Architecture(task: .regress, layers: [.recurrent(.init(cell: .gru, inputSize: frame, units: 8)),
                                                             .dense(inputSize: 8, units: 2, activation: .linear)])
            arch.input = .frames(size: frame)
            XCTAssertEqual(Quantizer.defaultType("layer.0.kernel", shape: [24, frame], arch: arch, target: target), want,
                           "F \(frame) \(target.name)")
        }
    }

    /// "int8" is the per-row type with interleaved rows (the fast one); "q8" keeps one scale per block of 32.
    func testTypeNames() {
        XCTAssertEqual(Quantizer.parseType("int8"), .q8ri)
        XCTAssertEqual(Quantizer.parseType("q8ri"), .q8ri)
        XCTAssertEqual(Quantizer.parseType("q8r"), .q8r)
        XCTAssertEqual(Quantizer.parseType("q8"), .q8)
        XCTAssertEqual(Quantizer.parseType("int8-block"), .q8)
        XCTAssertEqual(Quantizer.parseType("q4"), .q4)
        XCTAssertEqual(Quantizer.parseType("int4"), .q4i)
        XCTAssertEqual(Quantizer.parseType("q4i"), .q4i)
        XCTAssertNil(Quantizer.parseType("q3"))
    }

    func testOverrides() throws {
        let b = try builder([.init(cell: .gru)])
        let f = try file(b)
        let (_, e1) = try Quantizer.quantize(f, to: .q4, overrides: [
            .init(pattern: "layer.1.*kernel", dtype: .q8), .init(pattern: "layer.0.embeddings", dtype: nil)])
        let t1 = Dictionary(uniqueKeysWithValues: e1.map { ($0.name, $0.to) })
        XCTAssertEqual(t1["layer.1.kernel"], .q8)
        XCTAssertEqual(t1["layer.1.recurrent_kernel"], .q8)
        XCTAssertEqual(t1["layer.0.embeddings"], .f32)
        XCTAssertEqual(t1["layer.2.kernel"], .q8)
        assertThrowsRecur(.invalidArgument, "no tensor matches") {
            _ = try Quantizer.quantize(f, to: .q8, overrides: [.init(pattern: "layer.9.*", dtype: .f32)])
        }
        assertThrowsRecur(.invalidArgument, "must stay f32") {
            _ = try Quantizer.quantize(f, to: .q8, overrides: [.init(pattern: "*bias", dtype: .q8)])
        }
        XCTAssertTrue(Quantizer.matches("layer.1.recurrent_kernel", "*kernel"))
        XCTAssertTrue(Quantizer.matches("layer.1.kernel", "layer.?.kernel") == false)
        XCTAssertTrue(Quantizer.matches("abc", "a*b*c"))
        XCTAssertFalse(Quantizer.matches("abcd", "a*c"))
    }

    /// Re-quantizing a quantized file decodes it first; the same type is copied byte for byte.
    func testRequantize() throws {
        let b = try builder([.init(cell: .gru)])
        let (w8, _) = try Quantizer.quantize(try file(b), to: .q8)
        let bytes = w8.serialize()
        let f8 = try bytes.withUnsafeBytes { try RecurFile(storage: try FileStorage(copying: $0)) }
        let (again, _) = try Quantizer.quantize(f8, to: .q8)
        for (x, y) in zip(w8.tensors, again.tensors) { XCTAssertEqual(x.data, y.data, x.name) }
        let (w4, _) = try Quantizer.quantize(f8, to: .q4)
        XCTAssertEqual(w4.tensors.first { $0.name == "layer.1.kernel" }?.dtype, .q4)
    }

    /// A converted model steps like the Double reference run on its own decoded weights; what remains is
    /// the int8 quantization of activations inside the q8/q4 products (about max|x|/254 per element).
    func testConvertedModelMatchesDecodedReference() throws {
        for cells in [[RecurrentSpec.Template(cell: .gru)], [.init(cell: .lstm)], [.init(cell: .gru), .init(cell: .lstm, peephole: true)]] {
            let b = try builder(cells)
            let f = try file(b)
            for (target, tolerance) in [(DType.f16, 2e-5), (.q8, 0.03), (.q4, 0.03), (.q8r, 0.03), (.q8ri, 0.03), (.q4i, 0.03)] {
                let (w, _) = try Quantizer.quantize(f, to: target)
                let model = try load(w)
                var ref = ReferenceGenerator(decoded(b, w))
                let state = model.makeState()
                var rng = SplitMix64(seed: 11)
                var worst = 0.0
                for _ in 0..<30 {
                    let tok = Int(rng.next() % 30)
                    worst = max(worst, maxAbsDiff(Array(try state.step(tok)), ref.step(tok)))
                }
                XCTAssertLessThan(worst, tolerance, "\(cells.map(\.cell)) \(target.name)")
            }
        }
    }

    /// int8 with interleaved rows (q8ri) computes what q8r computes, bit for bit: stepped, prefilled and on
    /// two threads, for cells whose gates are row views that start inside a group of 16 (hidden 21 and 150).
    func testInterleavedInt8EqualsPerRowBitForBit() throws {
        let stacks: [[RecurrentSpec.Template]] = [[.init(cell: .gru)], [.init(cell: .gru, resetAfter: false)],
                                                 [.init(cell: .lstm, peephole: true), .init(cell: .rnn)]]
        for cells in stacks {
            for (hidden, threads) in [(21, 1), (150, 2)] {
                let f = try file(try builder(cells, hidden: hidden))
                var o = Model.Options()
                o.threads = threads
                func open(_ t: DType) throws -> Model {
                    let bytes = try Quantizer.quantize(f, to: t).writer.serialize()
                    return try bytes.withUnsafeBytes { try Model(bytes: $0, options: o) }
                }
                let per = try open(.q8r), il = try open(.q8ri)
                let a = per.makeState(), b = il.makeState()
                XCTAssertEqual(Array(try a.prefill([3, 1, 4, 1, 5])), Array(try b.prefill([3, 1, 4, 1, 5])), "prefill \(cells.map(\.cell)) H \(hidden)")
                for tok in [9, 2, 6, 5, 3, 5, 8, 9, 7, 9] {
                    XCTAssertEqual(Array(try a.step(tok)), Array(try b.step(tok)), "step \(cells.map(\.cell)) H \(hidden)")
                }
                XCTAssertEqual(a.vector, b.vector)
            }
        }
    }

    /// The first layer's input table is computed in f32 from the decoded weights, with no activation
    /// quantization: after one step from zero state (U·0 = 0 exactly) h matches the reference closely.
    func testInputTableIsExactForQuantizedWeights() throws {
        let b = try builder([.init(cell: .gru)], hidden: 70, embedding: 45)
        for target in [DType.q8, .q4, .f16, .q8r, .q8ri, .q4i] {
            let (w, _) = try Quantizer.quantize(try file(b), to: target)
            let model = try load(w)
            XCTAssertTrue(model.usesInputTable)
            var ref = ReferenceGenerator(decoded(b, w))
            let state = model.makeState()
            try state.step(7)
            _ = ref.step(7)
            XCTAssertLessThan(maxAbsDiff(state.hidden(0), ref.h[0]), 2e-6, target.name)
        }
        // The budget is honored: a table larger than it is not built.
        let (w, _) = try Quantizer.quantize(try file(b), to: .q8)
        var o = Model.Options()
        o.inputTableBudget = 30 * 210 * 4 - 1
        let bytes = w.serialize()
        XCTAssertFalse(try bytes.withUnsafeBytes { try Model(bytes: $0, options: o) }.usesInputTable)
        o.inputTableBudget = 30 * 210 * 4
        XCTAssertTrue(try bytes.withUnsafeBytes { try Model(bytes: $0, options: o) }.usesInputTable)
    }
}
