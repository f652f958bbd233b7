/* AVX-512 (F, BW, VL, DQ) + VNNI kernels (x86-64), called only when cpuid reports all of them.
 * Layouts and contracts: recur_kernels.h and internal.h.
 *
 * vpdpbusd multiplies unsigned bytes by signed bytes and adds groups of four into int32 lanes:
 * - q4: the nibbles (0..15) are the unsigned operand as they are; Σ(n − 8)·xq = Σ n·xq − 8·Σxq, and
 *   the second term is subtracted once per row as Σ_b s_b · t8_b.
 * - q8: the weights are made unsigned by flipping their top bit (q + 128); the offset 128·Σxq is
 *   subtracted the same way with t128.
 * - q8r: the same flip; the offset 128·Σxq is one integer per vector (x->sum), subtracted from each
 *   row's exact integer sum before its single conversion.
 * - q8ri: x is the unsigned operand (u = xq + 64), broadcast to 16 rows; the weights stay signed, and the
 *   offset 64·Σq of each row is its stored row sum shifted.
 * q8/q4: each int32 lane belongs to one block; lanes are converted to f32 and multiplied by s_b·d_b, spread
 * over the block's lanes with vpermps from 16 combined scales at a time. */
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

/* ---- q8: two blocks (64 bytes) per vpdpbusd --------------------------------------------------------- */

/* One row: Σ_b s_b·d_b·Σ(q+128)·xq − Σ_b s_b·t128_b. */
void AVX512 rk_q8_avx512(float *y, const void *w, const rk_xq *x, long rows, int acc) {
    const long nb = x->nb, rb = 36 * nb;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const unsigned char *base = (const unsigned char *)w;
    for (long r = 0; r < rows; r++) {
        const unsigned char *row = base + r * rb;
        const float *s = (const float *)row;
        const unsigned char *q = row + 4 * nb;
        __m512 a = _mm512_setzero_ps(), corr = _mm512_setzero_ps();
        for (long g = 0; g < nb; g += 16) {          /* 16 blocks share one vector of combined scales */
            const long n = nb - g < 16 ? nb - g : 16;
            const __m512 sv = _mm512_maskz_loadu_ps(lanes16(n), s + g);
            const __m512 cs = _mm512_mul_ps(sv, _mm512_load_ps(x->d + g));
            corr = _mm512_fmadd_ps(sv, _mm512_load_ps(x->t128 + g), corr);
            __m512i idx = pair;
            for (long k = 0; k < n; k += 2) {
                const long b = g + k;
                __m512i wv = n - k >= 2 ? _mm512_loadu_si512((const void *)(q + 32 * b))
                                        : _mm512_maskz_loadu_epi8((__mmask64)0xFFFFFFFFull, q + 32 * b);
                wv = _mm512_xor_si512(wv, flip);
                __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv,
                                                  _mm512_load_si512((const void *)(x->q + 32 * b)));
                a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx, cs), a);
                idx = _mm512_add_epi32(idx, _mm512_set1_epi32(2));
            }
        }
        float v = _mm512_reduce_add_ps(a) - _mm512_reduce_add_ps(corr);
        y[r] = acc ? y[r] + v : v;
    }
}

/* ---- q8r: 64 weights per vpdpbusd, four rows sharing each 64 bytes of x, int32 sums per row ------- */

