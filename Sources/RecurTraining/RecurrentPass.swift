import Recur

// One direction of a recurrent layer over a window of T steps for B streams at once, time-major (row
// t·B + b holds stream b at step t), shared by the character trainer (`Network`, one pass per layer) and
// the task trainers (`SequenceNetwork`, `Seq2SeqNetwork`, one pass per direction). The weights and the
// gradients stay in the caller's flat buffer (`ParameterLayout`); a pass only knows their offsets
// (`RecurrentTensors`) and owns the activations of one window.
//
// The names follow the runtime's cells (Sources/Recur/Cells): gx = W x + b (input side), gh = U h (+ b_h)
// (recurrent side), gates stored after activation. The cell's own equations, forward and backward, are in
// Cells/ (one `TrainingCell` type per cell); the pass runs the parts every cell shares:
// - the input projections of all steps are one GEMM: GX [T·B, G] = X [T·B, In] · Wᵀ + b;
// - each step's recurrent product is a GEMM [B, H] · Uᵀ [H, G] (in the cell's step);
// - backward, for a gradient dh of the loss with respect to h_t (from the layer above plus from step t+1),
//   the cell's step gives dgx = ∂loss/∂gx of the step and the part of dh_prev that does not go through U,
//   then a GEMM adds the part through U (skipped at the window's first step: truncated backpropagation
//   through time);
// - the weight gradients of the window: dW += dgxᵀ · X, db += Σ dgx, dU += dghᵀ · H_prev (dgh = dgx except
//   GRU reset-after; in the cell), db_h += Σ dgh; and dX = dgx · W for the layer below.

/// Where one direction of a recurrent layer keeps its tensors in a flat f32 buffer, and its sizes.
struct RecurrentTensors {
    let spec: RecurrentSpec
    /// The training side of the cell (Cells/).
    let cell: TrainingCell.Type
    /// Units, gate rows (gates × units), input width.
    let H: Int, G: Int, In: Int
    /// Offsets of the tensors in the flat buffer.
    let w: Int, u: Int, b: Int, bh: Int?, peep: Int?

    /// The tensors `prefix` + kernel, recurrent_kernel, bias (and recurrent_bias, peephole where the cell has
    /// them) of `layout`, e.g. prefix "layer.1.", "layer.1.forward." or "encoder.layer.1.".
    init(spec: RecurrentSpec, prefix: String, layout: ParameterLayout) throws {
        self.spec = spec
        cell = spec.trainingCell
        let H = spec.units, G = spec.gates * spec.units, In = spec.inputSize
        self.H = H; self.G = G; self.In = In
        func offset(_ name: String, _ count: Int) throws -> Int {
            guard let e = layout.entry(prefix + name), e.count == count else {
                throw RecurError(.model, "tensor '\(prefix + name)' is missing or has the wrong size")
            }
            return e.offset
        }
        w = try offset("kernel", G * In)
        u = try offset("recurrent_kernel", G * H)
        b = try offset("bias", G)
        bh = layout.entry(prefix + "recurrent_bias") == nil ? nil : try offset("recurrent_bias", G)
        peep = layout.entry(prefix + "peephole") == nil ? nil : try offset("peephole", 3 * H)
    }
}

/// The activations, carried state and gradient buffers of one recurrent direction over windows of at most
/// `T` steps for `B` streams, allocated once and reused, and its forward and backward passes.
///
/// With a mask [T·B], 0 marks a PAD step, whose state is carried over unchanged (the step's output repeats
/// the previous one), as the runtime's whole-sequence inference does; backward, a PAD step passes the
/// gradients of h (and c) through to the step before and contributes nothing to the weights.
final class RecurrentPass {
    let tensors: RecurrentTensors
    let cell: TrainingCell
    let B: Int, T: Int, H: Int, G: Int, In: Int
    /// GX, GH and the gates after activation of each step. [T·B, G]
    let gx: FloatBuffer, gh: FloatBuffer, act: FloatBuffer
    /// ∂loss/∂gx of each step. [T·B, G]
    let dgx: FloatBuffer
    /// h of each step, with the initial state first: [(T+1)·B, H]. Rows B... are the layer's output.
    let hs: FloatBuffer
    /// The cell state of each step, for cells that have one (LSTM), laid out as `hs`.
    let cs: FloatBuffer?
    /// The state the last window left, which starts the next one. [B, H]
    let carryH: FloatBuffer, carryC: FloatBuffer?
    /// Where the caller puts ∂loss/∂output [T·B, H] before `backward`.
    let dout: FloatBuffer
    /// The running ∂loss/∂h (and ∂loss/∂c) of the step being differentiated. [B, H]
    let dh: FloatBuffer, dc: FloatBuffer?
    /// Recurrent (variational) dropout: one mask [B, H] per gate block (values 0 or 1/(1 − p)), the same at
    /// every step of the window, on h_prev where it enters the recurrent kernel (Keras' `recurrent_dropout`,
    /// its per-gate masks); nil: none. The masked states of each step, per gate block [gates][T·B, H], and a
    /// scratch row block [B, H], allocated on first use.
    private(set) var recurrentMask: FloatBuffer?
    private var maskedStates: FloatBuffer?, scratch: FloatBuffer?

