/* The element-wise work of a step: the gates' arithmetic and their activation functions (recur_kernels.h). */
#include "internal.h"
#include <math.h>

/* ---- element-wise gate arithmetic ------------------------------------------------------------------ */

/* Each expression rounded as written: contraction into fused multiply-adds is off here (RK_EXACT). */
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

/* The loops, written once and compiled for each instruction set the dispatch below picks from (the
 * compiler vectorizes them: 4, 8 or 16 lanes). Every lane computes the expression with each product and
 * sum rounded on its own, so every variant gives the same bits. */
#define RK_ELEMENTWISE(ATTR, S)                                                                               \
    ATTR static void add_##S(float *restrict y, const float *restrict x, long n) {                           \
        for (long i = 0; i < n; i++) y[i] = y[i] + x[i];                                                      \
    }                                                                                                         \
    ATTR static void add_mul_##S(float *restrict y, const float *restrict a, const float *restrict b, long n) { \
        for (long i = 0; i < n; i++) y[i] = y[i] + a[i] * b[i];                                               \
    }                                                                                                         \
    ATTR static void mul_##S(float *restrict y, const float *restrict a, const float *restrict b, long n) {  \
        for (long i = 0; i < n; i++) y[i] = a[i] * b[i];                                                      \
    }                                                                                                         \
    ATTR static void gru_candidate_##S(float *restrict n, const float *restrict gx, const float *restrict r,  \
                                       long count) {                                                          \
        for (long i = 0; i < count; i++) n[i] = gx[i] + r[i] * n[i];                                          \
    }                                                                                                         \
    ATTR static void gru_update_##S(float *restrict h, const float *restrict z, const float *restrict n,      \
                                    long count) {                                                             \
        for (long i = 0; i < count; i++) h[i] = (1.0f - z[i]) * n[i] + z[i] * h[i];                           \
    }                                                                                                         \
    ATTR static void lstm_cell_##S(float *restrict c, const float *restrict in, const float *restrict f,     \
                                   const float *restrict g, long count) {                                     \
        for (long i = 0; i < count; i++) c[i] = f[i] * c[i] + in[i] * g[i];                                   \
    }

RK_ELEMENTWISE(RK_EXACT, plain)
#ifdef RK_X86
RK_ELEMENTWISE(RK_EXACT __attribute__((target("avx2"))), avx2)
RK_ELEMENTWISE(RK_EXACT __attribute__((target("avx512f"))), avx512)
#define PICK(f) ({ const int l_ = rk_level(); l_ >= RK_AVX512 ? f##_avx512 : l_ >= RK_AVX2 ? f##_avx2 : f##_plain; })
#else
#define PICK(f) f##_plain
#endif

void rk_add(float *y, const float *x, long n) { PICK(add)(y, x, n); }
void rk_add_mul(float *y, const float *a, const float *b, long n) { PICK(add_mul)(y, a, b, n); }
void rk_mul(float *y, const float *a, const float *b, long n) { PICK(mul)(y, a, b, n); }
void rk_gru_candidate(float *n, const float *gx, const float *r, long count) { PICK(gru_candidate)(n, gx, r, count); }
void rk_gru_update(float *h, const float *z, const float *n, long count) { PICK(gru_update)(h, z, n, count); }
void rk_lstm_cell(float *c, const float *in, const float *f, const float *g, long count) {
    PICK(lstm_cell)(c, in, f, g, count);
}
#if defined(__clang__)
#pragma clang fp contract(on)
#endif

/* ---- the gates of a step ----------------------------------------------------------------------------- */

/* One pass with the activations inline where the level has them (sigmoid and tanh with AVX2, AVX-512, NEON),
 * else the separate passes; both compute each element with the same operations, so the same bits. */
typedef struct {
    void (*gru)(float *, const float *, const float *, const float *, long, int, int);
    void (*lstm)(float *, float *, const float *, const float *, const float *, long, int, int);
} one_pass;

static int vectorized(int kind) { return kind == RK_TANH || kind == RK_SIGMOID; }

