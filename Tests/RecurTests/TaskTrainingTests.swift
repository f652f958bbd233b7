import XCTest
@testable import Recur
@testable import RecurTraining

/// The classify / tag / seq2seq trainers: analytic gradients against central differences of an independent
/// Double forward pass (`referenceSequence` and `ReferenceGenerator`, which run each sequence unpadded),
/// outputs of trained models against the runtime, and masked accuracy.
final class TaskTrainingTests: XCTestCase {
    let V = 12

    func vocab() throws -> Vocabulary { try wordVocabulary(V) }

    /// Random sequences of different lengths (tokens 1..<V: UNK and words, never PAD).
    func sequences(_ lengths: [Int], seed: UInt64, labels: Int, perStep: Bool) -> [(tokens: [Int], labels: [Int])] {
        var rng = SplitMix64(seed: seed)
        return lengths.map { n in
            let t = (0..<n).map { _ in 1 + Int(rng.next() % UInt64(V - 1)) }
            let l = (0..<(perStep ? n : 1)).map { _ in Int(rng.next() % UInt64(labels)) }
            return (t, l)
        }
    }

    func sequenceNetwork(task: String, cell: String, seed: UInt64 = 5, batch: Int = 3, steps: Int = 6) throws -> SequenceNetwork {
        var c = TaskConfig()
        c.cell = cell; c.hidden = 4; c.embedding = 3; c.denseUnits = 3
        let arch = task == "classify" ? try TaskTrainer.classifierArchitecture(c, vocabulary: V)
                                      : try TaskTrainer.taggerArchitecture(c, vocabulary: V, tags: ["A", "B", "C"])
        let net = try SequenceNetwork(architecture: arch, vocabulary: try vocab(), maxBatch: batch, maxSteps: steps)
        net.initialize(seed: seed)
        // Larger weights than at initialization, so gates work away from their linear region.
        var rng = SplitMix64(seed: seed + 1)
        net.parameters = net.parameters.map { $0 * 3 + Float(rng.nextUnit() - 0.5) * 0.6 }
        return net
    }

    /// Mean reference loss of the builder's weights over unpadded sequences.
    func referenceLoss(_ b: ModelBuilder, _ data: [(tokens: [Int], labels: [Int])], tagging: Bool) -> Double {
        var total = 0.0, n = 0
        for (tokens, labels) in data {
            let out = referenceSequence(b, tokens, pad: 0)
            if tagging {
                for (t, y) in labels.enumerated() { total -= log(out[t][y]); n += 1 }
            } else {
                let p = out[0][0]
                total -= labels[0] == 1 ? log(p) : log(1 - p); n += 1
            }
        }
        return total / Double(n)
    }

    func checkGradients(analytic: [Float], builder b0: ModelBuilder, h: Float = 1e-3,
                        loss: (ModelBuilder) -> Double, file: StaticString = #filePath, line: UInt = #line) {
        let layout = ParameterLayout(b0.architecture)
        var worst = 0.0, checked = 0
        for e in layout.entries {
            let ti = b0.tensors.firstIndex { $0.name == e.name }!
            for j in 0..<e.count {
                var bp = b0, bm = b0
                bp.tensors[ti].values[j] += h
                bm.tensors[ti].values[j] -= h
                let step = Double(bp.tensors[ti].values[j]) - Double(bm.tensors[ti].values[j])
                let numeric = (loss(bp) - loss(bm)) / step
                let a = Double(analytic[e.offset + j])
                let err = abs(a - numeric) / (2e-3 + abs(numeric))
                worst = max(worst, err)
                checked += 1
                if err > 2e-2 {
                    XCTFail("\(e.name)[\(j)]: analytic \(a), numeric \(numeric)", file: file, line: line)
                    return
                }
            }
        }
        XCTAssertEqual(checked, layout.count, file: file, line: line)
    }

    // MARK: Gradients

    func testClassifierGradientBidirectionalMasked() throws {
        for cell in ["lstm", "gru", "gru-reset-before", "rnn"] {
            let net = try sequenceNetwork(task: "classify", cell: cell)
            let data = sequences([5, 2, 4], seed: 11, labels: 2, perStep: false)
            let batch = SequenceBatch(data.map(\.tokens), labels: data.map(\.labels), rows: 3, pad: 0, perStep: false)
            let r = net.forward(batch, train: true)
            let b = net.modelBuilder()
            XCTAssertEqual(r.loss / Double(r.count), referenceLoss(b, data, tagging: false), accuracy: 1e-5, cell)
            checkGradients(analytic: net.gradients, builder: b) { self.referenceLoss($0, data, tagging: false) }
        }
    }

    func testTaggerGradientBidirectionalMasked() throws {
        for cell in ["gru", "lstm"] {
            let net = try sequenceNetwork(task: "tag", cell: cell)
            let data = sequences([6, 3, 1], seed: 12, labels: 3, perStep: true)
            let batch = SequenceBatch(data.map(\.tokens), labels: data.map(\.labels), rows: 3, pad: 0, perStep: true)
            let r = net.forward(batch, train: true)
            XCTAssertEqual(r.count, 10, "only real tokens count")
            let b = net.modelBuilder()
            XCTAssertEqual(r.loss / Double(r.count), referenceLoss(b, data, tagging: true), accuracy: 1e-5, cell)
            checkGradients(analytic: net.gradients, builder: b) { self.referenceLoss($0, data, tagging: true) }
        }
    }

    func seq2seqNetwork(seed: UInt64 = 7, batch: Int = 3, reverseSource: Bool = false,
                        attention: AttentionScore? = nil, attentionUnits: Int? = nil, bidirectional: Bool = false,
                        inputFeeding: Bool = false) throws -> Seq2SeqNetwork {
        var c = TaskConfig()
        c.hidden = 4; c.embedding = 3; c.reverseSource = reverseSource; c.attention = attention
        c.attentionUnits = attentionUnits; c.bidirectionalEncoder = bidirectional; c.inputFeeding = inputFeeding
        let src = try Vocabulary(kind: .word, pieces: ["<pad>", "<unk>", "<eos>"] + (3..<9).map { "s\($0)" }, pad: 0, unk: 1, eos: 2, lowercase: true)
        let tgt = try Vocabulary(kind: .word, pieces: ["<pad>", "<unk>", "<bos>", "<eos>"] + (4..<10).map { "t\($0)" }, pad: 0, unk: 1, bos: 2, eos: 3, lowercase: true)
        let arch = try TaskTrainer.seq2seqArchitecture(c, source: src.count, target: tgt.count)
        let net = try Seq2SeqNetwork(architecture: arch, vocabulary: tgt, sourceVocabulary: src, maxBatch: batch, maxSource: 6, maxTarget: 6)
        net.initialize(seed: seed)
        var rng = SplitMix64(seed: seed + 1)
        net.parameters = net.parameters.map { $0 * 3 + Float(rng.nextUnit() - 0.5) * 0.6 }
        return net
    }

