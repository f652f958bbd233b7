/// The layer loop: how a time step moves through the recurrent layers and the head, for one stream
/// (`State.step`) or many stepped together (`Model.stepBatch`), and the input rule that `State.prefill`
/// shares. Only `State`'s own methods write a state's vectors.

/// Gate inputs gx = W x + b of n rows: rows of a buffer, or rows of the input table picked by token.
struct GateRows {
    let base: UnsafePointer<Float>
    let stride: Int
    let tokens: UnsafePointer<Int>?

    @inline(__always) subscript(k: Int) -> UnsafePointer<Float> {
        base + (tokens.map { $0[k] } ?? k) * stride
    }
}

/// What layer 0 reads at n rows (streams of a batch, or steps of a sequence): token ids, or frames of the
/// model's frame size (n × F floats, before normalisation).
enum StepInput {
    case tokens(UnsafePointer<Int>)
    case frames(UnsafePointer<Float>)
}

/// How input projections of several rows are multiplied: as steps compute them (`step`: one matrix-vector
/// product for one row, the batched products otherwise) or, for the rows of a sequence, with exact
/// activations and sgemm (`sequence`, see `Model.projectSequence`).
enum ProjectionPolicy { case step, sequence }

extension Model {
    /// The input rule. Layer 0 reads the input: tokens' rows of the input table when the model has one,
    /// else their embeddings (looked up into `work`, n × In) projected; or frames, normalised into `work`
    /// when the model normalises, projected. Layer i > 0 reads `below`, n rows of layer i − 1's output.
    /// Projections are written to `proj` (n × gates·H).
    @inline(__always)
    func gateInputs(layer i: Int, rows n: Int, input: StepInput, below: UnsafePointer<Float>?,
                    work: UnsafeMutablePointer<Float>, proj: UnsafeMutablePointer<Float>, policy: ProjectionPolicy) -> GateRows {
        let l = recurrent[i].forward
        let G = l.gateRows
        var x = below
        if i == 0 {
            switch input {
            case .tokens(let tokens):
                if let table = inputTable { return GateRows(base: table, stride: G, tokens: tokens) }
                let E = l.spec.inputSize
                for k in 0..<n { embedding!.lookup(tokens[k], into: work + k * E) }
                x = UnsafePointer(work)
            case .frames(let frames):
                x = normalize(frames, rows: n, into: work)
            }
        }
        switch policy {
        case .step where n == 1: l.inputProjection(proj, x!)
        case .step: project(l.kernel, l.bias, x!, n, into: proj)
        case .sequence: projectSequence(l, x!, n, into: proj)
        }
        return GateRows(base: proj, stride: G, tokens: nil)
    }

    /// Frames as layer 0 reads them: x' = (x − mean) ⊙ scale written to `work` (n × F) when the model
    /// normalises its input, else the frames themselves.
    func normalize(_ frames: UnsafePointer<Float>, rows n: Int, into work: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        guard let (mean, scale) = normalization, let f = frameSize else { return frames }
        for k in 0..<n {
            let src = frames + k * f, dst = work + k * f
            for j in 0..<f { dst[j] = (src[j] - mean[j]) * scale[j] }
        }
        return UnsafePointer(work)
    }

    /// Checks `count` frames (or any positive number) of the model's frame size: the number of floats, and
    /// that every one is finite.
    func checkFrames(_ frames: UnsafeBufferPointer<Float>, count: Int? = nil) throws {
        guard let f = frameSize else { throw RecurError(.unsupported, "this model reads tokens, not frames") }
        guard !frames.isEmpty, frames.count % f == 0, count.map({ frames.count == $0 * f }) ?? true else {
            let want = count.map { "\($0) × \(f) = \($0 * f)" } ?? "a positive multiple of \(f)"
            throw RecurError(.invalidArgument, "got \(frames.count) floats; frames of this model have \(f) floats each (expected \(want))")
        }
        if let k = frames.firstIndex(where: { !$0.isFinite }) {
            throw RecurError(.numerical, "frame \(k / f) holds \(frames[k]) at feature \(k % f); frames must be finite")
        }
    }

