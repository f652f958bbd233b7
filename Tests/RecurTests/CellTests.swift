import XCTest
@testable import Recur

/// Every layer kind and gate convention against the Double-precision reference, on random weights.
final class CellTests: XCTestCase {
    func check(_ cells: [RecurrentSpec.Template], hidden: Int = 13, steps: Int = 40, tolerance: Double = 2e-5,
               line: UInt = #line, customize: ((inout ModelBuilder) -> Void)? = nil) throws {
        let (model, builder) = try makeModel(cells: cells, hidden: hidden, mutate: customize)
        var ref = ReferenceGenerator(builder)
        let state = model.makeState()
        var rng = SplitMix64(seed: 99)
        var worst = 0.0
        for _ in 0..<steps {
            let tok = Int(rng.next() % UInt64(model.vocabulary.count))
            let got = Array(try state.step(tok))
            let want = ref.step(tok)
            worst = max(worst, maxAbsDiff(got, want))
        }
        XCTAssertLessThan(worst, tolerance, "max-abs error over \(steps) steps", line: line)
    }

    func testGRUResetAfter() throws { try check([.init(cell: .gru)]) }
    func testGRUResetBefore() throws { try check([.init(cell: .gru, resetAfter: false)]) }
    func testLSTM() throws { try check([.init(cell: .lstm)]) }
    func testPeepholeLSTM() throws { try check([.init(cell: .lstm, peephole: true)]) }
    func testSimpleRNNTanh() throws { try check([.init(cell: .rnn)]) }
    func testSimpleRNNRelu() throws { try check([.init(cell: .rnn, activation: .relu)], tolerance: 1e-4) }
    func testStackOfThreeMixed() throws {
        try check([.init(cell: .gru), .init(cell: .lstm, peephole: true), .init(cell: .gru, resetAfter: false)], hidden: 9)
    }
    func testWideLayerCrossesSIMDWidth() throws {
        // 37 units: matvec rows and columns not multiples of 4 or 16.
        try check([.init(cell: .lstm)], hidden: 37, steps: 10)
    }

    /// Layers whose activations differ from the defaults: hard_sigmoid gates (both flavours) and a head
    /// of Dense(relu) → Dense(softmax).
    func testActivationsAndHeads() throws {
        for ga in [Activation.hardSigmoidKeras2, .hardSigmoidKeras3, .sigmoid] {
            for cell in [CellKind.gru, .lstm] {
                try check([.init(cell: cell)]) { b in
                    var layers = b.architecture.layers
                    if case .recurrent(var r) = layers[1] { r.recurrentActivation = ga; layers[1] = .recurrent(r) }
                    // Replace the head by dense(relu, 11) → dense(softmax, vocab).
                    let v = b.vocabulary.count
                    layers[2] = .dense(inputSize: 13, units: 11, activation: .relu)
                    layers.append(.dense(inputSize: 11, units: v, activation: .softmax))
                    b.architecture = Architecture(task: .generate, layers: layers)
                    b.randomize(seed: 5, scale: 2)
                }
            }
        }
    }

    func testNoInputTableGivesSameResult() throws {
        var o = Model.Options()
        o.inputTableBudget = 0
        let (a, _) = try makeModel(cells: [.init(cell: .gru)], options: o)
        let (b, _) = try makeModel(cells: [.init(cell: .gru)])
        XCTAssertFalse(a.usesInputTable)
        XCTAssertTrue(b.usesInputTable)
        let sa = a.makeState(), sb = b.makeState()
        for t in [1, 5, 3, 19, 0, 7] {
            let x = Array(try sa.step(t)), y = Array(try sb.step(t))
            XCTAssertLessThan(zip(x, y).map { abs($0 - $1) }.max()!, 1e-5)
        }
    }
}
