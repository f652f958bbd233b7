import Recur

/// Labelled sequences of frames, as the readers return them.
public struct FrameSequences: Sendable {
    /// Floats per frame.
    public var frameSize: Int
    /// The class names, by label index.
    public var labels: [String]
    /// Each sequence: its frames (T × F floats, row-major, T ≥ 1) and its label index.
    public var sequences: [(frames: [Float], label: Int)]
    /// `@problemName` of a `.ts` file.
    public var name: String?

    public init(frameSize: Int, labels: [String], sequences: [(frames: [Float], label: Int)], name: String? = nil) {
        self.frameSize = frameSize
        self.labels = labels
        self.sequences = sequences
        self.name = name
    }

    public var longest: Int { sequences.map { $0.frames.count / frameSize }.max() ?? 0 }

    /// The same sequences with labels renumbered to `names` (for a test file read beside a training file);
    /// a class absent from `names` is an error.
    public func relabelled(to names: [String], file: String) throws -> FrameSequences {
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        var out = self
        out.labels = names
        out.sequences = try sequences.map { s in
            guard let i = index[labels[s.label]] else {
                throw RecurError(.invalidArgument, "\(file): class '\(labels[s.label])' is not one of the training classes (\(names.joined(separator: ", ")))")
            }
            return (s.frames, i)
        }
        return out
    }
}

/// Readers of the frame formats users have: the sktime/UEA `.ts` format, CSV files of labelled frame
/// sequences, and CSV files holding a series. Every error is one line naming the file and the line.
///
/// CSV conventions (RFC 4180 fields: separated by commas, optionally in double quotes with "" for a quote;
/// the first row is a header naming the columns; blank lines are skipped):
/// - **Sequences**: one row per frame. A sequence-id column (default `sequence`) and a label column (default
///   `label`); every other column is a feature, in file order. Consecutive rows with the same id form one
///   sequence (an id may not come back later), and its rows carry the same label. Classes are ordered
///   numerically when every label is an integer, alphabetically otherwise.
/// - **Series**: one row per time step; the values are the column named by `column` (default: the last
///   column). Every value must be a finite number (fill gaps before training).
public enum FrameData {
    static func fail(_ file: String, _ line: Int?, _ message: String) -> RecurError {
        RecurError(.invalidArgument, line.map { "\(file) line \($0): \(message)" } ?? "\(file): \(message)")
    }

    static func number(_ s: Substring, _ file: String, _ line: Int, _ what: String) throws -> Float {
        let t = s.trimmingWhitespace
        guard !t.isEmpty else { throw fail(file, line, "\(what) is empty") }
        guard let v = Float(t), v.isFinite else { throw fail(file, line, "\(what) '\(t)' is not a finite number") }
        return v
    }

    /// Lines with their 1-based numbers (LF or CRLF line ends; CRLF is one Character in Swift).
    static func lines(_ text: String) -> [(Int, Substring)] {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated().map { i, l in
            (i + 1, l.hasSuffix("\r") ? l.dropLast() : l)
        }
    }

    // MARK: .ts

