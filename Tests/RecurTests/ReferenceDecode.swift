@testable import Recur

/// Independent Swift decoding of each dtype's rows (docs/FORMAT.md §7), for the references the kernels
/// and the encoders are tested against: it shares no code with the C kernels or `rk_dequantize`.
func referenceDecodeRow(_ w: Matrix, _ r: Int, into out: UnsafeMutablePointer<Float>) {
    let cols = w.cols
    if w.dtype == .q8ri {
        // Groups of 16 rows: 16 f32 scales, 16 int32 row sums, then 64-byte chunks of 4 columns × 16 rows.
        let n = (cols + 31) / 32 * 32, row = w.row0 + r, i = row % 16
        let group = w.data + (row / 16) * (128 + 16 * n)
        let scale = group.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
        for c in 0..<cols {
            out[c] = scale * Float(group.load(fromByteOffset: 128 + 64 * (c / 4) + 4 * i + c % 4, as: Int8.self))
        }
        return
    }
    if w.dtype == .q4i {
        // Groups of 16 rows; per block of 32 columns 16 f32 scales, then 4 vectors of 64 bytes whose byte
        // 4i + j holds row i's columns 8m + j (low nibble) and 8m + 4 + j (high nibble) of the block.
        let nb = (cols + 31) / 32, row = w.row0 + r, i = row % 16
        for c in 0..<cols {
            let block = w.data + (row / 16) * 320 * nb + 320 * (c / 32)
            let j = c % 32
            let scale = block.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
            let byte = block.load(fromByteOffset: 64 + 64 * (j / 8) + 4 * i + j % 4, as: UInt8.self)
            out[c] = scale * Float(Int((j % 8) < 4 ? byte & 0x0F : byte >> 4) - 8)
        }
        return
    }
    let row = w.data + r * w.dtype.rowBytes(cols)!
    switch w.dtype {
    case .f32:
        for c in 0..<cols { out[c] = row.loadUnaligned(fromByteOffset: 4 * c, as: Float.self) }
    case .f16:
        for c in 0..<cols { out[c] = Float(Float16(bitPattern: UInt16(littleEndian: row.loadUnaligned(fromByteOffset: 2 * c, as: UInt16.self)))) }
    case .q8, .q4:
        let nb = (cols + 31) / 32
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
    case .q8r:
        let scale = row.loadUnaligned(as: Float.self)
        for c in 0..<cols { out[c] = scale * Float(row.load(fromByteOffset: 4 + c, as: Int8.self)) }
    case .q8ri, .q4i:
        break   // above
    }
}

/// Plain reference: y[r] (+)= Σ_c W[r, c] · x[c], one multiply-add at a time in Double, each weight first
/// decoded by `referenceDecodeRow`. Tests compare every kernel with this.
func matvecReference(_ y: UnsafeMutablePointer<Float>, _ w: Matrix, _ x: UnsafePointer<Float>, accumulate: Bool = false) {
    var row = [Float](repeating: 0, count: w.cols)
    for r in 0..<w.rows {
        row.withUnsafeMutableBufferPointer { referenceDecodeRow(w, r, into: $0.baseAddress!) }
        var s: Double = 0
        for c in 0..<w.cols { s += Double(row[c]) * Double(x[c]) }
        y[r] = accumulate ? y[r] + Float(s) : Float(s)
    }
}
