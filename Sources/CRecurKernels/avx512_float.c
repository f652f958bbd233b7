/* AVX-512 (F, BW, VL, DQ) float kernels (x86-64), called only when cpuid reports the level: f32 and f16 rows
 * (four rows at a time, far apart), f32 from column blocks, and f32 for several vectors. An f32 row is summed in
 * one fixed order, the halving tree of hsum16, whichever of them computes it, so they give it the same bits.
 * Layouts and contracts: recur_kernels.h and internal.h; the integer kernels are in avx512.c. */
#include "avx512.h"
#if defined(RK_X86) || defined(RK_SIMDE_CHECK)

/* ---- horizontal sums ---------------------------------------------------------------------------- */

/* Σ v in one fixed order, the halving tree: lanes i + (i + 8), then + 4, + 2, + 1 (the order compilers lower
 * _mm512_reduce_add_ps to, written out so that every build and the SIMDe check add alike). hsum8 is the tree
 * from its second step on. */
AVX512 static inline float hsum8(__m256 h) {
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    t = _mm_add_ps(t, _mm_castpd_ps(_mm_permute_pd(_mm_castps_pd(t), 1)));   /* + [t2, t3, t0, t1] */
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}
AVX512 static inline float hsum16(__m512 v) {
    return hsum8(_mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

/* (hsum16(a0), hsum16(a1), hsum16(a2), hsum16(a3)): the same additions of the same operands, each step for the
 * four vectors in one instruction (the halves of two vectors side by side, then the quarters of four). */
AVX512 static inline __m128 hsum16x4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 t = _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));   /* quarter k: a_k */
    t = _mm512_add_ps(t, _mm512_shuffle_ps(t, t, _MM_SHUFFLE(1, 0, 3, 2)));
    t = _mm512_add_ps(t, _mm512_shuffle_ps(t, t, _MM_SHUFFLE(3, 3, 1, 1)));
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), t));
}

/* y[0..3] (+)= s */
AVX512 static inline void put4(float *y, __m128 s, int acc) { _mm_storeu_ps(y, acc ? _mm_add_ps(_mm_loadu_ps(y), s) : s); }

/* y[r[k]] (+)= s[k], k < 4: the four rows of a pass (rk_quarter_rows) */
AVX512 static inline void put_rows4(float *y, __m128 s, const long r[4], int acc) {
    float v[4];
    _mm_storeu_ps(v, s);
    for (int k = 0; k < 4; k++) y[r[k]] = acc ? y[r[k]] + v[k] : v[k];
}

/* ---- f32 / f16: four rows at a time, the column tail by masked loads ------------------------------- */

/* Rows of at most 8 columns (a small input such as a frame of a few features, or a tiny state), four at a
 * time in 256-bit halves: the products and hsum16's additions of rk_f32_avx512 with its 16-lane vectors,
 * whose upper lanes hold +0 here (so its first step, lane i + lane i + 8, is a[i] + 0). The same bits. */
AVX512 static void f32_narrow(float *y, const float *w, const float *x, long rows, long cols, int acc) {
    const __mmask8 k = (__mmask8)((1u << cols) - 1);
    const __m256 xv = _mm256_maskz_loadu_ps(k, x), zero = _mm256_setzero_ps();
    long r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + r * cols;
        const __m256 a0 = _mm256_add_ps(_mm256_fmadd_ps(_mm256_maskz_loadu_ps(k, w0), xv, zero), zero);
        const __m256 a1 = _mm256_add_ps(_mm256_fmadd_ps(_mm256_maskz_loadu_ps(k, w0 + cols), xv, zero), zero);
        const __m256 a2 = _mm256_add_ps(_mm256_fmadd_ps(_mm256_maskz_loadu_ps(k, w0 + 2 * cols), xv, zero), zero);
        const __m256 a3 = _mm256_add_ps(_mm256_fmadd_ps(_mm256_maskz_loadu_ps(k, w0 + 3 * cols), xv, zero), zero);
        /* lanes i + (i + 4): rows 0 and 1 in s01's halves, 2 and 3 in s23's */
        const __m256 s01 = _mm256_add_ps(_mm256_permute2f128_ps(a0, a1, 0x20), _mm256_permute2f128_ps(a0, a1, 0x31));
        const __m256 s23 = _mm256_add_ps(_mm256_permute2f128_ps(a2, a3, 0x20), _mm256_permute2f128_ps(a2, a3, 0x31));
        /* + 2: [r0 r0 r2 r2 | r1 r1 r3 r3], then + 1: [r0 r2 r0 r2 | r1 r3 r1 r3] */
        __m256 t = _mm256_add_ps(_mm256_shuffle_ps(s01, s23, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(s01, s23, _MM_SHUFFLE(3, 2, 3, 2)));
        t = _mm256_add_ps(_mm256_shuffle_ps(t, t, _MM_SHUFFLE(2, 0, 2, 0)), _mm256_shuffle_ps(t, t, _MM_SHUFFLE(3, 1, 3, 1)));
        put4(y + r, _mm_unpacklo_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)), acc);
    }
    for (; r < rows; r++) {
        const float v = hsum8(_mm256_add_ps(_mm256_fmadd_ps(_mm256_maskz_loadu_ps(k, w + r * cols), xv, zero), zero));
        y[r] = acc ? y[r] + v : v;
    }
}

