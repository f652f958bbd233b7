import CRecurKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loaded model: architecture, vocabulary and weights read in place from the file's mapping.
///
/// A `Model` is immutable after loading, so one instance may be shared by any number of threads. Each
/// stream of generation owns a `State` (hidden vectors, scratch, logits), created with `makeState()`.
///
///     let model = try Model(path: "alice.recur")
///     let state = model.makeState()
///     var logits = try state.prefill(model.vocabulary.encode("Alice"))
public final class Model: @unchecked Sendable {
    public struct Options: Sendable {
        /// Verify the file's CRC-32 (one pass over the bytes). Bounds and shapes are checked regardless.
        public var verifyChecksum = true
        /// Map the file read-only and use its weights in place (true), or read it into private memory
        /// (false): a mapped file that another process truncates makes the next access fault (SIGBUS), and
        /// one overwritten in place changes the weights after they were validated. Read files that this
        /// process does not control into memory. Applies to `init(path:)` only.
        public var mapFile = true
        /// Reject weights that hold NaN or infinity.
        public var rejectNonFinite = true
        /// Largest precomputed input-projection table (vocabulary × gates × hidden floats), in bytes.
        /// When the first recurrent layer reads an embedding, its input projection W·e + b of every token
        /// is computed once at load, so a step only multiplies the recurrent matrix. 0 disables it.
        public var inputTableBudget = 64 << 20
        /// Threads for one step: the rows of recurrent matrices of at least 64 KiB are split across a
        /// persistent worker pool (threads − 1 workers, created at load). 1: no pool. 0: automatic — all
        /// processors, for recurrent matrices of at least 1 MiB, and no pool when none is that large. The
        /// default is the environment variable RECUR_THREADS when set, else 1.
        public var threads = KernelPool.defaultThreads
        public init() {}
    }

    public let file: RecurFile
    public let architecture: Architecture
    public let vocabulary: Vocabulary

    let embedding: EmbeddingWeights?
    /// Recurrent layers in order; `.1` is the backward direction of a bidirectional layer.
    let recurrent: [(forward: RecurrentWeights, backward: RecurrentWeights?)]
    let head: [DenseWeights]
    /// seq2seq only: the encoder (embedding and recurrent layers).
    let encoderStack: Stack?
    /// seq2seq only: the vocabulary of source texts (`source_tokenizer.*`). The target is `vocabulary`.
    public let sourceVocabulary: Vocabulary?
    /// Workers for large recurrent matrices (Options.threads), or nil.
    let kernelPool: KernelPool?
    /// Precomputed W·embedding[v] + b of the first recurrent layer, vocabulary × gates·H (or nil).
    let inputTable: UnsafeMutablePointer<Float>?

    /// Floats of recurrent state (h, and c for LSTM) of one stream.
    public let stateSize: Int
    /// Width of the model's output vector (the vocabulary size for generators).
    public let outputSize: Int
    /// Whether the output layer applies softmax (outputs are probabilities, not logits).
    public let outputIsProbability: Bool
    /// Largest scratch needed by a step.
    let scratchSize: Int
    let maxWidth: Int

    public convenience init(path: String, options: Options = Options()) throws {
        let file = try RecurFile.open(path: path, options: RecurFile.Options(verifyChecksum: options.verifyChecksum,
                                                                         mapFile: options.mapFile))
        try self.init(file: file, options: options)
    }

    /// Loads from a caller's bytes; they are copied, so the caller may free them afterwards.
    public convenience init(bytes: UnsafeRawBufferPointer, options: Options = Options()) throws {
        let storage = try FileStorage(copying: bytes)
        let file = try RecurFile(storage: storage, options: RecurFile.Options(verifyChecksum: options.verifyChecksum))
        try self.init(file: file, options: options)
    }

