import CRecurKernels

/// Binds the tensors a declared architecture needs to the bytes of the file, checking each one before
/// any layer uses it: present, of the shape the layer expects, f32 where the layer reads a vector,
/// finite (unless the options allow otherwise), and valid in its quantized layout. Every error names
/// the tensor and the shape expected. `refuseUnused` then refuses what no layer asked for.
struct TensorBinder {
    let file: RecurFile
    let rejectNonFinite: Bool
    private(set) var used = Set<String>()
    /// Seconds spent checking the tensors' contents (finiteness, quantized layouts).
    private(set) var validationTime: Double = 0

    init(file: RecurFile, rejectNonFinite: Bool) {
        self.file = file
        self.rejectNonFinite = rejectNonFinite
    }

    mutating func tensor(_ name: String, _ shape: [Int], floatOnly: Bool = false) throws -> TensorInfo {
        guard let t = file.tensor(name) else {
            throw RecurError(.model, "missing tensor '\(name)' (expected shape \(shape))")
        }
        if t.shape != shape {
            throw RecurError(.model, "tensor '\(name)' has shape \(t.shape), expected \(shape)")
        }
        if floatOnly && t.dtype != .f32 {
            throw RecurError(.model, "tensor '\(name)' is \(t.dtype.name); vectors must be f32")
        }
        let t0 = LoadTimings.now()
        defer { validationTime += LoadTimings.now() - t0 }
        if rejectNonFinite, let bad = Self.firstNonFinite(file, t) {
            throw RecurError(.numerical, "tensor '\(name)' holds a non-finite value (\(bad)); the file is unusable")
        }
        try Self.checkQuantized(file, t, rejectNonFinite: rejectNonFinite)
        used.insert(name)
        return t
    }

    /// A weight matrix of any dtype.
    mutating func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> Matrix {
        let t = try tensor(name, [rows, cols])
        return Matrix(rows: rows, cols: cols, dtype: t.dtype, data: file.bytes(of: t).baseAddress!)
    }

    /// f32 values of any shape (biases, a cell's own vectors).
    mutating func floats(_ name: String, _ shape: [Int]) throws -> UnsafePointer<Float> {
        let t = try tensor(name, shape, floatOnly: true)
        return file.bytes(of: t).baseAddress!.assumingMemoryBound(to: Float.self)
    }

    /// One direction of a recurrent layer: W, U, b, then the cell's own tensors.
    mutating func direction(_ spec: RecurrentSpec, prefix p: String) throws -> RecurrentWeights {
        let g = spec.gates * spec.units
        let own = spec.extraTensors
        guard own.count <= CellTensors.capacity else {
            throw RecurError(.unsupported, "a \(spec.cell.rawValue) layer declares \(own.count) tensors of its own; layers hold at most \(CellTensors.capacity)")
        }
        return RecurrentWeights(
            spec: spec,
            kernel: try matrix(p + "kernel", g, spec.inputSize),
            recurrent: try matrix(p + "recurrent_kernel", g, spec.units),
            bias: try floats(p + "bias", [g]),
            extra: CellTensors(try own.map { try floats(p + $0.name, $0.shape) }))
    }

    /// The layers of a stack (`layer.N.*` after `prefix`), recurrent layers placed one after another in
    /// the stream's state vector.
    mutating func stack(_ layers: [LayerSpec], prefix: String) throws -> Model.Stack {
        var stack = Model.Stack()
        var stateOffset = 0
        for (i, layer) in layers.enumerated() {
            let p = "\(prefix)layer.\(i)."
            switch layer {
            case .embedding(let v, let d):
                stack.embedding = EmbeddingWeights(table: try matrix(p + "embeddings", v, d))
            case .recurrent(let spec):
                let l = spec.bidirectional
                    ? RecurrentLayer(forward: try direction(spec, prefix: p + "forward."),
                                     backward: try direction(spec, prefix: p + "backward."), stateOffset: stateOffset)
                    : RecurrentLayer(forward: try direction(spec, prefix: p), backward: nil, stateOffset: stateOffset)
                stack.recurrent.append(l)
                stateOffset += l.stateFloats
            case .dense(let n, let u, let a):
                stack.head.append(DenseWeights(kernel: try matrix(p + "kernel", u, n), bias: try floats(p + "bias", [u]), activation: a))
            case .attention(let a):
                stack.attention = try attention(a, prefix: p)
            }
        }
        return stack
    }

    /// An attention layer's tensors (FORMAT.md §12): those its scoring and its combination need.
    mutating func attention(_ a: AttentionSpec, prefix p: String) throws -> AttentionWeights {
        let Q = a.inputSize, M = a.memorySize, A = a.attentionUnits
        let additive = a.score == .additive, tanh = a.combine == .tanh
        return AttentionWeights(
            spec: a,
            scoreKernel: a.score == .general ? try matrix(p + "score_kernel", Q, M) : nil,
            queryKernel: additive ? try matrix(p + "query_kernel", A, Q) : nil,
            keyKernel: additive ? try matrix(p + "key_kernel", A, M) : nil,
            scoreVector: additive ? try floats(p + "score_vector", [A]) : nil,
            scoreBias: additive && a.useBias ? try floats(p + "score_bias", [A]) : nil,
            combineKernel: tanh ? try matrix(p + "kernel", a.units, M + Q) : nil,
            combineBias: tanh ? try floats(p + "bias", [a.units]) : nil)
    }

