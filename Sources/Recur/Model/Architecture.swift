/// Element-wise activation functions. Raw values are the names used in the file's metadata.
public enum Activation: String, Sendable, CaseIterable {
    case linear
    case relu
    case tanh
    case sigmoid
    /// Keras 2 / tf.keras: max(0, min(1, 0.2·x + 0.5)).
    case hardSigmoidKeras2 = "hard_sigmoid_keras2"
    /// Keras 3: max(0, min(1, x/6 + 0.5)) = relu6(x + 3) / 6.
    case hardSigmoidKeras3 = "hard_sigmoid_keras3"
    /// Only valid for Dense layers: exp(x_i) / Σ exp(x_j) over the layer's outputs.
    case softmax
}

/// The recurrent cells.
public enum CellKind: String, Sendable {
    /// h' = act(W·x + b + U·h)
    case rnn
    /// Gated recurrent unit; gate rows ordered r, z, n. See `GRUCell`.
    case gru
    /// Long short-term memory; gate rows ordered i, f, g, o. See `LSTMCell`.
    case lstm
}

/// How a bidirectional layer merges its forward and backward outputs.
public enum MergeMode: String, Sendable {
    case concat, sum, mul, ave
}

/// The hyperparameters of a recurrent layer.
public struct RecurrentSpec: Sendable, Equatable {
    public var cell: CellKind
    public var inputSize: Int
    public var units: Int
    /// Candidate / output activation (tanh unless the model says otherwise; SimpleRNN may use relu).
    public var activation: Activation = .tanh
    /// Gate activation (GRU and LSTM).
    public var recurrentActivation: Activation = .sigmoid
    /// GRU only: apply the reset gate after the recurrent matrix product (PyTorch, cuDNN, Keras
    /// `reset_after=True`) rather than before it (Keras `reset_after=False`, the original paper).
    public var resetAfter: Bool = true
    /// LSTM only: gates also see the cell state through diagonal (peephole) weights.
    public var peephole: Bool = false
    /// Whether the layer outputs every step (true) or only the last one (false).
    public var returnSequences: Bool = true
    /// Bidirectional layers run a forward and a backward copy of the cell over the whole sequence.
    public var bidirectional: Bool = false
    public var mergeMode: MergeMode = .concat

    public init(cell: CellKind, inputSize: Int, units: Int, activation: Activation = .tanh,
                recurrentActivation: Activation = .sigmoid, resetAfter: Bool = true, peephole: Bool = false,
                returnSequences: Bool = true, bidirectional: Bool = false, mergeMode: MergeMode = .concat) {
        self.cell = cell; self.inputSize = inputSize; self.units = units; self.activation = activation
        self.recurrentActivation = recurrentActivation; self.resetAfter = resetAfter; self.peephole = peephole
        self.returnSequences = returnSequences; self.bidirectional = bidirectional; self.mergeMode = mergeMode
    }

    /// Width of the layer's output per step.
    public var outputSize: Int {
        guard bidirectional else { return units }
        return mergeMode == .concat ? 2 * units : units
    }
}

/// How an attention layer scores an encoder position s against the decoder's state h_t (metadata
/// `layer.N.score`, FORMAT.md §13.9).
public enum AttentionScore: String, Sendable, CaseIterable {
    /// h_tᵀ h̄_s (Luong "dot"; the state and the memory have the same width).
    case dot
    /// h_tᵀ W_a h̄_s (Luong "general").
    case general
    /// v_aᵀ tanh(W_q h_t + W_k h̄_s [+ b]) (Bahdanau; Luong "concat").
    case additive
}

/// What an attention layer outputs (metadata `layer.N.combine`).
public enum AttentionCombine: String, Sendable, CaseIterable {
    /// The attentional state h̃_t = tanh(W_c [c_t; h_t] + b_c) (Luong et al. 2015).
    case tanh
    /// [c_t; h_t] as it is (the Keras examples' `Attention` + `Concatenate`), read by the dense head.
    case none
}

