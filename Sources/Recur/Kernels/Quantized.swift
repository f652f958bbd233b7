/// Kernels for f16 and the blocked 8- and 4-bit types. Layouts (docs/FORMAT.md, "Tensor data"):
///
/// - f16: IEEE binary16 elements, row-major.
/// - q8: each row of `cols` values is split into nb = ⌈cols/32⌉ blocks. A row is stored as nb f32 scales
///   followed by nb·32 int8 values (the last block zero-padded). w[c] = scale[c/32] · q[c].
/// - q4: same blocks; a row is nb f32 scales followed by nb·16 bytes. Byte j of block b holds element
///   b·32 + j in its low nibble and element b·32 + j + 16 in its high nibble. w = scale · (nibble − 8).

/// y (+)= W·x for f16 weights.
public func matvecF16(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool) {
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
public func matvecQ8(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool) {
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
public func matvecQ4(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool) {
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

/// Decodes one row of a q8 or q4 matrix.
public func dequantizeBlockedRow(_ w: Matrix, _ r: Int, into out: UnsafeMutablePointer<Float>) {
    let cols = w.cols
    let nb = (cols + 31) / 32
    let row = w.data + r * w.dtype.rowBytes(cols)!
    let q = row + nb * 4
    for c in 0..<cols {
        let b = c / 32, j = c % 32
        let scale = row.loadUnaligned(fromByteOffset: b * 4, as: Float.self)
        if w.dtype == .q8 {
            out[c] = scale * Float(q.load(fromByteOffset: c, as: Int8.self))
        } else {
            let byte = q.load(fromByteOffset: b * 16 + (j % 16), as: UInt8.self)
            let nib = j < 16 ? (byte & 0x0F) : (byte >> 4)
            out[c] = scale * Float(Int(nib) - 8)
        }
    }
}

/// Encodes a row-major f32 matrix (rows × cols) in `dtype`'s layout.
/// q8: scale = max|w| / 127 per block, q = round(w / scale).
/// q4: scale = max|w| / 7 per block (sign taken from the largest-magnitude value so it maps to ±8 or ±7),
///     q = clamp(round(w / scale) + 8, 0, 15).
public func quantizeMatrix(_ values: [Float], rows: Int, cols: Int, to dtype: DType) -> [UInt8] {
    precondition(values.count == rows * cols)
    let rowBytes = dtype.rowBytes(cols)!
    var out = [UInt8](repeating: 0, count: rows * rowBytes)
    let nb = (cols + 31) / 32
    out.withUnsafeMutableBytes { o in
        for r in 0..<rows {
            let base = r * rowBytes
            switch dtype {
            case .f32:
                for c in 0..<cols { o.storeBytes(of: values[r * cols + c].bitPattern.littleEndian, toByteOffset: base + c * 4, as: UInt32.self) }
            case .f16:
                for c in 0..<cols { o.storeBytes(of: Float16(values[r * cols + c]).bitPattern.littleEndian, toByteOffset: base + c * 2, as: UInt16.self) }
            case .q8:
                for b in 0..<nb {
                    let lo = r * cols + b * 32, hi = min(r * cols + (b + 1) * 32, (r + 1) * cols)
                    var amax: Float = 0
                    for i in lo..<hi { amax = max(amax, abs(values[i])) }
                    let scale = amax / 127
                    let inv = scale > 0 ? 1 / scale : 0
                    o.storeBytes(of: scale.bitPattern.littleEndian, toByteOffset: base + b * 4, as: UInt32.self)
                    for i in lo..<hi {
                        let q = Int8(max(-127, min(127, (values[i] * inv).rounded())))
                        o.storeBytes(of: q, toByteOffset: base + nb * 4 + (i - r * cols), as: Int8.self)
                    }
                }
            case .q4:
                for b in 0..<nb {
                    let lo = r * cols + b * 32, hi = min(r * cols + (b + 1) * 32, (r + 1) * cols)
                    var amax: Float = 0, signed: Float = 0
                    for i in lo..<hi where abs(values[i]) > amax { amax = abs(values[i]); signed = values[i] }
                    let scale = signed / -8
                    let inv = scale != 0 ? 1 / scale : 0
                    o.storeBytes(of: scale.bitPattern.littleEndian, toByteOffset: base + b * 4, as: UInt32.self)
                    for i in lo..<hi {
                        let j = i - lo
                        let q = UInt8(max(0, min(15, (values[i] * inv).rounded() + 8)))
                        let at = base + nb * 4 + b * 16 + (j % 16)
                        let old = o.load(fromByteOffset: at, as: UInt8.self)
                        o.storeBytes(of: j < 16 ? (old & 0xF0) | q : (old & 0x0F) | (q << 4), toByteOffset: at, as: UInt8.self)
                    }
                    // Padding elements of a partial block encode 0 (nibble 8).
                    for j in (hi - lo)..<32 {
                        let at = base + nb * 4 + b * 16 + (j % 16)
                        let old = o.load(fromByteOffset: at, as: UInt8.self)
                        o.storeBytes(of: j < 16 ? (old & 0xF0) | 8 : (old & 0x0F) | (8 << 4), toByteOffset: at, as: UInt8.self)
                    }
                }
            }
        }
    }
    return out
}