    init(_ tensors: RecurrentTensors, streams B: Int, steps T: Int, withGradients g: Bool) {
        self.tensors = tensors
        self.B = B; self.T = T
        H = tensors.H; G = tensors.G; In = tensors.In
        let TB = T * B
        cell = tensors.cell.init(tensors, streams: B, steps: T, withGradients: g)
        gx = FloatBuffer(TB * G)
        gh = FloatBuffer(TB * G)
        act = FloatBuffer(TB * G)
        dgx = FloatBuffer(g ? TB * G : 0)
        hs = FloatBuffer((T + 1) * B * H)
        let c = tensors.cell.hasCellState
        cs = c ? FloatBuffer((T + 1) * B * H) : nil
        carryH = FloatBuffer(B * H)
        carryC = c ? FloatBuffer(B * H) : nil
        dout = FloatBuffer(g ? TB * H : 0)
        dh = FloatBuffer(B * H)
        dc = c ? FloatBuffer(B * H) : nil
    }

    /// h before step `t` of the window [B, H] (t = 0: the initial state; h(t + 1): the step's output).
    @inline(__always) func h(_ t: Int) -> UnsafeMutablePointer<Float> { hs.p + t * B * H }
    /// The cell state before step `t` [B, H] (cells with one).
    @inline(__always) func c(_ t: Int) -> UnsafeMutablePointer<Float> { cs!.p + t * B * H }
    /// Step `t`'s rows [B, G] of a gate-sized buffer (gx, gh, act, dgx).
    @inline(__always) func rows(_ buffer: FloatBuffer, _ t: Int) -> UnsafeMutablePointer<Float> { buffer.p + t * B * G }

    /// The pointers and sizes of step `t`, for the cell's step.
    func step(_ t: Int) -> CellStep {
        CellStep(B: B, H: H, G: G, ga: tensors.spec.recurrentActivation, act: tensors.spec.activation,
                 hp: h(t), hn: h(t + 1), gx: rows(gx, t), gh: rows(gh, t), gates: rows(act, t), dgx: rows(dgx, t),
                 dout: dout.p + t * B * H, dh: dh.p)
    }

    /// Sets the recurrent dropout masks, `gates` blocks of [B, H] (0 or 1/(1 − p)), for the following
    /// passes; nil removes them.
    func setRecurrentMask(_ masks: [Float]?) {
        guard let masks else { recurrentMask = nil; return }
        let gates = G / H
        precondition(masks.count == gates * B * H)
        if maskedStates == nil { maskedStates = FloatBuffer(gates * T * B * H); scratch = FloatBuffer(B * H) }
        let m = recurrentMask ?? FloatBuffer(gates * B * H)
        m.load(masks)
        recurrentMask = m
    }

    /// The states gate block `g` multiplied at steps 0, 1, … (h_prev ⊙ mask_g), [T·B, H]; with recurrent
    /// dropout only.
    private func masked(_ g: Int) -> UnsafeMutablePointer<Float> { maskedStates!.p + g * T * B * H }

    /// h_prev ⊙ mask_g as gate block `g` multiplied it at step `t` of the last forward pass [B, H] (with
    /// recurrent dropout only).
    func maskedState(_ g: Int, step t: Int) -> [Float] { Array(UnsafeBufferPointer(start: masked(g) + t * B * H, count: B * H)) }