/// The hyperparameters of a seq2seq decoder's attention layer over the encoder's per-step outputs.
public struct AttentionSpec: Sendable, Equatable {
    public var score: AttentionScore
    /// Q, the width of the query h_t: the last decoder recurrent layer's units (`layer.N.input_size`).
    public var inputSize: Int
    /// M, the width of one memory row h̄_s: the last encoder recurrent layer's output (`layer.N.memory_size`).
    public var memorySize: Int
    /// A, additive scoring only: the width of W_q h_t and W_k h̄_s (`layer.N.attention_units`); 0 otherwise.
    public var attentionUnits: Int
    /// Additive scoring only: a bias b inside the tanh (`layer.N.use_bias`, tensor `score_bias`).
    public var useBias: Bool
    public var combine: AttentionCombine
    /// combine = tanh: the width of h̃_t (`layer.N.units`). Ignored with `none`, whose output is M + Q wide.
    public var units: Int
    /// The decoder's first recurrent layer reads [embedding; h̃_{t−1}] (`layer.N.input_feeding`; h̃_0 = 0).
    public var inputFeeding: Bool

    public init(score: AttentionScore, inputSize: Int, memorySize: Int, attentionUnits: Int = 0, useBias: Bool = false,
                combine: AttentionCombine = .tanh, units: Int = 0, inputFeeding: Bool = false) {
        self.score = score; self.inputSize = inputSize; self.memorySize = memorySize
        self.attentionUnits = attentionUnits; self.useBias = useBias; self.combine = combine
        self.units = combine == .none ? memorySize + inputSize : units; self.inputFeeding = inputFeeding
    }

    /// Width of the layer's output: units (tanh), or M + Q ([c_t; h_t]).
    public var outputSize: Int { combine == .tanh ? units : memorySize + inputSize }

    /// Width of the precomputed keys (W_a h̄_s: Q; W_k h̄_s + b: A), or 0 for dot scoring (the memory itself).
    public var keyWidth: Int {
        switch score {
        case .dot: return 0
        case .general: return inputSize
        case .additive: return attentionUnits
        }
    }

    /// The layer's tensors (after `layer.N.`) and their shapes, in file order (FORMAT.md §12).
    public var tensors: [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = []
        switch score {
        case .dot: break
        case .general: out.append(("score_kernel", [inputSize, memorySize]))
        case .additive:
            out.append(("query_kernel", [attentionUnits, inputSize]))
            out.append(("key_kernel", [attentionUnits, memorySize]))
            out.append(("score_vector", [attentionUnits]))
            if useBias { out.append(("score_bias", [attentionUnits])) }
        }
        if combine == .tanh {
            out.append(("kernel", [units, memorySize + inputSize]))
            out.append(("bias", [units]))
        }
        return out
    }

    var parameters: Int { tensors.reduce(0) { $0 + $1.shape.reduce(1, *) } }
}

/// One layer of a model.
public enum LayerSpec: Sendable, Equatable {
    case embedding(vocabulary: Int, dimension: Int)
    case recurrent(RecurrentSpec)
    case dense(inputSize: Int, units: Int, activation: Activation)
    /// A seq2seq decoder's attention over the encoder's outputs (format 5), between the decoder's
    /// recurrent layers and its dense head.
    case attention(AttentionSpec)

    public var kindName: String {
        switch self {
        case .embedding: return "embedding"
        case .recurrent(let r): return r.cell.rawValue
        case .dense: return "dense"
        case .attention: return "attention"
        }
    }
}

/// What a model is for: metadata `model.task`, the raw value.
public enum Task: String, Sendable, CaseIterable {
    /// Next-token prediction: stepped token by token and sampled into text.
    case generate
    /// One set of class probabilities for a whole sequence.
    case classify
    /// One label per token of a sequence.
    case tag
    /// An encoder reads the source; a decoder stepped from its final state emits the target (translation).
    case seq2seq
    /// Real values at every step (a forecaster's next value or next k values).
    case regress

    /// What a model of this task is, in words.
    public var noun: String {
        switch self {
        case .generate: return "a text generator"
        case .classify: return "a classifier"
        case .tag: return "a tagger"
        case .seq2seq: return "a translator (encoder-decoder)"
        case .regress: return "a regressor (values at every step)"
        }
    }

    /// The call that runs such a model (a method of `Model`, a C function `recur_<call>`, a command `recur <call>`).
    public var call: String {
        switch self {
        case .generate: return "generate"
        case .classify: return "classify"
        case .tag: return "tag"
        case .seq2seq: return "translate"
        case .regress: return "predict"
        }
    }

    /// Whether the main stack is stepped token by token (a generator, a seq2seq decoder).
    public var stepsTokenByToken: Bool { self == .generate || self == .seq2seq }
}

