#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Recur
import Synchronization

// The objects behind the opaque handles of recur.h. A handle is a retained Swift object passed to C as a
// pointer (Unmanaged.passRetained); `*_free` releases it. A state handle retains its model handle, so a
// model freed while states use it lives on until its last state is freed.

/// `recur_model`: the model plus NUL-terminated UTF-8 copies of its token texts (lent to C callers).
final class ModelHandle {
    let model: Model
    /// Every token's text followed by a NUL, back to back.
    let texts: UnsafeMutablePointer<CChar>
    /// Start of token i's text in `texts`; `starts[count]` is the end.
    let starts: [Int]

    /// How classify, tag and translate pad a text (RECUR_OPEN_NO_PADDING at open).
    let padding: Model.PaddingMode

    /// seq2seq: the source vocabulary's texts, laid out as `texts` and `starts` (empty otherwise).
    let sourceTexts: UnsafeMutablePointer<CChar>
    let sourceStarts: [Int]

    init(_ model: Model, padding: Model.PaddingMode = .trained) {
        self.model = model
        self.padding = padding
        (texts, starts) = Self.pack(model.vocabulary.pieces)
        (sourceTexts, sourceStarts) = Self.pack(model.sourceVocabulary?.pieces ?? [])
        self.labelTexts = model.architecture.labels.map { strdup($0)! }
    }

    /// Every piece followed by a NUL, back to back, and where each starts (the end last).
    static func pack(_ pieces: [String]) -> (UnsafeMutablePointer<CChar>, [Int]) {
        var starts: [Int] = [0]
        starts.reserveCapacity(pieces.count + 1)
        var total = 0
        for p in pieces {
            total += p.utf8.count + 1
            starts.append(total)
        }
        let buf = UnsafeMutablePointer<CChar>.allocate(capacity: max(total, 1))
        var at = 0
        for p in pieces {
            for b in p.utf8 { buf[at] = CChar(bitPattern: b); at += 1 }
            buf[at] = 0; at += 1
        }
        return (buf, starts)
    }

    /// NUL-terminated copies of the model's label names (classify and tag models), lent to C callers.
    let labelTexts: [UnsafeMutablePointer<CChar>]

    deinit {
        texts.deallocate()
        sourceTexts.deallocate()
        for p in labelTexts { free(p) }
    }
}

/// A handle that `recur_generate` holds while it runs. Calls on it made while the generation runs — from
/// its callback, or from another thread in breach of the one-call-at-a-time rule of recur.h — are refused
/// (they would change the state or the random generator under the generation's feet), and freeing it then
/// is deferred until the generation returns. Both flags are atomic, so the refusal itself is race-free.
class BusyHandle {
    let busyFlag = Atomic<Bool>(false)
    let releaseFlag = Atomic<Bool>(false)
    var busy: Bool { busyFlag.load(ordering: .acquiring) }
    /// Marks the handle busy; false when a generation already holds it.
    func acquire() -> Bool {
        busyFlag.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
    /// Clears the busy mark; true when a free was requested while busy (the caller then releases).
    func relinquish() -> Bool {
        busyFlag.store(false, ordering: .releasing)
        return releaseFlag.exchange(false, ordering: .acquiringAndReleasing)
    }
}

/// `recur_state`: a stream state and the model handle it keeps alive.
final class StateHandle: BusyHandle {
    let owner: ModelHandle
    let state: State
    /// The model's output size (read on every step without going through the model).
    let outputSize: Int
    init(_ owner: ModelHandle) {
        self.owner = owner
        self.state = owner.model.makeState()
        self.outputSize = owner.model.outputSize
    }
}

/// `recur_sampler`: sampling parameters and the random generator they seeded.
final class SamplerHandle: BusyHandle {
    var sampler: Sampler
    init(_ sampler: Sampler) { self.sampler = sampler }
}

/// Hands a new object to C: +1 retain, released by the matching `*_free`.
func export(_ object: AnyObject) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

/// The object behind a handle, checked to be of the expected class (a handle of another kind is an invalid
/// argument rather than memory corruption) and not busy in a generation; the caller holds it from here on.
@inline(__always)
func object<T: AnyObject>(_ p: OpaquePointer?, as type: T.Type, _ name: StaticString) throws -> T {
    try withObject(p, as: type, name) { $0 }
}

/// `body` on the object behind a handle, checked as `object` describes and borrowed for the call: no
/// reference counting on the paths that run every step.
@inline(__always)
func withObject<T: AnyObject, R>(_ p: OpaquePointer?, as type: T.Type, _ name: StaticString,
                                 _ body: (T) throws -> R) throws -> R {
    guard let p else { throw invalid("\(name) is NULL") }
    let raw = UnsafeRawPointer(p)
    guard Unmanaged<AnyObject>.fromOpaque(raw)._withUnsafeGuaranteedRef({ $0 is T }) else {
        throw invalid("\(name) is not a handle of the expected kind")
    }
    return try Unmanaged<T>.fromOpaque(raw)._withUnsafeGuaranteedRef { h in
        if let b = h as? BusyHandle, b.busy {
            throw invalid("\(name) is in use by a recur_generate call that has not returned (from its callback or another thread); a state or sampler serves one call at a time")
        }
        return try body(h)
    }
}

/// Releases a handle of class T; NULL and handles of another kind are ignored.
func release<T: AnyObject>(_ p: OpaquePointer?, as type: T.Type) {
    guard let p else { return }
    let u = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(p))
    let h = u.takeUnretainedValue()
    guard h is T else { return }
    if let b = h as? BusyHandle, b.busy {
        b.releaseFlag.store(true, ordering: .releasing)   // freed during a generation: released when it returns
        return
    }
    u.release()
}
