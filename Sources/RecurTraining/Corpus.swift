import Recur

/// A text prepared for character-level training: checked, normalized, tokenized and split.
///
///     let corpus = try Corpus(bytes: fileBytes, name: "alice29.txt", validationFraction: 0.1)
///     corpus.vocabulary.count   // distinct characters of the whole text
///     corpus.train, corpus.validation   // token ids; validation is the last 10% of the text
///
/// The text must be UTF-8. CRLF line endings become LF before anything else, so a file gives the same
/// model whichever convention it was saved with. The vocabulary is every Unicode scalar of the whole text
/// (training and validation parts), sorted by code point.
public struct Corpus: Sendable {
    /// The normalized text (CRLF → LF).
    public let text: String
    public let vocabulary: Vocabulary
    /// Every character of the text as a token id.
    public let tokens: [Int32]
    /// The first part of `tokens`, used for training.
    public let train: ArraySlice<Int32>
    /// The last part of `tokens` (empty when the validation fraction is 0).
    public let validation: ArraySlice<Int32>
    /// CRC-32 of the normalized text's UTF-8 bytes: identifies the text in checkpoints.
    public let checksum: UInt32
    public let name: String

    /// Checks, normalizes and splits `bytes`. `validationFraction` (0 ..< 1) of the characters, taken from
    /// the end, are held out.
    public init(bytes: [UInt8], name: String = "text", validationFraction: Double = 0.1) throws {
        guard validationFraction >= 0, validationFraction < 1, validationFraction.isFinite else {
            throw RecurError(.invalidArgument, "the validation fraction must be in [0, 1) (got \(validationFraction))")
        }
        guard !bytes.isEmpty else {
            throw RecurError(.invalidArgument, "the text '\(name)' is empty")
        }
        if let bad = Corpus.firstInvalidUTF8(bytes) {
            throw RecurError(.invalidArgument, "the text '\(name)' is not valid UTF-8 (bad byte 0x\(String(bytes[bad], radix: 16)) at offset \(bad)); convert it to UTF-8 first")
        }
        let normalized = Corpus.normalizeLineEndings(bytes)
        let text = String(decoding: normalized, as: UTF8.self)
        let scalars = Array(text.unicodeScalars)
        let distinct = Set(scalars.map(\.value)).sorted()
        let vocab = try Vocabulary(kind: .char, pieces: distinct.map { String(UnicodeScalar($0)!) })
        var index: [UInt32: Int32] = [:]
        for (i, v) in distinct.enumerated() { index[v] = Int32(i) }
        let tokens = scalars.map { index[$0.value]! }
        let nVal = Int((Double(tokens.count) * validationFraction).rounded())
        if validationFraction > 0 && nVal < 2 {
            throw RecurError(.invalidArgument, "the text '\(name)' is too short to hold out \(validationFraction * 100)% for validation (\(tokens.count) characters); use a longer text or --val-fraction 0")
        }
        self.text = text
        self.vocabulary = vocab
        self.tokens = tokens
        self.train = tokens[0..<(tokens.count - nVal)]
        self.validation = tokens[(tokens.count - nVal)...]
        self.checksum = normalized.withUnsafeBytes { CRC32.checksum($0) }
        self.name = name
    }

    /// The validation part as text (what `recur eval` should be given to reproduce the validation figure).
    public var validationText: String {
        String(String.UnicodeScalarView(validation.map { vocabulary.pieces[Int($0)].unicodeScalars.first! }))
    }

    /// `bytes` with every CR LF pair replaced by LF.
    public static func normalizeLineEndings(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A {
                i += 1
                continue
            }
            out.append(bytes[i])
            i += 1
        }
        return out
    }

    /// Offset of the first byte that does not belong to a valid UTF-8 sequence, or nil.
    public static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var it = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &it) {
            case .valid(let s): offset += s.count
            case .error: return offset
            case .emptyInput: return nil
            }
        }
    }
}