/// What a model steps on (metadata `model.input`).
public enum InputKind: Sendable, Equatable {
    /// Token ids of the model's vocabulary, read by the embedding of layer 0.
    case tokens
    /// Vectors of `size` floats (metadata `model.frame_size`), read by the first recurrent layer.
    case frames(size: Int)

    /// The metadata value of `model.input`.
    public var name: String {
        switch self {
        case .tokens: return "tokens"
        case .frames: return "frames"
        }
    }

    /// The floats of a frame, or nil for token models.
    public var frameSize: Int? {
        if case .frames(let f) = self { return f }
        return nil
    }
}

/// How a classifier turns the sequence into the vector its head reads (metadata `model.pooling`).
public enum Pooling: String, Sendable, CaseIterable {
    /// The last recurrent layer's output at the last step (it returns only that step).
    case last
    /// The mean over the steps that are not padding of the last recurrent layer's outputs.
    case mean
}

/// The layer list of a model, read from and written to the file's `model.*` and `layer.N.*` metadata.
public struct Architecture: Sendable, Equatable {
    /// What the model is for.
    public var task: Task
    /// The main stack: for "seq2seq" models, the decoder (stepped token by token).
    public var layers: [LayerSpec]
    /// "seq2seq" only: the encoder stack (embedding and recurrent layers) whose final state starts the
    /// decoder. Metadata `encoder.layer_count` / `encoder.layer.N.*`, tensors `encoder.layer.N.*`.
    public var encoder: [LayerSpec]
    /// Names of the output classes or tags ("classify" and "tag"), metadata `model.labels`.
    public var labels: [String]
    /// "seq2seq" only: the encoder reads the source tokens last first (a final EOS stays last), metadata
    /// `encoder.reverse_source` (Sutskever et al. 2014). See `encoderInput(_:pad:eos:)`.
    public var reverseSource: Bool
    /// Tokens or frames (`model.input`, `model.frame_size`).
    public var input: InputKind = .tokens
    /// `classify` only: last step or mean over the steps (`model.pooling`).
    public var pooling: Pooling = .last
    /// Frame models: a frame whose every feature equals this value is padding (`input.mask_value`,
    /// as Keras' `Masking`).
    public var maskValue: Float? = nil

    public init(task: Task = .generate, layers: [LayerSpec], encoder: [LayerSpec] = [], labels: [String] = [],
                reverseSource: Bool = false) {
        self.task = task
        self.layers = layers
        self.encoder = encoder
        self.labels = labels
        self.reverseSource = reverseSource
    }

    /// The token order the encoder reads for a source: PAD tokens dropped, then, with `reverseSource`, the
    /// tokens reversed except a final EOS, which stays last ("a b c EOS" is read as "c b a EOS").
    public func encoderInput(_ source: [Int], pad: Int?, eos: Int?) -> [Int] {
        var tokens = pad.map { p in source.filter { $0 != p } } ?? source
        guard reverseSource, !tokens.isEmpty else { return tokens }
        let end = tokens.last == eos ? tokens.count - 1 : tokens.count
        tokens[0..<end].reverse()
        return tokens
    }

    /// Metadata entries describing this architecture.
    public var metadata: [(String, MetaValue)] {
        var out: [(String, MetaValue)] = [("model.task", .string(task.rawValue))]
        if !labels.isEmpty { out.append(("model.labels", .strings(labels))) }
        out += Self.layerMetadata(layers, prefix: "")
        if !encoder.isEmpty { out += Self.layerMetadata(encoder, prefix: "encoder.") }
        if reverseSource { out.append(("encoder.reverse_source", .bool(true))) }
        if case .frames(let f) = input {
            out.append(("model.input", .string(input.name)))
            out.append(("model.frame_size", .int(Int64(f))))
        }
        if pooling != .last { out.append(("model.pooling", .string(pooling.rawValue))) }
        if let m = maskValue { out.append(("input.mask_value", .float(Double(m)))) }
        return out
    }

