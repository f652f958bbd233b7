#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Recur

// Status codes, static texts and the thread-local message of the last failed call.
//
// Every export runs its body through `guarded`, which turns any thrown error into a status code and
// stores the error's message for `recur_last_error()`. Nothing here prints, traps or exits.

/// The key of the per-thread message: a malloc'd C string freed when the thread exits or when the next
/// failure on the same thread replaces it. nil when the process is out of pthread keys (messages are then
/// not kept; status codes still are returned).
let lastErrorKey: pthread_key_t? = {
    var key = pthread_key_t()
    return pthread_key_create(&key, { free($0) }) == 0 ? key : nil
}()

/// Replaces this thread's last-error message.
func setLastError(_ message: String) {
    guard let key = lastErrorKey else { return }
    let old = pthread_getspecific(key)
    let copy = strdup(message)          // nil when out of memory: recur_last_error then reads ""
    pthread_setspecific(key, copy)
    free(old)
}

/// Runs an export's body: 0 (RECUR_OK) on success, else the error's code with its message stored.
@inline(__always)
func guarded(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return 0
    } catch let e as RecurError {
        setLastError(e.message)
        return e.code.rawValue
    } catch {
        setLastError("unexpected error: \(error)")
        return RecurError.Code.unsupported.rawValue
    }
}

func invalid(_ message: String) -> RecurError { RecurError(.invalidArgument, message) }

/// A required out-pointer, or an invalid-argument error naming it.
@inline(__always)
func required<T>(_ p: UnsafeMutablePointer<T>?, _ name: StaticString) throws -> UnsafeMutablePointer<T> {
    guard let p else { throw invalid("\(name) is NULL") }
    return p
}

/// A C string argument as a Swift String, rejecting NULL and invalid UTF-8.
func text(_ p: UnsafePointer<CChar>?, _ name: StaticString) throws -> String {
    guard let p else { throw invalid("\(name) is NULL") }
    guard let s = String(validatingCString: p) else { throw invalid("\(name) is not valid UTF-8") }
    return s
}

/// A size_t as an Int (sizes past Int.max cannot describe real buffers: they are clamped).
@inline(__always)
func size(_ n: UInt) -> Int { Int(clamping: n) }

/// Static, NUL-terminated text (string literals live in the library's read-only data).
@inline(__always)
func cString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

func statusText(_ code: Int32) -> StaticString {
    switch code {
    case 0: return "ok\0"
    case 1: return "invalid argument\0"
    case 2: return "input/output error\0"
    case 3: return "malformed data\0"
    case 4: return "unsupported format version\0"
    case 5: return "checksum mismatch\0"
    case 6: return "invalid model\0"
    case 7: return "out of range\0"
    case 8: return "buffer too small\0"
    case 9: return "mismatch\0"
    case 10: return "non-finite value\0"
    case 11: return "unsupported operation\0"
    case 12: return "out of memory\0"
    default: return "unknown status code\0"
    }
}

@_cdecl("recur_status_string")
public func recur_status_string(_ code: Int32) -> UnsafePointer<CChar> {
    cString(statusText(code))
}

@_cdecl("recur_last_error")
public func recur_last_error() -> UnsafePointer<CChar> {
    if let key = lastErrorKey, let p = pthread_getspecific(key) {
        return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
    }
    return cString("\0")
}

// MARK: Versions

/// RecurVersion.string as a C string, made once and kept for the life of the process.
let versionCString: UnsafeMutablePointer<CChar>? = strdup(RecurVersion.string)

@_cdecl("recur_version")
public func recur_version(_ major: UnsafeMutablePointer<Int32>?, _ minor: UnsafeMutablePointer<Int32>?,
                          _ patch: UnsafeMutablePointer<Int32>?) {
    major?.pointee = Int32(RecurVersion.major)
    minor?.pointee = Int32(RecurVersion.minor)
    patch?.pointee = Int32(RecurVersion.patch)
}

@_cdecl("recur_version_string")
public func recur_version_string() -> UnsafePointer<CChar> {
    if let p = versionCString { return UnsafePointer(p) }
    return cString("\0")
}

@_cdecl("recur_format_version")
public func recur_format_version(_ major: UnsafeMutablePointer<Int32>?, _ minor: UnsafeMutablePointer<Int32>?) {
    major?.pointee = Int32(RecurFormat.versionMajor)
    minor?.pointee = Int32(RecurFormat.versionMinor)
}
