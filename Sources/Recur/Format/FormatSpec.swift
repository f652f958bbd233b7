import CRecurABI
import CRecurKernels

/// Constants of the `.recur` file format. `docs/FORMAT.md` is the normative description; this file
/// mirrors its tables.
public enum RecurFormat {
    /// The 8 bytes every file starts with: 0x89 'R' 'C' 'R' '\r' '\n' 0x1A '\n'.
    public static let magic: [UInt8] = [0x89, 0x52, 0x43, 0x52, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The newest major version this library writes (RECUR_FORMAT_VERSION_MAJOR of include/recur.h). It
    /// reads majors 1 to 6 (`readableMajors`). A file is written with the lowest version that describes it
    /// (`lowestMajor`), so that older readers open every file they can.
    public static let versionMajor = UInt16(RECUR_FORMAT_VERSION_MAJOR)
    /// The minor version this library writes. Readers accept any minor version of a known major.
    public static let versionMinor = UInt16(RECUR_FORMAT_VERSION_MINOR)
    /// The major versions this library reads.
    public static let readableMajors: ClosedRange<UInt16> = 1...6
    /// The lowest major version that describes a file: 6 when a tokenizer reads unknown words as their
    /// signatures (`tokenizer.unk_signatures`, which a 5.x reader would ignore and so misread the text); 5 when a layer is an attention layer (`layer.N.kind =
    /// attention`: a 4.x reader knows no such kind, nor a bidirectional encoder); 4 when it holds a q8ri or q4i tensor (a 3.x reader
    /// knows no dtype 5 or 6); 3 for a frame model, mean pooling or the regress
    /// task (a 2.x reader would find no tokenizer or ignore the pooling), and for a file that records its
    /// text preprocessing or padding (`tokenizer.splitter` other than `recur`, `tokenizer.pad_mask = false`,
    /// `tokenizer.pad_length`, or the same `source_tokenizer.*` keys, which a 2.x reader would ignore); 2
    /// when it holds a q8r tensor or sets `encoder.reverse_source` (a 1.x reader would ignore the key and
    /// misread the model); else 1.
    public static func lowestMajor(metadata: [(key: String, value: MetaValue)], dtypes: [DType]) -> UInt16 {
        var major = dtypes.map(\.formatMajor).max() ?? 1
        func has(_ key: String, _ value: MetaValue) -> Bool { metadata.contains { $0.key == key && $0.value == value } }
        if has("encoder.reverse_source", .bool(true)) { major = max(major, 2) }
        if has("model.input", .string("frames")) || has("model.pooling", .string("mean")) || has("model.task", .string("regress")) {
            major = max(major, 3)
        }
        if metadata.contains(where: { Self.isVersion3Key($0.key, $0.value) }) { major = max(major, 3) }
        if metadata.contains(where: { $0.key.hasSuffix(".kind") && $0.value == .string("attention") }) { major = max(major, 5) }
        if metadata.contains(where: { $0.key.hasSuffix("tokenizer.unk_signatures") && $0.value == .bool(true) }) { major = max(major, 6) }
        return max(major, 1)
    }

    /// Keys whose meaning a 2.x reader would miss (FORMAT.md §10).
    static func isVersion3Key(_ key: String, _ value: MetaValue) -> Bool {
        for prefix in ["tokenizer.", "source_tokenizer."] where key.hasPrefix(prefix) {
            switch key.dropFirst(prefix.count) {
            case "splitter": return value != .string("recur")
            case "pad_mask": return value == .bool(false)
            case "pad_length": return true
            default: return false
            }
        }
        return false
    }

    /// The text of "which versions" in version errors.
    public static let versionsText = "this library reads version 1.x, 2.x, 3.x, 4.x, 5.x and 6.x (it writes 1.0, or 2.0, 3.0, 4.0, 5.0 or 6.0 for files that need them)"
    /// The fixed header size in bytes.
    public static let headerSize = 64
    /// The alignment of the data section and of every tensor inside it, in bytes.
    public static let alignment = 64
    /// Byte offset of the CRC-32 field inside the header.
    public static let checksumOffset = 56

    // Caps that keep a hostile file from making the reader allocate or loop without bound.
    // Every array or string is also bounded by the bytes that remain in its section.
    public static let maxKeyBytes = 256
    public static let maxStringBytes = 64 << 20
    public static let maxMetadataCount = 1 << 20
    /// Items of one array value (strings, ints or floats): far above any vocabulary or label list, and
    /// small enough that a file of empty strings cannot make loading slow or large (docs/FORMAT.md §9).
    public static let maxArrayItems = 1 << 21
    public static let maxTensorCount = 1 << 16
    public static let maxRank = 4
    public static let maxDimension = 1 << 31
}

/// Element types of the tensor directory. Values are stable across versions; a reader rejects a code it
/// does not know with an error naming it.
public enum DType: UInt8, Sendable, CaseIterable {
    /// IEEE-754 binary32, little-endian.
    case f32 = 0
    /// IEEE-754 binary16, little-endian.
    case f16 = 1
    /// 8-bit blocks: each row is split into blocks of 32 along the last dimension; see FORMAT.md.
    case q8 = 2
    /// 4-bit blocks: each row is split into blocks of 32 along the last dimension; see FORMAT.md.
    case q4 = 3
    /// 8-bit with one scale per row (format version 2); see FORMAT.md.
    case q8r = 4
    /// q8r's codes and scales with the rows interleaved in groups of 16 for the kernels (format version 4);
    /// see FORMAT.md. Rows are addressed by index (`Matrix.row0`), not by a byte offset.
    case q8ri = 5
    /// q4's scales and nibbles with the rows interleaved in groups of 16 for the kernels (format version 4);
    /// see FORMAT.md.
    case q4i = 6