    static func layerMetadata(_ layers: [LayerSpec], prefix: String) -> [(String, MetaValue)] {
        var out: [(String, MetaValue)] = [((prefix.isEmpty ? "model." : prefix) + "layer_count", .int(Int64(layers.count)))]
        for (i, layer) in layers.enumerated() {
            let p = "\(prefix)layer.\(i)."
            out.append((p + "kind", .string(layer.kindName)))
            switch layer {
            case .embedding(let v, let d):
                out.append((p + "input_dim", .int(Int64(v))))
                out.append((p + "output_dim", .int(Int64(d))))
            case .recurrent(let r):
                out.append((p + "input_size", .int(Int64(r.inputSize))))
                out.append((p + "units", .int(Int64(r.units))))
                out.append((p + "activation", .string(r.activation.rawValue)))
                out += r.cellOptions.map { (p + $0.key, $0.value) }
                out.append((p + "return_sequences", .bool(r.returnSequences)))
                out.append((p + "bidirectional", .bool(r.bidirectional)))
                if r.bidirectional { out.append((p + "merge_mode", .string(r.mergeMode.rawValue))) }
            case .dense(let n, let u, let a):
                out.append((p + "input_size", .int(Int64(n))))
                out.append((p + "units", .int(Int64(u))))
                out.append((p + "activation", .string(a.rawValue)))
            case .attention(let a):
                out.append((p + "score", .string(a.score.rawValue)))
                out.append((p + "input_size", .int(Int64(a.inputSize))))
                out.append((p + "memory_size", .int(Int64(a.memorySize))))
                if a.score == .additive {
                    out.append((p + "attention_units", .int(Int64(a.attentionUnits))))
                    out.append((p + "use_bias", .bool(a.useBias)))
                }
                out.append((p + "combine", .string(a.combine.rawValue)))
                out.append((p + "units", .int(Int64(a.outputSize))))
                out.append((p + "input_feeding", .bool(a.inputFeeding)))
            }
        }
        return out
    }

    /// The decoder's attention layer, when it has one.
    public var attention: AttentionSpec? {
        for l in layers { if case .attention(let a) = l { return a } }
        return nil
    }

