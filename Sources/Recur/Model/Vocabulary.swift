/// A model's vocabulary: the text piece of every token id, the special tokens, and how text is split.
///
/// - `char` vocabularies hold one Unicode scalar per ordinary token; encoding maps each scalar of the text.
/// - `word` vocabularies hold words; encoding lowercases (when `lowercase` is set) and splits the text into
///   runs of letters, digits and apostrophes, with every other non-space character a token of its own.
///   Decoding joins pieces with single spaces.
///
/// Special tokens (PAD, UNK, BOS, EOS) are ordinary ids whose pieces are never produced by encoding text.
public struct Vocabulary: Sendable {
    public enum Kind: String, Sendable { case char, word }

    public let kind: Kind
    public let pieces: [String]
    public let pad: Int?
    public let unk: Int?
    public let bos: Int?
    public let eos: Int?
    public let lowercase: Bool
    private let index: [String: Int]

    public var count: Int { pieces.count }

    public init(kind: Kind, pieces: [String], pad: Int? = nil, unk: Int? = nil, bos: Int? = nil, eos: Int? = nil,
                lowercase: Bool = false) throws {
        self.kind = kind
        self.pieces = pieces
        self.pad = pad; self.unk = unk; self.bos = bos; self.eos = eos
        self.lowercase = lowercase
        let specials = Set([pad, unk, bos, eos].compactMap { $0 })
        for s in specials where s < 0 || s >= pieces.count {
            throw RecurError(.model, "special token id \(s) is outside the vocabulary of \(pieces.count) tokens")
        }
        var index: [String: Int] = [:]
        for (i, p) in pieces.enumerated() where !specials.contains(i) {
            if kind == .char && p.unicodeScalars.count != 1 {
                throw RecurError(.model, "character vocabulary entry \(i) is \(p.unicodeScalars.count) characters long; each entry must be exactly one")
            }
            if index[p] != nil {
                throw RecurError(.model, "vocabulary entry \(i) ('\(p)') appears twice")
            }
            index[p] = i
        }
        self.index = index
    }

    /// Reads `tokenizer.*` (or `<prefix>.*`, e.g. `source_tokenizer.*`) from a file's metadata.
    public init(file: RecurFile, prefix: String = "tokenizer") throws {
        guard let kindName = file.value("\(prefix).kind")?.stringValue else {
            throw RecurError(.model, "missing metadata key '\(prefix).kind' (a string: \"char\" or \"word\")")
        }
        guard let kind = Kind(rawValue: kindName) else {
            throw RecurError(.model, "metadata '\(prefix).kind': unknown tokenizer '\(kindName)' (known: char, word)")
        }
        guard let pieces = file.value("\(prefix).tokens")?.stringsValue else {
            throw RecurError(.model, "missing metadata key '\(prefix).tokens' (an array of strings)")
        }
        func special(_ name: String) throws -> Int? {
            guard let v = file.value("\(prefix).\(name)_id") else { return nil }
            guard let i = v.intValue else { throw RecurError(.model, "metadata '\(prefix).\(name)_id' must be an integer") }
            guard i >= 0, i < Int64(pieces.count) else {
                throw RecurError(.model, "metadata '\(prefix).\(name)_id' is \(i), outside the vocabulary of \(pieces.count) tokens")
            }
            return Int(i)
        }
        try self.init(kind: kind, pieces: pieces, pad: try special("pad"), unk: try special("unk"),
                      bos: try special("bos"), eos: try special("eos"),
                      lowercase: file.value("\(prefix).lowercase")?.boolValue ?? false)
    }

    public var metadata: [(String, MetaValue)] { metadata(prefix: "tokenizer") }

    public func metadata(prefix: String) -> [(String, MetaValue)] {
        var out: [(String, MetaValue)] = [("\(prefix).kind", .string(kind.rawValue)), ("\(prefix).tokens", .strings(pieces))]
        if let v = pad { out.append(("\(prefix).pad_id", .int(Int64(v)))) }
        if let v = unk { out.append(("\(prefix).unk_id", .int(Int64(v)))) }
        if let v = bos { out.append(("\(prefix).bos_id", .int(Int64(v)))) }
        if let v = eos { out.append(("\(prefix).eos_id", .int(Int64(v)))) }
        if kind == .word { out.append(("\(prefix).lowercase", .bool(lowercase))) }
        return out
    }

    /// The id of one text piece, or nil.
    public func id(of piece: String) -> Int? { index[piece] }

    /// The text of one id.
    public func piece(_ id: Int) throws -> String {
        guard id >= 0, id < pieces.count else {
            throw RecurError(.outOfRange, "token id \(id) is outside the vocabulary (0..<\(pieces.count))")
        }
        return pieces[id]
    }

    public func isSpecial(_ id: Int) -> Bool { id == pad || id == unk || id == bos || id == eos }

    /// Splits text into token ids. Unknown pieces become UNK, or an error when the model has no UNK.
    public func encode(_ text: String) throws -> [Int] {
        var out: [Int] = []
        func add(_ piece: String) throws {
            if let i = index[piece] { out.append(i); return }
            if let u = unk { out.append(u); return }
            let shown = piece.unicodeScalars.count == 1
                ? "'\(piece.unicodeScalars.first!.escaped(asASCII: true))' (U+\(String(piece.unicodeScalars.first!.value, radix: 16, uppercase: true)))"
                : "'\(piece)'"
            throw RecurError(.outOfRange, "\(kind == .char ? "character" : "word") \(shown) is not in the model's vocabulary and the model has no UNK token")
        }
        switch kind {
        case .char:
            out.reserveCapacity(text.unicodeScalars.count)
            for s in text.unicodeScalars { try add(String(s)) }
        case .word:
            for w in Vocabulary.words(lowercase ? text.lowercased() : text) { try add(w) }
        }
        return out
    }

    /// Joins the pieces of `ids` (special tokens are skipped).
    public func decode(_ ids: [Int]) throws -> String {
        var parts: [String] = []
        for i in ids {
            let p = try piece(i)
            if !isSpecial(i) { parts.append(p) }
        }
        return kind == .char ? parts.joined() : parts.joined(separator: " ")
    }

    /// The word splitter of `word` vocabularies.
    public static func words(_ text: String) -> [String] {
        var out: [String] = []
        var cur = ""
        for ch in text.unicodeScalars {
            if ch.properties.isAlphabetic || ch.properties.numericType != nil || ch == "'" || ch == "_" {
                cur.unicodeScalars.append(ch)
            } else {
                if !cur.isEmpty { out.append(cur); cur = "" }
                if !ch.properties.isWhitespace { out.append(String(ch)) }
            }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }
}