/* Four rows at a time, in the order of rk_quarter_rows (four streams far apart), or its reverse when rk_turn says
 * so (matrices of RK_TURN_MIN_BYTES to RK_TURN_MAX_BYTES); each row's multiply-adds and horizontal sum are the
 * same whichever rows share a pass and in whichever order the passes come (hsum16x4 adds as hsum16 does), so
 * the same bits. */
void AVX512 rk_f32_avx512(float *y, const float *w, const float *x, long rows, long cols, int acc) {
    if (cols > 0 && cols <= 8) {
        f32_narrow(y, w, x, rows, cols, acc);
        return;
    }
    const long c16 = cols & ~15L, q = rows / 4, bytes = 4 * rows * cols;
    const __mmask16 tail = lanes16(cols - c16);
    const int back = bytes > RK_TURN_MIN_BYTES && bytes <= RK_TURN_MAX_BYTES && rk_turn(w);
    for (long k = 0; k < q; k++) {
        const long i = back ? q - 1 - k : k;
        long r[4];
        rk_quarter_rows(i, q, r);
        const float *w0 = w + r[0] * cols, *w1 = w + r[1] * cols, *w2 = w + r[2] * cols, *w3 = w + r[3] * cols;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        long c = 0;
        for (; c < c16; c += 16) {
            __m512 xv = _mm512_loadu_ps(x + c);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + c), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + c), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + c), xv, a3);
        }
        if (tail) {
            __m512 xv = _mm512_maskz_loadu_ps(tail, x + c);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w0 + c), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w1 + c), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w2 + c), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w3 + c), xv, a3);
        }
        put_rows4(y, hsum16x4(a0, a1, a2, a3), r, acc);
    }
    for (long r = 4 * q; r < rows; r++) {
        const float *w0 = w + r * cols;
        __m512 a0 = _mm512_setzero_ps();
        long c = 0;
        for (; c < c16; c += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c), _mm512_loadu_ps(x + c), a0);
        if (tail) a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w0 + c), _mm512_maskz_loadu_ps(tail, x + c), a0);
        float s = hsum16(a0);
        y[r] = acc ? y[r] + s : s;
    }
}

/* ---- f32 of few columns, from a copy in column blocks (rk_f32_columns_pack) ------------------------- */

/* y (+)= W·x, W of few columns (at most 64: rk_f32_columns_max) held as rk_f32_columns_pack lays it out: per block b of 16
 * rows, column c's 16 values (rows 16b..16b+15) at p + 16·(cols·b + c). Accumulator l takes the columns
 * c ≡ l (mod 16) in increasing c, lane i for row 16b + i:
 *     A_l[i] = fma(w[r][c], x[c], …fma(w[r][l], x[l], +0))        (c = l, l + 16, …  < cols)
 * which is lane l of rk_f32_avx512's accumulator for row r (its columns past the end add fma(0, 0, a) = a:
 * a chain from +0 is never −0). hsum16's halving tree then runs across the accumulators instead of across
 * lanes: H_j = A_j + A_{j+8}, T_j = H_j + H_{j+4}, y = (T_0 + T_2) + (T_1 + T_3). So each row has the bits
 * of rk_f32_avx512, in 16 + 15 vector operations per 16 rows and column of 16 instead of a horizontal sum
 * per row. `t` = cols mod 16 (a constant in each copy), the columns of the last, partial chunk. */
