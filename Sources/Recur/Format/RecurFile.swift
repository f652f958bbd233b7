/// A parsed `.recur` file: its header fields, typed metadata and tensor directory, over storage that stays
/// alive as long as this value does. Parsing validates every count, offset, length and shape before use
/// (see `docs/FORMAT.md`, "Validation"); a malformed file yields a `RecurError`, never a crash.
public struct RecurFile: @unchecked Sendable {
    public let storage: FileStorage
    public let versionMajor: UInt16
    public let versionMinor: UInt16
    public let checksum: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: MetaValue)]
    public let tensors: [TensorInfo]
    /// Absolute byte offset of the data section.
    public let dataOffset: Int

    private let metaIndex: [String: Int]
    private let tensorIndex: [String: Int]

    public struct Options: Sendable {
        /// Verify the CRC-32 over the whole file (one pass over the bytes). Turn off only for files that
        /// come from a trusted source and were verified before: structure and bounds are checked either way.
        public var verifyChecksum: Bool = true
        /// Map the file (true) or read it into private memory (false); see `FileStorage`.
        public var mapFile: Bool = true
        public init(verifyChecksum: Bool = true, mapFile: Bool = true) {
            self.verifyChecksum = verifyChecksum
            self.mapFile = mapFile
        }
    }

    public static func open(path: String, options: Options = Options()) throws -> RecurFile {
        var timings = LoadTimings()
        return try open(path: path, options: options, timings: &timings)
    }

    /// `open(path:options:)`, recording the time of the open, the parse and the checksum in `timings`.
    public static func open(path: String, options: Options = Options(), timings: inout LoadTimings) throws -> RecurFile {
        let t0 = LoadTimings.now()
        let storage = options.mapFile ? try FileStorage(mapping: path) : try FileStorage(reading: path)
        timings.open = LoadTimings.now() - t0
        return try RecurFile(storage: storage, options: options, name: path, timings: &timings)
    }

    /// Reads the header, verifies the checksum, then the metadata and the tensor directory (FORMAT.md §3–§5, §8).
    public init(storage: FileStorage, options: Options = Options(), name: String = "buffer") throws {
        var timings = LoadTimings()
        try self.init(storage: storage, options: options, name: name, timings: &timings)
    }

    init(storage: FileStorage, options: Options, name: String, timings: inout LoadTimings) throws {
        self.storage = storage
        let b = storage.bytes
        let t0 = LoadTimings.now()
        let h = try Header(b, name: name)
        let t1 = LoadTimings.now()
        if options.verifyChecksum { try Self.verifyChecksum(b, stored: h.checksum, name: name) }
        let t2 = LoadTimings.now()
        (metadata, metaIndex) = try Self.readMetadata(b, h, name: name)
        (tensors, tensorIndex) = try Self.readDirectory(b, h, name: name)
        timings.checksum = options.verifyChecksum ? t2 - t1 : 0
        timings.parse = (t1 - t0) + (LoadTimings.now() - t2)
        versionMajor = h.major
        versionMinor = h.minor
        checksum = h.checksum
        dataOffset = h.dataOffset
    }

    /// The fixed header (FORMAT.md §3), its fields checked against each other and the file's size.
    struct Header {
        let major: UInt16, minor: UInt16
        let metaCount: Int, tensorCount: Int
        let metaOffset: Int, dirOffset: Int, dataOffset: Int, fileSize: Int
        let checksum: UInt32

        init(_ b: UnsafeRawBufferPointer, name: String) throws {
            let size = b.count
            var h = ByteCursor(b, from: 0, to: size, context: name)
            if size < RecurFormat.headerSize {
                // Distinguish "not our file" from "our file, truncated".
                let k = min(size, 8)
                if Array(b[0..<k]) != Array(RecurFormat.magic[0..<k]) {
                    throw RecurError(.format, "\(name): not a .recur file (bad magic)")
                }
                throw RecurError(.format, "\(name): truncated: \(size) bytes, smaller than the \(RecurFormat.headerSize)-byte header")
            }
            if Array(b[0..<8]) != RecurFormat.magic {
                throw RecurError(.format, "\(name): not a .recur file (bad magic)")
            }
            h.position = 8
            major = try h.u16("version_major")
            minor = try h.u16("version_minor")
            if !RecurFormat.readableMajors.contains(major) {
                throw RecurError(.unsupportedVersion, "\(name): format version \(major).\(minor) is not supported; \(RecurFormat.versionsText)")
            }
            let flags = try h.u32("flags")
            let fileSize = try h.u64("file_size")
            let metaCount = try h.u32("metadata_count")
            let tensorCount = try h.u32("tensor_count")
            let metaOffset = try h.u64("metadata_offset")
            let dirOffset = try h.u64("tensors_offset")
            let dataOffset = try h.u64("data_offset")
            checksum = try h.u32("checksum")
            let reserved = try h.u32("reserved")

            if flags != 0 || reserved != 0 {
                throw RecurError(.format, "\(name): reserved header fields are not zero (flags \(flags), reserved \(reserved))")
            }
            if fileSize != UInt64(size) {
                if fileSize > UInt64(size) {
                    throw RecurError(.format, "\(name): truncated: header says \(fileSize) bytes, file has \(size)")
                }
                throw RecurError(.format, "\(name): header says \(fileSize) bytes, file has \(size) (trailing bytes)")
            }
            guard metaOffset == UInt64(RecurFormat.headerSize), metaOffset <= dirOffset, dirOffset <= dataOffset,
                  dataOffset <= fileSize
            else {
                throw RecurError(.format, "\(name): section offsets out of order or past the end (metadata \(metaOffset), tensors \(dirOffset), data \(dataOffset), file \(fileSize))")
            }
            if dataOffset % UInt64(RecurFormat.alignment) != 0 {
                throw RecurError(.format, "\(name): data section offset \(dataOffset) is not a multiple of \(RecurFormat.alignment)")
            }
            if Int(metaCount) > RecurFormat.maxMetadataCount {
                throw RecurError(.format, "\(name): metadata count \(metaCount) exceeds the cap of \(RecurFormat.maxMetadataCount)")
            }
            if Int(tensorCount) > RecurFormat.maxTensorCount {
                throw RecurError(.format, "\(name): tensor count \(tensorCount) exceeds the cap of \(RecurFormat.maxTensorCount)")
            }
            // Every offset is at most the file's size, which fits in Int.
            self.fileSize = size
            self.metaCount = Int(metaCount); self.tensorCount = Int(tensorCount)
            self.metaOffset = Int(metaOffset); self.dirOffset = Int(dirOffset); self.dataOffset = Int(dataOffset)
        }
    }

    /// The CRC-32 of the whole file with its checksum field read as zero.
    static func verifyChecksum(_ b: UnsafeRawBufferPointer, stored: UInt32, name: String) throws {
        var crc = CRC32()
        crc.update(UnsafeRawBufferPointer(rebasing: b[0..<RecurFormat.checksumOffset]))
        crc.update([0, 0, 0, 0])
        crc.update(UnsafeRawBufferPointer(rebasing: b[(RecurFormat.checksumOffset + 4)..<b.count]))
        if crc.value != stored {
            throw RecurError(.checksum, "\(name): checksum mismatch (stored \(hex(stored)), computed \(hex(crc.value))): the file is corrupt")
        }
    }

    /// The metadata section (FORMAT.md §4): entries in file order and an index by key.
    static func readMetadata(_ b: UnsafeRawBufferPointer, _ h: Header, name: String) throws
        -> ([(key: String, value: MetaValue)], [String: Int]) {
        var m = ByteCursor(b, from: h.metaOffset, to: h.dirOffset, context: name + " metadata")
        var metadata: [(key: String, value: MetaValue)] = []
        var metaIndex: [String: Int] = [:]
        // Each entry takes at least 2 (key length) + 1 (type) + 1 bytes.
        if h.metaCount * 4 > m.remaining {
            throw RecurError(.format, "\(name): metadata count \(h.metaCount) cannot fit in \(m.remaining) bytes")
        }
        metadata.reserveCapacity(h.metaCount)
        for i in 0..<h.metaCount {
            let keyLen = Int(try m.u16("key length of entry \(i)"))
            if keyLen == 0 || keyLen > RecurFormat.maxKeyBytes {
                throw RecurError(.format, "\(name): metadata entry \(i) has key length \(keyLen) (must be 1...\(RecurFormat.maxKeyBytes))")
            }
            let key = try m.utf8(count: keyLen, "key of entry \(i)")
            let type = try m.u8("type of '\(key)'")
            let value = try Self.readValue(&m, type: type, key: key, name: name)
            if metaIndex[key] != nil {
                throw RecurError(.format, "\(name): duplicate metadata key '\(key)'")
            }
            metaIndex[key] = metadata.count
            metadata.append((key, value))
        }
        if m.remaining != 0 {
            throw RecurError(.format, "\(name): \(m.remaining) unexpected bytes after the metadata")
        }
        return (metadata, metaIndex)
    }

    /// The tensor directory (FORMAT.md §5): entries in file order and an index by name; then 0–63 zero
    /// bytes of padding bring the data section to a multiple of 64.
    static func readDirectory(_ b: UnsafeRawBufferPointer, _ h: Header, name: String) throws -> ([TensorInfo], [String: Int]) {
        var d = ByteCursor(b, from: h.dirOffset, to: h.dataOffset, context: name + " tensor directory")
        var tensors: [TensorInfo] = []
        var tensorIndex: [String: Int] = [:]
        if h.tensorCount * 24 > d.remaining {
            throw RecurError(.format, "\(name): tensor count \(h.tensorCount) cannot fit in \(d.remaining) bytes")
        }
        tensors.reserveCapacity(h.tensorCount)
        for i in 0..<h.tensorCount {
            let t = try readTensor(&d, i, h, name: name)
            if tensorIndex[t.name] != nil {
                throw RecurError(.format, "\(name): duplicate tensor name '\(t.name)'")
            }
            tensorIndex[t.name] = tensors.count
            tensors.append(t)
        }
        if d.remaining >= RecurFormat.alignment || b[d.position..<d.end].contains(where: { $0 != 0 }) {
            throw RecurError(.format, "\(name): \(d.remaining) unexpected bytes after the tensor directory")
        }
        return (tensors, tensorIndex)
    }

    /// One directory entry, its dtype, shape, length and place in the data section checked.
    static func readTensor(_ d: inout ByteCursor, _ i: Int, _ h: Header, name: String) throws -> TensorInfo {
        let dataSize = h.fileSize - h.dataOffset
        let nameLen = Int(try d.u16("name length of tensor \(i)"))
        if nameLen == 0 || nameLen > RecurFormat.maxKeyBytes {
            throw RecurError(.format, "\(name): tensor \(i) has name length \(nameLen) (must be 1...\(RecurFormat.maxKeyBytes))")
        }
        let tname = try d.utf8(count: nameLen, "name of tensor \(i)")
        let code = try d.u8("dtype of '\(tname)'")
        guard let dtype = DType(rawValue: code) else {
            throw RecurError(.format, "\(name): tensor '\(tname)' has unknown dtype code \(code)")
        }
        if h.major < dtype.formatMajor {
            throw RecurError(.format, "\(name): tensor '\(tname)' has dtype \(dtype.name) (code \(code)), which needs format version \(dtype.formatMajor); the file says \(h.major).\(h.minor)")
        }
        let rank = Int(try d.u8("rank of '\(tname)'"))
        let pad = try d.u16("reserved field of '\(tname)'")
        if rank < 1 || rank > RecurFormat.maxRank {
            throw RecurError(.format, "\(name): tensor '\(tname)' has rank \(rank) (must be 1...\(RecurFormat.maxRank))")
        }
        if pad != 0 {
            throw RecurError(.format, "\(name): tensor '\(tname)' has a non-zero reserved field")
        }
        var shape: [Int] = []
        for k in 0..<rank {
            let dim = try d.u64("dimension \(k) of '\(tname)'")
            if dim == 0 || dim > UInt64(RecurFormat.maxDimension) {
                throw RecurError(.format, "\(name): tensor '\(tname)' dimension \(k) is \(dim) (must be 1...\(RecurFormat.maxDimension))")
            }
            shape.append(Int(dim))
        }
        let off = try d.u64("offset of '\(tname)'")
        let len = try d.u64("byte length of '\(tname)'")
        guard let expected = dtype.byteCount(shape: shape) else {
            throw RecurError(.format, "\(name): tensor '\(tname)' shape \(shape) overflows its byte size")
        }
        if len != UInt64(expected) {
            throw RecurError(.format, "\(name): tensor '\(tname)' has byte length \(len), but \(dtype.name) \(shape) needs \(expected)")
        }
        if off % UInt64(RecurFormat.alignment) != 0 {
            throw RecurError(.format, "\(name): tensor '\(tname)' offset \(off) is not a multiple of \(RecurFormat.alignment)")
        }
        if off > UInt64(dataSize) || len > UInt64(dataSize) - off {
            throw RecurError(.format, "\(name): tensor '\(tname)' (offset \(off), \(len) bytes) extends past the end of the data section (\(dataSize) bytes)")
        }
        return TensorInfo(name: tname, dtype: dtype, shape: shape, offset: Int(off), byteLength: Int(len))
    }

    private static func readValue(_ m: inout ByteCursor, type: UInt8, key: String, name: String) throws -> MetaValue {
        switch type {
        case 1: return .int(try m.i64("value of '\(key)'"))
        case 2: return .float(try m.f64("value of '\(key)'"))
        case 3:
            let v = try m.u8("value of '\(key)'")
            if v > 1 { throw RecurError(.format, "\(name): boolean '\(key)' has value \(v)") }
            return .bool(v == 1)
        case 4:
            let n = Int(try m.u32("length of '\(key)'"))
            if n > RecurFormat.maxStringBytes {
                throw RecurError(.format, "\(name): string '\(key)' is \(n) bytes, over the cap of \(RecurFormat.maxStringBytes)")
            }
            return .string(try m.utf8(count: n, "value of '\(key)'"))
        case 5:
            let count = Int(try m.u32("count of '\(key)'"))
            if count > m.remaining / 4 {
                throw RecurError(.format, "\(name): string array '\(key)' claims \(count) items, more than its section can hold")
            }
            if count > RecurFormat.maxArrayItems {
                throw RecurError(.format, "\(name): string array '\(key)' has \(count) items, over the cap of \(RecurFormat.maxArrayItems)")
            }
            var out: [String] = []
            out.reserveCapacity(count)
            for i in 0..<count {
                let n = Int(try m.u32("length of item \(i) of '\(key)'"))
                if n > RecurFormat.maxStringBytes {
                    throw RecurError(.format, "\(name): item \(i) of '\(key)' is \(n) bytes, over the cap")
                }
                out.append(n == 0 ? "" : try m.utf8(count: n, "item \(i) of '\(key)'"))
            }
            return .strings(out)
        case 6, 7:
            let count = Int(try m.u32("count of '\(key)'"))
            if count > m.remaining / 8 {
                throw RecurError(.format, "\(name): array '\(key)' claims \(count) items, more than its section can hold")
            }
            if count > RecurFormat.maxArrayItems {
                throw RecurError(.format, "\(name): array '\(key)' has \(count) items, over the cap of \(RecurFormat.maxArrayItems)")
            }
            if type == 6 {
                var out = [Int64](); out.reserveCapacity(count)
                for i in 0..<count { out.append(try m.i64("item \(i) of '\(key)'")) }
                return .ints(out)
            }
            var out = [Double](); out.reserveCapacity(count)
            for i in 0..<count { out.append(try m.f64("item \(i) of '\(key)'")) }
            return .floats(out)
        default:
            throw RecurError(.format, "\(name): metadata '\(key)' has unknown type code \(type)")
        }
    }

    public func value(_ key: String) -> MetaValue? {
        metaIndex[key].map { metadata[$0].value }
    }

    public func tensor(_ name: String) -> TensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor, in place.
    public func bytes(of t: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage.bytes[(dataOffset + t.offset)..<(dataOffset + t.offset + t.byteLength)])
    }
}

@inline(__always) func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}
