/* AVX2 + FMA + F16C kernels (x86-64). Compiled for those extensions function by function, called only
 * when cpuid reports them. Layouts and contracts: recur_kernels.h and internal.h. */
#include "avx2.h"
#ifdef RK_X86

/* The four horizontal sums of a0..a3, as one vector [Σa0, Σa1, Σa2, Σa3]. */
AVX2 static inline __m128 sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

AVX2 static inline float sum1(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline void store4(float *y, __m128 s, int acc) {
    if (acc) s = _mm_add_ps(s, _mm_loadu_ps(y));
    _mm_storeu_ps(y, s);
}

/* y[r[k]] (+)= s[k], k < 4: the four rows of a pass (rk_quarter_rows) */
AVX2 static inline void store_rows4(float *y, __m128 s, const long r[4], int acc) {
    float v[4];
    _mm_storeu_ps(v, s);
    for (int k = 0; k < 4; k++) y[r[k]] = acc ? y[r[k]] + v[k] : v[k];
}

/* ---- f32: four rows at a time, two accumulators per row. The column tail: one 4-wide step, then at
 *      most 3 scalar columns (masked loads measured slower on the reference machine). The rows of a pass
 *      come in the order of rk_quarter_rows (four streams far apart); the rows that take the four-row path
 *      are the first 4q, each with the arithmetic of that path, so the same bits in any order. ---------- */

/* Σ_c w[c]·x[c] for c in [c0, cols), c0 a multiple of 8, cols − c0 < 8. */
AVX2 static inline __m256 tail_f32(__m256 a, const float *w, const float *x, long c0, long cols) {
    long c = c0;
    if (cols - c >= 4) {
        __m128 p = _mm_mul_ps(_mm_loadu_ps(w + c), _mm_loadu_ps(x + c));
        a = _mm256_add_ps(a, _mm256_insertf128_ps(_mm256_setzero_ps(), p, 0));
        c += 4;
    }
    if (c < cols) {
        float s = 0;
        for (; c < cols; c++) s = __builtin_fmaf(w[c], x[c], s);   /* fused, as compilers contract s += w·x */
        a = _mm256_add_ps(a, _mm256_setr_ps(s, 0, 0, 0, 0, 0, 0, 0));
    }
    return a;
}

void AVX2 rk_f32_avx2(float *y, const float *w, const float *x, long rows, long cols, int acc) {
    const long c8 = cols & ~7L, q = rows / 4;
    for (long i = 0; i < q; i++) {
        long r[4];
        rk_quarter_rows(i, q, r);
        const float *w0 = w + r[0] * cols, *w1 = w + r[1] * cols, *w2 = w + r[2] * cols, *w3 = w + r[3] * cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        long c = 0;
        for (; c + 16 <= c8; c += 16) {
            __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c), x0, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + c), x0, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + c), x0, a3);
            b0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c + 8), x1, b0);
            b1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c + 8), x1, b1);
            b2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + c + 8), x1, b2);
            b3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + c + 8), x1, b3);
        }
        if (c < c8) {
            __m256 x0 = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c), x0, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + c), x0, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + c), x0, a3);
            c += 8;
        }
        if (c < cols) {
            b0 = tail_f32(b0, w0, x, c, cols);
            b1 = tail_f32(b1, w1, x, c, cols);
            b2 = tail_f32(b2, w2, x, c, cols);
            b3 = tail_f32(b3, w3, x, c, cols);
        }
        store_rows4(y, sum4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2),
                            _mm256_add_ps(a3, b3)), r, acc);
    }
    for (long r = 4 * q; r < rows; r++) {
        const float *w0 = w + r * cols;
        __m256 a0 = _mm256_setzero_ps();
        long c = 0;
        for (; c < c8; c += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), _mm256_loadu_ps(x + c), a0);
        a0 = tail_f32(a0, w0, x, c, cols);
        float s = sum1(a0);
        y[r] = acc ? y[r] + s : s;
    }
}

/* ---- f32 of few columns, from a copy in column blocks (rk_f32_columns_pack) ------------------------- */

