/* Shared by the kernel files of CRecurKernels; not installed. */
#ifndef RECUR_KERNELS_INTERNAL_H
#define RECUR_KERNELS_INTERNAL_H

#include "recur_kernels.h"
#include <string.h>

/* A function whose every expression is rounded as written, nothing contracted into fused multiply-adds: GCC's
 * attribute; with clang, `#pragma clang fp contract(off)` around the definitions. */
#if defined(__GNUC__) && !defined(__clang__)
#define RK_EXACT __attribute__((optimize("fp-contract=off")))
#else
#define RK_EXACT
#endif

/* The element-wise level files (avx2_elementwise.c, avx512_elementwise.c, neon_elementwise.c) take NV vectors
 * through each stage before the next: RK_EACH is that loop over the vectors u < NV. RK_BY_KINDS calls
 * f(args..., σ, act) with the pair of activation kinds (each RK_TANH or RK_SIGMOID) as constants, so that each
 * of the four pairs is a loop of its own with no test of the kind inside. */
#define RK_EACH for (int u = 0; u < NV; u++)
#define RK_BY_KINDS(f, ract, act, ...)                                                                          \
    do {                                                                                                        \
        if ((ract) == RK_SIGMOID)                                                                               \
            (act) == RK_TANH ? f(__VA_ARGS__, RK_SIGMOID, RK_TANH) : f(__VA_ARGS__, RK_SIGMOID, RK_SIGMOID);    \
        else                                                                                                    \
            (act) == RK_TANH ? f(__VA_ARGS__, RK_TANH, RK_TANH) : f(__VA_ARGS__, RK_TANH, RK_SIGMOID);          \
    } while (0)

/* The typed entry points behind rk_matvec_at, and the two-phase forms behind rk_matvec_prepared: x
 * quantized once per block of 32 (`xq`, rk_xq_bytes(cols)) serves q8 and q4; per vector (`xr`,
 * rk_xr_bytes(cols)) serves q8r. */
void rk_matvec_f32_at(int level, float *y, const float *w, const float *x, long rows, long cols, int accumulate);
void rk_matvec_f16_at(int level, float *y, const uint16_t *w, const float *x, long rows, long cols, int accumulate);
void rk_matvec_q8_at(int level, float *y, const void *w, const float *x, long rows, long cols, int accumulate);
void rk_matvec_q4_at(int level, float *y, const void *w, const float *x, long rows, long cols, int accumulate);
void rk_matvec_q8r_at(int level, float *y, const void *w, const float *x, long rows, long cols, int accumulate);
size_t rk_xq_bytes(long cols);
void rk_matvec_q8_xq(float *y, const void *w, const void *xq, long rows, long cols, int accumulate);
void rk_matvec_q4_xq(float *y, const void *w, const void *xq, long rows, long cols, int accumulate);
size_t rk_xr_bytes(long cols);
void rk_quantize_xr(void *xr, const float *x, long cols);
void rk_matvec_q8r_xr(float *y, const void *w, const void *xr, long rows, long cols, int accumulate);
void rk_matvec_q8ri_at(int level, float *y, const void *w, const float *x, long row0, long rows, long cols, int accumulate);
void rk_matvec_q8ri_xr(float *y, const void *w, const void *xr, long row0, long rows, long cols, int accumulate);
void rk_matvec_q4i_xq(float *y, const void *w, const void *xq, long row0, long rows, long cols, int accumulate);

/*
 * A quantized activation vector (rk_prepare_x for a per-block dtype), laid out in one 64-byte-aligned buffer.
 * nbp = nb rounded up to a multiple of 16; every array holds nbp blocks, those past nb all zero,
 * so vector loads of whole groups of 16 blocks never read garbage.
 *   d    [nbp] f32   block scales d_b
 *   t8   [nbp] f32   8·d_b·S_b     (S_b = Σ xq over block b): the "− 8" of q4 nibbles
 *   t128 [nbp] f32   128·d_b·S_b:  the offset of q8 weights read as unsigned (w + 128) by vpdpbusd
 *   n8   [nbp] i32   −8·S_b: the "− 8" of q4i nibbles, added to each block's exact int32 sum
 *   q    [nbp·32] i8 xq in element order
 *   qp   [nbp·32] i8 xq per group of 4 blocks g: 64 bytes = elements 0..15 of blocks 4g..4g+3, then
 *                  64 bytes = elements 16..31 of the same blocks (the order of AVX-512 q4 nibbles);
 *                  filled only for plain q4 at the AVX2 and AVX-512 levels
 */
