import CRecurKernels

/// Matrix-vector products: the work of one recurrent step.
///
/// The kernels are C with intrinsics (target CRecurKernels): AVX-512 + VNNI, AVX2 + FMA + F16C, NEON on
/// AArch64, or portable scalar code, chosen once at run time (capped by the environment variable
/// RECUR_KERNELS=scalar|avx2). q8 and q4 weights are multiplied with x quantized on the fly to int8 per
/// block of 32 (d = max|x|/127), with exact integer block sums; q8r weights (one scale per row) with x
/// quantized per vector (D = max|x|/64), one exact integer sum per row: see docs/QUANTIZATION.md.

/// y = W · x  (W: rows × cols, x: cols, y: rows), or y += W · x when `accumulate`.
@inline(__always)
package func matvec(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool = false) {
    if let pool = w.pool {
        rk_pool_matvec(pool, Int32(w.dtype.rawValue), y, w.data, x, w.row0, w.rows, w.cols, accumulate ? 1 : 0)
    } else if let p = w.columns {
        rk_f32_columns_matvec(y, p, w.f32, x, w.rows, w.cols, accumulate ? 1 : 0)
    } else {
        matvec(y, w, x, accumulate: accumulate, level: -1)
    }
}

/// `matvec(y, w, x)` with x already prepared for w's dtype (`rk_prepare_x` into `xq`, as `Model.carriedX`):
/// the same bytes of x and the same kernel, so the same bits. Without `xq`, or for a matrix split across a
/// pool, the plain product.
@inline(__always)
package func matvec(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, prepared xq: UnsafeRawPointer?,
                    accumulate: Bool = false) {
    guard let xq, w.pool == nil else { return matvec(y, w, x, accumulate: accumulate) }
    rk_matvec_prepared(Int32(w.dtype.rawValue), y, w.data, x, xq, w.row0, w.rows, w.cols, accumulate ? 1 : 0)
}

/// The kernel level in use: "scalar", "avx2" or "avx512" (AArch64: "scalar" or "neon").
public var kernelLevelName: String { String(cString: rk_level_name(rk_level())) }
/// The name of kernel level `level` (0 scalar, 1 avx2 or neon, 2 avx512).
public func kernelLevelName(_ level: Int) -> String { String(cString: rk_level_name(Int32(level))) }
/// Whether batched int8 (q8ri) products run on AMX tiles (`rk_amx_usable`): the CPU has AMX-INT8, the OS
/// grants the tiles and RECUR_KERNELS is unset.
public var kernelAMX: Bool { rk_amx_usable() != 0 }
/// The best kernel level this CPU supports (0 scalar, 1 avx2, 2 avx512; AArch64: 0 scalar, 1 neon).
public var kernelDetectedLevel: Int { Int(rk_detected_level()) }

/// `matvec` at an explicit kernel level (0 scalar, 1 AVX2 or NEON, 2 AVX-512; clamped to what the CPU has;
/// −1: the default). For tests and benchmarks.
package func matvec(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool, level: Int) {
    let l = Int32(level < 0 ? Int(rk_level()) : level)
    rk_matvec_rows_at(l, Int32(w.dtype.rawValue), y, w.data, x, w.row0, w.rows, w.cols, accumulate ? 1 : 0)
}

/// Decodes row `r` of `w` into f32 (rk_dequantize).
package func dequantizeRow(_ w: Matrix, _ r: Int, into out: UnsafeMutablePointer<Float>) {
    w.decode(r, 1, into: out)
}