    let pairs: [(source: [Int], target: [Int])] = [([3, 5, 8, 4, 2], [4, 9, 6]), ([7, 2], [5, 5, 8, 4, 7]), ([4, 6, 2], [9])]

    /// Double reference of the seq2seq loss: encoder over the source, decoder from its final state.
    func referencePairLoss(_ b: ModelBuilder, _ pairs: [(source: [Int], target: [Int])]) -> ([Double], [[[Double]]]) {
        guard case .recurrent(let re) = b.architecture.encoder[1], case .recurrent(let rd) = b.architecture.layers[1] else { fatalError() }
        let es = tensorValues(b, "encoder.layer.0.embeddings"), et = tensorValues(b, "layer.0.embeddings")
        let E = re.inputSize, Vt = b.vocabulary.count
        var losses: [Double] = [], dists: [[[Double]]] = []
        for (s, y) in pairs {
            var h = [Double](repeating: 0, count: re.units), c = h
            for tok in s { (h, c) = ReferenceGenerator.cellStep(b, re, prefix: "encoder.layer.1.", x: Array(es[(tok * E)..<((tok + 1) * E)]), h: h, c: c) }
            var loss = 0.0, rows: [[Double]] = []
            for (inp, tgt) in zip([2] + y, y + [3]) {
                (h, c) = ReferenceGenerator.cellStep(b, rd, prefix: "layer.1.", x: Array(et[(inp * E)..<((inp + 1) * E)]), h: h, c: c)
                let p = ReferenceGenerator.dense(b, prefix: "layer.2.", units: Vt, activation: .softmax, h)
                loss -= log(p[tgt]); rows.append(p)
            }
            losses.append(loss); dists.append(rows)
        }
        return (losses, dists)
    }

    func testSeq2SeqGradient() throws {
        let net = try seq2seqNetwork()
        let batch = PairBatch(sources: pairs.map(\.source), targets: pairs.map(\.target), rows: 3, pad: 0, bos: 2, eos: 3)
        let r = net.forward(batch, train: true)
        XCTAssertEqual(r.count, 12)
        let b = net.modelBuilder()
        let n = Double(r.count)
        XCTAssertEqual(r.loss / n, referencePairLoss(b, pairs).0.reduce(0, +) / n, accuracy: 1e-5)
        checkGradients(analytic: net.gradients, builder: b) { self.referencePairLoss($0, self.pairs).0.reduce(0, +) / n }
    }

    /// With dropout, the gradient is that of the loss under the same masks (central differences of the
    /// network's own masked pass, every weight); the masks drop about p of the elements; a pass without a
    /// mask seed is the plain one.
    func testSeq2SeqGradientWithDropout() throws {
        let net = try seq2seqNetwork()
        net.dropout = 0.3
        let batch = PairBatch(sources: pairs.map(\.source), targets: pairs.map(\.target), rows: 3, pad: 0, bos: 2, eos: 3)
        let plain = net.forward(batch).loss
        let r = net.forward(batch, train: true, dropoutSeed: 99)
        XCTAssertNotEqual(r.loss, plain)
        let zeros = (0..<(batch.T * 3 * 4)).filter { net.maskO.p[$0] == 0 }.count
        XCTAssertGreaterThan(zeros, 0); XCTAssertLessThan(zeros, batch.T * 3 * 4 / 2)
        let analytic = net.gradients, p0 = net.parameters
        let n = Double(r.count), h: Float = 1e-2
        var worst = 0.0
        for j in 0..<p0.count {
            var p = p0
            p[j] = p0[j] + h; net.parameters = p
            let lp = net.forward(batch, train: false, dropoutSeed: 99).loss
            p[j] = p0[j] - h; net.parameters = p
            let lm = net.forward(batch, train: false, dropoutSeed: 99).loss
            let numeric = (lp - lm) / (2 * Double(h)) / n
            let err = abs(Double(analytic[j]) - numeric) / (1e-2 + abs(numeric))
            worst = max(worst, err)
        }
        net.parameters = p0
        XCTAssertLessThan(worst, 2e-2)
        XCTAssertEqual(net.forward(batch).loss, plain)
    }

    // MARK: Trained models in the runtime

    func runtime(_ b: ModelBuilder) throws -> Model {
        let bytes = b.writer().serialize()
        return try bytes.withUnsafeBytes { try Model(bytes: $0) }
    }

    func testTrainedClassifierMatchesRuntime() throws {
        let net = try sequenceNetwork(task: "classify", cell: "lstm", batch: 4)
        let data = sequences([5, 2, 6, 3, 4, 1, 6, 2], seed: 21, labels: 2, perStep: false)
        var c = TaskConfig(); c.batch = 4; c.epochs = 3; c.maxLength = 6; c.patience = 0
        let r = try TaskTrainer.trainSequences(net, c, train: data, validation: data, log: { _ in })
        let m = try runtime(r.builder)
        let batch = SequenceBatch(data.prefix(4).map(\.tokens), labels: data.prefix(4).map(\.labels), rows: 4, pad: 0, perStep: false)
        net.forward(batch)
        let p = net.outputs(batch)
        for (i, s) in data.prefix(4).enumerated() {
            let q = try m.classify(tokens: s.tokens)
            XCTAssertEqual(Double(q[1]), Double(p[i]), accuracy: 1e-5)
        }
    }

