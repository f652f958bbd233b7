#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the time of opening a model went, in seconds of a monotonic clock; filled by
/// `Model(path:options:timings:)` (and `RecurFile.open(path:options:timings:)` for its first three).
/// A phase that did not run (the checksum when skipped, the input table when there is none) stays 0.
public struct LoadTimings: Sendable {
    /// Opening the file and mapping it (or reading it into memory).
    public var open: Double = 0
    /// The header, the metadata and the tensor directory, checked (FORMAT.md §3–§5).
    public var parse: Double = 0
    /// The CRC-32 of the whole file.
    public var checksum: Double = 0
    /// The architecture and the vocabularies, read from the metadata.
    public var architecture: Double = 0
    /// The tensors' contents checked: finiteness of f32 and f16 tensors, the quantized layouts' scales,
    /// codes and padding.
    public var validation: Double = 0
    /// The precomputed input projection of every token (`Model.Options.inputTableBudget`).
    public var inputTable: Double = 0
    /// The whole open.
    public var total: Double = 0

    public init() {}

    /// What the named phases leave of the total: binding tensors to layers (lookups, shapes), the task's
    /// checks, the worker pool, the copies in column blocks (`ColumnBlocks`: at most 64 columns per matrix,
    /// measured on Zen 5: 6,144 × 40, a copy of 983 KB, 0.12 ms).
    public var other: Double { max(0, total - open - parse - checksum - architecture - validation - inputTable) }

    /// Seconds on a monotonic clock, from an arbitrary origin.
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}