    /// Reads the architecture from a file's metadata, checking every value.
    public init(file: RecurFile) throws {
        let name = file.value("model.task")?.stringValue ?? Task.generate.rawValue
        guard let task = Task(rawValue: name) else {
            throw RecurError(.model, "metadata 'model.task': unknown task '\(name)' (known: \(Task.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.task = task
        if let l = file.value("model.labels") {
            guard let names = l.stringsValue else { throw RecurError(.model, "metadata 'model.labels' must be an array of strings") }
            labels = names
        } else {
            labels = []
        }
        layers = try Self.readLayers(file, prefix: "")
        encoder = task == .seq2seq ? try Self.readLayers(file, prefix: "encoder.") : []
        if let v = file.value("encoder.reverse_source") {
            guard let b = v.boolValue else { throw RecurError(.model, "metadata 'encoder.reverse_source' must be a boolean") }
            reverseSource = b
        } else {
            reverseSource = false
        }
        try readInput(file)
        if attention != nil && file.versionMajor < 5 {
            throw RecurError(.model, "an attention layer is a format 5 feature, but the file says version \(file.versionMajor).\(file.versionMinor)")
        }
        try validate()
    }

    /// `model.input`, `model.frame_size`, `model.pooling` and `input.mask_value`.
    mutating func readInput(_ file: RecurFile) throws {
        func string(_ key: String) throws -> String? {
            guard let v = file.value(key) else { return nil }
            guard let s = v.stringValue else { throw RecurError(.model, "metadata '\(key)' must be a string") }
            return s
        }
        switch try string("model.input") ?? "tokens" {
        case "tokens":
            if file.value("model.frame_size") != nil { throw RecurError(.model, "metadata 'model.frame_size' is only for frame models (model.input = frames)") }
            input = .tokens
        case "frames":
            guard let v = file.value("model.frame_size") else { throw RecurError(.model, "missing metadata key 'model.frame_size' (the floats of one frame)") }
            guard let f = v.intValue, f >= 1, f <= Int64(RecurFormat.maxDimension) else {
                throw RecurError(.model, "metadata 'model.frame_size' must be an integer in 1...\(RecurFormat.maxDimension)")
            }
            input = .frames(size: Int(f))
        case let other:
            throw RecurError(.model, "metadata 'model.input': unknown input '\(other)' (known: tokens, frames)")
        }
        if let p = try string("model.pooling") {
            guard let pooling = Pooling(rawValue: p) else {
                throw RecurError(.model, "metadata 'model.pooling': unknown pooling '\(p)' (known: \(Pooling.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            self.pooling = pooling
        }
        if let v = file.value("input.mask_value") {
            guard case .float(let m) = v, Float(m).isFinite else {
                throw RecurError(.model, "metadata 'input.mask_value' must be a finite float")
            }
            maskValue = Float(m)
        }
    }

    static func readLayers(_ file: RecurFile, prefix: String) throws -> [LayerSpec] {
        func need(_ key: String) throws -> MetaValue {
            guard let v = file.value(key) else { throw RecurError(.model, "missing metadata key '\(key)'") }
            return v
        }
        func int(_ key: String, max: Int = RecurFormat.maxDimension) throws -> Int {
            guard let v = try need(key).intValue else { throw RecurError(.model, "metadata '\(key)' must be an integer") }
            guard v >= 1, v <= Int64(max) else { throw RecurError(.model, "metadata '\(key)' is \(v) (must be 1...\(max))") }
            return Int(v)
        }
        func string(_ key: String) throws -> String {
            guard let v = try need(key).stringValue else { throw RecurError(.model, "metadata '\(key)' must be a string") }
            return v
        }
        func bool(_ key: String, default d: Bool) throws -> Bool {
            guard let v = file.value(key) else { return d }
            guard let b = v.boolValue else { throw RecurError(.model, "metadata '\(key)' must be a boolean") }
            return b
        }
        func activation(_ key: String, default d: Activation) throws -> Activation {
            guard file.value(key) != nil else { return d }
            let s = try string(key)
            guard let a = Activation(rawValue: s) else {
                throw RecurError(.model, "metadata '\(key)': unknown activation '\(s)' (known: \(Activation.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return a
        }
        let count = try int((prefix.isEmpty ? "model." : prefix) + "layer_count", max: 1024)
        var layers: [LayerSpec] = []
        for i in 0..<count {
            let p = "\(prefix)layer.\(i)."
            let kind = try string(p + "kind")
            switch kind {
            case "embedding":
                layers.append(.embedding(vocabulary: try int(p + "input_dim"), dimension: try int(p + "output_dim")))
            case let name where CellKind(rawValue: name) != nil:
                var r = RecurrentSpec(cell: CellKind(rawValue: name)!, inputSize: try int(p + "input_size"), units: try int(p + "units"))
                r.activation = try activation(p + "activation", default: .tanh)
                r.recurrentActivation = try activation(p + "recurrent_activation", default: .sigmoid)
                r.resetAfter = try bool(p + "reset_after", default: true)
                r.peephole = try bool(p + "peephole", default: false)
                r.returnSequences = try bool(p + "return_sequences", default: true)
                r.bidirectional = try bool(p + "bidirectional", default: false)
                if r.bidirectional, file.value(p + "merge_mode") != nil {
                    let m = try string(p + "merge_mode")
                    guard let mm = MergeMode(rawValue: m) else { throw RecurError(.model, "metadata '\(p)merge_mode': unknown merge mode '\(m)'") }
                    r.mergeMode = mm
                }
                if r.activation == .softmax || r.recurrentActivation == .softmax {
                    throw RecurError(.model, "layer \(i): softmax is not a valid recurrent activation")
                }
                if let problem = r.cell.type.problem(r) {
                    throw RecurError(.model, "layer \(i): \(problem)")
                }
                layers.append(.recurrent(r))
            case "dense":
                layers.append(.dense(inputSize: try int(p + "input_size"), units: try int(p + "units"),
                                     activation: try activation(p + "activation", default: .linear)))
            case "attention":
                layers.append(.attention(try readAttention(file, p, i, int: int, string: string, bool: bool)))
            default:
                throw RecurError(.model, "layer \(i) has unknown kind '\(kind)'")
            }
        }
        return layers
    }

    /// An attention layer's keys (FORMAT.md §11): each allowed only where it means something.
    static func readAttention(_ file: RecurFile, _ p: String, _ i: Int, int: (String, Int) throws -> Int,
                              string: (String) throws -> String, bool: (String, Bool) throws -> Bool) throws -> AttentionSpec {
        func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type, default d: T?) throws -> T where T.RawValue == String {
            guard file.value(p + key) != nil || d == nil else { return d! }
            let s = try string(p + key)
            guard let v = T(rawValue: s) else {
                throw RecurError(.model, "metadata '\(p)\(key)': unknown value '\(s)' (known: \(T.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return v
        }
        let score = try choice("score", AttentionScore.self, default: nil)
        let combine = try choice("combine", AttentionCombine.self, default: .tanh)
        let q = try int(p + "input_size", RecurFormat.maxDimension), m = try int(p + "memory_size", RecurFormat.maxDimension)
        var a = AttentionSpec(score: score, inputSize: q, memorySize: m, combine: combine)
        if score == .additive {
            a.attentionUnits = try int(p + "attention_units", RecurFormat.maxDimension)
            a.useBias = try bool(p + "use_bias", false)
        } else {
            for key in ["attention_units", "use_bias"] where file.value(p + key) != nil {
                throw RecurError(.model, "layer \(i): metadata '\(p)\(key)' is only for additive attention (score = \(score.rawValue))")
            }
        }
        if combine == .tanh {
            a.units = try int(p + "units", RecurFormat.maxDimension)
        } else if file.value(p + "units") != nil {
            let u = try int(p + "units", RecurFormat.maxDimension)
            guard u == m + q else {
                throw RecurError(.model, "layer \(i): an attention layer with combine = none outputs [c_t; h_t], memory_size + input_size = \(m + q) floats, but units is \(u)")
            }
        }
        a.inputFeeding = try bool(p + "input_feeding", false)
        if score == .dot && q != m {
            throw RecurError(.model, "layer \(i): dot attention needs a decoder state as wide as the encoder's outputs (input_size \(q), memory_size \(m)); use general or additive scoring")
        }
        return a
    }

    /// Checks that consecutive layers fit together, and that they suit the input and the task.
    public func validate() throws {
        let att = attention
        try Self.validate(layers, fedBack: att.map { $0.inputFeeding ? $0.outputSize : 0 } ?? 0)
        try validateInput()
        if task == .seq2seq {
            try Self.validate(encoder)
            if encoder.contains(where: { if case .attention = $0 { return true }; return false }) {
                throw RecurError(.model, "an encoder has no attention layer (attention belongs to the decoder, after its recurrent layers)")
            }
            let enc = encoder.compactMap { l -> RecurrentSpec? in if case .recurrent(let r) = l { return r }; return nil }
            let dec = layers.compactMap { l -> RecurrentSpec? in if case .recurrent(let r) = l { return r }; return nil }
            // Without attention, encoder layer i and decoder layer i are of one kind and size. With attention
            // an encoder layer may be bidirectional (concat): its decoder layer is twice as wide and starts from
            // [h_fwd_final; h_bwd_final] (and c likewise).
            guard !enc.isEmpty, enc.count == dec.count,
                  zip(enc, dec).allSatisfy({ e, d in
                      e.cell == d.cell && !d.bidirectional
                          && (e.bidirectional ? att != nil && e.mergeMode == .concat && d.units == 2 * e.units : d.units == e.units) })
            else {
                throw RecurError(.model, att == nil
                    ? "a seq2seq model needs encoder and decoder recurrent layers of the same kinds and sizes, one for one, none bidirectional (the encoder's final states start the decoder)"
                    : "a seq2seq model with attention needs encoder and decoder recurrent layers of the same kinds, one for one, the decoder's forward-only and of the encoder layer's units, or twice them for a bidirectional (concat) encoder layer (its final states [forward; backward] start the decoder)")
            }
            if let a = att {
                guard let last = enc.last, last.returnSequences else {
                    throw RecurError(.model, "the encoder's last recurrent layer must return every step: attention reads its outputs")
                }
                guard a.memorySize == last.outputSize else {
                    throw RecurError(.model, "the attention layer's memory_size is \(a.memorySize) but the encoder's last recurrent layer outputs \(last.outputSize) floats per step")
                }
            }
        } else if !encoder.isEmpty || reverseSource {
            throw RecurError(.model, "only seq2seq models have an encoder (and encoder.reverse_source)")
        } else if att != nil {
            throw RecurError(.model, "only a seq2seq decoder has an attention layer (it attends over the encoder's outputs)")
        }
    }

    func validateInput() throws {
        if case .frames(let f) = input {
            guard task == .classify || task == .tag || task == .regress else {
                throw RecurError(.model, "a \(task.rawValue) model reads tokens; frame models are classify, tag or regress models")
            }
            guard case .recurrent(let r) = layers[0] else {
                throw RecurError(.model, "a frame model's first layer must be recurrent (it reads the frames; there is no embedding)")
            }
            guard r.inputSize == f else {
                throw RecurError(.model, "layer 0 (\(r.cell.rawValue)) expects input size \(r.inputSize) but frames have \(f) floats (model.frame_size)")
            }
        } else if maskValue != nil {
            throw RecurError(.model, "metadata 'input.mask_value' is only for frame models (model.input = frames)")
        }
        if pooling == .mean {
            guard task == .classify else { throw RecurError(.model, "model.pooling = mean is only for classify models") }
            guard let last = layers.compactMap({ l -> RecurrentSpec? in if case .recurrent(let r) = l { return r }; return nil }).last,
                  last.returnSequences else {
                throw RecurError(.model, "model.pooling = mean needs a last recurrent layer that returns every step")
            }
        }
    }

    /// `fedBack`: floats the first recurrent layer reads after the embedding (an attention layer's input
    /// feeding), so that it expects the embedding's width plus these.
    static func validate(_ layers: [LayerSpec], fedBack: Int = 0) throws {
        guard !layers.isEmpty else { throw RecurError(.model, "the model has no layers") }
        var width: Int? = nil
        var sawDense = false, sawLastStepOnly = false, sawRecurrent = false, sawAttention = false
        for (i, layer) in layers.enumerated() {
            switch layer {
            case .embedding(let v, let d):
                guard i == 0 else { throw RecurError(.model, "layer \(i): an embedding must be the first layer") }
                guard v >= 1, d >= 1 else { throw RecurError(.model, "layer \(i): empty embedding") }
                width = d
            case .recurrent(let r):
                let fed = sawRecurrent ? 0 : fedBack
                if let w = width, w + fed != r.inputSize {
                    throw RecurError(.model, fed > 0
                        ? "layer \(i) (\(r.cell.rawValue)) expects input size \(r.inputSize) but reads the embedding (\(w)) and the attention layer's fed-back output (\(fed)): \(w + fed)"
                        : "layer \(i) (\(r.cell.rawValue)) expects input size \(r.inputSize) but the previous layer gives \(w)")
                }
                if sawAttention {
                    throw RecurError(.model, "layer \(i) (\(r.cell.rawValue)) follows the attention layer, which comes after the last recurrent layer")
                }
                sawRecurrent = true
                // Dense layers form the output head after the last recurrent layer; a layer that returns only
                // its last step ends the sequence.
                if sawDense {
                    throw RecurError(.model, "layer \(i) (\(r.cell.rawValue)) follows a dense layer; dense layers may only come after the last recurrent layer")
                }
                if sawLastStepOnly {
                    throw RecurError(.model, "layer \(i) (\(r.cell.rawValue)) follows a recurrent layer with return_sequences = false, which outputs a single step")
                }
                sawLastStepOnly = !r.returnSequences
                width = r.outputSize
            case .dense(let n, let u, _):
                if let w = width, w != n {
                    throw RecurError(.model, "layer \(i) (dense) expects input size \(n) but the previous layer gives \(w)")
                }
                sawDense = true
                width = u
            case .attention(let a):
                guard case .recurrent? = i > 0 ? layers[i - 1] : nil else {
                    throw RecurError(.model, "layer \(i) (attention) must directly follow the decoder's last recurrent layer")
                }
                guard !sawAttention else { throw RecurError(.model, "layer \(i): a decoder has at most one attention layer") }
                if let w = width, w != a.inputSize {
                    throw RecurError(.model, "layer \(i) (attention) expects input size \(a.inputSize) but the previous layer gives \(w)")
                }
                sawAttention = true
                width = a.outputSize
            }
        }
    }

    /// Total number of weights the architecture declares (for `recur info`).
    public var parameterCount: Int { Self.parameters(layers) + Self.parameters(encoder) }

    static func parameters(_ layers: [LayerSpec]) -> Int {
        layers.reduce(0) { acc, layer in
            switch layer {
            case .embedding(let v, let d): return acc + v * d
            case .recurrent(let r): return acc + r.directionParameters * (r.bidirectional ? 2 : 1)
            case .dense(let i, let u, _): return acc + i * u + u
            case .attention(let a): return acc + a.parameters
            }
        }
    }
}
