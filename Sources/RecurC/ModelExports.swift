import CRecurABI
import Recur

// recur_model_*: opening, vocabulary, text ↔ token ids, properties.

let openSkipChecksum = UInt32(RECUR_OPEN_SKIP_CHECKSUM), openNoMmap = UInt32(RECUR_OPEN_NO_MMAP)
let openNoPadding = UInt32(RECUR_OPEN_NO_PADDING)

/// How recur_classify, recur_tag and recur_translate pad a text (RECUR_OPEN_NO_PADDING).
func paddingMode(_ flags: UInt32) -> Model.PaddingMode { flags & openNoPadding != 0 ? .none : .trained }

func modelOptions(_ flags: UInt32) throws -> Model.Options {
    let known = openSkipChecksum | openNoMmap | openNoPadding
    if flags & ~known != 0 {
        throw invalid("unknown open flags 0x\(String(flags & ~known, radix: 16))")
    }
    var o = Model.Options()
    o.verifyChecksum = flags & openSkipChecksum == 0
    o.mapFile = flags & openNoMmap == 0
    return o
}

@c @implementation
public func recur_model_open(_ path: UnsafePointer<CChar>?, _ flags: UInt32,
                             _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try required(out, "model (out)")
        out.pointee = nil
        let path = try text(path, "path")
        let model = try Model(path: path, options: try modelOptions(flags))
        out.pointee = export(ModelHandle(model, padding: paddingMode(flags)))
    }
}

@c @implementation
public func recur_model_open_buffer(_ data: UnsafeRawPointer?, _ count: Int, _ flags: UInt32,
                                    _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try required(out, "model (out)")
        out.pointee = nil
        guard let data else { throw invalid("data is NULL") }
        let bytes = UnsafeRawBufferPointer(start: data, count: size(count))
        let model = try Model(bytes: bytes, options: try modelOptions(flags))
        out.pointee = export(ModelHandle(model, padding: paddingMode(flags)))
    }
}

@c @implementation
public func recur_model_free(_ model: OpaquePointer?) {
    release(model, as: ModelHandle.self)
}

@c @implementation
public func recur_model_vocab_size(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        try required(out, "size (out)").pointee = Int(m.model.vocabulary.count)
    }
}

@c @implementation
public func recur_model_output_size(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        try required(out, "size (out)").pointee = Int(m.model.outputSize)
    }
}

extension Task {
    /// The header's recur_task of this task.
    var code: recur_task {
        switch self {
        case .generate: return RECUR_TASK_GENERATE
        case .classify: return RECUR_TASK_CLASSIFY
        case .tag: return RECUR_TASK_TAG
        case .seq2seq: return RECUR_TASK_SEQ2SEQ
        case .regress: return RECUR_TASK_REGRESS
        }
    }
}

