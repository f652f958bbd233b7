import ArgumentParser
import Foundation
import Recur
import RecurTraining

/// Reading frame data for `recur train --task classify --frames`, `--task regress --series` and `recur eval`.
func readFrameSequences(_ path: String, sequenceColumn: String?, labelColumn: String?) throws -> FrameSequences {
    let text = String(decoding: try readFile(path), as: UTF8.self)
    if path.lowercased().hasSuffix(".ts"), sequenceColumn != nil || labelColumn != nil {
        throw CLIError("--sequence-column and --label-column are for CSV files; \(path) is a .ts file")
    }
    return try FrameData.readSequences(text, file: path, sequenceColumn: sequenceColumn ?? "sequence", labelColumn: labelColumn ?? "label")
}

func readSeries(_ path: String, column: String?) throws -> [Float] {
    guard path.lowercased().hasSuffix(".csv") else { throw CLIError("\(path): a series is read from a .csv file") }
    return try FrameData.readSeriesCSV(String(decoding: try readFile(path), as: UTF8.self), file: path, column: column)
}

/// The parts of a series: training 0..<trainEnd, validation trainEnd..<validationEnd, test the rest.
func seriesParts(count n: Int, testFraction: Double, valFraction: Double) throws -> (trainEnd: Int, validationEnd: Int) {
    guard testFraction > 0, testFraction < 1, valFraction > 0, valFraction < 1, testFraction + valFraction < 1 else {
        throw CLIError("--test-fraction and --val-fraction must be in (0, 1) with a sum below 1")
    }
    let nTest = Int((Double(n) * testFraction).rounded()), nVal = Int((Double(n) * valFraction).rounded())
    guard nTest >= 1, nVal >= 1, n - nTest - nVal >= 2 else {
        throw CLIError("the series has \(n) values: too few for a training, a validation and a test part")
    }
    return (n - nTest - nVal, n - nTest)
}

/// Accuracy, per-class figures and confusion matrix of a frame classifier through the runtime; the
/// data's classes are matched to the model's labels by name.
func evaluateFrameClassifier(_ m: Model, _ data: FrameSequences, file: String) throws -> ClassificationMetrics {
    guard m.architecture.input.frameSize == data.frameSize else {
        throw CLIError("\(file) has frames of \(data.frameSize) values but the model reads frames of \(m.architecture.input.frameSize.map(String.init) ?? "no") floats")
    }
    let d = try data.relabelled(to: m.labels, file: file)
    var truth: [Int] = [], predicted: [Int] = []
    for s in d.sequences {
        truth.append(s.label)
        predicted.append(ClassificationMetrics.argmax(try m.classify(frames: s.frames)))
    }
    return ClassificationMetrics(labels: m.labels, truth: truth, predicted: predicted)
}

/// MAE and RMSE at horizons 1…k of a forecaster streamed over the series, on the values from `start` on.
func evaluateForecaster(_ m: Model, _ series: [Float], from start: Int) throws -> [(mae: Double, rmse: Double, count: Int)] {
    let f = try ForecastEvaluation.forecasts(m, series)
    let k = f.first?.count ?? 0
    return (1...max(k, 1)).map { ForecastEvaluation.errors(f, series, horizon: $0, targets: start..<series.count) }
}

func jsonArray(_ xs: [Double]) -> String { "[" + xs.map { "\($0)" }.joined(separator: ",") + "]" }

