/// The matrix-vector products written with Swift's SIMD types, as they were before the C kernels.
/// Not used by the runtime: kept so that `recur bench --kernels` can compare them with CRecurKernels.
/// On the reference machine (AVX2) Swift's codegen was 1.9× slower than the C kernel for f32, 19× for
/// f16, 12× for q4 and over 300× for q8 (the int8 → f32 conversions are scalarized); docs/QUANTIZATION.md
/// has the figures.
public enum SwiftKernels {
    /// y[r] (+)= Σ_c W[r, c] · x[c], f32 weights. Four rows at a time, 16 lanes per row.
    public static func f32(_ y: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
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

    /// y (+)= W·x for f16 weights.
    public static func f16(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool) {
        let cols = w.cols
        let xr = UnsafeRawPointer(x)
        let c16 = cols & ~15
        for r in 0..<w.rows {
            let row = w.data + r * cols * 2
            var acc = SIMD16<Float>()
            var c = 0
            while c < c16 {
                let h = row.loadUnaligned(fromByteOffset: c * 2, as: SIMD16<Float16>.self)
                var f = SIMD16<Float>()
                for k in 0..<16 { f[k] = Float(h[k]) }
                acc += f * xr.loadUnaligned(fromByteOffset: c * 4, as: SIMD16<Float>.self)
                c += 16
            }
            var s = acc.sum()
            let p = row.assumingMemoryBound(to: UInt16.self)
            while c < cols { s += Float(Float16(bitPattern: UInt16(littleEndian: p[c]))) * x[c]; c += 1 }
            if accumulate { y[r] += s } else { y[r] = s }
        }
    }

    /// y (+)= W·x for q8 weights: per block, (Σ q·x) · scale.
    public static func q8(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool) {
        let cols = w.cols
        let nb = (cols + 31) / 32
        let rowBytes = nb * 36
        let full = cols / 32
        let xr = UnsafeRawPointer(x)
        for r in 0..<w.rows {
            let row = w.data + r * rowBytes
            let scales = row
            let q = row + nb * 4
            var s: Float = 0
            for b in 0..<full {
                let qv = SIMD32<Float>(q.loadUnaligned(fromByteOffset: b * 32, as: SIMD32<Int8>.self))
                let xv = xr.loadUnaligned(fromByteOffset: b * 128, as: SIMD32<Float>.self)
                s += (qv * xv).sum() * scales.loadUnaligned(fromByteOffset: b * 4, as: Float.self)
            }
            if full < nb {
                var t: Float = 0
                let qb = q.assumingMemoryBound(to: Int8.self) + full * 32
                for c in (full * 32)..<cols { t += Float(qb[c - full * 32]) * x[c] }
                s += t * scales.loadUnaligned(fromByteOffset: full * 4, as: Float.self)
            }
            if accumulate { y[r] += s } else { y[r] = s }
        }
    }

    /// y (+)= W·x for q4 weights.
    public static func q4(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool) {
        let cols = w.cols
        let nb = (cols + 31) / 32
        let rowBytes = nb * 20
        let full = cols / 32
        let xr = UnsafeRawPointer(x)
        let eight = SIMD16<Int16>(repeating: 8)
        for r in 0..<w.rows {
            let row = w.data + r * rowBytes
            let q = row + nb * 4
            var s: Float = 0
            for b in 0..<full {
                let bytes = q.loadUnaligned(fromByteOffset: b * 16, as: SIMD16<UInt8>.self)
                let lo = SIMD16<Int16>(truncatingIfNeeded: bytes & 0x0F) &- eight
                let hi = SIMD16<Int16>(truncatingIfNeeded: bytes &>> 4) &- eight
                let x0 = xr.loadUnaligned(fromByteOffset: b * 128, as: SIMD16<Float>.self)
                let x1 = xr.loadUnaligned(fromByteOffset: b * 128 + 64, as: SIMD16<Float>.self)
                let t = SIMD16<Float>(lo) * x0 + SIMD16<Float>(hi) * x1
                s += t.sum() * row.loadUnaligned(fromByteOffset: b * 4, as: Float.self)
            }
            if full < nb {
                var t: Float = 0
                let qb = q.assumingMemoryBound(to: UInt8.self) + full * 16
                for c in (full * 32)..<cols {
                    let j = c - full * 32
                    let nib = j < 16 ? (qb[j] & 0x0F) : (qb[j - 16] >> 4)
                    t += Float(Int(nib) - 8) * x[c]
                }
                s += t * row.loadUnaligned(fromByteOffset: full * 4, as: Float.self)
            }
            if accumulate { y[r] += s } else { y[r] = s }
        }
    }

    /// y (+)= W·x for q8r weights, with x quantized per vector as the C kernels do (D = max|x|/64,
    /// xq = round(x/D) ∈ [−64, 64]): y[r] = (D · Σ q·xq) · scale_r, the sum in Int32.
    public static func q8r(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool) {
        let cols = w.cols
        let n = (cols + 31) / 32 * 32
        var amax: Float = 0
        for c in 0..<cols where abs(x[c]) > amax { amax = abs(x[c]) }
        let d = amax / 64, inv: Float = amax > 0 ? 64 / amax : 0
        var xq = [Int8](repeating: 0, count: n)
        for c in 0..<cols { xq[c] = Int8(max(-64, min(64, x[c] * inv)).rounded(.toNearestOrEven)) }
        xq.withUnsafeBytes { xb in
            for r in 0..<w.rows {
                let row = w.data + r * (4 + n)
                var acc = SIMD32<Int32>(repeating: 0)
                for b in 0..<(n / 32) {
                    let qv = SIMD32<Int32>(truncatingIfNeeded: row.loadUnaligned(fromByteOffset: 4 + b * 32, as: SIMD32<Int8>.self))
                    let xv = SIMD32<Int32>(truncatingIfNeeded: xb.loadUnaligned(fromByteOffset: b * 32, as: SIMD32<Int8>.self))
                    acc &+= qv &* xv
                }
                let s = (Float(acc.wrappedSum()) * d) * row.loadUnaligned(as: Float.self)
                if accumulate { y[r] += s } else { y[r] = s }
            }
        }
    }
}
