import Recur

// recur_sampler_* and recur_generate.

// recur_sampler_params, as laid out by a C compiler: float temperature @0, int32_t top_k @4,
// float top_p @8, (4 bytes padding), uint64_t seed @16; 24 bytes. tests/c checks these offsets.
let paramsTemperature = 0, paramsTopK = 4, paramsTopP = 8, paramsSeed = 16

@_cdecl("recur_sampler_params_init")
public func recur_sampler_params_init(_ params: UnsafeMutableRawPointer?) {
    guard let params else { return }
    let d = SamplerParams()
    params.storeBytes(of: d.temperature, toByteOffset: paramsTemperature, as: Float.self)
    params.storeBytes(of: Int32(clamping: d.topK), toByteOffset: paramsTopK, as: Int32.self)
    params.storeBytes(of: d.topP, toByteOffset: paramsTopP, as: Float.self)
    params.storeBytes(of: UInt32(0), toByteOffset: paramsTopP + 4, as: UInt32.self)
    params.storeBytes(of: d.seed, toByteOffset: paramsSeed, as: UInt64.self)
}

@_cdecl("recur_sampler_new")
public func recur_sampler_new(_ params: UnsafeRawPointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try required(out, "sampler (out)")
        out.pointee = nil
        guard let params else { throw invalid("params is NULL") }
        let p = SamplerParams(
            temperature: params.load(fromByteOffset: paramsTemperature, as: Float.self),
            topK: Int(params.load(fromByteOffset: paramsTopK, as: Int32.self)),
            topP: params.load(fromByteOffset: paramsTopP, as: Float.self),
            seed: params.load(fromByteOffset: paramsSeed, as: UInt64.self))
        out.pointee = export(SamplerHandle(try Sampler(p)))
    }
}

@_cdecl("recur_sampler_free")
public func recur_sampler_free(_ sampler: OpaquePointer?) {
    release(sampler, as: SamplerHandle.self)
}

@_cdecl("recur_sampler_sample")
public func recur_sampler_sample(_ sampler: OpaquePointer?, _ logits: UnsafePointer<Float>?, _ n: UInt,
                                 _ token: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let s = try object(sampler, as: SamplerHandle.self, "sampler")
        let token = try required(token, "token (out)")
        guard let logits else { throw invalid("logits is NULL") }
        guard n > 0, n <= UInt(Int32.max) else { throw invalid("n must be in 1...\(Int32.max) (got \(n))") }
        token.pointee = Int32(try s.sampler.sample(UnsafeBufferPointer(start: logits, count: Int(n))))
    }
}

@_cdecl("recur_sampler_sample_state")
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

/// int (*recur_piece_callback)(const char *piece, size_t length, void *user)
public typealias PieceCallback = @convention(c) (UnsafePointer<CChar>?, UInt, UnsafeMutableRawPointer?) -> Int32

@_cdecl("recur_generate")
public func recur_generate(_ state: OpaquePointer?, _ sampler: OpaquePointer?, _ prompt: UnsafePointer<CChar>?,
                           _ maxTokens: Int32, _ callback: PieceCallback?, _ user: UnsafeMutableRawPointer?,
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
            var stop: Int32 = 0
            var copy = piece
            copy.withUTF8 { utf8 in
                // A NUL-terminated copy: the callback may treat the piece as a C string.
                let buf = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count + 1)
                defer { buf.deallocate() }
                for (k, b) in utf8.enumerated() { buf[k] = CChar(bitPattern: b) }
                buf[utf8.count] = 0
                stop = callback(UnsafePointer(buf), UInt(utf8.count), user)
            }
            return stop == 0
        }
        generated?.pointee = Int32(clamping: result.tokens.count)
    }
}