    /// gh of step `t` [B, G] (its first `n` columns) = h_prev · U[0..<n]ᵀ (with recurrent dropout, gate
    /// block g multiplies h_prev ⊙ mask_g).
    func recurrentProduct(_ P: UnsafePointer<Float>, _ t: Int, columns n: Int) {
        guard let m = recurrentMask else {
            sgemm(false, true, m: B, n: n, k: H, h(t), lda: H, P + tensors.u, ldb: H, beta: 0, rows(gh, t), ldc: G)
            return
        }
        let BH = B * H, hp = h(t)
        for g in 0..<(n / H) {
            let s = masked(g) + t * BH, mg = m.p + g * BH
            for i in 0..<BH { s[i] = hp[i] * mg[i] }
            sgemm(false, true, m: B, n: H, k: H, s, lda: H, P + tensors.u + g * H * H, ldb: H, beta: 0, rows(gh, t) + g * H, ldc: G)
        }
    }

    /// dh = D · U[0..<k] (+ dh with `beta` 1), for D [B, k] with rows G apart: the gradient into h_prev
    /// through U (with recurrent dropout, each gate block's part times its mask).
    func gradientThroughU(_ P: UnsafePointer<Float>, _ D: UnsafePointer<Float>, gates k: Int, beta: Float,
                          into dh: UnsafeMutablePointer<Float>) {
        guard let m = recurrentMask else {
            sgemm(false, false, m: B, n: H, k: k, D, lda: G, P + tensors.u, ldb: H, beta: beta, dh, ldc: H)
            return
        }
        let BH = B * H, tmp = scratch!.p
        if beta == 0 { dh.update(repeating: 0, count: BH) }
        for g in 0..<(k / H) {
            sgemm(false, false, m: B, n: H, k: H, D + g * H, lda: G, P + tensors.u + g * H * H, ldb: H, beta: 0, tmp, ldc: H)
            let mg = m.p + g * BH
            for i in 0..<BH { dh[i] += tmp[i] * mg[i] }
        }
    }

    /// grad[m rows] += Dᵀ · H_prev over `T` steps, for D [T·B, m] with rows G apart: the recurrent weight
    /// gradient of the rows that multiply h_prev (with recurrent dropout, block g's masked states).
    func addStateWeightGradient(_ D: UnsafePointer<Float>, rows m: Int, steps T: Int, into grad: UnsafeMutablePointer<Float>) {
        guard recurrentMask != nil else { addWeightGradient(D, rows: m, states: hs.p, steps: T, into: grad); return }
        for g in 0..<(m / H) {
            sgemm(true, false, m: H, n: H, k: T * B, D + g * H, lda: G, masked(g), ldb: H, beta: 1, grad + g * H * H, ldc: H)
        }
    }

    /// grad[m rows] += Dᵀ · S over `T` steps, for D [T·B, m] with rows G apart and S [T·B, H] (the states
    /// the rows of U multiplied): a recurrent weight gradient.
    func addWeightGradient(_ D: UnsafePointer<Float>, rows m: Int, states S: UnsafePointer<Float>, steps T: Int,
                           into grad: UnsafeMutablePointer<Float>) {
        sgemm(true, false, m: m, n: H, k: T * B, D, lda: G, S, ldb: H, beta: 1, grad, ldc: H)
    }

    /// Outputs [T·B, H] of the last forward pass.
    var output: UnsafeMutablePointer<Float> { hs.p + B * H }

    /// Zeroes the carried state.
    func resetState() {
        carryH.zero()
        carryC?.zero()
    }

    /// Starts the next window from `initial` h [B, H] (nil: zeros) and a zero cell state.
    func start(from initial: UnsafePointer<Float>?) {
        resetState()
        if let h0 = initial { carryH.p.update(from: h0, count: B * H) }
    }