/* y (+)= W·x, W of few columns (at most 64: rk_f32_columns_max) in column blocks (per block of 16 rows, column
 * c's 16 values at p + 16·(cols·b + c)), a block at a time in two vectors of 8 rows that share each broadcast
 * of x, lane i for row r. Rows r < 4·(rows / 4) take
 * rk_f32_avx2's four-row arithmetic, written across lanes instead of within them: for each j < 8,
 *     a_j = fma chain over the columns 16k + j (k ascending; then c8 − 8 + j if c8 = cols & ~7 is an odd
 *           multiple of 8),  b_j = fma chain over 16k + 8 + j,
 *     then the tail: b_j += w[c8 + j]·x[c8 + j] (one product, j < 4, when ≥ 4 columns remain) and b_0 += s,
 *     s = fma chain over the last cols mod 4 columns from +0 (tail_f32's scalar loop),
 *     v_j = a_j + b_j,  y = ((v_0 + v_1) + (v_2 + v_3)) + ((v_4 + v_5) + (v_6 + v_7))   (sum4's hadds)
 * — the same operations on the same operands, so the same bits. The last rows mod 4 rows, which rk_f32_avx2
 * sums in one chain, it computes itself from w. */

/* v_j = a_j + b_j for one j, rows 0..7 of the block at q in *lo and rows 8..15 in *hi (c16, odd8, quad and
 * rest as in rk_f32_columns_avx2 below). */
__attribute__((always_inline)) AVX2 static inline void columns_lane(__m256 *lo, __m256 *hi, const float *q, const float *x,
                                                                     long cols, long c16, int odd8, int quad, long rest,
                                                                     const int j) {
#define RK_FMA2(c, a0, a1) do { const __m256 xb = _mm256_set1_ps(x[c]); \
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 16 * (c)), xb, a0); \
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 16 * (c) + 8), xb, a1); } while (0)
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    for (long c = 0; c < c16; c += 16) {
        RK_FMA2(c + j, a0, a1);
        RK_FMA2(c + 8 + j, b0, b1);
    }
    if (odd8) RK_FMA2(c16 + j, a0, a1);
    if (j < 4 && quad) {
        const long c = (cols & ~7L) + j;
        const __m256 xb = _mm256_set1_ps(x[c]);
        __m256 t0 = _mm256_mul_ps(_mm256_loadu_ps(q + 16 * c), xb), t1 = _mm256_mul_ps(_mm256_loadu_ps(q + 16 * c + 8), xb);
        __asm__("" : "+x"(t0), "+x"(t1));   /* a product then a sum, as tail_f32's: never contracted into one fma */
        b0 = _mm256_add_ps(b0, t0);
        b1 = _mm256_add_ps(b1, t1);
    }
    if (j == 0 && rest < cols) {
        __m256 t0 = _mm256_setzero_ps(), t1 = t0;
        for (long c = rest; c < cols; c++) RK_FMA2(c, t0, t1);
        b0 = _mm256_add_ps(b0, t0);
        b1 = _mm256_add_ps(b1, t1);
    }
#undef RK_FMA2
    *lo = _mm256_add_ps(a0, b0);
    *hi = _mm256_add_ps(a1, b1);
}

/* y[r..] (+)= s for the first n (≤ 8) rows, n > 0 */
AVX2 static inline void store_rows(float *y, __m256 s, long n, int acc) {
    const __m256i m = first_lanes(n);
    if (acc) s = _mm256_add_ps(_mm256_maskload_ps(y, m), s);
    _mm256_maskstore_ps(y, m, s);
}

void AVX2 rk_f32_columns_avx2(float *y, const float *p, const float *w, const float *x, long rows, long cols, int acc) {
    const long body = rows & ~3L, c8 = cols & ~7L, c16 = cols & ~15L;
    const int odd8 = c8 != c16, quad = cols - c8 >= 4;
    const long rest = c8 + 4 * quad;   /* the scalar loop's columns: [rest, cols) */
    for (long r = 0; r < body; r += 16, p += 16 * cols) {
        __m256 l[8], h[8];
#define RK_LANE(j) columns_lane(&l[j], &h[j], p, x, cols, c16, odd8, quad, rest, j)
        RK_LANE(0); RK_LANE(1); RK_LANE(2); RK_LANE(3);
        const __m256 lo03 = _mm256_add_ps(_mm256_add_ps(l[0], l[1]), _mm256_add_ps(l[2], l[3]));
        const __m256 hi03 = _mm256_add_ps(_mm256_add_ps(h[0], h[1]), _mm256_add_ps(h[2], h[3]));
        RK_LANE(4); RK_LANE(5); RK_LANE(6); RK_LANE(7);
#undef RK_LANE
        store_rows(y + r, _mm256_add_ps(lo03, _mm256_add_ps(_mm256_add_ps(l[4], l[5]), _mm256_add_ps(l[6], l[7]))),
                   body - r, acc);
        if (body - r > 8)
            store_rows(y + r + 8, _mm256_add_ps(hi03, _mm256_add_ps(_mm256_add_ps(h[4], h[5]), _mm256_add_ps(h[6], h[7]))),
                       body - r - 8, acc);
    }
    if (body < rows) rk_f32_avx2(y + body, w + body * cols, x, rows - body, cols, acc);
}

