import XCTest
@testable import Recur
@testable import RecurTraining

/// Dropout, Keras-style initialisation and L2 in the classify / tag trainer. The masked passes are checked
/// against an independent Double reference that applies the network's masks the way Keras does (spatial
/// per sequence and channel, cell inputs per sequence and direction, recurrent per sequence, direction and
/// gate on h_prev into the recurrent kernel only, outputs per element), and its gradients against central
/// differences of that reference.
final class TaskDropoutTests: XCTestCase {
    let V = 12

    func sequences(_ lengths: [Int], seed: UInt64, labels: Int, perStep: Bool) -> [(tokens: [Int], labels: [Int])] {
        var rng = SplitMix64(seed: seed)
        return lengths.map { n in
            let t = (0..<n).map { _ in 1 + Int(rng.next() % UInt64(V - 1)) }
            let l = (0..<(perStep ? n : 1)).map { _ in Int(rng.next() % UInt64(labels)) }
            return (t, l)
        }
    }

    func network(task: String, cell: String, hidden: Int = 4, embedding: Int = 3, batch: Int = 3, steps: Int = 6,
                 vocabulary: Int? = nil, seed: UInt64 = 5, perturb: Bool = true) throws -> SequenceNetwork {
        var c = TaskConfig()
        c.cell = cell; c.hidden = hidden; c.embedding = embedding; c.denseUnits = 3
        let n = vocabulary ?? V
        let arch = task == "classify" ? try TaskTrainer.classifierArchitecture(c, vocabulary: n)
                                      : try TaskTrainer.taggerArchitecture(c, vocabulary: n, tags: ["A", "B", "C"])
        let net = try SequenceNetwork(architecture: arch, vocabulary: try wordVocabulary(n), maxBatch: batch, maxSteps: steps)
        net.initialize(seed: seed)
        if perturb {
            var rng = SplitMix64(seed: seed + 1)
            net.parameters = net.parameters.map { $0 * 3 + Float(rng.nextUnit() - 0.5) * 0.6 }
        }
        return net
    }

    /// The masks of a pass, as the reference reads them: per sequence b.
    struct Masks {
        var B: Int, E: Int, H: Int, W: Int, gates: Int
        var spatial: [Float], input: [[Float]], recurrent: [[Float]], output: [Float]
        /// The token ids read [T·B] (word dropout: some replaced by UNK).
        var tokens: [Int32]
        func s(_ b: Int, _ k: Int) -> Double { spatial.isEmpty ? 1 : Double(spatial[b * E + k]) }
        func i(_ d: Int, _ b: Int, _ k: Int) -> Double { input[d].isEmpty ? 1 : Double(input[d][b * E + k]) }
        func r(_ d: Int, _ g: Int, _ b: Int, _ j: Int) -> Double { recurrent[d].isEmpty ? 1 : Double(recurrent[d][(g * B + b) * H + j]) }
        func o(_ row: Int, _ j: Int) -> Double { output.isEmpty ? 1 : Double(output[row * W + j]) }
    }

    func masks(_ net: SequenceNetwork) -> Masks {
        Masks(B: net.maxB, E: net.E, H: net.spec.units, W: net.spec.outputSize, gates: net.spec.gates,
              spatial: net.spatialMask, input: net.inputMasks, recurrent: net.dirs.map { $0.recurrentMask?.array ?? [] },
              output: net.outputMask, tokens: net.tokensRead)
    }

