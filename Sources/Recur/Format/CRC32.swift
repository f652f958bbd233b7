import CLibDeflate

/// CRC-32/ISO-HDLC (the zlib, PNG and gzip CRC: reflected polynomial 0xEDB88320, initial value and final
/// xor 0xFFFFFFFF), computed by libdeflate (`libdeflate_crc32`, carry-less multiplication where the CPU
/// has it). Python's `zlib.crc32` gives the same value.
public struct CRC32: Sendable {
    /// The CRC of the bytes so far (finalized: libdeflate takes it back as the continuation value).
    private var crc: UInt32 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        crc = libdeflate_crc32(crc, base, bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public var value: UInt32 { crc }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = CRC32()
        c.update(bytes)
        return c.value
    }
}