    /// Forward pass over `T` steps of `X` [T·B, In], from the carried state, which it then replaces by the
    /// state after the window. `P` is the flat buffer that holds the weights. `beforeStep(t)`, when given, is
    /// called before step t (h(t) holds the step before's output) and may rewrite X's rows of step t; it
    /// returns true when it did, and the step's input projections are then computed again.
    func forward(_ P: UnsafePointer<Float>, steps T: Int, input X: UnsafePointer<Float>, mask: UnsafePointer<Float>? = nil,
                 beforeStep: ((Int) -> Bool)? = nil) {
        let TB = T * B
        let W = P + tensors.w, bias = P + tensors.b
        let gx = self.gx.p, hs = self.hs.p
        // GX [T·B, G] = X · Wᵀ + b
        for i in 0..<TB { (gx + i * G).update(from: bias, count: G) }
        sgemm(false, true, m: TB, n: G, k: In, X, lda: In, W, ldb: In, beta: 1, gx, ldc: G)
        hs.update(from: carryH.p, count: B * H)
        if let c = cs { c.p.update(from: carryC!.p, count: B * H) }

        for t in 0..<T {
            if let beforeStep, beforeStep(t) {
                let g = gx + t * B * G
                for i in 0..<B { (g + i * G).update(from: bias, count: G) }
                sgemm(false, true, m: B, n: G, k: In, X + t * B * In, lda: In, W, ldb: In, beta: 1, g, ldc: G)
            }
            cell.forwardStep(self, P, t)
            if let m = mask {
                let hp = hs + t * B * H, hn = hs + (t + 1) * B * H
                for b in 0..<B where m[t * B + b] == 0 {
                    (hn + b * H).update(from: hp + b * H, count: H)
                    if let c = cs { (c.p + (t + 1) * B * H + b * H).update(from: c.p + t * B * H + b * H, count: H) }
                }
            }
        }
        carryH.p.update(from: hs + T * B * H, count: B * H)
        if let c = cs { carryC!.p.update(from: c.p + T * B * H, count: B * H) }
    }

    /// Backward pass (after `forward` on the same window and mask). Reads ∂loss/∂outputs from `dout`, adds
    /// the weight gradients to `grad` (a flat buffer laid out as `P`) and writes ∂loss/∂X into `dx` [T·B, In].
    /// Gradients stop at the window's initial state (truncated backpropagation through time); see
    /// `initialStateGradient`. `afterStep(t)`, when given, is called once step t is differentiated (its
    /// rows of `dgx` are final) and before step t − 1 is, so it may still add to `dout` of the earlier steps.
    func backward(_ P: UnsafePointer<Float>, _ grad: UnsafeMutablePointer<Float>, steps T: Int, input X: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>? = nil, afterStep: ((Int) -> Void)? = nil) {
        let TB = T * B
        let W = P + tensors.w
        let dgx = self.dgx.p, dout = self.dout.p
        let dh = self.dh.p, dc = self.dc?.p
        dh.update(repeating: 0, count: B * H)
        dc?.update(repeating: 0, count: B * H)
        var keepH = [Float](repeating: 0, count: mask == nil ? 0 : B * H), keepC = keepH

        for t in stride(from: T - 1, through: 0, by: -1) {
            let doutt = dout + t * B * H
            if let m = mask {
                // A PAD step: keep the gradients to pass through, and run the cell's backward on zeros.
                for b in 0..<B where m[t * B + b] == 0 {
                    for j in 0..<H {
                        keepH[b * H + j] = doutt[b * H + j] + dh[b * H + j]; dh[b * H + j] = -doutt[b * H + j]
                        if let dc { keepC[b * H + j] = dc[b * H + j]; dc[b * H + j] = 0 }
                    }
                }
            }
            cell.backwardStep(self, P, grad, t)
            if t > 0 { cell.addRecurrentGradient(self, P, t, into: dh) }
            if let m = mask {
                for b in 0..<B where m[t * B + b] == 0 {
                    for j in 0..<H {
                        dh[b * H + j] = keepH[b * H + j]
                        if let dc { dc[b * H + j] = keepC[b * H + j] }
                    }
                }
            }
            afterStep?(t)
        }

        // Weight gradients of the window.
        sgemm(true, false, m: G, n: In, k: TB, dgx, lda: G, X, ldb: In, beta: 1, grad + tensors.w, ldc: In)
        columnSums(dgx, rows: TB, cols: G, into: grad + tensors.b)
        cell.addRecurrentWeightGradients(self, grad, steps: T)
        // dX = dGX · W
        sgemm(false, false, m: TB, n: In, k: G, dgx, lda: G, W, ldb: In, beta: 0, dx, ldc: In)
    }