void AVX512 rk_q8r_avx512(float *y, const void *w, const rk_xr *x, long rows, int acc) {
    const long n = (x->cols + 31) & ~31L, n64 = n & ~63L, rb = 4 + n;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __mmask64 half = (__mmask64)0xFFFFFFFFull;   /* a last block of 32 (x is zero-padded to 64) */
    const int32_t off = 128 * x->sum;
    const int8_t *xq = x->q;
    const unsigned char *base = (const unsigned char *)w;
    long r = 0;
    for (; r + 4 <= rows; r += 4) {
        const unsigned char *r0 = base + r * rb, *r1 = r0 + rb, *r2 = r1 + rb, *r3 = r2 + rb;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        long c = 0;
        for (; c < n64; c += 64) {
            const __m512i xv = _mm512_load_si512((const void *)(xq + c));
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_loadu_si512((const void *)(r0 + 4 + c)), flip), xv);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_xor_si512(_mm512_loadu_si512((const void *)(r1 + 4 + c)), flip), xv);
            a2 = _mm512_dpbusd_epi32(a2, _mm512_xor_si512(_mm512_loadu_si512((const void *)(r2 + 4 + c)), flip), xv);
            a3 = _mm512_dpbusd_epi32(a3, _mm512_xor_si512(_mm512_loadu_si512((const void *)(r3 + 4 + c)), flip), xv);
        }
        if (c < n) {
            const __m512i xv = _mm512_load_si512((const void *)(xq + c));
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_maskz_loadu_epi8(half, r0 + 4 + c), flip), xv);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_xor_si512(_mm512_maskz_loadu_epi8(half, r1 + 4 + c), flip), xv);
            a2 = _mm512_dpbusd_epi32(a2, _mm512_xor_si512(_mm512_maskz_loadu_epi8(half, r2 + 4 + c), flip), xv);
            a3 = _mm512_dpbusd_epi32(a3, _mm512_xor_si512(_mm512_maskz_loadu_epi8(half, r3 + 4 + c), flip), xv);
        }
        const unsigned char *rr[4] = {r0, r1, r2, r3};
        const __m512i as[4] = {a0, a1, a2, a3};
        for (int k = 0; k < 4; k++) {
            float v = ((float)(_mm512_reduce_add_epi32(as[k]) - off) * x->d) * rk_load_f32(rr[k]);
            y[r + k] = acc ? y[r + k] + v : v;
        }
    }
    for (; r < rows; r++) {
        const unsigned char *r0 = base + r * rb;
        __m512i a0 = _mm512_setzero_si512();
        long c = 0;
        for (; c < n64; c += 64)
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_loadu_si512((const void *)(r0 + 4 + c)), flip),
                                     _mm512_load_si512((const void *)(xq + c)));
        if (c < n)
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_maskz_loadu_epi8(half, r0 + 4 + c), flip),
                                     _mm512_load_si512((const void *)(xq + c)));
        float v = ((float)(_mm512_reduce_add_epi32(a0) - off) * x->d) * rk_load_f32(r0);
        y[r] = acc ? y[r] + v : v;
    }
}

/* y (+)= v for the 16 rows at o */
AVX512 static inline void put16(float *o, __m512 v, int acc) { _mm512_storeu_ps(o, acc ? _mm512_add_ps(_mm512_loadu_ps(o), v) : v); }

/* The 16 rows of group g into y (row row0 at y[0]), only those in [row0, end); added when acc. */
AVX512 static inline void put_group16(float *y, __m512 v, long g, long row0, long end, int acc) {
    if (16 * g >= row0 && 16 * g + 16 <= end) {
        float *o = y + (16 * g - row0);
        _mm512_storeu_ps(o, acc ? _mm512_add_ps(_mm512_loadu_ps(o), v) : v);
    } else {
        float t[16];
        _mm512_storeu_ps(t, v);
        rk_put_group(y, t, g, row0, end, acc);
    }
}

/* ---- q8ri: 16 rows × 4 columns per vpdpbusd, x broadcast 4 bytes at a time ------------------------ */

/* The 16 values of the group at G: acc_i = Σ_k Σ_{j<4} u[4k + j] · q[i, 4k + j] over the chunks k that hold
 * columns (rk_q8ri_chunks; four accumulators, summed at the end: integer sums, so the order does not matter),
 * then y_i = ((float)(acc_i − 64 · rowsum_i) · D) · s_i. With pf, two of each four lines RK_PREFETCH_AHEAD bytes on
 * are prefetched (internal.h). */
__attribute__((always_inline)) AVX512 static inline __m512 q8ri_group_pf(const unsigned char *G, const uint8_t *u,
                                                                          long chunks, __m512 d, const int pf) {
    const unsigned char *q = G + 128;
    const long c4 = chunks & ~3L;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    long k = 0;
    for (; k < c4; k += 4) {
        if (pf) {
            _mm_prefetch((const char *)(q + 64 * k + RK_PREFETCH_AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *)(q + 64 * k + RK_PREFETCH_AHEAD + 128), _MM_HINT_T0);
        }
        a0 = _mm512_dpbusd_epi32(a0, _mm512_set1_epi32(rk_load_i32(u + 4 * k)), _mm512_loadu_si512((const void *)(q + 64 * k)));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_set1_epi32(rk_load_i32(u + 4 * k + 4)), _mm512_loadu_si512((const void *)(q + 64 * k + 64)));
        a2 = _mm512_dpbusd_epi32(a2, _mm512_set1_epi32(rk_load_i32(u + 4 * k + 8)), _mm512_loadu_si512((const void *)(q + 64 * k + 128)));
        a3 = _mm512_dpbusd_epi32(a3, _mm512_set1_epi32(rk_load_i32(u + 4 * k + 12)), _mm512_loadu_si512((const void *)(q + 64 * k + 192)));
    }
    for (; k < chunks; k++)
        a0 = _mm512_dpbusd_epi32(a0, _mm512_set1_epi32(rk_load_i32(u + 4 * k)), _mm512_loadu_si512((const void *)(q + 64 * k)));
    const __m512i sum = _mm512_sub_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                         _mm512_slli_epi32(_mm512_loadu_si512((const void *)(G + 64)), 6));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sum), d), _mm512_loadu_ps((const float *)G));
}
__attribute__((always_inline)) AVX512 static inline __m512 q8ri_group(const unsigned char *G, const uint8_t *u,
                                                                       long chunks, __m512 d) {
    return q8ri_group_pf(G, u, chunks, d, 0);
}