typedef struct {
    long cols, nb, nbp;
    const float *d, *t8, *t128;
    const int32_t *n8;
    const int8_t *q, *qp;
} rk_xq;

/* Bytes per block before q: d, t8, t128 and n8. */
#define RK_XQ_SCALE_BYTES 16

static inline long rk_nbp(long cols) { return ((cols + 31) / 32 + 15) & ~15L; }

static inline rk_xq rk_xq_view(const void *buf, long cols) {
    rk_xq v;
    v.cols = cols;
    v.nb = (cols + 31) / 32;
    v.nbp = rk_nbp(cols);
    const unsigned char *p = (const unsigned char *)buf;
    v.d = (const float *)p;
    v.t8 = v.d + v.nbp;
    v.t128 = v.t8 + v.nbp;
    v.n8 = (const int32_t *)(v.t128 + v.nbp);
    v.q = (const int8_t *)(v.n8 + v.nbp);
    v.qp = v.q + v.nbp * 32;
    return v;
}

/* What a per-block quantizer writes, zeroed first (padding blocks and their q stay zero): the start of
 * rk_quantize_scalar and of each level's version. */
typedef struct {
    long nb, nbp;
    float *d, *t8, *t128;
    int32_t *n8;
    int8_t *q;
} rk_xq_out;

static inline rk_xq_out rk_xq_zeroed(void *buf, long cols) {
    const rk_xq v = rk_xq_view(buf, cols);
    memset(buf, 0, (size_t)v.nbp * (RK_XQ_SCALE_BYTES + 32));
    rk_xq_out o = {v.nb, v.nbp, (float *)v.d, (float *)v.t8, (float *)v.t128, (int32_t *)v.n8, (int8_t *)v.q};
    return o;
}

/*
 * A vector quantized for q8r and q8ri (per-row) weights (see rk_quantize_xr): one scale for the whole vector,
 *   D = max|x| / 64,  xq_c = clamp(round-half-even(x_c / D), −64, 64),
 * 64 bytes holding D (f32), S = Σ xq (int32; for the AVX-512 kernel, whose weights are read as unsigned
 * q + 128) and zero padding, then xq in element order, zero-padded to a multiple of 64, then u = xq + 64
 * as unsigned bytes (the q8ri kernels' operand; 64 in the padding, where the weights are zero).
 * |xq| ≤ 64 and |q| ≤ 127 keep the sum of two vpmaddubsw pair sums within int16 (2·2·64·127 = 32512),
 * and u ≤ 128 one pair sum of u · q (2·128·127 = 32512).
 */
typedef struct {
    long cols, ncp;
    float d;
    const int8_t *q;
    const uint8_t *u;
    int32_t sum;   /* apart from d: a view reads them with two loads, and the q8ri kernels, which need d early
                    * and no sum, do not wait for the sum, written last */
} rk_xr;

static inline long rk_ncp(long cols) { return (cols + 63) & ~63L; }

static inline rk_xr rk_xr_view(const void *buf, long cols) {
    rk_xr v;
    v.cols = cols;
    v.ncp = rk_ncp(cols);
    memcpy(&v.d, buf, 4);
    memcpy(&v.sum, (const unsigned char *)buf + 4, 4);
    v.q = (const int8_t *)buf + 64;
    v.u = (const uint8_t *)buf + 64 + v.ncp;
    return v;
}