    /// Reads a sktime/UEA `.ts` classification file: `#` comments, the header tags (`@problemName`,
    /// `@timeStamps false`, `@missing`, `@univariate`, `@dimensions`, `@equalLength`, `@seriesLength`,
    /// `@classLabel true <classes…>`), then `@data` and one instance per line: each dimension a
    /// comma-separated series, dimensions separated by `:`, the class label last. The dimensions of an
    /// instance have the same length, which is its number of frames; frame t holds value t of every
    /// dimension. Missing values (`?`), time stamps and files without class labels are refused.
    public static func readTS(_ text: String, file: String) throws -> FrameSequences {
        var name: String?, dimensions: Int?, univariate: Bool?, classes: [String]?, equalLength: Bool?, seriesLength: Int?
        var inData = false, sawClassLabel = false
        var seqs: [(frames: [Float], label: Int)] = []
        var classIndex: [String: Int] = [:]
        func bool(_ v: Substring?, _ tag: String, _ n: Int) throws -> Bool {
            switch v?.lowercased() {
            case "true": return true
            case "false": return false
            default: throw fail(file, n, "\(tag) must be true or false")
            }
        }
        for (n, raw) in lines(text) {
            let line = raw.trimmingWhitespace
            if line.isEmpty || line.hasPrefix("#") { continue }
            if !inData {
                guard line.hasPrefix("@") else { throw fail(file, n, "expected a header tag (@…) or @data before the data") }
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                let tag = parts[0].lowercased(), value = parts.count > 1 ? parts[1] : nil
                switch tag {
                case "@problemname": name = parts.dropFirst().joined(separator: " ")
                case "@timestamps":
                    if try bool(value, "@timeStamps", n) { throw fail(file, n, "time-stamped series are not supported") }
                case "@missing": _ = try bool(value, "@missing", n)
                case "@univariate": univariate = try bool(value, "@univariate", n)
                case "@dimensions":
                    guard let v = value.flatMap({ Int($0) }), v >= 1 else { throw fail(file, n, "@dimensions must be a positive integer") }
                    dimensions = v
                case "@equallength": equalLength = try bool(value, "@equalLength", n)
                case "@serieslength":
                    guard let v = value.flatMap({ Int($0) }), v >= 1 else { throw fail(file, n, "@seriesLength must be a positive integer") }
                    seriesLength = v
                case "@classlabel":
                    sawClassLabel = true
                    guard try bool(value, "@classLabel", n) else {
                        throw fail(file, n, "the file has no class labels (@classLabel false); a classifier needs them")
                    }
                    let names = parts.dropFirst(2).map(String.init)
                    guard names.count >= 2 else { throw fail(file, n, "@classLabel true needs the class names (at least two)") }
                    guard Set(names).count == names.count else { throw fail(file, n, "@classLabel names a class twice") }
                    classes = names
                    classIndex = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
                case "@targetlabel":
                    throw fail(file, n, "regression .ts files (@targetLabel) are not supported; this reader takes classification files")
                case "@data":
                    guard sawClassLabel, classes != nil else { throw fail(file, n, "@data before @classLabel true <classes…>") }
                    if univariate == true, let d = dimensions, d != 1 { throw fail(file, n, "@univariate true with @dimensions \(d)") }
                    if univariate == false, dimensions == nil { throw fail(file, n, "@univariate false needs @dimensions") }
                    inData = true
                default:
                    throw fail(file, n, "unknown header tag '\(parts[0])'")
                }
                continue
            }
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            let d = dimensions ?? 1
            guard fields.count == d + 1 else {
                throw fail(file, n, "expected \(d) dimension\(d == 1 ? "" : "s") and a class label separated by ':', found \(fields.count) field\(fields.count == 1 ? "" : "s")")
            }
            let label = String(fields[d].trimmingWhitespace)
            guard let y = classIndex[label] else { throw fail(file, n, "class label '\(label)' is not declared by @classLabel") }
            var series: [[Float]] = []
            for (k, f) in fields.prefix(d).enumerated() {
                let values = try f.split(separator: ",", omittingEmptySubsequences: false).enumerated().map { i, v -> Float in
                    if v.trimmingWhitespace == "?" { throw fail(file, n, "dimension \(k + 1), value \(i + 1) is missing ('?'); missing values are not supported") }
                    return try number(v, file, n, "dimension \(k + 1), value \(i + 1)")
                }
                if let first = series.first, first.count != values.count {
                    throw fail(file, n, "dimension \(k + 1) has \(values.count) values but dimension 1 has \(first.count); the dimensions of an instance must have the same length")
                }
                series.append(values)
            }
            let T = series[0].count
            if equalLength == true, let L = seriesLength, T != L { throw fail(file, n, "the series has \(T) values but @seriesLength is \(L)") }
            var frames = [Float](repeating: 0, count: T * d)
            for t in 0..<T { for k in 0..<d { frames[t * d + k] = series[k][t] } }
            seqs.append((frames, y))
        }
        guard inData else { throw fail(file, nil, "no @data line: not a .ts file") }
        guard !seqs.isEmpty else { throw fail(file, nil, "no instances after @data") }
        return FrameSequences(frameSize: dimensions ?? 1, labels: classes!, sequences: seqs, name: name)
    }

    // MARK: CSV

    /// The fields of one CSV line (RFC 4180 quoting, within the line).
    static func fields(_ line: Substring, _ file: String, _ n: Int) throws -> [Substring] {
        var out: [Substring] = []
        var i = line.startIndex
        while true {
            if i < line.endIndex && line[i] == "\"" {
                var s = ""
                var j = line.index(after: i)
                while true {
                    guard j < line.endIndex else { throw fail(file, n, "a quoted field is not closed") }
                    if line[j] == "\"" {
                        let k = line.index(after: j)
                        if k < line.endIndex && line[k] == "\"" { s.append("\""); j = line.index(after: k); continue }
                        j = k
                        break
                    }
                    s.append(line[j]); j = line.index(after: j)
                }
                out.append(Substring(s))
                guard j == line.endIndex || line[j] == "," else { throw fail(file, n, "text after a quoted field") }
                if j == line.endIndex { return out }
                i = line.index(after: j)
            } else {
                let end = line[i...].firstIndex(of: ",") ?? line.endIndex
                out.append(line[i..<end])
                if end == line.endIndex { return out }
                i = line.index(after: end)
            }
        }
    }

