/// Whole-sequence inference: bidirectional layers, many-to-one classification and many-to-many tagging.
///
/// Each recurrent layer runs over the whole input sequence: the input projections of all steps are one
/// matrix-matrix product, then the forward cell runs t = 0 … T−1 and, for bidirectional layers, the
/// backward cell runs t = T−1 … 0; the two outputs of each step are merged (concat: [fwd, bwd]; sum;
/// mul; ave = (fwd + bwd)/2). A layer with `return_sequences = false` outputs one vector: the forward
/// cell's last output and the backward cell's output at t = 0 (its last step), merged.
///
/// Masking: when the model has a PAD token, PAD steps are skipped (the state is carried over unchanged and
/// the step's output repeats the previous one), as Keras does with `mask_zero=True`.
extension Model {
    /// Per-step outputs of the final layer (one row when the last recurrent layer returns only its last
    /// step, or when a classifier pools by mean).
    public func forwardSequence(_ tokens: [Int]) throws -> [[Float]] {
        try forwardSequence(tokens, probe: nil)
    }

    /// `forwardSequence(_:)`, or with a probe the rows of the probed layer.
    func forwardSequence(_ tokens: [Int], probe: LayerProbe?) throws -> [[Float]] {
        guard !tokens.isEmpty else { throw RecurError(.invalidArgument, "the sequence is empty") }
        if let f = frameSize { throw RecurError(.unsupported, "this model reads frames of \(f) floats, not tokens") }
        guard let emb = embedding else { throw RecurError(.unsupported, "this model has no embedding layer") }
        for t in tokens where t < 0 || t >= vocabulary.count {
            throw RecurError(.outOfRange, "token id \(t) is outside the vocabulary (0..<\(vocabulary.count))")
        }
        let pad = vocabulary.padMask ? vocabulary.pad : nil       // an unmasked model runs its PAD steps
        let T = tokens.count
        // x: T × width, row-major
        let width = emb.table.cols
        var x = [Float](repeating: 0, count: T * width)
        x.withUnsafeMutableBufferPointer { xp in
            for t in 0..<T { emb.lookup(tokens[t], into: xp.baseAddress! + t * width) }
        }
        return try forwardLayers(x, T: T, width: width, mask: tokens.map { $0 != pad }, probe: probe)
    }

    /// The outputs of a frame model over T frames (T × frame size floats, row-major) from a zero state:
    /// one row per frame (tag, regress), or one row (classify). Frames are checked (count, finite) first;
    /// with a mask value, padding frames are skipped as in `forwardSequence(_:)`.
    public func forwardSequence(frames: UnsafeBufferPointer<Float>) throws -> [[Float]] {
        try forwardSequence(frames: frames, probe: nil)
    }

    /// `forwardSequence(frames:)`, or with a probe the rows of the probed layer.
    func forwardSequence(frames: UnsafeBufferPointer<Float>, probe: LayerProbe?) throws -> [[Float]] {
        guard let f = frameSize else { throw RecurError(.unsupported, "this model reads tokens, not frames") }
        guard !frames.isEmpty else { throw RecurError(.invalidArgument, "the sequence is empty") }
        try checkFrames(frames)
        let T = frames.count / f
        var x = [Float](repeating: 0, count: T * f)
        let mask = x.withUnsafeMutableBufferPointer { xp in
            let src = normalize(frames.baseAddress!, rows: T, into: xp.baseAddress!)
            if src != UnsafePointer(xp.baseAddress!) { xp.baseAddress!.update(from: src, count: T * f) }
            return (0..<T).map { !isMasked(frames.baseAddress! + $0 * f) }
        }
        return try forwardLayers(x, T: T, width: f, mask: mask, probe: probe)
    }

    public func forwardSequence(frames: [Float]) throws -> [[Float]] {
        try frames.withUnsafeBufferPointer { try forwardSequence(frames: $0) }
    }

