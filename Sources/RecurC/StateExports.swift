import CRecurABI
import Recur

// recur_state_*: streams, stepping, saving and restoring.

@c @implementation
public func recur_state_new(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try required(out, "state (out)")
        out.pointee = nil
        let m = try object(model, as: ModelHandle.self, "model")
        out.pointee = export(StateHandle(m))
    }
}

@c @implementation
public func recur_state_free(_ state: OpaquePointer?) {
    release(state, as: StateHandle.self)
}

@c @implementation
public func recur_state_reset(_ state: OpaquePointer?) -> Int32 {
    guarded {
        try object(state, as: StateHandle.self, "state").state.reset()
    }
}

@c @implementation
public func recur_state_position(_ state: OpaquePointer?, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded {
        let s = try object(state, as: StateHandle.self, "state")
        try required(out, "position (out)").pointee = UInt64(s.state.position)
    }
}

@c @implementation
public func recur_state_output(_ state: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<Float>?>?) -> Int32 {
    guarded {
        let s = try object(state, as: StateHandle.self, "state")
        try required(out, "output (out)").pointee = UnsafePointer(s.state.output)
    }
}

/// A recur_layer_values argument as the runtime's LayerValues.
func layerValues(_ values: Int32) throws -> LayerValues {
    guard let v = LayerValues(rawValue: Int(values)) else {
        throw invalid("unknown layer values \(values) (RECUR_VALUES_OUTPUT, RECUR_VALUES_HIDDEN or RECUR_VALUES_CELL)")
    }
    return v
}

@c @implementation
public func recur_state_layer(_ state: OpaquePointer?, _ layer: Int, _ values: Int32, _ out: UnsafeMutablePointer<Float>?,
                              _ capacity: Int, _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let s = try object(state, as: StateHandle.self, "state")
        let count = try required(count, "count (out)")
        if out == nil && capacity > 0 { throw invalid("out is NULL but capacity is \(capacity)") }
        let v = try s.state.layerState(size(layer), try layerValues(values))
        try copyOut(v, out, capacity, count) { "layer \(layer)'s \(LayerValues(rawValue: Int(values))!.name) has \($0) floats" }
    }
}

@c @implementation
public func recur_state_step(_ state: OpaquePointer?, _ token: Int32,
                             _ logits: UnsafeMutablePointer<UnsafePointer<Float>?>?) -> Int32 {
    guarded {
        try withObject(state, as: StateHandle.self, "state") { s in
            let out = try s.state.step(Int(token))
            logits?.pointee = out.baseAddress
        }
    }
}

@c @implementation
public func recur_state_step_copy(_ state: OpaquePointer?, _ token: Int32, _ out: UnsafeMutablePointer<Float>?,
                                  _ capacity: Int) -> Int32 {
    guarded {
        try withObject(state, as: StateHandle.self, "state") { s in
            let out = try required(out, "out")
            let n = s.outputSize
            guard size(capacity) >= n else {
                throw RecurError(.bufferTooSmall, "the model has \(n) outputs; the buffer holds \(capacity)")
            }
            let r = try s.state.step(Int(token))
            out.update(from: r.baseAddress!, count: n)
        }
    }
}

@c @implementation
public func recur_state_prefill(_ state: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int,
                                _ logits: UnsafeMutablePointer<UnsafePointer<Float>?>?) -> Int32 {
    guarded {
        let s = try object(state, as: StateHandle.self, "state")
        guard let tokens else { throw invalid("tokens is NULL") }
        guard n > 0 else { throw invalid("prefill needs at least one token (n is 0)") }
        let list = UnsafeBufferPointer(start: tokens, count: size(n)).map { Int($0) }
        let out = try s.state.prefill(list)
        logits?.pointee = out.baseAddress
    }
}

@c @implementation
public func recur_state_step_frame(_ state: OpaquePointer?, _ frame: UnsafePointer<Float>?, _ n: Int,
                                   _ output: UnsafeMutablePointer<UnsafePointer<Float>?>?) -> Int32 {
    guarded {
        try withObject(state, as: StateHandle.self, "state") { s in
            guard let frame else { throw invalid("frame is NULL") }
            let out = try s.state.step(frame: UnsafeBufferPointer(start: frame, count: size(n)))
            output?.pointee = out.baseAddress
        }
    }
}

@c @implementation
public func recur_state_prefill_frames(_ state: OpaquePointer?, _ frames: UnsafePointer<Float>?, _ count: Int,
                                       _ frameSize: Int, _ output: UnsafeMutablePointer<UnsafePointer<Float>?>?) -> Int32 {
    guarded {
        let s = try object(state, as: StateHandle.self, "state")
        let list = try frameMatrix(s.owner.model, frames, count, frameSize)
        let out = try s.state.prefill(frames: list)
        output?.pointee = out.baseAddress
    }
}

/// A caller's count × frame size floats, after checking the pointer, the sizes and that the product fits.
func frameMatrix(_ model: Model, _ frames: UnsafePointer<Float>?, _ count: Int, _ frameSize: Int) throws -> UnsafeBufferPointer<Float> {
    guard let f = model.frameSize else { throw RecurError(.unsupported, "this model reads tokens, not frames") }
    guard let frames else { throw invalid("frames is NULL") }
    guard count > 0 else { throw invalid("the sequence needs at least one frame (count is 0)") }
    guard size(frameSize) == f else {
        throw invalid("frame_size is \(size(frameSize)); frames of this model have \(f) floats")
    }
    let (n, o) = size(count).multipliedReportingOverflow(by: f)
    guard !o else { throw invalid("count × frame_size overflows") }
    return UnsafeBufferPointer(start: frames, count: n)
}

@c @implementation
public func recur_state_size(_ state: OpaquePointer?, _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let s = try object(state, as: StateHandle.self, "state")
        try required(out, "size (out)").pointee = Int(s.state.savedSize)
    }
}

@c @implementation
public func recur_state_save(_ state: OpaquePointer?, _ buffer: UnsafeMutableRawPointer?, _ capacity: Int,
                             _ written: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let s = try object(state, as: StateHandle.self, "state")
        let written = try required(written, "written (out)")
        let need = s.state.savedSize
        written.pointee = Int(need)
        guard let buffer, size(capacity) >= need else {
            if buffer == nil && capacity > 0 { throw invalid("buffer is NULL but capacity is \(capacity)") }
            throw RecurError(.bufferTooSmall, "a saved state takes \(need) bytes; the buffer holds \(capacity)")
        }
        let bytes = s.state.save()
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        written.pointee = Int(bytes.count)
    }
}

@c @implementation
public func recur_state_restore(_ state: OpaquePointer?, _ data: UnsafeRawPointer?, _ count: Int) -> Int32 {
    guarded {
        let s = try object(state, as: StateHandle.self, "state")
        guard let data else { throw invalid("data is NULL") }
        try s.state.restore(UnsafeRawBufferPointer(start: data, count: size(count)))
    }
}

@c @implementation
public func recur_state_copy(_ destination: OpaquePointer?, _ source: OpaquePointer?) -> Int32 {
    guarded {
        let d = try object(destination, as: StateHandle.self, "destination")
        let s = try object(source, as: StateHandle.self, "source")
        if d === s { return }
        try d.state.copy(from: s.state)
    }
}
