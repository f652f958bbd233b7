#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The update rules.
public enum OptimizerKind: String, Sendable, CaseIterable {
    /// Adam (Kingma & Ba 2015) with bias correction:
    ///     m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;  θ ← θ − lr · m̂ / (√v̂ + ε)
    case adam
    /// Stochastic gradient descent with optional (heavy-ball) momentum μ:
    ///     u ← μ u + g;  θ ← θ − lr · u
    case sgd
}

/// How the learning rate changes over training.
public enum LRSchedule: String, Sendable, CaseIterable {
    /// lr throughout.
    case constant
    /// lr_min + (lr − lr_min) · (1 + cos(π · step / total steps)) / 2.
    case cosine
    /// lr · γ^⌊epoch / every⌋.
    case step
}

/// The optimizer's state: the moments (Adam) or velocity (SGD) of every weight, and the step count.
final class Optimizer {
    let kind: OptimizerKind
    let m: FloatBuffer
    let v: FloatBuffer
    /// Updates applied so far.
    var t: Int = 0

    init(kind: OptimizerKind, count: Int) {
        self.kind = kind
        m = FloatBuffer(count)
        v = FloatBuffer(kind == .adam ? count : 0)
    }

    /// Applies one update to `params` from `grad` (both `m.count` floats).
    func update(_ params: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>, lr: Float, config: TrainingConfig) {
        t += 1
        let n = m.count
        let mp = m.p
        switch kind {
        case .adam:
            let b1 = config.beta1, b2 = config.beta2, eps = config.epsilon
            let c1 = Float(1 - pow(Double(b1), Double(t))), c2 = Float(1 - pow(Double(b2), Double(t)))
            let step = lr / c1
            let vp = v.p
            for i in 0..<n {
                let g = grad[i]
                let mi = b1 * mp[i] + (1 - b1) * g
                let vi = b2 * vp[i] + (1 - b2) * g * g
                mp[i] = mi; vp[i] = vi
                params[i] -= step * mi / ((vi / c2).squareRoot() + eps)
            }
        case .sgd:
            let mu = config.momentum
            if mu == 0 {
                for i in 0..<n { params[i] -= lr * grad[i] }
            } else {
                for i in 0..<n {
                    let u = mu * mp[i] + grad[i]
                    mp[i] = u
                    params[i] -= lr * u
                }
            }
        }
    }
}

/// Clips in place: each component to [−value, value] first, then the whole vector to global L2 norm
/// `norm`. Returns the global norm before clipping by norm (after clipping by value).
func clipGradients(_ g: UnsafeMutablePointer<Float>, _ n: Int, value: Float?, norm: Float?) -> Float {
    if let c = value {
        for i in 0..<n { g[i] = min(max(g[i], -c), c) }
    }
    var sum = 0.0
    for i in 0..<n { sum += Double(g[i]) * Double(g[i]) }
    let total = Float(sum.squareRoot())
    if let c = norm, total > c, total.isFinite {
        let f = c / total
        for i in 0..<n { g[i] *= f }
    }
    return total
}

/// The learning rate at `step` (0-based, of `totalSteps`) during `epoch` (0-based).
func learningRate(_ c: TrainingConfig, step: Int, totalSteps: Int, epoch: Int) -> Float {
    switch c.schedule {
    case .constant:
        return c.learningRate
    case .cosine:
        let f = min(Double(step) / Double(max(totalSteps, 1)), 1)
        return c.minLearningRate + (c.learningRate - c.minLearningRate) * Float((1 + cos(Double.pi * f)) / 2)
    case .step:
        return c.learningRate * powf(c.stepGamma, Float(epoch / max(c.stepEpochs, 1)))
    }
}
