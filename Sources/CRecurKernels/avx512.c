/* AVX-512 (F, BW, VL, DQ) + VNNI integer kernels (x86-64), called only when cpuid reports all of them (the float
 * kernels: avx512_float.c). Layouts and contracts: recur_kernels.h and internal.h.
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