/* ---- f16: the same shape (the rows of rk_quarter_rows), halves widened by vcvtph2ps ----------------- */

AVX2 static inline __m256 load_h8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

AVX2 static inline __m256 load_h_tail(const uint16_t *p, long n) {
    uint16_t t[8] = {0};
    memcpy(t, p, (size_t)n * 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)t));
}

void AVX2 rk_f16_avx2(float *y, const uint16_t *w, const float *x, long rows, long cols, int acc) {
    const long c8 = cols & ~7L, rem = cols - c8;
    const __m256i tail = first_lanes(rem);
    const long q = rows / 4;
    for (long i = 0; i < q; i++) {
        long r[4];
        rk_quarter_rows(i, q, r);
        const uint16_t *w0 = w + r[0] * cols, *w1 = w + r[1] * cols, *w2 = w + r[2] * cols, *w3 = w + r[3] * cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        long c = 0;
        for (; c < c8; c += 8) {
            __m256 x0 = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(load_h8(w0 + c), x0, a0);
            a1 = _mm256_fmadd_ps(load_h8(w1 + c), x0, a1);
            a2 = _mm256_fmadd_ps(load_h8(w2 + c), x0, a2);
            a3 = _mm256_fmadd_ps(load_h8(w3 + c), x0, a3);
        }
        if (rem) {
            __m256 x0 = _mm256_maskload_ps(x + c, tail);
            a0 = _mm256_fmadd_ps(load_h_tail(w0 + c, rem), x0, a0);
            a1 = _mm256_fmadd_ps(load_h_tail(w1 + c, rem), x0, a1);
            a2 = _mm256_fmadd_ps(load_h_tail(w2 + c, rem), x0, a2);
            a3 = _mm256_fmadd_ps(load_h_tail(w3 + c, rem), x0, a3);
        }
        store_rows4(y, sum4(a0, a1, a2, a3), r, acc);
    }
    for (long r = 4 * q; r < rows; r++) {
        const uint16_t *w0 = w + r * cols;
        __m256 a0 = _mm256_setzero_ps();
        long c = 0;
        for (; c < c8; c += 8) a0 = _mm256_fmadd_ps(load_h8(w0 + c), _mm256_loadu_ps(x + c), a0);
        if (rem) a0 = _mm256_fmadd_ps(load_h_tail(w0 + c, rem), _mm256_maskload_ps(x + c, tail), a0);
        float s = sum1(a0);
        y[r] = acc ? y[r] + s : s;
    }
}

/* ---- q8: Σ q·xq per block by vpmaddubsw(|xq|, sign(q, xq)) + vpmaddwd; |q|, |xq| ≤ 127 keep the int16
 *      pair sums below 32767. |xq| is computed once per block and shared by four rows (measured 3–6%
 *      faster than vpmaddubsw(|q|, sign(xq, q)), which needs an abs per row). ----------------------- */

AVX2 static inline __m256i dot_q8(__m256i w, __m256i xabs, __m256i x, __m256i ones) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(xabs, _mm256_sign_epi8(w, x)), ones);
}

