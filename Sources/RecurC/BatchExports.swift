import CRecurABI
import Recur

// The batched calls: many streams of one model stepped, sampled or generated together, and many texts
// classified or tagged in one call. Every stream's arguments are checked before anything changes, and
// errors name the stream (or prompt, or text).

/// Runs `body` for item `k` of a batch, prefixing its error's message with "what k: ".
func item<T>(_ what: String, _ k: Int, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as RecurError { throw RecurError(e.code, "\(what) \(k): \(e.message)") }
}

/// A batch's size_t count: at least one, and small enough that arrays of n pointers or n × `width`
/// elements can be addressed.
func batchCount(_ n: Int, width: Int, _ what: String = "n") throws -> Int {
    let n = size(n)
    guard n > 0 else { throw invalid("\(what) is 0: a batch has at least one stream") }
    let (total, o) = n.multipliedReportingOverflow(by: max(width, 1))
    guard !o, total <= Int.max / 8, n <= Int.max / 8 else {
        throw invalid("\(what) = \(n) is too large: \(n) × \(width) elements overflow")
    }
    return n
}

/// The n handles of a caller's array: each not NULL, of class T, not held by a recur_generate, and (when
/// `distinct`) each at most once.
func handles<T: AnyObject>(_ array: UnsafePointer<OpaquePointer?>?, _ n: Int, as type: T.Type, _ name: String,
                           distinct: Bool) throws -> [T] {
    guard let array else { throw invalid("\(name) is NULL") }
    var out: [T] = []
    out.reserveCapacity(n)
    for k in 0..<n {
        guard let p = array[k] else { throw invalid("stream \(k): \(name)[\(k)] is NULL") }
        guard let h = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue() as? T else {
            throw invalid("stream \(k): \(name)[\(k)] is not a handle of the expected kind")
        }
        if let b = h as? BusyHandle, b.busy {
            throw invalid("stream \(k): \(name)[\(k)] is in use by a recur_generate call that has not returned")
        }
        out.append(h)
    }
    if distinct, let (k, j) = firstRepeat(out.map(ObjectIdentifier.init)) {
        throw invalid("stream \(k): \(name)[\(k)] is \(name)[\(j)] (a batch takes each at most once)")
    }
    return out
}

/// The states of a batch of `m`: distinct, of this model.
func batchStates(_ states: UnsafePointer<OpaquePointer?>?, _ n: Int, of m: ModelHandle) throws -> [State] {
    let hs = try handles(states, n, as: StateHandle.self, "states", distinct: true)
    for (k, h) in hs.enumerated() where h.owner.model !== m.model {
        throw RecurError(.mismatch, "stream \(k): states[\(k)] belongs to another model")
    }
    return hs.map(\.state)
}

/// Checks a caller's n × width output buffer.
func batchOutput(_ out: UnsafeMutablePointer<Float>?, _ capacity: Int, _ n: Int, _ width: Int) throws -> UnsafeMutablePointer<Float> {
    guard let out else { throw invalid("out is NULL") }
    guard size(capacity) >= n * width else {
        throw RecurError(.bufferTooSmall, "\(n) outputs of \(width) floats take \(n * width); the buffer holds \(capacity)")
    }
    return out
}

func copyOutputs(_ states: [State], _ out: UnsafeMutablePointer<Float>, _ width: Int) {
    for (k, s) in states.enumerated() { (out + k * width).update(from: s.output, count: width) }
}

@c @implementation
public func recur_state_step_batch(_ model: OpaquePointer?, _ states: UnsafePointer<OpaquePointer?>?, _ n: Int,
                                   _ tokens: UnsafePointer<Int32>?, _ out: UnsafeMutablePointer<Float>?,
                                   _ capacity: Int) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let V = m.model.outputSize
        let n = try batchCount(n, width: V)
        let out = try batchOutput(out, capacity, n, V)
        guard let tokens else { throw invalid("tokens is NULL") }
        let list = try batchStates(states, n, of: m)
        try m.model.stepBatch(states: list, tokens: (0..<n).map { Int(tokens[$0]) })
        copyOutputs(list, out, V)
    }
}

