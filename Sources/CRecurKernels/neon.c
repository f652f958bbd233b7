/* AArch64 Advanced SIMD (NEON) kernels, the level RK_NEON. NEON is part of every AArch64 CPU; the int8
 * dot products use sdot (vdotq_s32, ARMv8.2 dotprod), compiled for it function by function and called
 * only when the CPU reports it (Linux: getauxval(AT_HWCAP) & HWCAP_ASIMDDP), else a widening multiply
 * (smull / smlal2 / sadalp) that every AArch64 CPU has. Layouts and contracts: recur_kernels.h and
 * internal.h.
 *
 * Bits against the scalar kernels (bench/kernels/neon_check.sh, both int8 paths, gcc and clang): q8, q4
 * and q8r give the same bits. Their integer sums are exact, and their float operations are the scalar
 * kernels' in the same order and written alike (q8/q4: s += s_b · (d_b · dot) per block, in block order;
 * q8r: (dot · D) · s_r), so that a compiler that fuses a multiply-add in one fuses it in the other.
 * The quantizers give the same bytes. f32 and f16 add in another order (within a small relative
 * tolerance); tanh and sigmoid (neon_elementwise.c) use the AVX2 kernels' exp polynomial (|error| ≲ 2e-7
 * absolute against libm; NaN stays NaN). */
#include "internal.h"
#ifdef __aarch64__
#include <arm_neon.h>
#include <math.h>
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

/* Functions that use sdot: compiled for dotprod unless the whole file already is. */
#if defined(__ARM_FEATURE_DOTPROD)
#define DOTPROD
#elif defined(__clang__)
#define DOTPROD __attribute__((target("dotprod")))
#else
#define DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

static int dotprod = -1;   /* races are benign: every thread computes the same value */

int rk_neon_dotprod(void) {
    if (dotprod < 0) {
#if defined(__linux__)
        dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
        int v = 0;
        size_t n = sizeof v;
        dotprod = sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &n, NULL, 0) == 0 && v;
#elif defined(__ARM_FEATURE_DOTPROD)
        dotprod = 1;
#else
        dotprod = 0;
#endif
    }
    return dotprod;
}

/* ---- f32: y[r] = Σ_c w[r,c]·x[c], four rows at a time (x loaded once for them), two accumulators of
 *      four lanes per row; the tail: one 4-wide step, then at most 3 scalar columns. ------------------ */

/* Σ_c w[c]·x[c] over [c, cols), cols − c < 8, added to the lanes of a. */
static inline float32x4_t tail_f32(float32x4_t a, const float *w, const float *x, long c, long cols) {
    if (cols - c >= 4) {
        a = vfmaq_f32(a, vld1q_f32(w + c), vld1q_f32(x + c));
        c += 4;
    }
    float s = 0;
    for (; c < cols; c++) s += w[c] * x[c];
    return vsetq_lane_f32(vgetq_lane_f32(a, 0) + s, a, 0);
}

void rk_f32_neon(float *y, const float *w, const float *x, long rows, long cols, int acc) {
    const long c8 = cols & ~7L;
    long r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (long c = 0; c < c8; c += 8) {
            const float32x4_t x0 = vld1q_f32(x + c), x1 = vld1q_f32(x + c + 4);
            a0 = vfmaq_f32(a0, vld1q_f32(w0 + c), x0); b0 = vfmaq_f32(b0, vld1q_f32(w0 + c + 4), x1);
            a1 = vfmaq_f32(a1, vld1q_f32(w1 + c), x0); b1 = vfmaq_f32(b1, vld1q_f32(w1 + c + 4), x1);
            a2 = vfmaq_f32(a2, vld1q_f32(w2 + c), x0); b2 = vfmaq_f32(b2, vld1q_f32(w2 + c + 4), x1);
            a3 = vfmaq_f32(a3, vld1q_f32(w3 + c), x0); b3 = vfmaq_f32(b3, vld1q_f32(w3 + c + 4), x1);
        }
        if (c8 < cols) {
            b0 = tail_f32(b0, w0, x, c8, cols); b1 = tail_f32(b1, w1, x, c8, cols);
            b2 = tail_f32(b2, w2, x, c8, cols); b3 = tail_f32(b3, w3, x, c8, cols);
        }
        /* lanes [Σrow0, Σrow1, Σrow2, Σrow3] by two pairwise adds */
        float32x4_t s = vpaddq_f32(vpaddq_f32(vaddq_f32(a0, b0), vaddq_f32(a1, b1)),
                                   vpaddq_f32(vaddq_f32(a2, b2), vaddq_f32(a3, b3)));
        if (acc) s = vaddq_f32(s, vld1q_f32(y + r));
        vst1q_f32(y + r, s);
    }
    for (; r < rows; r++) {
        const float *w0 = w + r * cols;
        float32x4_t a0 = vdupq_n_f32(0), b0 = a0;
        for (long c = 0; c < c8; c += 8) {
            a0 = vfmaq_f32(a0, vld1q_f32(w0 + c), vld1q_f32(x + c));
            b0 = vfmaq_f32(b0, vld1q_f32(w0 + c + 4), vld1q_f32(x + c + 4));
        }
        if (c8 < cols) b0 = tail_f32(b0, w0, x, c8, cols);
        float s = vaddvq_f32(vaddq_f32(a0, b0));
        y[r] = acc ? y[r] + s : s;
    }
}