    /// Whether a frame is padding: every feature equals the model's mask value (`input.mask_value`).
    func isMasked(_ frame: UnsafePointer<Float>) -> Bool {
        guard let m = architecture.maskValue, let f = frameSize else { return false }
        for j in 0..<f where frame[j] != m { return false }
        return true
    }

    /// y (n × rows) = x (n × cols) · Wᵀ + b, as the batched step computes it.
    func project(_ w: Matrix, _ bias: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, into y: UnsafeMutablePointer<Float>) {
        matmat(y, w, x, count: n)
        addBias(bias, n, into: y, rows: w.rows)
    }

    /// `project` for n vectors already prepared for w's dtype (`xq[k]`: vector k's copy): the same bits.
    func project(_ w: Matrix, _ bias: UnsafePointer<Float>, prepared xq: UnsafePointer<UnsafeRawPointer?>, _ n: Int,
                 into y: UnsafeMutablePointer<Float>) {
        matmat(y, w, prepared: xq, count: n)
        addBias(bias, n, into: y, rows: w.rows)
    }

    func addBias(_ bias: UnsafePointer<Float>, _ n: Int, into y: UnsafeMutablePointer<Float>, rows: Int) {
        for k in 0..<n {
            let row = y + k * rows
            for j in 0..<rows { row[j] += bias[j] }
        }
    }

    /// proj (n × G) = inputs (n × In) · Wᵀ + b. sgemm for f32 kernels; for f16/q8/q4 kernels the weights
    /// are decoded to f32 in chunks, each multiplied by sgemm (exact activations: this may differ from
    /// stepping, which quantizes activations for q8/q4, by that quantization).
    func projectSequence(_ l: RecurrentWeights, _ inputs: UnsafePointer<Float>, _ n: Int, into proj: UnsafeMutablePointer<Float>) {
        let G = l.gateRows, In = l.spec.inputSize
        if l.kernel.dtype == .f32 && n > 1 {
            gemmABt(proj, inputs, l.kernel.f32, m: n, n: G, k: In, bias: l.bias)
        } else if n >= decodeMinimum {
            matmat(proj, l.kernel, inputs, count: n, exactActivations: true)
            for t in 0..<n {
                let row = proj + t * G
                for j in 0..<G { row[j] += l.bias[j] }
            }
        } else {
            for t in 0..<n { l.inputProjection(proj + t * G, inputs + t * In) }
        }
    }

    /// Feeds `tokens[i]` to `states[i]` for every i, reading each weight matrix once for all the streams
    /// where the products allow it. Afterwards each state's `output` and vectors hold, bit for bit, what
    /// `states[i].step(tokens[i])` would have given, in every dtype and at every kernel level (`matmat`:
    /// quantized weights are read once per group of vectors; f32 and f16 products run vector by vector,
    /// since a shared read would sum in another order). The states must belong to this model and be
    /// distinct; a layer whose cell does not batch its recurrent product (GRU with reset_after = false) is
    /// stepped stream by stream. Every stream is checked before any is stepped: on error no state has
    /// changed, and the message names the stream ("stream 3: ...").
    public func stepBatch(states: [State], tokens: [Int]) throws {
        guard states.count == tokens.count else {
            throw RecurError(.invalidArgument, "stepBatch got \(states.count) states and \(tokens.count) tokens")
        }
        try checkBatch(states)
        guard let first = states.first else { return }
        try first.requireStepwise(frames: false)
        for (k, (s, t)) in zip(states, tokens).enumerated() {
            try inStream(k, what: "stream") { try s.requireStepwise(frames: false); try s.checkToken(t); try s.checkAdvance(1) }
        }
        states.withUnsafeBufferPointer { sp in
            tokens.withUnsafeBufferPointer { tp in State.advance(sp, input: .tokens(tp.baseAddress!)) }
        }
    }