/* Rows [row0, row0 + rows): a group cut by either end through put_group16, the whole groups between them in a
 * loop of their own (a matrix of few columns is mostly the work around each group), prefetching when they are
 * read from L3 (RK_PREFETCH_MIN_BYTES < their bytes ≤ RK_PREFETCH_MAX_BYTES). */
void AVX512 rk_q8ri_avx512(float *y, const void *w, const rk_xr *x, long row0, long rows, int acc) {
    if (rows <= 0) return;
    const long chunks = rk_q8ri_chunks(x->cols), gb = rk_q8ri_group_bytes(x->cols), end = row0 + rows, full = end / 16;
    const unsigned char *W = (const unsigned char *)w;
    const uint8_t *u = x->u;
    const __m512 d = _mm512_set1_ps(x->d);
    long g = row0 / 16;
    if (16 * g < row0 || g >= full) {   /* the first group starts before row0 or ends after `end` */
        put_group16(y, q8ri_group(W + g * gb, u, chunks, d), g, row0, end, acc);
        g++;
    }
    float *o = y + (16 * g - row0);
    const unsigned char *G = W + g * gb;
    const long bytes = (full - g) * gb;
    if (bytes > RK_PREFETCH_MIN_BYTES && bytes <= RK_PREFETCH_MAX_BYTES)
        for (; g < full; g++, o += 16, G += gb) put16(o, q8ri_group_pf(G, u, chunks, d, 1), acc);
    else
        for (; g < full; g++, o += 16, G += gb) put16(o, q8ri_group(G, u, chunks, d), acc);
    if (16 * g < end) put_group16(y, q8ri_group(G, u, chunks, d), g, row0, end, acc);
}

/* Up to 8 vectors against one q8ri matrix, `ng` groups at a time (RK_BATCH_GROUPS: 4 for up to 4 vectors, 3 for
 * 5, 2 for 6 to 8, the fastest on a Zen 5): each 64-byte chunk of the groups' weights is loaded once and multiplied into every
 * vector's 16 row sums of each group (ng · n independent vpdpbusd chains, each 4-byte broadcast of a vector used
 * ng times; a pass of one group, one weight load and n broadcasts per n vpdpbusd, ran 8 vectors at 92 of the
 * 128 multiply-adds per cycle of a Zen 5, two groups at 120 or more), then each vector's sums are converted
 * exactly as rk_q8ri_avx512 converts them: the same bits as stepping one by one. y[j] (n × rows, stride `ldy`)
 * for the vectors x[j]. Inlined for each n and number of groups, so the accumulators stay in registers. */
__attribute__((always_inline)) AVX512 static inline void q8ri_batch_groups(float *y, long ldy, const unsigned char *G,
                                                                             long gb, const uint8_t *const *u,
                                                                             const rk_xr *x, const int n, const int ng,
                                                                             long chunks, long g, long row0, long end) {
    __m512i a[4][8];
    for (int h = 0; h < ng; h++)
        for (int j = 0; j < n; j++) a[h][j] = _mm512_setzero_si512();
    for (long k = 0; k < chunks; k++) {
        __m512i wv[4];
        for (int h = 0; h < ng; h++) wv[h] = _mm512_loadu_si512((const void *)(G + h * gb + 128 + 64 * k));
        for (int j = 0; j < n; j++) {
            const __m512i xb = _mm512_set1_epi32(rk_load_i32(u[j] + 4 * k));
            for (int h = 0; h < ng; h++) a[h][j] = _mm512_dpbusd_epi32(a[h][j], xb, wv[h]);
        }
    }
    for (int h = 0; h < ng; h++) {
        const __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(G + h * gb + 64)), 6);
        const __m512 sc = _mm512_loadu_ps((const float *)(G + h * gb));
        for (int j = 0; j < n; j++) {
            const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a[h][j], corr)),
                                                         _mm512_set1_ps(x[j].d)), sc);
            put_group16(y + j * ldy, v, g + h, row0, end, 0);
        }
    }
}