void AVX2 rk_q8_avx2(float *y, const void *w, const rk_xq *x, long rows, int acc) {
    const long nb = x->nb, rb = 36 * nb;
    const __m256i ones = _mm256_set1_epi16(1);
    const unsigned char *base = (const unsigned char *)w;
    long r = 0;
    for (; r + 4 <= rows; r += 4) {
        const unsigned char *r0 = base + r * rb, *r1 = r0 + rb, *r2 = r1 + rb, *r3 = r2 + rb;
        const float *s0 = (const float *)r0, *s1 = (const float *)r1, *s2 = (const float *)r2, *s3 = (const float *)r3;
        const unsigned char *q0 = r0 + 4 * nb, *q1 = r1 + 4 * nb, *q2 = r2 + 4 * nb, *q3 = r3 + 4 * nb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (long b = 0; b < nb; b++) {
            const __m256i xv = _mm256_load_si256((const __m256i *)(x->q + 32 * b));
            const __m256i xa = _mm256_abs_epi8(xv);
            const __m256 d = _mm256_broadcast_ss(x->d + b);
            __m256i p0 = dot_q8(_mm256_loadu_si256((const __m256i *)(q0 + 32 * b)), xa, xv, ones);
            __m256i p1 = dot_q8(_mm256_loadu_si256((const __m256i *)(q1 + 32 * b)), xa, xv, ones);
            __m256i p2 = dot_q8(_mm256_loadu_si256((const __m256i *)(q2 + 32 * b)), xa, xv, ones);
            __m256i p3 = dot_q8(_mm256_loadu_si256((const __m256i *)(q3 + 32 * b)), xa, xv, ones);
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_mul_ps(_mm256_broadcast_ss(s0 + b), d), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_mul_ps(_mm256_broadcast_ss(s1 + b), d), a1);
            a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p2), _mm256_mul_ps(_mm256_broadcast_ss(s2 + b), d), a2);
            a3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p3), _mm256_mul_ps(_mm256_broadcast_ss(s3 + b), d), a3);
        }
        store4(y + r, sum4(a0, a1, a2, a3), acc);
    }
    for (; r < rows; r++) {
        const unsigned char *r0 = base + r * rb;
        const float *s0 = (const float *)r0;
        const unsigned char *q0 = r0 + 4 * nb;
        __m256 a0 = _mm256_setzero_ps();
        for (long b = 0; b < nb; b++) {
            const __m256i xv = _mm256_load_si256((const __m256i *)(x->q + 32 * b));
            __m256i p0 = dot_q8(_mm256_loadu_si256((const __m256i *)(q0 + 32 * b)), _mm256_abs_epi8(xv), xv, ones);
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0),
                                 _mm256_mul_ps(_mm256_broadcast_ss(s0 + b), _mm256_broadcast_ss(x->d + b)), a0);
        }
        float s = sum1(a0);
        y[r] = acc ? y[r] + s : s;
    }
}

/* ---- q4: nibbles are unsigned, so vpmaddubsw(nibble, xq) directly; the "− 8" is subtracted once per row
 *      as Σ_b s_b · 8·d_b·Σxq_b (x->t8). Two blocks per 32-byte load of nibbles: low nibbles are elements
 *      0..15 of both blocks, high nibbles 16..31, matched by the permuted x (qp); low and high products add
 *      in int16 (≤ 2·2·15·127). Eight blocks' int32 lanes are reduced by vphaddd before one conversion
 *      to f32 (measured 25–30% faster than one conversion per block). ------------------------------------ */

AVX2 static inline __m256i nibbles(const unsigned char *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(15));
}

/* Σ_b s[b] · t[b] over nb blocks. */
AVX2 static inline float scale_dot(const float *s, const float *t, long nb) {
    __m256 a = _mm256_setzero_ps();
    long b = 0;
    for (; b + 8 <= nb; b += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(s + b), _mm256_load_ps(t + b), a);
    if (b < nb) a = _mm256_fmadd_ps(_mm256_maskload_ps(s + b, first_lanes(nb - b)), _mm256_load_ps(t + b), a);
    return sum1(a);
}

void AVX2 rk_q4_avx2(float *y, const void *w, const rk_xq *x, long rows, int acc) {
    const long nb = x->nb, rb = 20 * nb, n8 = nb & ~7L;
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(15);
    const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const unsigned char *base = (const unsigned char *)w;
    for (long r = 0; r < rows; r++) {
        const unsigned char *row = base + r * rb;
        const float *s = (const float *)row;
        const unsigned char *q = row + 4 * nb;
        __m256 a = _mm256_setzero_ps();
        long b = 0;
        for (; b < n8; b += 8) {
            __m256i p[4];
            for (int k = 0; k < 4; k++) {
                long bb = b + 2 * k;
                __m256i v = _mm256_loadu_si256((const __m256i *)(q + 16 * bb));
                const int8_t *xp = x->qp + (bb / 4) * 128 + (bb % 4) * 16;
                __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_load_si256((const __m256i *)xp)),
                                               _mm256_maddubs_epi16(hi, _mm256_load_si256((const __m256i *)(xp + 64))));
                p[k] = _mm256_madd_epi16(s16, ones);   /* lanes 0-3 block bb, 4-7 block bb+1 */
            }
            /* lane i<4: block b+2i; lane 4+i: block b+2i+1 */
            __m256i v = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
            __m256 cs = _mm256_mul_ps(_mm256_loadu_ps(s + b), _mm256_load_ps(x->d + b));
            cs = _mm256_permutevar8x32_ps(cs, order);
            a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), cs, a);
        }
        float t = sum1(a);
        for (; b < nb; b++) {
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(nibbles(q + 16 * b), _mm256_load_si256((const __m256i *)(x->q + 32 * b))), ones);
            t += sum1(_mm256_cvtepi32_ps(p)) * s[b] * x->d[b];
        }
        t -= scale_dot(s, x->t8, nb);
        y[r] = acc ? y[r] + t : t;
    }
}

