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
