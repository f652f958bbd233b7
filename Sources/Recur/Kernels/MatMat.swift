import COpenBLAS
import CRecurKernels

/// Matrix-matrix products: several vectors against one weight matrix (the batched step, the prefill).
///
/// The batched step (`exactActivations` false) gives every vector the bits its own matrix-vector product
/// gives, in every dtype and at every kernel level: quantized weights go to `rk_matmat_rows`, which quantizes
/// each x as a step does and reads q8ri weights once per batch on AMX tiles, per 8 vectors (AVX-512) or 4 (AVX2); f32
/// weights at AVX-512 once per 8 vectors (`rk_f32_batch_avx512`, each (row, vector) summed as the single kernel
/// sums it), and f16, or f32 at the other levels, vector by vector by the single kernel — not by sgemm or
/// `rk_matmat_f32`, which sum in another order and are only close to it. f32 matrices with a copy in column
/// blocks (`ColumnBlocks`: few columns, so small weights and a product dominated by the row kernels'
/// horizontal sums) take their column kernel vector by vector. A matrix split across the worker pool is multiplied
/// vector by vector, each product on the pool, as a step multiplies it.
///
/// With `exactActivations` (the prefill's input projections) the products may sum in another order:
/// f32 by sgemm, f16/q8/q4/q8r/q8ri decoded to f32 in chunks and multiplied by sgemm (from
/// `decodeMinimum` vectors up). More accurate and, for many vectors, faster, but not what a step computes.

/// `matmat(y, w, x, count: n)` for vectors already quantized for w's dtype (`rk_prepare_x`; `xq[k]` is vector
/// k's copy), w unpooled and of a dtype that quantizes x (`Model.carriedX`): the same bits.
package func matmat(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, prepared xq: UnsafePointer<UnsafeRawPointer?>, count n: Int) {
    rk_matmat_prepared(Int32(w.dtype.rawValue), y, w.data, xq, n, w.row0, w.rows, w.cols)
}

/// Below this many vectors, decoded products are not worth it: vector by vector.
let decodeMinimum = 4

/// Y (n × rows) = X (n × cols) · Wᵀ: Y[i] = W · X[i] for each of n vectors, all row-major.
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
    if !exactActivations {
        // Bit for bit each vector's single product.
        if w.pool == nil && w.columns == nil {
            rk_matmat_rows(Int32(w.dtype.rawValue), y, w.data, x, n, w.row0, w.rows, w.cols)
        } else {
            for i in 0..<n { matvec(y + i * w.rows, w, x + i * w.cols) }
        }
        return
    }
    if w.dtype == .f32 {
        gemmABt(y, x, w.f32, m: n, n: w.rows, k: w.cols, bias: nil)
        return
    }
    if n < decodeMinimum {
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
