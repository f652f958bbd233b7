import COpenBLAS

/// C (M × N) = A (M × K) · Bᵀ, with B stored N × K row-major (a weight matrix), f32, via OpenBLAS sgemm.
/// Then adds `bias` (N) to every row when given. This is the prefill's input projection:
/// all tokens' inputs (M = tokens) against one layer's stacked gate kernels (N = gates × units).
package func gemmABt(_ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                    m: Int, n: Int, k: Int, bias: UnsafePointer<Float>?) {
    if let bias {
        for i in 0..<m { (c + i * n).update(from: bias, count: n) }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                1, a, Int32(k), b, Int32(k), bias == nil ? 0 : 1, c, Int32(n))
}