/* ---- f16: the same shape, eight halves widened exactly to f32 by fcvtl / fcvtl2 (vcvt_f32_f16). The
 *      last cols mod 8 columns go through zero-padded copies of w and x. ------------------------------- */

static inline float32x4_t fma_h8(float32x4_t a, const uint16_t *w, float32x4_t x0, float32x4_t x1) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(w));
    return vfmaq_f32(vfmaq_f32(a, vcvt_f32_f16(vget_low_f16(h)), x0), vcvt_high_f32_f16(h), x1);
}

static inline float32x4_t fma_h_tail(float32x4_t a, const uint16_t *w, long n, float32x4_t x0, float32x4_t x1) {
    uint16_t t[8] = {0};
    memcpy(t, w, (size_t)n * 2);
    return fma_h8(a, t, x0, x1);
}

void rk_f16_neon(float *y, const uint16_t *w, const float *x, long rows, long cols, int acc) {
    const long c8 = cols & ~7L, rem = cols - c8;
    float xt[8] = {0};
    if (rem) memcpy(xt, x + c8, (size_t)rem * 4);
    const float32x4_t xt0 = vld1q_f32(xt), xt1 = vld1q_f32(xt + 4);
    long r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint16_t *w0 = w + r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        for (long c = 0; c < c8; c += 8) {
            const float32x4_t x0 = vld1q_f32(x + c), x1 = vld1q_f32(x + c + 4);
            a0 = fma_h8(a0, w0 + c, x0, x1);
            a1 = fma_h8(a1, w1 + c, x0, x1);
            a2 = fma_h8(a2, w2 + c, x0, x1);
            a3 = fma_h8(a3, w3 + c, x0, x1);
        }
        if (rem) {
            a0 = fma_h_tail(a0, w0 + c8, rem, xt0, xt1);
            a1 = fma_h_tail(a1, w1 + c8, rem, xt0, xt1);
            a2 = fma_h_tail(a2, w2 + c8, rem, xt0, xt1);
            a3 = fma_h_tail(a3, w3 + c8, rem, xt0, xt1);
        }
        float32x4_t s = vpaddq_f32(vpaddq_f32(a0, a1), vpaddq_f32(a2, a3));
        if (acc) s = vaddq_f32(s, vld1q_f32(y + r));
        vst1q_f32(y + r, s);
    }
    for (; r < rows; r++) {
        const uint16_t *w0 = w + r * cols;
        float32x4_t a0 = vdupq_n_f32(0);
        for (long c = 0; c < c8; c += 8) a0 = fma_h8(a0, w0 + c, vld1q_f32(x + c), vld1q_f32(x + c + 4));
        if (rem) a0 = fma_h_tail(a0, w0 + c8, rem, xt0, xt1);
        float s = vaddvq_f32(a0);
        y[r] = acc ? y[r] + s : s;
    }
}

/* ---- int8 dot products of one block of 32: a, b → int32 lanes whose sum is Σ_j a_j·b_j ------------- */

/* sdot: lane i += Σ_{k<4} a[4i+k]·b[4i+k], twice. */
DOTPROD static inline int32x4_t dot32_sdot(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, b0), a1, b1);
}

/* Widening: the int16 products of a0·b0 (smull, smlal2: two per lane) are added pairwise into int32
 * (sadalp), then those of a1·b1. Two products per int16 lane: |a|, |b| ≤ 127 keep them ≤ 32258. */
static inline int32x4_t dot32_widen(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
    int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(a0), vget_low_s8(b0)), a0, b0);
    int16x8_t q = vmlal_high_s8(vmull_s8(vget_low_s8(a1), vget_low_s8(b1)), a1, b1);
    return vpadalq_s16(vpaddlq_s16(p), q);
}

/* [Σ a, Σ b, Σ c, Σ d]: the lane sums of four vectors (two rounds of addp). */
static inline int32x4_t sum4_s32(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

/* The q4 weights of one block as int8 (nibble − 8): elements 0..15 (low nibbles) and 16..31 (high). */
static inline void q4_codes(const unsigned char *p, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t v = vld1q_u8(p);
    const int8x16_t eight = vdupq_n_s8(8);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))), eight);
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
}

