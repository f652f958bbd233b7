#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Recur

/// Attention being trained (FORMAT.md §13.9): for the decoder's new state h_t [Q] and the encoder's outputs
/// h̄_s [M] at the real source positions, scores
///
///     e_ts = h_t · h̄_s                              dot        (keys k_s = h̄_s, Q = M)
///     e_ts = h_t · (W_a h̄_s)                        general    (keys k_s = W_a h̄_s [Q])
///     e_ts = v_a · tanh(W_q h_t + W_k h̄_s + b)      additive   (keys k_s = W_k h̄_s + b [A], queries W_q h_t [A])
///
/// weights a_t = softmax(e_t), context c_t = Σ a_ts h̄_s and output h̃_t = tanh(W_c [c_t; h_t] + b_c).
/// Rows are time-major like the recurrent passes (row t·B + b); the memory is [S·B, M], the keys [S·B, K].
///
/// Forward runs one decoder step at a time (`forward(step:)`); backward too (`backwardStep`, from the
/// last step to the first), so that a decoder with input feeding can interleave it with its recurrent
/// steps; `beginBackward` starts and `finishBackward` ends the pass (the weight gradients of the products
/// shared by all steps).
final class AttentionPass {
    let spec: AttentionSpec
    /// Query, memory and key widths, the output's, the longest source.
    let Q: Int, M: Int, K: Int, units: Int, maxS: Int
    /// Offsets of the tensors: W_a (general); W_q, W_k, v_a, b (additive); W_c, b_c.
    let wa: Int?, wq: Int?, wk: Int?, va: Int?, ba: Int?
    let wc: Int, bc: Int
    let keys: FloatBuffer, weights: FloatBuffer, joined: FloatBuffer, out: FloatBuffer
    let dout: FloatBuffer, djoined: FloatBuffer, dkeys: FloatBuffer, dmem: FloatBuffer
    /// Additive scoring: W_q h_t of each row [T·B, A] and its gradient.
    let queries: FloatBuffer, dqueries: FloatBuffer
    private var memory: UnsafePointer<Float>?
    private var sourceMask: [Float] = []
    private var S = 0, B = 0

    init(_ spec: AttentionSpec, layout: ParameterLayout, prefix p: String, streams B: Int, source S: Int, target T: Int) {
        precondition(spec.combine == .tanh)
        self.spec = spec
        Q = spec.inputSize; M = spec.memorySize; units = spec.units; maxS = S
        K = spec.score == .additive ? spec.attentionUnits : Q
        func offset(_ name: String) -> Int { layout.entry(p + name)!.offset }
        wa = spec.score == .general ? offset("score_kernel") : nil
        let additive = spec.score == .additive
        wq = additive ? offset("query_kernel") : nil
        wk = additive ? offset("key_kernel") : nil
        va = additive ? offset("score_vector") : nil
        ba = additive && spec.useBias ? offset("score_bias") : nil
        wc = offset("kernel"); bc = offset("bias")
        keys = FloatBuffer(S * B * K); dkeys = FloatBuffer(S * B * K); dmem = FloatBuffer(S * B * M)
        weights = FloatBuffer(T * B * S)
        joined = FloatBuffer(T * B * (M + Q)); djoined = FloatBuffer(T * B * (M + Q))
        out = FloatBuffer(T * B * units); dout = FloatBuffer(T * B * units)
        queries = FloatBuffer(additive ? T * B * K : 0); dqueries = FloatBuffer(additive ? T * B * K : 0)
    }

    /// h̃ of every row [T·B, units], after `forward`.
    var output: UnsafeMutablePointer<Float> { out.p }
    /// Where the caller puts ∂loss/∂h̃ [T·B, units] before `backwardStep` of each step.
    var doutput: UnsafeMutablePointer<Float> { dout.p }
    /// ∂loss/∂(encoder outputs) [S·B, M] after `finishBackward`.
    var dmemory: UnsafePointer<Float> { UnsafePointer(dmem.p) }
    /// The attention weights of row t·B + b [S] after `forward` of step t (0 at PAD positions).
    func weights(row: Int) -> UnsafePointer<Float> { UnsafePointer(weights.p + row * maxS) }