/* The level's one-pass loops for these activations, or NULLs (the separate passes). */
static one_pass one_pass_for(int ract, int act) {
    const one_pass none = {NULL, NULL};
    if (!vectorized(ract) || !vectorized(act)) return none;
#ifdef RK_X86
    if (rk_level() >= RK_AVX512) return (one_pass){rk_gru_gates_avx512, rk_lstm_gates_avx512};
    if (rk_level() >= RK_AVX2) return (one_pass){rk_gru_gates_avx2, rk_lstm_gates_avx2};
#elif defined(__aarch64__)
    if (rk_level() >= RK_NEON) return (one_pass){rk_gru_gates_neon, rk_lstm_gates_neon};
#endif
    return none;
}

void rk_gru_gates(float *h, float *gu, const float *bh, const float *gx, long H, int ract, int act) {
    const one_pass one = one_pass_for(ract, act);
    if (one.gru) {
        one.gru(h, gu, bh, gx, H, ract, act);
        return;
    }
    if (bh) rk_add(gu, bh, 3 * H);
    rk_add(gu, gx, 2 * H);
    rk_activate(ract, gu, 2 * H);                       /* r = gu[0, H), z = gu[H, 2H) */
    rk_gru_candidate(gu + 2 * H, gx + 2 * H, gu, H);    /* n */
    rk_activate(act, gu + 2 * H, H);
    rk_gru_update(h, gu + H, gu + 2 * H, H);
}

void rk_lstm_gates(float *h, float *c, float *gu, const float *gx, const float *p, long H, int ract, int act,
                   float *tmp) {
    const one_pass one = one_pass_for(ract, act);
    if (one.lstm) {
        one.lstm(h, c, gu, gx, p, H, ract, act);
        return;
    }
    rk_add(gu, gx, 4 * H);
    if (p) {
        rk_add_mul(gu, p, c, H);                        /* i += p_i ⊙ c */
        rk_add_mul(gu + H, p + H, c, H);                /* f += p_f ⊙ c */
    }
    rk_activate(ract, gu, 2 * H);                       /* i, f */
    rk_activate(act, gu + 2 * H, H);                    /* g */
    rk_lstm_cell(c, gu, gu + H, gu + 2 * H, H);         /* c = f ⊙ c + i ⊙ g */
    if (p) rk_add_mul(gu + 3 * H, p + 2 * H, c, H);     /* o += p_o ⊙ c */
    rk_activate(ract, gu + 3 * H, H);                   /* o */
    memcpy(tmp, c, sizeof(float) * (size_t)H);
    rk_activate(act, tmp, H);
    rk_mul(h, gu + 3 * H, tmp, H);                      /* h = o ⊙ act(c) */
}

/* ---- activations -------------------------------------------------------------------------------- */

static void activate_scalar(int kind, float *x, long n) {
    switch (kind) {
    case RK_RELU: for (long i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0; break;
    case RK_TANH: for (long i = 0; i < n; i++) x[i] = tanhf(x[i]); break;
    case RK_SIGMOID: for (long i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i])); break;
    case RK_HARD_SIGMOID_KERAS2: for (long i = 0; i < n; i++) x[i] = fminf(fmaxf(0.2f * x[i] + 0.5f, 0.0f), 1.0f); break;
    case RK_HARD_SIGMOID_KERAS3: for (long i = 0; i < n; i++) x[i] = fminf(fmaxf(x[i] / 6.0f + 0.5f, 0.0f), 1.0f); break;
    default: break;
    }
}

void rk_activate(int kind, float *x, long n) {
#ifdef RK_X86
    if (rk_level() >= RK_AVX2 && vectorized(kind)) {
        if (rk_level() >= RK_AVX512) rk_activate_avx512(kind, x, n); else rk_activate_avx2(kind, x, n);
        return;
    }
#endif
#ifdef __aarch64__
    if (rk_level() >= RK_NEON && vectorized(kind)) {
        rk_activate_neon(kind, x, n);
        return;
    }
#endif
    activate_scalar(kind, x, n);
}