/* ---- q8 and q4 (x per block of 32, rk_xq):  y[r] = Σ_b s_b · (d_b · Σ_{c∈b} q_c·xq_c), the block sums
 *      exact in int32, the float operations those of the scalar kernels in their order. Four blocks'
 *      sums go to one vector for one conversion and the multiply by d_b; the four are then scaled and
 *      added to the row's sum one after the other. Four rows at a time, so that their four chains of
 *      additions overlap. One body for both dot products (sdot, widening), from one macro. ---------- */

/* d_b · (float)dot_b for the four blocks from b: one vector multiply, the scalar kernel's inner product. */
static inline float32x4_t dq4(const float *d, long b, int32x4_t dots) {
    return vmulq_f32(vld1q_f32(d + b), vcvtq_f32_s32(dots));
}

/* s += s_b · t_b for the four blocks from b, left to right, each written as the scalar kernel writes it
 * (s += scale · (d · dot)), so that a compiler that contracts it to a fused multiply-add (clang's
 * default, -ffp-contract=on) contracts both alike, and one that does not (-ffp-contract=off) neither. */
static inline float madd4(float s, const unsigned char *row, long b, float32x4_t t) {
    s += rk_load_f32(row + 4 * b) * vgetq_lane_f32(t, 0);
    s += rk_load_f32(row + 4 * (b + 1)) * vgetq_lane_f32(t, 1);
    s += rk_load_f32(row + 4 * (b + 2)) * vgetq_lane_f32(t, 2);
    s += rk_load_f32(row + 4 * (b + 3)) * vgetq_lane_f32(t, 3);
    return s;
}

/* s += s_b · (d_b · dot), one block (the scalar kernel's statement). */
static inline float madd1(float s, const unsigned char *row, const float *d, long b, int32_t dot) {
    s += rk_load_f32(row + 4 * b) * (d[b] * (float)dot);
    return s;
}

/* The int32 lanes of block b of a q8 row (codes at q) or of a q4 row (bytes at q) against x. */
DOTPROD static inline int32x4_t q8_block_sdot(const unsigned char *q, const int8_t *xq, long b) {
    const int8_t *p = (const int8_t *)q + 32 * b;
    return dot32_sdot(vld1q_s8(p), vld1q_s8(p + 16), vld1q_s8(xq + 32 * b), vld1q_s8(xq + 32 * b + 16));
}
static inline int32x4_t q8_block_widen(const unsigned char *q, const int8_t *xq, long b) {
    const int8_t *p = (const int8_t *)q + 32 * b;
    return dot32_widen(vld1q_s8(p), vld1q_s8(p + 16), vld1q_s8(xq + 32 * b), vld1q_s8(xq + 32 * b + 16));
}
DOTPROD static inline int32x4_t q4_block_sdot(const unsigned char *q, const int8_t *xq, long b) {
    int8x16_t lo, hi;
    q4_codes(q + 16 * b, &lo, &hi);
    return dot32_sdot(lo, hi, vld1q_s8(xq + 32 * b), vld1q_s8(xq + 32 * b + 16));
}
static inline int32x4_t q4_block_widen(const unsigned char *q, const int8_t *xq, long b) {
    int8x16_t lo, hi;
    q4_codes(q + 16 * b, &lo, &hi);
    return dot32_widen(lo, hi, vld1q_s8(xq + 32 * b), vld1q_s8(xq + 32 * b + 16));
}

/* The block sums of blocks b..b+3 of the row whose values start at q, as four lanes. */
#define BLOCKS4(BLOCK, q, b) sum4_s32(BLOCK(q, xq, b), BLOCK(q, xq, b + 1), BLOCK(q, xq, b + 2), BLOCK(q, xq, b + 3))