@c @implementation
public func recur_model_get(_ model: OpaquePointer?, _ property: Int32, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model").model
        let out = try required(out, "value (out)")
        let v = m.vocabulary
        func id(_ i: Int?) -> Int64 { i.map { Int64($0) } ?? -1 }
        switch recur_model_property(rawValue: UInt32(bitPattern: property)) {
        case RECUR_MODEL_VOCAB_SIZE: out.pointee = Int64(v.count)
        case RECUR_MODEL_OUTPUT_SIZE: out.pointee = Int64(m.outputSize)
        case RECUR_MODEL_STATE_FLOATS: out.pointee = Int64(m.stateSize)
        case RECUR_MODEL_TOKENIZER: out.pointee = Int64(v.kind == .char ? RECUR_TOKENIZER_CHAR : RECUR_TOKENIZER_WORD)
        case RECUR_MODEL_BOS_ID: out.pointee = id(v.bos)
        case RECUR_MODEL_EOS_ID: out.pointee = id(v.eos)
        case RECUR_MODEL_PAD_ID: out.pointee = id(v.pad)
        case RECUR_MODEL_UNK_ID: out.pointee = id(v.unk)
        case RECUR_MODEL_OUTPUT_IS_PROBABILITY: out.pointee = m.outputIsProbability ? 1 : 0
        case RECUR_MODEL_FORMAT_MAJOR: out.pointee = Int64(m.file.versionMajor)
        case RECUR_MODEL_FORMAT_MINOR: out.pointee = Int64(m.file.versionMinor)
        case RECUR_MODEL_CHECKSUM: out.pointee = Int64(m.file.checksum)
        case RECUR_MODEL_PARAMETERS: out.pointee = Int64(m.parameterCount)
        case RECUR_MODEL_LAYERS: out.pointee = Int64(m.architecture.layers.count)
        case RECUR_MODEL_FILE_BYTES: out.pointee = Int64(m.file.storage.bytes.count)
        case RECUR_MODEL_CAN_STEP:
            out.pointee = m.canStep ? 1 : 0
        case RECUR_MODEL_TASK:
            out.pointee = Int64(m.architecture.task.code.rawValue)
        case RECUR_MODEL_INPUT:
            out.pointee = Int64((m.frameSize == nil ? RECUR_INPUT_TOKENS : RECUR_INPUT_FRAMES).rawValue)
        case RECUR_MODEL_FRAME_SIZE:
            out.pointee = Int64(m.frameSize ?? 0)
        case RECUR_MODEL_OUTPUT_KIND:
            let kind: recur_output_kind
            switch m.outputKind {
            case .logits: kind = RECUR_OUTPUT_LOGITS
            case .probabilities: kind = RECUR_OUTPUT_PROBABILITIES
            case .independentProbabilities: kind = RECUR_OUTPUT_INDEPENDENT
            case .values: kind = RECUR_OUTPUT_VALUES
            }
            out.pointee = Int64(kind.rawValue)
        default:
            throw invalid("unknown model property \(property)")
        }
    }
}

@c @implementation
public func recur_model_token_text(_ model: OpaquePointer?, _ id: Int32,
                                   _ text: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                                   _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let text = try required(text, "text (out)")
        try lend(m.texts, m.starts, id, "vocabulary", text, length)
    }
}

/// Lends token `id`'s NUL-terminated text from a packed table (ModelHandle.pack) and its length in bytes.
private func lend(_ texts: UnsafeMutablePointer<CChar>, _ starts: [Int], _ id: Int32, _ what: String,
                  _ text: UnsafeMutablePointer<UnsafePointer<CChar>?>, _ length: UnsafeMutablePointer<Int>?) throws {
    let n = starts.count - 1
    guard id >= 0, Int(id) < n else { throw RecurError(.outOfRange, "token id \(id) is outside the \(what) (0..<\(n))") }
    let start = starts[Int(id)]
    text.pointee = UnsafePointer(texts + start)
    length?.pointee = starts[Int(id) + 1] - start - 1
}

@c @implementation
public func recur_model_source_token_text(_ model: OpaquePointer?, _ id: Int32,
                                          _ text: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                                          _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let text = try required(text, "text (out)")
        guard m.model.sourceVocabulary != nil else {
            throw RecurError(.unsupported, "this model has no source vocabulary (model.task is '\(m.model.architecture.task.rawValue)', not 'seq2seq')")
        }
        try lend(m.sourceTexts, m.sourceStarts, id, "source vocabulary", text, length)
    }
}

@c @implementation
public func recur_model_token_id(_ model: OpaquePointer?, _ piece: UnsafePointer<CChar>?,
                                 _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let out = try required(out, "id (out)")
        let s = try text(piece, "piece")
        let v = m.model.vocabulary
        // Ordinary pieces through the index; special tokens (never produced by encoding) by their text.
        let found = v.id(of: s) ?? [v.bos, v.eos, v.pad, v.unk].compactMap { $0 }.sorted().first { v.pieces[$0] == s }
        guard let i = found, let i32 = Int32(exactly: i) else {
            throw RecurError(.outOfRange, "'\(s)' is not a piece of the model's vocabulary")
        }
        out.pointee = i32
    }
}

@c @implementation
public func recur_model_encode(_ model: OpaquePointer?, _ textPointer: UnsafePointer<CChar>?,
                               _ ids: UnsafeMutablePointer<Int32>?, _ capacity: Int,
                               _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    recur_model_encode_with(model, textPointer, Int32(RECUR_UNKNOWN_ERROR.rawValue), ids, capacity, count)
}

