import ArgumentParser
import Foundation
import Recur

/// `recur bench MODEL`: load time, step latency, prefill throughput and peak memory of one model;
/// `recur bench --kernels`: the matrix-vector kernels alone, per weight type and instruction-set level.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a model's load time, step latency, prefill throughput and peak memory.",
        discussion: """
            Load time is the median of --loads warm opens, with the checksum and without it; the table \
            under it splits the fastest open with the checksum into its phases (the file mapped, the \
            header, metadata and directory parsed, the checksum, the architecture and vocabulary read, \
            the tensors' contents validated, the input table built). Step latency is the median of \
            single steps (after a warm-up) of a stream fed random tokens; \
            prefill is a prompt of random tokens fed at once. Peak memory is the process's maximum \
            resident set size (getrusage). With --kernels, times the matrix-vector kernels instead.
            """)

    @Argument(help: "The model (.recur). Not needed with --kernels.")
    var model: String?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Option(name: .long, help: "Threads for one step (rows split across a worker pool; 0 = automatic).")
    var threads: Int = 1

    @Option(name: .long, help: "Steps to time.")
    var steps: Int = 2000

    @Option(name: .long, help: "Prompt length for prefill.")
    var prompt: Int = 1000

    @Option(name: .long, help: "Opens to time, with the checksum and as many without it.")
    var loads: Int = 10

    @Option(name: .long, help: "Streams stepped together with stepBatch (1 = plain step).")
    var batch: Int = 1

    @Flag(name: .long, help: "Time the matrix-vector kernels instead of a model.")
    var kernels = false

    @Option(name: .long, help: "Rows of the --kernels matrix.")
    var rows: Int = 3072

    @Option(name: .long, help: "Columns of the --kernels matrix.")
    var cols: Int = 1024

    @OptionGroup var load: LoadOptions

    func run() throws {
        if kernels { return try runKernels() }
        guard let model else { throw CLIError("name a model, or use --kernels") }
        guard steps >= 1, prompt >= 1, batch >= 1, loads >= 1 else {
            throw CLIError("--steps, --prompt, --batch and --loads must be ≥ 1")
        }
        guard (0...KernelEnvironment.maxThreads).contains(threads) else {
            throw CLIError("--threads must be 0 (automatic) or 1...\(KernelEnvironment.maxThreads) (got \(threads))")
        }
        // Warm opens: the first (untimed) brings the file into the page cache.
        var m: Model? = try loadModel(model, load: load) { $0.threads = threads }
        var loadTimes: [Double] = [], uncheckedTimes: [Double] = []
        var phases = LoadTimings()
        for verify in [true, false] {
            for _ in 0..<loads {
                m = nil   // the previous model's mapping and pool go first
                var t = LoadTimings()
                let t0 = now()
                m = try loadModel(model, load: load, verify: verify, timings: &t) { $0.threads = threads }
                let dt = now() - t0
                if verify {
                    if loadTimes.isEmpty || t.total < phases.total { phases = t }
                    loadTimes.append(dt)
                } else {
                    uncheckedTimes.append(dt)
                }
            }
        }
        let mdl = m!
        var rng = SplitMix64(seed: 7)
        let count = max(steps, prompt) + 100
        // Token ids, or for a frame model frames of random values in [-1, 1).
        let f = mdl.frameSize ?? 0
        let tokens = f > 0 ? [] : (0..<count).map { _ in Int(rng.next() % UInt64(mdl.vocabulary.count)) }
        let frames = (0..<(count * f)).map { _ in Float(rng.nextUnit() * 2 - 1) }
        func step(_ s: State, _ t: Int) throws {
            if f > 0 { _ = try frames.withUnsafeBufferPointer { try s.step(frame: UnsafeBufferPointer(rebasing: $0[(t * f)..<((t + 1) * f)])) } }
            else { try s.step(tokens[t]) }
        }
        func stepBatch(_ states: [State], _ t: Int) throws {
            let rows = (0..<states.count).map { (t + 7 * $0) % count }
            if f > 0 {
                let x = rows.flatMap { frames[($0 * f)..<(($0 + 1) * f)] }
                try x.withUnsafeBufferPointer { try mdl.stepBatch(states: states, frames: $0) }
            } else {
                try mdl.stepBatch(states: states, tokens: rows.map { tokens[$0] })
            }
        }

        // Step latency.
        var times: [Double] = []
        times.reserveCapacity(steps)
        if batch == 1 {
            let state = mdl.makeState()
            for t in 0..<100 { try step(state, t) }
            for t in 0..<steps {
                let t0 = now()
                try step(state, t)
                times.append(now() - t0)
            }
        } else {
            let states = (0..<batch).map { _ in mdl.makeState() }
            for t in 0..<20 { try stepBatch(states, t) }
            for t in 0..<steps {
                let t0 = now()
                try stepBatch(states, t)
                times.append(now() - t0)
            }
        }
        times.sort()
        let median = times[times.count / 2], p90 = times[times.count * 9 / 10]

        // Prefill.
        let state = mdl.makeState()
        let p = f > 0 ? [] : Array(tokens[0..<prompt])
        let pf = Array(frames[0..<(prompt * f)])
        var prefills: [Double] = [], prefillCPU: [Double] = []
        for _ in 0..<7 {
            state.reset()
            let t0 = now(), c0 = processCPU()
            if f > 0 { try state.prefill(frames: pf) } else { try state.prefill(p) }
            prefills.append(now() - t0)
            prefillCPU.append(processCPU() - c0)
        }
        prefills.sort(); prefillCPU.sort()
        let tokPerSec = Double(prompt) / prefills[0]   // the best of 7: one long interval, easily preempted
        let tokPerCPUSec = Double(prompt) / max(prefillCPU[0], 1e-9)

        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peak = Int(usage.ru_maxrss) * 1024
        loadTimes.sort(); uncheckedTimes.sort()
        let loadMedian = loadTimes[loadTimes.count / 2], uncheckedMedian = uncheckedTimes[uncheckedTimes.count / 2]
        let phaseRows: [(key: String, label: String, seconds: Double)] = [
            ("open", "open and map the file", phases.open),
            ("parse", "header, metadata, directory", phases.parse),
            ("checksum", "checksum (CRC-32)", phases.checksum),
            ("architecture", "architecture, vocabulary", phases.architecture),
            ("validation", "tensor validation", phases.validation),
            ("input_table", "input table", phases.inputTable),
            ("other", "other (binding, checks, pool)", phases.other),
            ("total", "total", phases.total),
        ]
        let size = (try? FileManager.default.attributesOfItem(atPath: model)[.size] as? Int) ?? 0
        let types = Dictionary(grouping: mdl.file.tensors, by: { $0.dtype.name }).mapValues { $0.count }
        if json {
            var o: [String: Any] = [
                "model": model, "file_bytes": size, "threads": mdl.threads, "threads_requested": threads, "batch": batch,
                "kernels": kernelLevelName, "amx": kernelAMX, "load_ms": loadMedian * 1e3,
                "load_no_checksum_ms": uncheckedMedian * 1e3, "loads": loads,
                "load_phases_ms": Dictionary(uniqueKeysWithValues: phaseRows.map { ($0.key, $0.seconds * 1e3) }),
                "step_us_median": median * 1e6, "step_us_p90": p90 * 1e6,
                "prefill_tokens_per_s": tokPerSec, "prefill_tokens_per_cpu_s": tokPerCPUSec,
                "prefill_tokens": prompt, "peak_rss_bytes": peak,
                "tensor_types": types,
            ]
            if batch > 1 { o["stream_steps_per_s"] = Double(batch) / median }
            let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("model          \(model) (\(formatBytes(size)); tensors \(types.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")))")
            print("kernels        \(kernelLevelName), threads \(mdl.threads)\(mdl.threads != threads ? " (\(threads == 0 ? "automatic" : "\(threads)") requested)" : "")\(batch > 1 ? ", batch \(batch)\(kernelAMX ? " (int8 on AMX tiles)" : "")" : "")")
            print(String(format: "load           %.2f ms, %.2f ms without the checksum (medians of %d warm opens)",
                         loadMedian * 1e3, uncheckedMedian * 1e3, loads))
            print("  fastest open with the checksum:")
            for r in phaseRows {
                let share = phases.total > 0 ? 100 * r.seconds / phases.total : 0
                print("  " + pad(r.label, 31) + String(format: "%8.3f ms %5.1f%%", r.seconds * 1e3, share))
            }
            print(String(format: "step           %.2f µs median, %.2f µs p90 (%d steps)", median * 1e6, p90 * 1e6, steps)
                  + (batch > 1 ? String(format: "; %.0f stream-steps/s", Double(batch) / median) : ""))
            print(String(format: "prefill        %.0f tokens/s (%d-token prompt, best of 7); %.0f tokens per CPU-second",
                         tokPerSec, prompt, tokPerCPUSec))
            print("peak memory    \(formatBytes(peak)) (max RSS)")
        }
    }

    func runKernels() throws {
        guard rows >= 1, cols >= 1 else { throw CLIError("--rows and --cols must be ≥ 1") }
        var rng = SplitMix64(seed: 3)
        let values = (0..<(rows * cols)).map { _ in Float(Double(rng.next() >> 11) / Double(1 << 53)) * 2 - 1 }
        let x = (0..<cols).map { _ in Float(Double(rng.next() >> 11) / Double(1 << 53)) * 2 - 1 }
        var y = [Float](repeating: 0, count: rows)
        var results: [[String: Any]] = []
        print("matrix \(rows) × \(cols); kernels: \(kernelLevelName) (detected level \(kernelDetectedLevel))"
              + (kernelAMX ? "; batches of int8 products on AMX tiles" : ""))
        print("type   kernel        µs/call     GB/s   (cpu µs/call: time on this thread only, robust to other load)")
        for dtype in DType.allCases {
            let bytes = quantizeMatrix(values, rows: rows, cols: cols, to: dtype)
            bytes.withUnsafeBytes { raw in
                let w = Matrix(rows: rows, cols: cols, dtype: dtype, data: raw.baseAddress!)
                var variants: [(String, () -> Void)] = []
                for level in 0...kernelDetectedLevel {
                    let name = kernelLevelName(level)
                    variants.append(("c-" + name, {
                        x.withUnsafeBufferPointer { xp in
                            y.withUnsafeMutableBufferPointer { matvec($0.baseAddress!, w, xp.baseAddress!, accumulate: false, level: level) }
                        }
                    }))
                }
                for (name, f) in variants {
                    let (t, cpu) = timeMedian(f)
                    let gbs = Double(bytes.count) / t / 1e9
                    print(pad(dtype.name, 6) + " " + pad(name, 12) + String(format: " %8.2f %8.1f   %8.2f", t * 1e6, gbs, cpu * 1e6))
                    results.append(["dtype": dtype.name, "kernel": name, "us": t * 1e6, "cpu_us": cpu * 1e6, "gb_per_s": gbs])
                }
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: ["rows": rows, "cols": cols, "results": results], options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// Median wall and thread-CPU time of one call of f, from 15 batches of about 20 ms after a warm-up.
    func timeMedian(_ f: () -> Void) -> (wall: Double, cpu: Double) {
        for _ in 0..<3 { f() }
        let t0 = now()
        f()
        let one = max(now() - t0, 1e-7)
        let reps = max(1, min(10_000, Int(0.02 / one)))
        var wall: [Double] = [], cpu: [Double] = []
        for _ in 0..<15 {
            let s = now(), c = threadCPU()
            for _ in 0..<reps { f() }
            wall.append((now() - s) / Double(reps))
            cpu.append((threadCPU() - c) / Double(reps))
        }
        wall.sort(); cpu.sort()
        return (wall[wall.count / 2], cpu[cpu.count / 2])
    }
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// CPU time of the whole process (all threads), in seconds.
func processCPU() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// CPU time of the calling thread, in seconds.
func threadCPU() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func formatBytes(_ n: Int) -> String {
    if n >= 1 << 20 { return String(format: "%.2f MiB", Double(n) / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", Double(n) / Double(1 << 10)) }
    return "\(n) B"
}
