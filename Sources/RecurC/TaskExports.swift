import CRecurABI
import Recur

// recur_classify, recur_tag, recur_translate: whole-sequence models (many-to-one, many-to-many) and
// encoder-decoder models, and the names of their labels.

/// Copies `s` as NUL-terminated UTF-8 into a caller's buffer, or reports the size needed.
func copyText(_ s: String, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
              _ length: UnsafeMutablePointer<Int>) throws {
    if buffer == nil && capacity > 0 { throw invalid("buffer is NULL but capacity is \(capacity)") }
    let utf8 = s.utf8
    length.pointee = Int(utf8.count)
    guard utf8.count < size(capacity), let buffer else {
        throw RecurError(.bufferTooSmall, "the text takes \(utf8.count) bytes plus a NUL; the buffer holds \(capacity)")
    }
    var at = 0
    for b in utf8 { buffer[at] = CChar(bitPattern: b); at += 1 }
    buffer[at] = 0
}

/// Writes `values` into a caller's array of `capacity` elements and their number into *count. When they do
/// not fit, nothing is written and the error says `tooSmall(values.count)`. `buffer` may be NULL only when
/// the caller checked that capacity is 0.
func copyOut<T>(_ values: [T], _ buffer: UnsafeMutablePointer<T>?, _ capacity: Int, _ count: UnsafeMutablePointer<Int>,
                tooSmall: (Int) -> String) throws {
    count.pointee = Int(values.count)
    guard values.count <= size(capacity) else {
        throw RecurError(.bufferTooSmall, "\(tooSmall(values.count)); the buffer holds \(capacity)")
    }
    buffer?.update(from: values, count: values.count)
}

@c @implementation
public func recur_model_label(_ model: OpaquePointer?, _ index: Int, _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let out = try required(out, "label (out)")
        out.pointee = nil
        let labels = m.labelTexts
        guard size(index) < labels.count else {
            throw RecurError(.outOfRange, "label index \(index) is outside 0..<\(labels.count)")
        }
        out.pointee = UnsafePointer(labels[size(index)])
    }
}

/// The checks shared by the calls that read a text and write an array: a model, a count (zeroed first), a
/// text, and an output pointer that is not NULL when a capacity is given; then `body`.
func textToArray<T>(_ model: OpaquePointer?, _ input: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<T>?, _ capacity: Int,
                    _ count: UnsafeMutablePointer<Int>?, _ name: String,
                    _ body: (ModelHandle, String, UnsafeMutablePointer<Int>) throws -> Void) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let count = try required(count, "count (out)")
        count.pointee = 0
        let s = try text(input, "text")
        if out == nil && capacity > 0 { throw invalid("\(name) is NULL but capacity is \(capacity)") }
        try body(m, s, count)
    }
}

@c @implementation
public func recur_classify(_ model: OpaquePointer?, _ input: UnsafePointer<CChar>?, _ probabilities: UnsafeMutablePointer<Float>?,
                           _ capacity: Int, _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    textToArray(model, input, probabilities, capacity, count, "probabilities") { m, s, count in
        try copyOut(try m.model.classify(s, padding: m.padding), probabilities, capacity, count) { "the model has \($0) classes" }
    }
}

@c @implementation
public func recur_tag(_ model: OpaquePointer?, _ input: UnsafePointer<CChar>?, _ tags: UnsafeMutablePointer<Int32>?,
                      _ capacity: Int, _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    textToArray(model, input, tags, capacity, count, "tags") { m, s, count in
        let ids = try m.model.encode(s)
        guard !ids.isEmpty else { throw invalid("the text has no tokens") }
        try copyOut(try m.model.tag(tokens: ids, padding: m.padding).map { Int32($0) }, tags, capacity, count) { "the text has \($0) tokens" }
    }
}

@c @implementation
public func recur_translate_params_init(_ p: UnsafeMutablePointer<recur_translate_params>?) {
    guard let p else { return }
    p.pointee = recur_translate_params(beam: 4, max_length: 100, length_penalty: 1)
}

@c @implementation
public func recur_translate(_ model: OpaquePointer?, _ input: UnsafePointer<CChar>?, _ params: UnsafePointer<recur_translate_params>?,
                            _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                            _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let length = try required(length, "length (out)")
        length.pointee = 0
        let s = try text(input, "text")
        var beam: Int32 = 4, maxLength: Int32 = 100, penalty: Float = 1
        if let p = params?.pointee {
            beam = p.beam
            maxLength = p.max_length
            penalty = p.length_penalty
        }
        guard penalty.isFinite, penalty >= 0 else {
            throw invalid("length_penalty must be a finite number ≥ 0 (got \(penalty))")
        }
        let t = try m.model.translate(s, beam: Int(beam), maxLength: Int(maxLength), lengthPenalty: Double(penalty),
                                      padding: m.padding)
        try copyText(t.text, buffer, capacity, length)
    }
}

/// The decoding parameters of recur_translate (defaults for NULL), the length penalty checked.
func translateParams(_ params: UnsafePointer<recur_translate_params>?) throws -> (beam: Int, maxLength: Int, penalty: Double) {
    var p = recur_translate_params(beam: 4, max_length: 100, length_penalty: 1)
    if let given = params?.pointee { p = given }
    guard p.length_penalty.isFinite, p.length_penalty >= 0 else {
        throw invalid("length_penalty must be a finite number ≥ 0 (got \(p.length_penalty))")
    }
    return (Int(p.beam), Int(p.max_length), Double(p.length_penalty))
}