/* ---- q8r: one scale per row and one for x, so Σ q·xq accumulates in int32 over the whole row and is
 *      converted once. With |xq| ≤ 64 the vpmaddubsw pair sums of two blocks add in int16 before one
 *      vpmaddwd: three multiplies per 64 weights instead of four (vector multiplies are what limits
 *      int8 products on AVX2 cores without VNNI). ------------------------------------------------------ */

AVX2 static inline __m256i pairs_q8r(const int8_t *q, __m256i xa0, __m256i xv0, __m256i xa1, __m256i xv1) {
    __m256i w0 = _mm256_loadu_si256((const __m256i *)q), w1 = _mm256_loadu_si256((const __m256i *)(q + 32));
    return _mm256_add_epi16(_mm256_maddubs_epi16(xa0, _mm256_sign_epi8(w0, xv0)),
                            _mm256_maddubs_epi16(xa1, _mm256_sign_epi8(w1, xv1)));
}

AVX2 static inline __m256i one_q8r(const int8_t *q, __m256i xa, __m256i xv) {
    return _mm256_maddubs_epi16(xa, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)q), xv));
}

AVX2 static inline __m128i sum4_epi32(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
    __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

void AVX2 rk_q8r_avx2(float *y, const void *w, const rk_xr *x, long rows, int acc) {
    const long n = (x->cols + 31) & ~31L, n64 = n & ~63L, rb = 4 + n;
    const __m256i ones = _mm256_set1_epi16(1);
    const int8_t *xq = x->q;
    const unsigned char *base = (const unsigned char *)w;
    long r = 0;
    for (; r + 4 <= rows; r += 4) {
        const unsigned char *r0 = base + r * rb, *r1 = r0 + rb, *r2 = r1 + rb, *r3 = r2 + rb;
        const int8_t *q0 = (const int8_t *)(r0 + 4), *q1 = (const int8_t *)(r1 + 4);
        const int8_t *q2 = (const int8_t *)(r2 + 4), *q3 = (const int8_t *)(r3 + 4);
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        long c = 0;
        for (; c < n64; c += 64) {
            const __m256i xv0 = _mm256_load_si256((const __m256i *)(xq + c)), xa0 = _mm256_abs_epi8(xv0);
            const __m256i xv1 = _mm256_load_si256((const __m256i *)(xq + c + 32)), xa1 = _mm256_abs_epi8(xv1);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(pairs_q8r(q0 + c, xa0, xv0, xa1, xv1), ones));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(pairs_q8r(q1 + c, xa0, xv0, xa1, xv1), ones));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(pairs_q8r(q2 + c, xa0, xv0, xa1, xv1), ones));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(pairs_q8r(q3 + c, xa0, xv0, xa1, xv1), ones));
        }
        if (c < n) {   /* one block of 32 left */
            const __m256i xv = _mm256_load_si256((const __m256i *)(xq + c)), xa = _mm256_abs_epi8(xv);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(one_q8r(q0 + c, xa, xv), ones));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(one_q8r(q1 + c, xa, xv), ones));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(one_q8r(q2 + c, xa, xv), ones));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(one_q8r(q3 + c, xa, xv), ones));
        }
        __m128 dot = _mm_mul_ps(_mm_cvtepi32_ps(sum4_epi32(a0, a1, a2, a3)), _mm_set1_ps(x->d));
        __m128 sc = _mm_setr_ps(rk_load_f32(r0), rk_load_f32(r1), rk_load_f32(r2), rk_load_f32(r3));
        store4(y + r, _mm_mul_ps(dot, sc), acc);
    }
    for (; r < rows; r++) {
        const unsigned char *r0 = base + r * rb;
        const int8_t *q0 = (const int8_t *)(r0 + 4);
        __m256i a0 = _mm256_setzero_si256();
        long c = 0;
        for (; c < n64; c += 64) {
            const __m256i xv0 = _mm256_load_si256((const __m256i *)(xq + c)), xa0 = _mm256_abs_epi8(xv0);
            const __m256i xv1 = _mm256_load_si256((const __m256i *)(xq + c + 32)), xa1 = _mm256_abs_epi8(xv1);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(pairs_q8r(q0 + c, xa0, xv0, xa1, xv1), ones));
        }
        if (c < n) {
            const __m256i xv = _mm256_load_si256((const __m256i *)(xq + c)), xa = _mm256_abs_epi8(xv);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(one_q8r(q0 + c, xa, xv), ones));
        }
        float s = ((float)sum1_epi32(a0) * x->d) * rk_load_f32(r0);
        y[r] = acc ? y[r] + s : s;
    }
}

