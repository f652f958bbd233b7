import ArgumentParser
import Foundation
import Recur

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model file: layers, sizes, vocabulary, tensors, provenance.")

    @Argument(help: "The model file (default: the shipped model).")
    var model: String?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @OptionGroup var load: LoadOptions

    func run() throws {
        let path = try model ?? defaultModelPath()
        let m = try loadModel(path, load: load)
        let f = m.file
        func describe(_ list: [LayerSpec]) -> [[String: Any]] { list.enumerated().map { i, l in
            var d: [String: Any] = ["index": i, "kind": l.kindName]
            switch l {
            case .embedding(let v, let e): d["input_dim"] = v; d["output_dim"] = e
            case .recurrent(let r):
                d["input_size"] = r.inputSize; d["units"] = r.units
                d["activation"] = r.activation.rawValue
                for (key, value) in r.cellOptions { d[key] = value.boolValue ?? value.stringValue }
                d["return_sequences"] = r.returnSequences
                d["bidirectional"] = r.bidirectional
                if r.bidirectional { d["merge_mode"] = r.mergeMode.rawValue }
            case .dense(let n, let u, let a): d["input_size"] = n; d["units"] = u; d["activation"] = a.rawValue
            case .attention(let a):
                d["score"] = a.score.rawValue; d["input_size"] = a.inputSize; d["memory_size"] = a.memorySize
                if a.score == .additive { d["attention_units"] = a.attentionUnits; d["use_bias"] = a.useBias }
                d["combine"] = a.combine.rawValue; d["units"] = a.outputSize; d["input_feeding"] = a.inputFeeding
            }
            return d
        } }
        let layers = describe(m.architecture.layers)
        let tensors: [[String: Any]] = f.tensors.map {
            ["name": $0.name, "dtype": $0.dtype.name, "shape": $0.shape, "bytes": $0.byteLength]
        }
        var meta: [String: Any] = [:]
        for (k, v) in f.metadata where !k.hasPrefix("layer.") && !k.hasPrefix("encoder.layer.") && !k.hasSuffix("tokenizer.tokens") {
            meta[k] = jsonValue(v)
        }
        let fileBytes = f.storage.bytes.count
        let normalized = f.tensor("input.mean") != nil
        if json {
            var obj: [String: Any] = [
                "path": path,
                "format_version": "\(f.versionMajor).\(f.versionMinor)",
                "task": m.architecture.task.rawValue,
                "vocab_size": m.vocabulary.count,
                "tokenizer": m.vocabulary.kind.rawValue,
                "parameters": m.parameterCount,
                "state_floats": m.stateSize,
                "layers": layers,
                "encoder_layers": describe(m.architecture.encoder),
                "labels": m.architecture.labels,
                "output_size": m.outputSize,
                "tensors": tensors,
                "file_bytes": fileBytes,
                "checksum": String(format: "0x%08x", f.checksum),
                "metadata": meta,
                "input": m.input.name,
                "output_kind": m.outputKind.name,
            ]
            if let size = m.frameSize {
                obj["frame_size"] = size
                obj["normalized"] = normalized
                if let v = m.architecture.maskValue { obj["mask_value"] = Double(v) }
            }
            if m.architecture.task == .classify { obj["pooling"] = m.architecture.pooling.rawValue }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(data: data, encoding: .utf8)!)
            return
        }
        print("file        \(path) (\(fileBytes) bytes, format \(f.versionMajor).\(f.versionMinor), crc \(String(format: "0x%08x", f.checksum)))")
        print("task        \(m.architecture.task.rawValue)")
        let specials = [("pad", m.vocabulary.pad), ("unk", m.vocabulary.unk), ("bos", m.vocabulary.bos), ("eos", m.vocabulary.eos)]
            .compactMap { n, v in v.map { "\(n)=\($0)" } }
        if let size = m.frameSize {
            var notes = normalized ? ["normalised by input.mean and input.scale"] : []
            if let v = m.architecture.maskValue { notes.append("frames equal to \(v) are padding") }
            print("input       frames of \(size) float\(size == 1 ? "" : "s")\(notes.isEmpty ? "" : " (" + notes.joined(separator: "; ") + ")")")
        } else {
            print("vocabulary  \(m.vocabulary.count) \(m.vocabulary.kind.rawValue) tokens\(specials.isEmpty ? "" : " (" + specials.joined(separator: ", ") + ")")")
            if let text = preprocessing(m.vocabulary) { print("            \(text)") }
        }
        if m.architecture.task == .classify { print("pooling     \(m.architecture.pooling.rawValue) step\(m.architecture.pooling == .mean ? "s (mean)" : "")") }
        print("output      \(m.outputSize) \(m.outputKind == .independentProbabilities ? "independent probabilities (sigmoid)" : m.outputKind.name)")
        if let src = m.sourceVocabulary {
            print("source      \(src.count) \(src.kind.rawValue) tokens\(m.architecture.reverseSource ? ", read by the encoder in reverse order (encoder.reverse_source)" : "")")
            if let text = preprocessing(src) { print("            \(text)") }
        }
        if !m.architecture.labels.isEmpty {
            print("labels      \(m.architecture.labels.joined(separator: " "))")
        }
        print("parameters  \(m.parameterCount)")
        if !m.architecture.encoder.isEmpty {
            print("encoder")
            printLayers(m.architecture.encoder)
            print("decoder")
        } else {
            print("layers")
        }
        printLayers(m.architecture.layers)
        print("tensors")
        for t in f.tensors {
            print("  \(t.name.padding(toLength: 32, withPad: " ", startingAt: 0)) \(t.dtype.name.padding(toLength: 4, withPad: " ", startingAt: 0)) \(t.shape)  \(t.byteLength) bytes")
        }
        if !meta.isEmpty {
            print("metadata")
            for k in meta.keys.sorted() where !k.hasPrefix("model.") && !k.hasPrefix("tokenizer.") && !k.hasPrefix("source_tokenizer.") && !k.hasPrefix("encoder.") {
                print("  \(k) = \(meta[k]!)")
            }
        }
    }

    func printLayers(_ list: [LayerSpec]) {
        for (i, l) in list.enumerated() {
            switch l {
            case .embedding(let v, let e): print("  \(i)  embedding  \(v) → \(e)")
            case .recurrent(let r):
                var extra = r.cellNotes
                if r.bidirectional { extra.append("bidirectional (\(r.mergeMode.rawValue))") }
                if r.activation != .tanh { extra.append("activation \(r.activation.rawValue)") }
                if r.recurrentActivation != .sigmoid, r.cellOptions.contains(where: { $0.key == "recurrent_activation" }) {
                    extra.append("gates \(r.recurrentActivation.rawValue)")
                }
                if !r.returnSequences { extra.append("last step only") }
                print("  \(i)  \(r.cell.rawValue)  \(r.inputSize) → \(r.units)\(extra.isEmpty ? "" : "  " + extra.joined(separator: ", "))")
            case .dense(let n, let u, let a): print("  \(i)  dense  \(n) → \(u)  \(a.rawValue)")
            case .attention(let a):
                var extra = ["\(a.score.rawValue) score" + (a.score == .additive ? " (\(a.attentionUnits) units\(a.useBias ? ", bias" : ""))" : "")]
                extra.append(a.combine == .tanh ? "tanh(W_c [c; h])" : "[c; h]")
                if a.inputFeeding { extra.append("input feeding") }
                print("  \(i)  attention  \(a.inputSize) over memory \(a.memorySize) → \(a.outputSize)  \(extra.joined(separator: ", "))")
            }
        }
    }
}

func jsonValue(_ v: MetaValue) -> Any {
    switch v {
    case .int(let x): return x
    case .float(let x): return x
    case .bool(let x): return x
    case .string(let x): return x
    case .strings(let x): return x
    case .ints(let x): return x
    case .floats(let x): return x
    }
}

/// The text preprocessing and padding a vocabulary records (FORMAT.md §11), or nil for the defaults.
func preprocessing(_ v: Vocabulary) -> String? {
    var parts: [String] = []
    if v.splitter != .recur {
        var t = "split as \(v.splitter.rawValue)\(v.lowercase ? ", lowercased" : "")"
        if v.splitter == .keras && v.kind == .word {
            t += ", filters \(String(reflecting: v.filters)), split \(String(reflecting: v.split))"
        }
        parts.append(t)
    }
    if v.pad != nil && !v.padMask { parts.append("PAD steps run (unmasked)") }
    if let n = v.padLength { parts.append("inputs cut and padded to \(n) (padding \(v.padding.rawValue), truncating \(v.truncating.rawValue))") }
    return parts.isEmpty ? nil : parts.joined(separator: "; ")
}