    /// The header and the data rows of a CSV text (blank lines skipped), each row as long as the header.
    static func table(_ text: String, file: String) throws -> (header: [String], rows: [(Int, [Substring])]) {
        var header: [String]?
        var rows: [(Int, [Substring])] = []
        for (n, line) in lines(text) where !line.trimmingWhitespace.isEmpty {
            let f = try fields(line, file, n)
            if let h = header {
                guard f.count == h.count else { throw fail(file, n, "\(f.count) field\(f.count == 1 ? "" : "s") but the header has \(h.count)") }
                rows.append((n, f))
            } else {
                let names = f.map { String($0.trimmingWhitespace) }
                if let dup = names.first(where: { x in names.filter { $0 == x }.count > 1 }) {
                    throw fail(file, n, "the header names the column '\(dup)' twice")
                }
                header = names
            }
        }
        guard let h = header else { throw fail(file, nil, "empty file (a header row naming the columns comes first)") }
        guard !rows.isEmpty else { throw fail(file, nil, "no rows after the header") }
        return (h, rows)
    }

    static func column(_ header: [String], _ name: String, _ file: String, _ option: String) throws -> Int {
        guard let i = header.firstIndex(of: name) else {
            throw fail(file, 1, "no column '\(name)' (\(option); the header has \(header.joined(separator: ", ")))")
        }
        return i
    }

    /// Labelled frame sequences from a CSV file (see the type's conventions).
    public static func readSequenceCSV(_ text: String, file: String, sequenceColumn: String = "sequence",
                                       labelColumn: String = "label") throws -> FrameSequences {
        let (header, rows) = try table(text, file: file)
        let si = try column(header, sequenceColumn, file, "the sequence-id column")
        let li = try column(header, labelColumn, file, "the label column")
        guard si != li else { throw fail(file, 1, "the sequence-id and label columns are the same column") }
        let features = header.indices.filter { $0 != si && $0 != li }
        guard !features.isEmpty else { throw fail(file, 1, "no feature columns besides '\(sequenceColumn)' and '\(labelColumn)'") }
        var raw: [(frames: [Float], label: String)] = []
        var seen = Set<String>(), current: String?
        for (n, f) in rows {
            let id = String(f[si].trimmingWhitespace), label = String(f[li].trimmingWhitespace)
            guard !id.isEmpty else { throw fail(file, n, "the sequence id is empty") }
            guard !label.isEmpty else { throw fail(file, n, "the label is empty") }
            let frame = try features.map { try number(f[$0], file, n, "column '\(header[$0])'") }
            if id == current {
                guard raw[raw.count - 1].label == label else {
                    throw fail(file, n, "sequence '\(id)' has label '\(label)' here but '\(raw[raw.count - 1].label)' above")
                }
                raw[raw.count - 1].frames += frame
            } else {
                guard !seen.contains(id) else { throw fail(file, n, "sequence '\(id)' comes back after other sequences; keep its rows together") }
                seen.insert(id); current = id
                raw.append((frame, label))
            }
        }
        let names = Set(raw.map(\.label))
        let ordered = names.allSatisfy({ Int($0) != nil }) ? names.sorted { Int($0)! < Int($1)! } : names.sorted()
        let index = Dictionary(uniqueKeysWithValues: ordered.enumerated().map { ($1, $0) })
        return FrameSequences(frameSize: features.count, labels: ordered, sequences: raw.map { ($0.frames, index[$0.label]!) }, name: nil)
    }

    /// A series from a CSV file: the values of `column` (default: the last column), in row order.
    public static func readSeriesCSV(_ text: String, file: String, column name: String? = nil) throws -> [Float] {
        let (header, rows) = try table(text, file: file)
        let c = try name.map { try column(header, $0, file, "--column") } ?? header.count - 1
        return try rows.map { n, f in try number(f[c], file, n, "column '\(header[c])'") }
    }

    /// Labelled frame sequences from a file by its extension: `.ts` or `.csv`.
    public static func readSequences(_ text: String, file: String, sequenceColumn: String = "sequence",
                                     labelColumn: String = "label") throws -> FrameSequences {
        let lower = file.lowercased()
        if lower.hasSuffix(".ts") { return try readTS(text, file: file) }
        if lower.hasSuffix(".csv") { return try readSequenceCSV(text, file: file, sequenceColumn: sequenceColumn, labelColumn: labelColumn) }
        throw fail(file, nil, "unknown frame file type (expected .ts or .csv)")
    }
}