    /// The kernels' table entry of this type (rk_dtype_info in recur_kernels.h: the one place where
    /// what each type is, its row layout and how products treat x, is written down).
    var info: rk_dtype_info { rk_dtype_of(Int32(rawValue))!.pointee }

    public var name: String { String(cString: info.name) }

    /// Whether products with a matrix of this type quantize the vector (q8, q4, q8r; see MatVec.swift).
    public var quantizesActivations: Bool { info.x_quantization != Int32(RK_X_EXACT) }

    /// Whether that quantization is one scale for the whole vector (q8r) rather than one per block.
    public var quantizesPerVector: Bool { info.x_quantization == Int32(RK_X_PER_VECTOR) }

    /// The first major version of the file format that has this type.
    public var formatMajor: UInt16 { UInt16(info.format_major) }

    /// Rows stored together: 1 for row-major types, 16 for q8ri and q4i (interleaved groups of rows).
    public var rowGroup: Int { Int(info.row_group) }

    /// The block size along the last dimension for blocked types (1 for plain element types).
    public var blockSize: Int { Int(info.block) }

    /// Bytes taken by one row of `cols` elements (the last dimension), or nil on overflow; the layouts
    /// are in FORMAT.md §7 and recur_kernels.h.
    public func rowBytes(_ cols: Int) -> Int? {
        let n = rk_row_bytes(Int32(rawValue), Int64(cols))
        return n < 0 ? nil : Int(n)
    }

    /// Bytes taken by a tensor of this shape (its rows padded to `rowGroup`), or nil when it overflows.
    public func byteCount(shape: [Int]) -> Int? {
        guard let last = shape.last else { return self == .f32 ? 4 : (self == .f16 ? 2 : nil) }
        var rows = 1
        for d in shape.dropLast() {
            let (p, o) = rows.multipliedReportingOverflow(by: d)
            if o { return nil }
            rows = p
        }
        let n = rk_matrix_bytes(Int32(rawValue), Int64(rows), Int64(last))
        return n < 0 ? nil : Int(n)
    }
}

/// A typed metadata value.
public enum MetaValue: Equatable, Sendable {
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case strings([String])
    case ints([Int64])
    case floats([Double])

    /// The type code written in the file.
    public var typeCode: UInt8 {
        switch self {
        case .int: return 1
        case .float: return 2
        case .bool: return 3
        case .string: return 4
        case .strings: return 5
        case .ints: return 6
        case .floats: return 7
        }
    }

    public var intValue: Int64? { if case .int(let v) = self { return v }; return nil }
    public var floatValue: Double? {
        switch self {
        case .float(let v): return v
        case .int(let v): return Double(v)
        default: return nil
        }
    }
    public var boolValue: Bool? { if case .bool(let v) = self { return v }; return nil }
    public var stringValue: String? { if case .string(let v) = self { return v }; return nil }
    public var stringsValue: [String]? { if case .strings(let v) = self { return v }; return nil }
}

/// One entry of the tensor directory.
public struct TensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Offset from the start of the data section (a multiple of 64).
    public var offset: Int
    public var byteLength: Int

    public var elementCount: Int { shape.reduce(1, *) }
}