    /// ∂loss/∂(initial h) [B, H] after `backward`: the window's first step's gradient into h_prev, which
    /// `backward` leaves out. (The cell state's part, for cells that have one, is not included.)
    func initialStateGradient(_ P: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        out.update(from: dh.p, count: B * H)
        cell.addRecurrentGradient(self, P, 0, into: out)
    }
}

/// One step of a window as a cell's step sees it.
struct CellStep {
    let B: Int, H: Int, G: Int
    /// The gate and the candidate (output) activations.
    let ga: Activation, act: Activation
    /// h before and after the step. [B, H]
    let hp: UnsafeMutablePointer<Float>, hn: UnsafeMutablePointer<Float>
    /// The step's rows of gx, gh, the gates after activation and ∂loss/∂gx. [B, G]
    let gx: UnsafeMutablePointer<Float>, gh: UnsafeMutablePointer<Float>, gates: UnsafeMutablePointer<Float>,
        dgx: UnsafeMutablePointer<Float>
    /// ∂loss/∂output of the step, and the running ∂loss/∂h (from the step after). [B, H]
    let dout: UnsafeMutablePointer<Float>, dh: UnsafeMutablePointer<Float>
}

/// The training side of a recurrent cell: the facts the trainers need about it and its forward and
/// backward step over the buffers of a `RecurrentPass`. One type per cell, in Cells/; `RecurrentSpec.
/// trainingCell` picks it.
protocol TrainingCell: AnyObject {
    /// Whether the cell carries a second state vector besides h (LSTM's c), which the pass then keeps,
    /// carries from window to window and the checkpoints save.
    static var hasCellState: Bool { get }
    /// Adjusts the biases [G] of a freshly initialized layer (LSTM: forget gate +1).
    static func initializeBias(_ bias: UnsafeMutablePointer<Float>, units: Int)

    /// The cell's own buffers for windows of `steps` steps of `streams` streams.
    init(_ tensors: RecurrentTensors, streams: Int, steps: Int, withGradients: Bool)
    /// Step `t`: from h (and c) before the step to after it, and the gates after activation (`act`),
    /// with `gx` of the step already computed.
    func forwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int)
    /// Backward of step `t`, with dh = dout + `pass.dh`: writes ∂loss/∂gx of the step into `pass.dgx`, sets
    /// `pass.dh` (and `pass.dc`) to the part of ∂loss/∂(state before the step) that does not go through U,
    /// and adds the step's share of weight gradients kept per step (peepholes).
    func backwardStep(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ t: Int)
    /// Adds (or, for cells whose step leaves nothing in `dh`, writes) the gradient into h before step `t`
    /// through U.
    func addRecurrentGradient(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int, into dh: UnsafeMutablePointer<Float>)
    /// dU (and db_h) of the window.
    func addRecurrentWeightGradients(_ pass: RecurrentPass, _ grad: UnsafeMutablePointer<Float>, steps T: Int)
}

/// Cells whose gradient with respect to gh is the one with respect to gx (dgh = dgx) and whose step leaves
/// no part of dh_prev outside U (LSTM, SimpleRNN).
extension TrainingCell {
    static var hasCellState: Bool { false }
    static func initializeBias(_ bias: UnsafeMutablePointer<Float>, units: Int) {}

    /// dh_prev = dgx · U.
    func addRecurrentGradient(_ pass: RecurrentPass, _ P: UnsafePointer<Float>, _ t: Int, into dh: UnsafeMutablePointer<Float>) {
        pass.gradientThroughU(P, pass.rows(pass.dgx, t), gates: pass.G, beta: 0, into: dh)
    }

    /// dU += dgxᵀ · H_prev over the window.
    func addRecurrentWeightGradients(_ pass: RecurrentPass, _ grad: UnsafeMutablePointer<Float>, steps T: Int) {
        pass.addStateWeightGradient(pass.dgx.p, rows: pass.G, steps: T, into: grad + pass.tensors.u)
    }
}

extension RecurrentSpec {
    /// The training side of this layer's cell.
    var trainingCell: TrainingCell.Type {
        switch cell {
        case .gru: return resetAfter ? TrainingGRU.self : TrainingGRUResetBefore.self
        case .lstm: return TrainingLSTM.self
        case .rnn: return TrainingSimpleRNN.self
        }
    }
}
