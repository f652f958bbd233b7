#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of a model file: either a read-only `mmap` of a file (tensors are read in place, nothing is
/// copied), or a 64-byte-aligned private copy of a caller's buffer. Unmapped or freed on deinit.
public final class FileStorage: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    private let isMapped: Bool

    /// Maps the file at `path` read-only.
    public init(mapping path: String) throws {
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused as not a regular file).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            throw RecurError(.io, "cannot open '\(path)': \(Self.errnoText())")
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            throw RecurError(.io, "cannot stat '\(path)': \(Self.errnoText())")
        }
        if (st.st_mode & S_IFMT) != S_IFREG {
            throw RecurError(.io, "'\(path)' is not a regular file")
        }
        let size = Int(st.st_size)
        if size == 0 {
            throw RecurError(.format, "'\(path)' is empty (0 bytes); a .recur file has at least a \(RecurFormat.headerSize)-byte header")
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw RecurError(.io, "cannot map '\(path)': \(Self.errnoText())")
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
        isMapped = true
    }

    /// Copies `buffer` into storage owned by this object (the caller may free its buffer afterwards).
    public init(copying buffer: UnsafeRawBufferPointer) throws {
        let n = buffer.count
        guard n > 0, let src = buffer.baseAddress else {
            throw RecurError(.format, "empty buffer; a .recur file has at least a \(RecurFormat.headerSize)-byte header")
        }
        var out: UnsafeMutableRawPointer? = nil
        if posix_memalign(&out, 64, n) != 0 || out == nil {
            throw RecurError(.outOfMemory, "cannot allocate \(n) bytes for a model buffer")
        }
        out!.copyMemory(from: src, byteCount: n)
        bytes = UnsafeRawBufferPointer(start: out!, count: n)
        isMapped = false
    }

    /// Copies an array (used by the writer's round trips and tests).
    public static func copying(_ array: [UInt8]) throws -> FileStorage {
        try array.withUnsafeBytes { try FileStorage(copying: $0) }
    }

    deinit {
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress!), bytes.count)
        } else {
            free(UnsafeMutableRawPointer(mutating: bytes.baseAddress!))
        }
    }

    static func errnoText() -> String {
        if let s = strerror(errno) { return String(cString: s) }
        return "errno \(errno)"
    }
}
