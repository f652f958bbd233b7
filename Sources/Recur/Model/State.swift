import CRecurKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The state of one stream: every recurrent layer's hidden vector (and cell vector for LSTM), scratch
/// space and the last output. A state is used by one thread at a time; it may move between threads.
/// It keeps its model alive.
///
/// Memory layout of the recurrent state (what `save` writes): for each recurrent layer in order, h (H floats),
/// then c (H floats) for LSTM layers.
public final class State: @unchecked Sendable {
    public let model: Model
    /// h / c vectors of all layers, contiguous (`model.stateSize` floats).
    let vectors: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    /// Projection and activation buffers.
    let bufA: UnsafeMutablePointer<Float>
    let bufB: UnsafeMutablePointer<Float>
    /// The model's output after the last step (`model.outputSize` floats).
    public let output: UnsafeMutablePointer<Float>
    /// Tokens consumed since the last reset. Kept behind a pointer: a stored `var` of a class is checked for
    /// exclusive access at run time on every read and write (two runtime calls per step), a pointee is not.
    public internal(set) var position: Int {
        get { counter.pointee }
        set { counter.pointee = newValue }
    }
    private let counter: UnsafeMutablePointer<Int>
    /// An attention decoder's memory, last attentional output and weights (nil for other models).
    let attention: AttentionState?
    /// `Model.carriedX`: the last recurrent layer's h as the head's product quantized it (`applyHead`, which ends
    /// every step and prefill), which the next step's recurrent product reads instead of quantizing the same
    /// vector again, and whether it is that of the h the state holds now (`carriedFresh`: set by `applyHead` and
    /// by the batched step's head, which fill it; cleared by every other write of the vectors: reset, setLayer,
    /// copy, restore).
    let carried: UnsafeMutableRawPointer?
    private let carriedFresh: UnsafeMutablePointer<Bool>

    init(model: Model) {
        self.model = model
        attention = model.attention.map { a in
            AttentionState(a, inputWidth: model.recurrent.first?.spec.inputSize ?? 0)
        }
        vectors = .allocate(capacity: max(model.stateSize, 1))
        vectors.initialize(repeating: 0, count: max(model.stateSize, 1))
        scratch = .allocate(capacity: model.scratchSize)
        scratch.initialize(repeating: 0, count: model.scratchSize)
        bufA = .allocate(capacity: model.maxWidth * 2)
        bufA.initialize(repeating: 0, count: model.maxWidth * 2)
        bufB = .allocate(capacity: model.maxWidth * 2)
        bufB.initialize(repeating: 0, count: model.maxWidth * 2)
        output = .allocate(capacity: model.outputSize)
        output.initialize(repeating: 0, count: model.outputSize)
        counter = .allocate(capacity: 1)
        counter.initialize(to: 0)
        carried = model.carriedX.map { UnsafeMutableRawPointer.allocate(byteCount: max($0.bytes, 64), alignment: 64) }
        carriedFresh = .allocate(capacity: 1)
        carriedFresh.initialize(to: false)
    }

    deinit {
        vectors.deallocate(); scratch.deallocate(); bufA.deallocate(); bufB.deallocate(); output.deallocate()
        counter.deallocate(); carried?.deallocate(); carriedFresh.deallocate()
    }

    /// The carried quantization of h (`carried`), when it is that of the h this state holds.
    @inline(__always) var carriedX: UnsafeRawPointer? { carriedFresh.pointee ? UnsafeRawPointer(carried) : nil }

    /// Quantizes the last recurrent layer's h into `carried` (for `Model.carriedX`, which must exist), marked as
    /// that of the current h.
    @inline(__always) func carryH() -> UnsafeRawPointer {
        let x = model.carriedX!, last = model.recurrent.count - 1
        rk_prepare_x(x.dtype, carried, h(last), model.recurrent[last].spec.units)
        carriedFresh.pointee = true
        return UnsafeRawPointer(carried!)
    }

    /// Marks `carried` as stale: before anything but a step writes the vectors.
    @inline(__always) func dropCarried() { carriedFresh.pointee = false }

    /// Zeroes the recurrent state.
    public func reset() {
        dropCarried()
        attention?.reset()
        vectors.update(repeating: 0, count: max(model.stateSize, 1))
        output.update(repeating: 0, count: model.outputSize)
        position = 0
    }

