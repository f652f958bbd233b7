import ArgumentParser
import Foundation
import Recur

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a model's weights to f16, int8 (q8ri), q8 or 4-bit (int4: q4i).",
        discussion: """
            Recurrent and input kernels get the chosen type; the embedding table and the output layer \
            keep at least 8 bits (the type itself for f16, int8 and q8; q8 for q4, int8 for int4); biases and peepholes \
            stay f32. int8 is q8ri: one scale per row, rows interleaved in groups of 16 for the kernels, \
            products with x quantized per vector (the fastest 8-bit type; format 3.1). q8r holds the same \
            values row by row (format 2.0, for older readers; slower), and gives the same outputs bit for \
            bit. q8 has one scale per block of 32 (a little more accurate, slower). \
            Override per tensor with --tensor-type NAME=TYPE or --keep NAME (NAME may use * wildcards). \
            All metadata is kept; general.quantization records the type. The output is written atomically \
            and loaded back to check it. See docs/QUANTIZATION.md.
            """)

    @Argument(help: "The model to convert (.recur).")
    var input: String

    @Argument(help: "Where to write the converted model.")
    var output: String

    @Option(name: .long, help: "f16 (also: half, float16), int8 (= q8ri, i8: one scale per row, interleaved rows), q8r (the same, row-major), q8 (= int8-block: one scale per block of 32) or 4-bit, one scale per block of 32: int4 (= q4i, 4bit: rows interleaved for the kernels) or q4 (the same values, row-major).")
    var type: String

    @Option(name: .customLong("tensor-type"), parsing: .singleValue, help: "NAME=TYPE: give tensors matching NAME this type (f32, f16, int8/q8ri, q8r, q8, int4/q4i, q4).")
    var tensorTypes: [String] = []

    @Option(name: .long, parsing: .singleValue, help: "Keep tensors matching NAME in their current type.")
    var keep: [String] = []

    @Flag(name: .long, help: "Print one line per tensor.")
    var verbose = false

    func run() throws {
        guard let target = Quantizer.parseType(type), target != .f32 else {
            throw CLIError("--type must be f16, int8 (q8ri), q8r, q8, int4 (q4i) or q4, not '\(type)'")
        }
        var overrides: [Quantizer.Override] = []
        for s in tensorTypes {
            guard let eq = s.firstIndex(of: "="), let t = Quantizer.parseType(String(s[s.index(after: eq)...])) else {
                throw CLIError("--tensor-type wants NAME=TYPE with TYPE f32, f16, int8/q8ri, q8r, q8, int4/q4i or q4, got '\(s)'")
            }
            overrides.append(.init(pattern: String(s[..<eq]), dtype: t))
        }
        for k in keep { overrides.append(.init(pattern: k, dtype: nil)) }

        let file = try RecurFile.open(path: input)
        let (writer, entries) = try Quantizer.quantize(file, to: target, overrides: overrides)
        try writer.write(to: output)
        _ = try Model(path: output)   // the result must load

        let before = file.storage.bytes.count
        let after = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int).flatMap { $0 } ?? 0
        if verbose {
            for e in entries {
                let shape = e.shape.map(String.init).joined(separator: "×")
                print("\(pad(e.name, 34)) \(pad(shape, 11)) \(e.from.name) → \(pad(e.to.name, 4)) \(formatBytes(e.bytesBefore)) → \(formatBytes(e.bytesAfter))")
            }
        }
        var byType: [String: (Int, Int)] = [:]
        for e in entries { byType[e.to.name, default: (0, 0)].0 += 1; byType[e.to.name, default: (0, 0)].1 += e.bytesAfter }
        let summary = byType.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.0) (\(formatBytes($0.value.1)))" }
        print("wrote \(output): \(target.name); tensors: \(summary.joined(separator: ", "))")
        print(String(format: "size %@ → %@ (%.1f%%)", formatBytes(before) as NSString, formatBytes(after) as NSString,
                     before > 0 ? 100 * Double(after) / Double(before) : 0))
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
