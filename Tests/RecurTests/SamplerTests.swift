import XCTest
@testable import Recur

final class SamplerTests: XCTestCase {
    func testSplitMix64KnownSequence() {
        // SplitMix64 seeded with 1234567, as computed by an independent Python transcription of the published
        // algorithm (Steele, Lea & Flood 2014; also the values Vigna lists for splitmix64.c).
        var r = SplitMix64(seed: 1234567)
        XCTAssertEqual(r.next(), 6457827717110365317)
        XCTAssertEqual(r.next(), 3203168211198807973)
        XCTAssertEqual(r.next(), 9817491932198370423)
    }

    func testGreedyPicksFirstMaximum() throws {
        var s = try Sampler(SamplerParams(temperature: 0))
        XCTAssertEqual(try s.sample([0.1, 3, -2, 3]), 1)
    }

    func testTopKOneIsGreedy() throws {
        var s = try Sampler(SamplerParams(temperature: 1.5, topK: 1, seed: 9))
        for _ in 0..<20 { XCTAssertEqual(try s.sample([0.1, 0.2, 5, 0.3]), 2) }
    }

    /// The empirical distribution matches softmax(logits / T) restricted by top-k / top-p.
    func testDistribution() throws {
        let logits: [Float] = [1, 2, 0.5, -1, 1.5]
        let T: Float = 0.7
        let e = logits.map { exp(Double($0 / T)) }
        let z = e.reduce(0, +)
        var s = try Sampler(SamplerParams(temperature: T, seed: 1))
        var counts = [Int](repeating: 0, count: 5)
        let n = 40000
        for _ in 0..<n { counts[try s.sample(logits)] += 1 }
        for i in 0..<5 {
            XCTAssertEqual(Double(counts[i]) / Double(n), e[i] / z, accuracy: 0.01)
        }
        // top-p 0.5 keeps only the most likely token here (p ≈ 0.53)
        var p = try Sampler(SamplerParams(temperature: T, topP: 0.5, seed: 2))
        for _ in 0..<100 { XCTAssertEqual(try p.sample(logits), 1) }
        // top-k 2 keeps tokens 1 and 4
        var k = try Sampler(SamplerParams(temperature: T, topK: 2, seed: 3))
        var seen = Set<Int>()
        for _ in 0..<200 { seen.insert(try k.sample(logits)) }
        XCTAssertEqual(seen, [1, 4])
    }

    func testSameSeedSameSequence() throws {
        let logits: [Float] = (0..<50).map { Float($0 % 7) * 0.3 }
        var a = try Sampler(SamplerParams(temperature: 1, topK: 10, topP: 0.9, seed: 77))
        var b = try Sampler(SamplerParams(temperature: 1, topK: 10, topP: 0.9, seed: 77))
        for _ in 0..<100 { XCTAssertEqual(try a.sample(logits), try b.sample(logits)) }
    }

    func testRejectsBadParametersAndNaN() throws {
        assertThrowsRecur(.invalidArgument, "temperature") { _ = try Sampler(SamplerParams(temperature: -1)) }
        assertThrowsRecur(.invalidArgument, "top-p") { _ = try Sampler(SamplerParams(topP: 0)) }
        assertThrowsRecur(.invalidArgument, "top-k") { _ = try Sampler(SamplerParams(topK: -3)) }
        var s = try Sampler(SamplerParams())
        assertThrowsRecur(.numerical, "non-finite") { _ = try s.sample([1, .nan, 2]) }
    }
}