    public init(file: RecurFile, options: Options = Options()) throws {
        if let problem = KernelPool.environmentProblem { throw RecurError(.invalidArgument, problem) }
        guard (0...KernelPool.maxThreads).contains(options.threads) else {
            throw RecurError(.invalidArgument, "threads must be 0 (automatic) or 1...\(KernelPool.maxThreads) (got \(options.threads))")
        }
        self.file = file
        let arch = try Architecture(file: file)
        let vocab = try Vocabulary(file: file)
        self.architecture = arch
        self.vocabulary = vocab

        var used = Set<String>()
        func tensor(_ name: String, _ shape: [Int], floatOnly: Bool = false) throws -> TensorInfo {
            guard let t = file.tensor(name) else {
                throw RecurError(.model, "missing tensor '\(name)' (expected shape \(shape))")
            }
            if t.shape != shape {
                throw RecurError(.model, "tensor '\(name)' has shape \(t.shape), expected \(shape)")
            }
            if floatOnly && t.dtype != .f32 {
                throw RecurError(.model, "tensor '\(name)' is \(t.dtype.name); vectors must be f32")
            }
            if options.rejectNonFinite, let bad = Self.firstNonFinite(file, t) {
                throw RecurError(.numerical, "tensor '\(name)' holds a non-finite value (\(bad)); the file is unusable")
            }
            try Self.checkQuantized(file, t, rejectNonFinite: options.rejectNonFinite)
            used.insert(name)
            return t
        }
        func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> Matrix {
            let t = try tensor(name, [rows, cols])
            return Matrix(rows: rows, cols: cols, dtype: t.dtype, data: file.bytes(of: t).baseAddress!)
        }
        func vector(_ name: String, _ n: Int) throws -> UnsafePointer<Float> {
            let t = try tensor(name, [n], floatOnly: true)
            return file.bytes(of: t).baseAddress!.assumingMemoryBound(to: Float.self)
        }

        var stateSize = 0
        var scratch = 0
        var maxWidth = 1
        func loadStack(_ layers: [LayerSpec], prefix: String) throws -> Stack {
            var stack = Stack()
            for (i, layer) in layers.enumerated() {
                let p = "\(prefix)layer.\(i)."
                switch layer {
                case .embedding(let v, let d):
                    stack.embedding = EmbeddingWeights(table: try matrix(p + "embeddings", v, d))
                    maxWidth = max(maxWidth, d)
                case .recurrent(let spec):
                    func load(_ prefix: String) throws -> RecurrentWeights {
                        let gh = spec.gates * spec.units
                        let needsRB = spec.cell == .gru && spec.resetAfter
                        if !needsRB && file.tensor(prefix + "recurrent_bias") != nil {
                            throw RecurError(.model, "tensor '\(prefix)recurrent_bias' is only valid for GRU layers with reset_after")
                        }
                        if !spec.peephole && file.tensor(prefix + "peephole") != nil {
                            throw RecurError(.model, "tensor '\(prefix)peephole' given for a layer without peepholes")
                        }
                        let rb: UnsafePointer<Float>? = needsRB ? try vector(prefix + "recurrent_bias", gh) : nil
                        var peep: UnsafePointer<Float>? = nil
                        if spec.peephole {
                            let t = try tensor(prefix + "peephole", [3, spec.units], floatOnly: true)
                            peep = file.bytes(of: t).baseAddress!.assumingMemoryBound(to: Float.self)
                        }
                        return RecurrentWeights(
                            spec: spec,
                            kernel: try matrix(prefix + "kernel", gh, spec.inputSize),
                            recurrent: try matrix(prefix + "recurrent_kernel", gh, spec.units),
                            bias: try vector(prefix + "bias", gh),
                            recurrentBias: rb, peephole: peep)
                    }
                    if spec.bidirectional {
                        stack.recurrent.append((try load(p + "forward."), try load(p + "backward.")))
                    } else {
                        stack.recurrent.append((try load(p), nil))
                    }
                    let dirs = spec.bidirectional ? 2 : 1
                    if prefix.isEmpty { stateSize += dirs * spec.units * (spec.cell == .lstm ? 2 : 1) }
                    scratch = max(scratch, 4 * spec.units + spec.gates * spec.units)
                    maxWidth = max(maxWidth, spec.gates * spec.units, spec.inputSize, spec.outputSize)
                case .dense(let n, let u, let a):
                    stack.head.append(DenseWeights(kernel: try matrix(p + "kernel", u, n), bias: try vector(p + "bias", u), activation: a))
                    maxWidth = max(maxWidth, u, n)
                }
            }
            return stack
        }
        let main = try loadStack(arch.layers, prefix: "")
        let embedding = main.embedding
        let recurrent = main.recurrent
        let head = main.head
        var encoderStack: Stack? = nil
        var sourceVocabulary: Vocabulary? = nil
        if arch.task == "seq2seq" {
            let enc = try loadStack(arch.encoder, prefix: "encoder.")
            guard let e = enc.embedding else { throw RecurError(.model, "a seq2seq encoder's first layer must be an embedding") }
            let src = try Vocabulary(file: file, prefix: "source_tokenizer")
            if e.table.rows != src.count {
                throw RecurError(.model, "the encoder embedding has \(e.table.rows) rows but the source vocabulary has \(src.count) tokens")
            }
            guard vocab.bos != nil, vocab.eos != nil else {
                throw RecurError(.model, "a seq2seq model's target vocabulary needs BOS and EOS tokens")
            }
            encoderStack = enc
            sourceVocabulary = src
        }
        for t in file.tensors where !used.contains(t.name) {
            throw RecurError(.model, "tensor '\(t.name)' is not used by the declared architecture")
        }
        if let e = embedding, e.table.rows != vocab.count {
            throw RecurError(.model, "the embedding has \(e.table.rows) rows but the vocabulary has \(vocab.count) tokens")
        }
        if arch.task == "generate" || arch.task == "seq2seq" {
            let what = arch.task == "generate" ? "a generator" : "a seq2seq decoder"
            guard embedding != nil else { throw RecurError(.model, "\(what)'s first layer must be an embedding") }
            guard !recurrent.isEmpty else { throw RecurError(.model, "\(what) needs at least one recurrent layer") }
            for (i, r) in recurrent.enumerated() where r.0.spec.bidirectional || !r.0.spec.returnSequences {
                throw RecurError(.model, "recurrent layer \(i) is bidirectional or returns only its last step; \(what) steps forward token by token")
            }
            guard case .dense(_, let u, _)? = arch.layers.last, u == vocab.count else {
                throw RecurError(.model, "\(what)'s last layer must be a dense layer with one output per vocabulary token (\(vocab.count))")
            }
        }
        if case .dense(_, let u, let a)? = arch.layers.last {
            outputSize = u
            outputIsProbability = a == .softmax
        } else if case .recurrent(let r)? = arch.layers.last {
            outputSize = r.outputSize
            outputIsProbability = false
        } else {
            throw RecurError(.model, "the last layer must be recurrent or dense")
        }
        self.embedding = embedding
        let pool = KernelPool.forModel(threads: options.threads, layers: recurrent.map { $0.forward })
        self.kernelPool = pool
        self.recurrent = pool.map { KernelPool.apply($0, options.threads, to: recurrent) } ?? recurrent
        self.head = head
        self.encoderStack = encoderStack
        self.sourceVocabulary = sourceVocabulary
        self.stateSize = stateSize
        self.scratchSize = scratch + 4 * maxWidth
        self.maxWidth = maxWidth

        // The first recurrent layer's input projection of every token, when it reads an embedding.
        var table: UnsafeMutablePointer<Float>? = nil
        if let e = embedding, let first = recurrent.first, !first.0.spec.bidirectional, options.inputTableBudget > 0 {
            let v = e.table.rows, g = first.0.gateRows
            let (bytes, o) = (v * g).multipliedReportingOverflow(by: 4)
            if !o && bytes <= options.inputTableBudget {
                let t = UnsafeMutablePointer<Float>.allocate(capacity: v * g)
                // In f32 whatever the weights' types: table = E · Wᵀ + b (docs/QUANTIZATION.md).
                fillInputTable(t, embedding: e.table, kernel: first.0.kernel, bias: first.0.bias)
                table = t
            }
        }
        self.inputTable = table
    }

