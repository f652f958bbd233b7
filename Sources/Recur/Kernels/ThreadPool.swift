import CRecurKernels

/// A persistent pool of worker threads for the matrix-vector product of one step (CRecurKernels'
/// rk_pool): the rows of a matrix are split evenly across the threads; workers spin for 0.2 ms after
/// each product, then sleep, so no thread is created per step. While one stream uses the pool, a
/// concurrent caller computes on its own thread instead of waiting.
final class KernelPool: @unchecked Sendable {
    let raw: OpaquePointer
    let threads: Int

    /// nil when `threads` < 2 or the threads cannot be started.
    init?(threads: Int) {
        guard threads >= 2, let p = rk_pool_create(Int32(min(threads, KernelPool.maxThreads))) else { return nil }
        raw = p
        self.threads = Int(rk_pool_threads(p))
    }

    deinit { rk_pool_destroy(raw) }

    /// Processors available to this process.
    static var processors: Int {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }

    /// The default of `Model.Options.threads`: the environment variable RECUR_THREADS when it holds a
    /// number ≥ 0 (read once), else 1. Lets programs using the C API or a binding choose. One thread by
    /// default because on the reference machine (2 processors shared with other work) a split step was
    /// 5–10% slower at every size: the second processor was rarely free (docs/QUANTIZATION.md, "Threads").
    static let defaultThreads: Int = {
        guard let p = getenv("RECUR_THREADS"), let n = Int(String(cString: p)), (0...maxThreads).contains(n) else { return 1 }
        return n
    }()

    /// The most threads a pool runs (rk_pool_create's cap); Options.threads above it is refused.
    public static let maxThreads = 64

    /// Why RECUR_THREADS or RECUR_KERNELS, when set, cannot be honoured (nil when both are unset or valid).
    /// Model loading refuses such an environment instead of silently running with the defaults.
    public static let environmentProblem: String? = {
        if let p = getenv("RECUR_THREADS") {
            let v = String(cString: p)
            if Int(v).map({ !(0...maxThreads).contains($0) }) ?? true {
                return "RECUR_THREADS='\(v)' is not a thread count (0 for automatic, or 1...\(maxThreads))"
            }
        }
        if let p = getenv("RECUR_KERNELS") {
            let v = String(cString: p)
            #if arch(arm64)
            let names = ["scalar", "neon"]
            #else
            let names = ["scalar", "avx2", "avx512"]
            #endif
            if !names.contains(v) {
                return "RECUR_KERNELS='\(v)' is not one of \(names.joined(separator: ", "))"
            }
        }
        return nil
    }()

    /// Below this many bytes of weights a split step costs more in synchronization than it saves
    /// (measured on the reference machine: docs/QUANTIZATION.md, "Threads").
    static let automaticThreshold = 1 << 20
    /// With an explicit thread count, matrices smaller than this still run on one thread (a split costs
    /// about a microsecond of synchronization).
    static let explicitThreshold = 64 << 10
}

#if canImport(Glibc)
import Glibc
#endif

/// The environment variables that steer the kernels (RECUR_THREADS, RECUR_KERNELS).
public enum KernelEnvironment {
    /// Why a set variable cannot be honoured, or nil. Loading a model refuses such an environment.
    public static var problem: String? { KernelPool.environmentProblem }
    /// The most threads one step may use (Model.Options.threads is 0 for automatic, or 1 up to this).
    public static var maxThreads: Int { KernelPool.maxThreads }
}

extension KernelPool {
    /// The pool a model loaded with `threads` uses for these recurrent layers, or nil.
    static func forModel(threads: Int, layers: [RecurrentWeights]) -> KernelPool? {
        if threads == 1 { return nil }
        if threads == 0 {
            guard processors >= 2, layers.contains(where: { isLarge($0.recurrent) }) else { return nil }
            return KernelPool(threads: processors)
        }
        return KernelPool(threads: threads)
    }

    static func isLarge(_ m: Matrix, _ threshold: Int = automaticThreshold) -> Bool {
        guard let rb = m.dtype.rowBytes(m.cols) else { return false }
        return m.rows.multipliedReportingOverflow(by: rb).partialValue >= threshold
    }

    /// The layers with `pool` set on their recurrent matrices of at least 64 KiB (1 MiB when automatic).
    static func apply(_ pool: KernelPool, _ threads: Int, to layers: [RecurrentLayer]) -> [RecurrentLayer] {
        func one(_ l: RecurrentWeights) -> RecurrentWeights {
            isLarge(l.recurrent, threads == 0 ? automaticThreshold : explicitThreshold) ? l.withPool(pool) : l
        }
        return layers.map { $0.map(one) }
    }
}