/* A kernel over rows of RB·nb bytes (nb scales, then the block values), BLOCK giving a block's lanes. */
#define QBLOCK_KERNEL(NAME, ATTR, BLOCK, RB) \
ATTR static void NAME(float *y, const void *w, const rk_xq *x, long rows, int acc) { \
    const long nb = x->nb, nb4 = nb & ~3L, rb = (RB) * nb; \
    const float *d = x->d; \
    const int8_t *xq = x->q; \
    const unsigned char *base = (const unsigned char *)w; \
    long r = 0; \
    for (; r + 4 <= rows; r += 4) { \
        const unsigned char *r0 = base + r * rb, *r1 = r0 + rb, *r2 = r1 + rb, *r3 = r2 + rb; \
        const unsigned char *q0 = r0 + 4 * nb, *q1 = r1 + 4 * nb, *q2 = r2 + 4 * nb, *q3 = r3 + 4 * nb; \
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0; \
        long b = 0; \
        for (; b < nb4; b += 4) { \
            s0 = madd4(s0, r0, b, dq4(d, b, BLOCKS4(BLOCK, q0, b))); \
            s1 = madd4(s1, r1, b, dq4(d, b, BLOCKS4(BLOCK, q1, b))); \
            s2 = madd4(s2, r2, b, dq4(d, b, BLOCKS4(BLOCK, q2, b))); \
            s3 = madd4(s3, r3, b, dq4(d, b, BLOCKS4(BLOCK, q3, b))); \
        } \
        for (; b < nb; b++) { \
            s0 = madd1(s0, r0, d, b, vaddvq_s32(BLOCK(q0, xq, b))); \
            s1 = madd1(s1, r1, d, b, vaddvq_s32(BLOCK(q1, xq, b))); \
            s2 = madd1(s2, r2, d, b, vaddvq_s32(BLOCK(q2, xq, b))); \
            s3 = madd1(s3, r3, d, b, vaddvq_s32(BLOCK(q3, xq, b))); \
        } \
        y[r] = acc ? y[r] + s0 : s0; y[r + 1] = acc ? y[r + 1] + s1 : s1; \
        y[r + 2] = acc ? y[r + 2] + s2 : s2; y[r + 3] = acc ? y[r + 3] + s3 : s3; \
    } \
    for (; r < rows; r++) { \
        const unsigned char *r0 = base + r * rb, *q0 = r0 + 4 * nb; \
        float s0 = 0; \
        long b = 0; \
        for (; b < nb4; b += 4) \
            s0 = madd4(s0, r0, b, dq4(d, b, BLOCKS4(BLOCK, q0, b))); \
        for (; b < nb; b++) s0 = madd1(s0, r0, d, b, vaddvq_s32(BLOCK(q0, xq, b))); \
        y[r] = acc ? y[r] + s0 : s0; \
    } \
}

QBLOCK_KERNEL(q8_sdot, DOTPROD, q8_block_sdot, 36)
QBLOCK_KERNEL(q8_widen, , q8_block_widen, 36)
QBLOCK_KERNEL(q4_sdot, DOTPROD, q4_block_sdot, 20)
QBLOCK_KERNEL(q4_widen, , q4_block_widen, 20)

void rk_q8_neon(float *y, const void *w, const rk_xq *x, long rows, int acc) {
    if (rk_neon_dotprod()) q8_sdot(y, w, x, rows, acc); else q8_widen(y, w, x, rows, acc);
}

void rk_q4_neon(float *y, const void *w, const rk_xq *x, long rows, int acc) {
    if (rk_neon_dotprod()) q4_sdot(y, w, x, rows, acc); else q4_widen(y, w, x, rows, acc);
}

/* ---- q8r (x per vector, rk_xr):  y[r] = ((Σ_c q_c·xq_c) · D) · s_r, one exact int32 sum per row over
 *      its n = 32·nb codes (zero padded, as is xq). Four rows at a time share the loads of x.
 *      sdot: each row's lanes accumulate 32 codes per step. Widening: |xq| ≤ 64 and |q| ≤ 127 let four
 *      products add in one int16 lane (≤ 4·127·64 = 32512) before one sadalp per 32 codes. ------------- */

DOTPROD static inline int32x4_t acc32_sdot(int32x4_t a, const int8_t *q, int8x16_t x0, int8x16_t x1) {
    return vdotq_s32(vdotq_s32(a, vld1q_s8(q), x0), vld1q_s8(q + 16), x1);
}

static inline int32x4_t acc32_widen(int32x4_t a, const int8_t *q, int8x16_t x0, int8x16_t x1) {
    const int8x16_t w0 = vld1q_s8(q), w1 = vld1q_s8(q + 16);
    int16x8_t p = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
    p = vmlal_high_s8(p, w0, x0);
    p = vmlal_s8(p, vget_low_s8(w1), vget_low_s8(x1));
    p = vmlal_high_s8(p, w1, x1);
    return vpadalq_s16(a, p);
}

