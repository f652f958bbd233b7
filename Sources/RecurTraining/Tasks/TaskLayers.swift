#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Recur

/// A dense layer's place in a flat buffer and its forward and backward passes over N rows.
struct DenseLayer {
    let w: Int, b: Int, inputs: Int, units: Int, activation: Activation

    /// Y [N, units] = act(X · Wᵀ + b). Softmax is applied row by row.
    func forward(_ P: UnsafePointer<Float>, _ X: UnsafePointer<Float>, rows N: Int, _ Y: UnsafeMutablePointer<Float>) {
        for i in 0..<N { (Y + i * units).update(from: P + b, count: units) }
        sgemm(false, true, m: N, n: units, k: inputs, X, lda: inputs, P + w, ldb: inputs, beta: 1, Y, ldc: units)
        if activation == .softmax {
            for i in 0..<N { softmaxRow(Y + i * units, units) }
        } else if activation != .linear {
            for i in 0..<(N * units) { Y[i] = activate(activation, Y[i]) }
        }
    }

    /// From dZ [N, units] (gradient before the activation): adds dW, db and writes dX [N, inputs].
    func backward(_ P: UnsafePointer<Float>, _ G: UnsafeMutablePointer<Float>, _ X: UnsafePointer<Float>, rows N: Int,
                  _ dZ: UnsafePointer<Float>, _ dX: UnsafeMutablePointer<Float>?) {
        sgemm(true, false, m: units, n: inputs, k: N, dZ, lda: units, X, ldb: inputs, beta: 1, G + w, ldc: inputs)
        columnSums(dZ, rows: N, cols: units, into: G + b)
        if let dX { sgemm(false, false, m: N, n: inputs, k: units, dZ, lda: units, P + w, ldb: inputs, beta: 0, dX, ldc: inputs) }
    }
}

/// x ← softmax(x) (max subtracted).
@inline(__always)
func softmaxRow(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    var m = x[0]
    for k in 1..<n where x[k] > m { m = x[k] }
    var s: Float = 0
    for k in 0..<n { let e = expf(x[k] - m); x[k] = e; s += e }
    for k in 0..<n { x[k] /= s }
}

/// The index of the largest of x[0..<n] (the first one on ties).
@inline(__always)
func argmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
    var best = 0
    for k in 1..<n where x[k] > x[best] { best = k }
    return best
}

/// How a task model's weights start.
public enum TaskInitializer: String, Sendable, CaseIterable {
    /// Recurrent input kernels, recurrent kernels and biases U(±1/√units) (LSTM forget-gate biases +1).
    case uniform
    /// Keras' defaults: recurrent input kernels Glorot-uniform, recurrent kernels orthogonal (one matrix
    /// [gates·units, units] with orthonormal columns, as Keras' `Orthogonal` makes its (units, gates·units)
    /// kernel), biases 0 (LSTM forget-gate biases 1, Keras' `unit_forget_bias`).
    case keras
}

/// A [rows, cols] matrix (rows ≥ cols), row-major, with orthonormal columns: the Q of the QR factorization
/// of a standard Gaussian matrix with R's diagonal made positive (Keras' `Orthogonal`), by modified
/// Gram–Schmidt in double precision with one re-orthogonalization pass.
func orthogonalColumns(rows m: Int, cols n: Int, _ rng: inout SplitMix64) -> [Float] {
    precondition(m >= n && n >= 1)
    var a = [[Double]](repeating: [Double](repeating: 0, count: m), count: n)   // columns
    for i in 0..<m {
        for j in 0..<n {
            // Box–Muller: one standard normal from two uniforms.
            let u1 = max(rng.nextUnit(), 1e-300), u2 = rng.nextUnit()
            a[j][i] = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        }
    }
    for j in 0..<n {
        for _ in 0..<2 {
            for k in 0..<j {
                var dot = 0.0
                for i in 0..<m { dot += a[k][i] * a[j][i] }
                for i in 0..<m { a[j][i] -= dot * a[k][i] }
            }
        }
        var norm = 0.0
        for i in 0..<m { norm += a[j][i] * a[j][i] }
        norm = norm.squareRoot()
        for i in 0..<m { a[j][i] /= norm }
    }
    var q = [Float](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n { q[i * n + j] = Float(a[j][i]) } }
    return q
}

/// Fills a task model's weights: embeddings U(±0.05); with the uniform scheme recurrent weights and biases
/// U(±1/√units), with the Keras scheme input kernels Glorot-uniform, recurrent kernels orthogonal and
/// biases 0; LSTM forget-gate biases +1, peepholes 0; dense weights Glorot-uniform, biases 0.
func initializeTaskWeights(_ layout: ParameterLayout, _ arch: Architecture, _ P: UnsafeMutablePointer<Float>, seed: UInt64,
                           scheme: TaskInitializer = .uniform) {
    var rng = SplitMix64(seed: seed)
    func fill(_ name: String, _ bound: Float) {
        guard let e = layout.entry(name) else { return }
        for i in 0..<e.count { P[e.offset + i] = Float(rng.nextUnit() * 2 - 1) * bound }
    }
    func zero(_ name: String) {
        if let e = layout.entry(name) { (P + e.offset).update(repeating: 0, count: e.count) }
    }
    for (prefix, layers) in [("encoder.", arch.encoder), ("", arch.layers)] {
        for (i, layer) in layers.enumerated() {
            let p = "\(prefix)layer.\(i)."
            switch layer {
            case .embedding:
                fill(p + "embeddings", 0.05)
            case .recurrent(let r):
                for q in r.bidirectional ? [p + "forward.", p + "backward."] : [p] {
                    switch scheme {
                    case .uniform:
                        let k = 1 / Float(r.units).squareRoot()
                        for n in ["kernel", "recurrent_kernel", "bias", "recurrent_bias"] { fill(q + n, k) }
                    case .keras:
                        let G = r.gates * r.units
                        fill(q + "kernel", (6 / Float(r.inputSize + G)).squareRoot())
                        if let e = layout.entry(q + "recurrent_kernel") {
                            (P + e.offset).update(from: orthogonalColumns(rows: G, cols: r.units, &rng), count: e.count)
                        }
                        zero(q + "bias"); zero(q + "recurrent_bias")
                    }
                    if let e = layout.entry(q + "peephole") { (P + e.offset).update(repeating: 0, count: e.count) }
                    if let e = layout.entry(q + "bias") { r.trainingCell.initializeBias(P + e.offset, units: r.units) }
                }
            case .dense(let n, let u, _):
                fill(p + "kernel", (6 / Float(n + u)).squareRoot())
                if let e = layout.entry(p + "bias") { (P + e.offset).update(repeating: 0, count: e.count) }
            case .attention:
                // Glorot-uniform kernels and additive scoring's v_a (fans A and A, as Keras' AdditiveAttention
                // scale), zero biases.
                for e in layout.entries where e.name.hasPrefix(p) && e.shape.count == 2 {
                    fill(e.name, (6 / Float(e.shape[0] + e.shape[1])).squareRoot())
                }
                fill(p + "score_vector", (3 / Float(max(layout.entry(p + "score_vector")?.count ?? 1, 1))).squareRoot())
                for e in layout.entries where e.name.hasPrefix(p) && e.shape.count == 1 && e.name != p + "score_vector" {
                    (P + e.offset).update(repeating: 0, count: e.count)
                }
            }
        }
    }
}
