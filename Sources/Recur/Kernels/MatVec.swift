/// Matrix-vector products: the work of one recurrent step.

/// y = W · x  (W: rows × cols, x: cols, y: rows), or y += W · x when `accumulate`.
@inline(__always)
public func matvec(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool = false) {
    switch w.dtype {
    case .f32: matvecF32(y, w.f32, x, rows: w.rows, cols: w.cols, accumulate: accumulate)
    case .f16: matvecF16(y, w, x, accumulate: accumulate)
    case .q8: matvecQ8(y, w, x, accumulate: accumulate)
    case .q4: matvecQ4(y, w, x, accumulate: accumulate)
    }
}

/// y[r] (+)= Σ_c W[r, c] · x[c], f32 weights. Four rows at a time, 16 lanes per row.
public func matvecF32(_ y: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                      rows: Int, cols: Int, accumulate: Bool) {
    let raw = UnsafeRawPointer(w)
    let xr = UnsafeRawPointer(x)
    let c16 = cols & ~15
    var r = 0
    while r + 4 <= rows {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        let o0 = r * cols * 4, o1 = o0 + cols * 4, o2 = o1 + cols * 4, o3 = o2 + cols * 4
        var c = 0
        while c < c16 {
            let xv = xr.loadUnaligned(fromByteOffset: c * 4, as: SIMD16<Float>.self)
            a0 += raw.loadUnaligned(fromByteOffset: o0 + c * 4, as: SIMD16<Float>.self) * xv
            a1 += raw.loadUnaligned(fromByteOffset: o1 + c * 4, as: SIMD16<Float>.self) * xv
            a2 += raw.loadUnaligned(fromByteOffset: o2 + c * 4, as: SIMD16<Float>.self) * xv
            a3 += raw.loadUnaligned(fromByteOffset: o3 + c * 4, as: SIMD16<Float>.self) * xv
            c += 16
        }
        var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
        while c < cols {
            let xv = x[c]
            s0 += w[r * cols + c] * xv
            s1 += w[(r + 1) * cols + c] * xv
            s2 += w[(r + 2) * cols + c] * xv
            s3 += w[(r + 3) * cols + c] * xv
            c += 1
        }
        if accumulate {
            y[r] += s0; y[r + 1] += s1; y[r + 2] += s2; y[r + 3] += s3
        } else {
            y[r] = s0; y[r + 1] = s1; y[r + 2] = s2; y[r + 3] = s3
        }
        r += 4
    }
    while r < rows {
        var a = SIMD16<Float>()
        let o = r * cols * 4
        var c = 0
        while c < c16 {
            a += raw.loadUnaligned(fromByteOffset: o + c * 4, as: SIMD16<Float>.self)
                * xr.loadUnaligned(fromByteOffset: c * 4, as: SIMD16<Float>.self)
            c += 16
        }
        var s = a.sum()
        while c < cols { s += w[r * cols + c] * x[c]; c += 1 }
        if accumulate { y[r] += s } else { y[r] = s }
        r += 1
    }
}

/// Plain reference: y[r] (+)= Σ_c W[r, c] · x[c], one multiply-add at a time, in dtype-independent form
/// (each weight is first decoded to f32 by `dequantizeRow`). Tests compare every kernel with this.
public func matvecReference(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool = false) {
    var row = [Float](repeating: 0, count: w.cols)
    for r in 0..<w.rows {
        row.withUnsafeMutableBufferPointer { dequantizeRow(w, r, into: $0.baseAddress!) }
        var s: Double = 0
        for c in 0..<w.cols { s += Double(row[c]) * Double(x[c]) }
        y[r] = accumulate ? y[r] + Float(s) : Float(s)
    }
}

/// Decodes row `r` of `w` into f32.
public func dequantizeRow(_ w: Matrix, _ r: Int, into out: UnsafeMutablePointer<Float>) {
    switch w.dtype {
    case .f32:
        out.update(from: w.f32 + r * w.cols, count: w.cols)
    case .f16:
        let p = w.data.assumingMemoryBound(to: UInt16.self) + r * w.cols
        for c in 0..<w.cols { out[c] = Float(Float16(bitPattern: UInt16(littleEndian: p[c]))) }
    case .q8, .q4:
        dequantizeBlockedRow(w, r, into: out)
    }
}