/* ---- q8ri: 8 rows × 4 columns per 32 bytes, x broadcast 4 bytes at a time --------------------------- */

/* The 16 values of the group at G, rows 0–7 and 8–15 in two halves: vpmaddubsw(u, q) adds u·q over column pairs
 * (|·| ≤ 2·128·127, within int16), vpmaddwd with ones the two pairs of each row into its int32 lane, over the
 * chunks that hold columns (rk_q8ri_chunks); then as AVX-512. */
__attribute__((always_inline)) AVX2 static inline void q8ri_group(__m256 *vlo, __m256 *vhi, const unsigned char *G,
                                                                    const uint8_t *u, long chunks, __m256 d) {
    const __m256i ones = _mm256_set1_epi16(1);
    const unsigned char *q = G + 128;
    const long c2 = chunks & ~1L;
    __m256i lo0 = _mm256_setzero_si256(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
    long k = 0;
    for (; k < c2; k += 2) {
        const __m256i x0 = _mm256_set1_epi32(rk_load_i32(u + 4 * k)), x1 = _mm256_set1_epi32(rk_load_i32(u + 4 * k + 4));
        const unsigned char *c = q + 64 * k;
        lo0 = _mm256_add_epi32(lo0, _mm256_madd_epi16(_mm256_maddubs_epi16(x0, _mm256_loadu_si256((const __m256i *)c)), ones));
        hi0 = _mm256_add_epi32(hi0, _mm256_madd_epi16(_mm256_maddubs_epi16(x0, _mm256_loadu_si256((const __m256i *)(c + 32))), ones));
        lo1 = _mm256_add_epi32(lo1, _mm256_madd_epi16(_mm256_maddubs_epi16(x1, _mm256_loadu_si256((const __m256i *)(c + 64))), ones));
        hi1 = _mm256_add_epi32(hi1, _mm256_madd_epi16(_mm256_maddubs_epi16(x1, _mm256_loadu_si256((const __m256i *)(c + 96))), ones));
    }
    if (k < chunks) {
        const __m256i x0 = _mm256_set1_epi32(rk_load_i32(u + 4 * k));
        const unsigned char *c = q + 64 * k;
        lo0 = _mm256_add_epi32(lo0, _mm256_madd_epi16(_mm256_maddubs_epi16(x0, _mm256_loadu_si256((const __m256i *)c)), ones));
        hi0 = _mm256_add_epi32(hi0, _mm256_madd_epi16(_mm256_maddubs_epi16(x0, _mm256_loadu_si256((const __m256i *)(c + 32))), ones));
    }
    const __m256i slo = _mm256_sub_epi32(_mm256_add_epi32(lo0, lo1), _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(G + 64)), 6));
    const __m256i shi = _mm256_sub_epi32(_mm256_add_epi32(hi0, hi1), _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(G + 96)), 6));
    *vlo = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(slo), d), _mm256_loadu_ps((const float *)G));
    *vhi = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(shi), d), _mm256_loadu_ps((const float *)(G + 32)));
}

/* Group g's values into the rows of [row0, end) it holds. */
AVX2 static inline void put_part(float *y, __m256 vlo, __m256 vhi, long g, long row0, long end, int acc) {
    float t[16];
    _mm256_storeu_ps(t, vlo);
    _mm256_storeu_ps(t + 8, vhi);
    rk_put_group(y, t, g, row0, end, acc);
}

/* Rows [row0, row0 + rows): a group cut by either end through put_part, the whole groups between them in a
 * loop of their own (as rk_q8ri_avx512). */
