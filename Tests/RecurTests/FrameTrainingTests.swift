import Foundation
import XCTest
@testable import Recur
@testable import RecurTraining

/// The frame trainers (classify on frame sequences, last or mean pooling; regress on a series): analytic
/// gradients against central differences of an independent Double forward pass run on each sequence
/// unpadded; trained models written to `.recur` (with input.mean / input.scale, and the forecaster's
/// de-normalisation folded into its head) give the trainer's outputs in the runtime; padding is invisible.
final class FrameTrainingTests: XCTestCase {
    let F = 3

    /// Random frame sequences of the given lengths (values in ±1.5), one label per sequence.
    func frameSequences(_ lengths: [Int], seed: UInt64, classes: Int) -> [(frames: [Float], label: Int)] {
        var rng = SplitMix64(seed: seed)
        return lengths.map { n in
            ((0..<(n * F)).map { _ in Float(rng.nextUnit() * 3 - 1.5) }, Int(rng.next() % UInt64(classes)))
        }
    }

    func perturbed(_ net: SequenceNetwork, seed: UInt64) {
        net.initialize(seed: seed)
        var rng = SplitMix64(seed: seed + 1)
        net.parameters = net.parameters.map { $0 * 3 + Float(rng.nextUnit() - 0.5) * 0.6 }
    }

    func classifier(cell: String, pooling: Pooling, bidirectional: Bool, dense: Int = 3, batch: Int = 3, steps: Int = 6) throws -> SequenceNetwork {
        var c = TaskConfig()
        c.cell = cell; c.hidden = 4; c.denseUnits = dense; c.pooling = pooling; c.bidirectional = bidirectional
        let arch = try TaskTrainer.frameClassifierArchitecture(c, frameSize: F, labels: ["a", "b", "c"])
        let net = try SequenceNetwork(architecture: arch, vocabulary: .empty, maxBatch: batch, maxSteps: steps)
        perturbed(net, seed: 5)
        return net
    }

    /// The Double reference of a frame model without normalisation: recurrent layer over the frames (each
    /// direction from a zero state), last step or mean over the steps, then the dense layers; one row per
    /// step for regressors.
    func reference(_ b: ModelBuilder, _ frames: [Float]) -> [[Double]] {
        let a = b.architecture
        let xs = stride(from: 0, to: frames.count, by: F).map { t in frames[t..<(t + F)].map(Double.init) }
        guard case .recurrent(let r) = a.layers[0] else { fatalError() }
        func run(_ prefix: String, reverse: Bool) -> [[Double]] {
            var h = [Double](repeating: 0, count: r.units), c = h
            var out = [[Double]](repeating: [], count: xs.count)
            for k in 0..<xs.count {
                let t = reverse ? xs.count - 1 - k : k
                (h, c) = ReferenceGenerator.cellStep(b, r, prefix: prefix, x: xs[t], h: h, c: c)
                out[t] = h
            }
            return out
        }
        var rows: [[Double]]
        if r.bidirectional {
            let f = run("layer.0.forward.", reverse: false), bw = run("layer.0.backward.", reverse: true)
            rows = r.returnSequences ? zip(f, bw).map { $0 + $1 } : [f.last! + bw.first!]
        } else {
            let f = run("layer.0.", reverse: false)
            rows = r.returnSequences ? f : [f.last!]
        }
        if a.pooling == .mean {
            rows = [(0..<rows[0].count).map { j in rows.map { $0[j] }.reduce(0, +) / Double(rows.count) }]
        }
        for (i, layer) in a.layers.enumerated().dropFirst() {
            guard case .dense(_, let u, let act) = layer else { fatalError() }
            rows = rows.map { ReferenceGenerator.dense(b, prefix: "layer.\(i).", units: u, activation: act, $0) }
        }
        return rows
    }