    /// Takes the encoder's outputs [S·B, M] of this batch (valid until the next `start`) and computes the keys.
    func start(_ P: UnsafePointer<Float>, memory mem: UnsafePointer<Float>, mask: [Float], steps S: Int, streams B: Int) {
        memory = mem; sourceMask = mask; self.S = S; self.B = B
        switch spec.score {
        case .dot:
            keys.p.update(from: mem, count: S * B * M)
        case .general:
            // K [S·B, Q] = mem [S·B, M] · W_aᵀ (W_a [Q, M])
            sgemm(false, true, m: S * B, n: Q, k: M, mem, lda: M, P + wa!, ldb: M, beta: 0, keys.p, ldc: Q)
        case .additive:
            // K [S·B, A] = mem · W_kᵀ (+ b) (W_k [A, M])
            for i in 0..<(S * B) {
                if let ba { (keys.p + i * K).update(from: P + ba, count: K) } else { (keys.p + i * K).update(repeating: 0, count: K) }
            }
            sgemm(false, true, m: S * B, n: K, k: M, mem, lda: M, P + wk!, ldb: M, beta: 1, keys.p, ldc: K)
        }
    }

    /// The rows of step t, from the decoder's new states h of that step [B, Q].
    func forward(_ P: UnsafePointer<Float>, _ h: UnsafePointer<Float>, step t: Int, streams B: Int) {
        let mem = memory!
        if let wq {
            sgemm(false, true, m: B, n: K, k: Q, h, lda: Q, P + wq, ldb: Q, beta: 0, queries.p + t * B * K, ldc: K)
        }
        for b in 0..<B {
            let row = t * B + b, q = h + b * Q, a = weights.p + row * maxS
            var best = -Float.infinity
            for s in 0..<S {
                guard sourceMask[s * B + b] != 0 else { a[s] = -.infinity; continue }
                let k = keys.p + (s * B + b) * K
                var d: Float = 0
                if let va {
                    let qa = queries.p + row * K, v = P + va
                    for i in 0..<K { d += v[i] * tanhf(qa[i] + k[i]) }
                } else {
                    for i in 0..<K { d += q[i] * k[i] }
                }
                a[s] = d
                best = max(best, d)
            }
            var total: Float = 0
            for s in 0..<S { a[s] = a[s] == -.infinity ? 0 : expf(a[s] - best); total += a[s] }
            let u = joined.p + row * (M + Q)
            u.update(repeating: 0, count: M)
            if total > 0 {
                for s in 0..<S where a[s] != 0 {
                    a[s] /= total
                    let m = mem + (s * B + b) * M
                    for i in 0..<M { u[i] += a[s] * m[i] }
                }
            }
            (u + M).update(from: q, count: Q)
        }
        // h̃ [B, units] = tanh([c; h] · W_cᵀ + b_c)
        let o = out.p + t * B * units
        for b in 0..<B { (o + b * units).update(from: P + bc, count: units) }
        sgemm(false, true, m: B, n: units, k: M + Q, joined.p + t * B * (M + Q), lda: M + Q, P + wc, ldb: M + Q, beta: 1, o, ldc: units)
        for i in 0..<(B * units) { o[i] = tanhf(o[i]) }
    }

    /// Zeroes the gradients the steps accumulate.
    func beginBackward() {
        dkeys.zero(); dmem.zero(); dqueries.zero()
    }