    func testTrainedTaggerMatchesRuntimeAndMaskedAccuracy() throws {
        let net = try sequenceNetwork(task: "tag", cell: "gru", batch: 4)
        let data = sequences([5, 2, 6, 3, 4, 1, 6, 2], seed: 22, labels: 3, perStep: true)
        var c = TaskConfig(); c.batch = 4; c.epochs = 3; c.maxLength = 6; c.patience = 0
        let r = try TaskTrainer.trainSequences(net, c, train: data, validation: data, log: { _ in })
        let m = try runtime(r.builder)
        let items = Array(data.prefix(4))
        let batch = SequenceBatch(items.map(\.tokens), labels: items.map(\.labels), rows: 4, pad: 0, perStep: true)
        let res = net.forward(batch)
        let p = net.outputs(batch)
        var correct = 0, count = 0
        for (b, s) in items.enumerated() {
            let rows = try m.forwardSequence(s.tokens)
            for t in 0..<s.tokens.count {
                for k in 0..<3 { XCTAssertEqual(rows[t][k], p[(t * 4 + b) * 3 + k], accuracy: 1e-5) }
            }
            for (t, y) in try m.tag(tokens: s.tokens).enumerated() {
                count += 1
                if y == s.labels[t] { correct += 1 }
            }
        }
        // The accuracy counts real tokens only: 16 of the batch's 24 positions.
        XCTAssertEqual(res.count, 16)
        XCTAssertEqual(count, 16)
        XCTAssertEqual(res.correct, correct)
    }

    /// Padding a batch further (a longer neighbour, empty filler rows) changes neither the loss, the
    /// accuracy counts nor the gradient.
    func testPaddingIsInvisible() throws {
        let net = try sequenceNetwork(task: "tag", cell: "lstm", batch: 3, steps: 6)
        let data = sequences([3, 2], seed: 31, labels: 3, perStep: true)
        let a = SequenceBatch(data.map(\.tokens), labels: data.map(\.labels), rows: 3, pad: 0, perStep: true)
        let ra = net.forward(a, train: true)
        let ga = net.gradients
        // The same rows padded to 6 steps, with labels at the padding that would count as errors.
        var b = a
        let T = 6, B = 3
        b.T = T
        b.tokens = [Int32](repeating: 0, count: T * B); b.mask = [Float](repeating: 0, count: T * B); b.labels = [Int32](repeating: 1, count: T * B)
        for t in 0..<a.T { for s in 0..<B { b.tokens[t * B + s] = a.tokens[t * B + s]; b.mask[t * B + s] = a.mask[t * B + s]; b.labels[t * B + s] = a.labels[t * B + s] } }
        let rb = net.forward(b, train: true)
        XCTAssertEqual(ra.count, 5); XCTAssertEqual(rb.count, 5)
        XCTAssertEqual(ra.correct, rb.correct)
        XCTAssertEqual(ra.loss, rb.loss, accuracy: 1e-6)
        XCTAssertLessThan(zip(ga, net.gradients).map { abs($0 - $1) }.max()!, 1e-6)
    }

    /// Trains `net` for 3 epochs (scheduled sampling 0.3) on `pairs` and checks that the written model's
    /// decoder outputs, stepped by the runtime from each encoded source (given in reading order), equal the
    /// trainer's distributions.
    func trainAndCompareWithRuntime(_ net: Seq2SeqNetwork, attention: AttentionScore? = nil,
                                    file: StaticString = #filePath, line: UInt = #line) throws -> (ModelBuilder, Model, [Float]) {
        var c = TaskConfig(); c.batch = 3; c.epochs = 3; c.patience = 0; c.samplingRate = 0.3; c.attention = attention
        let r = try TaskTrainer.trainPairs(net, c, train: pairs, validation: pairs, log: { _ in })
        let m = try runtime(r.builder)
        let batch = net.batch(pairs, rows: 3)   // each source in the order the encoder reads it
        net.forward(batch)
        let d = net.distributions(batch)
        let Vt = net.vocabulary.count
        for (b, (s, y)) in pairs.enumerated() {
            let st = try m.encode(source: s)
            for (t, inp) in ([2] + y).enumerated() {
                try st.step(inp)
                let out = Array(UnsafeBufferPointer(start: st.output, count: Vt))
                for k in 0..<Vt {
                    XCTAssertEqual(out[k], d[(t * 3 + b) * Vt + k], accuracy: 1e-5, "pair \(b) step \(t)", file: file, line: line)
                }
            }
        }
        return (r.builder, m, d)
    }

    func testTrainedTranslatorMatchesRuntime() throws {
        let net = try seq2seqNetwork(batch: 3)
        let (builder, m, d) = try trainAndCompareWithRuntime(net)
        let Vt = net.vocabulary.count
        // The reference agrees too.
        let ref = referencePairLoss(builder, pairs).1
        for (b, rows) in ref.enumerated() {
            for (t, row) in rows.enumerated() {
                for k in 0..<Vt { XCTAssertEqual(Double(d[(t * 3 + b) * Vt + k]), row[k], accuracy: 1e-5) }
            }
        }
        _ = try m.translate(source: pairs[0].source, beam: 4, maxLength: 8)
    }