@c @implementation
public func recur_state_step_frames_batch(_ model: OpaquePointer?, _ states: UnsafePointer<OpaquePointer?>?, _ n: Int,
                                          _ frames: UnsafePointer<Float>?, _ frameSize: Int,
                                          _ out: UnsafeMutablePointer<Float>?, _ capacity: Int) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        guard let f = m.model.frameSize else { throw RecurError(.unsupported, "this model reads tokens, not frames") }
        let V = m.model.outputSize
        let n = try batchCount(n, width: max(V, f))
        guard size(frameSize) == f else {
            throw invalid("frame_size is \(size(frameSize)); frames of this model have \(f) floats")
        }
        let out = try batchOutput(out, capacity, n, V)
        guard let frames else { throw invalid("frames is NULL") }
        let list = try batchStates(states, n, of: m)
        try m.model.stepBatch(states: list, frames: UnsafeBufferPointer(start: frames, count: n * f))
        copyOutputs(list, out, V)
    }
}

@c @implementation
public func recur_sampler_sample_batch(_ samplers: UnsafePointer<OpaquePointer?>?, _ states: UnsafePointer<OpaquePointer?>?,
                                       _ n: Int, _ tokens: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let n = try batchCount(n, width: 1)
        guard let tokens else { throw invalid("tokens (out) is NULL") }
        let ss = try handles(samplers, n, as: SamplerHandle.self, "samplers", distinct: true)
        let sts = try handles(states, n, as: StateHandle.self, "states", distinct: false)
        // Sampled on copies, written back only when every stream has its token.
        var copies = ss.map(\.sampler)
        var out = [Int32](repeating: 0, count: n)
        for k in 0..<n {
            let m = sts[k].owner.model
            let t = try item("stream", k) {
                try copies[k].sample(UnsafeBufferPointer(start: sts[k].state.output, count: m.outputSize),
                                     probabilities: m.outputIsProbability)
            }
            guard let t32 = Int32(exactly: t) else { throw RecurError(.outOfRange, "stream \(k): token id \(t) does not fit in int32_t") }
            out[k] = t32
        }
        for k in 0..<n { ss[k].sampler = copies[k] }
        tokens.update(from: out, count: n)
    }
}

@c @implementation
public func recur_generate_batch(_ model: OpaquePointer?, _ prompts: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                                 _ maxTokens: UnsafePointer<Int32>?, _ params: UnsafePointer<recur_sampler_params>?,
                                 _ stop: UnsafePointer<UnsafePointer<CChar>?>?, _ stopCount: Int, _ slots: Int,
                                 _ callback: recur_batch_callback?, _ user: UnsafeMutableRawPointer?,
                                 _ generated: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let count = size(count)
        if count == 0 { return }
        _ = try batchCount(count, width: 1, "count")
        generated?.update(repeating: 0, count: count)
        guard let prompts else { throw invalid("prompts is NULL") }
        guard let maxTokens else { throw invalid("max_tokens is NULL") }
        guard size(slots) >= 1 else { throw invalid("slots is 0: a batched generation needs at least one slot") }
        var stops: [String] = []
        if stopCount > 0 {
            guard let stop else { throw invalid("stop is NULL but stop_count is \(stopCount)") }
            for k in 0..<size(stopCount) {
                guard let p = stop[k] else { throw invalid("stop[\(k)] is NULL") }
                guard let s = String(validatingCString: p) else { throw invalid("stop[\(k)] is not valid UTF-8") }
                stops.append(s)
            }
        }
        let defaults = SamplerParams()
        var list: [BatchPrompt] = []
        list.reserveCapacity(count)
        for k in 0..<count {
            let text = try item("prompt", k) { () throws -> String in
                guard let p = prompts[k] else { throw invalid("prompts[\(k)] is NULL") }
                guard let s = String(validatingCString: p) else { throw invalid("the prompt is not valid UTF-8") }
                return s
            }
            var sp = defaults
            if let params {
                let c = params[k]
                sp = SamplerParams(temperature: c.temperature, topK: Int(c.top_k), topP: c.top_p, seed: c.seed)
            }
            list.append(BatchPrompt(prompt: text, maxTokens: Int(maxTokens[k]), sampler: sp))
        }
        let results = try withExtendedLifetime(m) {
            try m.model.generateBatch(list, slots: size(slots), stop: stops) { k, piece -> BatchReply in
                guard let callback else { return .proceed }
                let reply = withCString(piece) { callback(k, $0, $1, user) }
                return reply == 0 ? .proceed : reply > 0 ? .stopStream : .stopAll
            }
        }
        if let generated {
            for (k, r) in results.enumerated() { generated[k] = Int32(clamping: r.tokens.count) }
        }
    }
}