    /// The recurrent layers over x (T × width), then the head. Steps where `mask` is false carry the state.
    /// With a probe, the run stops at the probed layer and returns its rows (`layerOutputs`).
    func forwardLayers(_ input: [Float], T: Int, width inputWidth: Int, mask: [Bool],
                       probe: LayerProbe? = nil) throws -> [[Float]] {
        var x = input, width = inputWidth
        if let p = probe, p.layer < firstRecurrentLayer {
            return Self.rows(x, count: T, width: width)          // the embedding's lookups
        }
        for (k, layer) in recurrent.enumerated() {
            let spec = layer.forward.spec
            let H = spec.units
            let probed = probe.map { $0.layer == firstRecurrentLayer + k } ?? false
            let states = probed && probe!.values != .output
            // c of every step of each direction, recorded only when the probe reads it.
            var fwdCells: [Float]? = states && probe!.values == .cell ? [] : nil, bwdCells = fwdCells
            var lastH: [Float] = [], lastC: [Float] = []
            let fwd = runDirection(layer.forward, x, T: T, mask: mask, reverse: false,
                                   finalH: &lastH, finalC: &lastC, cells: &fwdCells)
            var bwd: [Float] = []
            var y: [Float]
            if let bw = layer.backward {
                bwd = runDirection(bw, x, T: T, mask: mask, reverse: true,
                                   finalH: &lastH, finalC: &lastC, cells: &bwdCells)
                let ow = spec.outputSize
                if spec.returnSequences {
                    y = [Float](repeating: 0, count: T * ow)
                    for t in 0..<T { merge(spec.mergeMode, fwd, t, bwd, t, H, into: &y, row: t, width: ow) }
                } else {
                    y = [Float](repeating: 0, count: ow)
                    merge(spec.mergeMode, fwd, T - 1, bwd, 0, H, into: &y, row: 0, width: ow)
                }
                width = ow
            } else {
                y = spec.returnSequences ? fwd : Array(fwd[((T - 1) * H)..<(T * H)])
                width = H
            }
            if states {
                // h or c of every step, the directions side by side: [forward, backward].
                let (f, b) = probe!.values == .cell ? (fwdCells!, bwdCells ?? []) : (fwd, bwd)
                if layer.backward == nil { return Self.rows(f, count: T, width: H) }
                var both = [Float](repeating: 0, count: T * 2 * H)
                for t in 0..<T { merge(.concat, f, t, b, t, H, into: &both, row: t, width: 2 * H) }
                return Self.rows(both, count: T, width: 2 * H)
            }
            if probed { return Self.rows(y, count: spec.returnSequences ? T : 1, width: width) }
            x = y
            if !spec.returnSequences {
                // Later layers see a single step.
                return try applyHead(x, rows: 1, width: width, probe: probe)
            }
        }
        if architecture.pooling == .mean {
            return try applyHead(Self.meanPool(x, T: T, width: width, mask: mask), rows: 1, width: width, probe: probe)
        }
        if architecture.task == .classify {
            // A classifier whose last recurrent layer returns every step reads the last one.
            return try applyHead(Array(x[((T - 1) * width)..<(T * width)]), rows: 1, width: width, probe: probe)
        }
        return try applyHead(x, rows: T, width: width, probe: probe)
    }

    /// The index in `architecture.layers` of the first recurrent layer (the embedding, if any, comes before).
    var firstRecurrentLayer: Int { architecture.layers.count - head.count - recurrent.count }

    /// x (count × width, row-major) as rows.
    static func rows(_ x: [Float], count: Int, width: Int) -> [[Float]] {
        (0..<count).map { Array(x[($0 * width)..<(($0 + 1) * width)]) }
    }

    /// The mean of the rows of x (T × width) where `mask` is true (all rows when none is).
    static func meanPool(_ x: [Float], T: Int, width: Int, mask: [Bool]) -> [Float] {
        let rows = mask.contains(true) ? (0..<T).filter { mask[$0] } : Array(0..<T)
        var sum = [Double](repeating: 0, count: width)
        for t in rows { for j in 0..<width { sum[j] += Double(x[t * width + j]) } }
        return sum.map { Float($0 / Double(rows.count)) }
    }

