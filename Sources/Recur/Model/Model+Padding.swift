/// Whole-sequence input as the framework saw it in training and in its own `predict`: an unmasked model
/// trained on sequences that Keras' `pad_sequences(maxlen: L, padding:, truncating:)` cut and padded to L
/// gets the same L tokens (FORMAT.md §11, "Padding"; §13.8). The PAD steps then run through the network
/// like any other token unless the vocabulary masks them (`tokenizer.pad_mask`).
extension Model {
    /// How `classify` and `tag` treat a sequence.
    public enum PaddingMode: String, Sendable, CaseIterable {
        /// As the file records: cut and padded to `tokenizer.pad_length` when there is one (the default).
        case trained
        /// The tokens as they are, whatever the file records.
        case none
    }

    /// The sequence the network reads for `tokens`, and for each of its positions the index into `tokens`
    /// of the token there (nil for a PAD step added by padding). Without a padding length (or with
    /// `.none`) the tokens are returned as they are.
    public func sequenceInput(_ tokens: [Int], padding mode: PaddingMode = .trained) -> (tokens: [Int], source: [Int?]) {
        Model.padded(tokens, vocabulary, mode)
    }

    /// `pad_sequences` of one sequence with the padding `v` records.
    static func padded(_ tokens: [Int], _ v: Vocabulary, _ mode: PaddingMode) -> (tokens: [Int], source: [Int?]) {
        guard mode == .trained, let L = v.padLength, let pad = v.pad else {
            return (tokens, tokens.indices.map { $0 })
        }
        var idx = Array(tokens.indices)
        if idx.count > L {               // pad_sequences' truncating: "pre" drops the first tokens
            idx = v.truncating == .pre ? Array(idx[(idx.count - L)...]) : Array(idx[..<L])
        }
        let fill = [Int?](repeating: nil, count: L - idx.count)
        let source: [Int?] = v.padding == .pre ? fill + idx.map { $0 } : idx.map { $0 } + fill
        return (source.map { $0.map { tokens[$0] } ?? pad }, source)
    }

    /// The tokens a seq2seq encoder reads for `source`: PAD tokens dropped and the order reversed as the
    /// file says (`Architecture.encoderInput`); for an unmasked source vocabulary (`pad_mask = false`) the
    /// PAD tokens stay, and with a padding length the result is cut and padded as `pad_sequences` did.
    func encoderTokens(_ source: [Int], _ src: Vocabulary, padding mode: PaddingMode) -> [Int] {
        let tokens = architecture.encoderInput(source, pad: src.padMask ? src.pad : nil, eos: src.eos)
        return Model.padded(tokens, src, mode).tokens
    }
}
