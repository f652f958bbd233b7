#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a `.recur` file in memory and writes it atomically.
///
///     var w = RecurWriter()
///     w.set("tokenizer.kind", .string("char"))
///     w.addTensor("layer.0.embeddings", shape: [96, 64], values: table)
///     try w.write(to: "model.recur")
public struct RecurWriter {
    public private(set) var metadata: [(key: String, value: MetaValue)] = []
    public private(set) var tensors: [(name: String, dtype: DType, shape: [Int], data: [UInt8])] = []

    public init() {}

    /// Sets a metadata key (replacing an earlier value of the same key).
    public mutating func set(_ key: String, _ value: MetaValue) {
        if let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
        } else {
            metadata.append((key, value))
        }
    }

    /// Adds an f32 tensor in row-major order.
    public mutating func addTensor(_ name: String, shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "tensor '\(name)': \(values.count) values for shape \(shape)")
        var data = [UInt8](repeating: 0, count: values.count * 4)
        data.withUnsafeMutableBytes { out in
            for (i, v) in values.enumerated() {
                out.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        }
        addTensor(name, dtype: .f32, shape: shape, bytes: data)
    }

    /// Adds a tensor whose bytes are already encoded in `dtype`'s layout.
    public mutating func addTensor(_ name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
        precondition(dtype.byteCount(shape: shape) == bytes.count, "tensor '\(name)': byte count does not match \(dtype.name) \(shape)")
        if let i = tensors.firstIndex(where: { $0.name == name }) {
            tensors[i] = (name, dtype, shape, bytes)
        } else {
            tensors.append((name, dtype, shape, bytes))
        }
    }

    /// Serializes the file (see docs/FORMAT.md for the layout).
    public func serialize() -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(RecurFormat.headerSize + tensors.reduce(0) { $0 + $1.data.count + 64 } + 4096)
        w.bytes.append(contentsOf: RecurFormat.magic)
        w.u16(RecurFormat.lowestMajor(metadata: metadata, dtypes: tensors.map(\.dtype)))
        w.u16(RecurFormat.versionMinor)
        w.u32(0)                                   // flags
        w.u64(0)                                   // file_size, patched below
        w.u32(UInt32(metadata.count))
        w.u32(UInt32(tensors.count))
        w.u64(UInt64(RecurFormat.headerSize))      // metadata_offset
        w.u64(0)                                   // tensors_offset, patched
        w.u64(0)                                   // data_offset, patched
        w.u32(0)                                   // checksum, patched
        w.u32(0)                                   // reserved
        assert(w.bytes.count == RecurFormat.headerSize)

        for (key, value) in metadata {
            let k = Array(key.utf8)
            w.u16(UInt16(k.count)); w.bytes.append(contentsOf: k)
            w.u8(value.typeCode)
            switch value {
            case .int(let v): w.i64(v)
            case .float(let v): w.f64(v)
            case .bool(let v): w.u8(v ? 1 : 0)
            case .string(let s):
                let u = Array(s.utf8); w.u32(UInt32(u.count)); w.bytes.append(contentsOf: u)
            case .strings(let a):
                w.u32(UInt32(a.count))
                for s in a { let u = Array(s.utf8); w.u32(UInt32(u.count)); w.bytes.append(contentsOf: u) }
            case .ints(let a):
                w.u32(UInt32(a.count)); for v in a { w.i64(v) }
            case .floats(let a):
                w.u32(UInt32(a.count)); for v in a { w.f64(v) }
            }
        }
        let dirOffset = w.bytes.count
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += t.data.count
            offset = (offset + RecurFormat.alignment - 1) / RecurFormat.alignment * RecurFormat.alignment
        }
        for (i, t) in tensors.enumerated() {
            let n = Array(t.name.utf8)
            w.u16(UInt16(n.count)); w.bytes.append(contentsOf: n)
            w.u8(t.dtype.rawValue)
            w.u8(UInt8(t.shape.count))
            w.u16(0)
            for d in t.shape { w.u64(UInt64(d)) }
            w.u64(UInt64(offsets[i]))
            w.u64(UInt64(t.data.count))
        }
        w.pad(to: RecurFormat.alignment)
        let dataOffset = w.bytes.count
        for (i, t) in tensors.enumerated() {
            while w.bytes.count < dataOffset + offsets[i] { w.u8(0) }
            w.bytes.append(contentsOf: t.data)
        }
        w.patchU64(at: 16, UInt64(w.bytes.count))
        w.patchU64(at: 40, UInt64(dirOffset))
        w.patchU64(at: 48, UInt64(dataOffset))
        let crc = w.bytes.withUnsafeBytes { CRC32.checksum($0) }   // checksum field is still zero
        w.patchU32(at: RecurFormat.checksumOffset, crc)
        return w.bytes
    }

    /// Writes the file atomically: to a temporary file in the same folder, flushed, then renamed over
    /// `path`. A crash midway leaves any earlier file at `path` intact.
    public func write(to path: String) throws {
        try AtomicFile.write(serialize(), to: path)
    }
}