    /// The recurrent state as floats (h and c of every layer, see the type's description).
    public var vector: [Float] { Array(UnsafeBufferPointer(start: vectors, count: model.stateSize)) }

    /// Hidden vector of recurrent layer `i` (forward direction).
    public func hidden(_ i: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: h(i), count: model.recurrent[i].spec.units))
    }

    /// h of recurrent layer `i` (forward direction) in this stream's state.
    @inline(__always) func h(_ i: Int) -> UnsafeMutablePointer<Float> { vectors + model.recurrent[i].hOffset }
    /// c of recurrent layer `i` (forward direction), for cells with a second state vector.
    @inline(__always) func c(_ i: Int) -> UnsafeMutablePointer<Float>? { model.recurrent[i].cOffset.map { vectors + $0 } }

    /// Sets the state of recurrent layer `i` (forward direction): h, and c for cells that have one.
    func setLayer(_ i: Int, h newH: [Float], c newC: [Float]) {
        dropCarried()
        h(i).update(from: newH, count: model.recurrent[i].spec.units)
        if let c = c(i) { c.update(from: newC, count: model.recurrent[i].spec.units) }
    }

    func checkToken(_ token: Int) throws {
        guard token >= 0, token < model.vocabulary.count else {
            throw RecurError(.outOfRange, "token id \(token) is outside the vocabulary (0..<\(model.vocabulary.count))")
        }
    }

    /// Refuses to advance the position by `n` tokens past Int.max (a restored state may start anywhere
    /// up to it): the state is left unchanged and the caller can reset it.
    func checkAdvance(_ n: Int) throws {
        guard n <= Int.max - position else {
            throw RecurError(.outOfRange, "the stream's position \(position) cannot advance by \(n) token\(n == 1 ? "" : "s") (the limit is \(Int.max)); reset the state")
        }
    }

    /// Refuses to step a model on the wrong kind of input, or one that cannot be stepped.
    /// (Why the model cannot be stepped on that input is found once, at load: `Model.stepRefusals`.)
    @inline(__always)
    func requireStepwise(frames: Bool) throws {
        if let why = frames ? model.stepRefusals.frames : model.stepRefusals.tokens {
            throw RecurError(.unsupported, why)
        }
        if let a = attention, a.memory == nil {
            throw RecurError(.unsupported, "this decoder attends over an encoded source; its state must come from encoding one (Model.encode(source:), or translate)")
        }
    }

    /// Feeds one frame (the model's frame size in floats) and returns the output, borrowed like `step`'s.
    /// A frame with NaN or infinity is refused (the state is unchanged).
    @discardableResult
    public func step(frame: UnsafeBufferPointer<Float>) throws -> UnsafeBufferPointer<Float> {
        try requireStepwise(frames: true)
        try model.checkFrames(frame, count: 1)
        try checkAdvance(1)
        advance(frame: frame.baseAddress!)
        return UnsafeBufferPointer(start: output, count: model.outputSize)
    }

    @discardableResult
    public func step(frame: [Float]) throws -> UnsafeBufferPointer<Float> {
        try frame.withUnsafeBufferPointer { try step(frame: $0) }
    }

    /// Feeds one token and returns the model's output (borrowed: valid until the next call on this state).
    @discardableResult
    public func step(_ token: Int) throws -> UnsafeBufferPointer<Float> {
        try requireStepwise(frames: false)
        try checkToken(token)
        try checkAdvance(1)
        withUnsafePointer(to: token) { advance(token: $0) }
        return UnsafeBufferPointer(start: output, count: model.outputSize)
    }

    /// Feeds a whole prompt and returns the output after its last token (borrowed, like `step`).
    ///
    /// Layer by layer, in chunks of up to 256 tokens: the input projections of the chunk's tokens are one
    /// matrix-matrix product (OpenBLAS sgemm) — or lookups in the precomputed table for the first layer —
    /// then the recurrence runs over the chunk. The result equals stepping the tokens one by one, up to
    /// floating-point summation order in the upper layers' input projections.
    @discardableResult
    public func prefill(_ tokens: [Int]) throws -> UnsafeBufferPointer<Float> {
        try requireStepwise(frames: false)
        guard !tokens.isEmpty else {
            throw RecurError(.invalidArgument, "prefill needs at least one token")
        }
        for t in tokens { try checkToken(t) }
        try checkAdvance(tokens.count)
        if attention != nil {   // attention reads each step's state: stepped one by one
            for t in tokens { withUnsafePointer(to: t) { advance(token: $0) } }
            return UnsafeBufferPointer(start: output, count: model.outputSize)
        }
        tokens.withUnsafeBufferPointer { tp in run(count: tokens.count) { .tokens(tp.baseAddress! + $0) } }
        return UnsafeBufferPointer(start: output, count: model.outputSize)
    }

    /// Feeds T frames (T × frame size floats, row-major) in one call, like `prefill` of tokens: the input
    /// projections of a chunk of frames are one sgemm. Every frame is checked before any is fed. With a
    /// mask value the frames are stepped one by one (masked frames leave the state as it is).
    @discardableResult
    public func prefill(frames: UnsafeBufferPointer<Float>) throws -> UnsafeBufferPointer<Float> {
        try requireStepwise(frames: true)
        try model.checkFrames(frames)
        let f = model.frameSize!, count = frames.count / f
        try checkAdvance(count)
        let base = frames.baseAddress!
        if model.architecture.maskValue != nil {
            for t in 0..<count { advance(frame: base + t * f) }
        } else {
            run(count: count) { .frames(base + $0 * f) }
        }
        return UnsafeBufferPointer(start: output, count: model.outputSize)
    }

    @discardableResult
    public func prefill(frames: [Float]) throws -> UnsafeBufferPointer<Float> {
        try frames.withUnsafeBufferPointer { try prefill(frames: $0) }
    }

    /// The prefill of `count` inputs (checked), chunk by chunk; `input(start)` gives the rows of the chunk
    /// beginning at `start`.
    private func run(count: Int, _ input: (Int) -> StepInput) {
        let m = model
        let maxRows = m.recurrent.map { $0.forward.gateRows }.max()!
        let maxIn = max(m.recurrent.map { max($0.forward.spec.inputSize, $0.forward.spec.units) }.max()!, 1)
        // Up to 256 tokens per chunk, fewer when the layers are so wide that the chunk's buffers would
        // pass State.prefillBudget (then the buffers stay a few times the layer sizes, which the file holds).
        let chunk = max(1, min(256, State.prefillBudget / (maxRows + 2 * maxIn)))
        let rows = min(chunk, count)
        let proj = UnsafeMutablePointer<Float>.allocate(capacity: rows * maxRows)
        let xin = UnsafeMutablePointer<Float>.allocate(capacity: rows * maxIn)
        let xout = UnsafeMutablePointer<Float>.allocate(capacity: rows * maxIn)
        defer { proj.deallocate(); xin.deallocate(); xout.deallocate() }
        var start = 0
        while start < count {
            let n = min(chunk, count - start)
            var inputs = xin, outputs = xout
            for (i, layer) in m.recurrent.enumerated() {
                let l = layer.forward
                let H = l.spec.units
                let h = self.h(i), c = self.c(i)
                let last = i == m.recurrent.count - 1
                let gx = m.gateInputs(layer: i, rows: n, input: input(start), below: i == 0 ? nil : inputs,
                                      work: inputs, proj: proj, policy: .sequence)
                for t in 0..<n {
                    l.step(gx: gx[t], h: h, c: c, scratch: scratch)
                    if !last { (outputs + t * H).update(from: h, count: H) }
                }
                swap(&inputs, &outputs)
            }
            start += n
        }
        applyHead()
        position += count
    }

    /// Floats of the buffers of one prefill chunk (16 MiB). Models of ordinary widths (gate rows + 2 ×
    /// input width up to 16384) get full 256-token chunks.
    static let prefillBudget = 4 << 20

    /// Makes this state equal to `other` (same model required).
    public func copy(from other: State) throws {
        guard other.model === model || other.model.file.checksum == model.file.checksum && other.model.stateSize == model.stateSize
                && other.model.outputSize == model.outputSize else {
            throw RecurError(.mismatch, "cannot copy a state between different models")
        }
        dropCarried()
        vectors.update(from: other.vectors, count: max(model.stateSize, 1))
        output.update(from: other.output, count: model.outputSize)
        if let a = attention, let b = other.attention { a.copy(from: b) }   // the memory is shared, not copied
        position = other.position
    }

    /// A new state equal to this one (a fork of the stream).
    public func fork() -> State {
        let s = State(model: model)
        try! s.copy(from: self)   // same model: cannot fail
        return s
    }

    // MARK: Saving and restoring

    /// Magic of a saved state: "RCRSTATE".
    public static let savedMagic: [UInt8] = Array("RCRSTATE".utf8)
    public static let savedVersion: UInt16 = 1
    static let savedHeader = 40

    /// Bytes needed by `save()`.
    public var savedSize: Int { State.savedHeader + 4 * (model.stateSize + model.outputSize) }

    /// Serializes the state: magic "RCRSTATE", u16 version, u16 model format major, u32 model checksum,
    /// u64 model file size, u64 position, u32 float count (state + output), u32 CRC-32 of the floats,
    /// then the floats (little-endian f32): recurrent state, then the last output.
    public func save() -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(savedSize)
        w.bytes.append(contentsOf: State.savedMagic)
        w.u16(State.savedVersion)
        w.u16(model.file.versionMajor)
        w.u32(model.file.checksum)
        w.u64(UInt64(model.file.storage.bytes.count))
        w.u64(UInt64(position))
        w.u32(UInt32(model.stateSize + model.outputSize))
        var crc = CRC32()
        let body = UnsafeRawBufferPointer(start: vectors, count: 4 * model.stateSize)
        let out = UnsafeRawBufferPointer(start: output, count: 4 * model.outputSize)
        crc.update(body); crc.update(out)
        w.u32(crc.value)
        w.bytes.append(contentsOf: body)
        w.bytes.append(contentsOf: out)
        return w.bytes
    }

    /// Restores a state written by `save()` for this same model. On error the state is unchanged.
    public func restore(_ bytes: UnsafeRawBufferPointer) throws {
        var r = ByteCursor(bytes, from: 0, to: bytes.count, context: "saved state")
        try r.need(State.savedHeader, "header")
        if Array(bytes[0..<8]) != State.savedMagic {
            throw RecurError(.format, "not a saved Recur state (bad magic)")
        }
        r.position = 8
        let version = try r.u16("version")
        if version != State.savedVersion {
            throw RecurError(.unsupportedVersion, "saved state version \(version) is not supported; this library reads version \(State.savedVersion)")
        }
        let major = try r.u16("format version")
        let checksum = try r.u32("model checksum")
        let fileSize = try r.u64("model size")
        let position = try r.u64("position")
        let count = try r.u32("float count")
        let crc = try r.u32("checksum")
        if major != model.file.versionMajor || checksum != model.file.checksum || fileSize != UInt64(model.file.storage.bytes.count) {
            throw RecurError(.mismatch, "the saved state belongs to another model (model checksum \(hex(checksum)), this model \(hex(model.file.checksum)))")
        }
        if Int(count) != model.stateSize + model.outputSize {
            throw RecurError(.mismatch, "the saved state holds \(count) values; this model's state has \(model.stateSize + model.outputSize)")
        }
        try r.need(4 * Int(count), "state values")
        if r.remaining != 4 * Int(count) {
            throw RecurError(.format, "saved state has \(r.remaining - 4 * Int(count)) trailing bytes")
        }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[State.savedHeader..<(State.savedHeader + 4 * Int(count))])
        if CRC32.checksum(payload) != crc {
            throw RecurError(.checksum, "saved state checksum mismatch: the buffer is corrupt")
        }
        if position > UInt64(Int.max) {
            throw RecurError(.format, "saved state position \(position) is out of range")
        }
        dropCarried()
        let v = UnsafeMutableRawBufferPointer(start: vectors, count: 4 * model.stateSize)
        v.copyMemory(from: UnsafeRawBufferPointer(rebasing: payload[0..<(4 * model.stateSize)]))
        UnsafeMutableRawBufferPointer(start: output, count: 4 * model.outputSize)
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: payload[(4 * model.stateSize)...]))
        self.position = Int(position)
        // A saved state holds no encoder outputs: an attention decoder's restored state has none, and
        // refuses to step until a source is encoded again.
        attention?.reset()
    }

    public func restore(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try restore($0) }
    }
}
