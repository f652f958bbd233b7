import CRecurKernels

/// Copies in column blocks (`rk_f32_columns_pack`) of a model's f32 matrices of few columns — a frame
/// model's input kernel, the matrices of a small state — made once at load, where the kernel level has a
/// kernel for them (AVX2, AVX-512: a block of 16 rows summed at once, the bits of the row kernel). `matvec`
/// and the batched step read a matrix's copy instead of its rows; the file's rows stay what every other
/// product reads (sgemm in prefill, other levels). One allocation, freed with the model.
struct ColumnBlocks {
    /// The copies, or nil when no matrix has one.
    private(set) var storage: UnsafeMutableRawPointer? = nil

    /// `stacks` with the copies attached to their eligible matrices (not split across the worker pool,
    /// whole tensors, `rk_f32_columns_bytes` > 0), but for the first stack's first input kernel when
    /// `inputTable` (steps read the table instead of multiplying it).
    static func attach(_ stacks: [Model.Stack], inputTable: Bool) -> (ColumnBlocks, [Model.Stack]) {
        func bytes(_ m: Matrix, _ stack: Int, _ firstKernel: Bool) -> Int {
            inputTable && stack == 0 && firstKernel ? 0 : Self.bytes(m)
        }
        var total = 0
        for (i, s) in stacks.enumerated() { _ = s.mapMatrices { m, first in total += bytes(m, i, first); return m } }
        guard total > 0 else { return (ColumnBlocks(), stacks) }
        let base = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 64)
        var offset = 0
        let out = stacks.enumerated().map { i, s in
            s.mapMatrices { m, first in
                let n = bytes(m, i, first)
                guard n > 0 else { return m }
                let p = (base + offset).bindMemory(to: Float.self, capacity: n / 4)
                rk_f32_columns_pack(p, m.f32, m.rows, m.cols)
                offset += n
                var c = m
                c.columns = UnsafePointer(p)
                return c
            }
        }
        return (ColumnBlocks(storage: base), out)
    }

    /// Bytes of `m`'s copy (a multiple of 64), or 0 when it takes none.
    private static func bytes(_ m: Matrix) -> Int {
        guard m.dtype == .f32, m.pool == nil else { return 0 }
        return (rk_f32_columns_bytes(m.rows, m.cols) + 63) & ~63
    }

    func deallocate() { storage?.deallocate() }
}

extension Model.Stack {
    /// The same stack with `transform` applied to each matrix of its recurrent layers (both directions)
    /// and of its head; its second argument is true for the first layer's forward input kernel (the one an
    /// input table replaces).
    func mapMatrices(_ transform: (Matrix, Bool) -> Matrix) -> Model.Stack {
        var s = self
        s.recurrent = recurrent.enumerated().map { i, layer in
            RecurrentLayer(forward: Self.map(layer.forward, transform, first: i == 0),
                           backward: layer.backward.map { Self.map($0, transform, first: false) }, stateOffset: layer.hOffset)
        }
        s.head = head.map { DenseWeights(kernel: transform($0.kernel, false), bias: $0.bias, activation: $0.activation) }
        return s
    }

    private static func map(_ w: RecurrentWeights, _ transform: (Matrix, Bool) -> Matrix, first: Bool) -> RecurrentWeights {
        RecurrentWeights(spec: w.spec, kernel: transform(w.kernel, first), recurrent: transform(w.recurrent, false),
                         bias: w.bias, extra: w.extra)
    }
}