    /// A model trained with reversed sources: the trainer's batches hold each source reversed before its
    /// EOS, the file records `encoder.reverse_source`, and the runtime, given the sources in reading order,
    /// gives the trainer's decoder distributions, the Double reference's on explicitly reversed sources,
    /// and the trainer's own greedy decoding.
    func testReversedSourceTranslatorMatchesRuntime() throws {
        let net = try seq2seqNetwork(batch: 3, reverseSource: true)
        var c = TaskConfig(); c.batch = 3; c.epochs = 3; c.patience = 0
        let r = try TaskTrainer.trainPairs(net, c, train: pairs, validation: pairs, log: { _ in })
        let m = try runtime(r.builder)
        XCTAssertTrue(m.architecture.reverseSource)
        let batch = net.batch(pairs, rows: 3)
        XCTAssertEqual((0..<batch.S).map { Int(batch.source[$0 * 3]) }, [4, 8, 5, 3, 2])
        XCTAssertEqual((0..<batch.S).map { Int(batch.source[$0 * 3 + 2]) }, [6, 4, 2, 0, 0])
        net.forward(batch)
        let d = net.distributions(batch)
        let Vt = net.vocabulary.count
        let reversed = pairs.map { (source: Array($0.source.dropLast().reversed()) + [2], target: $0.target) }
        let ref = referencePairLoss(r.builder, reversed).1
        for (b, (s, y)) in pairs.enumerated() {
            let st = try m.encode(source: s)
            for (t, inp) in ([2] + y).enumerated() {
                try st.step(inp)
                let out = Array(UnsafeBufferPointer(start: st.output, count: Vt))
                for k in 0..<Vt {
                    XCTAssertEqual(out[k], d[(t * 3 + b) * Vt + k], accuracy: 1e-5)
                    XCTAssertEqual(Double(out[k]), ref[b][t][k], accuracy: 1e-5)
                }
            }
        }
        // Greedy decoding by the trainer's network (teacher-forced on its own argmax prefix) = the runtime's.
        func trainerGreedy(_ s: [Int], maxLength: Int) -> [Int] {
            var y: [Int] = []
            while y.count < maxLength {
                let b = net.batch([(s, y)], rows: 3)
                net.forward(b)
                let row = Array(net.distributions(b)[(y.count * 3 * Vt)..<((y.count * 3 + 1) * Vt)])
                var best = 0
                for k in 1..<Vt where row[k] > row[best] { best = k }
                if best == 3 { break }
                y.append(best)
            }
            return y
        }
        for (s, _) in pairs + [([8, 8, 3, 2], [])] {
            let want = trainerGreedy(s, maxLength: 5)
            XCTAssertEqual(try m.translateGreedy(source: s, maxLength: 5).tokens, want)
            XCTAssertEqual(try m.translate(source: s, beam: 1, maxLength: 5, lengthPenalty: 0.5).tokens, want)
        }
        // The same weights without the key, given the words reversed, translate alike (text API: EOS appended).
        var plain = r.builder
        plain.architecture.reverseSource = false
        let mp = try runtime(plain)
        XCTAssertFalse(mp.architecture.reverseSource)
        let hr = try m.encode(source: [3, 5, 8, 4]).hidden(0), hp = try mp.encode(source: [3, 5, 8, 4]).hidden(0)
        // The reading order changes the encoder's state far beyond the tolerances above.
        XCTAssertGreaterThan(zip(hr, hp).map { abs($0 - $1) }.max()!, 1e-3)
        for k in [1, 3] {
            let a = try m.translate("s3 s5 s8 s4", beam: k, maxLength: 5), b = try mp.translate("s4 s8 s5 s3", beam: k, maxLength: 5)
            XCTAssertEqual(a.tokens, b.tokens)
            XCTAssertEqual(a.logProbability, b.logProbability, accuracy: 1e-9)
        }
    }

    /// The seq2seq trainer trains GRU encoder-decoders; another cell is refused, never replaced.
    func testSeq2SeqRefusesOtherCells() throws {
        var c = TaskConfig()
        for cell in ["lstm", "peephole-lstm", "rnn", "gru-reset-before"] {
            c.cell = cell
            assertThrowsRecur(.unsupported, "--cell \(cell) is not supported") { _ = try TaskTrainer.seq2seqArchitecture(c, source: 9, target: 9) }
        }
        c.cell = "gru"
        XCTAssertNoThrow(try TaskTrainer.seq2seqArchitecture(c, source: 9, target: 9))
    }

    func testEncoderInputOrder() throws {
        let arch = try TaskTrainer.seq2seqArchitecture(TaskConfig(), source: 9, target: 9)
        XCTAssertEqual(arch.encoderInput([3, 5, 0, 8, 2], pad: 0, eos: 2), [3, 5, 8, 2])
        var rev = arch
        rev.reverseSource = true
        XCTAssertEqual(rev.encoderInput([3, 5, 0, 8, 2], pad: 0, eos: 2), [8, 5, 3, 2])
        XCTAssertEqual(rev.encoderInput([3, 5, 8], pad: 0, eos: 2), [8, 5, 3])
        XCTAssertEqual(rev.encoderInput([2], pad: 0, eos: 2), [2])
        XCTAssertEqual(rev.encoderInput([4, 2, 7], pad: nil, eos: nil), [7, 2, 4])
        XCTAssertTrue(rev.metadata.contains { $0.0 == "encoder.reverse_source" && $0.1 == .bool(true) })
        XCTAssertFalse(arch.metadata.contains { $0.0 == "encoder.reverse_source" })
        var bad = try TaskTrainer.classifierArchitecture(TaskConfig(), vocabulary: 9)
        bad.reverseSource = true
        XCTAssertThrowsError(try bad.validate())
    }

    // MARK: Data

    func testBLEU() {
        let w = { (s: String) in s.split(separator: " ").map(String.init) }
        // Precisions 5/6, 3/5, 2/4, 1/3, equal lengths: (1/12)^(1/4).
        XCTAssertEqual(corpusBLEU(hypotheses: [w("the cat sat on the mat")], references: [w("the cat sat on a mat")]),
                       pow(1.0 / 12, 0.25), accuracy: 1e-12)
        XCTAssertEqual(corpusBLEU(hypotheses: [w("a b c d e")], references: [w("a b c d e")]), 1, accuracy: 1e-12)
        // Brevity: hypothesis 4 words, reference 8, all n-grams matching: exp(1 − 8/4).
        XCTAssertEqual(corpusBLEU(hypotheses: [w("a b c d")], references: [w("a b c d e f g h")]), exp(-1.0), accuracy: 1e-12)
        XCTAssertEqual(corpusBLEU(hypotheses: [w("x y")], references: [w("a b")]), 0)
    }

    func testSplitAndVocabulary() throws {
        XCTAssertEqual((0..<20).map { TaskData.part($0) }.filter { $0 == .test }.count, 2)
        let (tr, va, te) = TaskData.split(Array(0..<30))
        XCTAssertEqual(va, [8, 18, 28]); XCTAssertEqual(te, [9, 19, 29]); XCTAssertEqual(tr.count, 24)
        let v = try TaskData.vocabulary([["b", "a", "b"], ["c", "b", "a"]], cap: 4, specials: ["<pad>", "<unk>"], pad: 0, unk: 1)
        XCTAssertEqual(v.pieces, ["<pad>", "<unk>", "b", "a"])
        XCTAssertEqual(TaskData.ids(["a", "c"], v), [3, 1])
        let tagged = try TaskData.tagged("A/b/NOUN x/PUNCT\n")
        XCTAssertEqual(tagged[0].words, ["A/b", "x"]); XCTAssertEqual(tagged[0].tags, ["NOUN", "PUNCT"])
        XCTAssertEqual(TaskData.ids(["A", "C"], v), [3, 1], "the lookup lowercases")
    }

