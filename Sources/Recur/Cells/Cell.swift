/// What the runtime knows of one cell type. Each cell's file (GRU.swift, LSTM.swift, SimpleRNN.swift)
/// holds its equations and these facts; `CellKind.type` is the one place that lists the cells, so a new
/// cell is its file plus its case there.
///
/// Every cell has a kernel W (gates·H × In), a recurrent kernel U (gates·H × H) and a bias b (gates·H);
/// `extraTensors` names what a cell has beyond them, in the order `RecurrentWeights.extra` holds them.
protocol RecurrentCell {
    /// Gate blocks stacked in W, U and b.
    static var gates: Int { get }
    /// State vectors of H floats per direction: 1 (h) or 2 (h, then c).
    static var stateVectors: Int { get }
    /// Floats of scratch a step needs (`step`'s `scratch`, `gates`' `tmp` follows gates·H of them).
    static func scratch(_ spec: RecurrentSpec) -> Int
    /// The cell's own tensors for these options: (name after the layer's prefix, shape).
    static func extraTensors(_ spec: RecurrentSpec) -> [(name: String, shape: [Int])]
    /// The cell's own options as metadata entries (`layer.N.<key>`), with the spec's values. Written to
    /// files in this order; `recur info` shows them.
    static func options(_ spec: RecurrentSpec) -> [(key: String, value: MetaValue)]
    /// Short words for the options that differ from a plain cell, for `recur info` ("reset before").
    static func notes(_ spec: RecurrentSpec) -> [String]
    /// Whether the options read from a file are valid for this cell (nil), or why not.
    static func problem(_ spec: RecurrentSpec) -> String?
    /// One step given gx = W x + b (gates·H, read only): h (and c) updated in place. `hq`, when not nil, is h
    /// already prepared for U's dtype (`matvec(_:_:_:prepared:)`), for the product U h.
    static func step(_ l: RecurrentWeights, gx: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                     c: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>, hq: UnsafeRawPointer?)
    /// Whether a step is `gates` after one product gu = U h, so that the products of many streams can be
    /// one matrix-matrix product (the batched step); otherwise the batched step runs `step` per stream.
    static func batchesRecurrentProduct(_ spec: RecurrentSpec) -> Bool
    /// The rest of a step given gu = U h (gates·H, overwritten); `tmp` holds H floats.
    static func gates(_ l: RecurrentWeights, gx: UnsafePointer<Float>, gu: UnsafeMutablePointer<Float>,
                      h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>?, tmp: UnsafeMutablePointer<Float>)
}

extension CellKind {
    /// The implementation of this cell.
    var type: any RecurrentCell.Type {
        switch self {
        case .rnn: return SimpleRNNCell.self
        case .gru: return GRUCell.self
        case .lstm: return LSTMCell.self
        }
    }

    /// `type.step`, dispatched without the protocol so that the step can inline into the layer loop.
    @inline(__always)
    func step(_ l: RecurrentWeights, gx: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
              c: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>, hq: UnsafeRawPointer?) {
        switch self {
        case .rnn: SimpleRNNCell.step(l, gx: gx, h: h, c: c, scratch: scratch, hq: hq)
        case .gru: GRUCell.step(l, gx: gx, h: h, c: c, scratch: scratch, hq: hq)
        case .lstm: LSTMCell.step(l, gx: gx, h: h, c: c, scratch: scratch, hq: hq)
        }
    }
}

extension RecurrentSpec {
    /// Number of gate blocks stacked in the kernels: 1 (rnn), 3 (gru), 4 (lstm).
    public var gates: Int { cell.type.gates }
    /// Floats of state per direction: H, or 2H for cells with a cell state (LSTM).
    public var stateWidth: Int { cell.type.stateVectors * units }
    /// The cell's own tensors beyond kernel, recurrent_kernel and bias (`RecurrentCell.extraTensors`).
    public var extraTensors: [(name: String, shape: [Int])] { cell.type.extraTensors(self) }
    /// The cell's own options as metadata entries (`RecurrentCell.options`).
    public var cellOptions: [(key: String, value: MetaValue)] { cell.type.options(self) }
    /// `RecurrentCell.notes`.
    public var cellNotes: [String] { cell.type.notes(self) }
    /// Weights of one direction.
    var directionParameters: Int {
        let g = gates * units
        return g * inputSize + g * units + g + extraTensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
    }
}
