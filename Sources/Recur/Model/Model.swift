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
    /// Recurrent layers in order.
    let recurrent: [RecurrentLayer]
    let head: [DenseWeights]
    /// A seq2seq decoder's attention over the encoder's outputs, or nil.
    let attention: AttentionWeights?
    /// seq2seq only: the encoder (embedding and recurrent layers).
    let encoderStack: Stack?
    /// seq2seq only: the vocabulary of source texts (`source_tokenizer.*`). The target is `vocabulary`.
    public let sourceVocabulary: Vocabulary?
    /// Workers for large recurrent matrices (Options.threads), or nil.
    let kernelPool: KernelPool?
    /// Precomputed W·embedding[v] + b of the first recurrent layer, vocabulary × gates·H (or nil).
    let inputTable: UnsafeMutablePointer<Float>?
    /// Copies of the f32 matrices of few columns that the kernel level multiplies faster so (ColumnBlocks).
    let columnBlocks: ColumnBlocks
    /// Frame models: x' = (x − mean) ⊙ scale before layer 0 (`input.mean`, `input.scale`), or nil.
    let normalization: (mean: UnsafePointer<Float>, scale: UnsafePointer<Float>)?

    /// What the output vector holds.
    public enum OutputKind: Sendable {
        /// Scores of a linear head (a generator's next token, or classes before softmax).
        case logits
        /// A softmax head: probabilities of exclusive classes.
        case probabilities
        /// A sigmoid head: one probability per output (binary or multi-label).
        case independentProbabilities
        /// Real values: a regress model, or a model without a dense head.
        case values

        /// As `recur info` and RECUR_OUTPUT_* name it: logits, probabilities, independent, values.
        public var name: String {
            switch self {
            case .logits: return "logits"
            case .probabilities: return "probabilities"
            case .independentProbabilities: return "independent"
            case .values: return "values"
            }
        }
    }
    public let outputKind: OutputKind

    /// Floats of recurrent state (h, and c for LSTM) of one stream.
    public let stateSize: Int
    /// Width of the model's output vector (the vocabulary size for generators).
    public let outputSize: Int
    /// Whether the output layer applies softmax (outputs are probabilities, not logits).
    public let outputIsProbability: Bool
    /// Why a stream cannot be stepped on tokens, and on frames (nil: it can), found at load.
    let stepRefusals: (tokens: String?, frames: String?)
    /// Largest scratch needed by a step.
    let scratchSize: Int
    /// The dtype and buffer size (rk_x_bytes) of x's quantization that a step's head and the next step's
    /// recurrent product share (`State.carried`): the head's first matrix reads the last recurrent layer's h
    /// and has its recurrent matrix's dtype, a dtype that quantizes x, and neither is split across the worker
    /// pool; nil otherwise (and for attention decoders, whose head reads the attentional output).
    let carriedX: (dtype: Int32, bytes: Int)?
    let maxWidth: Int

    public convenience init(path: String, options: Options = Options()) throws {
        var timings = LoadTimings()
        try self.init(path: path, options: options, timings: &timings)
    }

    /// `init(path:options:)`, recording in `timings` where the time of the open went.
    public convenience init(path: String, options: Options = Options(), timings: inout LoadTimings) throws {
        let start = LoadTimings.now()
        let file = try RecurFile.open(path: path, options: RecurFile.Options(verifyChecksum: options.verifyChecksum,
                                                                         mapFile: options.mapFile), timings: &timings)
        try self.init(file: file, options: options, timings: &timings)
        timings.total = LoadTimings.now() - start
    }

    /// Loads from a caller's bytes; they are copied, so the caller may free them afterwards.
    public convenience init(bytes: UnsafeRawBufferPointer, options: Options = Options()) throws {
        let storage = try FileStorage(copying: bytes)
        let file = try RecurFile(storage: storage, options: RecurFile.Options(verifyChecksum: options.verifyChecksum))
        try self.init(file: file, options: options)
    }

    /// Reads the architecture and vocabularies, binds every tensor they declare (TensorBinder), checks
    /// that the layers suit the task, then prepares the worker pool and the input table.
    public convenience init(file: RecurFile, options: Options = Options()) throws {
        var timings = LoadTimings()
        try self.init(file: file, options: options, timings: &timings)
    }

    /// `init(file:options:)`, recording the architecture's, the validation's and the input table's time.
    init(file: RecurFile, options: Options, timings: inout LoadTimings) throws {
        try Self.checkThreads(options.threads)
        self.file = file
        let t0 = LoadTimings.now()
        let arch = try Architecture(file: file)
        let vocab = arch.input == .tokens ? try Vocabulary(file: file) : Vocabulary.empty
        self.architecture = arch
        self.vocabulary = vocab
        timings.architecture = LoadTimings.now() - t0

        var binder = TensorBinder(file: file, rejectNonFinite: options.rejectNonFinite)
        defer { timings.validation = binder.validationTime }
        let bound = try binder.stack(arch.layers, prefix: "")
        normalization = try binder.normalization(arch.input)
        var encoder: Stack? = nil
        if arch.task == .seq2seq {
            let (enc, src) = try Self.encoder(arch, file, &binder, target: vocab)
            encoder = enc
            sourceVocabulary = src
        } else {
            sourceVocabulary = nil
        }
        try binder.refuseUnused()
        try Self.checkTask(arch, bound, vocab)
        (outputSize, outputIsProbability, outputKind) = try Self.output(arch)

        let pool = KernelPool.forModel(threads: options.threads, layers: bound.recurrent.map(\.forward))
        self.kernelPool = pool
        var pooled = bound
        if let pool { pooled.recurrent = KernelPool.apply(pool, options.threads, to: bound.recurrent) }
        let t1 = LoadTimings.now()
        self.inputTable = Self.inputTable(pooled, budget: options.inputTableBudget)
        timings.inputTable = LoadTimings.now() - t1
        let (blocks, stacks) = ColumnBlocks.attach([pooled] + (encoder.map { [$0] } ?? []), inputTable: inputTable != nil)
        let main = stacks[0]
        self.columnBlocks = blocks
        self.encoderStack = encoder == nil ? nil : stacks[1]
        self.embedding = main.embedding
        self.recurrent = main.recurrent
        self.head = main.head
        self.attention = main.attention
        self.stateSize = main.recurrent.reduce(0) { $0 + $1.stateFloats }
        let widths = Self.widths(arch.layers + arch.encoder)
        self.scratchSize = widths.scratch + 4 * widths.maxWidth
        self.maxWidth = widths.maxWidth
        self.stepRefusals = (Self.stepRefusal(arch, main, frames: false), Self.stepRefusal(arch, main, frames: true))
        self.carriedX = Self.carriedX(recurrent: recurrent, head: head, attention: main.attention != nil)
    }

    /// `carriedX` for these layers.
    static func carriedX(recurrent: [RecurrentLayer], head: [DenseWeights], attention: Bool) -> (dtype: Int32, bytes: Int)? {
        guard !attention, let last = recurrent.last, last.backward == nil, let d = head.first else { return nil }
        let u = last.forward.recurrent, w = d.kernel
        guard u.dtype == w.dtype, u.dtype.quantizesActivations, u.pool == nil, w.pool == nil, w.cols == u.cols else { return nil }
        let dtype = Int32(u.dtype.rawValue)
        return (dtype, rk_x_bytes(dtype, u.cols))
    }

    /// Why streams of this model cannot be stepped on tokens (or frames), or nil when they can.
    static func stepRefusal(_ arch: Architecture, _ main: Stack, frames: Bool) -> String? {
        switch (arch.input.frameSize, frames) {
        case (let f?, false): return "this model reads frames of \(f) floats, not tokens; step it with frames"
        case (nil, true): return "this model reads tokens, not frames"
        default: break
        }
        let what = frames ? "frame by frame" : "token by token"
        guard frames || main.embedding != nil, !main.recurrent.isEmpty else {
            return "this model cannot be stepped \(what) (it needs an embedding and a recurrent layer)"
        }
        if main.recurrent.contains(where: { $0.backward != nil }) {
            return "this model has a bidirectional layer; it runs on whole sequences, not \(what)"
        }
        return nil
    }

    deinit {
        inputTable?.deallocate()
        columnBlocks.deallocate()
    }

    /// The layers of one stack, pointing into the file.
    struct Stack: @unchecked Sendable {
        var embedding: EmbeddingWeights? = nil
        var recurrent: [RecurrentLayer] = []
        var head: [DenseWeights] = []
        var attention: AttentionWeights? = nil
    }

    static func checkThreads(_ threads: Int) throws {
        if let problem = KernelPool.environmentProblem { throw RecurError(.invalidArgument, problem) }
        guard (0...KernelPool.maxThreads).contains(threads) else {
            throw RecurError(.invalidArgument, "threads must be 0 (automatic) or 1...\(KernelPool.maxThreads) (got \(threads))")
        }
    }

    /// A seq2seq model's encoder stack and source vocabulary.
    static func encoder(_ arch: Architecture, _ file: RecurFile, _ binder: inout TensorBinder,
                        target: Vocabulary) throws -> (Stack, Vocabulary) {
        let enc = try binder.stack(arch.encoder, prefix: "encoder.")
        guard let e = enc.embedding else { throw RecurError(.model, "a seq2seq encoder's first layer must be an embedding") }
        let src = try Vocabulary(file: file, prefix: "source_tokenizer")
        if e.table.rows != src.count {
            throw RecurError(.model, "the encoder embedding has \(e.table.rows) rows but the source vocabulary has \(src.count) tokens")
        }
        guard target.bos != nil, target.eos != nil else {
            throw RecurError(.model, "a seq2seq model's target vocabulary needs BOS and EOS tokens")
        }
        return (enc, src)
    }

    /// The rules a task adds to the layer list: the embedding fits the vocabulary; models stepped token by
    /// token (generate, a seq2seq decoder) are forward-only, return every step and end in one output per token.
    static func checkTask(_ arch: Architecture, _ main: Stack, _ vocab: Vocabulary) throws {
        if let e = main.embedding, e.table.rows != vocab.count {
            throw RecurError(.model, "the embedding has \(e.table.rows) rows but the vocabulary has \(vocab.count) tokens")
        }
        guard arch.task.stepsTokenByToken else { return }
        let what = arch.task == .generate ? "a generator" : "a seq2seq decoder"
        guard main.embedding != nil else { throw RecurError(.model, "\(what)'s first layer must be an embedding") }
        guard !main.recurrent.isEmpty else { throw RecurError(.model, "\(what) needs at least one recurrent layer") }
        for (i, r) in main.recurrent.enumerated() where r.spec.bidirectional || !r.spec.returnSequences {
            throw RecurError(.model, "recurrent layer \(i) is bidirectional or returns only its last step; \(what) steps forward token by token")
        }
        guard case .dense(_, let u, _)? = arch.layers.last, u == vocab.count else {
            throw RecurError(.model, "\(what)'s last layer must be a dense layer with one output per vocabulary token (\(vocab.count))")
        }
    }

    /// The output's width, whether it is a probability (a softmax head), and what it holds.
    static func output(_ arch: Architecture) throws -> (Int, Bool, OutputKind) {
        switch arch.layers.last {
        case .dense(_, let u, let a)?:
            let kind: OutputKind = a == .softmax ? .probabilities : a == .sigmoid ? .independentProbabilities
                : arch.task == .regress ? .values : .logits
            return (u, a == .softmax, kind)
        case .recurrent(let r)?: return (r.outputSize, false, .values)
        default: throw RecurError(.model, "the last layer must be recurrent or dense")
        }
    }

    /// The widest vector any layer reads or writes, and the largest scratch of a recurrent step.
    static func widths(_ layers: [LayerSpec]) -> (maxWidth: Int, scratch: Int) {
        var maxWidth = 1, scratch = 0
        for layer in layers {
            switch layer {
            case .embedding(_, let d): maxWidth = max(maxWidth, d)
            case .recurrent(let spec):
                scratch = max(scratch, 4 * spec.units + spec.gates * spec.units)
                maxWidth = max(maxWidth, spec.gates * spec.units, spec.inputSize, spec.outputSize)
            case .dense(let n, let u, _): maxWidth = max(maxWidth, u, n)
            case .attention(let a): maxWidth = max(maxWidth, a.outputSize, a.memorySize + a.inputSize, a.attentionUnits)
            }
        }
        return (maxWidth, scratch)
    }

    /// The first recurrent layer's input projection of every token, when it reads an embedding and the
    /// table fits `budget` bytes: table = E · Wᵀ + b, in f32 whatever the weights' types
    /// (docs/QUANTIZATION.md).
    static func inputTable(_ main: Stack, budget: Int) -> UnsafeMutablePointer<Float>? {
        guard let e = main.embedding, let first = main.recurrent.first, first.backward == nil, budget > 0,
              first.forward.kernel.cols == e.table.cols else { return nil }   // not with attention's input feeding
        let v = e.table.rows, g = first.forward.gateRows
        let (bytes, o) = (v * g).multipliedReportingOverflow(by: 4)
        guard !o && bytes <= budget else { return nil }
        let t = UnsafeMutablePointer<Float>.allocate(capacity: v * g)
        fillInputTable(t, embedding: e.table, kernel: first.forward.kernel, bias: first.forward.bias)
        return t
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

    /// What a step reads (`Architecture.input`).
    public var input: InputKind { architecture.input }
    /// The floats of one frame (frame models), or nil.
    public var frameSize: Int? { architecture.input.frameSize }

    /// The token ids of `text` in this model's vocabulary; a frame model refuses text.
    public func encode(_ text: String, unknown: Vocabulary.UnknownPolicy = .error) throws -> [Int] {
        if let f = frameSize { throw RecurError(.unsupported, "this model reads frames of \(f) floats, not tokens or text") }
        return try vocabulary.encode(text, unknown: unknown)
    }

    /// Whether streams of this model can be stepped (token by token, or frame by frame): it has a
    /// recurrent layer, none bidirectional, and reads frames or an embedding; and it has no attention layer
    /// (an attention decoder's state comes from `encode(source:)`, not `makeState()`).
    public var canStep: Bool {
        !recurrent.isEmpty && recurrent.allSatisfy { $0.backward == nil } && (embedding != nil || frameSize != nil)
            && attention == nil
    }
}