    /// With signatures, the words left out of the vocabulary (fewer than minCount occurrences) give the
    /// signature pieces, which follow the specials; training and the runtime read every word the same way.
    func testVocabularyWithSignatures() throws {
        let sentences = [["The", "dog", "Barked", "loudly"], ["the", "dog", "ran", "quickly"], ["A", "Cat", "ran", "1984"]]
        let v = try TaskData.vocabulary(sentences, cap: 100, minCount: 2, specials: ["<pad>", "<unk>"], pad: 0, unk: 1,
                                        signatures: ["ly", "ed"])
        // Left out: barked (1), loudly, quickly, a, cat, 1984 → <unk-cap-ed>, <unk-ly> ×2, <unk-cap> ×2, <unk-num>.
        XCTAssertEqual(v.pieces, ["<pad>", "<unk>", "<unk-cap>", "<unk-ly>", "<unk-cap-ed>", "<unk-num>", "dog", "ran", "the"])
        XCTAssertTrue(v.unkSignatures); XCTAssertEqual(v.unkSuffixes, ["ly", "ed"])
        XCTAssertEqual(TaskData.ids(["The", "Hopped", "madly", "Zed", "2001", "x-ray"], v), [8, 4, 3, 2, 5, 1])
        XCTAssertEqual(try v.encode("The Hopped madly, Zed 2001"), [8, 4, 3, 1, 2, 5], "',' has no signature piece: UNK")
        XCTAssertEqual(try TaskData.ids(ofText: "The DOG ran", v), [8, 6, 7])
        let plain = try TaskData.vocabulary(sentences, cap: 100, minCount: 2, specials: ["<pad>", "<unk>"], pad: 0, unk: 1)
        XCTAssertEqual(plain.pieces, ["<pad>", "<unk>", "dog", "ran", "the"])
        XCTAssertFalse(plain.unkSignatures)
    }

    // MARK: Scheduled sampling

    /// Random pairs for the seq2seq network of `seq2seqNetwork` (sources end with EOS 2; targets 1...5 tokens).
    func randomPairs(_ n: Int, seed: UInt64) -> [(source: [Int], target: [Int])] {
        var rng = SplitMix64(seed: seed)
        func int(_ r: Range<Int>) -> Int { r.lowerBound + Int(rng.next() % UInt64(r.count)) }
        return (0..<n).map { _ in
            ((0..<int(1..<6)).map { _ in int(3..<9) } + [2], (0..<int(1..<6)).map { _ in int(4..<10) })
        }
    }

    func pairBatch(_ net: Seq2SeqNetwork, _ items: [(source: [Int], target: [Int])]) -> PairBatch {
        net.batch(items, rows: items.count)
    }

    /// Rate 0 is teacher forcing exactly: the same inputs, loss and gradients, and no draw from the generator.
    func testScheduledSamplingAtRateZeroIsTeacherForcing() throws {
        let net = try seq2seqNetwork(batch: 3)
        let batch = pairBatch(net, pairs)
        let tf = net.forward(batch, train: true)
        let g = net.gradients
        var rng = SplitMix64(seed: 9)
        let r = net.forward(batch, train: true, samplingRate: 0, rng: &rng)
        XCTAssertEqual(r.loss, tf.loss)
        XCTAssertEqual(net.gradients, g)
        XCTAssertEqual(net.lastInputs, batch.input)
        XCTAssertFalse(net.lastFed.contains(true))
        var fresh = SplitMix64(seed: 9)
        XCTAssertEqual(rng.next(), fresh.next())
    }

    /// p > 0 feeds the model's prediction at about the rate p of the real target positions after BOS,
    /// never at BOS or padding.
    func testScheduledSamplingFeedsPredictionsAtTheRate() throws {
        let B = 16
        let net = try seq2seqNetwork(batch: B)
        for p in [0.3, 0.8] {
            var rng = SplitMix64(seed: 5)
            var fedCount = 0, eligible = 0
            for k in 0..<30 {
                let batch = pairBatch(net, randomPairs(B, seed: UInt64(100 + k)))
                net.forward(batch, train: false, samplingRate: p, rng: &rng)
                for t in 0..<batch.T {
                    for b in 0..<B {
                        let i = t * B + b
                        if t == 0 || batch.targetMask[i] == 0 {
                            XCTAssertFalse(net.lastFed[i])
                            XCTAssertEqual(net.lastInputs[i], batch.input[i])
                        } else {
                            eligible += 1
                            if net.lastFed[i] { fedCount += 1 } else { XCTAssertEqual(net.lastInputs[i], batch.input[i]) }
                        }
                    }
                }
            }
            let rate = Double(fedCount) / Double(eligible)
            let sigma = (p * (1 - p) / Double(eligible)).squareRoot()
            XCTAssertGreaterThan(eligible, 1000)
            XCTAssertEqual(rate, p, accuracy: 4 * sigma, "p = \(p): fed \(fedCount) of \(eligible)")
        }
    }