    /// `stepBatch` for a frame model: `frames` holds one frame per state (states.count × F floats,
    /// row-major). With a mask value, the streams are stepped one by one (a masked frame leaves its
    /// stream unchanged). On error no state has changed.
    public func stepBatch(states: [State], frames: UnsafeBufferPointer<Float>) throws {
        try checkBatch(states)
        guard let first = states.first else { return }
        try first.requireStepwise(frames: true)
        let f = frameSize!
        if frames.count != states.count * f { try checkFrames(frames, count: states.count) }   // the count's error
        let base = frames.baseAddress!
        for (k, s) in states.enumerated() {
            try inStream(k, what: "stream") {
                try checkFrames(UnsafeBufferPointer(start: base + k * f, count: f), count: 1)
                try s.checkAdvance(1)
            }
        }
        if architecture.maskValue != nil || states.count == 1 {
            for (k, s) in states.enumerated() { s.advance(frame: base + k * f) }
            return
        }
        states.withUnsafeBufferPointer { State.advance($0, input: .frames(base)) }
    }

    /// Runs `body` for item `k` of a batch (a stream, a prompt), prefixing its error's message with
    /// "what k: ".
    func inStream<T>(_ k: Int, what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as RecurError { throw RecurError(e.code, "\(what) \(k): \(e.message)") }
    }

    /// The states of a batch belong to this model and are distinct.
    func checkBatch(_ states: [State]) throws {
        for (k, s) in states.enumerated() where s.model !== self {
            throw RecurError(.mismatch, "stream \(k): the state belongs to another model")
        }
        if let (k, j) = firstRepeat(states.map(ObjectIdentifier.init)) {
            throw RecurError(.invalidArgument, "stream \(k): the same state as stream \(j) (a state appears twice)")
        }
    }
}

/// The first position k whose object also sits at an earlier position j, as (k, j), or nil when all differ:
/// a sort of (object, position) pairs, with no hashing or allocation per element beyond the one array.
package func firstRepeat(_ ids: [ObjectIdentifier]) -> (Int, Int)? {
    guard ids.count > 1 else { return nil }
    let order = ids.indices.sorted { ids[$0] != ids[$1] ? ids[$0] < ids[$1] : $0 < $1 }
    var found: (Int, Int)? = nil
    for i in 1..<order.count where ids[order[i]] == ids[order[i - 1]] {
        if found == nil || order[i] < found!.0 { found = (order[i], order[i - 1]) }
    }
    return found
}

extension State {
    /// One time step of this stream (already checked) on `input` (one row), with its own buffers and
    /// matrix-vector products: the loop below for one stream.
    @inline(__always)
    func advance(_ input: StepInput) {
        let m = model
        if m.attention != nil { return advanceAttending(input) }
        let last = m.recurrent.count - 1
        for (i, layer) in m.recurrent.enumerated() {
            let gx = m.gateInputs(layer: i, rows: 1, input: input, below: i == 0 ? nil : UnsafePointer(h(i - 1)),
                                  work: bufA, proj: bufB, policy: .step)
            layer.forward.step(gx: gx[0], h: h(i), c: c(i), scratch: scratch, hq: i == last ? carriedX : nil)
        }
        applyHead()
        position += 1
    }

    func advance(token: UnsafePointer<Int>) { advance(.tokens(token)) }

    /// A frame step; a masked frame (`Model.isMasked`) leaves the state as it is, and the output is the
    /// head over it: the previous output, or the head over the zero state before any real frame (as Keras).
    func advance(frame: UnsafePointer<Float>) {
        if model.isMasked(frame) {
            applyHead()
            position += 1
            return
        }
        advance(.frames(frame))
    }