/* The first 64 bytes of a vector quantized per vector, given amax = max|x|: D = amax / 64, then zeros (S is
 * written when the codes are summed); returns 64 / amax, the codes' factor (0 for amax = 0). Every level's
 * rk_quantize_xr starts here. */
static inline float rk_xr_begin(void *buf, float amax) {
    const float d = amax / 64.0f;
    memset(buf, 0, 64);
    memcpy(buf, &d, 4);
    return amax > 0 ? 64.0f / amax : 0.0f;
}

/* Fills u = xq + 64 of a vector quantized per vector (the last step of rk_quantize_xr_scalar). */
static inline void rk_xr_fill_u(void *buf, long cols) {
    const long ncp = rk_ncp(cols);
    const int8_t *q = (const int8_t *)buf + 64;
    uint8_t *u = (uint8_t *)buf + 64 + ncp;
    for (long c = 0; c < ncp; c++) u[c] = (uint8_t)(q[c] + 64);
}

/* The single products' pieces (kernels.c) that the batched products (matmat.c) are made of: a level clamped to
 * those this CPU has; x quantized for a matrix of a quantized dtype; the products for x quantized per block (q8,
 * q4; q4i from row row0) and per vector (q8r from w on; q8ri from row row0); the first byte of row row0 of a
 * row-major matrix. */
int rk_clamp_level(int level);
void rk_quantize_xr_or_x(int level, int dtype, void *buf, const float *x, long cols);
void rk_q_xq_at(int level, int dtype, float *y, const void *w, const rk_xq *v, long row0, long rows, int acc);
void rk_q8r_xr_at(int level, int dtype, float *y, const void *w, const rk_xr *v, long row0, long rows, int acc);
const void *rk_row_at(int dtype, const void *w, long row0, long cols);

/* The order in which the SIMD kernels read the rows of a matrix (any order gives the same bits: a row's
 * arithmetic does not depend on which rows share a pass). Rows read together are far apart, so that each is a
 * stream the hardware prefetchers follow at the cache's full rate: adjacent rows, several streams inside one
 * 4 KiB page, are read from L2 about 1.5× slower on Zen 5 (BENCHMARKS.md).
 * f32 and f16, four rows per pass: pass i (0 ≤ i < q = rows / 4) reads rows i, q + i, 2q + i and 3q + i (the
 * first 4q rows once each; the rows past them one by one). */
static inline void rk_quarter_rows(long i, long q, long r[4]) {
    for (long k = 0; k < 4; k++) r[k] = k * q + i;
}

/* q4i at the AVX-512 level reads four groups of 16 rows per pass in the same order (pass i: groups i, q + i, 2q + i,
 * 3q + i of 4q whole groups), only while those groups fit in a core's L2 (1 MiB on the AVX-512 CPUs measured):
 * past it, from L3, reading several groups at once was 0–6 % slower than one at a time (Zen 5, hidden 1024 and
 * 2048). */
enum { RK_SPREAD_MAX_BYTES = 1 << 20 };

/* The batched q8ri product with more vectors than one pass of its kernel takes: the rows in blocks of this many
 * bytes of whole groups, all the passes over one block before the next (matmat.c, matmat_quantized). */
enum { RK_BATCH_BLOCK_BYTES = 256 << 10 };

/* q8ri at the AVX-512 level, rows of more than RK_PREFETCH_MIN_BYTES and at most RK_PREFETCH_MAX_BYTES (read from
 * L3): two of every four lines are prefetched RK_PREFETCH_AHEAD bytes ahead. Measured on Zen 5 (one core, the
 * kernel alone): 3–4 MB 10–19 % faster; 1–2 MB 0–10 % slower; 12.6 MB the same, 16.8 MB 2–12 % slower. */
enum { RK_PREFETCH_AHEAD = 4096, RK_PREFETCH_MIN_BYTES = 2 << 20, RK_PREFETCH_MAX_BYTES = 8 << 20 };

