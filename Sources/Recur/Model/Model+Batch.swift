/// Stepping several independent streams together.
extension Model {
    /// Feeds `tokens[i]` to `states[i]` for every i, reading each weight matrix once for all the streams
    /// (matrix-matrix products instead of one matrix-vector product per stream). Afterwards each state's
    /// `output` holds what `states[i].step(tokens[i])` would have returned, equal up to floating-point
    /// summation order. The states must belong to this model and be distinct; a GRU layer with
    /// reset_after = false is stepped stream by stream (its second product depends on the first).
    /// On error no state has changed.
    public func stepBatch(states: [State], tokens: [Int]) throws {
        guard states.count == tokens.count else {
            throw RecurError(.invalidArgument, "stepBatch got \(states.count) states and \(tokens.count) tokens")
        }
        guard let first = states.first else { return }
        var seen = Set<ObjectIdentifier>()
        for s in states {
            guard s.model === self else { throw RecurError(.mismatch, "stepBatch: a state belongs to another model") }
            guard seen.insert(ObjectIdentifier(s)).inserted else {
                throw RecurError(.invalidArgument, "stepBatch: the same state appears twice")
            }
        }
        try first.requireStepwise()
        for (s, t) in zip(states, tokens) { try s.checkToken(t); try s.checkAdvance(1) }
        let n = states.count
        if n == 1 {
            try first.step(tokens[0])
            return
        }
        let maxG = recurrent.map { $0.forward.gateRows }.max()!
        let maxIn = max(maxWidth, recurrent.map { max($0.forward.spec.inputSize, $0.forward.spec.units) }.max()!)
        let xs = UnsafeMutablePointer<Float>.allocate(capacity: n * maxIn)
        let gx = UnsafeMutablePointer<Float>.allocate(capacity: n * maxG)
        let gh = UnsafeMutablePointer<Float>.allocate(capacity: n * max(maxG, maxWidth))
        defer { xs.deallocate(); gx.deallocate(); gh.deallocate() }

        for (i, layer) in recurrent.enumerated() {
            let l = layer.forward
            let G = l.gateRows, H = l.spec.units, In = l.spec.inputSize
            // Input projections gx (n × G).
            var gxOf: (Int) -> UnsafePointer<Float>
            if i == 0, let table = inputTable {
                gxOf = { UnsafePointer(table + tokens[$0] * G) }
            } else {
                for (k, s) in states.enumerated() {
                    if i == 0 {
                        embedding!.lookup(tokens[k], into: xs + k * In)
                    } else {
                        (xs + k * In).update(from: s.vectors + s.hOffset[i - 1], count: In)
                    }
                }
                matmat(gx, l.kernel, xs, count: n)
                for k in 0..<n {
                    let row = gx + k * G
                    for j in 0..<G { row[j] += l.bias[j] }
                }
                gxOf = { UnsafePointer(gx + $0 * G) }
            }
            if l.spec.cell == .gru && !l.spec.resetAfter {
                for (k, s) in states.enumerated() {
                    l.step(gx: gxOf(k), h: s.vectors + s.hOffset[i], c: nil, scratch: s.scratch)
                }
                continue
            }
            // Recurrent products gh (n × G), then the gates of each stream.
            for (k, s) in states.enumerated() { (xs + k * H).update(from: s.vectors + s.hOffset[i], count: H) }
            matmat(gh, l.recurrent, xs, count: n)
            for (k, s) in states.enumerated() {
                let h = s.vectors + s.hOffset[i]
                switch l.spec.cell {
                case .gru: GRUCell.gatesResetAfter(l, gx: gxOf(k), gh: gh + k * G, h: h)
                case .lstm: LSTMCell.gates(l, gx: gxOf(k), g: gh + k * G, h: h, c: s.vectors + s.cOffset[i]!, tmp: s.scratch)
                case .rnn: SimpleRNNCell.gates(l, gx: gxOf(k), u: gh + k * G, h: h)
                }
            }
        }

        // The dense head, batched the same way.
        let last = recurrent.count - 1
        var width = recurrent[last].forward.spec.outputSize
        for (k, s) in states.enumerated() { (xs + k * width).update(from: s.vectors + s.hOffset[last], count: width) }
        var src = xs, dst = gh
        for d in head {
            let u = d.kernel.rows
            matmat(dst, d.kernel, src, count: n)
            for k in 0..<n {
                let row = dst + k * u
                for j in 0..<u { row[j] += d.bias[j] }
                applyActivation(d.activation, row, u)
            }
            width = u
            swap(&src, &dst)
        }
        for (k, s) in states.enumerated() {
            s.output.update(from: src + k * width, count: outputSize)
            s.position += 1
        }
    }
}
