#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Attention over the encoder's outputs (FORMAT.md §13.9): a decoder step scores every source position
/// against the last decoder recurrent layer's new state h_t, turns the scores into weights a_t (softmax
/// over the positions that are not PAD), takes the context c_t = Σ_s a_ts h̄_s, and outputs
/// h̃_t = tanh(W_c [c_t; h_t] + b_c), or [c_t; h_t] as it is, for the dense head.

/// An attention layer's weights, pointing into the model file.
struct AttentionWeights: @unchecked Sendable {
    let spec: AttentionSpec
    /// general: W_a (Q × M).
    let scoreKernel: Matrix?
    /// additive: W_q (A × Q), W_k (A × M), v_a (A), and b (A) with `use_bias`.
    let queryKernel: Matrix?
    let keyKernel: Matrix?
    let scoreVector: UnsafePointer<Float>?
    let scoreBias: UnsafePointer<Float>?
    /// combine = tanh: W_c (units × (M + Q)) and b_c (units).
    let combineKernel: Matrix?
    let combineBias: UnsafePointer<Float>?

    /// Floats of work space a step needs: W_q h_t (A), then [c_t; h_t] (M + Q).
    var workFloats: Int { spec.attentionUnits + spec.memorySize + spec.inputSize }

    /// The keys of every memory row, computed once per source: W_a h̄_s (general) or W_k h̄_s + b
    /// (additive); nil for dot scoring, whose keys are the memory itself.
    func keys(_ memory: UnsafePointer<Float>, steps T: Int) -> UnsafeMutablePointer<Float>? {
        let K = spec.keyWidth, M = spec.memorySize
        guard K > 0, let w = spec.score == .general ? scoreKernel : keyKernel else { return nil }
        let keys = UnsafeMutablePointer<Float>.allocate(capacity: T * K)
        for s in 0..<T {
            let row = keys + s * K
            if let b = scoreBias { row.update(from: b, count: K) } else { row.update(repeating: 0, count: K) }
            matvec(row, w, memory + s * M, accumulate: true)
        }
        return keys
    }

    /// One step: the weights over the memory's positions into `weights` (T floats), and the layer's output
    /// (`spec.outputSize` floats) into `out`, for the decoder state `h` (Q floats).
    func attend(_ h: UnsafePointer<Float>, _ memory: AttentionMemory, weights: UnsafeMutablePointer<Float>,
                work: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let T = memory.steps, M = spec.memorySize, Q = spec.inputSize, A = spec.attentionUnits
        let mem = UnsafePointer(memory.values)
        // Scores.
        switch spec.score {
        case .dot:
            for s in 0..<T { weights[s] = dot(h, mem + s * M, Q) }
        case .general:
            let keys = UnsafePointer(memory.keys!)
            for s in 0..<T { weights[s] = dot(h, keys + s * Q, Q) }
        case .additive:
            let q = work
            q.update(repeating: 0, count: A)
            matvec(q, queryKernel!, h, accumulate: true)
            let keys = UnsafePointer(memory.keys!), v = scoreVector!
            for s in 0..<T {
                let k = keys + s * A
                var e: Float = 0
                for a in 0..<A { e += v[a] * tanhf(q[a] + k[a]) }
                weights[s] = e
            }
        }
        // Softmax over the positions that are not PAD (at least one is: `Model.encode` refuses the rest).
        var top = -Float.infinity
        for s in 0..<T where memory.attends[s] { top = max(top, weights[s]) }
        var sum: Float = 0
        for s in 0..<T {
            weights[s] = memory.attends[s] ? expf(weights[s] - top) : 0
            sum += weights[s]
        }
        let inv = 1 / sum
        for s in 0..<T { weights[s] *= inv }
        // [c_t; h_t].
        let cat = work + A
        cat.update(repeating: 0, count: M)
        for s in 0..<T where weights[s] != 0 {
            let w = weights[s], row = mem + s * M
            for j in 0..<M { cat[j] += w * row[j] }
        }
        (cat + M).update(from: h, count: Q)
        switch spec.combine {
        case .none:
            out.update(from: cat, count: M + Q)
        case .tanh:
            out.update(from: combineBias!, count: spec.units)
            matvec(out, combineKernel!, cat, accumulate: true)
            applyActivation(.tanh, out, spec.units)
        }
    }

    @inline(__always)
    private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s: Float = 0
        for j in 0..<n { s += a[j] * b[j] }
        return s
    }
}