    /// The prediction fed at step t is the model's most likely token after the inputs actually fed before
    /// it (step by step, not a prediction from a teacher-forced pass), and the pass — loss and gradients,
    /// with dropout — is the teacher-forced pass on those inputs (the choices are constants).
    func testScheduledSamplingIsStepByStep() throws {
        let B = 8
        // Also with input feeding (the decoder is stepped for it anyway) over a bidirectional encoder.
        for net in [try seq2seqNetwork(batch: B), try seq2seqNetwork(batch: B, attention: .additive, bidirectional: true, inputFeeding: true)] {
        for dropout: Float in [0, 0.2] {
            net.dropout = dropout
            let batch = pairBatch(net, randomPairs(B, seed: 77))
            var rng = SplitMix64(seed: 11)
            var replay = rng
            let r = net.forward(batch, train: true, samplingRate: 0.6, rng: &rng)
            let g = net.gradients
            let used = net.lastInputs, fed = net.lastFed
            XCTAssertGreaterThan(fed.filter { $0 }.count, 5)
            var b2 = batch
            b2.input = used
            let seed: UInt64? = dropout > 0 ? replay.next() : nil
            let r2 = net.forward(b2, train: true, dropoutSeed: seed)
            XCTAssertEqual(r.loss, r2.loss, accuracy: 1e-5 * max(1, abs(r2.loss)))
            XCTAssertEqual(r.count, r2.count)
            XCTAssertLessThan(zip(g, net.gradients).map { abs($0 - $1) }.max()!, 1e-5)
            let V = net.vocabulary.count
            let d = net.distributions(b2)
            var chained = 0
            for t in 1..<batch.T {
                for b in 0..<B where fed[t * B + b] {
                    let row = Array(d[((t - 1) * B + b) * V..<((t - 1) * B + b + 1) * V])
                    XCTAssertEqual(Int(used[t * B + b]), row.indices.max { row[$0] < row[$1] || row[$0] == row[$1] && $0 > $1 }!)
                    if t >= 2 && fed[(t - 1) * B + b] { chained += 1 }
                }
            }
            XCTAssertGreaterThan(chained, 0, "some prediction must follow a fed prediction")
        }
        net.dropout = 0
        }
    }

    func testSampledDrawsFollowTheDistribution() {
        let p: [Float] = [0.1, 0, 0.6, 0.3]
        var rng = SplitMix64(seed: 3)
        var counts = [0, 0, 0, 0]
        let n = 40000
        p.withUnsafeBufferPointer { pp in
            for _ in 0..<n { counts[SamplingDraw.sample.pick(pp.baseAddress!, 4, &rng)] += 1 }
            XCTAssertEqual(SamplingDraw.argmax.pick(pp.baseAddress!, 4, &rng), 2)
        }
        XCTAssertEqual(counts[1], 0)
        for k in [0, 2, 3] {
            let q = Double(p[k]), sigma = (q * (1 - q) / Double(n)).squareRoot()
            XCTAssertEqual(Double(counts[k]) / Double(n), q, accuracy: 4 * sigma)
        }
    }

    func testSamplingSchedules() {
        let r = 0.4, ramp = 100
        XCTAssertEqual(SamplingSchedule.constant.rate(r, update: 0, ramp: ramp), r)
        XCTAssertEqual(SamplingSchedule.linear.rate(r, update: 0, ramp: ramp), 0)
        XCTAssertEqual(SamplingSchedule.linear.rate(r, update: 50, ramp: ramp), 0.2, accuracy: 1e-12)
        XCTAssertEqual(SamplingSchedule.linear.rate(r, update: 100, ramp: ramp), r)
        XCTAssertEqual(SamplingSchedule.linear.rate(r, update: 500, ramp: ramp), r)
        let k = Double(ramp)
        XCTAssertEqual(SamplingSchedule.inverseSigmoid.rate(r, update: 0, ramp: ramp), r * (1 - k / (k + 1)), accuracy: 1e-12)
        XCTAssertEqual(SamplingSchedule.inverseSigmoid.rate(r, update: Int((k * log(k)).rounded()), ramp: ramp), r / 2, accuracy: 0.01)
        XCTAssertEqual(SamplingSchedule.inverseSigmoid.rate(r, update: 5000, ramp: ramp), r, accuracy: 1e-6)
        var last = -1.0
        for i in stride(from: 0, to: 2000, by: 25) {
            let v = SamplingSchedule.inverseSigmoid.rate(r, update: i, ramp: ramp)
            XCTAssertGreaterThan(v, last); last = v
        }
    }

    // MARK: Weight averaging

    /// `--ema d`: validation and the kept weights are the debiased moving average of the weights after each
    /// update, a / (1 − dᵗ), computed here in Double from the trajectory of a run without averaging (Adam on
    /// ½‖θ − c‖², 2 updates per epoch); training itself continues from θ, and without averaging validation
    /// sees θ.
    func testWeightAverageIsTheDebiasedMeanOfTheUpdatesWeights() throws {
        let target: [Float] = [1.5, -2, 0.25], d: Float = 0.9, figures = [0.1, 0.5, 0.3]
        func run(average: Float) throws -> (seen: [[Float]], validated: [[Float]], best: [Float], epoch: Int) {
            var c = TaskConfig()
            c.epochs = 3; c.batch = 2; c.patience = 0; c.learningRate = 0.05; c.clipNorm = nil
            c.weightAverage = average
            let params = FloatBuffer(3), grads = FloatBuffer(3)
            params.load([0.5, 0.5, -1])
            var seen: [[Float]] = [], validated: [[Float]] = []
            let r = try TaskTrainer.loop(c, count: 4, params: params, grads: grads, step: { idx, _ in
                seen.append(params.array)
                for i in 0..<3 { grads.p[i] = params.p[i] - target[i] }
                return BatchResult(loss: 1, correct: 0, count: idx.count)
            }, validate: { validated.append(params.array); return figures[validated.count - 1] },
               higherIsBetter: true, log: { _ in })
            seen.append(params.array)   // θ after the last update
            return (seen, validated, r.best, r.epoch)
        }
        let plain = try run(average: 0), averaged = try run(average: d)
        XCTAssertEqual(plain.seen.count, 7)
        XCTAssertEqual(averaged.seen, plain.seen, "training continues from the trained weights")
        for e in 0..<3 { XCTAssertEqual(plain.validated[e], plain.seen[2 * e + 2]) }
        XCTAssertEqual(plain.best, plain.seen[4]); XCTAssertEqual(plain.epoch, 1)
        var a = [Double](repeating: 0, count: 3)
        for t in 1...6 {
            for i in 0..<3 { a[i] = Double(d) * a[i] + (1 - Double(d)) * Double(plain.seen[t][i]) }
            guard t % 2 == 0 else { continue }
            let debias = 1 - pow(Double(d), Double(t))
            for i in 0..<3 {
                XCTAssertEqual(Double(averaged.validated[t / 2 - 1][i]), a[i] / debias, accuracy: 1e-5,
                               "epoch \(t / 2), weight \(i)")
                XCTAssertNotEqual(averaged.validated[t / 2 - 1][i], plain.seen[t][i])
            }
        }
        XCTAssertEqual(averaged.best, averaged.validated[1]); XCTAssertEqual(averaged.epoch, 1)
    }