#define Q8R_KERNEL(NAME, ATTR, ACC32) \
ATTR static void NAME(float *y, const void *w, const rk_xr *x, long rows, int acc) { \
    const long n = (x->cols + 31) & ~31L, rb = 4 + n; \
    const int8_t *xq = x->q; \
    const unsigned char *base = (const unsigned char *)w; \
    long r = 0; \
    for (; r + 4 <= rows; r += 4) { \
        const unsigned char *r0 = base + r * rb, *r1 = r0 + rb, *r2 = r1 + rb, *r3 = r2 + rb; \
        const int8_t *q0 = (const int8_t *)(r0 + 4), *q1 = (const int8_t *)(r1 + 4); \
        const int8_t *q2 = (const int8_t *)(r2 + 4), *q3 = (const int8_t *)(r3 + 4); \
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0; \
        for (long c = 0; c < n; c += 32) { \
            const int8x16_t x0 = vld1q_s8(xq + c), x1 = vld1q_s8(xq + c + 16); \
            a0 = ACC32(a0, q0 + c, x0, x1); \
            a1 = ACC32(a1, q1 + c, x0, x1); \
            a2 = ACC32(a2, q2 + c, x0, x1); \
            a3 = ACC32(a3, q3 + c, x0, x1); \
        } \
        const float32x4_t dot = vmulq_f32(vcvtq_f32_s32(sum4_s32(a0, a1, a2, a3)), vdupq_n_f32(x->d)); \
        const float sc[4] = {rk_load_f32(r0), rk_load_f32(r1), rk_load_f32(r2), rk_load_f32(r3)}; \
        float32x4_t s = vmulq_f32(dot, vld1q_f32(sc)); \
        if (acc) s = vaddq_f32(vld1q_f32(y + r), s); \
        vst1q_f32(y + r, s); \
    } \
    for (; r < rows; r++) { \
        const unsigned char *r0 = base + r * rb; \
        const int8_t *q0 = (const int8_t *)(r0 + 4); \
        int32x4_t a0 = vdupq_n_s32(0); \
        for (long c = 0; c < n; c += 32) a0 = ACC32(a0, q0 + c, vld1q_s8(xq + c), vld1q_s8(xq + c + 16)); \
        float s = ((float)vaddvq_s32(a0) * x->d) * rk_load_f32(r0); \
        y[r] = acc ? y[r] + s : s; \
    } \
}

Q8R_KERNEL(q8r_sdot, DOTPROD, acc32_sdot)
Q8R_KERNEL(q8r_widen, , acc32_widen)

void rk_q8r_neon(float *y, const void *w, const rk_xr *x, long rows, int acc) {
    if (rk_neon_dotprod()) q8r_sdot(y, w, x, rows, acc); else q8r_widen(y, w, x, rows, acc);
}

/* ---- quantization of x, the scalar quantizers' arithmetic (so the same bytes): max|x| by fmaxnm
 *      (NaN ignored, as fmaxf), x·inv clamped by fmaxnm / fminnm (NaN → the lower bound, as fminf(fmaxf))
 *      and rounded half to even by fcvtns (as nearbyintf). Elements past cols are read as 0. ----------- */

/* Eight consecutive elements of x from c as two vectors, zeros past cols. */
static inline void load8(const float *x, long c, long cols, float32x4_t *e0, float32x4_t *e1) {
    if (cols - c >= 8) {
        *e0 = vld1q_f32(x + c);
        *e1 = vld1q_f32(x + c + 4);
    } else {
        float t[8] = {0};
        if (cols > c) memcpy(t, x + c, (size_t)(cols - c) * 4);
        *e0 = vld1q_f32(t);
        *e1 = vld1q_f32(t + 4);
    }
}

/* round-half-even(clamp(e·inv, −lim, lim)) as int32 lanes */
static inline int32x4_t quant4(float32x4_t e, float32x4_t inv, float32x4_t lim) {
    return vcvtnq_s32_f32(vminnmq_f32(vmaxnmq_f32(vmulq_f32(e, inv), vnegq_f32(lim)), lim));
}

/* 16 int32 lanes (|v| ≤ 127) → 16 int8 in order. */
static inline int8x16_t narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vcombine_s8(vmovn_s16(vcombine_s16(vmovn_s32(a), vmovn_s32(b))),
                       vmovn_s16(vcombine_s16(vmovn_s32(c), vmovn_s32(d))));
}