    func checkGradients(analytic: [Float], builder b0: ModelBuilder, h: Float = 1e-3, loss: (ModelBuilder) -> Double,
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

    func classifierLoss(_ b: ModelBuilder, _ data: [(frames: [Float], label: Int)]) -> Double {
        data.map { -log(reference(b, $0.frames)[0][$0.label]) }.reduce(0, +) / Double(data.count)
    }

    func batch(_ data: [(frames: [Float], label: Int)], rows: Int) -> SequenceBatch {
        SequenceBatch(frames: data.map(\.frames), frameSize: F, labels: data.map { [$0.label] }, rows: rows, perStep: false)
    }

    // MARK: Gradients

    func testFrameClassifierGradients() throws {
        let data = frameSequences([5, 2, 4], seed: 11, classes: 3)
        for (cell, pooling, bi) in [("gru", Pooling.last, true), ("lstm", .mean, true), ("gru-reset-before", .mean, false),
                                    ("rnn", .last, false), ("lstm", .last, true), ("gru", .mean, true)] {
            let net = try classifier(cell: cell, pooling: pooling, bidirectional: bi)
            let r = net.forward(batch(data, rows: 3), train: true)
            XCTAssertEqual(r.count, 3)
            let b = net.modelBuilder()
            XCTAssertEqual(r.loss / 3, classifierLoss(b, data), accuracy: 1e-5, "\(cell) \(pooling) \(bi)")
            checkGradients(analytic: net.gradients, builder: b) { self.classifierLoss($0, data) }
        }
    }

    func regressor(cell: String = "gru", horizon: Int = 2, dense: Int = 3, batch: Int = 3, steps: Int = 6) throws -> SequenceNetwork {
        var c = TaskConfig()
        c.cell = cell; c.hidden = 4; c.denseUnits = dense; c.horizon = horizon
        let arch = try TaskTrainer.forecasterArchitecture(c, frameSize: F)
        let net = try SequenceNetwork(architecture: arch, vocabulary: .empty, maxBatch: batch, maxSteps: steps)
        perturbed(net, seed: 9)
        return net
    }

    func testRegressorGradientsMSEAndMAE() throws {
        let U = 2
        let seqs = frameSequences([5, 3, 1], seed: 13, classes: 1).map(\.frames)
        var rng = SplitMix64(seed: 14)
        let targets = seqs.map { s in (0..<(s.count / F * U)).map { _ in Float(rng.nextUnit() * 2 - 1) } }
        // Step 0 of the first sequence is a burn-in step: it counts in no loss.
        let counted = seqs.enumerated().map { i, s in (0..<(s.count / F)).map { t in i == 0 && t == 0 ? -1 : 1 } }
        for cell in ["gru", "lstm"] {
            for kind in RegressionLoss.allCases {
                let net = try regressor(cell: cell, horizon: U)
                net.regressionLoss = kind
                let b0 = SequenceBatch(frames: seqs, frameSize: F, labels: counted, rows: 3, perStep: true, targets: targets, outputs: U)
                let r = net.forward(b0, train: true)
                XCTAssertEqual(r.count, 8)
                func loss(_ b: ModelBuilder) -> Double {
                    var total = 0.0
                    for (i, s) in seqs.enumerated() {
                        for (t, row) in reference(b, s).enumerated() where counted[i][t] > 0 {
                            for k in 0..<U {
                                let e = row[k] - Double(targets[i][t * U + k])
                                total += (kind == .mse ? e * e : abs(e)) / Double(U)
                            }
                        }
                    }
                    return total / 8
                }
                let b = net.modelBuilder()
                XCTAssertEqual(r.loss / 8, loss(b), accuracy: 1e-5, "\(cell) \(kind)")
                // MAE is not differentiable where an error is 0; these errors are far from it.
                checkGradients(analytic: net.gradients, builder: b, loss: loss)
            }
        }
    }

    /// Padding (a longer neighbour, filler rows) changes neither loss, accuracy counts nor gradient, with
    /// mean pooling (which averages over real steps only).
    func testPaddingIsInvisibleWithMeanPooling() throws {
        let net = try classifier(cell: "lstm", pooling: .mean, bidirectional: true, batch: 3, steps: 8)
        let data = frameSequences([3, 2], seed: 31, classes: 3)
        let a = batch(data, rows: 3)
        let ra = net.forward(a, train: true)
        let ga = net.gradients
        // The same rows padded to 8 steps, with frames of 7 at the padding and a filler row of them.
        var p = a
        let T = 8, B = 3
        p.T = T
        p.tokens = [Int32](repeating: 0, count: T * B)
        p.mask = [Float](repeating: 0, count: T * B)
        p.frames = [Float](repeating: 7, count: T * B * F)
        for t in 0..<a.T {
            for s in 0..<B where a.mask[t * B + s] != 0 {
                p.mask[t * B + s] = 1
                for j in 0..<F { p.frames[(t * B + s) * F + j] = a.frames[(t * B + s) * F + j] }
            }
        }
        let rp = net.forward(p, train: true)
        XCTAssertEqual(ra.count, 2); XCTAssertEqual(rp.count, 2)
        XCTAssertEqual(ra.correct, rp.correct)
        XCTAssertEqual(ra.loss, rp.loss, accuracy: 1e-6)
        XCTAssertLessThan(zip(ga, net.gradients).map { abs($0 - $1) }.max()!, 1e-6)
    }

    // MARK: Trained models in the runtime

    func runtime(_ b: ModelBuilder) throws -> Model {
        let bytes = b.writer().serialize()
        return try bytes.withUnsafeBytes { try Model(bytes: $0) }
    }

    func testTrainedFrameClassifierMatchesRuntime() throws {
        for pooling in Pooling.allCases {
            let net = try classifier(cell: "gru", pooling: pooling, bidirectional: true, batch: 4)
            // Frames far from zero mean and unit scale, so the stored normalisation matters.
            let data = frameSequences([5, 2, 6, 3, 4, 1, 6, 2], seed: 21, classes: 3).map { s in
                (frames: s.frames.enumerated().map { i, x in x * Float(1 + i % F) + 10 }, label: s.label)
            }
            let norm = FrameNormalization.fit(data.map(\.frames), frameSize: F)
            XCTAssertEqual(Double(norm.mean[0]), 10, accuracy: 0.5)
            var c = TaskConfig(); c.batch = 4; c.epochs = 3; c.patience = 0
            let r = try TaskTrainer.trainFrameSequences(net, c, normalization: norm, train: data, validation: data, log: { _ in })
            let m = try runtime(r.builder)
            XCTAssertEqual(m.architecture.pooling, pooling)
            let items = Array(data.prefix(4))
            let nb = SequenceBatch(frames: items.map { norm.apply($0.frames) }, frameSize: F, labels: items.map { [$0.label] }, rows: 4, perStep: false)
            net.forward(nb)
            let p = net.outputs(nb)
            for (i, s) in items.enumerated() {
                let q = try m.classify(frames: s.frames)
                for k in 0..<3 { XCTAssertEqual(q[k], p[i * 3 + k], accuracy: 1e-5, "\(pooling)") }
            }
        }
    }

    func testNormalizationFit() {
        let n = FrameNormalization.fit([[1, 10, 3, 10], [5, 10]], frameSize: 2)
        XCTAssertEqual(n.mean, [3, 10])
        // σ of 1, 3, 5 is √(8/3); a constant feature keeps scale 1.
        XCTAssertEqual(Double(n.scale[0]), 1 / (8.0 / 3).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(n.scale[1], 1)
        XCTAssertEqual(n.apply([3, 12]), [0, 2])
    }

    /// A short training run of a forecaster: the runtime's outputs over the raw series equal the trainer's
    /// outputs on the normalised series mapped back to the series' units (the folded head).
    func testTrainedForecasterMatchesRuntime() throws {
        var c = TaskConfig()
        c.hidden = 5; c.denseUnits = 4; c.horizon = 3; c.window = 20; c.stride = 5; c.batch = 4; c.epochs = 3; c.patience = 0
        let series = (0..<90).map { t in Float(50 + 30 * sin(Double(t) / 4) + Double(t % 7)) }
        let arch = try TaskTrainer.forecasterArchitecture(c)
        let net = try SequenceNetwork(architecture: arch, vocabulary: .empty, maxBatch: 4, maxSteps: 20)
        let (r, norm) = try TaskTrainer.trainForecaster(net, c, series: series, trainEnd: 60, validationEnd: 75, log: { _ in })
        XCTAssertEqual(Double(norm.mean[0]), series[0..<60].map(Double.init).reduce(0, +) / 60, accuracy: 1e-3)
        let m = try runtime(r.builder)
        XCTAssertEqual(m.architecture.task, .regress)
        let window = Array(series[30..<50])
        let rows = try m.forwardSequence(frames: window)
        let nb = SequenceBatch(frames: [norm.apply(window)], frameSize: 1, labels: [[Int](repeating: 1, count: 20)], rows: 4, perStep: true,
                               targets: [[Float](repeating: 0, count: 60)], outputs: 3)
        net.forward(nb)
        let z = net.outputs(nb)
        for t in 0..<20 {
            for k in 0..<3 {
                let y = Double(z[(t * 4) * 3 + k]) / Double(norm.scale[0]) + Double(norm.mean[0])
                XCTAssertEqual(Double(rows[t][k]), y, accuracy: 1e-4 * max(1, abs(y)))
            }
        }
        // The validation figure is the mean over horizons of the streamed MAE on values 60..<75.
        let f = try ForecastEvaluation.forecasts(m, Array(series[0..<75]))
        let mae = (1...3).map { ForecastEvaluation.errors(f, Array(series[0..<75]), horizon: $0, targets: 60..<75).mae }.reduce(0, +) / 3
        XCTAssertEqual(mae, r.validation, accuracy: 1e-9)
    }

    func testForecastWindowsAndErrors() {
        var c = TaskConfig(); c.window = 3; c.stride = 2; c.horizon = 2; c.burnIn = 1
        let w = TaskTrainer.forecastWindows([0, 1, 2, 3, 4, 5, 6], c)
        // Starts 0 and 2 (start 4 would need values up to 4 + 3 + 2 − 1 = 8).
        XCTAssertEqual(w.count, 2)
        XCTAssertEqual(w[1].inputs, [2, 3, 4])
        XCTAssertEqual(w[1].targets, [3, 4, 4, 5, 5, 6])
        XCTAssertEqual(w[0].counted, [-1, 1, 1])
        // Forecast rows [t+1+0.5, t+2] against the series 0…5, horizon 1 over values 3..<6: errors 0.5 each.
        let series: [Float] = [0, 1, 2, 3, 4, 5]
        let f = (0..<6).map { t in [Float(t) + 1.5, Float(t) + 2] }
        let e1 = ForecastEvaluation.errors(f, series, horizon: 1, targets: 3..<6)
        XCTAssertEqual(e1.count, 3); XCTAssertEqual(e1.mae, 0.5, accuracy: 1e-12); XCTAssertEqual(e1.rmse, 0.5, accuracy: 1e-12)
        let e2 = ForecastEvaluation.errors(f, series, horizon: 2, targets: 1..<6)
        XCTAssertEqual(e2.count, 4); XCTAssertEqual(e2.mae, 0, accuracy: 1e-12)
    }

    // MARK: Readers

    func error(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch let e as RecurError { return e.message } catch { return "\(error)" }
    }

    let ts = """
    # a comment
    @problemName Tiny
    @timeStamps false
    @missing false
    @univariate false
    @dimensions 2
    @equalLength false
    @classLabel true up down
    @data
    1,2,3:4,5,6:up
    7,8:9,10:down

    """

    func testReadTS() throws {
        let d = try FrameData.readTS(ts, file: "t.ts")
        XCTAssertEqual(d.name, "Tiny"); XCTAssertEqual(d.frameSize, 2); XCTAssertEqual(d.labels, ["up", "down"])
        XCTAssertEqual(d.sequences.count, 2)
        // Frame t holds value t of every dimension.
        XCTAssertEqual(d.sequences[0].frames, [1, 4, 2, 5, 3, 6]); XCTAssertEqual(d.sequences[0].label, 0)
        XCTAssertEqual(d.sequences[1].frames, [7, 9, 8, 10]); XCTAssertEqual(d.sequences[1].label, 1)
        XCTAssertEqual(d.longest, 3)
    }

    func testReadTSErrors() {
        func bad(_ text: String) -> String { error { try FrameData.readTS(text, file: "t.ts") } }
        XCTAssertEqual(bad(ts.replacingOccurrences(of: "7,8:9,10:down", with: "7,8:9:down")),
                       "t.ts line 11: dimension 2 has 1 values but dimension 1 has 2; the dimensions of an instance must have the same length")
        XCTAssertEqual(bad(ts.replacingOccurrences(of: "7,8:9,10:down", with: "7,8:9,10:left")),
                       "t.ts line 11: class label 'left' is not declared by @classLabel")
        XCTAssertEqual(bad(ts.replacingOccurrences(of: "7,8:9,10:down", with: "7,x:9,10:down")),
                       "t.ts line 11: dimension 1, value 2 'x' is not a finite number")
        XCTAssertEqual(bad(ts.replacingOccurrences(of: "7,8:9,10:down", with: "7,?:9,10:down")),
                       "t.ts line 11: dimension 1, value 2 is missing ('?'); missing values are not supported")
        XCTAssertEqual(bad(ts.replacingOccurrences(of: "7,8:9,10:down", with: "7,8:down")),
                       "t.ts line 11: expected 2 dimensions and a class label separated by ':', found 2 fields")
        XCTAssertEqual(bad(ts.replacingOccurrences(of: "@classLabel true up down", with: "@classLabel false")),
                       "t.ts line 8: the file has no class labels (@classLabel false); a classifier needs them")
        XCTAssertEqual(bad(ts.replacingOccurrences(of: "@timeStamps false", with: "@timeStamps true")),
                       "t.ts line 3: time-stamped series are not supported")
        XCTAssertEqual(bad("hello\n"), "t.ts line 1: expected a header tag (@…) or @data before the data")
        XCTAssertEqual(bad("@problemName x\n"), "t.ts: no @data line: not a .ts file")
        XCTAssertEqual(bad(ts.replacingOccurrences(of: "1,2,3:4,5,6:up\n7,8:9,10:down\n", with: "")), "t.ts: no instances after @data")
        XCTAssertEqual(bad(ts.replacingOccurrences(of: "1,2,3:4,5,6:up", with: "1,nan,3:4,5,6:up")),
                       "t.ts line 10: dimension 1, value 2 'nan' is not a finite number")
        for m in [bad("@data\n1:a\n"), bad(ts.replacingOccurrences(of: "@dimensions 2", with: "@dimensions 0"))] {
            XCTAssertFalse(m.contains("\n")); XCTAssertTrue(m.hasPrefix("t.ts"), m)
        }
    }

    func dataFile(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../data/frames/\(name)")
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// The shipped JapaneseVowels files: 270 / 370 utterances of 7–29 frames of 12 coefficients, 9 speakers.
    func testReadJapaneseVowels() throws {
        let train = try FrameData.readTS(dataFile("JapaneseVowels_TRAIN.ts"), file: "train")
        let test = try FrameData.readTS(dataFile("JapaneseVowels_TEST.ts"), file: "test")
        XCTAssertEqual(train.name, "JapaneseVowels")
        XCTAssertEqual(train.frameSize, 12); XCTAssertEqual(train.labels, (1...9).map(String.init))
        XCTAssertEqual(train.sequences.count, 270); XCTAssertEqual(test.sequences.count, 370)
        let lengths = (train.sequences + test.sequences).map { $0.frames.count / 12 }
        XCTAssertEqual(lengths.min(), 7); XCTAssertEqual(lengths.max(), 29)
        XCTAssertEqual(Set(train.sequences.map(\.label)).count, 9)
        // The first value of the first utterance, as printed in the file.
        XCTAssertEqual(train.sequences[0].frames[0], 1.860936)
        XCTAssertEqual(train.sequences[0].frames[1], -0.207383)
    }

    func testReadSequenceCSV() throws {
        let csv = "sequence,x,label,\"y\"\ns1,1,b,2\ns1,3,b,4\n\ns2,5,a,6\ns10,7,c,8\n"
        let d = try FrameData.readSequenceCSV(csv, file: "s.csv")
        XCTAssertEqual(d.frameSize, 2); XCTAssertEqual(d.labels, ["a", "b", "c"])
        XCTAssertEqual(d.sequences.map(\.frames), [[1, 2, 3, 4], [5, 6], [7, 8]])
        XCTAssertEqual(d.sequences.map(\.label), [1, 0, 2])
        let numeric = try FrameData.readSequenceCSV("id,v,y\na,1,10\nb,2,9\n", file: "n.csv", sequenceColumn: "id", labelColumn: "y")
        XCTAssertEqual(numeric.labels, ["9", "10"])
        func bad(_ text: String) -> String { error { try FrameData.readSequenceCSV(text, file: "s.csv") } }
        XCTAssertEqual(bad("sequence,x,label\ns1,1,a\ns2,2,b\ns1,3,a\n"), "s.csv line 4: sequence 's1' comes back after other sequences; keep its rows together")
        XCTAssertEqual(bad("sequence,x,label\ns1,1,a\ns1,2,b\n"), "s.csv line 3: sequence 's1' has label 'b' here but 'a' above")
        XCTAssertEqual(bad("sequence,x,label\ns1,,a\n"), "s.csv line 2: column 'x' is empty")
        XCTAssertEqual(bad("sequence,x,label\ns1,1\n"), "s.csv line 2: 2 fields but the header has 3")
        XCTAssertEqual(bad("seq,x,label\ns1,1,a\n"), "s.csv line 1: no column 'sequence' (the sequence-id column; the header has seq, x, label)")
        XCTAssertEqual(bad("sequence,label\ns1,a\n"), "s.csv line 1: no feature columns besides 'sequence' and 'label'")
        XCTAssertEqual(bad("sequence,x,label\n\"s1,1,a\n"), "s.csv line 2: a quoted field is not closed")
        XCTAssertEqual(bad(""), "s.csv: empty file (a header row naming the columns comes first)")
        XCTAssertEqual(bad("sequence,x,label\n"), "s.csv: no rows after the header")
    }

    func testReadSeriesCSV() throws {
        XCTAssertEqual(try FrameData.readSeriesCSV("\"YEAR\",\"SUNACTIVITY\"\r\n1700,5\r\n1701,11.5\r\n", file: "y.csv"), [5, 11.5])
        XCTAssertEqual(try FrameData.readSeriesCSV("a,b\n1,2\n3,4\n", file: "y.csv", column: "a"), [1, 3])
        XCTAssertEqual(error { try FrameData.readSeriesCSV("date,co2\n1958-03-29,316.1\n1958-04-05,\n", file: "co2.csv") },
                       "co2.csv line 3: column 'co2' is empty")
        XCTAssertEqual(error { try FrameData.readSeriesCSV("a,b\n1,inf\n", file: "y.csv") }, "y.csv line 2: column 'b' 'inf' is not a finite number")
        XCTAssertEqual(error { try FrameData.readSeriesCSV("a,b\n1,2\n", file: "y.csv", column: "c") },
                       "y.csv line 1: no column 'c' (--column; the header has a, b)")
        let sun = try FrameData.readSeriesCSV(dataFile("sunspots_monthly.csv"), file: "sun", column: "sunspots")
        XCTAssertEqual(sun.count, 3120); XCTAssertEqual(sun[0], 58); XCTAssertEqual(sun[3119], 0.8)
    }
}
