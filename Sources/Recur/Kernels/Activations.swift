import CRecurKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// σ(x) = 1 / (1 + e^-x)
@inline(__always) public func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

/// Applies `a` element-wise to x[0..<n] in place (softmax over the whole vector).
package func applyActivation(_ a: Activation, _ x: UnsafeMutablePointer<Float>, _ n: Int) {
    if a == .softmax { softmaxInPlace(x, n) } else { applyElementwise(a, x, n) }
}

/// Applies `a` element-wise to x[0..<n] in place, softmax counting as linear (as `activate` does).
/// tanh and sigmoid are vectorized (CRecurKernels' rk_activate: AVX2 exp, else libm).
@inline(__always)
package func applyElementwise(_ a: Activation, _ x: UnsafeMutablePointer<Float>, _ n: Int) {
    if a == .linear || a == .softmax { return }
    rk_activate(a.kernelKind, x, n)
}

extension Activation {
    /// The kind of CRecurKernels' rk_activate (softmax counting as linear).
    @inline(__always) var kernelKind: Int32 {
        switch self {
        case .linear, .softmax: return Int32(RK_LINEAR)
        case .relu: return Int32(RK_RELU)
        case .tanh: return Int32(RK_TANH)
        case .sigmoid: return Int32(RK_SIGMOID)
        case .hardSigmoidKeras2: return Int32(RK_HARD_SIGMOID_KERAS2)
        case .hardSigmoidKeras3: return Int32(RK_HARD_SIGMOID_KERAS3)
        }
    }
}

/// Scalar form of `a` (not valid for softmax).
@inline(__always) public func activate(_ a: Activation, _ x: Float) -> Float {
    switch a {
    case .linear, .softmax: return x
    case .relu: return max(x, 0)
    case .tanh: return tanhf(x)
    case .sigmoid: return sigmoid(x)
    case .hardSigmoidKeras2: return min(max(0.2 * x + 0.5, 0), 1)
    case .hardSigmoidKeras3: return min(max(x / 6 + 0.5, 0), 1)
    }
}

/// x_i ← exp(x_i − max x) / Σ_j exp(x_j − max x)
package func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    guard n > 0 else { return }
    var m = x[0]
    for i in 1..<n where x[i] > m { m = x[i] }
    var s: Float = 0
    for i in 0..<n { x[i] = expf(x[i] - m); s += x[i] }
    let inv = 1 / s
    for i in 0..<n { x[i] *= inv }
}
