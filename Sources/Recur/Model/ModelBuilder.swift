/// Builds model files from f32 weights: used by the trainer, the converters' tests and `recur create`.
///
///     let arch = Architecture.generator(vocabulary: 40, embedding: 16, cells: [.gru], hidden: 32)
///     var b = ModelBuilder(architecture: arch, vocabulary: vocab)
///     b.randomize(seed: 7)
///     try b.writer().write(to: "tiny.recur")
public struct ModelBuilder {
    public var architecture: Architecture
    public var vocabulary: Vocabulary
    /// seq2seq only: the source vocabulary (written as `source_tokenizer.*`).
    public var sourceVocabulary: Vocabulary? = nil
    /// Named f32 tensors with their shapes.
    public var tensors: [(name: String, shape: [Int], values: [Float])] = []
    /// Extra metadata (provenance and free-form keys).
    public var metadata: [(String, MetaValue)] = []

    public init(architecture: Architecture, vocabulary: Vocabulary) {
        self.architecture = architecture
        self.vocabulary = vocabulary
    }

    /// The tensors the architecture needs, with their shapes, in file order.
    public static func tensorShapes(_ arch: Architecture) -> [(String, [Int])] {
        shapes(arch.encoder, prefix: "encoder.") + shapes(arch.layers, prefix: "")
    }

    static func shapes(_ layers: [LayerSpec], prefix: String) -> [(String, [Int])] {
        var out: [(String, [Int])] = []
        for (i, layer) in layers.enumerated() {
            let p = "\(prefix)layer.\(i)."
            switch layer {
            case .embedding(let v, let d):
                out.append((p + "embeddings", [v, d]))
            case .recurrent(let r):
                let prefixes = r.bidirectional ? [p + "forward.", p + "backward."] : [p]
                let g = r.gates * r.units
                for q in prefixes {
                    out.append((q + "kernel", [g, r.inputSize]))
                    out.append((q + "recurrent_kernel", [g, r.units]))
                    out.append((q + "bias", [g]))
                    out += r.extraTensors.map { (q + $0.name, $0.shape) }
                }
            case .dense(let n, let u, _):
                out.append((p + "kernel", [u, n]))
                out.append((p + "bias", [u]))
            case .attention(let a):
                out += a.tensors.map { (p + $0.name, $0.shape) }
            }
        }
        return out
    }

    /// Fills every tensor with uniform random values in ±scale/√fan_in (deterministic for a seed).
    public mutating func randomize(seed: UInt64, scale: Float = 1) {
        var rng = SplitMix64(seed: seed)
        tensors = Self.tensorShapes(architecture).map { name, shape in
            let n = shape.reduce(1, *)
            let fan = shape.count > 1 ? shape.last! : max(shape[0], 1)
            let bound = name.hasSuffix("embeddings") ? Float(1) : scale / Float(fan).squareRoot()
            let values = (0..<n).map { _ in Float(rng.nextUnit() * 2 - 1) * bound }
            return (name, shape, values)
        }
    }

    /// Sets one tensor's values (replacing a previous one of the same name).
    public mutating func set(_ name: String, shape: [Int], values: [Float]) {
        if let i = tensors.firstIndex(where: { $0.name == name }) {
            tensors[i] = (name, shape, values)
        } else {
            tensors.append((name, shape, values))
        }
    }

    /// A writer holding the architecture, vocabulary, metadata and tensors (as f32, or as `dtypes[name]`).
    public func writer(dtypes: [String: DType] = [:]) -> RecurWriter {
        var w = RecurWriter()
        w.set("general.producer", .string("recur \(RecurVersion.string)"))
        for (k, v) in architecture.metadata { w.set(k, v) }
        if architecture.input == .tokens { for (k, v) in vocabulary.metadata { w.set(k, v) } }
        if let src = sourceVocabulary { for (k, v) in src.metadata(prefix: "source_tokenizer") { w.set(k, v) } }
        for (k, v) in metadata { w.set(k, v) }
        for t in tensors {
            let dt = dtypes[t.name] ?? .f32
            if dt == .f32 {
                w.addTensor(t.name, shape: t.shape, values: t.values)
            } else {
                let cols = t.shape.last!
                w.addTensor(t.name, dtype: dt, shape: t.shape,
                            bytes: quantizeMatrix(t.values, rows: t.values.count / cols, cols: cols, to: dt))
            }
        }
        return w
    }
}