extension TrainTask {
    func runFrames(_ kind: Task) throws {
        let textOnly: [(String, Bool)] = [("--data", !data.isEmpty), ("--embedding", embeddingOption != nil), ("--vocab", vocabOption != nil),
            ("--min-count", minCountOption != nil), ("--max-length", maxLengthOption != nil), ("--sampling", sampling != 0),
            ("--sampling-schedule", samplingSchedule != nil), ("--sampling-ramp", samplingRamp != nil), ("--sampling-draw", samplingDraw != nil),
            ("--dropout", dropout != 0), ("--reverse-source", reverseSource), ("--attention", attention != nil),
            ("--attention-units", attentionUnits != nil), ("--bidirectional-encoder", bidirectionalEncoder),
            ("--input-feeding", inputFeeding)]
        if let given = textOnly.first(where: \.1) { throw ValidationError("\(given.0) is not an option of frame models") }
        guard batch >= 1, epochs >= 1, hidden >= 1, dense >= 0 else { throw ValidationError("sizes must be positive (--dense may be 0: no relu layer)") }
        guard evalPart == "test" || evalPart == "validation" else { throw ValidationError("--eval-part must be test or validation") }
        var c = TaskConfig()
        c.task = kind; c.cell = cell; c.hidden = hidden; c.denseUnits = dense; c.batch = batch; c.epochs = epochs
        c.learningRate = lr; c.clipNorm = clipNorm > 0 ? clipNorm : nil; c.seed = seed; c.patience = patience; c.maxSeconds = maxSeconds
        c.weightAverage = try emaDecay()
        try requireWritable(out, "--out")
        if let log { try requireWritable(log, "--log") }
        let say = try taskLog(log)
        var meta: [(String, MetaValue)] = [("general.name", .string(URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent)),
                                           ("training.command", .string(commandLine()))]
        if let license { meta.append(("general.license", .string(license))) }
        switch kind {
        case .classify:
            guard let frames else { throw ValidationError("--task classify of frames needs --frames FILE") }
            let regressOnly: [(String, Bool)] = [("--series", series != nil), ("--column", column != nil), ("--horizon", horizon != nil), ("--loss", loss != nil),
                ("--window", window != nil), ("--stride", stride != nil), ("--burn-in", burnIn != nil), ("--test-fraction", testFraction != nil),
                ("--val-fraction", valFraction != nil)]
            if let given = regressOnly.first(where: \.1) { throw ValidationError("\(given.0) is an option of --task regress") }
            if let v = try poolingChoice() { c.pooling = v }
            c.bidirectional = !noBidirectional
            let all = try readFrameSequences(frames, sequenceColumn: sequenceColumn, labelColumn: labelColumn)
            var tr: [(frames: [Float], label: Int)] = [], va: [(frames: [Float], label: Int)] = [], te: [(frames: [Float], label: Int)] = []
            if let test {
                for (i, s) in all.sequences.enumerated() { if i % 5 == 4 { va.append(s) } else { tr.append(s) } }
                let t = try readFrameSequences(test, sequenceColumn: sequenceColumn, labelColumn: labelColumn)
                guard t.frameSize == all.frameSize else {
                    throw ValidationError("\(test) has frames of \(t.frameSize) values but \(frames) of \(all.frameSize)")
                }
                te = try t.relabelled(to: all.labels, file: test).sequences
            } else {
                (tr, va, te) = TaskData.split(all.sequences)
            }
            guard !tr.isEmpty, !va.isEmpty, !te.isEmpty else {
                throw ValidationError("\(frames): \(all.sequences.count) sequences are too few for a training, a validation and a test part")
            }
            let part = evalPart == "validation" ? va : te
            if !evalOnly {
                let norm = FrameNormalization.fit(tr.map(\.frames), frameSize: all.frameSize)
                let arch = try TaskTrainer.frameClassifierArchitecture(c, frameSize: all.frameSize, labels: all.labels)
                let longest = (tr + va).map { $0.frames.count / all.frameSize }.max()!
                let net = try SequenceNetwork(architecture: arch, vocabulary: .empty, maxBatch: batch, maxSteps: longest)
                say("{\"type\":\"start\",\"task\":\"classify\",\"input\":\"frames\",\"frame_size\":\(all.frameSize),\"classes\":\(all.labels.count),\"train\":\(tr.count),\"validation\":\(va.count),\"test\":\(te.count),\"longest\":\(longest),\"parameters\":\(arch.parameterCount)}")
                let r = try TaskTrainer.trainFrameSequences(net, c, normalization: norm, train: tr, validation: va, log: say)
                try write(r, meta + [("training.corpus", .string(URL(fileURLWithPath: frames).lastPathComponent))])
            }
            let m = try loadModel(out, task: .classify)
            let e = try evaluateFrameClassifier(m, FrameSequences(frameSize: all.frameSize, labels: all.labels, sequences: part), file: test ?? frames)
            emit("{\"type\":\"test\",\"part\":\"\(evalPart)\",\"task\":\"classify\",\"input\":\"frames\",\"sequences\":\(e.count),\"accuracy\":\(e.accuracy)}\n")
        case .regress:
            guard let series else { throw ValidationError("--task regress needs --series FILE.csv") }
            let classifyOnly: [(String, Bool)] = [("--frames", frames != nil), ("--test", test != nil), ("--sequence-column", sequenceColumn != nil),
                ("--label-column", labelColumn != nil), ("--pooling", pooling != nil), ("--no-bidirectional", noBidirectional)]
            if let given = classifyOnly.first(where: \.1) { throw ValidationError("\(given.0) is an option of --task classify with --frames") }
            if let v = horizon { c.horizon = v }
            if let v = window { c.window = v }
            if let v = stride { c.stride = v }
            if let v = burnIn { c.burnIn = v }
            if let v = loss {
                guard let l = RegressionLoss(rawValue: v) else { throw ValidationError("--loss must be mae or mse") }
                c.regressionLoss = l
            }
            guard c.horizon >= 1, c.window >= 1, c.stride >= 1, c.burnIn >= 0, c.burnIn < c.window else {
                throw ValidationError("--horizon, --window and --stride must be positive, --burn-in in 0..<window")
            }
            let values = try readSeries(series, column: column)
            let (trainEnd, validationEnd) = try seriesParts(count: values.count, testFraction: testFraction ?? 0.15, valFraction: valFraction ?? 0.15)
            if !evalOnly {
                guard trainEnd > c.horizon + 1 else { throw ValidationError("the training part (\(trainEnd) values) is shorter than the horizon") }
                let arch = try TaskTrainer.forecasterArchitecture(c)
                let net = try SequenceNetwork(architecture: arch, vocabulary: .empty, maxBatch: batch, maxSteps: min(c.window, trainEnd - c.horizon))
                say("{\"type\":\"start\",\"task\":\"regress\",\"input\":\"frames\",\"values\":\(values.count),\"train\":\(trainEnd),\"validation\":\(validationEnd - trainEnd),\"test\":\(values.count - validationEnd),\"horizon\":\(c.horizon),\"windows\":\(TaskTrainer.forecastWindows([Float](repeating: 0, count: trainEnd), c).count),\"parameters\":\(arch.parameterCount)}")
                let (r, norm) = try TaskTrainer.trainForecaster(net, c, series: values, trainEnd: trainEnd, validationEnd: validationEnd, log: say)
                _ = norm   // stored in the model as input.mean / input.scale
                try write(r, meta + [("training.corpus", .string(URL(fileURLWithPath: series).lastPathComponent))])
            }
            let m = try loadModel(out, task: .regress)
            let head = evalPart == "validation" ? Array(values[0..<validationEnd]) : values
            let e = try evaluateForecaster(m, head, from: evalPart == "validation" ? trainEnd : validationEnd)
            emit("{\"type\":\"test\",\"part\":\"\(evalPart)\",\"task\":\"regress\",\"values\":\(e[0].count),\"mae\":\(jsonArray(e.map(\.mae))),\"rmse\":\(jsonArray(e.map(\.rmse)))}\n")
        default:
            throw ValidationError("frame models are trained with --task classify --frames FILE or --task regress --series FILE")
        }
    }
}
