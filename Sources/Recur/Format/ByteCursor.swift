/// A bounds-checked little-endian reader over a byte range. Every read checks the remaining length first
/// and throws a `.format` error naming `context` instead of reading past the end.
struct ByteCursor {
    let base: UnsafeRawPointer
    let end: Int
    var position: Int
    let context: String

    init(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, context: String) {
        self.base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 0x40)!
        self.position = start
        self.end = end
        self.context = context
    }

    var remaining: Int { end - position }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        if n < 0 || n > remaining {
            throw RecurError(.format, "\(context): truncated while reading \(what()) at byte \(position) (needs \(n) bytes, \(max(remaining, 0)) left)")
        }
    }

    mutating func u8(_ what: @autoclosure () -> String) throws -> UInt8 {
        try need(1, what())
        defer { position += 1 }
        return base.load(fromByteOffset: position, as: UInt8.self)
    }

    mutating func u16(_ what: @autoclosure () -> String) throws -> UInt16 {
        try need(2, what())
        defer { position += 2 }
        return UInt16(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt16.self))
    }

    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 {
        try need(4, what())
        defer { position += 4 }
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 {
        try need(8, what())
        defer { position += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    mutating func i64(_ what: @autoclosure () -> String) throws -> Int64 { Int64(bitPattern: try u64(what())) }

    mutating func f64(_ what: @autoclosure () -> String) throws -> Double { Double(bitPattern: try u64(what())) }

    /// Reads `count` bytes as UTF-8, rejecting invalid sequences.
    mutating func utf8(count: Int, _ what: @autoclosure () -> String) throws -> String {
        try need(count, what())
        let buf = UnsafeRawBufferPointer(start: base + position, count: count)
        guard let s = String(validating: buf.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw RecurError(.format, "\(context): \(what()) at byte \(position) is not valid UTF-8")
        }
        position += count
        return s
    }
}

/// A little-endian byte writer.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func raw(_ s: String) { bytes.append(contentsOf: Array(s.utf8)) }
    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
    mutating func patchU32(at offset: Int, _ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { for i in 0..<4 { bytes[offset + i] = $0[i] } }
    }
    mutating func patchU64(at offset: Int, _ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { for i in 0..<8 { bytes[offset + i] = $0[i] } }
    }
}