extension Architecture {
    /// Embedding → recurrent layers → Dense(vocabulary), the character generator's shape.
    public static func generator(vocabulary: Int, embedding: Int, cells: [RecurrentSpec.Template], hidden: Int) -> Architecture {
        var layers: [LayerSpec] = [.embedding(vocabulary: vocabulary, dimension: embedding)]
        var width = embedding
        for c in cells {
            var r = RecurrentSpec(cell: c.cell, inputSize: width, units: hidden)
            r.resetAfter = c.resetAfter
            r.peephole = c.peephole
            r.activation = c.activation
            layers.append(.recurrent(r))
            width = hidden
        }
        layers.append(.dense(inputSize: width, units: vocabulary, activation: .linear))
        return Architecture(task: .generate, layers: layers)
    }
}

extension Architecture {
    /// Encoder [Embedding(source), recurrent layers] → decoder [Embedding(target), recurrent layers,
    /// optional Attention, Dense(target vocabulary)], the translator's shape. Encoder layer i and decoder
    /// layer i are of one cell; with `bidirectionalEncoder` (attention only) every encoder layer is
    /// bidirectional (concat) and the decoder's layers are 2 × `hidden` wide. `attention`'s `inputSize`
    /// and `memorySize` are set here from the stacks (Q = the decoder's units, M = the encoder's output),
    /// and with input feeding the first decoder layer reads the embedding and the attention's output.
    /// Checked by `validate()`.
    ///
    ///     let arch = try Architecture.translator(source: 40, target: 40, embedding: 16, cells: [.init(cell: .gru)],
    ///                                            hidden: 32, attention: AttentionSpec(score: .general, inputSize: 0,
    ///                                            memorySize: 0, units: 32, inputFeeding: true))
    public static func translator(source: Int, target: Int, embedding: Int, cells: [RecurrentSpec.Template], hidden: Int,
                                  bidirectionalEncoder: Bool = false, attention: AttentionSpec? = nil) throws -> Architecture {
        func spec(_ c: RecurrentSpec.Template, _ input: Int, _ units: Int) -> RecurrentSpec {
            var r = RecurrentSpec(cell: c.cell, inputSize: input, units: units)
            r.resetAfter = c.resetAfter; r.peephole = c.peephole; r.activation = c.activation
            return r
        }
        let decoderUnits = bidirectionalEncoder ? 2 * hidden : hidden
        var att = attention
        att?.inputSize = decoderUnits
        att?.memorySize = decoderUnits
        if att?.combine == AttentionCombine.none { att?.units = 2 * decoderUnits }
        var enc: [LayerSpec] = [.embedding(vocabulary: source, dimension: embedding)]
        var dec: [LayerSpec] = [.embedding(vocabulary: target, dimension: embedding)]
        var (encWidth, decWidth) = (embedding, embedding)
        for (i, c) in cells.enumerated() {
            var e = spec(c, encWidth, hidden)
            e.bidirectional = bidirectionalEncoder
            enc.append(.recurrent(e))
            encWidth = e.outputSize
            let fed = i == 0 && att?.inputFeeding == true ? att!.outputSize : 0
            dec.append(.recurrent(spec(c, decWidth + fed, decoderUnits)))
            decWidth = decoderUnits
        }
        if let a = att {
            dec.append(.attention(a))
            decWidth = a.outputSize
        }
        dec.append(.dense(inputSize: decWidth, units: target, activation: .linear))
        let arch = Architecture(task: .seq2seq, layers: dec, encoder: enc)
        try arch.validate()
        return arch
    }
}

extension RecurrentSpec {
    /// The names `recur train --cell` and `recur create --cell` accept.
    public struct Template: Sendable {
        public var cell: CellKind
        public var resetAfter = true
        public var peephole = false
        public var activation: Activation = .tanh

        public init(cell: CellKind, resetAfter: Bool = true, peephole: Bool = false, activation: Activation = .tanh) {
            self.cell = cell; self.resetAfter = resetAfter; self.peephole = peephole; self.activation = activation
        }

        public static let names = ["gru", "gru-reset-before", "lstm", "peephole-lstm", "rnn", "rnn-relu"]

        public init?(name: String) {
            switch name {
            case "gru": self.init(cell: .gru)
            case "gru-reset-before": self.init(cell: .gru, resetAfter: false)
            case "lstm": self.init(cell: .lstm)
            case "peephole-lstm": self.init(cell: .lstm, peephole: true)
            case "rnn": self.init(cell: .rnn)
            case "rnn-relu": self.init(cell: .rnn, activation: .relu)
            default: return nil
            }
        }
    }
}
