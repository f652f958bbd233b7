import Recur

/// A bidirectional recurrent layer (concat merge) over right-padded, time-major rows, shared by the
/// classifier/tagger trainer (`SequenceNetwork`) and the seq2seq trainer's encoder (`Seq2SeqNetwork`).
///
/// The forward direction runs over the rows as they are; the backward direction runs over the time-reversed
/// rows (inputs and mask reversed here), so right padding becomes left padding, skipped from a zero state:
/// each row's backward direction starts at its last real token, as the runtime's does on the unpadded
/// sequence (FORMAT.md §13.8). The backward output computed when reading step t is at reversed step T − 1 − t.
final class BidirectionalPass {
    let forward: RecurrentPass, backward: RecurrentPass
    let B: Int, H: Int, In: Int
    /// The backward direction's input and mask, time-reversed: [T·B, In] and [T·B].
    let xr: FloatBuffer, maskR: FloatBuffer
    /// ∂loss/∂(reversed input) after `backward`. [T·B, In]
    let dxr: FloatBuffer

    /// The tensors `prefix` + "forward." / "backward." of `layout` (prefix e.g. "layer.1." or "encoder.layer.1.").
    init(spec: RecurrentSpec, prefix: String, layout: ParameterLayout, streams B: Int, steps T: Int, withGradients g: Bool) throws {
        forward = RecurrentPass(try RecurrentTensors(spec: spec, prefix: prefix + "forward.", layout: layout), streams: B, steps: T, withGradients: g)
        backward = RecurrentPass(try RecurrentTensors(spec: spec, prefix: prefix + "backward.", layout: layout), streams: B, steps: T, withGradients: g)
        self.B = B; H = spec.units; In = spec.inputSize
        xr = FloatBuffer(T * B * In); maskR = FloatBuffer(T * B); dxr = FloatBuffer(g ? T * B * In : 0)
    }

    var directions: [RecurrentPass] { [forward, backward] }

    /// dst[t] = src[T − 1 − t] for rows of `width` floats, B per step.
    static func reverseSteps(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, steps T: Int, streams B: Int, width: Int) {
        for t in 0..<T { (dst + t * B * width).update(from: src + (T - 1 - t) * B * width, count: B * width) }
    }

    /// Fills `xr` and `maskR` from the forward direction's input X [T·B, In] and mask [T·B].
    func reverseInput(_ X: UnsafePointer<Float>, mask: UnsafePointer<Float>, steps T: Int) {
        Self.reverseSteps(X, into: xr.p, steps: T, streams: B, width: In)
        Self.reverseSteps(mask, into: maskR.p, steps: T, streams: B, width: 1)
    }

    /// Both directions from zero states: the forward one over X, the backward one over `xr` (which
    /// `reverseInput` filled, and the caller may have changed since, e.g. a dropout mask).
    func run(_ P: UnsafePointer<Float>, steps T: Int, input X: UnsafePointer<Float>, mask: UnsafePointer<Float>) {
        forward.start(from: nil)
        forward.forward(P, steps: T, input: X, mask: mask)
        backward.start(from: nil)
        backward.forward(P, steps: T, input: xr.p, mask: maskR.p)
    }

    /// The merged output of every step, Y[t] = [f_t; b_t] [T·B, 2H].
    func mergedSequence(into Y: UnsafeMutablePointer<Float>, steps T: Int) {
        let fo = forward.output, bo = backward.output, W = 2 * H
        for t in 0..<T {
            for b in 0..<B {
                let row = Y + (t * B + b) * W
                row.update(from: fo + (t * B + b) * H, count: H)
                (row + H).update(from: bo + ((T - 1 - t) * B + b) * H, count: H)
            }
        }
    }

    /// Each direction's last step, [f_T; b_1] [B, 2H]: the forward state after the last real token
    /// (carried through the padding) and the backward one after the first token.
    func finalStates(into Y: UnsafeMutablePointer<Float>, steps T: Int) {
        let f = forward.h(T), r = backward.h(T)
        for b in 0..<B {
            (Y + b * 2 * H).update(from: f + b * H, count: H)
            (Y + b * 2 * H + H).update(from: r + b * H, count: H)
        }
    }

    /// Sets both directions' `dout` from ∂loss/∂Y of `mergedSequence` [T·B, 2H] (nil: zeros).
    func setSequenceGradient(_ dY: UnsafePointer<Float>?, steps T: Int) {
        let df = forward.dout.p, db = backward.dout.p, W = 2 * H
        guard let dY else {
            df.update(repeating: 0, count: T * B * H); db.update(repeating: 0, count: T * B * H)
            return
        }
        for t in 0..<T {
            for b in 0..<B {
                let row = dY + (t * B + b) * W
                (df + (t * B + b) * H).update(from: row, count: H)
                (db + ((T - 1 - t) * B + b) * H).update(from: row + H, count: H)
            }
        }
    }

    /// Adds ∂loss/∂(`finalStates`) [B, 2H] to both directions' `dout` at their last step.
    func addFinalStateGradient(_ d: UnsafePointer<Float>, steps T: Int) {
        let df = forward.dout.p + (T - 1) * B * H, db = backward.dout.p + (T - 1) * B * H
        for b in 0..<B {
            for j in 0..<H {
                df[b * H + j] += d[b * 2 * H + j]
                db[b * H + j] += d[b * 2 * H + H + j]
            }
        }
    }

    /// Both directions' backward passes (after `run`), from their `dout`: ∂loss/∂X of the forward direction
    /// into `dx`, of the backward direction (reversed rows) into `dxr`.
    func backward(_ P: UnsafePointer<Float>, _ G: UnsafeMutablePointer<Float>, steps T: Int, input X: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>) {
        forward.backward(P, G, steps: T, input: X, dx: dx, mask: mask)
        backward.backward(P, G, steps: T, input: xr.p, dx: dxr.p, mask: maskR.p)
    }

    /// dx[t] += dxr[T − 1 − t]: the backward direction's input gradient added to the forward one's rows.
    func addReversedInputGradient(into dx: UnsafeMutablePointer<Float>, steps T: Int) {
        for t in 0..<T {
            let dst = dx + t * B * In, src = dxr.p + (T - 1 - t) * B * In
            for i in 0..<(B * In) { dst[i] += src[i] }
        }
    }
}
