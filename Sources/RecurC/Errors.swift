#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CRecurABI
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

/// The recur_status of recur.h for each runtime error code (the header is the one place the numbers live).
func status(_ code: RecurError.Code) -> Int32 {
    let s: Int
    switch code {
    case .invalidArgument: s = RECUR_ERR_INVALID_ARGUMENT
    case .io: s = RECUR_ERR_IO
    case .format: s = RECUR_ERR_FORMAT
    case .unsupportedVersion: s = RECUR_ERR_UNSUPPORTED_VERSION
    case .checksum: s = RECUR_ERR_CHECKSUM
    case .model: s = RECUR_ERR_MODEL
    case .outOfRange: s = RECUR_ERR_OUT_OF_RANGE
    case .bufferTooSmall: s = RECUR_ERR_BUFFER_TOO_SMALL
    case .mismatch: s = RECUR_ERR_MISMATCH
    case .numerical: s = RECUR_ERR_NUMERICAL
    case .unsupported: s = RECUR_ERR_UNSUPPORTED
    case .outOfMemory: s = RECUR_ERR_OUT_OF_MEMORY
    }
    return Int32(s)
}

/// Runs an export's body: RECUR_OK on success, else the error's status with its message stored.
@inline(__always)
func guarded(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return Int32(RECUR_OK)
    } catch let e as RecurError {
        setLastError(e.message)
        return status(e.code)
    } catch {
        setLastError("unexpected error: \(error)")
        return status(.unsupported)
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

/// A size_t as Swift sees it (Int) made a count: a size_t past Int.max arrives negative and cannot describe
/// a real buffer, so it is read as Int.max.
@inline(__always)
func size(_ n: Int) -> Int { n < 0 ? Int.max : n }

/// Static, NUL-terminated text (string literals live in the library's read-only data).
@inline(__always)
func cString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

func statusText(_ code: Int32) -> StaticString {
    switch Int(code) {
    case RECUR_OK: return "ok\0"
    case RECUR_ERR_INVALID_ARGUMENT: return "invalid argument\0"
    case RECUR_ERR_IO: return "input/output error\0"
    case RECUR_ERR_FORMAT: return "malformed data\0"
    case RECUR_ERR_UNSUPPORTED_VERSION: return "unsupported format version\0"
    case RECUR_ERR_CHECKSUM: return "checksum mismatch\0"
    case RECUR_ERR_MODEL: return "invalid model\0"
    case RECUR_ERR_OUT_OF_RANGE: return "out of range\0"
    case RECUR_ERR_BUFFER_TOO_SMALL: return "buffer too small\0"
    case RECUR_ERR_MISMATCH: return "mismatch\0"
    case RECUR_ERR_NUMERICAL: return "non-finite value\0"
    case RECUR_ERR_UNSUPPORTED: return "unsupported operation\0"
    case RECUR_ERR_OUT_OF_MEMORY: return "out of memory\0"
    default: return "unknown status code\0"
    }
}

@c @implementation
public func recur_status_string(_ code: Int32) -> UnsafePointer<CChar>? {
    cString(statusText(code))
}

@c @implementation
public func recur_last_error() -> UnsafePointer<CChar>? {
    if let key = lastErrorKey, let p = pthread_getspecific(key) {
        return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
    }
    return cString("\0")
}

// MARK: Versions

/// RecurVersion.string as a C string, made once and kept for the life of the process.
let versionCString: UnsafeMutablePointer<CChar>? = strdup(RecurVersion.string)

@c @implementation
public func recur_version(_ major: UnsafeMutablePointer<Int32>?, _ minor: UnsafeMutablePointer<Int32>?,
                          _ patch: UnsafeMutablePointer<Int32>?) {
    major?.pointee = Int32(RecurVersion.major)
    minor?.pointee = Int32(RecurVersion.minor)
    patch?.pointee = Int32(RecurVersion.patch)
}

@c @implementation
public func recur_version_string() -> UnsafePointer<CChar>? {
    if let p = versionCString { return UnsafePointer(p) }
    return cString("\0")
}

@c @implementation
public func recur_format_version(_ major: UnsafeMutablePointer<Int32>?, _ minor: UnsafeMutablePointer<Int32>?) {
    major?.pointee = Int32(RecurFormat.versionMajor)
    minor?.pointee = Int32(RecurFormat.versionMinor)
}