    static func sig(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    /// One step of an LSTM or reset-after GRU (sigmoid gates, tanh) in Double, every gate block g reading
    /// h_prev ⊙ rm(g, ·) through the recurrent kernel; the carried h is not masked.
    static func step(_ cell: CellKind, W: [Double], U: [Double], bias: [Double], rbias: [Double]?, x: [Double],
                     h: [Double], c: [Double], H: Int, rm: (Int, Int) -> Double) -> ([Double], [Double]) {
        let In = x.count, gates = cell == .lstm ? 4 : 3
        var gx = [Double](repeating: 0, count: gates * H), gh = gx
        for g in 0..<gates {
            for j in 0..<H {
                let row = g * H + j
                var a = bias[row], r = rbias?[row] ?? 0
                for k in 0..<In { a += W[row * In + k] * x[k] }
                for k in 0..<H { r += U[row * H + k] * h[k] * rm(g, k) }
                gx[row] = a; gh[row] = r
            }
        }
        var hn = [Double](repeating: 0, count: H), cn = hn
        for j in 0..<H {
            if cell == .lstm {
                let i = sig(gx[j] + gh[j]), f = sig(gx[H + j] + gh[H + j])
                let g = tanh(gx[2 * H + j] + gh[2 * H + j]), o = sig(gx[3 * H + j] + gh[3 * H + j])
                cn[j] = f * c[j] + i * g
                hn[j] = o * tanh(cn[j])
            } else {
                let r = sig(gx[j] + gh[j]), z = sig(gx[H + j] + gh[H + j])
                let n = tanh(gx[2 * H + j] + r * gh[2 * H + j])
                hn[j] = (1 - z) * n + z * h[j]
            }
        }
        return (hn, cn)
    }

    /// Mean loss of the builder's weights over the unpadded sequences (row b of the batch) under `m`.
    func referenceLoss(_ bld: ModelBuilder, _ data: [(tokens: [Int], labels: [Int])], _ m: Masks, tagging: Bool) -> Double {
        guard case .embedding(_, let E) = bld.architecture.layers[0], case .recurrent(let r) = bld.architecture.layers[1] else { fatalError() }
        let H = r.units, emb = tensorValues(bld, "layer.0.embeddings")
        let B = m.B
        var total = 0.0, n = 0
        for (b, (tokens, labels)) in data.enumerated() {
            let read = (0..<tokens.count).map { Int(m.tokens[$0 * B + b]) }
            let xs = read.map { tok in (0..<E).map { emb[tok * E + $0] * m.s(b, $0) } }
            var outs: [[[Double]]] = []
            for (d, prefix) in ["layer.1.forward.", "layer.1.backward."].enumerated() {
                let W = tensorValues(bld, prefix + "kernel"), U = tensorValues(bld, prefix + "recurrent_kernel")
                let bias = tensorValues(bld, prefix + "bias")
                let rb = bld.tensors.contains { $0.name == prefix + "recurrent_bias" } ? tensorValues(bld, prefix + "recurrent_bias") : nil
                var h = [Double](repeating: 0, count: H), c = h
                var out = [[Double]](repeating: [], count: xs.count)
                for k in 0..<xs.count {
                    let t = d == 0 ? k : xs.count - 1 - k
                    let x = (0..<E).map { xs[t][$0] * m.i(d, b, $0) }
                    (h, c) = Self.step(r.cell, W: W, U: U, bias: bias, rbias: rb, x: x, h: h, c: c, H: H) { g, j in m.r(d, g, b, j) }
                    out[t] = h
                }
                outs.append(out)
            }
            // Rows as the network numbers them: b (classify) or t·B + b (tag), for the output mask.
            let rows: [(Int, [Double])] = tagging
                ? (0..<tokens.count).map { t in (t * B + b, outs[0][t] + outs[1][t]) }
                : [(b, outs[0].last! + outs[1].first!)]
            for (i, (row, y0)) in rows.enumerated() {
                var y = y0.enumerated().map { $1 * m.o(row, $0) }
                for li in 2..<bld.architecture.layers.count {
                    guard case .dense(_, let u, let a) = bld.architecture.layers[li] else { fatalError() }
                    y = ReferenceGenerator.dense(bld, prefix: "layer.\(li).", units: u, activation: a, y)
                }
                if tagging { total -= log(y[labels[i]]) } else { total -= labels[0] == 1 ? log(y[0]) : log(1 - y[0]) }
                n += 1
            }
        }
        return total / Double(n)
    }

    func checkGradients(_ analytic: [Float], _ b0: ModelBuilder, h: Float = 1e-3, loss: (ModelBuilder) -> Double,
                        file: StaticString = #filePath, line: UInt = #line) {
        let layout = ParameterLayout(b0.architecture)
        var checked = 0
        for e in layout.entries {
            let ti = b0.tensors.firstIndex { $0.name == e.name }!
            for j in 0..<e.count {
                var bp = b0, bm = b0
                bp.tensors[ti].values[j] += h
                bm.tensors[ti].values[j] -= h
                let step = Double(bp.tensors[ti].values[j]) - Double(bm.tensors[ti].values[j])
                let numeric = (loss(bp) - loss(bm)) / step
                let a = Double(analytic[e.offset + j])
                if abs(a - numeric) / (2e-3 + abs(numeric)) > 2e-2 {
                    XCTFail("\(e.name)[\(j)]: analytic \(a), numeric \(numeric)", file: file, line: line)
                    return
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, layout.count, file: file, line: line)
    }

    let kinds: [(String, SequenceDropout)] = [
        ("word", SequenceDropout(word: 0.4)), ("spatial", SequenceDropout(spatial: 0.4)), ("input", SequenceDropout(input: 0.4)),
        ("recurrent", SequenceDropout(recurrent: 0.4)), ("output", SequenceDropout(output: 0.4)),
        ("all", SequenceDropout(word: 0.2, spatial: 0.3, input: 0.3, recurrent: 0.3, output: 0.3)),
    ]

    /// Each dropout kind, LSTM and GRU, classifier and tagger (bidirectional, padded): the masked pass's loss
    /// is the reference's under the same masks, and its gradient that of the reference.
    func testMaskedGradientsMatchReference() throws {
        for task in ["classify", "tag"] {
            let tagging = task == "tag"
            for cell in ["lstm", "gru"] {
                for (name, d) in kinds {
                    let net = try network(task: task, cell: cell)
                    net.dropout = d
                    let data = sequences([5, 2, 4], seed: 11, labels: tagging ? 3 : 2, perStep: tagging)
                    let batch = SequenceBatch(data.map(\.tokens), labels: data.map(\.labels), rows: 3, pad: 0, perStep: tagging)
                    let plain = net.forward(batch).loss
                    let r = net.forward(batch, train: true, dropoutSeed: 41)
                    let m = masks(net)
                    let what = "\(task) \(cell) \(name)"
                    XCTAssertNotEqual(r.loss, plain, what)
                    let b = net.modelBuilder()
                    XCTAssertEqual(r.loss / Double(r.count), referenceLoss(b, data, m, tagging: tagging), accuracy: 1e-5, what)
                    checkGradients(net.gradients, b) { self.referenceLoss($0, data, m, tagging: tagging) }
                }
            }
        }
    }

    /// Without masks the reference is the plain network (so the reference's mask handling is what differs).
    func testReferenceWithoutMasksIsThePlainPass() throws {
        for cell in ["lstm", "gru"] {
            let net = try network(task: "tag", cell: cell)
            let data = sequences([6, 3, 1], seed: 12, labels: 3, perStep: true)
            let batch = SequenceBatch(data.map(\.tokens), labels: data.map(\.labels), rows: 3, pad: 0, perStep: true)
            let r = net.forward(batch, train: true)
            XCTAssertTrue(net.spatialMask.isEmpty && net.outputMask.isEmpty && net.inputMasks.allSatisfy(\.isEmpty))
            XCTAssertEqual(r.loss / Double(r.count), referenceLoss(net.modelBuilder(), data, masks(net), tagging: true), accuracy: 1e-5)
        }
    }

    /// Rates 0: the same loss and gradients, bit for bit, as the pass without dropout, and the run's
    /// generator untouched (so a run trains exactly as before); a rate > 0 draws from it.
    func testZeroRatesAreThePlainPass() throws {
        for (task, cell) in [("classify", "lstm"), ("tag", "gru")] {
            let tagging = task == "tag"
            let net = try network(task: task, cell: cell)
            let data = sequences([5, 2, 4], seed: 13, labels: tagging ? 3 : 2, perStep: tagging)
            let batch = SequenceBatch(data.map(\.tokens), labels: data.map(\.labels), rows: 3, pad: 0, perStep: tagging)
            let plain = net.forward(batch, train: true), g0 = net.gradients
            var rng = SplitMix64(seed: 77)
            let r = net.forward(batch, train: true, rng: &rng)
            XCTAssertEqual(rng.state, SplitMix64(seed: 77).state)
            XCTAssertEqual(r.loss, plain.loss)
            XCTAssertEqual(net.gradients, g0)
            let seeded = net.forward(batch, train: true, dropoutSeed: 5)
            XCTAssertEqual(seeded.loss, plain.loss)
            XCTAssertEqual(net.gradients, g0)
            net.dropout = SequenceDropout(recurrent: 0.2)
            let dropped = net.forward(batch, train: true, rng: &rng)
            XCTAssertNotEqual(rng.state, SplitMix64(seed: 77).state)
            XCTAssertNotEqual(dropped.loss, plain.loss)
            // An evaluation pass never drops.
            XCTAssertEqual(net.forward(batch).loss, plain.loss)
        }
    }

    /// Two training runs with the same seed and dropout give the same weights; another seed, others.
    func testDropoutRunsAreReproducible() throws {
        func run(_ seed: UInt64) throws -> [Float] {
            let net = try network(task: "tag", cell: "gru", perturb: false)
            var c = TaskConfig()
            c.batch = 3; c.epochs = 2; c.seed = seed; c.patience = 0
            c.spatialDropout = 0.2; c.inputDropout = 0.1; c.recurrentDropout = 0.2; c.dropout = 0.3; c.initializer = .keras
            let data = sequences([5, 2, 4, 6, 3, 1], seed: 14, labels: 3, perStep: true)
            _ = try TaskTrainer.trainSequences(net, c, train: data, validation: Array(data.prefix(3)), log: { _ in })
            return net.parameters
        }
        XCTAssertEqual(try run(3), try run(3))
        XCTAssertNotEqual(try run(3), try run(4))
    }

    /// The fraction of zeros in each mask is within tolerance of p, kept values are 1/(1 − p), and the
    /// spatial mask drops whole channels.
    func testMaskRates() throws {
        let B = 64, E = 32, H = 24, T = 5
        let net = try network(task: "tag", cell: "lstm", hidden: H, embedding: E, batch: B, steps: T, vocabulary: 40)
        let p: Float = 0.3
        net.dropout = SequenceDropout(word: p, spatial: p, input: p, recurrent: p, output: p)
        var rng = SplitMix64(seed: 3)
        let seqs = (0..<B).map { _ in (0..<T).map { _ in 2 + Int(rng.next() % 38) } }
        let batch = SequenceBatch(seqs, labels: seqs.map { $0.map { $0 % 3 } }, rows: B, pad: 0, perStep: true)
        net.forward(batch, train: true, rng: &rng)
        let m = masks(net)
        let all: [(String, [Float])] = [("spatial", m.spatial), ("input forward", m.input[0]), ("input backward", m.input[1]),
                                        ("recurrent forward", m.recurrent[0]), ("recurrent backward", m.recurrent[1]), ("output", m.output)]
        XCTAssertEqual(m.recurrent[0].count, 4 * B * H)
        XCTAssertEqual(m.output.count, T * B * 2 * H)
        for (name, v) in all {
            let zeros = Double(v.filter { $0 == 0 }.count) / Double(v.count)
            // ≥ 1536 draws each: 5σ of a binomial proportion is under 0.06.
            XCTAssertEqual(zeros, Double(p), accuracy: 0.06, name)
            XCTAssertTrue(v.allSatisfy { $0 == 0 || $0 == 1 / (1 - p) }, name)
        }
        XCTAssertNotEqual(m.input[0], m.input[1], "each direction draws its own mask")
        // Word dropout: about p of the (all real) tokens read as UNK (id 1), the others as they are.
        let flat = (0..<(T * B)).map { batch.tokens[$0] }
        XCTAssertEqual(Double(zip(m.tokens, flat).filter { $0.0 != $0.1 }.count) / Double(T * B), Double(p), accuracy: 0.06)
        XCTAssertTrue(zip(m.tokens, flat).allSatisfy { $0.0 == $0.1 || $0.0 == 1 })
        // Spatial: the embeddings the recurrent layer read are zero in a dropped channel at every step.
        let emb = net.parameters[net.embeddings..<(net.embeddings + 40 * E)].map { $0 }
        for b in 0..<B {
            for k in 0..<E {
                let dropped = m.spatial[b * E + k] == 0
                for t in 0..<T {
                    let x = net.x0.p[(t * B + b) * E + k], e = emb[Int(m.tokens[t * B + b]) * E + k]
                    XCTAssertEqual(x, dropped ? 0 : e / (1 - p), accuracy: 1e-6)
                }
            }
        }
    }

    /// Variational dropout: the states each gate block multiplies are h_prev times one mask per sequence,
    /// the same at every step.
    func testRecurrentMaskIsTheSameAtEveryStep() throws {
        for cell in ["lstm", "gru"] {
            let B = 4, H = 8, T = 6
            let net = try network(task: "tag", cell: cell, hidden: H, embedding: 5, batch: B, steps: T)
            net.dropout = SequenceDropout(recurrent: 0.5)
            let data = sequences([6, 6, 6, 6], seed: 15, labels: 3, perStep: true)
            let batch = SequenceBatch(data.map(\.tokens), labels: data.map(\.labels), rows: B, pad: 0, perStep: true)
            net.forward(batch, train: true, dropoutSeed: 8)
            for dir in net.dirs {
                let gates = dir.G / H
                var patterns: Set<[Bool]> = []
                for g in 0..<gates {
                    var seen: [Bool]? = nil
                    for t in 1..<T {
                        let hp = Array(UnsafeBufferPointer(start: dir.h(t), count: B * H)), s = dir.maskedState(g, step: t)
                        XCTAssertTrue(hp.allSatisfy { $0 != 0 })
                        let kept = zip(s, hp).map { $0.0 != 0 }
                        for (a, b) in zip(s, hp) where a != 0 { XCTAssertEqual(a, 2 * b, accuracy: 1e-6) }
                        if let seen { XCTAssertEqual(kept, seen, "\(cell) gate \(g) step \(t)") }
                        seen = kept
                    }
                    patterns.insert(seen!)
                }
                XCTAssertEqual(patterns.count, gates, "each gate block has its own mask")
            }
        }
    }

    /// Keras' initialisers: orthogonal recurrent kernels (UᵀU = I for U [gates·H, H]), Glorot-uniform input
    /// kernels, zero biases with the LSTM forget gate at 1, embeddings within ±0.05.
    func testKerasInitializers() throws {
        for cell in ["lstm", "gru"] {
            let H = 16, E = 10
            let net = try network(task: "classify", cell: cell, hidden: H, embedding: E, vocabulary: 50, perturb: false)
            net.initialize(seed: 9, scheme: .keras)
            let gates = cell == "lstm" ? 4 : 3, G = gates * H
            let P = net.parameters
            func t(_ name: String) -> [Float] { let e = net.layout.entry(name)!; return Array(P[e.offset..<(e.offset + e.count)]) }
            var kernels: [[Float]] = []
            for d in ["forward.", "backward."] {
                let U = t("layer.1.\(d)recurrent_kernel")
                kernels.append(U)
                XCTAssertEqual(U.count, G * H)
                for i in 0..<H {
                    for j in 0..<H {
                        var s = 0.0
                        for g in 0..<G { s += Double(U[g * H + i]) * Double(U[g * H + j]) }
                        XCTAssertEqual(s, i == j ? 1 : 0, accuracy: 1e-5, "\(cell) \(d) (\(i), \(j))")
                    }
                }
                // Not a trivial (identity-like) matrix: entries spread like N(0, 1/G).
                let ms = U.map { Double($0) * Double($0) }.reduce(0, +) / Double(U.count)
                XCTAssertEqual(ms, 1 / Double(G), accuracy: 1e-6)
                XCTAssertGreaterThan(U.filter { abs($0) > 0.02 }.count, U.count / 2)
                let W = t("layer.1.\(d)kernel"), limit = (6 / Float(E + G)).squareRoot()
                XCTAssertLessThanOrEqual(W.map(abs).max()!, limit)
                XCTAssertGreaterThan(W.map(abs).max()!, 0.9 * limit)
                let bias = t("layer.1.\(d)bias")
                for (i, v) in bias.enumerated() { XCTAssertEqual(v, cell == "lstm" && i / H == 1 ? 1 : 0) }
                if cell == "gru" { XCTAssertTrue(t("layer.1.\(d)recurrent_bias").allSatisfy { $0 == 0 }) }
            }
            XCTAssertNotEqual(kernels[0], kernels[1])
            let emb = t("layer.0.embeddings")
            XCTAssertLessThanOrEqual(emb.map(abs).max()!, 0.05)
            XCTAssertGreaterThan(emb.map(abs).max()!, 0.045)
            // The uniform scheme is unchanged and different.
            let keras = net.parameters
            net.initialize(seed: 9)
            XCTAssertNotEqual(net.parameters, keras)
        }
    }

    /// The orthogonal factor of a square matrix is orthogonal both ways.
    func testOrthogonalSquare() {
        var rng = SplitMix64(seed: 4)
        let n = 12, q = orthogonalColumns(rows: n, cols: n, &rng)
        for i in 0..<n {
            for j in 0..<n {
                var rows = 0.0, cols = 0.0
                for k in 0..<n { rows += Double(q[i * n + k] * q[j * n + k]); cols += Double(q[k * n + i] * q[k * n + j]) }
                XCTAssertEqual(rows, i == j ? 1 : 0, accuracy: 1e-5)
                XCTAssertEqual(cols, i == j ? 1 : 0, accuracy: 1e-5)
            }
        }
    }

    /// L2: the gradient grows by exactly 2λW on the kernels (input and Dense) and nowhere else, and the
    /// training loss by λ Σ W² per counted item.
    func testL2() throws {
        for (task, cell) in [("classify", "lstm"), ("tag", "gru")] {
            let tagging = task == "tag"
            let net = try network(task: task, cell: cell)
            let data = sequences([5, 2, 4], seed: 16, labels: tagging ? 3 : 2, perStep: tagging)
            let batch = SequenceBatch(data.map(\.tokens), labels: data.map(\.labels), rows: 3, pad: 0, perStep: tagging)
            let r0 = net.forward(batch, train: true), g0 = net.gradients
            let lambda: Float = 0.01
            net.l2 = lambda
            let r1 = net.forward(batch, train: true), g1 = net.gradients
            let P = net.parameters
            var sum = 0.0, kernels = 0
            for e in net.layout.entries {
                let isKernel = e.name.hasSuffix(".kernel") && !e.name.hasSuffix("recurrent_kernel")
                if isKernel { kernels += 1 }
                for i in e.offset..<(e.offset + e.count) {
                    let expected = isKernel ? 2 * Double(lambda) * Double(P[i]) : 0
                    XCTAssertEqual(Double(g1[i] - g0[i]), expected, accuracy: 1e-6 + 1e-5 * abs(expected), "\(e.name)")
                    if isKernel { sum += Double(P[i]) * Double(P[i]) }
                }
            }
            XCTAssertEqual(kernels, tagging ? 3 : 4)   // both directions' input kernels and the Dense kernels
            XCTAssertEqual((r1.loss - r0.loss) / Double(r0.count), Double(lambda) * sum, accuracy: 1e-6 * max(1, sum))
            XCTAssertEqual(net.forward(batch).loss, net.forward(batch, train: false).loss)
        }
    }
}