    /// The dense layers over each of the `rows` rows of x (rows × width); with a probe of a dense layer, the
    /// layers up to it.
    func applyHead(_ x: [Float], rows: Int, width: Int, probe: LayerProbe? = nil) throws -> [[Float]] {
        var out: [[Float]] = []
        var a = [Float](repeating: 0, count: maxWidth), b = [Float](repeating: 0, count: maxWidth)
        let layers = probe.map { head.prefix(max(0, $0.layer - (firstRecurrentLayer + recurrent.count) + 1)) } ?? head[...]
        for r in 0..<rows {
            var w = width
            a.withUnsafeMutableBufferPointer { ap in
                x.withUnsafeBufferPointer { xp in ap.baseAddress!.update(from: xp.baseAddress! + r * width, count: width) }
            }
            for d in layers {
                a.withUnsafeBufferPointer { ap in b.withUnsafeMutableBufferPointer { bp in d.apply(bp.baseAddress!, ap.baseAddress!) } }
                w = d.kernel.rows
                swap(&a, &b)
            }
            let row = Array(a[0..<w])
            if row.contains(where: { !$0.isFinite }) {
                throw RecurError(.numerical, "the model produced a non-finite output")
            }
            out.append(row)
        }
        return out
    }

    /// Runs one direction of a layer over x (T × In) and returns its outputs (T × H), in time order.
    func runDirection(_ l: RecurrentWeights, _ x: [Float], T: Int, mask: [Bool], reverse: Bool) -> [Float] {
        var h: [Float] = [], c: [Float] = []
        return runDirection(l, x, T: T, mask: mask, reverse: reverse, finalH: &h, finalC: &c)
    }

    /// As above, also giving the final h and c (c stays zero for cells without one).
    func runDirection(_ l: RecurrentWeights, _ x: [Float], T: Int, mask: [Bool], reverse: Bool,
                      finalH: inout [Float], finalC: inout [Float]) -> [Float] {
        var cells: [Float]? = nil
        return runDirection(l, x, T: T, mask: mask, reverse: reverse, finalH: &finalH, finalC: &finalC, cells: &cells)
    }

    /// As above; when `cells` is not nil, it receives c of every step too (T × H, in time order).
    func runDirection(_ l: RecurrentWeights, _ x: [Float], T: Int, mask: [Bool], reverse: Bool,
                      finalH: inout [Float], finalC: inout [Float], cells: inout [Float]?) -> [Float] {
        let H = l.spec.units, G = l.gateRows, In = l.spec.inputSize
        var proj = [Float](repeating: 0, count: T * G)
        var out = [Float](repeating: 0, count: T * H)
        var h = [Float](repeating: 0, count: H), c = [Float](repeating: 0, count: H)
        var scratch = [Float](repeating: 0, count: 4 * H + G)
        var cs = [Float](repeating: 0, count: cells == nil ? 0 : T * H)
        x.withUnsafeBufferPointer { xp in
            proj.withUnsafeMutableBufferPointer { pp in
                if l.kernel.dtype == .f32 && T > 1 {
                    gemmABt(pp.baseAddress!, xp.baseAddress!, l.kernel.f32, m: T, n: G, k: In, bias: l.bias)
                } else {
                    for t in 0..<T { l.inputProjection(pp.baseAddress! + t * G, xp.baseAddress! + t * In) }
                }
            }
        }
        proj.withUnsafeBufferPointer { pp in
            h.withUnsafeMutableBufferPointer { hp in
                c.withUnsafeMutableBufferPointer { cp in
                    scratch.withUnsafeMutableBufferPointer { sp in
                        out.withUnsafeMutableBufferPointer { op in
                            cs.withUnsafeMutableBufferPointer { csp in
                                for k in 0..<T {
                                    let t = reverse ? T - 1 - k : k
                                    if mask[t] {
                                        l.step(gx: pp.baseAddress! + t * G, h: hp.baseAddress!, c: cp.baseAddress!, scratch: sp.baseAddress!)
                                    }
                                    (op.baseAddress! + t * H).update(from: hp.baseAddress!, count: H)
                                    if !csp.isEmpty { (csp.baseAddress! + t * H).update(from: cp.baseAddress!, count: H) }
                                }
                            }
                        }
                    }
                }
            }
        }
        finalH = h
        finalC = c
        if cells != nil { cells = cs }
        return out
    }

