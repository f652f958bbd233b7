/// A weight matrix read in place from the model file: `rows × cols`, row-major, in one of the file's dtypes.
/// Kernels take it by value; it holds no memory of its own (the model's storage keeps the bytes alive).
public struct Matrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let dtype: DType
    public let data: UnsafeRawPointer
    /// The worker pool that splits this matrix's rows across threads (set by `Model` for large
    /// recurrent matrices when `Model.Options.threads` allows), or nil for one thread.
    var pool: OpaquePointer? = nil

    public init(rows: Int, cols: Int, dtype: DType, data: UnsafeRawPointer) {
        self.rows = rows; self.cols = cols; self.dtype = dtype; self.data = data
    }

    /// The f32 elements (only valid when `dtype == .f32`).
    @inline(__always) public var f32: UnsafePointer<Float> { data.assumingMemoryBound(to: Float.self) }

    /// A view of rows [start, start + count).
    public func rows(_ start: Int, _ count: Int) -> Matrix {
        let rb = dtype.rowBytes(cols)!
        var m = Matrix(rows: count, cols: cols, dtype: dtype, data: data + start * rb)
        m.pool = pool
        return m
    }
}