    /// A frame model's `input.mean` and `input.scale` ([F] each, both or neither), or nil.
    mutating func normalization(_ input: InputKind) throws -> (mean: UnsafePointer<Float>, scale: UnsafePointer<Float>)? {
        let has = (file.tensor("input.mean") != nil, file.tensor("input.scale") != nil)
        guard has.0 || has.1 else { return nil }
        guard let f = input.frameSize else {
            throw RecurError(.model, "tensors 'input.mean' and 'input.scale' are only for frame models (model.input = frames)")
        }
        guard has.0 && has.1 else {
            throw RecurError(.model, "tensor '\(has.0 ? "input.scale" : "input.mean")' is missing (expected shape [\(f)]): input normalisation needs both input.mean and input.scale")
        }
        return (try floats("input.mean", [f]), try floats("input.scale", [f]))
    }

    /// Refuses a file holding a tensor that no layer read.
    func refuseUnused() throws {
        for t in file.tensors where !used.contains(t.name) {
            throw RecurError(.model, "tensor '\(t.name)' is not used by the declared architecture")
        }
    }

    /// The first NaN or infinity of a plain-typed tensor (f32 read in place, others decoded row by row),
    /// or nil. The quantized types' scales are checked by `checkQuantized`.
    ///
    /// f32 and f16 are first scanned 16 KiB at a time for a value whose exponent bits are all ones (what
    /// NaN and the infinities are, and nothing else), 64 bytes per step without an early exit; only from
    /// the chunk holding one are the values then read one by one, as before, for the first and its text.
    static func firstNonFinite(_ file: RecurFile, _ t: TensorInfo) -> String? {
        guard t.dtype.blockSize == 1 else { return nil }
        let b = file.bytes(of: t)
        let cols = t.shape.last!, rows = t.elementCount / cols, rb = t.dtype.rowBytes(cols)!
        var firstRow = 0
        if t.dtype == .f32 || t.dtype == .f16 {
            let chunk = 16 << 10   // a multiple of 64 and of both value sizes
            var start = 0
            while start < b.count && !hasAllOnesExponent(b.baseAddress! + start, min(chunk, b.count - start), t.dtype) {
                start += chunk
            }
            if start >= b.count { return nil }
            if t.dtype == .f32 {
                let floats = b.bindMemory(to: Float.self)
                for v in floats[(start / 4)...] where !v.isFinite { return "\(v)" }
                return nil
            }
            firstRow = start / rb   // f16 rows have no padding (rowBytes = 2 · cols)
        }
        var row = [Float](repeating: 0, count: cols)
        return row.withUnsafeMutableBufferPointer { out in
            for r in firstRow..<rows {
                rk_dequantize(out.baseAddress!, b.baseAddress!, Int32(t.dtype.rawValue), r, 1, cols)
                if let v = out.first(where: { !$0.isFinite }) { return "\(v)" }
            }
            return nil
        }
    }

    /// Whether the `count` bytes at `p` (f32 or f16 values, `count` a multiple of the value's size) hold a
    /// value whose exponent bits are all ones: a NaN or an infinity.
    static func hasAllOnesExponent(_ p: UnsafeRawPointer, _ count: Int, _ dtype: DType) -> Bool {
        // Lanes of 32 bits: one f32, or two f16 (low and high half).
        let (lo, hi): (UInt32, UInt32) = dtype == .f32 ? (0x7F80_0000, 0x7F80_0000) : (0x0000_7C00, 0x7C00_0000)
        let vlo = SIMD16<UInt32>(repeating: lo), vhi = SIMD16<UInt32>(repeating: hi)
        var acc = SIMDMask<SIMD16<Int32>>(repeating: false)
        var i = 0
        while i + 64 <= count {
            let v = p.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt32>.self)
            acc = acc .| ((v & vlo) .== vlo) .| ((v & vhi) .== vhi)
            i += 64
        }
        if any(acc) { return true }
        if dtype == .f32 {
            for k in stride(from: i, to: count, by: 4) where p.loadUnaligned(fromByteOffset: k, as: UInt32.self) & lo == lo { return true }
        } else {
            for k in stride(from: i, to: count, by: 2) where p.loadUnaligned(fromByteOffset: k, as: UInt16.self) & 0x7C00 == 0x7C00 { return true }
        }
        return false
    }

    /// The quantized layouts' own rules (FORMAT.md §7): scales whose decoded weights are finite, codes in
    /// range, zero padding. Scales are numerical faults, the rest format faults.
    static func checkQuantized(_ file: RecurFile, _ t: TensorInfo, rejectNonFinite: Bool) throws {
        guard t.dtype.blockSize > 1 else { return }   // the quantized (blocked) types
        let cols = t.shape.last!
        var what: UnsafePointer<CChar>? = nil
        let row = rk_check_quantized(Int32(t.dtype.rawValue), file.bytes(of: t).baseAddress!, t.elementCount / cols, cols, &what)
        guard row > 0 else { return }
        let text = what.map { String(cString: $0) } ?? "a fault"
        if text.hasPrefix("a scale") {
            if rejectNonFinite {
                throw RecurError(.numerical, "tensor '\(t.name)' row \(row - 1) has \(text); the file is unusable")
            }
            return
        }
        throw RecurError(.format, "tensor '\(t.name)' row \(row - 1) has \(text)")
    }
}
