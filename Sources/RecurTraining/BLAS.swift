import COpenBLAS
import Recur

/// C (m × n) = alpha · op(A) · op(B) + beta · C, row-major f32, through OpenBLAS cblas_sgemm.
/// op(A) is m × k (A stored k × m when `transA`), op(B) is k × n (B stored n × k when `transB`).
/// Leading dimensions are the row strides of the matrices as stored.
@inline(__always)
func sgemm(_ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
           _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
           beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The number of threads OpenBLAS uses inside one call.
enum BLASThreads {
    static func set(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
}

/// A zero-initialized block of floats owned by its instance.
final class FloatBuffer: @unchecked Sendable {
    let p: UnsafeMutablePointer<Float>
    let count: Int

    init(_ count: Int) {
        self.count = count
        p = .allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { p.deallocate() }

    func zero() { p.update(repeating: 0, count: count) }

    var array: [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }

    func load(_ values: [Float]) {
        precondition(values.count == count)
        values.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: count) }
    }
}

/// out[j] += Σ_i a[i·cols + j]
@inline(__always)
func columnSums(_ a: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>, stride: Int? = nil) {
    let ld = stride ?? cols
    for i in 0..<rows {
        let row = a + i * ld
        for j in 0..<cols { out[j] += row[j] }
    }
}

/// x ← x ⊙ m
@inline(__always)
func multiply(_ x: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { x[i] *= m[i] }
}

/// The derivative of `a` at the point where it output `y` (all activations the cells use are monotonic,
/// so the output determines it).
@inline(__always)
func derivative(_ a: Activation, output y: Float) -> Float {
    switch a {
    case .linear, .softmax: return 1
    case .relu: return y > 0 ? 1 : 0
    case .tanh: return 1 - y * y
    case .sigmoid: return y * (1 - y)
    case .hardSigmoidKeras2: return y > 0 && y < 1 ? 0.2 : 0
    case .hardSigmoidKeras3: return y > 0 && y < 1 ? 1 / 6 : 0
    }
}