/* f32 at the AVX-512 level, matrices of more than RK_TURN_MIN_BYTES and at most RK_TURN_MAX_BYTES (more than L2,
 * read mostly from L3): each product reads its passes in the opposite order of the previous product of the same
 * matrix on this thread (rk_turn), so that the rows it reads first are the ones the previous product read last,
 * still in L2. Measured on Zen 5 (one core, the kernel alone, three runs): 1.3–2.1 MB 10–15 % faster, 3.1 MB
 * 13–16 %, 4.2 MB 9–12 %; 6.3 MB 0–4 %; 1.05 MB and 0.79 MB (within L2) the same and 10–20 % slower, 8.4 and
 * 12.6 MB 2–11 % slower. */
enum { RK_TURN_MIN_BYTES = 5 << 18, RK_TURN_MAX_BYTES = 5 << 20 };
/* 1 when this product of the matrix at w should read its rows backwards: alternates per matrix and thread,
 * for the last RK_TURN_SLOTS matrices a thread multiplied (one more starts forwards again). */
enum { RK_TURN_SLOTS = 4 };
int rk_turn(const void *w);

/* q8ri: bytes of one group of 16 rows with `cols` columns, and the row sums' correction for u = xq + 64. */
static inline long rk_q8ri_group_bytes(long cols) { return 128 + 16 * ((cols + 31) & ~31L); }

/* q8ri: the chunks of 4 columns a product reads: those that hold columns. Past them, up to the group's 32-column
 * padding, the codes are zero (against u = 64, or xq = 0), which adds nothing to a row's integer sum. */
static inline long rk_q8ri_chunks(long cols) { return (cols + 3) / 4; }

/* Writes the lanes v[i] of group g (rows 16g + i) that fall in [row0, end) to y, whose first element is
 * row row0 (added when acc). */
static inline void rk_put_group(float *y, const float *v, long g, long row0, long end, int acc) {
    const long lo = 16 * g < row0 ? row0 - 16 * g : 0, hi = 16 * g + 16 > end ? end - 16 * g : 16;
    for (long i = lo; i < hi; i++) {
        float *p = y + (16 * g + i - row0);
        *p = acc ? *p + v[i] : v[i];
    }
}

static inline int32_t rk_load_i32(const void *p) { int32_t v; memcpy(&v, p, 4); return v; }

