import Recur

/// Per-feature normalisation of frames, x' = (x − mean) ⊙ scale, as the runtime applies `input.mean` and
/// `input.scale` before the first layer. `fit` takes the mean and 1/σ (population σ) of each feature over
/// the frames given — the training part only; a feature with σ = 0 gets scale 1.
public struct FrameNormalization: Sendable, Equatable {
    public var mean: [Float]
    public var scale: [Float]

    public init(mean: [Float], scale: [Float]) {
        precondition(mean.count == scale.count)
        self.mean = mean
        self.scale = scale
    }

    public var frameSize: Int { mean.count }

    /// Fitted on sequences of frames (each T_i × F floats, row-major).
    public static func fit(_ sequences: [[Float]], frameSize F: Int) -> FrameNormalization {
        var sum = [Double](repeating: 0, count: F), n = 0
        for s in sequences { for (i, x) in s.enumerated() { sum[i % F] += Double(x) }; n += s.count / F }
        let mean = sum.map { $0 / Double(max(n, 1)) }
        var sq = [Double](repeating: 0, count: F)
        for s in sequences { for (i, x) in s.enumerated() { let d = Double(x) - mean[i % F]; sq[i % F] += d * d } }
        let scale = sq.map { v -> Float in
            let sd = (v / Double(max(n, 1))).squareRoot()
            return sd > 0 ? Float(1 / sd) : 1
        }
        return FrameNormalization(mean: mean.map { Float($0) }, scale: scale)
    }

    /// The frames normalised, in the runtime's arithmetic ((x − m) · s in f32).
    public func apply(_ frames: [Float]) -> [Float] {
        let F = mean.count
        return frames.enumerated().map { i, x in (x - mean[i % F]) * scale[i % F] }
    }

    /// Writes `input.mean` and `input.scale` into a model builder.
    public func store(in b: inout ModelBuilder) {
        b.set("input.mean", shape: [mean.count], values: mean)
        b.set("input.scale", shape: [scale.count], values: scale)
    }
}

extension TaskTrainer {
    // MARK: frame classifiers

    /// Frames → (Bidirectional) recurrent layer (its last step, or every step for mean pooling) →
    /// [Dense(relu) when `denseUnits` > 0] → Dense(classes, softmax).
    public static func frameClassifierArchitecture(_ c: TaskConfig, frameSize: Int, labels: [String]) throws -> Architecture {
        guard labels.count >= 2 else { throw RecurError(.invalidArgument, "a classifier needs at least two classes (found \(labels.count))") }
        var r = try recurrent(c.cell ?? "gru", inputSize: frameSize, units: c.hidden)
        r.bidirectional = c.bidirectional
        r.returnSequences = c.pooling == .mean
        var layers: [LayerSpec] = [.recurrent(r)]
        var width = r.outputSize
        if c.denseUnits > 0 {
            layers.append(.dense(inputSize: width, units: c.denseUnits, activation: .relu))
            width = c.denseUnits
        }
        layers.append(.dense(inputSize: width, units: labels.count, activation: .softmax))
        var a = Architecture(task: .classify, layers: layers, labels: labels)
        a.input = .frames(size: frameSize)
        a.pooling = c.pooling
        return a
    }