    // MARK: Attention

    /// The worst relative error of each tensor's analytic gradient against central differences of the
    /// network's own loss over `batch`, with the dropout masks of `seed` (none when nil), and the largest
    /// analytic gradient component of each tensor. The numeric figure is the Richardson extrapolation
    /// (4 D(h/2) − D(h)) / 3 of the central differences D at h = 0.01 and 0.005, which removes their h² term
    /// (large where the larger weights of these tests saturate units, e.g. with dropout's 1/(1 − p)).
    func seq2seqGradientErrors(_ net: Seq2SeqNetwork, _ batch: PairBatch, dropoutSeed seed: UInt64?) -> [String: (error: Double, largest: Float)] {
        let r = net.forward(batch, train: true, dropoutSeed: seed)
        let analytic = net.gradients, p0 = net.parameters
        let n = Double(r.count), h: Float = 1e-2
        var out: [String: (error: Double, largest: Float)] = [:]
        for e in net.layout.entries {
            var worst = 0.0, largest: Float = 0
            for j in e.offset..<(e.offset + e.count) {
                func central(_ h: Float) -> Double {
                    var p = p0
                    p[j] = p0[j] + h; net.parameters = p
                    let lp = net.forward(batch, train: false, dropoutSeed: seed).loss
                    p[j] = p0[j] - h; net.parameters = p
                    let lm = net.forward(batch, train: false, dropoutSeed: seed).loss
                    return (lp - lm) / (Double(p0[j] + h) - Double(p0[j] - h)) / n
                }
                let numeric = (4 * central(h / 2) - central(h)) / 3
                worst = max(worst, abs(Double(analytic[j]) - numeric) / (1e-2 + abs(numeric)))
                largest = max(largest, abs(analytic[j]))
            }
            out[e.name] = (worst, largest)
        }
        net.parameters = p0
        return out
    }

    /// Checks every tensor's gradient (`seq2seqGradientErrors`) without and with dropout masks, over sources
    /// of different lengths (PAD positions excluded from the attention), and that each tensor gets one.
    func checkSeq2SeqGradients(_ net: Seq2SeqNetwork, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let batch = PairBatch(sources: pairs.map(\.source), targets: pairs.map(\.target), rows: 3, pad: 0, bos: 2, eos: 3)
        for dropout: Float in [0, 0.3] {
            net.dropout = dropout
            let errors = seq2seqGradientErrors(net, batch, dropoutSeed: dropout > 0 ? 99 : nil)
            for (name, e) in errors.sorted(by: { $0.key < $1.key }) {
                XCTAssertLessThan(e.error, 2e-2, "\(label) dropout \(dropout): \(name)", file: file, line: line)
                XCTAssertGreaterThan(e.largest, 0, "\(label) dropout \(dropout): \(name) gets no gradient", file: file, line: line)
            }
        }
        net.dropout = 0
    }

    /// Luong attention (dot, general): the analytic gradient of every weight against central differences of
    /// the network's own loss, without and with dropout masks, over sources of different lengths (PAD
    /// positions excluded from the attention).
    func testSeq2SeqAttentionGradient() throws {
        for score in [AttentionScore.dot, .general] {
            let net = try seq2seqNetwork(attention: score)
            XCTAssertNotNil(net.attention)
            checkSeq2SeqGradients(net, "\(score)")
            // The attention's own weights get gradients (the test above covers them).
            let att = net.layout.entries.filter { $0.name.hasPrefix("layer.2.") }.map(\.name)
            XCTAssertEqual(att, score == .dot ? ["layer.2.kernel", "layer.2.bias"] : ["layer.2.score_kernel", "layer.2.kernel", "layer.2.bias"])
        }
    }

    /// Bahdanau (additive) scoring: the gradients of W_q, W_k, v_a and b (A = 5, not the hidden size) and of
    /// every other weight against central differences; the tensors are the format's.
    func testSeq2SeqAdditiveAttentionGradient() throws {
        let net = try seq2seqNetwork(attention: .additive, attentionUnits: 5)
        guard case .attention(let a) = net.architecture.layers[2] else { return XCTFail("no attention layer") }
        XCTAssertEqual(a.attentionUnits, 5); XCTAssertTrue(a.useBias); XCTAssertEqual(a.combine, .tanh)
        XCTAssertEqual(net.layout.entries.filter { $0.name.hasPrefix("layer.2.") }.map { "\($0.name)\($0.shape)" },
                       ["layer.2.query_kernel[5, 4]", "layer.2.key_kernel[5, 4]", "layer.2.score_vector[5]", "layer.2.score_bias[5]",
                        "layer.2.kernel[4, 8]", "layer.2.bias[4]"])
        checkSeq2SeqGradients(net, "additive")
    }

    /// A bidirectional encoder (GRU, concat) under each scoring: the gradients of both directions' weights
    /// (and everything else) against central differences. The decoder has twice the encoder's units.
    func testSeq2SeqBidirectionalEncoderGradient() throws {
        for score in [AttentionScore.dot, .general, .additive] {
            let net = try seq2seqNetwork(attention: score, bidirectional: true)
            XCTAssertNotNil(net.encBi)
            guard case .recurrent(let re) = net.architecture.encoder[1], case .recurrent(let rd) = net.architecture.layers[1] else { return XCTFail() }
            XCTAssertTrue(re.bidirectional); XCTAssertEqual(re.units, 4); XCTAssertEqual(rd.units, 8); XCTAssertFalse(rd.bidirectional)
            let names = Set(net.layout.entries.map(\.name))
            for d in ["forward", "backward"] { XCTAssertTrue(names.contains("encoder.layer.1.\(d).recurrent_kernel")) }
            checkSeq2SeqGradients(net, "bidirectional \(score)")
        }
    }

    /// Input feeding under each scoring (and over a bidirectional encoder): the gradients of every weight,
    /// through h̃_{t−1} into step t's input, against central differences.
    func testSeq2SeqInputFeedingGradient() throws {
        for (score, bidirectional) in [(AttentionScore.dot, false), (.general, false), (.additive, false), (.additive, true)] {
            let net = try seq2seqNetwork(attention: score, bidirectional: bidirectional, inputFeeding: true)
            guard case .recurrent(let rd) = net.architecture.layers[1], case .attention(let a) = net.architecture.layers[2] else { return XCTFail() }
            XCTAssertTrue(a.inputFeeding)
            XCTAssertEqual(rd.inputSize, 3 + a.outputSize)
            checkSeq2SeqGradients(net, "input feeding \(score)\(bidirectional ? " bidirectional" : "")")
        }
    }