    /// Backward of step t, from ∂loss/∂h̃ of its rows in `dout` (complete: rows whose target mask is 0 hold
    /// zeros): writes ∂loss/∂h of the step's rows into `dDecoder` [B, Q] (the step's rows), adds v_a's
    /// gradient to `G` and accumulates the keys', queries' and memory's gradients.
    func backwardStep(_ P: UnsafePointer<Float>, _ G: UnsafeMutablePointer<Float>, decoder h: UnsafePointer<Float>,
                      dDecoder dh: UnsafeMutablePointer<Float>, mask: [Float], step t: Int) {
        let mem = memory!, r0 = t * B, J = M + Q
        let dz = dout.p + r0 * units, o = out.p + r0 * units
        // dZ = dh̃ ⊙ (1 − h̃²), in place; d[c; h] = dZ · W_c
        for i in 0..<(B * units) { dz[i] *= 1 - o[i] * o[i] }
        sgemm(false, false, m: B, n: J, k: units, dz, lda: units, P + wc, ldb: J, beta: 0, djoined.p + r0 * J, ldc: J)
        var da = [Float](repeating: 0, count: S)
        for b in 0..<B {
            let row = r0 + b
            let du = djoined.p + row * J, d = dh + b * Q
            d.update(from: du + M, count: Q)
            guard mask[row] != 0 else { continue }
            let a = weights.p + row * maxS, q = h + b * Q
            // da_s = dc · h̄_s; dscore_s = a_s (da_s − Σ a da)
            var mean: Float = 0
            for s in 0..<S where a[s] != 0 {
                let m = mem + (s * B + b) * M
                var v: Float = 0
                for i in 0..<M { v += du[i] * m[i] }
                da[s] = v
                mean += a[s] * v
            }
            for s in 0..<S where a[s] != 0 {
                let ds = a[s] * (da[s] - mean)
                let k = keys.p + (s * B + b) * K, dk = dkeys.p + (s * B + b) * K, dm = dmem.p + (s * B + b) * M
                if let va {
                    // e = v · z, z = tanh(W_q h + k): dv += ds z; d(W_q h) = dk = ds v ⊙ (1 − z²)
                    let qa = queries.p + row * K, dqa = dqueries.p + row * K, v = P + va, dv = G + va
                    for i in 0..<K {
                        let z = tanhf(qa[i] + k[i])
                        dv[i] += ds * z
                        let g = ds * v[i] * (1 - z * z)
                        dqa[i] += g
                        dk[i] += g
                    }
                } else {
                    for i in 0..<K {
                        d[i] += ds * k[i]
                        dk[i] += ds * q[i]
                    }
                }
                for i in 0..<M { dm[i] += a[s] * du[i] }
            }
        }
        if let wq {
            // W_q h: dh += dQ · W_q (W_q [A, Q])
            sgemm(false, false, m: B, n: Q, k: K, dqueries.p + r0 * K, lda: K, P + wq, ldb: Q, beta: 1, dh, ldc: Q)
        }
    }

    /// After `backwardStep` of steps T − 1 … 0: adds the gradients of W_c, b_c (and W_a, or W_q, W_k, b) to
    /// `G` and completes ∂loss/∂(memory) in `dmem`. `decoder` holds the states h of every step [T·B, Q].
    func finishBackward(_ P: UnsafePointer<Float>, _ G: UnsafeMutablePointer<Float>, decoder hs: UnsafePointer<Float>, steps T: Int) {
        let N = T * B, mem = memory!, J = M + Q, SB = S * B
        sgemm(true, false, m: units, n: J, k: N, dout.p, lda: units, joined.p, ldb: J, beta: 1, G + wc, ldc: J)
        columnSums(dout.p, rows: N, cols: units, into: G + bc)
        switch spec.score {
        case .dot:
            for i in 0..<(SB * M) { dmem.p[i] += dkeys.p[i] }
        case .general:
            // K = mem · W_aᵀ: dW_a += dKᵀ · mem, dmem += dK · W_a
            sgemm(true, false, m: Q, n: M, k: SB, dkeys.p, lda: Q, mem, ldb: M, beta: 1, G + wa!, ldc: M)
            sgemm(false, false, m: SB, n: M, k: Q, dkeys.p, lda: Q, P + wa!, ldb: M, beta: 1, dmem.p, ldc: M)
        case .additive:
            // K = mem · W_kᵀ + b: dW_k += dKᵀ · mem, db += Σ dK, dmem += dK · W_k; W_q h: dW_q += dQᵀ · H
            sgemm(true, false, m: K, n: M, k: SB, dkeys.p, lda: K, mem, ldb: M, beta: 1, G + wk!, ldc: M)
            if let ba { columnSums(dkeys.p, rows: SB, cols: K, into: G + ba) }
            sgemm(false, false, m: SB, n: M, k: K, dkeys.p, lda: K, P + wk!, ldb: M, beta: 1, dmem.p, ldc: M)
            sgemm(true, false, m: K, n: Q, k: N, dqueries.p, lda: K, hs, ldb: Q, beta: 1, G + wq!, ldc: Q)
        }
    }

    /// The whole backward pass of a decoder without input feeding: every step, then `finishBackward`.
    func backward(_ P: UnsafePointer<Float>, _ G: UnsafeMutablePointer<Float>, decoder hs: UnsafePointer<Float>,
                  dDecoder dh: UnsafeMutablePointer<Float>, mask: [Float], steps T: Int) {
        beginBackward()
        for t in stride(from: T - 1, through: 0, by: -1) {
            backwardStep(P, G, decoder: hs + t * B * Q, dDecoder: dh + t * B * Q, mask: mask, step: t)
        }
        finishBackward(P, G, decoder: hs, steps: T)
    }
}
