/// Kernels for f16 and the blocked 8- and 4-bit types. Layouts (docs/FORMAT.md, "Tensor data"):
///
/// - f16: IEEE binary16 elements, row-major.
/// - q8: each row of `cols` values is split into nb = ⌈cols/32⌉ blocks. A row is stored as nb f32 scales
///   followed by nb·32 int8 values (the last block zero-padded). w[c] = scale[c/32] · q[c].
/// - q4: same blocks; a row is nb f32 scales followed by nb·16 bytes. Byte j of block b holds element
///   b·32 + j in its low nibble and element b·32 + j + 16 in its high nibble. w = scale · (nibble − 8).
/// - q8r: a row is one f32 scale followed by nb·32 int8 values (zero-padded). w[c] = scale · q[c].
/// - q8ri: q8r's scales and codes, rows interleaved in groups of 16 (recur_kernels.h): per group 16 scales,
///   16 int32 row sums of the codes, then chunks of 64 bytes holding 4 columns of the 16 rows.
/// - q4i: q4's scales and nibbles, rows interleaved in groups of 16: per group and block, 16 scales, then 4
///   vectors of 64 bytes, byte 4i + j of vector m holding row i's columns 8m + j (low nibble) and 8m + 4 + j
///   (high nibble) of the block.

/// Encodes a row-major f32 matrix (rows × cols) in `dtype`'s layout.
/// q8: scale = max|w| / 127 per block, q = round(w / scale).
/// q8r: scale = max|w| / 127 per row, q = round(w / scale).
/// q4: scale = max|w| / 7 per block (sign taken from the largest-magnitude value so it maps to ±8 or ±7),
///     q = clamp(round(w / scale) + 8, 0, 15).
package func quantizeMatrix(_ values: [Float], rows: Int, cols: Int, to dtype: DType) -> [UInt8] {
    precondition(values.count == rows * cols)
    if dtype == .q8ri { return interleaveRows(quantizeMatrix(values, rows: rows, cols: cols, to: .q8r), rows: rows, cols: cols) }
    if dtype == .q4i { return interleaveNibbles(quantizeMatrix(values, rows: rows, cols: cols, to: .q4), rows: rows, cols: cols) }
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
            case .q8r:
                var amax: Float = 0
                for c in 0..<cols { amax = max(amax, abs(values[r * cols + c])) }
                let scale = amax / 127
                let inv = scale > 0 ? 1 / scale : 0
                o.storeBytes(of: scale.bitPattern.littleEndian, toByteOffset: base, as: UInt32.self)
                for c in 0..<cols {
                    let q = Int8(max(-127, min(127, (values[r * cols + c] * inv).rounded())))
                    o.storeBytes(of: q, toByteOffset: base + 4 + c, as: Int8.self)
                }
            case .q8ri, .q4i:
                break   // interleaved from q8r and q4 above
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

/// q8r rows (scale, then 32·nb codes) → q8ri groups of 16 rows: scales, row sums, then for each 4 columns
/// the 16 rows' 4 codes (the last group padded with zero rows).
func interleaveRows(_ q8r: [UInt8], rows: Int, cols: Int) -> [UInt8] {
    let n = (cols + 31) / 32 * 32, rb = 4 + n, gb = 128 + 16 * n
    var out = [UInt8](repeating: 0, count: (rows + 15) / 16 * gb)
    for r in 0..<rows {
        let g = (r / 16) * gb, i = r % 16
        for k in 0..<4 { out[g + 4 * i + k] = q8r[r * rb + k] }
        var sum: Int32 = 0
        for c in 0..<n {
            let v = q8r[r * rb + 4 + c]
            sum += Int32(Int8(bitPattern: v))
            out[g + 128 + (c / 4) * 64 + 4 * i + c % 4] = v
        }
        withUnsafeBytes(of: sum.littleEndian) { for k in 0..<4 { out[g + 64 + 4 * i + k] = $0[k] } }
    }
    return out
}

/// q4 rows (nb scales, then nb·16 packed bytes) → q4i groups of 16 rows (padding rows: scale 0, nibble 8).
func interleaveNibbles(_ q4: [UInt8], rows: Int, cols: Int) -> [UInt8] {
    let nb = (cols + 31) / 32, rb = 20 * nb, groups = (rows + 15) / 16
    var out = [UInt8](repeating: 0x88, count: groups * 320 * nb)
    for g in 0..<groups {
        for b in 0..<nb {
            let block = (g * nb + b) * 320
            for k in 0..<64 { out[block + k] = 0 }   // scales; padding rows keep 0
            for i in 0..<16 where 16 * g + i < rows {
                let r = 16 * g + i
                for k in 0..<4 { out[block + 4 * i + k] = q4[r * rb + 4 * b + k] }
                for j in 0..<32 {
                    let byte = q4[r * rb + 4 * nb + 16 * b + (j % 16)]
                    let nib = j < 16 ? byte & 0x0F : byte >> 4
                    let at = block + 64 + 64 * (j / 8) + 4 * i + j % 4
                    out[at] = (j % 8) < 4 ? (out[at] & 0xF0) | nib : (out[at] & 0x0F) | (nib << 4)
                }
            }
        }
    }
    return out
}