    /// Trained translators with input feeding: the runtime (which feeds h̃ back itself) gives the trainer's
    /// distributions at every step.
    func testTrainedInputFeedingTranslatorMatchesRuntime() throws {
        for (score, bidirectional) in [(AttentionScore.dot, false), (.general, true), (.additive, false), (.additive, true)] {
            let net = try seq2seqNetwork(batch: 3, attention: score, bidirectional: bidirectional, inputFeeding: true)
            let (_, m, _) = try trainAndCompareWithRuntime(net, attention: score)
            XCTAssertEqual(m.architecture.attention?.inputFeeding, true)
            _ = try m.translate(source: pairs[0].source, beam: 4, maxLength: 8)
        }
    }

    /// A trained attention translator written as a model: the runtime's decoder outputs (its own attention
    /// over the encoded source) equal the trainer's distributions at every step, and it translates.
    func testTrainedAttentionTranslatorMatchesRuntime() throws {
        for score in [AttentionScore.dot, .general, .additive] {
            let net = try seq2seqNetwork(batch: 3, attention: score)
            let (_, m, _) = try trainAndCompareWithRuntime(net, attention: score)
            XCTAssertEqual(m.architecture.attention?.score, score)
            let tr = try m.translate(source: pairs[0].source, beam: 4, maxLength: 8, attention: true)
            XCTAssertEqual(tr.attention.count, tr.tokens.count)
            for row in tr.attention { XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-5) }
        }
    }

    /// A trained translator with a bidirectional encoder, under each scoring (and with reversed sources):
    /// the runtime — which encodes each source unpadded, its backward direction starting at the last token —
    /// gives the trainer's distributions at every step, over sources of different lengths.
    func testTrainedBidirectionalTranslatorMatchesRuntime() throws {
        for (score, reverse) in [(AttentionScore.dot, false), (.general, false), (.additive, false), (.additive, true)] {
            let net = try seq2seqNetwork(batch: 3, reverseSource: reverse, attention: score, bidirectional: true)
            let (_, m, _) = try trainAndCompareWithRuntime(net, attention: score)
            guard case .recurrent(let re) = m.architecture.encoder[1] else { return XCTFail() }
            XCTAssertTrue(re.bidirectional)
            XCTAssertEqual(m.architecture.reverseSource, reverse)
            let tr = try m.translate(source: pairs[0].source, beam: 4, maxLength: 8, attention: true)
            for row in tr.attention { XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-5) }
        }
    }

    /// A row's outputs do not depend on how much padding the batch gives its source (the backward direction
    /// starts at the row's last real token): the same pair alone, and in a batch with a longer source.
    func testBidirectionalEncoderIgnoresSourcePadding() throws {
        let net = try seq2seqNetwork(batch: 3, attention: .additive, bidirectional: true)
        let short = pairs[1], long = pairs[0]
        let a = net.batch([short, short, short], rows: 3)
        net.forward(a)
        let da = net.distributions(a)
        let b = net.batch([long, short, long], rows: 3)
        XCTAssertGreaterThan(b.S, a.S)
        net.forward(b)
        let db = net.distributions(b), Vt = net.vocabulary.count
        for t in 0...short.target.count {
            for k in 0..<Vt { XCTAssertEqual(da[(t * 3 + 1) * Vt + k], db[(t * 3 + 1) * Vt + k], accuracy: 1e-6) }
        }
    }

    func testSeq2SeqAttentionRefusesWhatItDoesNotTrain() throws {
        var c = TaskConfig(); c.bidirectionalEncoder = true
        assertThrowsRecur(.unsupported, "--bidirectional-encoder needs --attention") { _ = try TaskTrainer.seq2seqArchitecture(c, source: 9, target: 9) }
        c = TaskConfig(); c.attention = .general; c.attentionUnits = 8
        assertThrowsRecur(.unsupported, "--attention-units is the width of additive scoring") { _ = try TaskTrainer.seq2seqArchitecture(c, source: 9, target: 9) }
        c = TaskConfig(); c.attentionUnits = 8
        assertThrowsRecur(.unsupported, "--attention-units") { _ = try TaskTrainer.seq2seqArchitecture(c, source: 9, target: 9) }
        c = TaskConfig(); c.attention = .additive; c.attentionUnits = 0
        assertThrowsRecur(.invalidArgument, "--attention-units must be ≥ 1") { _ = try TaskTrainer.seq2seqArchitecture(c, source: 9, target: 9) }
        c = TaskConfig(); c.inputFeeding = true
        assertThrowsRecur(.unsupported, "--input-feeding needs --attention") { _ = try TaskTrainer.seq2seqArchitecture(c, source: 9, target: 9) }
        c = TaskConfig(); c.attention = .additive; c.bidirectionalEncoder = true; c.cell = "lstm"
        assertThrowsRecur(.unsupported, "--cell lstm is not supported") { _ = try TaskTrainer.seq2seqArchitecture(c, source: 9, target: 9) }
        // Architectures the trainer does not train are refused by the network, not trained as something else.
        let base = try seq2seqNetwork(attention: .additive)
        func network(_ change: (inout Architecture) -> Void) throws {
            var arch = base.architecture
            change(&arch)
            _ = try Seq2SeqNetwork(architecture: arch, vocabulary: base.vocabulary, sourceVocabulary: base.sourceVocabulary,
                                   maxBatch: 3, maxSource: 6, maxTarget: 6)
        }
        assertThrowsRecur(.unsupported, "combination tanh") {
            try network { a in
                guard case .attention(var s) = a.layers[2] else { return }
                s = AttentionSpec(score: s.score, inputSize: s.inputSize, memorySize: s.memorySize, attentionUnits: s.attentionUnits,
                                  useBias: s.useBias, combine: .none)
                a.layers[2] = .attention(s)
                a.layers[3] = .dense(inputSize: s.outputSize, units: base.vocabulary.count, activation: .softmax)
            }
        }
    }
}