__attribute__((always_inline)) AVX512 static inline void f32_columns(float *y, const float *p, const float *x, long rows,
                                                                     long cols, int acc, const int t) {
    const long chunks = cols / 16;
    for (long r = 0; r < rows; r += 16, p += 16 * cols) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
               a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
        const float *q = p, *xc = x;
#define RK_COL(l) a##l = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * (l)), _mm512_set1_ps(xc[l]), a##l)
        for (long k = 0; k < chunks; k++, q += 256, xc += 16) {
            RK_COL(0); RK_COL(1); RK_COL(2); RK_COL(3); RK_COL(4); RK_COL(5); RK_COL(6); RK_COL(7);
            RK_COL(8); RK_COL(9); RK_COL(10); RK_COL(11); RK_COL(12); RK_COL(13); RK_COL(14); RK_COL(15);
        }
        if (t > 0) RK_COL(0);
        if (t > 1) RK_COL(1);
        if (t > 2) RK_COL(2);
        if (t > 3) RK_COL(3);
        if (t > 4) RK_COL(4);
        if (t > 5) RK_COL(5);
        if (t > 6) RK_COL(6);
        if (t > 7) RK_COL(7);
        if (t > 8) RK_COL(8);
        if (t > 9) RK_COL(9);
        if (t > 10) RK_COL(10);
        if (t > 11) RK_COL(11);
        if (t > 12) RK_COL(12);
        if (t > 13) RK_COL(13);
        if (t > 14) RK_COL(14);
#undef RK_COL
        const __m512 h0 = _mm512_add_ps(a0, a8), h1 = _mm512_add_ps(a1, a9), h2 = _mm512_add_ps(a2, a10),
                     h3 = _mm512_add_ps(a3, a11), h4 = _mm512_add_ps(a4, a12), h5 = _mm512_add_ps(a5, a13),
                     h6 = _mm512_add_ps(a6, a14), h7 = _mm512_add_ps(a7, a15);
        const __m512 t0 = _mm512_add_ps(h0, h4), t1 = _mm512_add_ps(h1, h5), t2 = _mm512_add_ps(h2, h6),
                     t3 = _mm512_add_ps(h3, h7);
        __m512 v = _mm512_add_ps(_mm512_add_ps(t0, t2), _mm512_add_ps(t1, t3));
        const __mmask16 m = lanes16(rows - r);
        if (acc) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + r), v);
        _mm512_mask_storeu_ps(y + r, m, v);
    }
}

void AVX512 rk_f32_columns_avx512(float *y, const float *p, const float *x, long rows, long cols, int acc) {
    switch (cols % 16) {
#define RK_TAIL(t) case t: f32_columns(y, p, x, rows, cols, acc, t); return;
    RK_TAIL(0) RK_TAIL(1) RK_TAIL(2) RK_TAIL(3) RK_TAIL(4) RK_TAIL(5) RK_TAIL(6) RK_TAIL(7)
    RK_TAIL(8) RK_TAIL(9) RK_TAIL(10) RK_TAIL(11) RK_TAIL(12) RK_TAIL(13) RK_TAIL(14) RK_TAIL(15)
#undef RK_TAIL
    }
}

/* Up to 8 vectors against one f32 matrix, two rows at a time, each weight loaded once for all of them:
 * per (row, vector) the multiply-adds, tail and horizontal sum of rk_f32_avx512, in its order (its row
 * grouping does not enter a row's arithmetic), so each y[j] has the bits of the single product. y[j] at
 * y + j·ldy (stored, not accumulated). Inlined per n: 2·n accumulators in registers. */
