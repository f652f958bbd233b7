#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Recur

/// The corpora of the classify, tag and seq2seq tasks, their deterministic split and their vocabularies.
///
/// Split: example i (0-based, in file order, files concatenated in the order given) goes to validation
/// when i mod 10 = 8, to test when i mod 10 = 9, and to training otherwise (80/10/10, independent of
/// any seed, so an evaluation can rebuild the test set from the same files).
public enum TaskData {
    public enum Part: Sendable { case train, validation, test }

    public static func part(_ index: Int) -> Part {
        switch index % 10 {
        case 8: return .validation
        case 9: return .test
        default: return .train
        }
    }

    /// Splits a list by `part(_:)`.
    public static func split<T>(_ items: [T]) -> (train: [T], validation: [T], test: [T]) {
        var a: [T] = [], b: [T] = [], c: [T] = []
        for (i, x) in items.enumerated() {
            switch part(i) {
            case .train: a.append(x)
            case .validation: b.append(x)
            case .test: c.append(x)
            }
        }
        return (a, b, c)
    }

    /// Lowercased words of a text, as the runtime's word vocabularies split it; with `keepCase`, cut
    /// as written (as a vocabulary with unknown-word signatures cuts it, lowercasing at the lookup).
    public static func words(_ text: String, keepCase: Bool = false) -> [String] {
        Vocabulary.words(keepCase ? text : text.lowercased())
    }

    /// The suffixes `--unk-signatures` records (`tokenizer.unk_suffixes`), longest first: English
    /// inflections and derivations that tell a part of speech.
    public static let signatureSuffixes = [
        "ance", "ence", "ment", "ness", "able", "ible", "less", "ions", "ing", "ion", "ers", "est", "ive",
        "ous", "ful", "ity", "ize", "ise", "ist", "ism", "ian", "ant", "ent", "ary", "ory", "ial", "ed", "ly",
        "es", "er", "al", "ic", "an", "en", "'s", "s", "y",
    ]

    /// A lowercasing word vocabulary: the `specials` first (PAD at 0), then the words seen at least
    /// `minCount` times, most frequent first (ties alphabetical), until `cap` entries in all. Words are
    /// counted lowercased. With `signatures` (the suffixes of `tokenizer.unk_suffixes`), the signatures of
    /// the training words that are left out (seen fewer than `minCount` times, or cut by `cap`) follow the
    /// specials, most frequent first, so that those words train the pieces unknown words are read as.
    public static func vocabulary(_ sentences: [[String]], cap: Int, minCount: Int = 1, specials: [String],
                                  pad: Int?, unk: Int?, bos: Int? = nil, eos: Int? = nil,
                                  signatures: [String]? = nil) throws -> Vocabulary {
        var counts: [String: Int] = [:]
        for s in sentences { for w in s { counts[w.lowercased(), default: 0] += 1 } }
        func ranked(_ c: [String: Int], least: Int, excluding: Set<String>) -> [String] {
            c.filter { $0.value >= least && !excluding.contains($0.key) }
                .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map(\.key)
        }
        let room = max(cap - specials.count, 0)
        guard let suffixes = signatures else {
            let words = ranked(counts, least: minCount, excluding: Set(specials)).prefix(room)
            return try Vocabulary(kind: .word, pieces: specials + words, pad: pad, unk: unk, bos: bos, eos: eos, lowercase: true)
        }
        // The signatures of the words left out when the words alone fill the room (a word dropped to make
        // room for the signatures is read as its signature, which is then usually among them).
        let first = Set(ranked(counts, least: minCount, excluding: Set(specials)).prefix(room))
        var signatureCounts: [String: Int] = [:]
        for s in sentences { for w in s where !first.contains(w.lowercased()) {
            signatureCounts[Vocabulary.signature(of: w, suffixes: suffixes), default: 0] += 1
        } }
        let sigs = Array(ranked(signatureCounts, least: 1, excluding: Set(specials)).prefix(room))
        let words = ranked(counts, least: minCount, excluding: Set(specials).union(sigs)).prefix(room - sigs.count)
        return try Vocabulary(kind: .word, pieces: specials + sigs + words, pad: pad, unk: unk, bos: bos, eos: eos,
                              lowercase: true, unkSignatures: true, unkSuffixes: suffixes)
    }

    /// Ids of already split words, as the runtime reads them (`Vocabulary.id(ofWord:)`: lowercased, an
    /// unknown word as its signature when the vocabulary has them, else UNK).
    public static func ids(_ words: [String], _ v: Vocabulary) -> [Int] {
        words.map { v.id(ofWord: $0) ?? v.unk ?? 0 }
    }

    /// Ids of a sentence as the runtime encodes it (`Vocabulary.encode`; a vocabulary of this type always
    /// has UNK, so no word is refused).
    public static func ids(ofText text: String, _ v: Vocabulary) throws -> [Int] { try v.encode(text) }

    /// `sentence<TAB>label` lines (label 0 or 1).
    public static func labelled(_ text: String) throws -> [(String, Int)] {
        var out: [(String, Int)] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let l = line.hasSuffix("\r") ? line.dropLast() : line[...]
            guard let tab = l.lastIndex(of: "\t"), let y = Int(l[l.index(after: tab)...].trimmingWhitespace), y == 0 || y == 1 else {
                throw RecurError(.invalidArgument, "line \(n + 1): expected 'sentence<TAB>0|1'")
            }
            out.append((String(l[..<tab]), y))
        }
        return out
    }

    /// `word/TAG word/TAG …` lines, each token split at its last '/'. Words keep their case (the
    /// vocabulary lowercases them at the lookup).
    public static func tagged(_ text: String) throws -> [(words: [String], tags: [String])] {
        var out: [(words: [String], tags: [String])] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            var w: [String] = [], t: [String] = []
            for tok in line.split(separator: " ", omittingEmptySubsequences: true) {
                let tok = tok.hasSuffix("\r") ? tok.dropLast() : tok
                guard let slash = tok.lastIndex(of: "/"), slash != tok.startIndex, tok.index(after: slash) != tok.endIndex else {
                    throw RecurError(.invalidArgument, "line \(n + 1): token '\(tok)' is not word/TAG")
                }
                w.append(String(tok[..<slash])); t.append(String(tok[tok.index(after: slash)...]))
            }
            if !w.isEmpty { out.append((w, t)) }
        }
        return out
    }

    /// `source<TAB>target` lines.
    public static func pairs(_ text: String) throws -> [(String, String)] {
        var out: [(String, String)] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw RecurError(.invalidArgument, "line \(n + 1): expected 'source<TAB>target'") }
            out.append((String(parts[0]), String(parts[1].hasSuffix("\r") ? parts[1].dropLast() : parts[1])))
        }
        return out
    }
}

extension Substring {
    var trimmingWhitespace: Substring {
        var s = self
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return s
    }
}

/// Corpus BLEU-maxN in [0, 1]: `BLEU.corpus` (Papineni et al. 2002, no smoothing).
public func corpusBLEU(hypotheses: [[String]], references: [[String]], maxN: Int = 4) -> Double {
    BLEU.corpus(hypotheses: hypotheses, references: references, maxN: maxN)
}