    deinit {
        inputTable?.deallocate()
    }

    /// The layers of one stack, pointing into the file.
    struct Stack: @unchecked Sendable {
        var embedding: EmbeddingWeights? = nil
        var recurrent: [(forward: RecurrentWeights, backward: RecurrentWeights?)] = []
        var head: [DenseWeights] = []
    }

    /// A new stream state, zeroed.
    public func makeState() -> State { State(model: self) }

    /// The text description of `recur info`.
    public var parameterCount: Int { architecture.parameterCount }

    /// Threads one step of this model uses: the pool's when a recurrent matrix is split across it, else 1
    /// (a model whose matrices are all too small to split runs on the caller's thread).
    public var threads: Int {
        guard let p = kernelPool, recurrent.contains(where: { $0.forward.recurrent.pool != nil }) else { return 1 }
        return p.threads
    }

    /// Whether the precomputed input table is in use.
    public var usesInputTable: Bool { inputTable != nil }

    private static func firstNonFinite(_ file: RecurFile, _ t: TensorInfo) -> String? {
        let b = file.bytes(of: t)
        switch t.dtype {
        case .f32:
            let p = b.bindMemory(to: Float.self)
            for v in p where !v.isFinite { return "\(v)" }
        case .f16:
            let p = b.bindMemory(to: UInt16.self)
            for v in p where !Float16(bitPattern: UInt16(littleEndian: v)).isFinite { return "\(Float16(bitPattern: v))" }
        case .q8, .q4, .q8r:
            break   // checkQuantized
        }
        return nil
    }

    /// The quantized layouts' own rules (FORMAT.md §7): scales whose decoded weights are finite, codes in
    /// range, zero padding. Scales are numerical faults, the rest format faults.
    private static func checkQuantized(_ file: RecurFile, _ t: TensorInfo, rejectNonFinite: Bool) throws {
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
