import CRecurKernels

/// A weight matrix read in place from the model file: `rows × cols` in one of the file's dtypes, rows
/// [row0, row0 + rows) of the tensor at `data` (row0 is 0 for row-major types, whose views move `data`;
/// interleaved types (q8ri) keep the tensor's start and count rows from it).
/// Kernels take it by value; it holds no memory of its own (the model's storage keeps the bytes alive).
package struct Matrix: @unchecked Sendable {
    package let rows: Int
    package let cols: Int
    package let dtype: DType
    package let data: UnsafeRawPointer
    /// The first row of this view in the tensor at `data` (0 unless `dtype.rowGroup` > 1).
    package var row0 = 0
    /// The worker pool that splits this matrix's rows across threads (set by `Model` for large
    /// recurrent matrices when `Model.Options.threads` allows), or nil for one thread.
    var pool: OpaquePointer? = nil
    /// A copy of this f32 matrix in column blocks (`ColumnBlocks`, made by `Model` at load for matrices of
    /// few columns), which `matvec` reads instead of the rows; nil otherwise, and for a view of some rows.
    var columns: UnsafePointer<Float>? = nil

    package init(rows: Int, cols: Int, dtype: DType, data: UnsafeRawPointer) {
        self.rows = rows; self.cols = cols; self.dtype = dtype; self.data = data
    }

    /// The f32 elements (only valid when `dtype == .f32`).
    @inline(__always) package var f32: UnsafePointer<Float> { data.assumingMemoryBound(to: Float.self) }

    /// A view of rows [start, start + count).
    package func rows(_ start: Int, _ count: Int) -> Matrix {
        var m: Matrix
        if dtype.rowGroup > 1 {
            m = Matrix(rows: count, cols: cols, dtype: dtype, data: data)
            m.row0 = row0 + start
        } else {
            m = Matrix(rows: count, cols: cols, dtype: dtype, data: data + start * dtype.rowBytes(cols)!)
        }
        m.pool = pool
        if start == 0 && count == rows { m.columns = columns }
        return m
    }

    /// Decodes rows [start, start + count) of this view into f32 (out: count × cols).
    package func decode(_ start: Int, _ count: Int, into out: UnsafeMutablePointer<Float>) {
        rk_dequantize(out, data, Int32(dtype.rawValue), row0 + start, count, cols)
    }
}