void AVX2 rk_q8ri_avx2(float *y, const void *w, const rk_xr *x, long row0, long rows, int acc) {
    if (rows <= 0) return;
    const long chunks = rk_q8ri_chunks(x->cols), gb = rk_q8ri_group_bytes(x->cols), end = row0 + rows, full = end / 16;
    const unsigned char *W = (const unsigned char *)w;
    const uint8_t *u = x->u;
    const __m256 d = _mm256_set1_ps(x->d);
    __m256 vlo, vhi;
    long g = row0 / 16;
    if (16 * g < row0 || g >= full) {   /* the first group starts before row0 or ends after `end` */
        q8ri_group(&vlo, &vhi, W + g * gb, u, chunks, d);
        put_part(y, vlo, vhi, g, row0, end, acc);
        g++;
    }
    float *o = y + (16 * g - row0);
    const unsigned char *G = W + g * gb;
    for (; g < full; g++, o += 16, G += gb) {
        q8ri_group(&vlo, &vhi, G, u, chunks, d);
        if (acc) vlo = _mm256_add_ps(_mm256_loadu_ps(o), vlo), vhi = _mm256_add_ps(_mm256_loadu_ps(o + 8), vhi);
        _mm256_storeu_ps(o, vlo);
        _mm256_storeu_ps(o + 8, vhi);
    }
    if (16 * g < end) {
        q8ri_group(&vlo, &vhi, G, u, chunks, d);
        put_part(y, vlo, vhi, g, row0, end, acc);
    }
}

/* ---- q4i: the two halves of a group (rows 0–7, 8–15) per 32 bytes of nibbles ---------------------- */

/* vpmaddubsw(nibbles, xq) (|pair sum| ≤ 2·15·127, within int16) and vpmaddwd with ones give each row's
 * int32 sums of the low and the high nibbles' columns, added to n8_b; then rk_q4i_scalar's float operations. */
void AVX2 rk_q4i_avx2(float *y, const void *w, const rk_xq *x, long row0, long rows, int acc) {
    const long nb = x->nb, gb = 320 * nb, end = row0 + rows;
    const __m256i lo = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    for (long g = row0 / 16; 16 * g < end; g++) {
        const unsigned char *G = (const unsigned char *)w + g * gb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (long b = 0; b < nb; b++) {
            const unsigned char *B = G + 320 * b;
            const int8_t *xq = x->q + 32 * b;
            __m256i d0 = _mm256_set1_epi32(x->n8[b]), d1 = d0;   /* rows 0–7, 8–15 */
            for (int m = 0; m < 4; m++) {
                const __m256i xl = _mm256_set1_epi32(rk_load_i32(xq + 8 * m)), xh = _mm256_set1_epi32(rk_load_i32(xq + 8 * m + 4));
                const __m256i v0 = _mm256_loadu_si256((const __m256i *)(B + 64 + 64 * m));
                const __m256i v1 = _mm256_loadu_si256((const __m256i *)(B + 96 + 64 * m));
                const __m256i p0 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(v0, lo), xl), ones),
                                                    _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v0, 4), lo), xh), ones));
                const __m256i p1 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(v1, lo), xl), ones),
                                                    _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v1, 4), lo), xh), ones));
                d0 = _mm256_add_epi32(d0, p0);
                d1 = _mm256_add_epi32(d1, p1);
            }
            const __m256 db = _mm256_set1_ps(x->d[b]);
            const __m256 s0 = _mm256_loadu_ps((const float *)B), s1 = _mm256_loadu_ps((const float *)(B + 32));
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0), _mm256_mul_ps(s0, db), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1), _mm256_mul_ps(s1, db), a1);
        }
        float t[16];
        _mm256_storeu_ps(t, a0);
        _mm256_storeu_ps(t + 8, a1);
        rk_put_group(y, t, g, row0, end, acc);
    }
}

/* Up to 4 vectors against one q8ri matrix, each chunk of weights loaded once for all of them; per vector the
 * same integer sums and conversion as rk_q8ri_avx2 (the same bits). y[j] at y + j·ldy. Inlined per n. */
