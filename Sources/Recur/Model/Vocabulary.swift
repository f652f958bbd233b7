/// A model's vocabulary: the text piece of every token id, the special tokens, and how text is split.
///
/// - `char` vocabularies hold one Unicode scalar per ordinary token; encoding maps each scalar of the text.
/// - `word` vocabularies hold words; encoding lowercases (when `lowercase` is set) and splits the text into
///   runs of letters, digits and apostrophes, with every other non-space character a token of its own.
///   Decoding joins pieces with single spaces.
///
/// Special tokens (PAD, UNK, BOS, EOS) are ordinary ids whose pieces are never produced by encoding text.
///
/// With `unkSignatures` (FORMAT.md §11, "Unknown-word signatures", version 6) a `word` outside the
/// vocabulary is read as its signature — `<unk` plus its digit, case and suffix features and `>` — when
/// that piece is in the vocabulary, and as UNK otherwise; the text is then cut before lowercasing, so that
/// the features see the word as written.
///
/// `splitter` reproduces the preprocessing the model was trained with (`tokenizer.splitter`, FORMAT.md §11):
/// Recur's own word splitter, a Keras `Tokenizer` (`filters` become `split`, the text is cut at `split`;
/// a piece that is not in the vocabulary is dropped when there is no UNK, as Keras drops it), Python's
/// `str.split()`, or torchtext's `basic_english`.
public struct Vocabulary: Sendable {
    public enum Kind: String, Sendable { case char, word }

    /// How text becomes pieces (FORMAT.md §11, "Text preprocessing").
    public enum Splitter: String, Sendable, CaseIterable {
        /// Runs of letters, digits, `'` and `_`; every other non-space character alone (`word`); scalars (`char`).
        case recur
        /// Keras' `Tokenizer.texts_to_sequences`: lowercase (when `lowercase`), then for `word` every
        /// character of `filters` becomes `split` and the text is cut at `split` (empty pieces dropped); for
        /// `char` every scalar. Unknown pieces are dropped when there is no UNK.
        case keras
        /// Python's `str.split()`: runs of non-whitespace (after lowercasing, when `lowercase`).
        case whitespace
        /// torchtext's `get_tokenizer("basic_english")`: lowercase, `'` → ` ' `, `"` removed, `.` `,` `(`
        /// `)` `!` `?` set apart, `<br />` `;` `:` to spaces, then split at whitespace.
        case basicEnglish = "basic_english"
    }

    /// Keras' default `Tokenizer(filters=...)`.
    public static let kerasDefaultFilters = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n"

    public let kind: Kind
    public let pieces: [String]
    public let pad: Int?
    public let unk: Int?
    public let bos: Int?
    public let eos: Int?
    public let lowercase: Bool
    public let splitter: Splitter
    /// `keras` only: the characters replaced by `split`, and the separator.
    public let filters: String
    public let split: String
    /// Padding (FORMAT.md §11, "Padding"): whether PAD steps are skipped in whole-sequence runs (Keras
    /// `mask_zero=True`) or run like other tokens (an unmasked model); and, for a model trained on
    /// sequences padded to one length (Keras `pad_sequences`), that length and the sides padded and cut.
    public let padMask: Bool
    public let padLength: Int?
    public let padding: PadSide
    public let truncating: PadSide
    /// Unknown-word signatures (version 6): whether they are on, and the suffixes tried, in order.
    public let unkSignatures: Bool
    public let unkSuffixes: [String]
    private let index: [String: Int]

    /// The side `pad_sequences` pads or truncates: before the tokens (`pre`, Keras' default) or after.
    public enum PadSide: String, Sendable, CaseIterable { case pre, post }

    public var count: Int { pieces.count }

    /// The vocabulary of a model that reads no tokens (a frame model): no pieces.
    public static let empty = Vocabulary()

    private init() {
        kind = .char; pieces = []; pad = nil; unk = nil; bos = nil; eos = nil; lowercase = false; index = [:]
        splitter = .recur; filters = Vocabulary.kerasDefaultFilters; split = " "
        padMask = true; padLength = nil; padding = .pre; truncating = .pre
        unkSignatures = false; unkSuffixes = []
    }

    /// Most suffixes `tokenizer.unk_suffixes` may hold, and the longest one, in Unicode scalars.
    public static let maxUnkSuffixes = 256, maxUnkSuffixLength = 32

