import ArgumentParser
import Foundation
import Recur
import RecurTraining

/// `recur eval` of the text task models: classifiers and taggers (`--data`), translators (`--pairs`).
extension Eval {
    /// The lines of each file (CRLF read as LF, empty lines skipped), with the file name and line number
    /// for error messages; an empty file is an error.
    func readLines(_ paths: [String]) throws -> [(file: String, line: Int, text: Substring)] {
        var out: [(file: String, line: Int, text: Substring)] = []
        for p in paths {
            let bytes = try readFile(p)
            if let bad = Corpus.firstInvalidUTF8(bytes) { throw CLIError("\(p) is not valid UTF-8 (bad byte at offset \(bad))") }
            let s = String(decoding: Corpus.normalizeLineEndings(bytes), as: UTF8.self)
            var n = 0
            for line in s.split(separator: "\n", omittingEmptySubsequences: false) {
                n += 1
                if !line.allSatisfy(\.isWhitespace) { out.append((p, n, line)) }
            }
            if !out.contains(where: { $0.file == p }) { throw CLIError("\(p) is empty") }
        }
        return out
    }

    /// The examples of `--part` (all of them, or the test / validation part of the 80/10/10 split that
    /// `recur train --task` makes of the same files in the same order).
    func selectPart<T>(_ items: [T]) throws -> [T] {
        switch part ?? "all" {
        case "all": return items
        case "test": return TaskData.split(items).test
        case "validation": return TaskData.split(items).validation
        case "train": return TaskData.split(items).train
        default: throw CLIError("--part must be all, test, validation or train")
        }
    }

    /// A class given by name, or else by index.
    static func classIndex(_ s: Substring, _ labels: [String]) -> Int? {
        let t = String(s.trimmingCharacters(in: .whitespaces))
        if let i = labels.firstIndex(of: t) { return i }
        if let i = Int(t), labels.indices.contains(i) { return i }
        return nil
    }