__attribute__((always_inline)) AVX2 static inline void q8ri_batch(float *y, long ldy, const void *w, const rk_xr *x,
                                                                    const int n, long row0, long rows) {
    const long chunks = rk_q8ri_chunks(x[0].cols), gb = rk_q8ri_group_bytes(x[0].cols), end = row0 + rows;
    const __m256i ones = _mm256_set1_epi16(1);
    for (long g = row0 / 16; 16 * g < end; g++) {
        const unsigned char *G = (const unsigned char *)w + g * gb;
        const unsigned char *q = G + 128;
        __m256i lo[4], hi[4];
        for (int j = 0; j < n; j++) lo[j] = hi[j] = _mm256_setzero_si256();
        for (long k = 0; k < chunks; k++) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(q + 64 * k));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(q + 64 * k + 32));
            for (int j = 0; j < n; j++) {
                const __m256i xb = _mm256_set1_epi32(rk_load_i32(x[j].u + 4 * k));
                lo[j] = _mm256_add_epi32(lo[j], _mm256_madd_epi16(_mm256_maddubs_epi16(xb, w0), ones));
                hi[j] = _mm256_add_epi32(hi[j], _mm256_madd_epi16(_mm256_maddubs_epi16(xb, w1), ones));
            }
        }
        const __m256i clo = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(G + 64)), 6);
        const __m256i chi = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(G + 96)), 6);
        for (int j = 0; j < n; j++) {
            const __m256 d = _mm256_set1_ps(x[j].d);
            float t[16];
            _mm256_storeu_ps(t, _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(lo[j], clo)), d),
                                              _mm256_loadu_ps((const float *)G)));
            _mm256_storeu_ps(t + 8, _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(hi[j], chi)), d),
                                                  _mm256_loadu_ps((const float *)(G + 32))));
            rk_put_group(y + j * ldy, t, g, row0, end, 0);
        }
    }
}

void AVX2 rk_q8ri_batch_avx2(float *y, long ldy, const void *w, const rk_xr *x, int n, long row0, long rows) {
    switch (n) {
    case 1: q8ri_batch(y, ldy, w, x, 1, row0, rows); break;
    case 2: q8ri_batch(y, ldy, w, x, 2, row0, rows); break;
    case 3: q8ri_batch(y, ldy, w, x, 3, row0, rows); break;
    default: q8ri_batch(y, ldy, w, x, 4, row0, rows); break;
    }
}

/* ---- several vectors, f32: two rows × four vectors per pass, each weight loaded once -------------- */

void AVX2 rk_mm_f32_avx2(float *y, const float *w, const float *x, long n, long rows, long cols) {
    const long c8 = cols & ~7L;
    for (long j0 = 0; j0 < n; j0 += 4) {
        const long nj = n - j0 < 4 ? n - j0 : 4;
        const float *xs[4];
        for (int k = 0; k < 4; k++) xs[k] = x + (j0 + (k < nj ? k : 0)) * cols;   /* extra lanes repeat x0 */
        long r = 0;
        for (; r < rows; r += 2) {
            const float *w0 = w + r * cols, *w1 = r + 1 < rows ? w0 + cols : w0;
            __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
            __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            long c = 0;
            for (; c < c8; c += 8) {
                __m256 v0 = _mm256_loadu_ps(w0 + c), v1 = _mm256_loadu_ps(w1 + c);
                __m256 x0 = _mm256_loadu_ps(xs[0] + c), x1 = _mm256_loadu_ps(xs[1] + c);
                __m256 x2 = _mm256_loadu_ps(xs[2] + c), x3 = _mm256_loadu_ps(xs[3] + c);
                a00 = _mm256_fmadd_ps(v0, x0, a00); a01 = _mm256_fmadd_ps(v0, x1, a01);
                a02 = _mm256_fmadd_ps(v0, x2, a02); a03 = _mm256_fmadd_ps(v0, x3, a03);
                a10 = _mm256_fmadd_ps(v1, x0, a10); a11 = _mm256_fmadd_ps(v1, x1, a11);
                a12 = _mm256_fmadd_ps(v1, x2, a12); a13 = _mm256_fmadd_ps(v1, x3, a13);
            }
            float s0[4], s1[4];
            _mm_storeu_ps(s0, sum4(a00, a01, a02, a03));
            _mm_storeu_ps(s1, sum4(a10, a11, a12, a13));
            for (; c < cols; c++)
                for (int k = 0; k < 4; k++) { s0[k] += w0[c] * xs[k][c]; s1[k] += w1[c] * xs[k][c]; }
            for (int k = 0; k < nj; k++) {
                y[(j0 + k) * rows + r] = s0[k];
                if (r + 1 < rows) y[(j0 + k) * rows + r + 1] = s1[k];
            }
        }
    }
}

#endif
