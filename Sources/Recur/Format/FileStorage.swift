#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of a model file: either a read-only `mmap` of a file (tensors are read in place, nothing is
/// copied), or a 64-byte-aligned private copy (of a file read with `read`, or of a caller's buffer).
/// Unmapped or freed on deinit.
///
/// A mapping shares the file's pages: if another process truncates the file while it is mapped, touching
/// the lost pages raises SIGBUS, and if it overwrites the file in place, the new bytes (unvalidated, maybe
/// NaN) are what the model computes with. A private copy is immune to both, at the cost of the file's
/// size in memory and one read of it at open. Use it for files the process does not control.
public final class FileStorage: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    private let isMapped: Bool

    /// Maps the file at `path` read-only.
    public convenience init(mapping path: String) throws {
        try self.init(path: path, map: true)
    }

    /// Reads the file at `path` into private memory (no mapping).
    public convenience init(reading path: String) throws {
        try self.init(path: path, map: false)
    }

    private init(path: String, map: Bool) throws {
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
        if map {
            guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
                throw RecurError(.io, "cannot map '\(path)': \(Self.errnoText())")
            }
            bytes = UnsafeRawBufferPointer(start: p, count: size)
            isMapped = true
            return
        }
        var out: UnsafeMutableRawPointer? = nil
        if posix_memalign(&out, 64, size) != 0 || out == nil {
            throw RecurError(.outOfMemory, "cannot allocate \(size) bytes to read '\(path)'")
        }
        var done = 0
        while done < size {
            let n = read(fd, out! + done, min(size - done, 1 << 30))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let why = n < 0 ? Self.errnoText() : "the file shrank to \(done) bytes while being read"
                free(out)
                throw RecurError(.io, "cannot read '\(path)': \(why)")
            }
            done += n
        }
        bytes = UnsafeRawBufferPointer(start: out!, count: size)
        isMapped = false
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