    /// Trains a frame classifier on labelled sequences (frames in original units; `normalization` is applied
    /// here and stored in the written model). The validation figure is the accuracy; among epochs of equal
    /// accuracy the one with the lower validation loss is kept.
    public static func trainFrameSequences(_ net: SequenceNetwork, _ c: TaskConfig, normalization: FrameNormalization,
                                           train: [(frames: [Float], label: Int)], validation: [(frames: [Float], label: Int)],
                                           log: (String) -> Void) throws -> TaskResult {
        guard let F = net.frameSize, normalization.frameSize == F else {
            throw RecurError(.invalidArgument, "the network does not read frames of the normalisation's size")
        }
        let tr = train.map { (frames: normalization.apply($0.frames), label: $0.label) }
        let va = validation.map { (frames: normalization.apply($0.frames), label: $0.label) }
        func batch(_ items: ArraySlice<(frames: [Float], label: Int)>) -> SequenceBatch {
            SequenceBatch(frames: items.map(\.frames), frameSize: F, labels: items.map { [$0.label] }, rows: c.batch, perStep: false)
        }
        net.initialize(seed: c.seed)
        let r = try loop(c, count: tr.count, params: net.params, grads: net.grads, step: { idx, _ in
            net.forward(batch(idx.map { tr[$0] }[...]), train: true)
        }, validateWithTieBreak: {
            var ok = 0, n = 0, loss = 0.0
            var i = 0
            while i < va.count {
                let r = net.forward(batch(va[i..<min(i + c.batch, va.count)]))
                ok += r.correct; n += r.count; loss += r.loss; i += c.batch
            }
            return (Double(ok) / Double(max(n, 1)), loss / Double(max(n, 1)))   // accuracy, then mean loss
        }, higherIsBetter: true, log: log)
        net.parameters = r.best
        var b = net.modelBuilder()
        normalization.store(in: &b)
        return TaskResult(builder: b, bestEpoch: r.epoch, validation: r.figure, seconds: r.seconds)
    }

    // MARK: forecasters

    /// Frames of `frameSize` values → recurrent layer (every step; one-directional, so it can be stepped) →
    /// [Dense(relu) when `denseUnits` > 0] → Dense(horizon, linear): at each step, the next `horizon` values.
    public static func forecasterArchitecture(_ c: TaskConfig, frameSize: Int = 1) throws -> Architecture {
        guard c.horizon >= 1 else { throw RecurError(.invalidArgument, "the horizon must be at least 1") }
        var r = try recurrent(c.cell ?? "gru", inputSize: frameSize, units: c.hidden)
        r.returnSequences = true
        var layers: [LayerSpec] = [.recurrent(r)]
        var width = r.outputSize
        if c.denseUnits > 0 {
            layers.append(.dense(inputSize: width, units: c.denseUnits, activation: .relu))
            width = c.denseUnits
        }
        layers.append(.dense(inputSize: width, units: c.horizon, activation: .linear))
        var a = Architecture(task: .regress, layers: layers)
        a.input = .frames(size: frameSize)
        return a
    }

    /// The training windows of a normalised series z (the training part only): inputs z[s..<s+T] from a zero
    /// state, targets at step t the next `horizon` values z[s+t+1 … s+t+horizon], for s = 0, stride, … while
    /// the last target is inside z. Steps before `burnIn` count in no loss.
    public static func forecastWindows(_ z: [Float], _ c: TaskConfig) -> [(inputs: [Float], targets: [Float], counted: [Int])] {
        let T = min(c.window, z.count - c.horizon), k = c.horizon
        guard T >= 1 else { return [] }
        var out: [(inputs: [Float], targets: [Float], counted: [Int])] = []
        var s = 0
        while s + T + k <= z.count {
            let inputs = Array(z[s..<(s + T)])
            var targets: [Float] = []
            targets.reserveCapacity(T * k)
            for t in 0..<T { targets += z[(s + t + 1)...(s + t + k)] }
            out.append((inputs, targets, (0..<T).map { $0 < c.burnIn ? -1 : 1 }))
            s += max(c.stride, 1)
        }
        return out
    }

    /// A forecaster's model builder: the network's weights with the target de-normalisation folded into the
    /// last Dense layer (W' = W / s, b' = b / s + m, so the model outputs values in the series' units), and
    /// the input normalisation stored as `input.mean` / `input.scale`.
    public static func forecasterBuilder(_ net: SequenceNetwork, _ norm: FrameNormalization) -> ModelBuilder {
        precondition(norm.frameSize == 1, "a univariate forecaster")
        var b = net.modelBuilder()
        let last = net.architecture.layers.count - 1
        let m = norm.mean[0], s = norm.scale[0]
        for i in b.tensors.indices {
            if b.tensors[i].name == "layer.\(last).kernel" { b.tensors[i].values = b.tensors[i].values.map { $0 / s } }
            if b.tensors[i].name == "layer.\(last).bias" { b.tensors[i].values = b.tensors[i].values.map { $0 / s + m } }
        }
        norm.store(in: &b)
        return b
    }