    public init(kind: Kind, pieces: [String], pad: Int? = nil, unk: Int? = nil, bos: Int? = nil, eos: Int? = nil,
                lowercase: Bool = false, splitter: Splitter = .recur, filters: String = Vocabulary.kerasDefaultFilters,
                split: String = " ", padMask: Bool = true, padLength: Int? = nil, padding: PadSide = .pre,
                truncating: PadSide = .pre, unkSignatures: Bool = false, unkSuffixes: [String] = []) throws {
        self.kind = kind
        self.pieces = pieces
        self.pad = pad; self.unk = unk; self.bos = bos; self.eos = eos
        self.lowercase = lowercase
        self.splitter = splitter
        self.filters = filters
        self.split = split
        if splitter == .keras && kind == .word && split.isEmpty {
            throw RecurError(.model, "a Keras tokenizer's split separator must not be empty")
        }
        self.padMask = padMask
        self.padLength = padLength
        self.padding = padding
        self.truncating = truncating
        self.unkSignatures = unkSignatures
        self.unkSuffixes = unkSuffixes
        if unkSignatures {
            guard kind == .word else { throw RecurError(.model, "unknown-word signatures need a word vocabulary") }
            guard unk != nil else { throw RecurError(.model, "unknown-word signatures need an UNK token (unk_id)") }
        } else if !unkSuffixes.isEmpty {
            throw RecurError(.model, "unknown-word suffixes are given but unknown-word signatures are off")
        }
        guard unkSuffixes.count <= Vocabulary.maxUnkSuffixes else {
            throw RecurError(.model, "\(unkSuffixes.count) unknown-word suffixes; at most \(Vocabulary.maxUnkSuffixes) are allowed")
        }
        for (i, x) in unkSuffixes.enumerated() where x.unicodeScalars.isEmpty || x.unicodeScalars.count > Vocabulary.maxUnkSuffixLength {
            throw RecurError(.model, "unknown-word suffix \(i) is \(x.unicodeScalars.count) characters long; it must be 1…\(Vocabulary.maxUnkSuffixLength)")
        }
        if let n = padLength {
            guard pad != nil else { throw RecurError(.model, "a padding length needs a PAD token (pad_id)") }
            guard n >= 1, n <= 1 << 24 else { throw RecurError(.model, "the padding length \(n) is outside 1…2^24") }
        }
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
        func string(_ name: String, _ fallback: String) throws -> String {
            guard let v = file.value("\(prefix).\(name)") else { return fallback }
            guard let s = v.stringValue else { throw RecurError(.model, "metadata '\(prefix).\(name)' must be a string") }
            return s
        }
        func side(_ name: String) throws -> PadSide {
            let v = try string(name, PadSide.pre.rawValue)
            guard let s = PadSide(rawValue: v) else {
                throw RecurError(.model, "metadata '\(prefix).\(name)' is '\(v)'; expected 'pre' or 'post'")
            }
            return s
        }
        var padMask = true
        if let v = file.value("\(prefix).pad_mask") {
            guard let b = v.boolValue else { throw RecurError(.model, "metadata '\(prefix).pad_mask' must be a boolean") }
            padMask = b
        }
        var padLength: Int? = nil
        if let v = file.value("\(prefix).pad_length") {
            guard let i = v.intValue, i >= 1, i <= 1 << 24 else {
                throw RecurError(.model, "metadata '\(prefix).pad_length' must be an integer in 1…2^24")
            }
            padLength = Int(i)
        }
        let splitterName = try string("splitter", Splitter.recur.rawValue)
        guard let splitter = Splitter(rawValue: splitterName) else {
            throw RecurError(.model, "metadata '\(prefix).splitter': unknown splitter '\(splitterName)' (known: \(Splitter.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var unkSignatures = false
        if let v = file.value("\(prefix).unk_signatures") {
            guard let b = v.boolValue else { throw RecurError(.model, "metadata '\(prefix).unk_signatures' must be a boolean") }
            unkSignatures = b
            if b && file.versionMajor < 6 {
                throw RecurError(.model, "unknown-word signatures ('\(prefix).unk_signatures') are a format 6 feature, but the file says version \(file.versionMajor).\(file.versionMinor)")
            }
        }
        var unkSuffixes: [String] = []
        if let v = file.value("\(prefix).unk_suffixes") {
            guard let a = v.stringsValue else { throw RecurError(.model, "metadata '\(prefix).unk_suffixes' must be an array of strings") }
            unkSuffixes = a
        }
        try self.init(kind: kind, pieces: pieces, pad: try special("pad"), unk: try special("unk"),
                      bos: try special("bos"), eos: try special("eos"),
                      lowercase: file.value("\(prefix).lowercase")?.boolValue ?? false, splitter: splitter,
                      filters: try string("filters", Vocabulary.kerasDefaultFilters), split: try string("split", " "),
                      padMask: padMask, padLength: padLength, padding: try side("padding"),
                      truncating: try side("truncating"), unkSignatures: unkSignatures, unkSuffixes: unkSuffixes)
    }

    public var metadata: [(String, MetaValue)] { metadata(prefix: "tokenizer") }

    public func metadata(prefix: String) -> [(String, MetaValue)] {
        var out: [(String, MetaValue)] = [("\(prefix).kind", .string(kind.rawValue)), ("\(prefix).tokens", .strings(pieces))]
        if let v = pad { out.append(("\(prefix).pad_id", .int(Int64(v)))) }
        if let v = unk { out.append(("\(prefix).unk_id", .int(Int64(v)))) }
        if let v = bos { out.append(("\(prefix).bos_id", .int(Int64(v)))) }
        if let v = eos { out.append(("\(prefix).eos_id", .int(Int64(v)))) }
        if kind == .word || splitter != .recur { out.append(("\(prefix).lowercase", .bool(lowercase))) }
        if splitter != .recur { out.append(("\(prefix).splitter", .string(splitter.rawValue))) }
        if splitter == .keras {
            out.append(("\(prefix).filters", .string(filters)))
            out.append(("\(prefix).split", .string(split)))
        }
        if !padMask { out.append(("\(prefix).pad_mask", .bool(false))) }
        if let n = padLength {
            out.append(("\(prefix).pad_length", .int(Int64(n))))
            out.append(("\(prefix).padding", .string(padding.rawValue)))
            out.append(("\(prefix).truncating", .string(truncating.rawValue)))
        }
        if unkSignatures {
            out.append(("\(prefix).unk_signatures", .bool(true)))
            out.append(("\(prefix).unk_suffixes", .strings(unkSuffixes)))
        }
        return out
    }

    /// The pieces of `text` as the model's preprocessing cuts it (before the vocabulary lookup). With
    /// unknown-word signatures the text is cut as written and each piece lowercased afterwards.
    public func pieces(of text: String) -> [String] {
        if unkSignatures { return cut(text, lowercasing: false).map { lowercase ? $0.lowercased() : $0 } }
        return cut(text, lowercasing: lowercase)
    }

    /// The splitter's pieces of `text`, lowercased first when `lowercasing` (basic_english always is).
    private func cut(_ text: String, lowercasing: Bool) -> [String] {
        switch splitter {
        case .recur:
            if kind == .char { return text.unicodeScalars.map { String($0) } }
            return Vocabulary.words(lowercasing ? text.lowercased() : text)
        case .keras:
            let t = lowercasing ? text.lowercased() : text
            if kind == .char { return t.unicodeScalars.map { String($0) } }
            return Vocabulary.kerasWords(t, filters: filters, split: split)
        case .whitespace:
            let t = lowercasing ? text.lowercased() : text
            if kind == .char { return t.unicodeScalars.filter { !$0.properties.isWhitespace }.map { String($0) } }
            return Vocabulary.whitespaceWords(t)
        case .basicEnglish:
            return Vocabulary.basicEnglish(text)
        }
    }

    /// Keras' `text_to_word_sequence` after lowercasing: each character of `filters` becomes `split`,
    /// the text is cut at every `split`, and empty pieces are dropped.
    public static func kerasWords(_ text: String, filters: String, split: String) -> [String] {
        let filtered = Set(filters.unicodeScalars)
        var t = String.UnicodeScalarView()
        let sep = Array(split.unicodeScalars)
        for s in text.unicodeScalars {
            if filtered.contains(s) { t.append(contentsOf: sep) } else { t.append(s) }
        }
        let scalars = Array(t)
        var out: [String] = [], cur = String.UnicodeScalarView(), i = 0
        while i < scalars.count {
            if !sep.isEmpty, i + sep.count <= scalars.count, Array(scalars[i..<(i + sep.count)]) == sep {
                if !cur.isEmpty { out.append(String(cur)); cur = String.UnicodeScalarView() }
                i += sep.count
            } else {
                cur.append(scalars[i]); i += 1
            }
        }
        if !cur.isEmpty { out.append(String(cur)) }
        return out
    }

    /// Python's `str.split()`: maximal runs of non-whitespace.
    public static func whitespaceWords(_ text: String) -> [String] {
        var out: [String] = [], cur = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.properties.isWhitespace || (0x1C...0x1F).contains(s.value) {
                if !cur.isEmpty { out.append(String(cur)); cur = String.UnicodeScalarView() }
            } else {
                cur.append(s)
            }
        }
        if !cur.isEmpty { out.append(String(cur)) }
        return out
    }

    /// torchtext's `basic_english` tokenizer (its regular expressions applied in order, then `split()`).
    public static func basicEnglish(_ text: String) -> [String] {
        var t = text.lowercased()
        let rules: [(String, String)] = [("'", " '  "), ("\"", ""), (".", " . "), ("<br />", " "), (",", " , "),
                                         ("(", " ( "), (")", " ) "), ("!", " ! "), ("?", " ? "), (";", " "),
                                         (":", " ")]
        for (pattern, replacement) in rules { t = replacingAll(t, pattern, replacement) }
        return whitespaceWords(t)
    }

    static func replacingAll(_ text: String, _ pattern: String, _ replacement: String) -> String {
        let p = Array(pattern.unicodeScalars), src = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView(), i = 0
        while i < src.count {
            if i + p.count <= src.count, Array(src[i..<(i + p.count)]) == p {
                out.append(contentsOf: replacement.unicodeScalars); i += p.count
            } else {
                out.append(src[i]); i += 1
            }
        }
        return String(out)
    }

    /// The id of one text piece, or nil.
    public func id(of piece: String) -> Int? { index[piece] }

    /// The id of a word as cut from a text (before lowercasing): its own (lowercased when `lowercase`), else
    /// its signature's when signatures are on and the signature is in the vocabulary, else UNK, else nil.
    public func id(ofWord word: String) -> Int? {
        if let i = index[lowercase ? word.lowercased() : word] { return i }
        if unkSignatures, let i = index[Vocabulary.signature(of: word, suffixes: unkSuffixes)] { return i }
        return unk
    }

    /// The signature of a word outside the vocabulary (FORMAT.md §11, "Unknown-word signatures"): `<unk`,
    /// then `-num` (every scalar a digit) or `-dig` (some), then `-allcap` (the first scalar uppercase, no
    /// lowercase scalar, at least two uppercase ones), `-cap` (the first scalar uppercase) or `-midcap` (a
    /// later one), then `-dash` (a `-` inside), then `-sym` (no letter or digit), then `-` and the first of `suffixes` that the lowercased
    /// word ends with while being at least three scalars longer, then `>`. Digits are scalars with a Unicode
    /// numeric type, letters the alphabetic ones; comparisons are by Unicode scalars.
    public static func signature(of word: String, suffixes: [String]) -> String {
        var s = "<unk"
        let scalars = Array(word.unicodeScalars)
        let digits = scalars.filter { $0.properties.numericType != nil }.count
        if digits > 0 { s += digits == scalars.count ? "-num" : "-dig" }
        let upper = scalars.filter { $0.properties.isUppercase }.count
        let lower = scalars.filter { $0.properties.isLowercase }.count
        if let first = scalars.first, first.properties.isUppercase {
            s += lower == 0 && upper >= 2 ? "-allcap" : "-cap"
        } else if upper > 0 {
            s += "-midcap"
        }
        if scalars.contains("-") { s += "-dash" }
        if !scalars.contains(where: { $0.properties.isAlphabetic || $0.properties.numericType != nil }) { s += "-sym" }
        let folded = Array(word.lowercased().unicodeScalars)
        for x in suffixes {
            let sx = Array(x.unicodeScalars)
            if folded.count >= sx.count + 3 && Array(folded.suffix(sx.count)) == sx { s += "-" + x; break }
        }
        return s + ">"
    }

    /// The text of one id.
    public func piece(_ id: Int) throws -> String {
        guard id >= 0, id < pieces.count else {
            throw RecurError(.outOfRange, "token id \(id) is outside the vocabulary (0..<\(pieces.count))")
        }
        return pieces[id]
    }

    public func isSpecial(_ id: Int) -> Bool { id == pad || id == unk || id == bos || id == eos }

    /// What encoding does with a character (or word) that is not in the vocabulary, when the model has no
    /// UNK token (a model with one maps every unknown piece to it, whatever the policy).
    public enum UnknownPolicy: String, Sendable, CaseIterable {
        /// Refuse the text, naming the piece and its position (the default).
        case error
        /// Leave the piece out.
        case skip
        /// Use a look-alike that is in the vocabulary: the letter without its accent (é → e, ï → i,
        /// ß → ss), ASCII quotes, dashes, ellipsis and spaces for their typographic forms; a piece with no
        /// look-alike in the vocabulary is still an error.
        case replace
    }

    /// Splits text into token ids. Unknown pieces become UNK; without UNK, `unknown` decides.
    public func encode(_ text: String, unknown: UnknownPolicy = .error) throws -> [Int] {
        var out: [Int] = []
        func refuse(_ piece: String, _ position: Int) -> RecurError {
            let scalars = piece.unicodeScalars
            let hex = scalars.count == 1 ? String(scalars.first!.value, radix: 16, uppercase: true) : ""
            let code = scalars.count == 1 ? " (U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex))" : ""
            let what = kind == .char ? "character '\(piece)'\(code) at position \(position)" : "word '\(piece)' (word \(position))"
            let hint = unknown == .replace ? " and has no look-alike in it" : ""
            return RecurError(.outOfRange, "\(what) is not in the model's vocabulary\(hint), and the model has no UNK token")
        }
        // The ids of a piece that is not in the vocabulary: UNK, nothing (skip), or its look-alike's.
        func unknownPiece(_ piece: String, at position: Int) throws -> [Int] {
            if let u = unk { return [u] }
            if splitter == .keras { return [] }         // Keras' texts_to_sequences drops it
            switch unknown {
            case .error: throw refuse(piece, position)
            case .skip: return []
            case .replace:
                var folded = ""
                for s in piece.unicodeScalars { folded += Vocabulary.lookAlike(s) ?? String(s) }
                if lowercase { folded = folded.lowercased() }
                let parts = kind == .char ? folded.unicodeScalars.map { String($0) } : Vocabulary.words(folded)
                guard folded != piece, parts.allSatisfy({ index[$0] != nil }) else { throw refuse(piece, position) }
                return parts.map { index[$0]! }
            }
        }
        if splitter == .recur && kind == .char {
            out.reserveCapacity(text.unicodeScalars.count)
            for (n, s) in text.unicodeScalars.enumerated() {
                let piece = String(s)
                if let i = index[piece] { out.append(i) } else { out += try unknownPiece(piece, at: n + 1) }
            }
            return out
        }
        if unkSignatures {
            for w in cut(text, lowercasing: false) { out.append(id(ofWord: w) ?? unk ?? 0) }
            return out
        }
        for (n, w) in pieces(of: text).enumerated() {
            if let i = index[w] { out.append(i) } else { out += try unknownPiece(w, at: n + 1) }
        }
        return out
    }

    /// The ASCII look-alike of a letter with diacritics or a typographic character, or nil.
    static func lookAlike(_ s: Unicode.Scalar) -> String? { lookAlikes[s.value] }

    /// Latin letters with diacritics (U+00C0–U+024F, U+1E00–U+1EFF) to their base letters (Unicode NFD
    /// without combining marks), a few letters to their usual spelling (ß ss, æ ae, ø o, ł l), and
    /// typographic quotes, dashes, ellipsis and spaces to ASCII.
    static let lookAlikes: [UInt32: String] = [
        0x00A0: " ", 0x00AB: "\"", 0x00AD: "", 0x00BB: "\"", 0x00C0: "A", 0x00C1: "A", 0x00C2: "A", 0x00C3: "A",
        0x00C4: "A", 0x00C5: "A", 0x00C6: "AE", 0x00C7: "C", 0x00C8: "E", 0x00C9: "E", 0x00CA: "E", 0x00CB: "E",
        0x00CC: "I", 0x00CD: "I", 0x00CE: "I", 0x00CF: "I", 0x00D1: "N", 0x00D2: "O", 0x00D3: "O", 0x00D4: "O",
        0x00D5: "O", 0x00D6: "O", 0x00D8: "O", 0x00D9: "U", 0x00DA: "U", 0x00DB: "U", 0x00DC: "U", 0x00DD: "Y",
        0x00DF: "ss", 0x00E0: "a", 0x00E1: "a", 0x00E2: "a", 0x00E3: "a", 0x00E4: "a", 0x00E5: "a", 0x00E6: "ae",
        0x00E7: "c", 0x00E8: "e", 0x00E9: "e", 0x00EA: "e", 0x00EB: "e", 0x00EC: "i", 0x00ED: "i", 0x00EE: "i",
        0x00EF: "i", 0x00F1: "n", 0x00F2: "o", 0x00F3: "o", 0x00F4: "o", 0x00F5: "o", 0x00F6: "o", 0x00F8: "o",
        0x00F9: "u", 0x00FA: "u", 0x00FB: "u", 0x00FC: "u", 0x00FD: "y", 0x00FF: "y", 0x0100: "A", 0x0101: "a",
        0x0102: "A", 0x0103: "a", 0x0104: "A", 0x0105: "a", 0x0106: "C", 0x0107: "c", 0x0108: "C", 0x0109: "c",
        0x010A: "C", 0x010B: "c", 0x010C: "C", 0x010D: "c", 0x010E: "D", 0x010F: "d", 0x0110: "D", 0x0111: "d",
        0x0112: "E", 0x0113: "e", 0x0114: "E", 0x0115: "e", 0x0116: "E", 0x0117: "e", 0x0118: "E", 0x0119: "e",
        0x011A: "E", 0x011B: "e", 0x011C: "G", 0x011D: "g", 0x011E: "G", 0x011F: "g", 0x0120: "G", 0x0121: "g",
        0x0122: "G", 0x0123: "g", 0x0124: "H", 0x0125: "h", 0x0128: "I", 0x0129: "i", 0x012A: "I", 0x012B: "i",
        0x012C: "I", 0x012D: "i", 0x012E: "I", 0x012F: "i", 0x0130: "I", 0x0131: "i", 0x0134: "J", 0x0135: "j",
        0x0136: "K", 0x0137: "k", 0x0139: "L", 0x013A: "l", 0x013B: "L", 0x013C: "l", 0x013D: "L", 0x013E: "l",
        0x0141: "L", 0x0142: "l", 0x0143: "N", 0x0144: "n", 0x0145: "N", 0x0146: "n", 0x0147: "N", 0x0148: "n",
        0x014C: "O", 0x014D: "o", 0x014E: "O", 0x014F: "o", 0x0150: "O", 0x0151: "o", 0x0152: "OE", 0x0153: "oe",
        0x0154: "R", 0x0155: "r", 0x0156: "R", 0x0157: "r", 0x0158: "R", 0x0159: "r", 0x015A: "S", 0x015B: "s",
        0x015C: "S", 0x015D: "s", 0x015E: "S", 0x015F: "s", 0x0160: "S", 0x0161: "s", 0x0162: "T", 0x0163: "t",
        0x0164: "T", 0x0165: "t", 0x0168: "U", 0x0169: "u", 0x016A: "U", 0x016B: "u", 0x016C: "U", 0x016D: "u",
        0x016E: "U", 0x016F: "u", 0x0170: "U", 0x0171: "u", 0x0172: "U", 0x0173: "u", 0x0174: "W", 0x0175: "w",
        0x0176: "Y", 0x0177: "y", 0x0178: "Y", 0x0179: "Z", 0x017A: "z", 0x017B: "Z", 0x017C: "z", 0x017D: "Z",
        0x017E: "z", 0x01A0: "O", 0x01A1: "o", 0x01AF: "U", 0x01B0: "u", 0x01CD: "A", 0x01CE: "a", 0x01CF: "I",
        0x01D0: "i", 0x01D1: "O", 0x01D2: "o", 0x01D3: "U", 0x01D4: "u", 0x01D5: "U", 0x01D6: "u", 0x01D7: "U",
        0x01D8: "u", 0x01D9: "U", 0x01DA: "u", 0x01DB: "U", 0x01DC: "u", 0x01DE: "A", 0x01DF: "a", 0x01E0: "A",
        0x01E1: "a", 0x01E6: "G", 0x01E7: "g", 0x01E8: "K", 0x01E9: "k", 0x01EA: "O", 0x01EB: "o", 0x01EC: "O",
        0x01ED: "o", 0x01F0: "j", 0x01F4: "G", 0x01F5: "g", 0x01F8: "N", 0x01F9: "n", 0x01FA: "A", 0x01FB: "a",
        0x0200: "A", 0x0201: "a", 0x0202: "A", 0x0203: "a", 0x0204: "E", 0x0205: "e", 0x0206: "E", 0x0207: "e",
        0x0208: "I", 0x0209: "i", 0x020A: "I", 0x020B: "i", 0x020C: "O", 0x020D: "o", 0x020E: "O", 0x020F: "o",
        0x0210: "R", 0x0211: "r", 0x0212: "R", 0x0213: "r", 0x0214: "U", 0x0215: "u", 0x0216: "U", 0x0217: "u",
        0x0218: "S", 0x0219: "s", 0x021A: "T", 0x021B: "t", 0x021E: "H", 0x021F: "h", 0x0226: "A", 0x0227: "a",
        0x0228: "E", 0x0229: "e", 0x022A: "O", 0x022B: "o", 0x022C: "O", 0x022D: "o", 0x022E: "O", 0x022F: "o",
        0x0230: "O", 0x0231: "o", 0x0232: "Y", 0x0233: "y", 0x1E00: "A", 0x1E01: "a", 0x1E02: "B", 0x1E03: "b",
        0x1E04: "B", 0x1E05: "b", 0x1E06: "B", 0x1E07: "b", 0x1E08: "C", 0x1E09: "c", 0x1E0A: "D", 0x1E0B: "d",
        0x1E0C: "D", 0x1E0D: "d", 0x1E0E: "D", 0x1E0F: "d", 0x1E10: "D", 0x1E11: "d", 0x1E12: "D", 0x1E13: "d",
        0x1E14: "E", 0x1E15: "e", 0x1E16: "E", 0x1E17: "e", 0x1E18: "E", 0x1E19: "e", 0x1E1A: "E", 0x1E1B: "e",
        0x1E1C: "E", 0x1E1D: "e", 0x1E1E: "F", 0x1E1F: "f", 0x1E20: "G", 0x1E21: "g", 0x1E22: "H", 0x1E23: "h",
        0x1E24: "H", 0x1E25: "h", 0x1E26: "H", 0x1E27: "h", 0x1E28: "H", 0x1E29: "h", 0x1E2A: "H", 0x1E2B: "h",
        0x1E2C: "I", 0x1E2D: "i", 0x1E2E: "I", 0x1E2F: "i", 0x1E30: "K", 0x1E31: "k", 0x1E32: "K", 0x1E33: "k",
        0x1E34: "K", 0x1E35: "k", 0x1E36: "L", 0x1E37: "l", 0x1E38: "L", 0x1E39: "l", 0x1E3A: "L", 0x1E3B: "l",
        0x1E3C: "L", 0x1E3D: "l", 0x1E3E: "M", 0x1E3F: "m", 0x1E40: "M", 0x1E41: "m", 0x1E42: "M", 0x1E43: "m",
        0x1E44: "N", 0x1E45: "n", 0x1E46: "N", 0x1E47: "n", 0x1E48: "N", 0x1E49: "n", 0x1E4A: "N", 0x1E4B: "n",
        0x1E4C: "O", 0x1E4D: "o", 0x1E4E: "O", 0x1E4F: "o", 0x1E50: "O", 0x1E51: "o", 0x1E52: "O", 0x1E53: "o",
        0x1E54: "P", 0x1E55: "p", 0x1E56: "P", 0x1E57: "p", 0x1E58: "R", 0x1E59: "r", 0x1E5A: "R", 0x1E5B: "r",
        0x1E5C: "R", 0x1E5D: "r", 0x1E5E: "R", 0x1E5F: "r", 0x1E60: "S", 0x1E61: "s", 0x1E62: "S", 0x1E63: "s",
        0x1E64: "S", 0x1E65: "s", 0x1E66: "S", 0x1E67: "s", 0x1E68: "S", 0x1E69: "s", 0x1E6A: "T", 0x1E6B: "t",
        0x1E6C: "T", 0x1E6D: "t", 0x1E6E: "T", 0x1E6F: "t", 0x1E70: "T", 0x1E71: "t", 0x1E72: "U", 0x1E73: "u",
        0x1E74: "U", 0x1E75: "u", 0x1E76: "U", 0x1E77: "u", 0x1E78: "U", 0x1E79: "u", 0x1E7A: "U", 0x1E7B: "u",
        0x1E7C: "V", 0x1E7D: "v", 0x1E7E: "V", 0x1E7F: "v", 0x1E80: "W", 0x1E81: "w", 0x1E82: "W", 0x1E83: "w",
        0x1E84: "W", 0x1E85: "w", 0x1E86: "W", 0x1E87: "w", 0x1E88: "W", 0x1E89: "w", 0x1E8A: "X", 0x1E8B: "x",
        0x1E8C: "X", 0x1E8D: "x", 0x1E8E: "Y", 0x1E8F: "y", 0x1E90: "Z", 0x1E91: "z", 0x1E92: "Z", 0x1E93: "z",
        0x1E94: "Z", 0x1E95: "z", 0x1E96: "h", 0x1E97: "t", 0x1E98: "w", 0x1E99: "y", 0x1EA0: "A", 0x1EA1: "a",
        0x1EA2: "A", 0x1EA3: "a", 0x1EA4: "A", 0x1EA5: "a", 0x1EA6: "A", 0x1EA7: "a", 0x1EA8: "A", 0x1EA9: "a",
        0x1EAA: "A", 0x1EAB: "a", 0x1EAC: "A", 0x1EAD: "a", 0x1EAE: "A", 0x1EAF: "a", 0x1EB0: "A", 0x1EB1: "a",
        0x1EB2: "A", 0x1EB3: "a", 0x1EB4: "A", 0x1EB5: "a", 0x1EB6: "A", 0x1EB7: "a", 0x1EB8: "E", 0x1EB9: "e",
        0x1EBA: "E", 0x1EBB: "e", 0x1EBC: "E", 0x1EBD: "e", 0x1EBE: "E", 0x1EBF: "e", 0x1EC0: "E", 0x1EC1: "e",
        0x1EC2: "E", 0x1EC3: "e", 0x1EC4: "E", 0x1EC5: "e", 0x1EC6: "E", 0x1EC7: "e", 0x1EC8: "I", 0x1EC9: "i",
        0x1ECA: "I", 0x1ECB: "i", 0x1ECC: "O", 0x1ECD: "o", 0x1ECE: "O", 0x1ECF: "o", 0x1ED0: "O", 0x1ED1: "o",
        0x1ED2: "O", 0x1ED3: "o", 0x1ED4: "O", 0x1ED5: "o", 0x1ED6: "O", 0x1ED7: "o", 0x1ED8: "O", 0x1ED9: "o",
        0x1EDA: "O", 0x1EDB: "o", 0x1EDC: "O", 0x1EDD: "o", 0x1EDE: "O", 0x1EDF: "o", 0x1EE0: "O", 0x1EE1: "o",
        0x1EE2: "O", 0x1EE3: "o", 0x1EE4: "U", 0x1EE5: "u", 0x1EE6: "U", 0x1EE7: "u", 0x1EE8: "U", 0x1EE9: "u",
        0x1EEA: "U", 0x1EEB: "u", 0x1EEC: "U", 0x1EED: "u", 0x1EEE: "U", 0x1EEF: "u", 0x1EF0: "U", 0x1EF1: "u",
        0x1EF2: "Y", 0x1EF3: "y", 0x1EF4: "Y", 0x1EF5: "y", 0x1EF6: "Y", 0x1EF7: "y", 0x1EF8: "Y", 0x1EF9: "y",
        0x2007: " ", 0x2009: " ", 0x2010: "-", 0x2011: "-", 0x2012: "-", 0x2013: "-", 0x2014: "-", 0x2015: "-",
        0x2018: "'", 0x2019: "'", 0x201A: "'", 0x201B: "'", 0x201C: "\"", 0x201D: "\"", 0x201E: "\"",
        0x2026: "...", 0x202F: " ", 0x2032: "'", 0x2033: "\"", 0x2212: "-"
    ]

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