    func merge(_ mode: MergeMode, _ f: [Float], _ tf: Int, _ b: [Float], _ tb: Int, _ H: Int,
               into y: inout [Float], row: Int, width: Int) {
        for j in 0..<H {
            let u = f[tf * H + j], v = b[tb * H + j]
            switch mode {
            case .concat: y[row * width + j] = u; y[row * width + H + j] = v
            case .sum: y[row * width + j] = u + v
            case .mul: y[row * width + j] = u * v
            case .ave: y[row * width + j] = (u + v) / 2
            }
        }
    }

    /// The label names of the outputs ("classify" / "tag"), or "0", "1", … when the file names none.
    public var labels: [String] {
        architecture.labels.isEmpty ? (0..<max(outputSize, 2)).map { String($0) } : architecture.labels
    }

    /// Class probabilities of a text (a "classify" model). A single sigmoid output p becomes [1 − p, p].
    public func classify(_ text: String, unknown: Vocabulary.UnknownPolicy = .error,
                         padding: PaddingMode = .trained) throws -> [Float] {
        let ids = try encode(text, unknown: unknown)
        guard !ids.isEmpty else { throw RecurError(.invalidArgument, "the text has no tokens") }
        return try classify(tokens: ids, padding: padding)
    }

    /// With a padding length (`sequenceInput`), the tokens are cut and padded as the framework's were.
    public func classify(tokens: [Int], padding: PaddingMode = .trained) throws -> [Float] {
        try requireTask(.classify, "classification")
        return Self.classProbabilities(try forwardSequence(sequenceInput(tokens, padding: padding).tokens))
    }

    /// Class probabilities of a sequence of frames (a "classify" frame model), as `classify(tokens:)`.
    public func classify(frames: [Float]) throws -> [Float] {
        try requireTask(.classify, "classification")
        return Self.classProbabilities(try forwardSequence(frames: frames))
    }

    /// The last row of a classifier's outputs; a single sigmoid output p becomes [1 − p, p].
    static func classProbabilities(_ out: [[Float]]) -> [Float] {
        let last = out[out.count - 1]
        return last.count == 1 ? [1 - last[0], last[0]] : last
    }

    func requireTask(_ task: Task, _ what: String) throws {
        guard architecture.task == task else {
            throw RecurError(.unsupported, "\(what) needs a \(task.rawValue) model (this one is '\(architecture.task.rawValue)')")
        }
    }

    /// The most likely label at each row (lowest index among ties).
    static func argmaxRows(_ out: [[Float]]) -> [Int] {
        out.map { row in row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }! }
    }

    /// One label per frame (a "tag" frame model).
    public func tag(frames: [Float]) throws -> [Int] {
        try requireTask(.tag, "tagging")
        return Self.argmaxRows(try forwardSequence(frames: frames))
    }

    /// One label per token (a "tag" model): the index of the most likely tag at each step. With a padding
    /// length (`sequenceInput`), the tags of the tokens the padded sequence kept, in order.
    public func tag(tokens: [Int], padding: PaddingMode = .trained) throws -> [Int] {
        try requireTask(.tag, "tagging")
        let input = sequenceInput(tokens, padding: padding)
        let rows = Self.argmaxRows(try forwardSequence(input.tokens))
        return zip(rows, input.source).compactMap { row, src in src == nil ? nil : row }
    }

    /// Tags the words of a text: (word, tag name) pairs.
    public func tag(_ text: String, unknown: Vocabulary.UnknownPolicy = .error,
                    padding: PaddingMode = .trained) throws -> [(String, String)] {
        let ids = try encode(text, unknown: unknown)
        guard !ids.isEmpty else { throw RecurError(.invalidArgument, "the text has no tokens") }
        let tags = try tag(tokens: ids, padding: padding)
        // The text's own words, one per id; pieces skipped or replaced (or cut by the tokenizer) leave the
        // words actually tagged; truncation to the padding length keeps the words it kept.
        var words = unknown != .error || vocabulary.splitter != .recur ? ids.map { vocabulary.pieces[$0] }
            : vocabulary.kind == .word ? Vocabulary.words(text) : text.unicodeScalars.map { String($0) }
        let kept = sequenceInput(ids, padding: padding).source.compactMap { $0 }
        if kept.count < words.count, words.count == ids.count { words = kept.map { words[$0] } }
        let names = labels
        return zip(words, tags).map { ($0, $1 < names.count ? names[$1] : String($1)) }
    }
}