#define RK_BATCH_GROUPS(n) ((n) <= 4 ? 4 : (n) == 5 ? 3 : 2)

__attribute__((always_inline)) AVX512 static inline void q8ri_batch(float *y, long ldy, const void *w, const rk_xr *x,
                                                                      const int n, long row0, long rows) {
    const long chunks = rk_q8ri_chunks(x[0].cols), gb = rk_q8ri_group_bytes(x[0].cols), end = row0 + rows;
    const int ng = RK_BATCH_GROUPS(n);
    const unsigned char *W = (const unsigned char *)w;
    const uint8_t *u[8];
    for (int j = 0; j < n; j++) u[j] = x[j].u;
    long g = row0 / 16;
    const long last = (end + 15) / 16;   /* one past the last group */
    for (; g + ng <= last; g += ng) q8ri_batch_groups(y, ldy, W + g * gb, gb, u, x, n, ng, chunks, g, row0, end);
    switch (last - g) {   /* fewer than ng groups left */
    case 3: q8ri_batch_groups(y, ldy, W + g * gb, gb, u, x, n, 3, chunks, g, row0, end); break;
    case 2: q8ri_batch_groups(y, ldy, W + g * gb, gb, u, x, n, 2, chunks, g, row0, end); break;
    case 1: q8ri_batch_groups(y, ldy, W + g * gb, gb, u, x, n, 1, chunks, g, row0, end); break;
    default: break;
    }
}

void AVX512 rk_q8ri_batch_avx512(float *y, long ldy, const void *w, const rk_xr *x, int n, long row0, long rows) {
    switch (n) {
    case 1: q8ri_batch(y, ldy, w, x, 1, row0, rows); break;
    case 2: q8ri_batch(y, ldy, w, x, 2, row0, rows); break;
    case 3: q8ri_batch(y, ldy, w, x, 3, row0, rows); break;
    case 4: q8ri_batch(y, ldy, w, x, 4, row0, rows); break;
    case 5: q8ri_batch(y, ldy, w, x, 5, row0, rows); break;
    case 6: q8ri_batch(y, ldy, w, x, 6, row0, rows); break;
    case 7: q8ri_batch(y, ldy, w, x, 7, row0, rows); break;
    default: q8ri_batch(y, ldy, w, x, 8, row0, rows); break;
    }
}

/* ---- q4i: a block of 16 rows per 4 vectors of nibbles, x broadcast 4 bytes at a time ------------- */

/* N groups at once (far apart: the groups of rk_quarter_rows), each block's broadcasts of x shared by all of them.
 * Group g, block b: the low nibbles (v & 15) and the high ones in place (v & 0xF0 = 16 · nibble) are the unsigned
 * operands of vpdpbusd against 4 bytes of xq broadcast, in two chains, the low one starting at n8_b;
 * dot = lo + (hi >> 4) exactly, then acc = fma(dot, s·d_b, acc) per block (rk_q4i_scalar's operations, the same
 * bits). Four groups per pass read 9 → 6.5 loads per group and block (the broadcasts shared by four instead of
 * two), which made the kernel 3–15 % faster from L2 than pairs (Zen 5). One group: q4i_group. The groups cut by
 * row0 or the end go through put_group16, the whole groups between them in a loop of their own, as for q8ri. */
__attribute__((always_inline)) AVX512 static inline void q4i_groups(const unsigned char *const *G, int N, const rk_xq *x,
                                                                      __m512 *r) {
    const __m512i lo = _mm512_set1_epi8(0x0F), hi = _mm512_set1_epi8((char)0xF0);
    for (int k = 0; k < N; k++) r[k] = _mm512_setzero_ps();
    for (long b = 0; b < x->nb; b++) {
        const int8_t *xq = x->q + 32 * b;
        const __m512i n8 = _mm512_set1_epi32(x->n8[b]);
        __m512i l[4], h[4];
        for (int k = 0; k < N; k++) { l[k] = n8; h[k] = _mm512_setzero_si512(); }
        for (int j = 0; j < 4; j++) {
            const __m512i xl = _mm512_set1_epi32(rk_load_i32(xq + 8 * j)), xh = _mm512_set1_epi32(rk_load_i32(xq + 8 * j + 4));
            for (int k = 0; k < N; k++) {
                const __m512i v = _mm512_loadu_si512((const void *)(G[k] + 320 * b + 64 + 64 * j));
                l[k] = _mm512_dpbusd_epi32(l[k], _mm512_and_si512(v, lo), xl);
                h[k] = _mm512_dpbusd_epi32(h[k], _mm512_and_si512(v, hi), xh);
            }
        }
        const __m512 d = _mm512_set1_ps(x->d[b]);
        for (int k = 0; k < N; k++)
            r[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(l[k], _mm512_srai_epi32(h[k], 4))),
                                   _mm512_mul_ps(_mm512_loadu_ps((const float *)(G[k] + 320 * b)), d), r[k]);
    }
}