/// The n texts of a caller's array, each valid UTF-8.
func batchTexts(_ texts: UnsafePointer<UnsafePointer<CChar>?>?, _ n: Int) throws -> [String] {
    let n = try batchCount(n, width: 1)
    guard let texts else { throw invalid("texts is NULL") }
    return try (0..<n).map { k in
        try item("text", k) { () throws -> String in
            guard let p = texts[k] else { throw invalid("texts[\(k)] is NULL") }
            guard let s = String(validatingCString: p) else { throw invalid("the text is not valid UTF-8") }
            return s
        }
    }
}

@c @implementation
public func recur_classify_batch(_ model: OpaquePointer?, _ texts: UnsafePointer<UnsafePointer<CChar>?>?, _ n: Int,
                                 _ probabilities: UnsafeMutablePointer<Float>?, _ capacity: Int,
                                 _ classes: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let list = try batchTexts(texts, n)
        if probabilities == nil && capacity > 0 { throw invalid("probabilities is NULL but capacity is \(capacity)") }
        let rows = try list.enumerated().map { k, s in try item("text", k) { try m.model.classify(s, padding: m.padding) } }
        let c = rows[0].count
        classes?.pointee = c
        let (total, o) = rows.count.multipliedReportingOverflow(by: c)
        guard !o, total <= size(capacity), let probabilities else {
            throw RecurError(.bufferTooSmall, "\(rows.count) texts of \(c) classes take \(total) floats; the buffer holds \(capacity)")
        }
        for (k, r) in rows.enumerated() { (probabilities + k * c).update(from: r, count: c) }
    }
}

@c @implementation
public func recur_tag_batch(_ model: OpaquePointer?, _ texts: UnsafePointer<UnsafePointer<CChar>?>?, _ n: Int,
                            _ tags: UnsafeMutablePointer<Int32>?, _ capacity: Int, _ counts: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let m = try object(model, as: ModelHandle.self, "model")
        let list = try batchTexts(texts, n)
        let counts = try required(counts, "counts (out)")
        if tags == nil && capacity > 0 { throw invalid("tags is NULL but capacity is \(capacity)") }
        let rows = try list.enumerated().map { k, s in
            try item("text", k) { () throws -> [Int] in
                let ids = try m.model.encode(s)
                guard !ids.isEmpty else { throw invalid("the text has no tokens") }
                return try m.model.tag(tokens: ids, padding: m.padding)
            }
        }
        for (k, r) in rows.enumerated() { counts[k] = r.count }
        let total = rows.reduce(0) { $0 + $1.count }
        guard total <= size(capacity), let tags else {
            throw RecurError(.bufferTooSmall, "the texts have \(total) tokens; the buffer holds \(capacity)")
        }
        var at = 0
        for r in rows { for t in r { tags[at] = Int32(t); at += 1 } }
    }
}
