import CRecurKernels

/// Matrix-vector products: the work of one recurrent step.
///
/// The kernels are C with intrinsics (target CRecurKernels): AVX-512 + VNNI, AVX2 + FMA + F16C, or
/// portable scalar code, chosen once at run time from cpuid (capped by the environment variable
/// RECUR_KERNELS=scalar|avx2). q8 and q4 weights are multiplied with x quantized on the fly to int8 per
/// block of 32 (d = max|x|/127), with exact integer block sums; q8r weights (one scale per row) with x
/// quantized per vector (D = max|x|/64), one exact integer sum per row: see docs/QUANTIZATION.md.

/// y = W · x  (W: rows × cols, x: cols, y: rows), or y += W · x when `accumulate`.
@inline(__always)
package func matvec(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool = false) {
    if let pool = w.pool {
        rk_pool_matvec(pool, Int32(w.dtype.rawValue), y, w.data, x, w.rows, w.cols, accumulate ? 1 : 0)
    } else {
        matvec(y, w, x, accumulate: accumulate, level: -1)
    }
}

/// The kernel level in use: "scalar", "avx2" or "avx512".
public var kernelLevelName: String { String(cString: rk_level_name(rk_level())) }
/// The best kernel level this CPU supports (0 scalar, 1 avx2, 2 avx512).
public var kernelDetectedLevel: Int { Int(rk_detected_level()) }

/// `matvec` at an explicit kernel level (0 scalar, 1 AVX2, 2 AVX-512; clamped to what the CPU has;
/// −1: the default). For tests and benchmarks.
package func matvec(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool, level: Int) {
    let a: Int32 = accumulate ? 1 : 0
    let l = Int32(level < 0 ? Int(rk_level()) : level)
    switch w.dtype {
    case .f32: rk_matvec_f32_at(l, y, w.f32, x, w.rows, w.cols, a)
    case .f16: rk_matvec_f16_at(l, y, w.data.assumingMemoryBound(to: UInt16.self), x, w.rows, w.cols, a)
    case .q8: rk_matvec_q8_at(l, y, w.data, x, w.rows, w.cols, a)
    case .q4: rk_matvec_q4_at(l, y, w.data, x, w.rows, w.cols, a)
    case .q8r: rk_matvec_q8r_at(l, y, w.data, x, w.rows, w.cols, a)
    }
}

/// Plain reference: y[r] (+)= Σ_c W[r, c] · x[c], one multiply-add at a time, in dtype-independent form
/// (each weight is first decoded to f32 by `dequantizeRow`). Tests compare every kernel with this.
package func matvecReference(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool = false) {
    var row = [Float](repeating: 0, count: w.cols)
    for r in 0..<w.rows {
        row.withUnsafeMutableBufferPointer { dequantizeRow(w, r, into: $0.baseAddress!) }
        var s: Double = 0
        for c in 0..<w.cols { s += Double(row[c]) * Double(x[c]) }
        y[r] = accumulate ? y[r] + Float(s) : Float(s)
    }
}

/// Decodes row `r` of `w` into f32.
package func dequantizeRow(_ w: Matrix, _ r: Int, into out: UnsafeMutablePointer<Float>) {
    switch w.dtype {
    case .f32:
        out.update(from: w.f32 + r * w.cols, count: w.cols)
    case .f16:
        let p = w.data.assumingMemoryBound(to: UInt16.self) + r * w.cols
        for c in 0..<w.cols { out[c] = Float(Float16(bitPattern: UInt16(littleEndian: p[c]))) }
    case .q8, .q4:
        dequantizeBlockedRow(w, r, into: out)
    case .q8r:
        let row = w.data + r * w.dtype.rowBytes(w.cols)!
        let scale = row.loadUnaligned(as: Float.self)
        for c in 0..<w.cols { out[c] = scale * Float(row.load(fromByteOffset: 4 + c, as: Int8.self)) }
    }
}