static inline float rk_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | (exp << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float rk_load_f32(const void *p) { float f; memcpy(&f, p, 4); return f; }

/* Kernels of each level (same contracts as the public functions). */
void rk_f32_scalar(float *y, const float *w, const float *x, long rows, long cols, int acc);
void rk_f16_scalar(float *y, const uint16_t *w, const float *x, long rows, long cols, int acc);
void rk_q8_scalar(float *y, const void *w, const rk_xq *x, long rows, int acc);
void rk_q4_scalar(float *y, const void *w, const rk_xq *x, long rows, int acc);
void rk_quantize_scalar(void *buf, const float *x, long cols);
void rk_permute_xq(unsigned char *buf, long cols);
void rk_q8r_scalar(float *y, const void *w, const rk_xr *x, long rows, int acc);
void rk_q8ri_scalar(float *y, const void *w, const rk_xr *x, long row0, long rows, int acc);
void rk_q4i_scalar(float *y, const void *w, const rk_xq *x, long row0, long rows, int acc);
void rk_quantize_xr_scalar(void *buf, const float *x, long cols);

#if defined(__x86_64__) || defined(__i386__)
#define RK_X86 1
void rk_f32_avx2(float *y, const float *w, const float *x, long rows, long cols, int acc);
void rk_f32_columns_avx2(float *y, const float *p, const float *w, const float *x, long rows, long cols, int acc);
void rk_f16_avx2(float *y, const uint16_t *w, const float *x, long rows, long cols, int acc);
void rk_q8_avx2(float *y, const void *w, const rk_xq *x, long rows, int acc);
void rk_q4_avx2(float *y, const void *w, const rk_xq *x, long rows, int acc);
void rk_quantize_avx2(void *buf, const float *x, long cols);
void rk_q8r_avx2(float *y, const void *w, const rk_xr *x, long rows, int acc);
void rk_q8ri_avx2(float *y, const void *w, const rk_xr *x, long row0, long rows, int acc);
void rk_q4i_avx2(float *y, const void *w, const rk_xq *x, long row0, long rows, int acc);
void rk_q8ri_batch_avx2(float *y, long ldy, const void *w, const rk_xr *x, int n, long row0, long rows);
void rk_quantize_xr_avx2(void *buf, const float *x, long cols);
void rk_activate_avx2(int kind, float *x, long n);
void rk_activate_avx512(int kind, float *x, long n);
void rk_gru_gates_avx2(float *h, const float *gu, const float *bh, const float *gx, long H, int ract, int act);
void rk_gru_gates_avx512(float *h, const float *gu, const float *bh, const float *gx, long H, int ract, int act);
void rk_lstm_gates_avx2(float *h, float *c, const float *gu, const float *gx, const float *p, long H, int ract,
                        int act);
void rk_lstm_gates_avx512(float *h, float *c, const float *gu, const float *gx, const float *p, long H, int ract,
                          int act);
void rk_mm_f32_avx2(float *y, const float *w, const float *x, long n, long rows, long cols);
void rk_f32_avx512(float *y, const float *w, const float *x, long rows, long cols, int acc);
void rk_f32_batch_avx512(float *y, long ldy, const float *w, const float *const *x, int n, long rows, long cols);
void rk_f32_columns_avx512(float *y, const float *p, const float *x, long rows, long cols, int acc);
void rk_f16_avx512(float *y, const uint16_t *w, const float *x, long rows, long cols, int acc);
void rk_q8_avx512(float *y, const void *w, const rk_xq *x, long rows, int acc);
void rk_q4_avx512(float *y, const void *w, const rk_xq *x, long rows, int acc);
void rk_q8r_avx512(float *y, const void *w, const rk_xr *x, long rows, int acc);
void rk_q8ri_avx512(float *y, const void *w, const rk_xr *x, long row0, long rows, int acc);
void rk_quantize_xr_avx512(void *buf, const float *x, long cols);
void rk_quantize_avx512(void *buf, const float *x, long cols);
void rk_q4i_avx512(float *y, const void *w, const rk_xq *x, long row0, long rows, int acc);
void rk_q8ri_batch_avx512(float *y, long ldy, const void *w, const rk_xr *x, int n, long row0, long rows);
/* AMX batches (amx.c): from this many vectors on, tiles (16 vectors each) beat AVX-512 groups of 8. */
#define RK_AMX_MINIMUM 4
void rk_q8ri_batch_amx(float *y, long ldy, const void *w, const unsigned char *xs, long slot, long n, long row0,
                       long rows, long cols);
#endif

#ifdef __aarch64__
int rk_neon_dotprod(void);   /* 1 when the CPU has sdot (ARMv8.2 dotprod): the int8 kernels use it */
void rk_f32_neon(float *y, const float *w, const float *x, long rows, long cols, int acc);
void rk_f16_neon(float *y, const uint16_t *w, const float *x, long rows, long cols, int acc);
void rk_q8_neon(float *y, const void *w, const rk_xq *x, long rows, int acc);
void rk_q4_neon(float *y, const void *w, const rk_xq *x, long rows, int acc);
void rk_quantize_neon(void *buf, const float *x, long cols);
void rk_q8r_neon(float *y, const void *w, const rk_xr *x, long rows, int acc);
void rk_q8ri_neon(float *y, const void *w, const rk_xr *x, long row0, long rows, int acc);
void rk_q4i_neon(float *y, const void *w, const rk_xq *x, long row0, long rows, int acc);
void rk_quantize_xr_neon(void *buf, const float *x, long cols);
void rk_gru_gates_neon(float *h, const float *gu, const float *bh, const float *gx, long H, int ract, int act);
void rk_lstm_gates_neon(float *h, float *c, const float *gu, const float *gx, const float *p, long H, int ract,
                        int act);
void rk_activate_neon(int kind, float *x, long n);
#endif

#endif
