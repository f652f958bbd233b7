import Foundation
import XCTest
@testable import Recur

/// One model shared by 8 threads, each with its own state, gives the results of running one after another.
final class ConcurrencyTests: XCTestCase {
    func work(_ model: Model, _ k: Int) throws -> (logits: [Float], text: String, saved: [UInt8]) {
        let st = model.makeState()
        var logits: [Float] = []
        for i in 0..<60 { logits = Array(try st.step((i * 7 + k * 5) % model.vocabulary.count)) }
        try st.prefill((0..<40).map { ($0 * 3 + k) % model.vocabulary.count })
        var sampler = try Sampler(SamplerParams(temperature: 0.9, topK: 8, seed: UInt64(k)))
        let r = try model.generate(prompt: "AB", state: st, maxTokens: 40, sampler: &sampler) { _ in true }
        return (logits, r.text, st.save())
    }

    func testEightThreadsShareOneModel() throws {
        let (model, _) = try makeModel(cells: [.init(cell: .gru), .init(cell: .lstm, peephole: true)], hidden: 24)
        let serial = try (0..<8).map { try work(model, $0) }
        for round in 0..<2 {
            var results = [(logits: [Float], text: String, saved: [UInt8])?](repeating: nil, count: 8)
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: 8) { k in
                let r = try? work(model, k)
                lock.lock(); results[k] = r; lock.unlock()
            }
            for k in 0..<8 {
                XCTAssertEqual(results[k]?.logits, serial[k].logits, "round \(round) thread \(k)")
                XCTAssertEqual(results[k]?.text, serial[k].text)
                XCTAssertEqual(results[k]?.saved, serial[k].saved)
            }
        }
    }

    /// Models are loaded and released on many threads at once; states keep their model alive.
    func testConcurrentLoadAndFree() throws {
        let (_, builder) = try makeModel(cells: [.init(cell: .gru)], hidden: 16)
        let bytes = builder.writer().serialize()
        let path = NSTemporaryDirectory() + "/recur-conc-\(getpid()).recur"
        try builder.writer().write(to: path)
        defer { unlink(path) }
        var failures = 0
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 8) { k in
            for i in 0..<10 {
                do {
                    let m = (i + k) % 2 == 0 ? try Model(path: path) : try bytes.withUnsafeBytes { try Model(bytes: $0) }
                    var st: State? = m.makeState()
                    _ = m   // the model reference goes away here; the state keeps it alive
                    try st!.step(k % 20)
                    st = nil
                } catch {
                    lock.lock(); failures += 1; lock.unlock()
                }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testStateOutlivesModelReference() throws {
        var state: State
        do {
            let (m, _) = try makeModel(cells: [.init(cell: .lstm)])
            state = m.makeState()
        }
        // The caller's reference to the model is gone; the state still works.
        XCTAssertEqual(Array(try state.step(3)).count, 20)
    }
}
