import ArgumentParser
import Foundation
import Recur
import RecurTraining

struct TrainTask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-task",
        abstract: "Train a sentiment classifier, a part-of-speech tagger, a translator or a frame model and evaluate it.",
        discussion: """
        `recur train --task classify|tag|seq2seq …` is the same command with the same options.
        --task classify: Embedding → Bidirectional LSTM (concat; its last step, or --pooling mean of its steps) → Dense(relu) → Dense(1, sigmoid),
          binary cross-entropy; data: sentence<TAB>0|1 files (default data/sentiment/vader_*.tsv).
        --task tag: Embedding → Bidirectional GRU (every step) → Dense(softmax over tags), cross-entropy over
          the real tokens; data: word/TAG lines (default data/pos/en_ewt-ud-{dev,test}.upos.txt).
        classify and tag, regularisation while training (the written model has none; docs/TRAINING.md):
          --word-dropout p (tokens read as UNK), --spatial-dropout p (whole embedding channels per sequence), --input-dropout p (the cell's inputs),
          --recurrent-dropout p (variational, on h_prev into the recurrent kernel), --dropout p (the recurrent
          layer's outputs), --l2 λ (on the kernels); --init keras for Keras' default initialisers.
        --task seq2seq: GRU encoder → GRU decoder (→ attention with --attention) → Dense(softmax), teacher forcing (--sampling for scheduled
          sampling, step by step); data: source<TAB>target lines (default data/pairs/bible_nt_en_es.tsv), pairs with at most
          --max-length words on each side. --reverse-source: the encoder reads each source last word first
          (recorded in the model as encoder.reverse_source; translation reverses the same way).
          --attention luong|luong-dot|bahdanau: general (h·W_a h̄), dot (h·h̄) or additive (v·tanh(W_q h + W_k h̄ + b),
          --attention-units wide, default --hidden) scoring of the decoder's new state against the encoder's outputs,
          the head reading h̃ = tanh(W_c [c; h] + b_c). --bidirectional-encoder (with --attention): the encoder's GRU
          is bidirectional (concat), the decoder's has 2 × --hidden units and starts from both directions' final states.
          --input-feeding (with --attention): the decoder's GRU reads [embedding; h̃ of the step before] (Luong et al. 2015).
        Example i (files concatenated in order) is validation when i mod 10 = 8, test when i mod 10 = 9,
        training otherwise. The weights with the best validation figure are written to --out; the test part
        is then evaluated through the runtime (accuracy; per-token accuracy; corpus BLEU-4, with BLEU-1 and
        BLEU-2, greedy and beam).
        With --eval-only the model at --out is evaluated without training; --eval-part validation evaluates
        the validation part instead of the test part (to compare runs without looking at the test part).

        Frame models (docs/FRAMES.md):
        --task classify --frames FILE.ts|FILE.csv [--test FILE]: frames → (Bidirectional) GRU (--cell; last step,
          or --pooling mean over the real steps) → [Dense(--dense, relu) unless --dense 0] → Dense(softmax over the
          classes), cross-entropy over variable-length sequences batched with padding that counts in neither loss
          nor accuracy. Each feature is standardised by the mean and σ of the training part, stored in the file as
          input.mean / input.scale. With --test, training sequence i is validation when i mod 5 = 4 and the test
          file is the test part; without it the 80/10/10 rule above applies. CSV: one row per frame, a
          --sequence-column (default sequence) and a --label-column (default label), every other column a
          feature; .ts: the sktime/UEA format (@classLabel true …).
        --task regress --series FILE.csv [--column NAME]: a forecaster of the next --horizon values at every
          step: frames of one value → GRU (one-directional, so it can be streamed) → [Dense(relu)] →
          Dense(horizon, linear), --loss mae|mse on windows of --window values of the training part (starting
          every --stride values, the first --burn-in steps of each counting in no loss). The last
          --test-fraction of the series is the test part, the --val-fraction before it validation, the rest
          training; the series is standardised by the training part's mean and σ (stored as input.mean /
          input.scale) and the model outputs values in the series' units (the de-normalisation is folded into
          the last layer). Validation and test stream the series through the runtime from its first value;
          the test line gives MAE and RMSE at every horizon.
        """)

    @Option(name: .long, help: "classify, tag or seq2seq.") var task: String
    @Option(name: .long, parsing: .upToNextOption, help: "Data files.") var data: [String] = []
    @Option(name: .long, help: "Where to write the model.") var out: String
    @Option(name: .long, help: "Cell (classify: lstm, tag: gru; seq2seq is GRU).") var cell: String?
    @Option(name: .long, help: "Units per direction / layer.") var hidden: Int = 64
    @Option(name: .customLong("embedding"), help: "Embedding width. (default: 64)") var embeddingOption: Int?
    @Option(name: .customLong("dense"), help: "classify: units of the relu layer.") var dense: Int = 32
    @Option(name: .customLong("vocab"), help: "Vocabulary cap (specials included), each side. (default: 8000)") var vocabOption: Int?
    @Option(name: .customLong("min-count"), help: "Least occurrences of a word in the training part. (default: 1; 2 with --unk-signatures)") var minCountOption: Int?
    @Option(name: .customLong("max-length"), help: "classify/tag: cut sequences for training; seq2seq: keep pairs with at most this many words each side. (default: 60)") var maxLengthOption: Int?
    var embedding: Int { embeddingOption ?? 64 }
    var vocab: Int { vocabOption ?? 8000 }
    var minCount: Int { minCountOption ?? (unkSignatures ? 2 : 1) }
    var maxLength: Int { maxLengthOption ?? 60 }
    @Option(name: .long) var batch: Int = 32
    @Option(name: .long) var epochs: Int = 10
    @Option(name: .long) var lr: Float = 0.002
    @Option(name: .customLong("clip-norm"), help: "Global gradient norm clip (0: off).") var clipNorm: Float = 5
    @Option(name: .long) var seed: UInt64 = 1
    @Option(name: .long, help: "seq2seq: scheduled sampling, the probability (0 ... 1) of feeding the model's own prediction of the step before instead of the target token (its final value under --sampling-schedule).") var sampling: Double = 0
    @Option(name: .customLong("sampling-schedule"), help: "seq2seq: constant, linear (0 to --sampling over --sampling-ramp updates) or inverse-sigmoid (k = --sampling-ramp). (default: constant)") var samplingSchedule: String?
    @Option(name: .customLong("sampling-ramp"), help: "seq2seq: updates over which the sampling rate rises. (default: 1000)") var samplingRamp: Int?
    @Option(name: .customLong("sampling-draw"), help: "seq2seq: the prediction fed, argmax or sample (drawn from the model's distribution). (default: argmax)") var samplingDraw: String?
    @Option(name: .long, help: "seq2seq: dropout on the embeddings and the decoder output while training; classify/tag: dropout on the recurrent layer's outputs (a Dropout layer after it).") var dropout: Float = 0
    @Option(name: .customLong("word-dropout"), help: "classify/tag: read each training token as UNK with this probability (trains the UNK embedding).") var wordDropout: Float = 0
    @Option(name: .customLong("spatial-dropout"), help: "classify/tag: drop whole embedding channels per sequence (SpatialDropout1D).") var spatialDropout: Float = 0
    @Option(name: .customLong("input-dropout"), help: "classify/tag: dropout on the recurrent cell's inputs, one mask per sequence and direction (Keras dropout=).") var inputDropout: Float = 0
    @Option(name: .customLong("recurrent-dropout"), help: "classify/tag: variational dropout on h_prev into the recurrent kernel, one mask per sequence, direction and gate (Keras recurrent_dropout=).") var recurrentDropout: Float = 0
    @Option(name: .customLong("init"), help: "classify/tag: uniform (U(±1/√units) recurrent weights) or keras (Glorot-uniform kernels, orthogonal recurrent kernels, zero biases). (default: uniform)") var initOption: String?
    @Option(name: .customLong("l2"), help: "classify/tag: L2 weight decay λ on the kernels (Keras kernel_regularizer=l2(λ)).") var l2: Float = 0
    @Option(name: .long, help: "seq2seq: an attention layer in the decoder: luong (general scoring, h·W_a h̄), luong-dot (h·h̄) or bahdanau (additive, v·tanh(W_q h + W_k h̄ + b)); the head reads h̃ = tanh(W_c [c; h] + b_c).") var attention: String?
    @Option(name: .customLong("attention-units"), help: "seq2seq, --attention bahdanau: the width of W_q h and W_k h̄. (default: --hidden)") var attentionUnits: Int?
    @Flag(name: .customLong("bidirectional-encoder"), help: "seq2seq, with --attention: a bidirectional (concat) encoder; the decoder has 2 × --hidden units.") var bidirectionalEncoder = false
    @Flag(name: .customLong("input-feeding"), help: "seq2seq, with --attention: the decoder reads [embedding; h̃ of the step before].") var inputFeeding = false
    @Flag(name: .customLong("unk-signatures"), help: "classify/tag: read a word outside the vocabulary as its signature (e.g. <unk-cap-ing>: its digits, case and suffix; FORMAT.md §11) when the vocabulary has it, instead of UNK; the training words seen fewer than --min-count times are read so, and train the signatures.") var unkSignatures = false
    @Flag(name: .customLong("reverse-source"), help: "seq2seq: the encoder reads the source words in reverse order.") var reverseSource = false
    @Option(name: .long, help: "Stop after this many epochs without improvement (0: never).") var patience: Int = 3
    @Option(name: .long, help: "Validate and keep an exponential moving average of the weights with this decay, in (0, 1) (Keras' optimizer use_ema=True, ema_momentum=; docs/TRAINING.md). (default: none)") var ema: Float?
    @Option(name: .customLong("max-seconds"), help: "Start no epoch after this many seconds (0: no limit).") var maxSeconds: Double = 0
    @Option(name: .long, help: "seq2seq: beam width of the second evaluation.") var beam: Int = 4
    @Option(name: .long, help: "Write the epoch lines (JSON) here.") var log: String?
    @Flag(name: .customLong("eval-only"), help: "Evaluate the model at --out without training.") var evalOnly = false
    @Option(name: .customLong("eval-part"), help: "The part evaluated after training: test or validation.") var evalPart = "test"

    // Frame models.
    @Option(name: .long, help: "classify: frame sequences to train on (.ts or .csv).") var frames: String?
    @Option(name: .long, help: "classify with --frames: the test sequences (same format).") var test: String?
    @Option(name: .customLong("sequence-column"), help: "CSV frames: the sequence-id column. (default: sequence)") var sequenceColumn: String?
    @Option(name: .customLong("label-column"), help: "CSV frames: the label column. (default: label)") var labelColumn: String?
    @Option(name: .long, help: "classify: the last step or the mean of the recurrent layer's steps feeds the head: last or mean. (default: last)") var pooling: String?
    @Flag(name: .customLong("no-bidirectional"), help: "classify with --frames: a one-directional recurrent layer.") var noBidirectional = false
    @Option(name: .long, help: "regress: the series to forecast (.csv).") var series: String?
    @Option(name: .long, help: "regress: the column of the series. (default: the last column)") var column: String?
    @Option(name: .long, help: "regress: values forecast at each step. (default: 12)") var horizon: Int?
    @Option(name: .long, help: "regress: mae or mse. (default: mae)") var loss: String?
    @Option(name: .long, help: "regress: steps per training window. (default: 240)") var window: Int?
    @Option(name: .long, help: "regress: a training window starts every this many values. (default: 12)") var stride: Int?
    @Option(name: .customLong("burn-in"), help: "regress: first steps of a window that count in no loss. (default: 0)") var burnIn: Int?
    @Option(name: .customLong("test-fraction"), help: "regress: the last part of the series held out as test. (default: 0.15)") var testFraction: Double?
    @Option(name: .customLong("val-fraction"), help: "regress: the part before the test part held out for validation. (default: 0.15)") var valFraction: Double?
    @Option(name: .long, help: "general.license of the written model.") var license: String?

    /// --ema, read the same way for every task (0: none).
    func emaDecay() throws -> Float {
        guard let d = ema else { return 0 }
        guard d > 0 && d < 1 else { throw ValidationError("--ema must be in (0, 1) (got \(d))") }
        return d
    }

    /// --pooling, read the same way for text and frame classifiers.
    func poolingChoice() throws -> Pooling? {
        guard let p = pooling else { return nil }
        guard let v = Pooling(rawValue: p) else { throw ValidationError("--pooling must be last or mean") }
        return v
    }

    func run() throws {
        guard let kind = Task(rawValue: task), kind != .generate else {
            throw ValidationError("--task must be classify, tag, seq2seq or regress (the character generator is 'recur train')")
        }
        let tokenOnly: [(String, Bool)] = [("--word-dropout", wordDropout != 0), ("--spatial-dropout", spatialDropout != 0), ("--input-dropout", inputDropout != 0),
            ("--recurrent-dropout", recurrentDropout != 0), ("--init", initOption != nil), ("--l2", l2 != 0), ("--unk-signatures", unkSignatures)]
        if let given = tokenOnly.first(where: \.1), frames != nil || series != nil || kind == .regress || kind == .seq2seq {
            throw ValidationError("\(given.0) is an option of --task classify and --task tag (token models)")
        }
        if frames != nil || series != nil || kind == .regress { return try runFrames(kind) }
        let frameOnly: [(String, Bool)] = [("--test", test != nil), ("--sequence-column", sequenceColumn != nil), ("--label-column", labelColumn != nil),
            ("--no-bidirectional", noBidirectional), ("--column", column != nil), ("--horizon", horizon != nil),
            ("--loss", loss != nil), ("--window", window != nil), ("--stride", stride != nil), ("--burn-in", burnIn != nil),
            ("--test-fraction", testFraction != nil), ("--val-fraction", valFraction != nil), ("--license", license != nil)]
        if let given = frameOnly.first(where: \.1) {
            throw ValidationError("\(given.0) is an option of frame models (--frames or --series)")
        }
        var c = TaskConfig()
        if let v = try poolingChoice() {
            guard kind == .classify else { throw ValidationError("--pooling is an option of --task classify") }
            c.pooling = v
        }
        c.task = kind; c.cell = cell; c.hidden = hidden; c.embedding = embedding; c.denseUnits = dense
        c.vocabulary = vocab; c.minCount = minCount; c.maxLength = maxLength; c.batch = batch; c.epochs = epochs
        c.learningRate = lr; c.clipNorm = clipNorm > 0 ? clipNorm : nil; c.seed = seed; c.samplingRate = sampling
        c.reverseSource = reverseSource
        let seq2seqOnly: [(String, Bool)] = [("--attention-units", attentionUnits != nil), ("--bidirectional-encoder", bidirectionalEncoder),
                                             ("--input-feeding", inputFeeding)]
        if kind != .seq2seq, let given = seq2seqOnly.first(where: \.1) { throw ValidationError("\(given.0) is a seq2seq option") }
        c.attentionUnits = attentionUnits; c.bidirectionalEncoder = bidirectionalEncoder; c.inputFeeding = inputFeeding
        if let attention {
            guard kind == .seq2seq else { throw ValidationError("--attention is a seq2seq option") }
            switch attention {
            case "luong": c.attention = .general
            case "luong-dot": c.attention = .dot
            case "bahdanau": c.attention = .additive
            default: throw ValidationError("--attention must be luong, luong-dot or bahdanau (got \(attention))")
            }
        }
        if kind == .seq2seq { try TaskTrainer.checkSeq2Seq(c) }     // before any data is read
        guard sampling >= 0, sampling <= 1 else { throw ValidationError("--sampling must be in [0, 1] (got \(sampling))") }
        let samplingOptions = [("--sampling", sampling != 0), ("--sampling-schedule", samplingSchedule != nil),
                               ("--sampling-ramp", samplingRamp != nil), ("--sampling-draw", samplingDraw != nil)]
        if kind != .seq2seq, let given = samplingOptions.first(where: \.1) {
            throw ValidationError("\(given.0) is a seq2seq option (scheduled sampling of the decoder's inputs)")
        }
        if let samplingSchedule {
            guard let v = SamplingSchedule(rawValue: samplingSchedule) else {
                throw ValidationError("--sampling-schedule must be \(SamplingSchedule.allCases.map(\.rawValue).joined(separator: ", ")) (got \(samplingSchedule))")
            }
            c.samplingSchedule = v
        }
        if let samplingDraw {
            guard let v = SamplingDraw(rawValue: samplingDraw) else {
                throw ValidationError("--sampling-draw must be argmax or sample (got \(samplingDraw))")
            }
            c.samplingDraw = v
        }
        if let samplingRamp {
            guard samplingRamp >= 1 else { throw ValidationError("--sampling-ramp must be ≥ 1 (got \(samplingRamp))") }
            c.samplingRamp = samplingRamp
        }
        c.dropout = dropout
        c.wordDropout = wordDropout; c.spatialDropout = spatialDropout; c.inputDropout = inputDropout; c.recurrentDropout = recurrentDropout; c.l2 = l2
        if let i = initOption {
            guard let scheme = TaskInitializer(rawValue: i) else { throw ValidationError("--init must be uniform or keras") }
            c.initializer = scheme
        }
        c.patience = patience; c.maxSeconds = maxSeconds
        c.weightAverage = try emaDecay()
        guard batch >= 1, epochs >= 1, hidden >= 1, embedding >= 1, maxLength >= 1, vocab >= 8 else {
            throw ValidationError("sizes must be positive (vocab ≥ 8)")
        }
        guard evalPart == "test" || evalPart == "validation" else { throw ValidationError("--eval-part must be test or validation") }
        for (name, p) in [("--dropout", dropout), ("--word-dropout", wordDropout), ("--spatial-dropout", spatialDropout), ("--input-dropout", inputDropout),
                          ("--recurrent-dropout", recurrentDropout)] where !(p >= 0 && p < 1) {
            throw ValidationError("\(name) must be in [0, 1)")
        }
        guard l2 >= 0 else { throw ValidationError("--l2 must be ≥ 0") }
        guard kind == .seq2seq || !reverseSource else { throw ValidationError("--reverse-source is a seq2seq option") }
        if recurrentDropout > 0, (cell ?? "") == "gru-reset-before" {
            throw ValidationError("--recurrent-dropout is trained for gru (reset-after), lstm and rnn cells, not gru-reset-before")
        }
        try requireWritable(out, "--out")
        if let log { try requireWritable(log, "--log") }
        let say = try taskLog(log)
        func read(_ defaults: [String]) throws -> String {
            try (data.isEmpty ? defaults.map(defaultDataFile) : data).map { p -> String in
                guard let d = FileManager.default.contents(atPath: p) else { throw ValidationError("cannot read \(p)") }
                var s = String(decoding: d, as: UTF8.self)
                if !s.hasSuffix("\n") { s += "\n" }
                return s
            }.joined()
        }
        let meta: [(String, MetaValue)] = [("general.name", .string(URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent)),
                                           ("training.command", .string(CommandLine.arguments.dropFirst().joined(separator: " ")))]
        switch kind {
        case .classify:
            let rows = try TaskData.labelled(read(["vader_movie", "vader_amazon", "vader_nyt", "vader_tweets"].map { "data/sentiment/\($0).tsv" }))
                .filter { !TaskData.words($0.0).isEmpty }
            let (tr, va, test) = TaskData.split(rows)
            let te = evalPart == "validation" ? va : test
            if !evalOnly {
                let v = try TaskData.vocabulary(tr.map { TaskData.words($0.0, keepCase: unkSignatures) }, cap: vocab, minCount: minCount,
                                                specials: ["<pad>", "<unk>"], pad: 0, unk: 1, signatures: unkSignatures ? TaskData.signatureSuffixes : nil)
                let arch = try TaskTrainer.classifierArchitecture(c, vocabulary: v.count)
                let net = try SequenceNetwork(architecture: arch, vocabulary: v, maxBatch: batch, maxSteps: maxLength)
                say("{\"type\":\"start\",\"task\":\"classify\",\"train\":\(tr.count),\"validation\":\(va.count),\"test\":\(test.count),\"vocabulary\":\(v.count),\"parameters\":\(arch.parameterCount)}")
                let r = try TaskTrainer.trainSequences(net, c, train: try tr.map { (try TaskData.ids(ofText: $0.0, v), [$0.1]) },
                                                       validation: try va.map { (try TaskData.ids(ofText: $0.0, v), [$0.1]) }, log: say)
                try write(r, meta)
            }
            let m = try loadModel(out)
            let e = ClassificationMetrics(labels: m.labels, truth: te.map(\.1),
                                          predicted: try te.map { ClassificationMetrics.argmax(try m.classify(tokens: try TaskData.ids(ofText: $0.0, m.vocabulary))) })
            emit("{\"type\":\"test\",\"part\":\"\(evalPart)\",\"task\":\"classify\",\"sentences\":\(te.count),\"accuracy\":\(e.accuracy),\"macro_f1\":\(e.macro.f1)}\n")
        case .tag:
            let rows = try TaskData.tagged(read(["dev", "test"].map { "data/pos/en_ewt-ud-\($0).upos.txt" }))
            let (tr, va, test) = TaskData.split(rows)
            let te = evalPart == "validation" ? va : test
            if !evalOnly {
                let tags = Set(rows.flatMap(\.tags)).sorted()
                let v = try TaskData.vocabulary(tr.map(\.words), cap: vocab, minCount: minCount, specials: ["<pad>", "<unk>"], pad: 0, unk: 1,
                                                signatures: unkSignatures ? TaskData.signatureSuffixes : nil)
                let arch = try TaskTrainer.taggerArchitecture(c, vocabulary: v.count, tags: tags)
                let net = try SequenceNetwork(architecture: arch, vocabulary: v, maxBatch: batch, maxSteps: maxLength)
                let index = Dictionary(uniqueKeysWithValues: tags.enumerated().map { ($1, $0) })
                func ex(_ r: (words: [String], tags: [String])) -> (tokens: [Int], labels: [Int]) { (TaskData.ids(r.words, v), r.tags.map { index[$0]! }) }
                say("{\"type\":\"start\",\"task\":\"tag\",\"train\":\(tr.count),\"validation\":\(va.count),\"test\":\(test.count),\"vocabulary\":\(v.count),\"tags\":\(tags.count),\"parameters\":\(arch.parameterCount)}")
                let r = try TaskTrainer.trainSequences(net, c, train: tr.map(ex), validation: va.map(ex), log: say)
                try write(r, meta + [("general.license", .string("CC BY-SA 4.0 (trained on Universal Dependencies English EWT, annotations © Stanford University)"))])
            }
            let m = try loadModel(out)
            let names = m.labels
            var ok = 0, n = 0
            for r in te {
                let pred = try m.tag(tokens: TaskData.ids(r.words, m.vocabulary))
                for (p, g) in zip(pred, r.tags) { n += 1; if names[p] == g { ok += 1 } }
            }
            emit("{\"type\":\"test\",\"part\":\"\(evalPart)\",\"task\":\"tag\",\"sentences\":\(te.count),\"tokens\":\(n),\"accuracy\":\(Double(ok) / Double(n))}\n")
        case .seq2seq:
            let rows = try TaskData.pairs(read(["data/pairs/bible_nt_en_es.tsv"]))
                .map { (TaskData.words($0.0), TaskData.words($0.1)) }
                .filter { !$0.0.isEmpty && !$0.1.isEmpty && $0.0.count <= maxLength && $0.1.count <= maxLength }
            let (tr, va, test) = TaskData.split(rows)
            let te = evalPart == "validation" ? va : test
            if !evalOnly {
                let sv = try TaskData.vocabulary(tr.map(\.0), cap: vocab, minCount: minCount, specials: ["<pad>", "<unk>", "<eos>"], pad: 0, unk: 1, eos: 2)
                let tv = try TaskData.vocabulary(tr.map(\.1), cap: vocab, minCount: minCount, specials: ["<pad>", "<unk>", "<bos>", "<eos>"], pad: 0, unk: 1, bos: 2, eos: 3)
                let arch = try TaskTrainer.seq2seqArchitecture(c, source: sv.count, target: tv.count)
                let net = try Seq2SeqNetwork(architecture: arch, vocabulary: tv, sourceVocabulary: sv, maxBatch: batch,
                                             maxSource: maxLength + 1, maxTarget: maxLength + 1)
                func ex(_ r: ([String], [String])) -> (source: [Int], target: [Int]) { (TaskData.ids(r.0, sv) + [2], TaskData.ids(r.1, tv)) }
                say("{\"type\":\"start\",\"task\":\"seq2seq\",\"train\":\(tr.count),\"validation\":\(va.count),\"test\":\(test.count),\"source_vocabulary\":\(sv.count),\"target_vocabulary\":\(tv.count),\"parameters\":\(arch.parameterCount)}")
                let r = try TaskTrainer.trainPairs(net, c, train: tr.map(ex), validation: va.map(ex), log: say)
                try write(r, meta)
            }
            let m = try loadModel(out)
            guard let sv = m.sourceVocabulary else { throw ValidationError("\(out) is not a seq2seq model") }
            let refs = te.map(\.1)
            for k in Set([1, beam]).sorted() {
                var hyps: [[String]] = []
                for (src, _) in te {
                    var ids = TaskData.ids(src, sv)
                    if let e = sv.eos { ids.append(e) }
                    let t = k == 1 ? try m.translateGreedy(source: ids, maxLength: 2 * maxLength)
                                   : try m.translate(source: ids, beam: k, maxLength: 2 * maxLength)
                    hyps.append(t.tokens.filter { !m.vocabulary.isSpecial($0) }.map { m.vocabulary.pieces[$0] })
                }
                let bleu = [4, 1, 2].map { 100 * corpusBLEU(hypotheses: hyps, references: refs, maxN: $0) }
                emit("{\"type\":\"test\",\"part\":\"\(evalPart)\",\"task\":\"seq2seq\",\"pairs\":\(te.count),\"beam\":\(k),\"bleu\":\(bleu[0]),\"bleu1\":\(bleu[1]),\"bleu2\":\(bleu[2]),\"reverse_source\":\(m.architecture.reverseSource)}\n")
                if k == 1 { for i in 0..<min(3, te.count) { say("  \(te[i].0.joined(separator: " ")) => \(hyps[i].joined(separator: " "))") } }
            }
        case .generate, .regress:
            throw ValidationError("--task must be classify, tag, seq2seq or regress (the character generator is 'recur train')")
        }
    }

    func write(_ r: TaskResult, _ meta: [(String, MetaValue)]) throws {
        var b = r.builder
        b.metadata = meta + [("training.best_epoch", .int(Int64(r.bestEpoch + 1))), ("training.validation", .float(r.validation)),
                             ("training.seconds", .float(r.seconds))]
        try b.writer().write(to: out)
        FileHandle.standardError.write("wrote \(out) (best epoch \(r.bestEpoch + 1), validation \(r.validation))\n".data(using: .utf8)!)
    }
}

/// The line sink of a task-training run: standard error, and the --log file when one is given (created
/// afresh; an error naming it when it cannot be written).
func taskLog(_ path: String?) throws -> (String) -> Void {
    let handle: FileHandle? = try path.map { p in
        guard FileManager.default.createFile(atPath: p, contents: nil), let h = FileHandle(forWritingAtPath: p) else {
            throw ValidationError("cannot write \(p)")
        }
        return h
    }
    return { line in
        FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
        handle?.write((line + "\n").data(using: .utf8)!)
    }
}
