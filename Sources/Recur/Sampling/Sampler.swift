#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sampling parameters. Defaults: temperature 1, no top-k, no top-p, seed 0.
public struct SamplerParams: Sendable, Equatable {
    /// 0 picks the most likely token (greedy); higher values flatten the distribution.
    public var temperature: Float = 1
    /// Keep only the k most likely tokens (0: all).
    public var topK: Int = 0
    /// Keep the smallest set of most likely tokens whose probability reaches p (1: all).
    public var topP: Float = 1
    public var seed: UInt64 = 0

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.seed = seed
    }

    public func validate() throws {
        guard temperature.isFinite, temperature >= 0 else {
            throw RecurError(.invalidArgument, "temperature must be a finite number ≥ 0 (got \(temperature))")
        }
        guard topK >= 0 else { throw RecurError(.invalidArgument, "top-k must be ≥ 0 (got \(topK))") }
        guard topP.isFinite, topP > 0, topP <= 1 else {
            throw RecurError(.invalidArgument, "top-p must be in (0, 1] (got \(topP))")
        }
    }
}

/// Picks the next token from a model's output. Owns its random generator.
///
/// Temperature 0 is argmax (the lowest id among equal maxima). Otherwise: the candidates are sorted by
/// logit (ties by id), cut to the top k, turned into probabilities p_i = softmax(logit_i / T), cut to the
/// smallest prefix whose mass reaches top-p, renormalized, and one is drawn with a uniform u ∈ [0, 1)
/// from SplitMix64: the first candidate whose cumulative probability exceeds u·mass.
public struct Sampler: Sendable {
    public let params: SamplerParams
    public var rng: SplitMix64

    public init(_ params: SamplerParams) throws {
        try params.validate()
        self.params = params
        self.rng = SplitMix64(seed: params.seed)
    }

    /// Samples from logits (or from probabilities when `probabilities` is set: they are taken as log p).
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, probabilities: Bool = false) throws -> Int {
        guard !logits.isEmpty else { throw RecurError(.invalidArgument, "cannot sample from an empty vector") }
        for (i, v) in logits.enumerated() where v.isNaN || v == .infinity {
            throw RecurError(.numerical, "the model produced a non-finite value (\(v)) at index \(i); refusing to sample")
        }
        // Every logit −∞ (or every probability 0) leaves no distribution to draw from.
        if !logits.contains(where: { probabilities ? $0 > 0 : $0 > -.infinity }) {
            throw RecurError(.numerical, probabilities ? "every probability is zero; refusing to sample"
                                                       : "every logit is -infinity; refusing to sample")
        }
        let u = params.temperature > 0 ? rng.nextUnit() : 0
        return Sampler.pick(logits, params: params, uniform: u, probabilities: probabilities)
    }

    public mutating func sample(_ logits: [Float], probabilities: Bool = false) throws -> Int {
        try logits.withUnsafeBufferPointer { try sample($0, probabilities: probabilities) }
    }

    /// The pure part of sampling: given the uniform draw `uniform`, which token. Deterministic.
    public static func pick(_ logits: UnsafeBufferPointer<Float>, params: SamplerParams, uniform: Double,
                            probabilities: Bool = false) -> Int {
        let n = logits.count
        func score(_ i: Int) -> Double {
            probabilities ? log(max(Double(logits[i]), 0)) : Double(logits[i])
        }
        if params.temperature == 0 {
            var best = 0
            var bv = score(0)
            for i in 1..<n where score(i) > bv { best = i; bv = score(i) }
            return best
        }
        var idx = Array(0..<n)
        idx.sort { a, b in
            let sa = score(a), sb = score(b)
            return sa != sb ? sa > sb : a < b
        }
        if params.topK > 0 && params.topK < n { idx.removeLast(n - params.topK) }
        let t = Double(params.temperature)
        let top = score(idx[0])
        var p = idx.map { exp((score($0) - top) / t) }
        let total = p.reduce(0, +)
        for i in p.indices { p[i] /= total }
        var keep = p.count
        if params.topP < 1 {
            var cum = 0.0
            for i in p.indices {
                cum += p[i]
                if cum >= Double(params.topP) { keep = i + 1; break }
            }
        }
        let mass = p[0..<keep].reduce(0, +)
        let target = uniform * mass
        var cum = 0.0
        for i in 0..<keep {
            cum += p[i]
            if target < cum { return idx[i] }
        }
        return idx[keep - 1]
    }
}
