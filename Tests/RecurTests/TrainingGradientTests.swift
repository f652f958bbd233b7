import XCTest
@testable import Recur
@testable import RecurTraining

/// The trainer's analytic gradients (embedding, every cell kind and GRU convention, dense, softmax
/// cross-entropy, dropout, carried state) against central differences of an independent Double forward pass.
final class TrainingGradientTests: XCTestCase {
    func makeNetwork(_ cell: String, layers: Int = 1, vocab: Int = 6, embedding: Int = 3, hidden: Int = 4,
                     seed: UInt64 = 3) throws -> Network {
        let v = try Vocabulary(kind: .char, pieces: (0..<vocab).map { String(UnicodeScalar(UInt8(0x61 + $0))) })
        let t = try XCTUnwrap(RecurrentSpec.Template(name: cell))
        let arch = Architecture.generator(vocabulary: vocab, embedding: embedding,
                                          cells: Array(repeating: t, count: layers), hidden: hidden)
        let net = try Network(architecture: arch, vocabulary: v)
        var rng = SplitMix64(seed: seed)
        net.initialize(rng: &rng)
        // Larger than the initial scale, so every gate works away from its linear region.
        var p = net.parameters
        for i in p.indices { p[i] = p[i] * 1.5 + Float(rng.nextUnit() - 0.5) * 0.4 }
        net.parameters = p
        return net
    }

    /// Compares ∂(mean loss)/∂w of the trainer with central differences of the reference, for every weight.
    func check(_ net: Network, streams B: Int = 2, steps T: Int = 5, windowsBefore: Int = 0, dropout: Float = 0,
               file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = SplitMix64(seed: 99)
        let V = net.vocabulary.count
        func randomWindow() -> (inputs: [[Int]], targets: [[Int]]) {
            let tok = (0...T).map { _ in (0..<B).map { _ in Int(rng.next() % UInt64(V)) } }
            return (Array(tok[0..<T]), Array(tok[1...T]))
        }
        let ws = Workspace(net, streams: B, steps: T, withGradients: true)
        let ref0 = TrainingReference(net)
        var refState = ref0.zeroState(streams: B)
        func load(_ w: (inputs: [[Int]], targets: [[Int]])) {
            for t in 0..<T { for b in 0..<B { ws.inputs[t * B + b] = Int32(w.inputs[t][b]); ws.targets[t * B + b] = Int32(w.targets[t][b]) } }
        }
        // Earlier windows only set the carried state (their gradients are not part of this step).
        for _ in 0..<windowsBefore {
            let w = randomWindow()
            load(w)
            net.forward(ws, steps: T, mode: .loss)
            _ = ref0.loss(inputs: w.inputs, targets: w.targets, state: &refState)
        }
        let w = randomWindow()
        load(w)
        ws.grads.zero()
        let scale = 1 / Float(B * T)
        let lossSum = net.forward(ws, steps: T, mode: .train(scale: scale, dropoutSeed: dropout > 0 ? 1234 : nil, dropout: dropout))
        net.backward(ws, steps: T)
        let analytic = ws.grads.array
        var masks: [Int: [Double]] = [:]
        if dropout > 0 {
            for (k, m) in ws.mask.enumerated() { if let m { masks[k] = m.array.map(Double.init) } }
        }
        var ref = ref0
        var s0 = refState
        let refLoss = ref.loss(inputs: w.inputs, targets: w.targets, state: &s0, masks: masks)
        XCTAssertEqual(lossSum, refLoss, accuracy: 1e-4 * max(1, refLoss), "loss", file: file, line: line)

        var worst = 0.0
        var worstName = ""
        for e in net.layout.entries {
            for i in 0..<e.count {
                let orig = ref0.w[e.name]![i]
                let h = 1e-5 * max(1, abs(orig))
                ref.w[e.name]![i] = orig + h
                var sa = refState
                let lp = ref.loss(inputs: w.inputs, targets: w.targets, state: &sa, masks: masks)
                ref.w[e.name]![i] = orig - h
                var sb = refState
                let lm = ref.loss(inputs: w.inputs, targets: w.targets, state: &sb, masks: masks)
                ref.w[e.name]![i] = orig
                let numeric = (lp - lm) / (2 * h) / Double(B * T)
                let a = Double(analytic[e.offset + i])
                let err = abs(a - numeric) / (1e-4 + abs(numeric))
                if abs(a - numeric) > 2e-5 + 2e-3 * abs(numeric) {
                    XCTFail("\(e.name)[\(i)]: analytic \(a), numeric \(numeric)", file: file, line: line)
                    return
                }
                if err > worst { worst = err; worstName = "\(e.name)[\(i)]" }
            }
        }
        _ = worstName
    }

    func testEveryCellKindAndConvention() throws {
        for cell in RecurrentSpec.Template.names {
            try check(try makeNetwork(cell))
        }
    }

    func testTwoLayersWithCarriedState() throws {
        for cell in ["gru", "gru-reset-before", "lstm", "peephole-lstm", "rnn"] {
            try check(try makeNetwork(cell, layers: 2, hidden: 3), streams: 2, steps: 3, windowsBefore: 2)
        }
    }

    func testDropoutBetweenLayers() throws {
        try check(try makeNetwork("gru", layers: 2), streams: 2, steps: 4, dropout: 0.3)
        try check(try makeNetwork("lstm", layers: 2), streams: 2, steps: 4, dropout: 0.5)
    }

    func testDropoutMaskScalesKeptValues() throws {
        let net = try makeNetwork("gru", layers: 2, hidden: 16)
        let ws = Workspace(net, streams: 8, steps: 10, withGradients: true)
        net.forward(ws, steps: 10, mode: .train(scale: 1, dropoutSeed: 5, dropout: 0.25))
        let m = ws.mask[1]!.array
        XCTAssertTrue(m.allSatisfy { $0 == 0 || abs($0 - 1 / 0.75) < 1e-6 })
        let dropped = Double(m.filter { $0 == 0 }.count) / Double(m.count)
        XCTAssertEqual(dropped, 0.25, accuracy: 0.06)
    }
}