/// The encoder's outputs for one source (T × M floats), their precomputed keys, and which positions
/// attention may look at: made once by `Model.encode`, shared (reference-counted, never copied) by every
/// state forked from that decoder state, as the hypotheses of a beam search are.
final class AttentionMemory: @unchecked Sendable {
    let steps: Int
    let values: UnsafeMutablePointer<Float>
    let keys: UnsafeMutablePointer<Float>?
    /// false at PAD positions (an unmasked source vocabulary keeps PAD tokens in the encoder's input).
    let attends: [Bool]
    /// The source tokens the encoder read, in its reading order: position s of the weights.
    let tokens: [Int]

    init(values: [Float], steps: Int, attention: AttentionWeights, tokens: [Int], pad: Int?) {
        self.steps = steps
        self.values = .allocate(capacity: max(values.count, 1))
        self.values.initialize(from: values, count: values.count)
        keys = attention.keys(self.values, steps: steps)
        self.tokens = tokens
        attends = tokens.map { $0 != pad }
    }

    deinit {
        values.deallocate()
        keys?.deallocate()
    }
}

/// A decoder stream's own attention buffers: the memory it attends over (shared), the last attentional
/// output h̃ (fed back with input feeding, read by the head), the last weights, and work space.
final class AttentionState {
    var memory: AttentionMemory?
    /// h̃ after the last step (zero before the first).
    let attended: UnsafeMutablePointer<Float>
    let width: Int
    /// The first recurrent layer's input: [embedding; h̃_{t−1}].
    let input: UnsafeMutablePointer<Float>
    let inputWidth: Int
    let work: UnsafeMutablePointer<Float>
    /// The weights of the last step over the memory's positions (memory.steps floats; empty before one).
    var weights: [Float] = []

    init(_ a: AttentionWeights, inputWidth: Int) {
        width = a.spec.outputSize
        attended = .allocate(capacity: width)
        attended.initialize(repeating: 0, count: width)
        self.inputWidth = inputWidth
        input = .allocate(capacity: max(inputWidth, 1))
        input.initialize(repeating: 0, count: max(inputWidth, 1))
        work = .allocate(capacity: a.workFloats)
        work.initialize(repeating: 0, count: a.workFloats)
    }

    deinit {
        attended.deallocate(); input.deallocate(); work.deallocate()
    }

    func reset() {
        memory = nil
        attended.update(repeating: 0, count: width)
        weights = []
    }

    func copy(from other: AttentionState) {
        memory = other.memory
        attended.update(from: other.attended, count: width)
        weights = other.weights
    }

    /// A new source: this memory, h̃_0 = 0, no weights yet.
    func start(_ m: AttentionMemory) {
        memory = m
        attended.update(repeating: 0, count: width)
        weights = [Float](repeating: 0, count: m.steps)
    }
}

extension State {
    /// One decoder step of an attention model on `token` (checked; the state has a memory): the recurrent
    /// layers (the first reading [E[token]; h̃_{t−1}] with input feeding), then attention, then the head.
    func advanceAttending(_ input: StepInput) {
        let m = model, att = m.attention!, a = attention!
        guard case .tokens(let token) = input else { return }   // seq2seq decoders read tokens
        for (i, layer) in m.recurrent.enumerated() {
            let l = layer.forward
            let gx: UnsafePointer<Float>
            if i == 0 && att.spec.inputFeeding {
                let E = m.embedding!.table.cols
                m.embedding!.lookup(token.pointee, into: a.input)
                (a.input + E).update(from: a.attended, count: a.width)
                l.inputProjection(bufB, a.input)
                gx = UnsafePointer(bufB)
            } else {
                gx = m.gateInputs(layer: i, rows: 1, input: input, below: i == 0 ? nil : UnsafePointer(h(i - 1)),
                                  work: bufA, proj: bufB, policy: .step)[0]
            }
            l.step(gx: gx, h: h(i), c: c(i), scratch: scratch)
        }
        a.weights.withUnsafeMutableBufferPointer { w in
            att.attend(h(m.recurrent.count - 1), a.memory!, weights: w.baseAddress!, work: a.work, out: a.attended)
        }
        applyHead()
        position += 1
    }

    /// The attention weights of the last step over the source positions (the tokens the encoder read,
    /// `attentionSource`), or nil for a model without attention or a state that has not stepped.
    public var attentionWeights: [Float]? {
        guard let a = attention, a.memory != nil, position > 0 else { return nil }
        return a.weights
    }

    /// The source tokens the decoder attends over, in the encoder's reading order (PAD dropped unless the
    /// source vocabulary is unmasked, reversed with `encoder.reverse_source`, cut and padded to a recorded
    /// padding length), or nil for a model without attention or a state not made by `encode(source:)`.
    public var attentionSource: [Int]? { attention?.memory?.tokens }
}