/* d_b = max|x| / 127 over block b; xq = round-half-even(clamp(x · 127 / max|x|, −127, 127)). */
void rk_quantize_neon(void *buf, const float *x, long cols) {
    const rk_xq_out v = rk_xq_zeroed(buf, cols);
    float *d = v.d, *t8 = v.t8, *t128 = v.t128;
    int32_t *n8 = v.n8;
    int8_t *q = v.q;
    const float32x4_t lim = vdupq_n_f32(127.0f);
    for (long b = 0; b < v.nb; b++) {
        float32x4_t e[8];
        load8(x, 32 * b, cols, &e[0], &e[1]);
        load8(x, 32 * b + 8, cols, &e[2], &e[3]);
        load8(x, 32 * b + 16, cols, &e[4], &e[5]);
        load8(x, 32 * b + 24, cols, &e[6], &e[7]);
        float32x4_t m = vdupq_n_f32(0);
        for (int k = 0; k < 8; k++) m = vmaxnmq_f32(m, vabsq_f32(e[k]));
        const float amax = vmaxnmvq_f32(m);
        const float32x4_t inv = vdupq_n_f32(amax > 0 ? 127.0f / amax : 0.0f);
        d[b] = amax / 127.0f;
        int32x4_t n[8], sum = vdupq_n_s32(0);
        for (int k = 0; k < 8; k++) {
            n[k] = quant4(e[k], inv, lim);
            sum = vaddq_s32(sum, n[k]);
        }
        vst1q_s8(q + 32 * b, narrow16(n[0], n[1], n[2], n[3]));
        vst1q_s8(q + 32 * b + 16, narrow16(n[4], n[5], n[6], n[7]));
        const int32_t Si = vaddvq_s32(sum);
        const float S = (float)Si;
        n8[b] = -8 * Si;
        t8[b] = 8.0f * d[b] * S;
        t128[b] = 128.0f * d[b] * S;
    }
}

/* D = max|x| / 64; xq = round-half-even(clamp(x · 64 / max|x|, −64, 64)); S = Σ xq. */
void rk_quantize_xr_neon(void *buf, const float *x, long cols) {
    const long ncp = rk_ncp(cols), c4 = cols & ~3L;
    float32x4_t m = vdupq_n_f32(0);
    for (long c = 0; c < c4; c += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + c)));
    float amax = vmaxnmvq_f32(m);
    for (long c = c4; c < cols; c++) amax = fmaxf(amax, fabsf(x[c]));
    const float32x4_t inv = vdupq_n_f32(rk_xr_begin(buf, amax)), lim = vdupq_n_f32(64.0f);
    int8_t *q = (int8_t *)buf + 64;
    int32x4_t sum = vdupq_n_s32(0);
    for (long c = 0; c < ncp; c += 16) {
        float32x4_t e[4];
        load8(x, c, cols, &e[0], &e[1]);
        load8(x, c + 8, cols, &e[2], &e[3]);
        int32x4_t n[4];
        for (int k = 0; k < 4; k++) {
            n[k] = quant4(e[k], inv, lim);
            sum = vaddq_s32(sum, n[k]);
        }
        vst1q_s8(q + c, narrow16(n[0], n[1], n[2], n[3]));
    }
    const int32_t S = vaddvq_s32(sum);
    memcpy((unsigned char *)buf + 4, &S, 4);
    const int8x16_t sixty4 = vdupq_n_s8(64);
    for (long c = 0; c < ncp; c += 16)   /* u = xq + 64 */
        vst1q_s8(q + ncp + c, vaddq_s8(vld1q_s8(q + c), sixty4));
}

/* Group g's 16 values v[0..3] into y (row row0 at y[0]): four stores when the group lies inside [row0, end),
 * else only its rows there (rk_put_group); added when acc. */
static inline void put16(float *y, const float32x4_t v[4], long g, long row0, long end, int acc) {
    if (16 * g >= row0 && 16 * g + 16 <= end) {
        float *o = y + (16 * g - row0);
        for (int i = 0; i < 4; i++) vst1q_f32(o + 4 * i, acc ? vaddq_f32(vld1q_f32(o + 4 * i), v[i]) : v[i]);
        return;
    }
    float t[16];
    for (int i = 0; i < 4; i++) vst1q_f32(t + 4 * i, v[i]);
    rk_put_group(y, t, g, row0, end, acc);
}

/* ---- q8ri (rows interleaved by 16, x per vector): a 16-byte vector of a chunk is 4 rows × 4 columns, so
 *      one sdot with 4 codes of x broadcast adds into 4 rows' int32 sums; four vectors per chunk cover the
 *      group's 16 rows, over the chunks that hold columns (rk_q8ri_chunks). Signed × signed: x is xq itself
 *      (no u, no row sums). Then, per row, as q8r:
 *      ((float)sum · D) · s_i. Without dotprod, widening multiplies (q8ri_widen). ------------------------------------ */