/// Whole-file writes that never leave a half-written file behind.
///
/// The bytes go to a new temporary file next to `path` (created exclusively, so concurrent writers never
/// share one), which is flushed to disk and then renamed over `path`; the folder is flushed too, so that
/// the rename itself survives a power loss. A process killed at any point leaves either the old file or
/// the new one at `path`, never a mixture. A process killed before its rename leaves its `path.tmp-PID-N`
/// file; the next write to `path` removes such files of processes that no longer exist.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String) throws {
        removeStaleTemporaries(of: path)
        var tmp = ""
        var fd: Int32 = -1
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let base = Int(ts.tv_nsec) & 0xFFFFF
        for attempt in 0..<100 {
            tmp = path + ".tmp-\(getpid())-\(base + attempt)"
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 || errno != EEXIST { break }
        }
        if fd < 0 {
            throw RecurError(.io, "cannot create '\(tmp)': \(FileStorage.errnoText())")
        }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        var written = 0
        let result: Int = bytes.withUnsafeBytes { buf in
            while written < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + written, buf.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return -1
                }
                written += n
            }
            return 0
        }
        if result != 0 {
            let e = FileStorage.errnoText()
            close(fd)
            throw RecurError(.io, "cannot write '\(tmp)': \(e)")
        }
        if fsync(fd) != 0 {
            let e = FileStorage.errnoText()
            close(fd)
            throw RecurError(.io, "cannot flush '\(tmp)': \(e)")
        }
        if close(fd) != 0 {
            throw RecurError(.io, "cannot close '\(tmp)': \(FileStorage.errnoText())")
        }
        if rename(tmp, path) != 0 {
            throw RecurError(.io, "cannot rename '\(tmp)' to '\(path)': \(FileStorage.errnoText())")
        }
        ok = true
        syncFolder(of: path)
    }

    /// Removes `path.tmp-PID-N` files left by writers that were killed: those whose process no longer
    /// exists and that were last changed over a minute ago (a writer of another PID namespace sharing the
    /// folder is thus not disturbed while it writes). Best effort: failures are ignored.
    static func removeStaleTemporaries(of path: String) {
        let (folder, name) = split(path)
        let prefix = name + ".tmp-"
        guard let dir = opendir(folder) else { return }
        defer { closedir(dir) }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        while let entry = readdir(dir) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard entryName.hasPrefix(prefix) else { continue }
            let rest = entryName.dropFirst(prefix.count).split(separator: "-", omittingEmptySubsequences: false)
            guard rest.count == 2, let pid = Int32(rest[0]), pid > 0, Int(rest[1]) != nil, pid != getpid() else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            let full = (folder == "." && !path.hasPrefix("./") ? "" : folder + "/") + entryName
            var st = stat()
            guard lstat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, now.tv_sec - st.st_mtim.tv_sec > 60 else { continue }
            unlink(full)
        }
    }

    /// The folder and the last component of `path`.
    static func split(_ path: String) -> (folder: String, name: String) {
        let utf8 = Array(path.utf8)
        guard let slash = utf8.lastIndex(of: UInt8(ascii: "/")) else { return (".", path) }
        let folder = slash == 0 ? "/" : String(decoding: utf8[..<slash], as: UTF8.self)
        return (folder, String(decoding: utf8[(slash + 1)...], as: UTF8.self))
    }

    /// Flushes the folder holding `path` (its entry for the renamed file). Best effort: the new file is in
    /// place already, and some file systems do not sync folders.
    static func syncFolder(of path: String) {
        let folder = split(path).folder
        let dfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }
}