    /// Trains a univariate forecaster on `series` (original units): values 0..<trainEnd train it (and fit the
    /// normalisation), values trainEnd..<validationEnd validate it. After each epoch the written model is
    /// streamed through the runtime over series[0..<validationEnd] from a zero state; the figure is the mean
    /// absolute error over horizons 1…k of the forecasts of the validation values (lower is better).
    public static func trainForecaster(_ net: SequenceNetwork, _ c: TaskConfig, series: [Float], trainEnd: Int, validationEnd: Int,
                                       log: (String) -> Void) throws -> (result: TaskResult, normalization: FrameNormalization) {
        guard net.frameSize == 1, net.regress, net.dense.last!.units == c.horizon else {
            throw RecurError(.invalidArgument, "the network is not a univariate forecaster of horizon \(c.horizon)")
        }
        guard trainEnd > c.horizon + 1, validationEnd > trainEnd, validationEnd <= series.count else {
            throw RecurError(.invalidArgument, "the series is too short for its parts (training \(trainEnd) values, horizon \(c.horizon))")
        }
        let norm = FrameNormalization.fit([Array(series[0..<trainEnd])], frameSize: 1)
        let z = norm.apply(Array(series[0..<trainEnd]))
        let windows = forecastWindows(z, c)
        guard !windows.isEmpty else { throw RecurError(.invalidArgument, "no training window fits the training part") }
        let k = c.horizon
        net.regressionLoss = c.regressionLoss
        net.initialize(seed: c.seed)
        let head = Array(series[0..<validationEnd])
        let r = try loop(c, count: windows.count, params: net.params, grads: net.grads, step: { idx, _ in
            let w = idx.map { windows[$0] }
            return net.forward(SequenceBatch(frames: w.map(\.inputs), frameSize: 1, labels: w.map(\.counted), rows: c.batch,
                                             perStep: true, targets: w.map(\.targets), outputs: k), train: true)
        }, validateWithTieBreak: {
            let b = forecasterBuilder(net, norm)
            let bytes = b.writer().serialize()
            let m = try bytes.withUnsafeBytes { try Model(bytes: $0) }
            let f = try ForecastEvaluation.forecasts(m, head)
            var sum = 0.0
            for h in 1...k { sum += ForecastEvaluation.errors(f, head, horizon: h, targets: trainEnd..<validationEnd).mae }
            return (sum / Double(k), 0)
        }, higherIsBetter: false, log: log)
        net.parameters = r.best
        return (TaskResult(builder: forecasterBuilder(net, norm), bestEpoch: r.epoch, validation: r.figure, seconds: r.seconds), norm)
    }
}

/// Forecasts of a streamed series and their errors.
public enum ForecastEvaluation {
    /// Streams the series through a univariate regress model from a zero state: row t holds the forecasts
    /// of values t+1 … t+k made after reading values 0…t.
    public static func forecasts(_ m: Model, _ series: [Float]) throws -> [[Float]] {
        guard m.architecture.task == .regress, m.architecture.input.frameSize == 1 else {
            throw RecurError(.unsupported, "forecasts need a regress model reading one value per frame")
        }
        return try m.forwardSequence(frames: series)
    }

    /// Mean absolute and root mean squared error at horizon h over the values j in `targets` (each forecast
    /// from origin j − h; values without an origin are skipped).
    public static func errors(_ forecasts: [[Float]], _ series: [Float], horizon h: Int, targets: Range<Int>) -> (mae: Double, rmse: Double, count: Int) {
        var ae = 0.0, se = 0.0, n = 0
        for j in targets where j - h >= 0 && j - h < forecasts.count && h - 1 < forecasts[j - h].count && j < series.count {
            let e = Double(forecasts[j - h][h - 1]) - Double(series[j])
            ae += abs(e); se += e * e; n += 1
        }
        return (ae / Double(max(n, 1)), (se / Double(max(n, 1))).squareRoot(), n)
    }
}
