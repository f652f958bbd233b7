import Recur

/// Where each tensor of a model lives in one flat f32 buffer: the tensors of `ModelBuilder.tensorShapes`,
/// in that order, each in the runtime's layout (row-major, gate blocks stacked along rows).
public struct ParameterLayout: Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public let entries: [Entry]
    /// Total number of floats.
    public let count: Int
    private let index: [String: Int]

    public init(_ architecture: Architecture) {
        var entries: [Entry] = []
        var offset = 0
        for (name, shape) in ModelBuilder.tensorShapes(architecture) {
            entries.append(Entry(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        self.entries = entries
        count = offset
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }
}

extension ParameterLayout {
    /// A model builder holding the weights `P` (laid out as this layout) as f32 tensors, plus `metadata`.
    func modelBuilder(_ architecture: Architecture, _ vocabulary: Vocabulary, sourceVocabulary: Vocabulary? = nil,
                      weights P: UnsafePointer<Float>, metadata: [(String, MetaValue)]) -> ModelBuilder {
        var b = ModelBuilder(architecture: architecture, vocabulary: vocabulary)
        b.sourceVocabulary = sourceVocabulary
        for e in entries {
            b.set(e.name, shape: e.shape, values: Array(UnsafeBufferPointer(start: P + e.offset, count: e.count)))
        }
        b.metadata = metadata
        return b
    }
}

/// X [count, E] = the embedding rows of `tokens` (table [V, E]).
func lookUpEmbeddings(_ table: UnsafePointer<Float>, _ E: Int, _ tokens: [Int32], count: Int, into X: UnsafeMutablePointer<Float>) {
    for i in 0..<count { (X + i * E).update(from: table + Int(tokens[i]) * E, count: E) }
}

/// Adds each row of dX [count, E] to the gradient row of its token (table [V, E]), in row order; with a
/// `mask`, only the rows where it is not 0.
func addEmbeddingGradients(_ dX: UnsafePointer<Float>, _ E: Int, _ tokens: [Int32], count: Int, mask: [Float]? = nil,
                           into table: UnsafeMutablePointer<Float>) {
    for i in 0..<count {
        if let m = mask, m[i] == 0 { continue }
        let dst = table + Int(tokens[i]) * E, src = dX + i * E
        for k in 0..<E { dst[k] += src[k] }
    }
}