DOTPROD static void q8ri_sdot(float *y, const void *w, const rk_xr *x, long row0, long rows, int acc) {
    const long chunks = rk_q8ri_chunks(x->cols), gb = rk_q8ri_group_bytes(x->cols), end = row0 + rows;
    const float32x4_t d = vdupq_n_f32(x->d);
    for (long g = row0 / 16; 16 * g < end; g++) {
        const unsigned char *G = (const unsigned char *)w + g * gb;
        const int8_t *q = (const int8_t *)(G + 128);
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (long k = 0; k < chunks; k++) {
            const int8x16_t xb = vreinterpretq_s8_s32(vdupq_n_s32(rk_load_i32(x->q + 4 * k)));
            const int8_t *c = q + 64 * k;
            a0 = vdotq_s32(a0, vld1q_s8(c), xb);
            a1 = vdotq_s32(a1, vld1q_s8(c + 16), xb);
            a2 = vdotq_s32(a2, vld1q_s8(c + 32), xb);
            a3 = vdotq_s32(a3, vld1q_s8(c + 48), xb);
        }
        const float *sc = (const float *)G;
        const float32x4_t v[4] = {vmulq_f32(vmulq_f32(vcvtq_f32_s32(a0), d), vld1q_f32(sc)),
                                  vmulq_f32(vmulq_f32(vcvtq_f32_s32(a1), d), vld1q_f32(sc + 4)),
                                  vmulq_f32(vmulq_f32(vcvtq_f32_s32(a2), d), vld1q_f32(sc + 8)),
                                  vmulq_f32(vmulq_f32(vcvtq_f32_s32(a3), d), vld1q_f32(sc + 12))};
        put16(y, v, g, row0, end, acc);
    }
}

/* Without dotprod: widening multiplies. 16 bytes of a chunk are rows 4v..4v+3 × 4 columns; smlal/smlal2
 * add the products of rows (4v, 4v+1) and (4v+2, 4v+3) into int16 lanes (one per row and column) for 4
 * chunks (≤ 4·64·127 = 32512), then sadalp folds column pairs into int32; at the end of the group,
 * addp of two row pairs' lanes gives 4 rows' sums. */
static void q8ri_widen(float *y, const void *w, const rk_xr *x, long row0, long rows, int acc) {
    const long chunks = rk_q8ri_chunks(x->cols), gb = rk_q8ri_group_bytes(x->cols), end = row0 + rows;
    const float32x4_t d = vdupq_n_f32(x->d);
    for (long g = row0 / 16; 16 * g < end; g++) {
        const unsigned char *G = (const unsigned char *)w + g * gb;
        const int8_t *q = (const int8_t *)(G + 128);
        int32x4_t a[8];
        for (int p = 0; p < 8; p++) a[p] = vdupq_n_s32(0);
        for (long k = 0; k < chunks; k += 4) {
            int16x8_t s[8];
            for (int p = 0; p < 8; p++) s[p] = vdupq_n_s16(0);
            for (long kk = k; kk < k + 4 && kk < chunks; kk++) {
                const int8x16_t xb = vreinterpretq_s8_s32(vdupq_n_s32(rk_load_i32(x->q + 4 * kk)));
                const int8_t *c = q + 64 * kk;
                for (int v = 0; v < 4; v++) {
                    const int8x16_t wv = vld1q_s8(c + 16 * v);
                    s[2 * v] = vmlal_s8(s[2 * v], vget_low_s8(wv), vget_low_s8(xb));
                    s[2 * v + 1] = vmlal_high_s8(s[2 * v + 1], wv, xb);
                }
            }
            for (int p = 0; p < 8; p++) a[p] = vpadalq_s16(a[p], s[p]);
        }
        const float *sc = (const float *)G;
        float32x4_t out[4];
        for (int v = 0; v < 4; v++) {
            const int32x4_t sum = vpaddq_s32(a[2 * v], a[2 * v + 1]);   /* rows 4v .. 4v+3 */
            out[v] = vmulq_f32(vmulq_f32(vcvtq_f32_s32(sum), d), vld1q_f32(sc + 4 * v));
        }
        put16(y, out, g, row0, end, acc);
    }
}

/* ---- q4i (rows interleaved by 16, x per block): 16 bytes of a nibble vector are 4 rows × 4 columns in the
 *      low nibbles and 4 more columns in the high ones; sdot of the nibbles (0..15, fine as signed bytes)
 *      with 4 codes of x broadcast, from n8_b, then rk_q4i_scalar's float operations (fused, as vfmaq). Without
 *      dotprod, widening multiplies (q4i_widen). --------------------------------------------------------------------- */