    func runData(_ files: [String]) throws {
        guard let path = model else { throw CLIError("name the classifier or tagger to evaluate") }
        if beam != nil || maxLength != nil { throw CLIError("--beam and --max-length are options of --pairs") }
        let m = try loadModel(path, load: load)
        guard m.architecture.task == .classify || m.architecture.task == .tag, m.architecture.input.frameSize == nil else {
            if m.architecture.input.frameSize != nil { throw CLIError("\(path) reads frames; evaluate it with --frames") }
            throw CLIError("\(path) is \(m.architecture.task.noun); --data evaluates a classifier or a tagger (translators: --pairs, generators: --text)")
        }
        let labels = m.labels
        let lines = try readLines(files)
        var truth: [Int] = [], predicted: [Int] = []
        var sentences = 0
        if m.architecture.task == .classify {
            var rows: [(words: [String], label: Int)] = []
            for l in lines {
                guard let tab = l.text.lastIndex(of: "\t") else {
                    throw CLIError("\(l.file) line \(l.line): expected 'sentence<TAB>label' (no tab)")
                }
                guard let y = Self.classIndex(l.text[l.text.index(after: tab)...], labels) else {
                    throw CLIError("\(l.file) line \(l.line): label '\(l.text[l.text.index(after: tab)...])' is not one of the model's labels (\(labels.joined(separator: ", ")); or an index 0…\(labels.count - 1))")
                }
                let w = TaskData.words(String(l.text[..<tab]), keepCase: m.vocabulary.unkSignatures)
                if !w.isEmpty { rows.append((w, y)) }   // as `recur train --task classify`, before the split
            }
            for r in try selectPart(rows) {
                let p = try m.classify(tokens: TaskData.ids(r.words, m.vocabulary))
                truth.append(r.label); predicted.append(ClassificationMetrics.argmax(p))
            }
            sentences = truth.count
        } else {
            let index = Dictionary(labels.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            var rows: [(words: [String], tags: [Int])] = []
            for l in lines {
                var w: [String] = [], t: [Int] = []
                for tok in l.text.split(separator: " ", omittingEmptySubsequences: true) {
                    guard let slash = tok.lastIndex(of: "/"), slash != tok.startIndex, tok.index(after: slash) != tok.endIndex else {
                        throw CLIError("\(l.file) line \(l.line): token '\(tok)' is not word/TAG")
                    }
                    let tag = String(tok[tok.index(after: slash)...])
                    guard let k = index[tag] else {
                        throw CLIError("\(l.file) line \(l.line): tag '\(tag)' is not one of the model's \(labels.count) tags (\(labels.joined(separator: " ")))")
                    }
                    w.append(String(tok[..<slash])); t.append(k)   // as written: the lookup lowercases
                }
                if !w.isEmpty { rows.append((w, t)) }
            }
            for r in try selectPart(rows) {
                let p = try m.tag(tokens: TaskData.ids(r.words, m.vocabulary))
                guard p.count == r.tags.count else { throw CLIError("the model tagged \(p.count) of \(r.tags.count) words (a padding length shorter than the sentence)") }
                truth += r.tags; predicted += p
                sentences += 1
            }
        }
        guard !truth.isEmpty else { throw CLIError("no examples in \(part ?? "all") of \(files.joined(separator: " "))") }
        let e = ClassificationMetrics(labels: labels, truth: truth, predicted: predicted)
        let unit = m.architecture.task == .classify ? "sentences" : "tokens"
        if json {
            var obj = e.dictionary
            obj["model"] = path; obj["data"] = files; obj["part"] = part ?? "all"; obj["task"] = m.architecture.task.rawValue
            obj["sentences"] = sentences
            obj["predictions"] = predicted
            print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
            return
        }
        print("model        \(path)")
        print("data         \(files.joined(separator: " ")) (\(part ?? "all"): \(sentences) sentences\(unit == "tokens" ? ", \(e.count) tokens" : ""))")
        print("accuracy     \(String(format: "%.2f", e.accuracy * 100))% (\(e.correct) of \(e.count) \(unit))")
        print("macro F1     \(String(format: "%.2f", e.macro.f1 * 100))%")
        for line in e.report() { print(line) }
    }

    func runPairs(_ files: [String]) throws {
        guard let path = model else { throw CLIError("name the translator to evaluate") }
        let m = try loadModel(path, task: .seq2seq, load: load)
        guard let sv = m.sourceVocabulary else { throw CLIError("\(path) has no source vocabulary") }
        let k = beam ?? 1
        guard k >= 1 else { throw CLIError("--beam must be at least 1") }
        if let n = maxLength, n < 1 { throw CLIError("--max-length must be at least 1") }
        var rows: [(source: [String], target: [String])] = []
        for l in try readLines(files) {
            let parts = l.text.split(separator: "\t", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw CLIError("\(l.file) line \(l.line): expected 'source<TAB>target' (\(parts.count == 1 ? "no tab" : "\(parts.count - 1) tabs"))")
            }
            let s = TaskData.words(String(parts[0])), t = TaskData.words(String(parts[1]))
            // As `recur train --task seq2seq`: pairs with an empty side, or (with --max-length) a longer one, are left out before the split.
            guard !s.isEmpty, !t.isEmpty else { continue }
            if let n = maxLength, s.count > n || t.count > n { continue }
            rows.append((s, t))
        }
        let te = try selectPart(rows)
        guard !te.isEmpty else { throw CLIError("no pairs in \(part ?? "all") of \(files.joined(separator: " "))") }
        let limit = 2 * (maxLength ?? max(60, te.map { max($0.source.count, $0.target.count) }.max()!))
        var hyps: [[String]] = []
        for (src, _) in te {
            var ids = TaskData.ids(src, sv)
            if let e = sv.eos { ids.append(e) }
            let t = k == 1 ? try m.translateGreedy(source: ids, maxLength: limit) : try m.translate(source: ids, beam: k, maxLength: limit)
            hyps.append(t.tokens.filter { !m.vocabulary.isSpecial($0) }.map { m.vocabulary.pieces[$0] })
        }
        let refs = te.map(\.target)
        let corpus = (1...4).map { BLEU.corpus(hypotheses: hyps, references: refs, maxN: $0) }
        let sentence = zip(hyps, refs).map { BLEU.sentence(hypothesis: $0, reference: $1) }
        let meanSentence = sentence.reduce(0, +) / Double(sentence.count)
        let hypLen = hyps.reduce(0) { $0 + $1.count }, refLen = refs.reduce(0) { $0 + $1.count }
        if json {
            let obj: [String: Any] = ["model": path, "pairs_file": files, "part": part ?? "all", "pairs": te.count, "beam": k,
                                      "max_length": limit / 2, "bleu1": corpus[0], "bleu2": corpus[1], "bleu3": corpus[2], "bleu4": corpus[3],
                                      "sentence_bleu4": meanSentence, "sentence_smoothing": "chen-cherry-1 (nltk method1, epsilon 0.1)",
                                      "hypothesis_words": hypLen, "reference_words": refLen,
                                      "translations": hyps.map { $0.joined(separator: " ") },
                                      "references": refs.map { $0.joined(separator: " ") }]
            print(String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!)
            return
        }
        print("model        \(path)")
        print("pairs        \(files.joined(separator: " ")) (\(part ?? "all"): \(te.count) pairs)")
        print("decoding     \(k == 1 ? "greedy" : "beam \(k)"), at most \(limit) words")
        print("length       \(hypLen) words translated, \(refLen) in the references")
        print("corpus BLEU  " + (1...4).map { "BLEU-\($0) \(String(format: "%.2f", 100 * corpus[$0 - 1]))" }.joined(separator: "  "))
        print("sentence     mean smoothed BLEU-4 \(String(format: "%.2f", 100 * meanSentence)) (Chen & Cherry method 1, ε = 0.1)")
    }
}
