/// Every failure in Recur is a `RecurError`: a category that maps one to one onto the C API's status
/// codes, and a message meant for a person ("tensor 'layer.1.kernel' has shape [12, 7], expected [12, 8]").
///
/// The runtime never traps on bad input, never prints and never exits: callers get one of these.
public struct RecurError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The C API's number of each is RECUR_ERR_… in include/recur.h (RecurC maps them).
    public enum Code: Sendable, CaseIterable {
        /// An argument was invalid: NULL where a value is needed, a negative count, an empty prompt.
        case invalidArgument
        /// The operating system refused: a file could not be opened, read, written or mapped.
        case io
        /// The bytes are not a valid file of this format (bad magic, truncated, offsets out of bounds).
        case format
        /// The file's major format version is not one this library reads.
        case unsupportedVersion
        /// The checksum stored in the file does not match its contents.
        case checksum
        /// The file is well formed but does not describe a model Recur can run (missing tensor, wrong shape).
        case model
        /// A token id, index or size is outside the valid range.
        case outOfRange
        /// A caller's buffer is too small; the required size was reported.
        case bufferTooSmall
        /// A saved state or object belongs to a different model or version.
        case mismatch
        /// NaN or infinity where a finite number is required (weights, logits).
        case numerical
        /// The operation is valid but not supported for this model (e.g. stepping a bidirectional layer).
        case unsupported
        /// Memory could not be allocated.
        case outOfMemory
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
