/// Weights of a recurrent layer (one direction), pointing into the model file.
struct RecurrentWeights: @unchecked Sendable {
    let spec: RecurrentSpec
    /// W: gates·H × In
    let kernel: Matrix
    /// U: gates·H × H
    let recurrent: Matrix
    /// b: gates·H
    let bias: UnsafePointer<Float>
    /// The cell's own f32 tensors, in the order of `RecurrentCell.extraTensors` (GRU reset-after: b_h;
    /// peephole LSTM: P).
    let extra: CellTensors
    let cell: any RecurrentCell.Type

    init(spec: RecurrentSpec, kernel: Matrix, recurrent: Matrix, bias: UnsafePointer<Float>, extra: CellTensors) {
        self.spec = spec; self.kernel = kernel; self.recurrent = recurrent; self.bias = bias; self.extra = extra
        cell = spec.cell.type
    }

    var gateRows: Int { spec.gates * spec.units }

    /// Advances one step given the input projection gx = W x + b (and, when not nil, h prepared for U's
    /// dtype: `hq`).
    @inline(__always)
    func step(gx: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>?,
              scratch: UnsafeMutablePointer<Float>, hq: UnsafeRawPointer? = nil) {
        spec.cell.step(self, gx: gx, h: h, c: c, scratch: scratch, hq: hq)
    }

    /// gx = W x + b
    @inline(__always)
    func inputProjection(_ gx: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>) {
        gx.update(from: bias, count: gateRows)
        matvec(gx, kernel, x, accumulate: true)
    }

    /// The same weights with the recurrent matrix split across `pool`.
    func withPool(_ pool: KernelPool) -> RecurrentWeights {
        var u = recurrent
        u.pool = pool.raw
        return RecurrentWeights(spec: spec, kernel: kernel, recurrent: u, bias: bias, extra: extra)
    }
}

/// Up to two tensors of a cell's own (`RecurrentCell.extraTensors`), held without reference counting so
/// that the layer loop copies layers freely.
struct CellTensors {
    static let capacity = 2
    let first: UnsafePointer<Float>?
    let second: UnsafePointer<Float>?

    init(_ list: [UnsafePointer<Float>] = []) {
        first = list.first
        second = list.count > 1 ? list[1] : nil
    }
}

/// A recurrent layer of a model: its weights (two directions when bidirectional) and where its state
/// lives in a stream's state vector (`State`): h of each direction (H floats each), then, for cells with a
/// second state vector, c of each direction.
struct RecurrentLayer: @unchecked Sendable {
    let forward: RecurrentWeights
    let backward: RecurrentWeights?
    /// Offsets of h and (cells with two state vectors) c of the forward direction in the state vector.
    let hOffset: Int
    let cOffset: Int?

    var spec: RecurrentSpec { forward.spec }

    /// Floats of state of this layer (all directions).
    var stateFloats: Int { (backward == nil ? 1 : 2) * spec.stateWidth }

    /// The layer placed at `offset` of the state vector.
    init(forward: RecurrentWeights, backward: RecurrentWeights?, stateOffset offset: Int) {
        self.forward = forward
        self.backward = backward
        hOffset = offset
        let dirs = backward == nil ? 1 : 2
        cOffset = forward.cell.stateVectors > 1 ? offset + dirs * forward.spec.units : nil
    }

    /// The same layer with `transform` applied to each direction's weights.
    func map(_ transform: (RecurrentWeights) -> RecurrentWeights) -> RecurrentLayer {
        RecurrentLayer(forward: transform(forward), backward: backward.map(transform), stateOffset: hOffset)
    }
}

/// A fully connected layer: y = act(W x + b), W: units × In.
struct DenseWeights: @unchecked Sendable {
    let kernel: Matrix
    let bias: UnsafePointer<Float>
    let activation: Activation

    /// y = act(W x + b); `xq`, when not nil, is x prepared for W's dtype (`matvec(_:_:_:prepared:)`).
    @inline(__always)
    func apply(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, prepared xq: UnsafeRawPointer? = nil) {
        y.update(from: bias, count: kernel.rows)
        matvec(y, kernel, x, prepared: xq, accumulate: true)
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
