#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// What a character-generator run tells its caller (`Trainer.run(onEvent:)`), and the JSON lines of the
// `recur train --log` file.

/// One optimizer step.
public struct StepReport: Sendable {
    /// 0-based epoch, and the configured number of epochs.
    public var epoch: Int, epochs: Int
    /// 1-based step within the epoch, and steps per epoch.
    public var step: Int, stepsPerEpoch: Int
    /// Steps done in the whole run, and the total the run would take without early stopping.
    public var globalStep: Int, totalSteps: Int
    /// Mean cross-entropy of the step's predictions, nats per character.
    public var loss: Double
    public var learningRate: Float
    /// Global gradient norm before clipping by norm.
    public var gradientNorm: Float
    public var charsPerSecond: Double
    /// Seconds of training so far (over all resumed parts) and an estimate of the seconds left.
    public var elapsed: Double, secondsLeft: Double

    public var bitsPerChar: Double { loss / M_LN2 }

    public var jsonLine: String {
        "{\"type\":\"step\",\"epoch\":\(epoch + 1),\"step\":\(step),\"global_step\":\(globalStep),\"loss\":\(json(loss)),\"bits_per_char\":\(json(bitsPerChar)),\"lr\":\(json(Double(learningRate))),\"grad_norm\":\(json(Double(gradientNorm))),\"chars_per_sec\":\(json(charsPerSecond)),\"elapsed\":\(json(elapsed))}"
    }
}

/// The end of an epoch.
public struct EpochReport: Sendable {
    /// 0-based.
    public var epoch: Int
    public var globalStep: Int
    /// Mean training loss over the epoch's steps (nats per character).
    public var trainLoss: Double
    public var validationLoss: Double?
    /// Whether this epoch's validation loss is the best so far (the model written to `outPath`).
    public var improved: Bool
    public var bestValidationLoss: Double?
    public var bestEpoch: Int?
    /// Epochs in a row without improvement.
    public var badEpochs: Int
    public var sample: String?
    public var charsPerSecond: Double
    public var elapsed: Double

    public var trainBitsPerChar: Double { trainLoss / M_LN2 }
    public var validationBitsPerChar: Double? { validationLoss.map { $0 / M_LN2 } }

    public var jsonLine: String {
        var s = "{\"type\":\"epoch\",\"epoch\":\(epoch + 1),\"global_step\":\(globalStep),\"train_loss\":\(json(trainLoss)),\"train_bits_per_char\":\(json(trainBitsPerChar))"
        if let v = validationLoss {
            s += ",\"val_loss\":\(json(v)),\"val_bits_per_char\":\(json(v / M_LN2)),\"val_perplexity\":\(json(exp(v)))"
        }
        s += ",\"best\":\(improved),\"chars_per_sec\":\(json(charsPerSecond)),\"elapsed\":\(json(elapsed))"
        if let t = sample { s += ",\"sample\":\(jsonString(t))" }
        return s + "}"
    }
}

public enum TrainingEvent: Sendable {
    case step(StepReport)
    case epoch(EpochReport)
    case checkpointWritten(path: String, globalStep: Int)
    case modelWritten(path: String, epoch: Int)
}

public struct TrainingSummary: Sendable {
    public enum Reason: String, Sendable {
        case completed
        case earlyStopped = "early_stopped"
        case interrupted
    }
    public var reason: Reason
    public var epochsCompleted: Int
    public var steps: Int
    public var bestValidationLoss: Double?
    /// 0-based epoch of the best validation loss.
    public var bestEpoch: Int?
    public var seconds: Double
    public var charsPerSecond: Double
    public var bestValidationBitsPerChar: Double? { bestValidationLoss.map { $0 / M_LN2 } }
}

/// A finite number as JSON (NaN and infinities become null).
func json(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }

/// A string as a JSON string literal.
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
