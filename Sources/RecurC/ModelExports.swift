import Recur

// recur_model_*: opening, vocabulary, text ↔ token ids, properties.

/// RECUR_OPEN_SKIP_CHECKSUM, RECUR_OPEN_NO_MMAP
let openSkipChecksum: UInt32 = 1, openNoMmap: UInt32 = 2

func modelOptions(_ flags: UInt32) throws -> Model.Options {
    let known = openSkipChecksum | openNoMmap
    if flags & ~known != 0 {
        throw invalid("unknown open flags 0x\(String(flags & ~known, radix: 16))")
    }
    var o = Model.Options()
    o.verifyChecksum = flags & openSkipChecksum == 0
    o.mapFile = flags & openNoMmap == 0
    return o
}

@_cdecl("recur_model_open")
public func recur_model_open(_ path: UnsafePointer<CChar>?, _ flags: UInt32,
                             _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try required(out, "model (out)")
        out.pointee = nil
        let path = try text(path, "path")
        let model = try Model(path: path, options: try modelOptions(flags))
        out.pointee = export(ModelHandle(model))
    }
}

@_cdecl("recur_model_open_buffer")
public func recur_model_open_buffer(_ data: UnsafeRawPointer?, _ count: UInt, _ flags: UInt32,
                                    _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try required(out, "model (out)")
        out.pointee = nil
        guard let data else { throw invalid("data is NULL") }
        let bytes = UnsafeRawBufferPointer(start: data, count: size(count))
        let model = try Model(bytes: bytes, options: try modelOptions(flags))
        out.pointee = export(ModelHandle(model))
    }
}

@_cdecl("recur_model_free")
public func recur_model_free(_ model: OpaquePointer?) {
    release(model, as: ModelHandle.self)
}

@_cdecl("recur_model_vocab_size")
public func recur_model_vocab_size(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<UInt>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        try required(out, "size (out)").pointee = UInt(m.model.vocabulary.count)
    }
}

@_cdecl("recur_model_output_size")
public func recur_model_output_size(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<UInt>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        try required(out, "size (out)").pointee = UInt(m.model.outputSize)
    }
}

// Values of recur_model_get's property argument (see recur.h).
enum ModelProperty: Int32 {
    case vocabSize = 0, outputSize, stateFloats, tokenizer, bosID, eosID, padID, unkID,
         outputIsProbability, formatMajor, formatMinor, checksum, parameters, layers, fileBytes, canStep, task
}

/// recur_task: RECUR_TASK_GENERATE, _CLASSIFY, _TAG, _SEQ2SEQ.
let taskCodes: [String: Int64] = ["generate": 0, "classify": 1, "tag": 2, "seq2seq": 3]

@_cdecl("recur_model_get")
public func recur_model_get(_ model: OpaquePointer?, _ property: Int32, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model").model
        let out = try required(out, "value (out)")
        guard let p = ModelProperty(rawValue: property) else { throw invalid("unknown model property \(property)") }
        let v = m.vocabulary
        func id(_ i: Int?) -> Int64 { i.map { Int64($0) } ?? -1 }
        switch p {
        case .vocabSize: out.pointee = Int64(v.count)
        case .outputSize: out.pointee = Int64(m.outputSize)
        case .stateFloats: out.pointee = Int64(m.stateSize)
        case .tokenizer: out.pointee = v.kind == .char ? 0 : 1
        case .bosID: out.pointee = id(v.bos)
        case .eosID: out.pointee = id(v.eos)
        case .padID: out.pointee = id(v.pad)
        case .unkID: out.pointee = id(v.unk)
        case .outputIsProbability: out.pointee = m.outputIsProbability ? 1 : 0
        case .formatMajor: out.pointee = Int64(m.file.versionMajor)
        case .formatMinor: out.pointee = Int64(m.file.versionMinor)
        case .checksum: out.pointee = Int64(m.file.checksum)
        case .parameters: out.pointee = Int64(m.parameterCount)
        case .layers: out.pointee = Int64(m.architecture.layers.count)
        case .fileBytes: out.pointee = Int64(m.file.storage.bytes.count)
        case .canStep:
            // What State.step requires: an embedding, a recurrent layer, and no bidirectional layer.
            var embedding = false, recurrent = false, bidirectional = false
            for l in m.architecture.layers {
                switch l {
                case .embedding: embedding = true
                case .recurrent(let r): recurrent = true; bidirectional = bidirectional || r.bidirectional
                case .dense: break
                }
            }
            out.pointee = embedding && recurrent && !bidirectional ? 1 : 0
        case .task:
            guard let code = taskCodes[m.architecture.task] else {
                throw RecurError(.unsupported, "the model's task '\(m.architecture.task)' has no recur_task value")
            }
            out.pointee = code
        }
    }
}

@_cdecl("recur_model_token_text")
public func recur_model_token_text(_ model: OpaquePointer?, _ id: Int32,
                                   _ text: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                                   _ length: UnsafeMutablePointer<UInt>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let text = try required(text, "text (out)")
        let n = m.model.vocabulary.count
        guard id >= 0, Int(id) < n else {
            throw RecurError(.outOfRange, "token id \(id) is outside the vocabulary (0..<\(n))")
        }
        let start = m.starts[Int(id)]
        text.pointee = UnsafePointer(m.texts + start)
        length?.pointee = UInt(m.starts[Int(id) + 1] - start - 1)
    }
}

@_cdecl("recur_model_token_id")
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

@_cdecl("recur_model_encode")
public func recur_model_encode(_ model: OpaquePointer?, _ textPointer: UnsafePointer<CChar>?,
                               _ ids: UnsafeMutablePointer<Int32>?, _ capacity: UInt,
                               _ count: UnsafeMutablePointer<UInt>?) -> Int32 {
    recur_model_encode_with(model, textPointer, 0, ids, capacity, count)
}

/// recur_unknown: RECUR_UNKNOWN_ERROR, _SKIP, _REPLACE.
let unknownPolicies: [Vocabulary.UnknownPolicy] = [.error, .skip, .replace]

@_cdecl("recur_model_encode_with")
public func recur_model_encode_with(_ model: OpaquePointer?, _ textPointer: UnsafePointer<CChar>?, _ unknown: Int32,
                                    _ ids: UnsafeMutablePointer<Int32>?, _ capacity: UInt,
                                    _ count: UnsafeMutablePointer<UInt>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let count = try required(count, "count (out)")
        let s = try text(textPointer, "text")
        if ids == nil && capacity > 0 { throw invalid("ids is NULL but capacity is \(capacity)") }
        guard unknown >= 0, Int(unknown) < unknownPolicies.count else {
            throw invalid("unknown must be RECUR_UNKNOWN_ERROR, _SKIP or _REPLACE (got \(unknown))")
        }
        let encoded = try m.model.vocabulary.encode(s, unknown: unknownPolicies[Int(unknown)]).map { t -> Int32 in
            guard let t32 = Int32(exactly: t) else { throw RecurError(.outOfRange, "token id \(t) does not fit in int32_t") }
            return t32
        }
        try copyOut(encoded, ids, capacity, count) { "the text encodes to \($0) tokens" }
    }
}

@_cdecl("recur_model_decode")
public func recur_model_decode(_ model: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ n: UInt,
                               _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: UInt,
                               _ length: UnsafeMutablePointer<UInt>?) -> Int32 {
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
