import Foundation
import XCTest
@testable import Recur


/// Builds a generator with random weights and loads it from memory.
func makeModel(cells: [RecurrentSpec.Template], vocab: Int = 20, embedding: Int = 7, hidden: Int = 13,
               seed: UInt64 = 1, mutate: ((inout ModelBuilder) -> Void)? = nil,
               options: Model.Options = Model.Options()) throws -> (Model, ModelBuilder) {
    let v = try Vocabulary(kind: .char, pieces: (0..<vocab).map { String(UnicodeScalar(UInt32(0x41 + $0))!) })
    let arch = Architecture.generator(vocabulary: vocab, embedding: embedding, cells: cells, hidden: hidden)
    var b = ModelBuilder(architecture: arch, vocabulary: v)
    b.randomize(seed: seed, scale: 2)
    mutate?(&b)
    let bytes = b.writer().serialize()
    let model = try bytes.withUnsafeBytes { try Model(bytes: $0, options: options) }
    return (model, b)
}

/// A generator (vocabulary 25, embedding 19) with random weights in `dtype` (the f32 file through
/// `Quantizer.quantize`), loaded from memory with `threads` kernel threads.
func makeGenerator(_ cells: [RecurrentSpec.Template], hidden: Int, dtype: DType, threads: Int = 1) throws -> Model {
    let v = try Vocabulary(kind: .char, pieces: (0..<25).map { String(UnicodeScalar(UInt32(0x41 + $0))!) })
    var b = ModelBuilder(architecture: Architecture.generator(vocabulary: 25, embedding: 19, cells: cells, hidden: hidden), vocabulary: v)
    b.randomize(seed: 3, scale: 1.5)
    let f32 = b.writer().serialize()
    var bytes = f32
    if dtype != .f32 {
        let file = try f32.withUnsafeBytes { try RecurFile(storage: try FileStorage(copying: $0)) }
        bytes = try Quantizer.quantize(file, to: dtype).writer.serialize()
    }
    var o = Model.Options()
    o.threads = threads
    return try bytes.withUnsafeBytes { try Model(bytes: $0, options: o) }
}

func tensorValues(_ b: ModelBuilder, _ name: String) -> [Double] {
    b.tensors.first { $0.name == name }!.values.map(Double.init)
}

func maxAbsDiff(_ a: [Float], _ b: [Double]) -> Double {
    zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
}

func assertThrowsRecur(_ code: RecurError.Code, _ contains: String, file: StaticString = #filePath, line: UInt = #line,
                       _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected \(code) error containing '\(contains)'", file: file, line: line)
    } catch let e as RecurError {
        XCTAssertEqual(e.code, code, "message: \(e.message)", file: file, line: line)
        XCTAssertTrue(e.message.contains(contains), "'\(e.message)' does not contain '\(contains)'", file: file, line: line)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}
