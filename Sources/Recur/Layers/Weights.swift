/// Weights of a recurrent layer (one direction), pointing into the model file.
struct RecurrentWeights: @unchecked Sendable {
    let spec: RecurrentSpec
    /// W: gates·H × In
    let kernel: Matrix
    /// U: gates·H × H
    let recurrent: Matrix
    /// b: gates·H
    let bias: UnsafePointer<Float>
    /// GRU reset-after only: gates·H
    let recurrentBias: UnsafePointer<Float>?
    /// Peephole LSTM only: 3 × H (i, f, o)
    let peephole: UnsafePointer<Float>?

    var gateRows: Int { spec.gates * spec.units }

    /// Advances one step given the input projection gx = W x + b.
    @inline(__always)
    func step(gx: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>?,
              scratch: UnsafeMutablePointer<Float>) {
        switch spec.cell {
        case .gru: GRUCell.step(self, gx: gx, h: h, scratch: scratch)
        case .lstm: LSTMCell.step(self, gx: gx, h: h, c: c!, scratch: scratch)
        case .rnn: SimpleRNNCell.step(self, gx: gx, h: h, scratch: scratch)
        }
    }

    /// gx = W x + b
    @inline(__always)
    func inputProjection(_ gx: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>) {
        gx.update(from: bias, count: gateRows)
        matvec(gx, kernel, x, accumulate: true)
    }
}

/// A fully connected layer: y = act(W x + b), W: units × In.
struct DenseWeights: @unchecked Sendable {
    let kernel: Matrix
    let bias: UnsafePointer<Float>
    let activation: Activation

    @inline(__always)
    func apply(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>) {
        y.update(from: bias, count: kernel.rows)
        matvec(y, kernel, x, accumulate: true)
        applyActivation(activation, y, kernel.rows)
    }
}

/// A token embedding table: V × E.
struct EmbeddingWeights: @unchecked Sendable {
    let table: Matrix

    /// Writes the embedding of `token` into `out` (E floats).
    @inline(__always)
    func lookup(_ token: Int, into out: UnsafeMutablePointer<Float>) {
        dequantizeRow(table, token, into: out)
    }
}
