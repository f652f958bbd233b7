/// A weight matrix read in place from the model file: `rows × cols`, row-major, in one of the file's dtypes.
/// Kernels take it by value; it holds no memory of its own (the model's storage keeps the bytes alive).
package struct Matrix: @unchecked Sendable {
    package let rows: Int
    package let cols: Int
    package let dtype: DType
    package let data: UnsafeRawPointer
    /// The worker pool that splits this matrix's rows across threads (set by `Model` for large
    /// recurrent matrices when `Model.Options.threads` allows), or nil for one thread.
    var pool: OpaquePointer? = nil

    package init(rows: Int, cols: Int, dtype: DType, data: UnsafeRawPointer) {
        self.rows = rows; self.cols = cols; self.dtype = dtype; self.data = data
    }

    /// The f32 elements (only valid when `dtype == .f32`).
    @inline(__always) package var f32: UnsafePointer<Float> { data.assumingMemoryBound(to: Float.self) }

    /// A view of rows [start, start + count).
    package func rows(_ start: Int, _ count: Int) -> Matrix {
        let rb = dtype.rowBytes(cols)!
        var m = Matrix(rows: count, cols: cols, dtype: dtype, data: data + start * rb)
        m.pool = pool
        return m
    }
}
