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

    /// Lowercased words of a text, as the runtime's word vocabularies split it.
    public static func words(_ text: String) -> [String] { Vocabulary.words(text.lowercased()) }

    /// A lowercasing word vocabulary: the `specials` first (PAD at 0), then the words seen at least
    /// `minCount` times, most frequent first (ties alphabetical), until `cap` entries in all.
    public static func vocabulary(_ sentences: [[String]], cap: Int, minCount: Int = 1, specials: [String],
                                  pad: Int?, unk: Int?, bos: Int? = nil, eos: Int? = nil) throws -> Vocabulary {
        var counts: [String: Int] = [:]
        for s in sentences { for w in s { counts[w, default: 0] += 1 } }
        let ranked = counts.filter { $0.value >= minCount && !specials.contains($0.key) }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(max(cap - specials.count, 0)).map(\.key)
        return try Vocabulary(kind: .word, pieces: specials + ranked, pad: pad, unk: unk, bos: bos, eos: eos, lowercase: true)
    }

    /// Ids of already split words (UNK for unknown ones).
    public static func ids(_ words: [String], _ v: Vocabulary) -> [Int] {
        words.map { v.id(of: $0) ?? v.unk ?? 0 }
    }

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

    /// `word/TAG word/TAG …` lines, each token split at its last '/'. Words are lowercased.
    public static func tagged(_ text: String) throws -> [(words: [String], tags: [String])] {
        var out: [(words: [String], tags: [String])] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            var w: [String] = [], t: [String] = []
            for tok in line.split(separator: " ", omittingEmptySubsequences: true) {
                let tok = tok.hasSuffix("\r") ? tok.dropLast() : tok
                guard let slash = tok.lastIndex(of: "/"), slash != tok.startIndex, tok.index(after: slash) != tok.endIndex else {
                    throw RecurError(.invalidArgument, "line \(n + 1): token '\(tok)' is not word/TAG")
                }
                w.append(String(tok[..<slash]).lowercased()); t.append(String(tok[tok.index(after: slash)...]))
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
