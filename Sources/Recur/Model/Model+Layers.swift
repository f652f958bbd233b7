/// Reading the layers of a model: each layer's sizes, the recurrent vectors of a stream after a step or a
/// prefill (`State.layerState`), and the per-step values of one layer over a whole sequence
/// (`Model.layerOutputs`), as Keras's `K.function([model.input], [model.layers[i].output])` gives them.
///
/// Layers are numbered as in the file (`model.layer.i.*`) and in Keras's `model.layers`: the embedding, if
/// any, is layer 0, then the recurrent layers, then the dense layers. A seq2seq model's layers are its
/// decoder's.

/// What is read of a layer.
public enum LayerValues: Int, Sendable, CaseIterable {
    /// The layer's output as the next layer reads it: an embedding's vectors, a recurrent layer's output
    /// (a bidirectional layer's two directions merged by its merge mode; one row when it returns only its
    /// last step), a dense layer's activations.
    case output = 0
    /// h of a recurrent layer, at every step; a bidirectional layer's directions side by side,
    /// [forward, backward] (2 × units floats), whatever its merge mode.
    case hidden = 1
    /// c of an LSTM layer, at every step; directions as for `hidden`.
    case cell = 2

    public var name: String {
        switch self {
        case .output: return "output"
        case .hidden: return "hidden state"
        case .cell: return "cell state"
        }
    }
}

/// The layer a whole-sequence run stops at, and what it reads there.
struct LayerProbe {
    let layer: Int
    let values: LayerValues
}

extension Model {
    /// Layer `index` of `architecture.layers`, or an out-of-range error naming the valid indices.
    public func layer(_ index: Int) throws -> LayerSpec {
        let layers = architecture.layers
        guard index >= 0, index < layers.count else {
            throw RecurError(.outOfRange, "layer \(index) is outside the model's layers (0..<\(layers.count))")
        }
        return layers[index]
    }

    /// Checks that layer `index` has `values`, and gives the recurrent layer's position in `recurrent`
    /// (nil for an embedding or dense layer, which have only an output).
    func recurrentIndex(layer index: Int, _ values: LayerValues) throws -> Int? {
        let spec = try layer(index)
        guard case .recurrent(let r) = spec else {
            guard values == .output else {
                throw RecurError(.invalidArgument, "layer \(index) is \("ae".contains(spec.kindName.first!) ? "an" : "a") \(spec.kindName) layer; it has no \(values.name) (only recurrent layers have state)")
            }
            return nil
        }
        if values == .cell && r.cell.type.stateVectors < 2 {
            throw RecurError(.invalidArgument, "layer \(index) is a \(r.cell.rawValue) layer; it has no cell state (only lstm layers do)")
        }
        return index - firstRecurrentLayer
    }

    /// Floats of `values` of layer `index` per step (`layerOutputs`' row width; `State.layerState`'s
    /// length for hidden and cell).
    public func layerWidth(_ index: Int, _ values: LayerValues) throws -> Int {
        _ = try recurrentIndex(layer: index, values)
        switch try layer(index) {
        case .embedding(_, let d): return d
        case .dense(_, let u, _): return u
        case .attention(let a): return a.outputSize
        case .recurrent(let r):
            return values == .output ? r.outputSize : (r.bidirectional ? 2 : 1) * r.units
        }
    }

    /// The per-step `values` of layer `layer` over a token sequence from a zero state, one row per step:
    /// T rows, except where the model reduces the sequence to one vector (a recurrent layer that returns
    /// only its last step, and every layer after it; a classifier's dense layers, which read the last step
    /// or the mean of the steps). The tokens run as they are (no cutting or padding to the length the file
    /// records); PAD steps of a masked model carry the state, as in `forwardSequence`. The last layer's
    /// outputs are `forwardSequence`'s rows. Not for seq2seq models (their decoder starts from the encoder).
    public func layerOutputs(_ tokens: [Int], layer: Int, values: LayerValues = .output) throws -> [[Float]] {
        let probe = try self.probe(layer, values)
        return try Self.finite(forwardSequence(tokens, probe: probe), layer: layer)
    }

    /// `layerOutputs` over T frames (T × frame size floats, row-major) of a frame model.
    public func layerOutputs(frames: UnsafeBufferPointer<Float>, layer: Int, values: LayerValues = .output) throws -> [[Float]] {
        let probe = try self.probe(layer, values)
        return try Self.finite(forwardSequence(frames: frames, probe: probe), layer: layer)
    }

    public func layerOutputs(frames: [Float], layer: Int, values: LayerValues = .output) throws -> [[Float]] {
        try frames.withUnsafeBufferPointer { try layerOutputs(frames: $0, layer: layer, values: values) }
    }

    func probe(_ layer: Int, _ values: LayerValues) throws -> LayerProbe {
        _ = try recurrentIndex(layer: layer, values)
        if architecture.task == .seq2seq {
            throw RecurError(.unsupported, "a seq2seq model's decoder starts from its encoder's state; its layers are not run over a sequence alone")
        }
        return LayerProbe(layer: layer, values: values)
    }

    static func finite(_ rows: [[Float]], layer: Int) throws -> [[Float]] {
        for row in rows where row.contains(where: { !$0.isFinite }) {
            throw RecurError(.numerical, "layer \(layer) produced a non-finite value")
        }
        return rows
    }
}

extension State {
    /// h (`.hidden`) or c (`.cell`, LSTM layers) of recurrent layer `layer` (numbered as in
    /// `architecture.layers`) after the last step or prefill: units floats, or for a bidirectional layer
    /// 2 × units, [forward, backward] (zero: such models run only on whole sequences, unless a saved state
    /// set them). `.output` reads h as well (a recurrent layer's output at a step is its h).
    public func layerState(_ layer: Int, _ values: LayerValues = .hidden) throws -> [Float] {
        guard let k = try model.recurrentIndex(layer: layer, values) else {
            throw RecurError(.invalidArgument, "layer \(layer) is not a recurrent layer; it has no state (only recurrent layers do)")
        }
        let l = model.recurrent[k]
        let n = (l.backward == nil ? 1 : 2) * l.spec.units
        let start = values == .cell ? l.cOffset! : l.hOffset
        return Array(UnsafeBufferPointer(start: vectors + start, count: n))
    }
}
