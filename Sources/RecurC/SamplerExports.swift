import CRecurABI
import Recur

// recur_sampler_* and recur_generate.

@c @implementation
public func recur_sampler_params_init(_ params: UnsafeMutablePointer<recur_sampler_params>?) {
    guard let params else { return }
    let d = SamplerParams()
    // Padding bytes too are defined (zero), so that callers may compare or hash the struct.
    UnsafeMutableRawPointer(params).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<recur_sampler_params>.size)
    params.pointee.temperature = d.temperature
    params.pointee.top_k = Int32(clamping: d.topK)
    params.pointee.top_p = d.topP
    params.pointee.seed = d.seed
}

@c @implementation
public func recur_sampler_new(_ params: UnsafePointer<recur_sampler_params>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try required(out, "sampler (out)")
        out.pointee = nil
        guard let params else { throw invalid("params is NULL") }
        let c = params.pointee
        let p = SamplerParams(temperature: c.temperature, topK: Int(c.top_k), topP: c.top_p, seed: c.seed)
        out.pointee = export(SamplerHandle(try Sampler(p)))
    }
}

@c @implementation
public func recur_sampler_free(_ sampler: OpaquePointer?) {
    release(sampler, as: SamplerHandle.self)
}

@c @implementation
public func recur_sampler_sample(_ sampler: OpaquePointer?, _ logits: UnsafePointer<Float>?, _ n: Int,
                                 _ token: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let s = try object(sampler, as: SamplerHandle.self, "sampler")
        let token = try required(token, "token (out)")
        guard let logits else { throw invalid("logits is NULL") }
        guard n > 0, n <= Int(Int32.max) else { throw invalid("n must be in 1...\(Int32.max) (got \(n))") }
        token.pointee = Int32(try s.sampler.sample(UnsafeBufferPointer(start: logits, count: Int(n))))
    }
}

@c @implementation
public func recur_sampler_sample_state(_ sampler: OpaquePointer?, _ state: OpaquePointer?,
                                       _ token: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let s = try object(sampler, as: SamplerHandle.self, "sampler")
        let st = try object(state, as: StateHandle.self, "state")
        let token = try required(token, "token (out)")
        let m = st.owner.model
        let t = try s.sampler.sample(UnsafeBufferPointer(start: st.state.output, count: m.outputSize),
                                     probabilities: m.outputIsProbability)
        guard let t32 = Int32(exactly: t) else { throw RecurError(.outOfRange, "token id \(t) does not fit in int32_t") }
        token.pointee = t32
    }
}

@c @implementation
public func recur_generate(_ state: OpaquePointer?, _ sampler: OpaquePointer?, _ prompt: UnsafePointer<CChar>?,
                           _ maxTokens: Int32, _ callback: recur_piece_callback?, _ user: UnsafeMutableRawPointer?,
                           _ generated: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        generated?.pointee = 0
        let st = try object(state, as: StateHandle.self, "state")
        let s = try object(sampler, as: SamplerHandle.self, "sampler")
        let p = prompt == nil ? "" : try text(prompt, "prompt")
        // Both handles are marked busy for the duration (see BusyHandle), and the sampler is advanced on a
        // local copy written back at the end, so that no Swift access to the handles spans the callback.
        guard st.acquire() else {
            throw invalid("state is in use by a recur_generate call that has not returned (from its callback or another thread); a state serves one call at a time")
        }
        guard s.acquire() else {
            if st.relinquish() { Unmanaged.passUnretained(st).release() }
            throw invalid("sampler is in use by a recur_generate call that has not returned (from its callback or another thread); a sampler serves one call at a time")
        }
        var sampler = s.sampler
        defer {
            s.sampler = sampler
            if st.relinquish() { Unmanaged.passUnretained(st).release() }
            if s.relinquish() { Unmanaged.passUnretained(s).release() }
        }
        let result = try st.owner.model.generate(prompt: p, state: st.state, maxTokens: Int(maxTokens),
                                                 sampler: &sampler) { piece in
            guard let callback else { return true }
            return withCString(piece) { callback($0, $1, user) } == 0
        }
        generated?.pointee = Int32(clamping: result.tokens.count)
    }
}

@c @implementation
public func recur_beam_params_init(_ p: UnsafeMutablePointer<recur_beam_params>?) {
    guard let p else { return }
    let d = BeamParams()
    p.pointee = recur_beam_params(beam: Int32(d.beam), best: Int32(d.best), length_penalty: Float(d.lengthPenalty),
                                  unknown: Int32(RECUR_UNKNOWN_ERROR.rawValue))
}

@c @implementation
public func recur_generate_beam(_ state: OpaquePointer?, _ prompt: UnsafePointer<CChar>?, _ maxTokens: Int32,
                                _ params: UnsafePointer<recur_beam_params>?, _ callback: recur_piece_callback?,
                                _ results: recur_continuation_callback?, _ user: UnsafeMutableRawPointer?,
                                _ generated: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        generated?.pointee = 0
        let st = try object(state, as: StateHandle.self, "state")
        let p = prompt == nil ? "" : try text(prompt, "prompt")
        var bp = BeamParams()
        var policy = Vocabulary.UnknownPolicy.error
        if let c = params?.pointee {
            bp = BeamParams(beam: Int(c.beam), best: Int(c.best), lengthPenalty: Double(c.length_penalty))
            guard let u = unknownPolicy(c.unknown) else {
                throw invalid("unknown must be RECUR_UNKNOWN_ERROR, _SKIP or _REPLACE (got \(c.unknown))")
            }
            policy = u
        }
        try bp.validate()
        // The state is marked busy for the duration (see BusyHandle), so that no Swift access to it spans
        // a callback.
        guard st.acquire() else {
            throw invalid("state is in use by a recur_generate call that has not returned (from its callback or another thread); a state serves one call at a time")
        }
        defer { if st.relinquish() { Unmanaged.passUnretained(st).release() } }
        let found = try st.owner.model.generateBeam(prompt: p, state: st.state, maxTokens: Int(maxTokens), params: bp,
                                                        unknown: policy) { piece in
            guard let callback else { return true }
            return withCString(piece) { callback($0, $1, user) } == 0
        }
        generated?.pointee = Int32(clamping: found[0].tokens.count)
        guard let results else { return }
        for (rank, c) in found.enumerated() {
            let ids = c.tokens.map { Int32(truncatingIfNeeded: $0) }
            let stop = ids.withUnsafeBufferPointer { tp in
                withCString(c.text) { results(rank, $0, $1, tp.baseAddress, tp.count, c.logProbability, c.score, user) }
            }
            if stop != 0 { break }
        }
    }
}

/// Calls `body` with a NUL-terminated copy of `s` and its length in bytes (the callbacks may treat the
/// text as a C string).
func withCString(_ s: String, _ body: (UnsafePointer<CChar>, Int) -> Int32) -> Int32 {
    var copy = s
    return copy.withUTF8 { utf8 in
        let buf = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count + 1)
        defer { buf.deallocate() }
        for (k, b) in utf8.enumerated() { buf[k] = CChar(bitPattern: b) }
        buf[utf8.count] = 0
        return body(UnsafePointer(buf), utf8.count)
    }
}