DOTPROD static void q4i_sdot(float *y, const void *w, const rk_xq *x, long row0, long rows, int acc) {
    const long nb = x->nb, gb = 320 * nb, end = row0 + rows;
    const uint8x16_t low = vdupq_n_u8(15);
    for (long g = row0 / 16; 16 * g < end; g++) {
        const unsigned char *G = (const unsigned char *)w + g * gb;
        float32x4_t a[4];
        for (int v = 0; v < 4; v++) a[v] = vdupq_n_f32(0);
        for (long b = 0; b < nb; b++) {
            const unsigned char *B = G + 320 * b;
            const int8_t *xq = x->q + 32 * b;
            int32x4_t dot[4];
            for (int v = 0; v < 4; v++) dot[v] = vdupq_n_s32(x->n8[b]);
            for (int m = 0; m < 4; m++) {
                const int8x16_t xl = vreinterpretq_s8_s32(vdupq_n_s32(rk_load_i32(xq + 8 * m)));
                const int8x16_t xh = vreinterpretq_s8_s32(vdupq_n_s32(rk_load_i32(xq + 8 * m + 4)));
                for (int v = 0; v < 4; v++) {   /* rows 4v .. 4v+3 */
                    const uint8x16_t n = vld1q_u8(B + 64 + 64 * m + 16 * v);
                    dot[v] = vdotq_s32(dot[v], vreinterpretq_s8_u8(vandq_u8(n, low)), xl);
                    dot[v] = vdotq_s32(dot[v], vreinterpretq_s8_u8(vshrq_n_u8(n, 4)), xh);
                }
            }
            const float32x4_t db = vdupq_n_f32(x->d[b]);
            for (int v = 0; v < 4; v++) {
                const float32x4_t s = vld1q_f32((const float *)B + 4 * v);
                a[v] = vfmaq_f32(a[v], vcvtq_f32_s32(dot[v]), vmulq_f32(s, db));
            }
        }
        put16(y, a, g, row0, end, acc);
    }
}

/* Without dotprod: smlal/smlal2 of nibbles and xq into int16 lanes (one per row and column; 8 products
 * of ≤ 15·127 per block stay within int16), folded into rows by paddl and addp at the end of each block. */
static void q4i_widen(float *y, const void *w, const rk_xq *x, long row0, long rows, int acc) {
    const long nb = x->nb, gb = 320 * nb, end = row0 + rows;
    const uint8x16_t low = vdupq_n_u8(15);
    for (long g = row0 / 16; 16 * g < end; g++) {
        const unsigned char *G = (const unsigned char *)w + g * gb;
        float32x4_t a[4];
        for (int v = 0; v < 4; v++) a[v] = vdupq_n_f32(0);
        for (long b = 0; b < nb; b++) {
            const unsigned char *B = G + 320 * b;
            const int8_t *xq = x->q + 32 * b;
            int16x8_t s[8];
            for (int p = 0; p < 8; p++) s[p] = vdupq_n_s16(0);
            for (int m = 0; m < 4; m++) {
                const int8x16_t xl = vreinterpretq_s8_s32(vdupq_n_s32(rk_load_i32(xq + 8 * m)));
                const int8x16_t xh = vreinterpretq_s8_s32(vdupq_n_s32(rk_load_i32(xq + 8 * m + 4)));
                for (int v = 0; v < 4; v++) {
                    const uint8x16_t n = vld1q_u8(B + 64 + 64 * m + 16 * v);
                    const int8x16_t nl = vreinterpretq_s8_u8(vandq_u8(n, low)), nh = vreinterpretq_s8_u8(vshrq_n_u8(n, 4));
                    s[2 * v] = vmlal_s8(vmlal_s8(s[2 * v], vget_low_s8(nl), vget_low_s8(xl)), vget_low_s8(nh), vget_low_s8(xh));
                    s[2 * v + 1] = vmlal_high_s8(vmlal_high_s8(s[2 * v + 1], nl, xl), nh, xh);
                }
            }
            const float32x4_t db = vdupq_n_f32(x->d[b]);
            const int32x4_t n8 = vdupq_n_s32(x->n8[b]);
            for (int v = 0; v < 4; v++) {
                const int32x4_t dot = vaddq_s32(vpaddq_s32(vpaddlq_s16(s[2 * v]), vpaddlq_s16(s[2 * v + 1])), n8);   /* rows 4v..4v+3 */
                const float32x4_t sc = vld1q_f32((const float *)B + 4 * v);
                a[v] = vfmaq_f32(a[v], vcvtq_f32_s32(dot), vmulq_f32(sc, db));
            }
        }
        put16(y, a, g, row0, end, acc);
    }
}

void rk_q4i_neon(float *y, const void *w, const rk_xq *x, long row0, long rows, int acc) {
    if (rk_neon_dotprod()) q4i_sdot(y, w, x, row0, rows, acc); else q4i_widen(y, w, x, row0, rows, acc);
}

void rk_q8ri_neon(float *y, const void *w, const rk_xr *x, long row0, long rows, int acc) {
    if (rk_neon_dotprod()) q8ri_sdot(y, w, x, row0, rows, acc); else q8ri_widen(y, w, x, row0, rows, acc);
}

#endif