__attribute__((always_inline)) AVX512 static inline __m512 q4i_group(const unsigned char *G, const rk_xq *x) {
    __m512 r;
    q4i_groups(&G, 1, x, &r);
    return r;
}

void AVX512 rk_q4i_avx512(float *y, const void *w, const rk_xq *x, long row0, long rows, int acc) {
    if (rows <= 0) return;
    const long gb = 320 * x->nb, end = row0 + rows, full = end / 16;
    const unsigned char *W = (const unsigned char *)w;
    long g = row0 / 16;
    if (16 * g < row0 || g >= full) {   /* the first group starts before row0 or ends after `end` */
        put_group16(y, q4i_group(W + g * gb, x), g, row0, end, acc);
        g++;
    }
    /* The whole groups four at a time, far apart (rk_quarter_rows over groups; adjacent groups, 2.5 KiB apart at 256 columns,
     * are read 19–24 % slower from L2 on Zen 5 than one group at a time), then the rest one by one; all one by one
     * past RK_SPREAD_MAX_BYTES. */
    float *o = y + (16 * g - row0);
    const unsigned char *G = W + g * gb;
    const long q = (full - g) * gb <= RK_SPREAD_MAX_BYTES ? (full - g) / 4 : 0;
    for (long i = 0; i < q; i++) {
        long k[4];
        rk_quarter_rows(i, q, k);
        const unsigned char *const P[4] = {G + k[0] * gb, G + k[1] * gb, G + k[2] * gb, G + k[3] * gb};
        __m512 r[4];
        q4i_groups(P, 4, x, r);
        for (int j = 0; j < 4; j++) put16(o + 16 * k[j], r[j], acc);
    }
    g += 4 * q;
    o += 64 * q;
    G += 4 * q * gb;
    for (; g < full; g++, o += 16, G += gb) put16(o, q4i_group(G, x), acc);
    if (16 * g < end) put_group16(y, q4i_group(G, x), g, row0, end, acc);
}

/* ---- q4: four blocks (64 bytes of nibbles = 128 weights) per pair of vpdpbusd ----------------------- */

void AVX512 rk_q4_avx512(float *y, const void *w, const rk_xq *x, long rows, int acc) {
    const long nb = x->nb, rb = 20 * nb;
    const __m512i low = _mm512_set1_epi8(15);
    const __m512i quad = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const unsigned char *base = (const unsigned char *)w;
    for (long r = 0; r < rows; r++) {
        const unsigned char *row = base + r * rb;
        const float *s = (const float *)row;
        const unsigned char *q = row + 4 * nb;
        __m512 a = _mm512_setzero_ps(), corr = _mm512_setzero_ps();
        for (long g = 0; g < nb; g += 16) {
            const long n = nb - g < 16 ? nb - g : 16;
            const __m512 sv = _mm512_maskz_loadu_ps(lanes16(n), s + g);
            const __m512 cs = _mm512_mul_ps(sv, _mm512_load_ps(x->d + g));
            corr = _mm512_fmadd_ps(sv, _mm512_load_ps(x->t8 + g), corr);
            __m512i idx = quad;
            for (long k = 0; k < n; k += 4) {
                const long b = g + k, left = n - k;
                __m512i v = left >= 4 ? _mm512_loadu_si512((const void *)(q + 16 * b))
                                      : _mm512_maskz_loadu_epi8((__mmask64)((1ull << (16 * left)) - 1), q + 16 * b);
                __m512i lo = _mm512_and_si512(v, low);
                __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                const int8_t *xp = x->qp + 32 * b;   /* 128 bytes per group of 4 blocks */
                __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512((const void *)xp));
                dot = _mm512_dpbusd_epi32(dot, hi, _mm512_load_si512((const void *)(xp + 64)));
                a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx, cs), a);
                idx = _mm512_add_epi32(idx, _mm512_set1_epi32(4));
            }
        }
        float v = _mm512_reduce_add_ps(a) - _mm512_reduce_add_ps(corr);
        y[r] = acc ? y[r] + v : v;
    }
}

#endif