@c @implementation
public func recur_translate_attention(_ model: OpaquePointer?, _ input: UnsafePointer<CChar>?,
                                      _ params: UnsafePointer<recur_translate_params>?,
                                      _ tokens: UnsafeMutablePointer<Int32>?, _ tokensCapacity: Int,
                                      _ source: UnsafeMutablePointer<Int32>?, _ sourceCapacity: Int,
                                      _ weights: UnsafeMutablePointer<Float>?, _ weightsCapacity: Int,
                                      _ nOut: UnsafeMutablePointer<Int>?, _ nSrc: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let nOut = try required(nOut, "n_out (out)"), nSrc = try required(nSrc, "n_src (out)")
        nOut.pointee = 0
        nSrc.pointee = 0
        let s = try text(input, "text")
        for (name, p, cap) in [("tokens", tokens == nil, tokensCapacity), ("source", source == nil, sourceCapacity),
                               ("weights", weights == nil, weightsCapacity)] where p && cap > 0 {
            throw invalid("\(name) is NULL but its capacity is \(cap)")
        }
        let (beam, maxLength, penalty) = try translateParams(params)
        let t = try m.model.translate(s, beam: beam, maxLength: maxLength, lengthPenalty: penalty, padding: m.padding,
                                      attention: true)
        let n = t.tokens.count, T = t.source.count
        nOut.pointee = n
        nSrc.pointee = T
        guard n <= size(tokensCapacity), T <= size(sourceCapacity), n * T <= size(weightsCapacity) else {
            throw RecurError(.bufferTooSmall, "the translation has \(n) tokens over \(T) source positions: tokens, source and weights need \(n), \(T) and \(n * T) elements; the buffers hold \(tokensCapacity), \(sourceCapacity) and \(weightsCapacity)")
        }
        for (i, tok) in t.tokens.enumerated() { tokens![i] = Int32(tok) }
        for (j, tok) in t.source.enumerated() { source![j] = Int32(tok) }
        for (i, row) in t.attention.enumerated() { (weights! + i * T).update(from: row, count: T) }
    }
}

@c @implementation
public func recur_predict(_ model: OpaquePointer?, _ frames: UnsafePointer<Float>?, _ count: Int, _ frameSize: Int,
                          _ out: UnsafeMutablePointer<Float>?, _ capacity: Int, _ rows: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let rows = try required(rows, "rows (out)")
        rows.pointee = 0
        if out == nil && capacity > 0 { throw invalid("out is NULL but capacity is \(capacity)") }
        let list = try frameMatrix(m.model, frames, count, frameSize)
        let result = try m.model.forwardSequence(frames: list)
        let width = m.model.outputSize
        rows.pointee = result.count
        guard let out, size(capacity) >= result.count * width else {
            throw RecurError(.bufferTooSmall, "the outputs are \(result.count) × \(width) floats; the buffer holds \(capacity)")
        }
        for (r, row) in result.enumerated() { (out + r * width).update(from: row, count: width) }
    }
}

/// The checks and the copy shared by the layer-output calls: a model, rows and width (zeroed first), an
/// output pointer that is not NULL when a capacity is given; then `run` gives the rows, copied when they fit.
func layerOutputs(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int,
                  _ rows: UnsafeMutablePointer<Int>?, _ width: UnsafeMutablePointer<Int>?,
                  _ run: (Model) throws -> (rows: [[Float]], width: Int)) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let rows = try required(rows, "rows (out)")
        let width = try required(width, "width (out)")
        rows.pointee = 0
        width.pointee = 0
        if out == nil && capacity > 0 { throw invalid("out is NULL but capacity is \(capacity)") }
        let (result, w) = try run(m.model)
        rows.pointee = result.count
        width.pointee = w
        guard let out, size(capacity) >= result.count * w else {
            throw RecurError(.bufferTooSmall, "the layer's values are \(result.count) × \(w) floats; the buffer holds \(capacity)")
        }
        for (r, row) in result.enumerated() { (out + r * w).update(from: row, count: w) }
    }
}

@c @implementation
public func recur_model_layer_outputs(_ model: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int, _ layer: Int,
                                      _ values: Int32, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int,
                                      _ rows: UnsafeMutablePointer<Int>?, _ width: UnsafeMutablePointer<Int>?) -> Int32 {
    layerOutputs(model, out, capacity, rows, width) { m in
        let v = try layerValues(values)
        if let f = m.frameSize { throw RecurError(.unsupported, "this model reads frames of \(f) floats, not tokens; use recur_model_layer_outputs_frames") }
        guard let tokens else { throw invalid("tokens is NULL") }
        guard n > 0 else { throw invalid("the sequence needs at least one token (n is 0)") }
        let w = try m.layerWidth(size(layer), v)
        let list = UnsafeBufferPointer(start: tokens, count: size(n)).map { Int($0) }
        return (try m.layerOutputs(list, layer: size(layer), values: v), w)
    }
}

@c @implementation
public func recur_model_layer_outputs_frames(_ model: OpaquePointer?, _ frames: UnsafePointer<Float>?, _ count: Int,
                                             _ frameSize: Int, _ layer: Int, _ values: Int32,
                                             _ out: UnsafeMutablePointer<Float>?, _ capacity: Int,
                                             _ rows: UnsafeMutablePointer<Int>?, _ width: UnsafeMutablePointer<Int>?) -> Int32 {
    layerOutputs(model, out, capacity, rows, width) { m in
        let v = try layerValues(values)
        let list = try frameMatrix(m, frames, count, frameSize)
        let w = try m.layerWidth(size(layer), v)
        return (try m.layerOutputs(frames: list, layer: size(layer), values: v), w)
    }
}