__attribute__((always_inline)) AVX512 static inline void f32_batch(float *y, long ldy, const float *w,
                                                                     const float *const *x, const int n, long rows, long cols) {
    const long c16 = cols & ~15L;
    const __mmask16 tail = lanes16(cols - c16);
    long r = 0;
    for (; r + 2 <= rows; r += 2) {
        const float *w0 = w + r * cols, *w1 = w0 + cols;
        __m512 a[8], b[8];
        for (int j = 0; j < n; j++) a[j] = b[j] = _mm512_setzero_ps();
        long c = 0;
        for (; c < c16; c += 16) {
            const __m512 v0 = _mm512_loadu_ps(w0 + c), v1 = _mm512_loadu_ps(w1 + c);
            for (int j = 0; j < n; j++) {
                const __m512 xv = _mm512_loadu_ps(x[j] + c);
                a[j] = _mm512_fmadd_ps(v0, xv, a[j]);
                b[j] = _mm512_fmadd_ps(v1, xv, b[j]);
            }
        }
        if (tail) {
            const __m512 v0 = _mm512_maskz_loadu_ps(tail, w0 + c), v1 = _mm512_maskz_loadu_ps(tail, w1 + c);
            for (int j = 0; j < n; j++) {
                const __m512 xv = _mm512_maskz_loadu_ps(tail, x[j] + c);
                a[j] = _mm512_fmadd_ps(v0, xv, a[j]);
                b[j] = _mm512_fmadd_ps(v1, xv, b[j]);
            }
        }
        for (int j = 0; j < n; j++) {
            y[j * ldy + r] = hsum16(a[j]);
            y[j * ldy + r + 1] = hsum16(b[j]);
        }
    }
    for (; r < rows; r++) {
        const float *w0 = w + r * cols;
        __m512 a[8];
        for (int j = 0; j < n; j++) a[j] = _mm512_setzero_ps();
        long c = 0;
        for (; c < c16; c += 16) {
            const __m512 v = _mm512_loadu_ps(w0 + c);
            for (int j = 0; j < n; j++) a[j] = _mm512_fmadd_ps(v, _mm512_loadu_ps(x[j] + c), a[j]);
        }
        if (tail) {
            const __m512 v = _mm512_maskz_loadu_ps(tail, w0 + c);
            for (int j = 0; j < n; j++) a[j] = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(tail, x[j] + c), a[j]);
        }
        for (int j = 0; j < n; j++) y[j * ldy + r] = hsum16(a[j]);
    }
}

void AVX512 rk_f32_batch_avx512(float *y, long ldy, const float *w, const float *const *x, int n, long rows, long cols) {
    switch (n) {
    case 1: f32_batch(y, ldy, w, x, 1, rows, cols); break;
    case 2: f32_batch(y, ldy, w, x, 2, rows, cols); break;
    case 3: f32_batch(y, ldy, w, x, 3, rows, cols); break;
    case 4: f32_batch(y, ldy, w, x, 4, rows, cols); break;
    case 5: f32_batch(y, ldy, w, x, 5, rows, cols); break;
    case 6: f32_batch(y, ldy, w, x, 6, rows, cols); break;
    case 7: f32_batch(y, ldy, w, x, 7, rows, cols); break;
    default: f32_batch(y, ldy, w, x, 8, rows, cols); break;
    }
}

AVX512 static inline __m512 load_h16(const uint16_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

void AVX512 rk_f16_avx512(float *y, const uint16_t *w, const float *x, long rows, long cols, int acc) {
    const long c16 = cols & ~15L, q = rows / 4;
    const __mmask16 tail = lanes16(cols - c16), all = 0xFFFF;
    for (long i = 0; i < q; i++) {   /* the rows of rk_quarter_rows, as rk_f32_avx512 */
        long r[4];
        rk_quarter_rows(i, q, r);
        const uint16_t *w0 = w + r[0] * cols, *w1 = w + r[1] * cols, *w2 = w + r[2] * cols, *w3 = w + r[3] * cols;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        long c = 0;
        for (; c < c16; c += 16) {
            __m512 xv = _mm512_loadu_ps(x + c);
            a0 = _mm512_fmadd_ps(load_h16(w0 + c, all), xv, a0);
            a1 = _mm512_fmadd_ps(load_h16(w1 + c, all), xv, a1);
            a2 = _mm512_fmadd_ps(load_h16(w2 + c, all), xv, a2);
            a3 = _mm512_fmadd_ps(load_h16(w3 + c, all), xv, a3);
        }
        if (tail) {
            __m512 xv = _mm512_maskz_loadu_ps(tail, x + c);
            a0 = _mm512_fmadd_ps(load_h16(w0 + c, tail), xv, a0);
            a1 = _mm512_fmadd_ps(load_h16(w1 + c, tail), xv, a1);
            a2 = _mm512_fmadd_ps(load_h16(w2 + c, tail), xv, a2);
            a3 = _mm512_fmadd_ps(load_h16(w3 + c, tail), xv, a3);
        }
        put_rows4(y, hsum16x4(a0, a1, a2, a3), r, acc);
    }
    for (long r = 4 * q; r < rows; r++) {
        const uint16_t *w0 = w + r * cols;
        __m512 a0 = _mm512_setzero_ps();
        long c = 0;
        for (; c < c16; c += 16) a0 = _mm512_fmadd_ps(load_h16(w0 + c, all), _mm512_loadu_ps(x + c), a0);
        if (tail) a0 = _mm512_fmadd_ps(load_h16(w0 + c, tail), _mm512_maskz_loadu_ps(tail, x + c), a0);
        float s = hsum16(a0);
        y[r] = acc ? y[r] + s : s;
    }
}

#endif