/// recur_unknown: RECUR_UNKNOWN_ERROR, _SKIP, _REPLACE.
func unknownPolicy(_ code: Int32) -> Vocabulary.UnknownPolicy? {
    switch recur_unknown(rawValue: UInt32(bitPattern: code)) {
    case RECUR_UNKNOWN_ERROR: return .error
    case RECUR_UNKNOWN_SKIP: return .skip
    case RECUR_UNKNOWN_REPLACE: return .replace
    default: return nil
    }
}

@c @implementation
public func recur_model_encode_with(_ model: OpaquePointer?, _ textPointer: UnsafePointer<CChar>?, _ unknown: Int32,
                                    _ ids: UnsafeMutablePointer<Int32>?, _ capacity: Int,
                                    _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let count = try required(count, "count (out)")
        let s = try text(textPointer, "text")
        if ids == nil && capacity > 0 { throw invalid("ids is NULL but capacity is \(capacity)") }
        guard let policy = unknownPolicy(unknown) else {
            throw invalid("unknown must be RECUR_UNKNOWN_ERROR, _SKIP or _REPLACE (got \(unknown))")
        }
        let encoded = try m.model.encode(s, unknown: policy).map { t -> Int32 in
            guard let t32 = Int32(exactly: t) else { throw RecurError(.outOfRange, "token id \(t) does not fit in int32_t") }
            return t32
        }
        try copyOut(encoded, ids, capacity, count) { "the text encodes to \($0) tokens" }
    }
}

@c @implementation
public func recur_model_decode(_ model: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ n: Int,
                               _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                               _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let length = try required(length, "length (out)")
        if ids == nil && n > 0 { throw invalid("ids is NULL but n is \(n)") }
        if buffer == nil && capacity > 0 { throw invalid("buffer is NULL but capacity is \(capacity)") }
        var list: [Int] = []
        if let ids, n > 0 {
            list = UnsafeBufferPointer(start: ids, count: size(n)).map { Int($0) }
        }
        try copyText(try m.model.vocabulary.decode(list), buffer, capacity, length)
    }
}

@c @implementation
public func recur_model_layer_get(_ model: OpaquePointer?, _ layer: Int, _ property: Int32,
                                  _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model").model
        let out = try required(out, "value (out)")
        let spec = try m.layer(size(layer))
        var recurrentSpec: RecurrentSpec? = nil
        if case .recurrent(let r) = spec { recurrentSpec = r }
        switch recur_layer_property(rawValue: UInt32(bitPattern: property)) {
        case RECUR_LAYER_KIND:
            let kind: recur_layer_kind
            switch spec {
            case .embedding: kind = RECUR_LAYER_EMBEDDING
            case .dense: kind = RECUR_LAYER_DENSE
            case .attention: kind = RECUR_LAYER_ATTENTION
            case .recurrent(let r):
                switch r.cell {
                case .rnn: kind = RECUR_LAYER_RNN
                case .gru: kind = RECUR_LAYER_GRU
                case .lstm: kind = RECUR_LAYER_LSTM
                }
            }
            out.pointee = Int64(kind.rawValue)
        case RECUR_LAYER_INPUT_SIZE:
            switch spec {
            case .embedding(let v, _): out.pointee = Int64(v)
            case .dense(let n, _, _): out.pointee = Int64(n)
            case .attention(let a): out.pointee = Int64(a.inputSize)
            case .recurrent(let r): out.pointee = Int64(r.inputSize)
            }
        case RECUR_LAYER_UNITS:
            switch spec {
            case .embedding(_, let d): out.pointee = Int64(d)
            case .dense(_, let u, _): out.pointee = Int64(u)
            case .attention(let a): out.pointee = Int64(a.outputSize)
            case .recurrent(let r): out.pointee = Int64(r.units)
            }
        case RECUR_LAYER_OUTPUT_SIZE: out.pointee = Int64(try m.layerWidth(size(layer), .output))
        case RECUR_LAYER_DIRECTIONS: out.pointee = Int64(recurrentSpec.map { $0.bidirectional ? 2 : 1 } ?? 0)
        case RECUR_LAYER_STATE_VECTORS: out.pointee = Int64(recurrentSpec.map { $0.stateWidth / $0.units } ?? 0)
        case RECUR_LAYER_RETURN_SEQUENCES: out.pointee = (recurrentSpec?.returnSequences ?? true) ? 1 : 0
        default:
            throw invalid("unknown layer property \(property)")
        }
    }
}