    /// One time step of `states` (distinct, of one model, already checked) on `tokens`. One stream uses
    /// its own buffers and matrix-vector products (`advance(token:)`); several share batched products
    /// (`Model.stepBatch`).
    static func advance(_ states: UnsafeBufferPointer<State>, input: StepInput) {
        let n = states.count
        let m = states[0].model
        if n == 1 || m.attention != nil {   // attention decoders step stream by stream
            guard case .tokens(let tokens) = input, n > 1 else { return states[0].advance(input) }
            for (k, s) in states.enumerated() { s.advance(.tokens(tokens + k)) }
            return
        }
        let carry = m.carriedX != nil, last = m.recurrent.count - 1
        let maxG = m.recurrent.map { $0.forward.gateRows }.max()!
        let maxIn = max(m.maxWidth, m.recurrent.map { max($0.spec.inputSize, $0.spec.units) }.max()!)
        let xs = UnsafeMutablePointer<Float>.allocate(capacity: n * maxIn)
        let gxs = UnsafeMutablePointer<Float>.allocate(capacity: n * maxG)
        let gh = UnsafeMutablePointer<Float>.allocate(capacity: n * max(maxG, m.maxWidth))
        let xq = UnsafeMutablePointer<UnsafeRawPointer?>.allocate(capacity: n)   // the streams' carried copies
        defer { xs.deallocate(); gxs.deallocate(); gh.deallocate(); xq.deallocate() }

        for (i, layer) in m.recurrent.enumerated() {
            let l = layer.forward
            let G = l.gateRows, H = l.spec.units
            if i > 0 {
                let In = l.spec.inputSize
                for (k, s) in states.enumerated() { (xs + k * In).update(from: s.h(i - 1), count: In) }
            }
            let gx = m.gateInputs(layer: i, rows: n, input: input, below: i == 0 ? nil : UnsafePointer(xs),
                                  work: xs, proj: gxs, policy: .step)
            guard l.cell.batchesRecurrentProduct(l.spec) else {
                for (k, s) in states.enumerated() {
                    l.step(gx: gx[k], h: s.h(i), c: s.c(i), scratch: s.scratch, hq: i == last ? s.carriedX : nil)
                }
                continue
            }
            // Recurrent products gh (n × G), then the gates of each stream. The last layer's h comes quantized
            // as each stream's carried copy: the one its last step kept, else made now (and stale once the gates
            // write h, until the head below makes it anew).
            if i == last, carry {
                for (k, s) in states.enumerated() { xq[k] = s.carriedX ?? s.carryH() }
                matmat(gh, l.recurrent, prepared: xq, count: n)
            } else {
                for (k, s) in states.enumerated() { (xs + k * H).update(from: s.h(i), count: H) }
                matmat(gh, l.recurrent, xs, count: n)
            }
            for (k, s) in states.enumerated() {
                l.cell.gates(l, gx: gx[k], gu: gh + k * G, h: s.h(i), c: s.c(i), tmp: s.scratch)
            }
        }

        // The dense head, batched the same way; its first layer quantizes h into each stream's carried copy.
        var width = m.recurrent[last].spec.outputSize
        if !carry { for (k, s) in states.enumerated() { (xs + k * width).update(from: s.h(last), count: width) } }
        var src = xs, dst = gh
        for (j, d) in m.head.enumerated() {
            let u = d.kernel.rows
            if j == 0, carry {
                for (k, s) in states.enumerated() { xq[k] = s.carryH() }
                m.project(d.kernel, d.bias, prepared: xq, n, into: dst)
            } else {
                m.project(d.kernel, d.bias, src, n, into: dst)
            }
            for k in 0..<n { applyActivation(d.activation, dst + k * u, u) }
            width = u
            swap(&src, &dst)
        }
        for (k, s) in states.enumerated() {
            s.output.update(from: src + k * width, count: m.outputSize)
            s.position += 1
        }
    }

    /// Runs the dense layers on the last recurrent layer's h into `output`.
    func applyHead() {
        let m = model
        var src: UnsafePointer<Float> = UnsafePointer(attention?.attended ?? h(m.recurrent.count - 1))
        var useA = true
        for (k, d) in m.head.enumerated() {
            let dst = k == m.head.count - 1 ? output : (useA ? bufA : bufB)
            if k == 0, m.carriedX != nil {   // src is the last recurrent layer's h, new or not: keep its quantization
                d.apply(dst, src, prepared: carryH())
            } else {
                d.apply(dst, src)
            }
            src = UnsafePointer(dst)
            useA.toggle()
        }
        if m.head.isEmpty {
            output.update(from: src, count: m.outputSize)
        }
    }
}
