import CRecurKernels
import XCTest
@testable import Recur

/// A step keeps the head's quantization of the last layer's h for the next step's recurrent product
/// (`Model.carriedX`, `State.carried`). Every other way of changing a state's vectors must drop it: each case
/// below changes a state that holds one, steps it, and compares bit for bit with a state that reached the same
/// vectors by steps alone.
final class CarriedQuantizationTests: XCTestCase {
    func model(_ cells: [RecurrentSpec.Template], dtype: DType) throws -> Model {
        try makeGenerator(cells, hidden: 37, dtype: dtype)
    }

    func testCarriedWhereTheHeadSharesTheQuantization() throws {
        for dtype in [DType.q8, .q8r, .q8ri] {
            let m = try model([.init(cell: .gru)], dtype: dtype)
            XCTAssertEqual(m.carriedX?.dtype, Int32(dtype.rawValue), dtype.name)
            XCTAssertEqual(m.carriedX?.bytes, Int(rk_x_bytes(Int32(dtype.rawValue), 37)), dtype.name)
        }
        // Exact products quantize nothing; a 4-bit model keeps its output layer at 8 bits (per vector for q4i's
        // q8ri head), which quantizes h otherwise than the recurrent matrix does.
        for dtype in [DType.f32, .f16, .q4, .q4i] { XCTAssertNil(try model([.init(cell: .gru)], dtype: dtype).carriedX, dtype.name) }
    }

    func testEveryOtherWriteOfTheVectorsDropsIt() throws {
        let stacks: [[RecurrentSpec.Template]] = [
            [.init(cell: .gru)], [.init(cell: .gru, resetAfter: false)], [.init(cell: .lstm, peephole: true)],
            [.init(cell: .rnn)], [.init(cell: .lstm), .init(cell: .gru)],
        ]
        for cells in stacks {
            for dtype in [DType.q8ri, .q8, .q8r] {
                let m = try model(cells, dtype: dtype)
                XCTAssertNotNil(m.carriedX)
                let what = "\(cells.map(\.cell)) \(dtype.name)"
                func stepped(_ tokens: [Int]) throws -> State {
                    let s = m.makeState()
                    for t in tokens { _ = try s.step(t) }
                    return s
                }
                let ref = try stepped([1, 2])
                let want = Array(try ref.step(9))
                func expect(_ s: State, _ how: String) throws {
                    XCTAssertEqual(Array(try s.step(9)), want, "\(what): after \(how)")
                    XCTAssertEqual(s.vector, ref.vector, "\(what): after \(how)")
                }
                let restored = try stepped([1, 2, 3, 4])
                try restored.restore(try stepped([1, 2]).save())
                try expect(restored, "restore")
                let copied = try stepped([5, 6, 7])
                try copied.copy(from: try stepped([1, 2]))
                try expect(copied, "copy")
                try expect(try stepped([1, 2]).fork(), "fork")
                let reset = try stepped([5, 6, 7])
                reset.reset()
                for t in [1, 2] { _ = try reset.step(t) }
                try expect(reset, "reset")
                let set = try stepped([5, 6, 7]), from = try stepped([1, 2])
                for i in 0..<cells.count {
                    let c = from.c(i).map { Array(UnsafeBufferPointer(start: $0, count: 37)) } ?? []
                    set.setLayer(i, h: from.hidden(i), c: c)
                }
                try expect(set, "setLayer")
                // The batched step reads a stream's carried copy, or quantizes h itself when there is none (z,
                // restored), and leaves each a carried copy of its new h.
                let x = try stepped([1]), y = try stepped([4]), z = try stepped([7, 7])
                try z.restore(try stepped([1]).save())
                try m.stepBatch(states: [x, y, z], tokens: [2, 5, 2])
                try expect(x, "stepBatch")
                try expect(z, "restore and stepBatch")
                if cells.count == 1 {   // one layer: a prefill is the steps' arithmetic, bit for bit
                    let p = try stepped([3, 3, 3])
                    p.reset()
                    _ = try p.prefill([1, 2])
                    try expect(p, "reset and prefill")
                }
            }
        }
    }
}
