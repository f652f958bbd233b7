import COpenBLAS
import CRecurKernels

/// Matrix-matrix products: several vectors against one weight matrix (the batched step, the input
/// table). f32 weights go to a C kernel for up to 16 vectors and to OpenBLAS sgemm above; f16 weights are decoded to f32 in chunks of rows that stay
/// in cache, each chunk multiplied by sgemm (for fewer than `decodeMinimum` vectors, one vector at a
/// time); quantized weights go to `rk_matmat_rows`, which computes exactly what single steps compute (the
/// same int8 activations, the same bits) and reads q8ri weights once per 8 vectors (AVX-512) or 4 (AVX2); a
/// matrix split across the worker pool is multiplied vector by vector, each product on the pool.

/// Up to this many vectors, f32 products use the C kernel that reads each weight once per 4 vectors
/// (no BLAS threads to wake for a handful of streams); above, sgemm.
let f32KernelMaximum = 16

/// Below this many vectors, f16 weights are multiplied vector by vector (decoding costs more than it saves).
let decodeMinimum = 4

/// Y (n × rows) = X (n × cols) · Wᵀ: Y[i] = W · X[i] for each of n vectors, all row-major.
/// With `exactActivations`, q8 and q4 weights are decoded and multiplied by sgemm like f16 (from
/// `decodeMinimum` vectors up): more accurate and, for many vectors, faster, but no longer what a step
/// computes (the prefill's input projections use it).
package func matmat(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, count n: Int,
                   exactActivations: Bool = false) {
    guard n > 0, w.rows > 0 else { return }
    if w.cols == 0 {
        y.update(repeating: 0, count: n * w.rows)
        return
    }
    if n == 1 {
        matvec(y, w, x)
        return
    }
    if w.dtype == .f32 {
        if n <= f32KernelMaximum {
            rk_matmat_f32(y, w.f32, x, n, w.rows, w.cols)
        } else {
            gemmABt(y, x, w.f32, m: n, n: w.rows, k: w.cols, bias: nil)
        }
        return
    }
    if !exactActivations && w.dtype.quantizesActivations && w.pool == nil {
        rk_matmat_rows(Int32(w.dtype.rawValue), y, w.data, x, n, w.row0, w.rows, w.cols)
        return
    }
    if n < decodeMinimum || (!exactActivations && w.dtype.quantizesActivations) {
        for i in 0..<n { matvec(y + i * w.rows, w, x + i * w.cols) }
        return
    }
    // Decode up to 64 KiB of weights at a time (at least 4 rows, never more rows than the matrix has).
    let chunk = min(w.rows, max(4, (16 << 10) / w.cols))
    let buf = UnsafeMutablePointer<Float>.allocate(capacity: chunk * w.cols)
    defer { buf.deallocate() }
    var r0 = 0
    while r0 < w.rows {
        let m = min(chunk, w.rows - r0)
        w.decode(r0, m, into: buf)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(m), Int32(w.cols),
                    1, x, Int32(w.cols), buf, Int32(w.cols), 0, y + r0, Int32(w.rows))
        r0 += m
    }
}

/// All of `w` decoded to f32 (rows × cols), or `w`'s own bytes when it is f32 already.
/// `body` must not keep the pointer.
func withDecoded<T>(_ w: Matrix, _ body: (UnsafePointer<Float>) -> T) -> T {
    if w.dtype == .f32 { return body(w.f32) }
    let buf = UnsafeMutablePointer<Float>.allocate(capacity: max(w.rows * w.cols, 1))
    defer { buf.deallocate() }
    w.decode(0, w.rows, into: buf)
    return body(UnsafePointer(buf))
}

/// The first recurrent layer's input projection of every token: table (V × G) = E (V × In) · Wᵀ + b,
/// computed in f32 from the decoded embedding and kernel whatever their types (no quantization of the
/// embedding rows as activations), by sgemm.
func fillInputTable(_ table: UnsafeMutablePointer<Float>, embedding: Matrix, kernel: Matrix, bias: UnsafePointer<Float>) {
    withDecoded(embedding) { e in
        withDecoded(kernel) { k in
            gemmABt(table, e, k, m: embedding.rows, n: kernel.rows, k: kernel.cols, bias: bias)
        }
    }
}
