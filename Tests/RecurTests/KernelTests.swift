import Foundation
import XCTest
@testable import Recur
import CRecurKernels

/// Every matrix-vector kernel, at every instruction-set level this CPU has, against the scalar reference
/// `matvecReference` (weights decoded to f32, products summed in Double), on sizes that are not multiples
/// of the vector widths or of the 32-element blocks.
final class KernelTests: XCTestCase {
    static let shapes: [(rows: Int, cols: Int)] = [
        (1, 1), (3, 5), (4, 8), (5, 31), (7, 33), (13, 64), (9, 100), (17, 129), (6, 255), (11, 257),
        (4, 513), (3, 1000), (2, 2049),
    ]

    struct Rand {
        var g = SplitMix64(seed: 2024)
        mutating func uniform() -> Float { Float(Double(g.next() >> 11) / Double(1 << 53)) * 2 - 1 }
        mutating func values(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in uniform() * scale } }
    }

    /// The bytes of `values` (rows × cols) in `dtype`, and the matrix pointing at them.
    func withMatrix<T>(_ values: [Float], _ rows: Int, _ cols: Int, _ dtype: DType, _ body: (Matrix) throws -> T) rethrows -> T {
        let bytes = quantizeMatrix(values, rows: rows, cols: cols, to: dtype)
        return try bytes.withUnsafeBytes { try body(Matrix(rows: rows, cols: cols, dtype: dtype, data: $0.baseAddress!)) }
    }

    /// Independent model of the int8 activations: per block of 32, d = max|x|/127, xq = round(x·127/max|x|).
    func quantizedX(_ x: [Float]) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        var b = 0
        while b < x.count {
            let hi = min(b + 32, x.count)
            let amax = x[b..<hi].map { abs($0) }.max()!
            let inv: Float = amax > 0 ? 127 / amax : 0
            let d = amax / 127
            for c in b..<hi {
                let q = min(max(x[c] * inv, -127), 127).rounded(.toNearestOrEven)
                out[c] = Double(q) * Double(d)
            }
            b = hi
        }
        return out
    }

    /// The decoded rows of `w`, for bounds.
    func decoded(_ w: Matrix) -> [[Float]] {
        (0..<w.rows).map { r in
            var row = [Float](repeating: 0, count: w.cols)
            row.withUnsafeMutableBufferPointer { referenceDecodeRow(w, r, into: $0.baseAddress!) }
            return row
        }
    }

    func run(_ w: Matrix, _ x: [Float], accumulate: Bool, level: Int) -> [Float] {
        var y = (0..<w.rows).map { Float($0) * 0.25 }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { matvec($0.baseAddress!, w, xp.baseAddress!, accumulate: accumulate, level: level) }
        }
        return y
    }

    func reference(_ w: Matrix, _ x: [Float], accumulate: Bool) -> [Float] {
        var y = (0..<w.rows).map { Float($0) * 0.25 }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { matvecReference($0.baseAddress!, w, xp.baseAddress!, accumulate: accumulate) }
        }
        return y
    }

    var levels: [Int] { Array(0...kernelDetectedLevel) }

    func testFloatKernelsMatchReference() {
        var rng = Rand()
        for (rows, cols) in Self.shapes {
            let v = rng.values(rows * cols), x = rng.values(cols)
            for dtype in [DType.f32, .f16] {
                withMatrix(v, rows, cols, dtype) { w in
                    let rows = decoded(w)
                    for acc in [false, true] {
                        let want = reference(w, x, accumulate: acc)
                        for level in levels {
                            let got = run(w, x, accumulate: acc, level: level)
                            for r in 0..<w.rows {
                                // f32 summation of cols products: error ≤ cols · ε · Σ|w·x| (loose form).
                                let mag = zip(rows[r], x).reduce(0) { $0 + Double(abs($1.0 * $1.1)) } + Double(r) * 0.25
                                let bound = 2 * Double(w.cols + 4) * 6e-8 * mag + 1e-6
                                XCTAssertLessThanOrEqual(abs(Double(got[r]) - Double(want[r])), bound,
                                                         "\(dtype.name) \(w.rows)×\(w.cols) level \(level) row \(r) acc \(acc)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// f32 matrices of few columns multiplied from their copy in column blocks (`rk_f32_columns_*`, what
    /// `Model` makes at load): bit for bit the row kernel at the level in use, started from y[r] = r/4 or
    /// not, for every column count up to rk_f32_columns_max() and row counts around the blocks of 16; values
    /// include zeros of both signs, whose products the two kernels must add alike. Where the level has no
    /// such kernel the copy is refused (0 bytes) and the product falls back to the rows.
    func testColumnBlocksEqualTheRowKernel() {
        var rng = Rand()
        let level = Int(rk_level())
        #if arch(x86_64)
        let most = [0, 64, 64][level]   // scalar, AVX2, AVX-512
        #else
        let most = 0
        #endif
        XCTAssertEqual(rk_f32_columns_max(), most)
        for rows in [16, 17, 18, 19, 31, 32, 47, 100, 768] {
            for cols in 1...64 {
                let hasKernel = cols <= most
                var v = rng.values(rows * cols)
                var x = rng.values(cols)
                if cols % 5 == 0 { for i in stride(from: 0, to: v.count, by: 7) { v[i] = i % 2 == 0 ? 0 : -0.0 } }
                if cols % 3 == 0 { x[cols / 2] = -0.0 }
                let bytes = rk_f32_columns_bytes(rows, cols)
                XCTAssertEqual(bytes > 0, hasKernel, "\(rows)×\(cols): a copy exactly where the level has the kernel")
                XCTAssertEqual(bytes, hasKernel ? (rows + 15) / 16 * 16 * cols * 4 : 0)
                var packed = [Float](repeating: .nan, count: max(bytes / 4, 1))
                v.withUnsafeBufferPointer { w in
                    if bytes > 0 { packed.withUnsafeMutableBufferPointer { rk_f32_columns_pack($0.baseAddress!, w.baseAddress!, rows, cols) } }
                    let m = Matrix(rows: rows, cols: cols, dtype: .f32, data: UnsafeRawPointer(w.baseAddress!))
                    for acc in [false, true] {
                        let want = run(m, x, accumulate: acc, level: level)
                        var got = (0..<rows).map { Float($0) * 0.25 }
                        packed.withUnsafeBufferPointer { p in
                            x.withUnsafeBufferPointer { xp in
                                got.withUnsafeMutableBufferPointer {
                                    rk_f32_columns_matvec($0.baseAddress!, bytes > 0 ? p.baseAddress! : nil, w.baseAddress!,
                                                          xp.baseAddress!, rows, cols, acc ? 1 : 0)
                                }
                            }
                        }
                        XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(rows)×\(cols) acc \(acc) level \(level)")
                    }
                }
            }
        }
        XCTAssertEqual(rk_f32_columns_bytes(768, most + 1), 0, "more columns than the kernel takes")
        XCTAssertEqual(rk_f32_columns_bytes(15, 12), 0, "fewer rows than one block")
    }

    /// f32 matrices past L2 are read forwards and backwards by turns (rk_turn, AVX-512; its alternation is
    /// checked by simde_check): consecutive products of one matrix give the same bits, those of the
    /// reference within rounding, with row counts that leave rows past the passes.
    func testTurnsGiveTheSameBits() {
        var rng = Rand()
        for (rows, cols) in [(1537, 256), (1282, 300)] {   // 1.57 and 1.54 MB: between RK_TURN_MIN_BYTES and _MAX_
            let v = rng.values(rows * cols), x = rng.values(cols)
            withMatrix(v, rows, cols, .f32) { w in
                let want = reference(w, x, accumulate: true)
                let runs = (0..<3).map { _ in run(w, x, accumulate: true, level: Int(rk_level())) }
                XCTAssertEqual(runs[1].map(\.bitPattern), runs[0].map(\.bitPattern), "\(rows)×\(cols): second product")
                XCTAssertEqual(runs[2].map(\.bitPattern), runs[0].map(\.bitPattern), "\(rows)×\(cols): third product")
                let worst = zip(runs[0], want).map { abs(Double($0) - Double($1)) }.max()!
                XCTAssertLessThan(worst, 1e-3, "\(rows)×\(cols) against the reference")
            }
        }
    }

    /// One quantized product `got` (rows of decoded weights `dec`, started from y[r] = r/4 when
    /// `accumulate`) against the exact product `want`: within Σ_c |w_rc| · halfStep_c (half a quantization
    /// step of x) plus f32 rounding; and against `xq` (an independent model of the quantized x, as
    /// decoded values) to f32 rounding.
    func checkQuantizedProduct(_ got: [Float], _ want: [Float], _ dec: [[Float]], _ xq: [Double], _ halfStep: [Double],
                               accumulate: Bool, tag: String) {
        for r in 0..<dec.count {
            var bound = 0.0, exactQ = accumulate ? Double(r) * 0.25 : 0, mag = Double(r) * 0.25
            for c in 0..<xq.count {
                bound += Double(abs(dec[r][c])) * halfStep[c]
                exactQ += Double(dec[r][c]) * xq[c]
                mag += abs(Double(dec[r][c]) * xq[c])
            }
            let rounding = 4 * Double(xq.count + 32) * 6e-8 * mag + 1e-6
            XCTAssertLessThanOrEqual(abs(Double(got[r]) - Double(want[r])), bound + rounding, tag + " row \(r)")
            XCTAssertLessThanOrEqual(abs(Double(got[r]) - exactQ), rounding, tag + " row \(r) (quantized-x reference)")
        }
    }

    /// q8 and q4: the kernels multiply by x quantized to int8 per block; the difference from the exact
    /// product is bounded by Σ_c |w_c| · d_b / 2 (half a quantization step of x), plus f32 rounding.
    /// Against a reference that quantizes x the same way, they agree to f32 rounding.
    func testQuantizedKernelsMatchReference() {
        var rng = Rand()
        for (rows, cols) in Self.shapes + [(3, 16_500)] {
            let v = rng.values(rows * cols, scale: 0.5), x = rng.values(cols)
            let xq = quantizedX(x)
            var halfStep = [Double](repeating: 0, count: cols)
            for c in 0..<cols {
                let b = c / 32 * 32
                halfStep[c] = Double(x[b..<min(b + 32, cols)].map { abs($0) }.max()!) / 127 / 2
            }
            for dtype in [DType.q8, .q4] {
                withMatrix(v, rows, cols, dtype) { w in
                    let dec = decoded(w)
                    for acc in [false, true] {
                        let want = reference(w, x, accumulate: acc)
                        for level in levels {
                            let got = run(w, x, accumulate: acc, level: level)
                            checkQuantizedProduct(got, want, dec, xq, halfStep, accumulate: acc,
                                                  tag: "\(dtype.name) \(w.rows)×\(w.cols) level \(level) acc \(acc)")
                        }
                    }
                }
            }
        }
    }

    /// q8r: x is quantized per vector to [−64, 64] (D = max|x|/64). The difference from the exact product
    /// is bounded by Σ_c |w_c| · D / 2, plus f32 rounding; against an independent model of that
    /// quantization it agrees to f32 rounding; and every level gives the same bits (exact integer sums,
    /// then the same two float multiplications).
    func testPerRowKernelsMatchReference() {
        var rng = Rand()
        for (rows, cols) in Self.shapes + [(3, 16_500), (5, 96)] {
            let v = rng.values(rows * cols, scale: 0.5)
            var x = rng.values(cols)
            if cols > 3 { x[cols / 2] = 2.5 }   // one larger value sets the vector's scale
            let amax = x.map { abs($0) }.max()!
            let inv: Float = amax > 0 ? 64 / amax : 0
            let D = Double(amax / 64)   // one scale for the whole vector
            let xq = x.map { Double(min(max($0 * inv, -64), 64).rounded(.toNearestOrEven)) * D }
            withMatrix(v, rows, cols, .q8r) { w in
                let dec = decoded(w)
                for acc in [false, true] {
                    let want = reference(w, x, accumulate: acc)
                    let scalar = run(w, x, accumulate: acc, level: 0)
                    for level in levels {
                        let got = run(w, x, accumulate: acc, level: level)
                        XCTAssertEqual(got, scalar, "q8r \(w.rows)×\(w.cols) level \(level) acc \(acc): not bitwise equal to scalar")
                        checkQuantizedProduct(got, want, dec, xq, [Double](repeating: D / 2, count: cols), accumulate: acc,
                                              tag: "q8r \(w.rows)×\(w.cols) level \(level) acc \(acc)")
                    }
                }
            }
        }
    }

    /// q8ri holds q8r's codes with the rows interleaved by 16: at every level, on the whole matrix and on
    /// row views that start and end inside a group of 16 (as a GRU's gates are), the product is bit for bit
    /// q8r's scalar product of the same rows, and its weights decode (independently) to q8r's.
    func testInterleavedKernelsEqualPerRow() {
        var rng = Rand()
        // (2200, 1000): more than RK_PREFETCH_MIN_BYTES of whole groups, which AVX-512 reads with prefetches
        for (rows, cols) in Self.shapes + [(16, 64), (35, 100), (48, 257), (3, 16_500), (300, 100), (2200, 1000)] {
            let v = rng.values(rows * cols, scale: 0.5)
            let x = rng.values(cols)
            withMatrix(v, rows, cols, .q8r) { per in
                withMatrix(v, rows, cols, .q8ri) { il in
                    XCTAssertEqual(decoded(il), decoded(per), "q8ri \(rows)×\(cols) decodes to q8r's weights")
                    let views = [(0, rows), (rows / 3, rows - rows / 3), (rows / 2, (rows + 1) / 4), (rows - 1, 1)]
                    for (start, count) in views where count > 0 {
                        for acc in [false, true] {
                            let want = run(per.rows(start, count), x, accumulate: acc, level: 0)
                            for level in levels {
                                let got = run(il.rows(start, count), x, accumulate: acc, level: level)
                                XCTAssertEqual(got, want, "q8ri \(rows)×\(cols) rows \(start)+\(count) level \(level) acc \(acc)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Several vectors against one matrix (the batched step): at every level, for every type, on views that
    /// start inside a group, each of the n products is bit for bit the single product (q8ri reads each
    /// weight once per group of 8 or 4 vectors; the groups and the remainder are covered; f32 and f16 are
    /// multiplied vector by vector by the single kernel).
    func testBatchedQuantizedProductsEqualSingleProducts() {
        var rng = Rand()
        for (rows, cols) in [(7, 33), (35, 100), (48, 257), (300, 100), (20, 1000), (5, 8), (9, 16), (13, 64)] {
            expectBatchedEqualSingles(rows, cols, DType.allCases, [1, 2, 3, 5, 8, 9, 17], &rng)
        }
    }

    /// More q8ri vectors than one pass takes (9 and 17) against a matrix of more than RK_BATCH_BLOCK_BYTES: the
    /// rows run in blocks (992 rows at 250 columns), every pass over one block before the next; each product is
    /// still bit for bit the single product, on the whole matrix and on a view whose first block is cut.
    func testBatchedInterleavedProductsInRowBlocks() {
        var rng = Rand()
        expectBatchedEqualSingles(1100, 250, [.q8ri], [9, 17], &rng)
    }

    /// For each dtype and n: n random vectors against a random rows × cols matrix, whole and from row rows / 3, at
    /// every level; rk_matmat_rows_at's n products equal the single products bit for bit.
    private func expectBatchedEqualSingles(_ rows: Int, _ cols: Int, _ dtypes: [DType], _ ns: [Int], _ rng: inout Rand) {
        let v = rng.values(rows * cols, scale: 0.5)
        for dtype in dtypes {
            withMatrix(v, rows, cols, dtype) { w in
                for n in ns {
                    let xs = rng.values(n * cols)
                    for (start, count) in [(0, rows), (rows / 3, rows - rows / 3)] {
                        let view = w.rows(start, count)
                        for level in levels {
                            var got = [Float](repeating: .nan, count: n * count)
                            xs.withUnsafeBufferPointer { xp in
                                got.withUnsafeMutableBufferPointer {
                                    _ = rk_matmat_rows_at(Int32(level), Int32(dtype.rawValue), $0.baseAddress!, view.data,
                                                          xp.baseAddress!, n, view.row0, count, cols)
                                }
                            }
                            for j in 0..<n {
                                var one = [Float](repeating: 0, count: count)
                                xs.withUnsafeBufferPointer { xp in
                                    one.withUnsafeMutableBufferPointer {
                                        matvec($0.baseAddress!, view, xp.baseAddress! + j * cols, accumulate: false, level: level)
                                    }
                                }
                                XCTAssertEqual(got[(j * count)..<((j + 1) * count)].map(\.bitPattern), one.map(\.bitPattern),
                                               "\(dtype.name) \(rows)×\(cols) rows \(start)+\(count) n \(n) vector \(j) level \(level)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// q4i holds q4's scales and nibbles with the rows interleaved by 16: its weights decode (independently)
    /// to q4's; every level gives the scalar kernel's bits, on whole matrices and on views that start and end
    /// inside a group; and the product is within the q4 bounds of the exact one.
    func testInterleavedFourBitKernels() {
        var rng = Rand()
        // (2100, 1000): more than RK_SPREAD_MAX_BYTES of whole groups, so AVX-512 takes them one at a time
        for (rows, cols) in Self.shapes + [(16, 64), (35, 100), (48, 257), (300, 100), (2100, 1000)] {
            let v = rng.values(rows * cols, scale: 0.5), x = rng.values(cols)
            withMatrix(v, rows, cols, .q4) { per in
                withMatrix(v, rows, cols, .q4i) { il in
                    XCTAssertEqual(decoded(il), decoded(per), "q4i \(rows)×\(cols) decodes to q4's weights")
                    for (start, count) in [(0, rows), (rows / 3, rows - rows / 3), (rows - 1, 1)] where count > 0 {
                        let view = il.rows(start, count)
                        for acc in [false, true] {
                            let scalar = run(view, x, accumulate: acc, level: 0)
                            let near = run(per.rows(start, count), x, accumulate: acc, level: 0)
                            for (a, b) in zip(scalar, near) {
                                XCTAssertLessThanOrEqual(abs(a - b), 1e-5 * Float(cols).squareRoot() * max(1, abs(b)),
                                                         "q4i \(rows)×\(cols) rows \(start)+\(count) against q4")
                            }
                            for level in levels {
                                XCTAssertEqual(run(view, x, accumulate: acc, level: level), scalar,
                                               "q4i \(rows)×\(cols) rows \(start)+\(count) level \(level) acc \(acc)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// q8ri layout: groups of 16 rows (scales, row sums, chunks of 4 columns), the last padded with zeros.
    func testInterleavedLayout() {
        let v: [Float] = (0..<(17 * 5)).map { Float($0 % 7) - 3 }   // 17 rows × 5
        let per = quantizeMatrix(v, rows: 17, cols: 5, to: .q8r)
        let il = quantizeMatrix(v, rows: 17, cols: 5, to: .q8ri)
        let gb = 128 + 16 * 32
        XCTAssertEqual(il.count, 2 * gb)
        for r in 0..<17 {
            let g = (r / 16) * gb, i = r % 16
            XCTAssertEqual(Array(il[(g + 4 * i)..<(g + 4 * i + 4)]), Array(per[(r * 36)..<(r * 36 + 4)]), "scale of row \(r)")
            let codes = (0..<5).map { Int8(bitPattern: per[r * 36 + 4 + $0]) }
            let sum = il.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: g + 64 + 4 * i, as: Int32.self) }
            XCTAssertEqual(sum, codes.reduce(0) { $0 + Int32($1) }, "row sum of row \(r)")
            for c in 0..<5 {
                XCTAssertEqual(Int8(bitPattern: il[g + 128 + 64 * (c / 4) + 4 * i + c % 4]), codes[c], "row \(r) col \(c)")
            }
        }
        XCTAssertTrue(il[(gb + 4)..<(gb + 64)].allSatisfy { $0 == 0 }, "padding rows' scales")
        XCTAssertTrue(il[(gb + 68)..<(gb + 128)].allSatisfy { $0 == 0 }, "padding rows' sums")
    }

    /// q8r encoding: one scale per row, max|w|/127, values round(w/scale) and zero padding to 32.
    func testPerRowLayout() {
        let v: [Float] = [0.5, -1.27, 0.01, 0, 2.54, -0.02, 0, 0]   // 2 rows × 4
        let bytes = quantizeMatrix(v, rows: 2, cols: 4, to: .q8r)
        XCTAssertEqual(bytes.count, 2 * (4 + 32))
        let s0 = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: Float.self) }
        let s1 = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 36, as: Float.self) }
        XCTAssertEqual(s0, Float(1.27) / 127)
        XCTAssertEqual(s1, Float(2.54) / 127)
        XCTAssertEqual(bytes[4..<8].map { Int8(bitPattern: $0) }, [50, -127, 1, 0])
        XCTAssertEqual(bytes[40..<44].map { Int8(bitPattern: $0) }, [127, -1, 0, 0])
        XCTAssertTrue(bytes[8..<36].allSatisfy { $0 == 0 } && bytes[44..<72].allSatisfy { $0 == 0 })
    }

    /// Zero, negative zero, and a block of zeros next to large values; no NaN may appear.
    func testEdgeValues() {
        let cols = 70, rows = 5
        var v = [Float](repeating: 0, count: rows * cols)
        for c in 0..<cols { v[cols + c] = c < 32 ? 0 : Float(c) - 40; v[2 * cols + c] = -0.0; v[3 * cols + c] = 1e-30 }
        var x = [Float](repeating: 0, count: cols)
        for c in 32..<cols { x[c] = c % 2 == 0 ? 3 : -0.0 }
        for dtype in DType.allCases {
            withMatrix(v, rows, cols, dtype) { w in
                let want = reference(w, x, accumulate: false)
                for level in levels {
                    let got = run(w, x, accumulate: false, level: level)
                    for r in 0..<rows {
                        XCTAssertTrue(got[r].isFinite, "\(dtype.name) level \(level) row \(r)")
                        XCTAssertEqual(Double(got[r]), Double(want[r]), accuracy: 1e-3 * max(1, abs(Double(want[r]))),
                                       "\(dtype.name) level \(level) row \(r)")
                    }
                }
            }
        }
    }

    /// The vectorized tanh and sigmoid against Double, across the range, saturation, zero and -0.
    func testActivations() {
        var xs: [Float] = [0, -0.0, 1e-8, -1e-8, 88, -88, 89, -89, 100, -100, 1e30, -1e30]
        var v: Float = -30
        while v <= 30 { xs.append(v); v += 0.0137 }
        for a in [Activation.tanh, .sigmoid, .relu, .hardSigmoidKeras2, .hardSigmoidKeras3, .linear] {
            var y = xs
            y.withUnsafeMutableBufferPointer { applyElementwise(a, $0.baseAddress!, $0.count) }
            for (x, got) in zip(xs, y) {
                let d = Double(x)
                let want: Double
                switch a {
                case .tanh: want = Foundation.tanh(d)
                case .sigmoid: want = 1 / (1 + Foundation.exp(-d))
                case .relu: want = max(d, 0)
                case .hardSigmoidKeras2: want = min(max(0.2 * d + 0.5, 0), 1)
                case .hardSigmoidKeras3: want = min(max(d / 6 + 0.5, 0), 1)
                default: want = d
                }
                XCTAssertEqual(Double(got), want, accuracy: 4e-7 + 1e-6 * abs(want), "\(a) at \(x)")
            }
        }
    }

    /// rk_gru_gates and rk_lstm_gates (one pass at this CPU's level where it has one) give the bits of the gates
    /// computed pass by pass: each sum and product rounded on its own (Swift arithmetic, never contracted) and the
    /// activations of applyElementwise on whole vectors. Every tail length, with and without the recurrent bias
    /// and the peepholes, saturating inputs included; sizes past the levels' blocks of several vectors (32 units
    /// with AVX2, 64 with AVX-512) and their tails.
    func testOnePassGatesEqualThePassByPassGates() {
        var rng = Rand()
        let kinds: [(Activation, Activation)] = [(.sigmoid, .tanh), (.tanh, .sigmoid), (.sigmoid, .sigmoid),
                                                 (.tanh, .tanh), (.hardSigmoidKeras2, .tanh), (.sigmoid, .relu)]
        for H in [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 100, 136] {
            for (ga, act) in kinds {
                for extra in [false, true] {
                    // GRU, reset after: gu (3H), bh (3H) or none, gx (3H), h (H).
                    let gu = rng.values(3 * H, scale: 6), bh = rng.values(3 * H), gx = rng.values(3 * H, scale: 6)
                    var h0 = rng.values(H)
                    h0[0] = 0.5; if H > 2 { h0[1] = -1; h0[2] = 1 }
                    var want = h0
                    var t = gu
                    for i in 0..<3 * H where extra { t[i] = t[i] + bh[i] }
                    for i in 0..<2 * H { t[i] = t[i] + gx[i] }
                    t.withUnsafeMutableBufferPointer { applyElementwise(ga, $0.baseAddress!, 2 * H) }
                    var n = (0..<H).map { gx[2 * H + $0] + t[$0] * t[2 * H + $0] }
                    n.withUnsafeMutableBufferPointer { applyElementwise(act, $0.baseAddress!, H) }
                    for i in 0..<H { want[i] = (1 - t[H + i]) * n[i] + t[H + i] * want[i] }
                    var got = h0, scratch = gu
                    got.withUnsafeMutableBufferPointer { hp in
                        scratch.withUnsafeMutableBufferPointer { up in
                            bh.withUnsafeBufferPointer { bp in
                                rk_gru_gates(hp.baseAddress!, up.baseAddress!, extra ? bp.baseAddress! : nil, gx, H,
                                             ga.kernelKind, act.kernelKind)
                            }
                        }
                    }
                    XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "GRU H=\(H) \(ga)/\(act) bias \(extra)")

                    // LSTM: gu (4H), gx (4H), peepholes (3H) or none, h and c (H).
                    let lu = rng.values(4 * H, scale: 6), lx = rng.values(4 * H, scale: 6), p = rng.values(3 * H)
                    let c0 = rng.values(H, scale: 3)
                    var g = (0..<4 * H).map { lu[$0] + lx[$0] }
                    var c = c0
                    for i in 0..<H where extra { g[i] = g[i] + p[i] * c[i]; g[H + i] = g[H + i] + p[H + i] * c[i] }
                    g.withUnsafeMutableBufferPointer {
                        applyElementwise(ga, $0.baseAddress!, 2 * H); applyElementwise(act, $0.baseAddress! + 2 * H, H)
                    }
                    for i in 0..<H { c[i] = g[H + i] * c[i] + g[i] * g[2 * H + i] }
                    for i in 0..<H where extra { g[3 * H + i] = g[3 * H + i] + p[2 * H + i] * c[i] }
                    var ac = c
                    g.withUnsafeMutableBufferPointer { applyElementwise(ga, $0.baseAddress! + 3 * H, H) }
                    ac.withUnsafeMutableBufferPointer { applyElementwise(act, $0.baseAddress!, H) }
                    let wantH = (0..<H).map { g[3 * H + $0] * ac[$0] }
                    var gotH = rng.values(H), gotC = c0, lscratch = lu, tmp = [Float](repeating: 0, count: H)
                    gotH.withUnsafeMutableBufferPointer { hp in
                        gotC.withUnsafeMutableBufferPointer { cp in
                            lscratch.withUnsafeMutableBufferPointer { up in
                                p.withUnsafeBufferPointer { pp in
                                    rk_lstm_gates(hp.baseAddress!, cp.baseAddress!, up.baseAddress!, lx,
                                                  extra ? pp.baseAddress! : nil, H, ga.kernelKind, act.kernelKind, &tmp)
                                }
                            }
                        }
                    }
                    XCTAssertEqual(gotH.map(\.bitPattern), wantH.map(\.bitPattern), "LSTM h H=\(H) \(ga)/\(act) peepholes \(extra)")
                    XCTAssertEqual(gotC.map(\.bitPattern), c.map(\.bitPattern), "LSTM c H=\(H) \(ga)/\(act) peepholes \(extra)")
                }
            }
        }
    }

    /// matmat: by default bit for bit what matvec computes per vector (every dtype); with exactActivations and at least
    /// `decodeMinimum` vectors (f16, q8, q4 decoded, then sgemm) the exact product of the decoded weights,
    /// to f32 rounding.
    func testMatMat() {
        var rng = Rand()
        for (rows, cols) in [(7, 33), (70, 100), (9, 300)] {
            let v = rng.values(rows * cols)
            for dtype in DType.allCases {
                withMatrix(v, rows, cols, dtype) { w in
                    for n in [1, 3, 5, 9] {
                        let xs = rng.values(n * cols)
                        var plain = [Float](repeating: 0, count: n * rows), exact = plain
                        xs.withUnsafeBufferPointer { xp in
                            plain.withUnsafeMutableBufferPointer { matmat($0.baseAddress!, w, xp.baseAddress!, count: n) }
                            exact.withUnsafeMutableBufferPointer {
                                matmat($0.baseAddress!, w, xp.baseAddress!, count: n, exactActivations: true)
                            }
                        }
                        for i in 0..<n {
                            let x = Array(xs[(i * cols)..<((i + 1) * cols)])
                            var y = [Float](repeating: 0, count: rows)
                            x.withUnsafeBufferPointer { xp in
                                y.withUnsafeMutableBufferPointer { matvec($0.baseAddress!, w, xp.baseAddress!) }
                            }
                            let want = reference(w, x, accumulate: false)
                            for r in 0..<rows {
                                let tag = "\(dtype.name) \(rows)×\(cols) n=\(n) vector \(i) row \(r)"
                                XCTAssertEqual(plain[i * rows + r].bitPattern, y[r].bitPattern, tag)
                                if n >= decodeMinimum || dtype == .f32 || dtype == .f16 {
                                    XCTAssertEqual(exact[i * rows + r], want[r], accuracy: 2e-4, tag + " (exact)")
                                } else {
                                    XCTAssertEqual(exact[i * rows + r], y[r], accuracy: 1e-4, tag + " (few vectors)")
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
