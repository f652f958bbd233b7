import XCTest
@testable import Recur

/// `Model.layerOutputs` and `State.layerState` against the Double-precision references.
final class LayerOutputTests: XCTestCase {
    func testEveryLayerOfABidirectionalTaggerMatchesTheReference() throws {
        for merge in [MergeMode.concat, .sum] {
            let v = try wordVocabulary(25)
            var r1 = RecurrentSpec(cell: .lstm, inputSize: 5, units: 6, peephole: true)
            r1.bidirectional = true; r1.mergeMode = merge
            var r2 = RecurrentSpec(cell: .gru, inputSize: r1.outputSize, units: 4)
            r2.bidirectional = true; r2.mergeMode = merge
            let arch = Architecture(task: .tag, layers: [
                .embedding(vocabulary: 25, dimension: 5), .recurrent(r1), .recurrent(r2),
                .dense(inputSize: r2.outputSize, units: 3, activation: .softmax),
            ], labels: ["A", "B", "C"])
            let (model, b) = try buildModel(arch, vocab: v, seed: 5)
            let tokens = [3, 7, 2, 9, 11, 4, 20, 6]
            let want = referenceLayers(b, tokens)
            for i in 0..<arch.layers.count {
                let got = try model.layerOutputs(tokens, layer: i)
                XCTAssertEqual(got.count, want[i].count)
                XCTAssertEqual(got[0].count, try model.layerWidth(i, .output))
                for (g, w) in zip(got, want[i]) { XCTAssertLessThan(maxAbsDiff(g, w), 1e-4, "layer \(i), \(merge)") }
            }
            // With concatenation the hidden states are the outputs; with a sum, their halves add up to them.
            let h = try model.layerOutputs(tokens, layer: 2, values: .hidden)
            XCTAssertEqual(h[0].count, 8)
            for (t, row) in h.enumerated() {
                let both = merge == .concat ? row : (0..<4).map { row[$0] + row[4 + $0] }
                XCTAssertLessThan(maxAbsDiff(both, want[2][t]), 1e-4)
            }
            XCTAssertEqual(try model.layerOutputs(tokens, layer: 1, values: .cell)[0].count, 12)
        }
    }

    func testStateVectorsAfterStepsMatchTheReference() throws {
        let (model, builder) = try makeModel(cells: [.init(cell: .lstm, peephole: true), .init(cell: .gru)], hidden: 9)
        var ref = ReferenceGenerator(builder)
        let state = model.makeState()
        for t in [1, 5, 2, 8, 3, 3, 0, 7] {
            try state.step(t)
            _ = ref.step(t)
            XCTAssertLessThan(maxAbsDiff(try state.layerState(1), ref.h[0]), 2e-5)
            XCTAssertLessThan(maxAbsDiff(try state.layerState(1, .cell), ref.c[0]), 2e-5)
            XCTAssertLessThan(maxAbsDiff(try state.layerState(2), ref.h[1]), 2e-5)
        }
        assertThrowsRecur(.outOfRange, "layer 4 is outside the model's layers (0..<4)") { _ = try state.layerState(4) }
        assertThrowsRecur(.invalidArgument, "no cell state") { _ = try state.layerState(2, .cell) }
        assertThrowsRecur(.invalidArgument, "no hidden state") { _ = try state.layerState(0) }
        assertThrowsRecur(.invalidArgument, "no cell state") { _ = try model.layerOutputs([1, 2], layer: 3, values: .cell) }
        assertThrowsRecur(.outOfRange, "outside the vocabulary") { _ = try model.layerOutputs([1, 99], layer: 1) }
    }
}
