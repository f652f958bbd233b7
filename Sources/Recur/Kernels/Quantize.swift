/// Converting a model's weights to f16, q8 or q4 (what `recur quantize` does).
///
/// The default policy for a target type T:
/// - recurrent layers' kernels (W) and recurrent kernels (U), and hidden dense layers: T;
/// - the embedding table and the output layer's kernel: at least 8 bits — T itself when T is f16, q8ri, q8r
///   or q8, q8 when T is q4, q8ri when T is q4i (they are read once per token, so their size costs little time, and the output
///   layer decides the next-token distribution directly);
/// - vectors (biases, recurrent biases) and peephole weights: f32 always (the loader requires it);
/// - a frame model's first-layer kernel when it has fewer than 32 columns: q8ri for the interleaved targets
///   (q8ri, q4i), f32 for the others.
/// Overrides name tensors exactly or with `*` wildcards.
public enum Quantizer {
    /// One tensor's conversion.
    public struct Entry: Sendable {
        public var name: String
        public var shape: [Int]
        public var from: DType
        public var to: DType
        public var bytesBefore: Int
        public var bytesAfter: Int
    }

    /// A per-tensor override: tensors whose name matches `pattern` (`*` matches any run of characters)
    /// get `dtype`, or keep their type in the source file when `dtype` is nil.
    public struct Override: Sendable {
        public var pattern: String
        public var dtype: DType?
        public init(pattern: String, dtype: DType?) { self.pattern = pattern; self.dtype = dtype }
    }

    /// Parses a dtype's name ("f32", "f16", "q8", "q4", "q8r", "q8ri": the dtype table's) or one of the
    /// aliases "float32", "float16" / "half", "int8" / "i8" (q8ri: one scale per row, the fast int8),
    /// "int8-block" (q8: one scale per block of 32), "int4" / "4bit" / "4-bit" (q4i: q4 in the kernels' layout).
    public static func parseType(_ s: String) -> DType? {
        let name = s.lowercased()
        if let t = DType.allCases.first(where: { $0.name == name }) { return t }
        switch name {
        case "float32": return .f32
        case "float16", "half": return .f16
        case "int8-block": return .q8
        case "int8", "i8": return .q8ri
        case "int4", "4bit", "4-bit": return .q4i
        default: return nil
        }
    }

    /// The default type of tensor `name` (shape `shape`) of a model with architecture `arch` quantized to `target`.
    public static func defaultType(_ name: String, shape: [Int], arch: Architecture, target: DType) -> DType {
        if shape.count < 2 || name.hasSuffix(".peephole") { return .f32 }
        // A frame model's first kernel of fewer than 32 columns (F floats wide) stays f32: it is small, and
        // its rows would be padded to a block of 32 (measured: GRU-256 over frames of 12 steps in 4.0 µs with
        // it in f32, 4.4 µs in q8r).
        // With the interleaved kernels (16 rows per instruction, no per-row sums) it is faster in q8ri than in
        // f32 even padded (GRU-512 over frames of 12: 6.1 µs against 7.1 µs a step; JapaneseVowels' test
        // accuracy the same, 98.38%), and at least 8 bits wide whatever the target.
        if arch.input.frameSize != nil, shape.count == 2, shape[1] < 32, name.hasPrefix("layer.0.") {
            return target.rowGroup > 1 ? .q8ri : .f32
        }
        let atLeast8: DType = target == .q4 ? .q8 : target == .q4i ? .q8ri : target
        if name.hasSuffix(".embeddings") { return atLeast8 }
        // The output layer: the main stack's last layer when it is dense.
        if case .dense? = arch.layers.last, name == "layer.\(arch.layers.count - 1).kernel" { return atLeast8 }
        return target
    }

    /// Whether `name` matches `pattern` (`*` matches any run of characters, including none).
    public static func matches(_ name: String, _ pattern: String) -> Bool {
        let n = Array(name.utf8), p = Array(pattern.utf8)
        var i = 0, j = 0, star = -1, mark = 0
        while i < n.count {
            if j < p.count && p[j] != UInt8(ascii: "*") && p[j] == n[i] { i += 1; j += 1 }
            else if j < p.count && p[j] == UInt8(ascii: "*") { star = j; mark = i; j += 1 }
            else if star >= 0 { j = star + 1; mark += 1; i = mark }
            else { return false }
        }
        while j < p.count && p[j] == UInt8(ascii: "*") { j += 1 }
        return j == p.count
    }

    /// The tensors of `file` converted to `target` by the default policy and `overrides` (later overrides
    /// win), with every metadata entry kept and `general.quantization` set to `target`'s name.
    /// Throws when an override matches no tensor or asks for a type a tensor cannot have.
    public static func quantize(_ file: RecurFile, to target: DType, overrides: [Override] = []) throws
        -> (writer: RecurWriter, entries: [Entry]) {
        let arch = try Architecture(file: file)
        for o in overrides where !file.tensors.contains(where: { matches($0.name, o.pattern) }) {
            throw RecurError(.invalidArgument, "no tensor matches '\(o.pattern)' (tensors: \(file.tensors.map(\.name).joined(separator: ", ")))")
        }
        var w = RecurWriter()
        for (k, v) in file.metadata { w.set(k, v) }
        w.set("general.quantization", .string(target.name))
        var entries: [Entry] = []
        for t in file.tensors {
            var to = defaultType(t.name, shape: t.shape, arch: arch, target: target)
            for o in overrides where matches(t.name, o.pattern) { to = o.dtype ?? t.dtype }
            let vectorLike = t.shape.count < 2 || t.name.hasSuffix(".peephole")
            if vectorLike && to != .f32 {
                throw RecurError(.invalidArgument, "tensor '\(t.name)' must stay f32 (vectors and peepholes are read as f32)")
            }
            let bytes: [UInt8]
            if to == t.dtype {
                bytes = Array(file.bytes(of: t))
            } else {
                let cols = t.shape.last ?? 1
                let rows = cols == 0 ? 0 : t.elementCount / cols
                let src = Matrix(rows: rows, cols: cols, dtype: t.dtype, data: file.bytes(of: t).baseAddress!)
                var values = [Float](repeating: 0, count: t.elementCount)
                values.withUnsafeMutableBufferPointer { out in
                    for r in 0..<rows { dequantizeRow(src, r, into: out.baseAddress! + r * cols) }
                }
                bytes = quantizeMatrix(values, rows: rows, cols: cols, to: to)
            }
            w.addTensor(t.name, dtype: to, shape: t.shape, bytes: bytes)
            entries.append(Entry(name: t.name, shape: t.shape, from: t.dtype, to: to,
                                 bytesBefore: t.byteLength, bytesAfter: bytes.count))
        }
        return (w, entries)
    }
}
