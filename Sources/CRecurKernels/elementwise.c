/* The element-wise work of a step: the gates' arithmetic and their activation functions (recur_kernels.h). */
#include "internal.h"
#include <math.h>

/* ---- element-wise gate arithmetic ------------------------------------------------------------------ */

/* Each expression rounded as written: contraction into fused multiply-adds is off here. */
#if defined(__clang__)
#pragma clang fp contract(off)
#define RK_EXACT
#elif defined(__GNUC__)
#define RK_EXACT __attribute__((optimize("fp-contract=off")))
#else
#define RK_EXACT
#endif

RK_EXACT void rk_add(float *restrict y, const float *restrict x, long n) {
    for (long i = 0; i < n; i++) y[i] = y[i] + x[i];
}
RK_EXACT void rk_add_mul(float *restrict y, const float *restrict a, const float *restrict b, long n) {
    for (long i = 0; i < n; i++) y[i] = y[i] + a[i] * b[i];
}
RK_EXACT void rk_mul(float *restrict y, const float *restrict a, const float *restrict b, long n) {
    for (long i = 0; i < n; i++) y[i] = a[i] * b[i];
}
RK_EXACT void rk_gru_candidate(float *restrict n, const float *restrict gx, const float *restrict r, long count) {
    for (long i = 0; i < count; i++) n[i] = gx[i] + r[i] * n[i];
}
RK_EXACT void rk_gru_update(float *restrict h, const float *restrict z, const float *restrict n, long count) {
    for (long i = 0; i < count; i++) h[i] = (1.0f - z[i]) * n[i] + z[i] * h[i];
}
RK_EXACT void rk_lstm_cell(float *restrict c, const float *restrict in, const float *restrict f, const float *restrict g,
                           long count) {
    for (long i = 0; i < count; i++) c[i] = f[i] * c[i] + in[i] * g[i];
}
#if defined(__clang__)
#pragma clang fp contract(on)
#endif

/* ---- activations -------------------------------------------------------------------------------- */

static void activate_scalar(int kind, float *x, long n) {
    switch (kind) {
    case 1: for (long i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0; break;
    case 2: for (long i = 0; i < n; i++) x[i] = tanhf(x[i]); break;
    case 3: for (long i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i])); break;
    case 4: for (long i = 0; i < n; i++) x[i] = fminf(fmaxf(0.2f * x[i] + 0.5f, 0.0f), 1.0f); break;
    case 5: for (long i = 0; i < n; i++) x[i] = fminf(fmaxf(x[i] / 6.0f + 0.5f, 0.0f), 1.0f); break;
    default: break;
    }
}

void rk_activate(int kind, float *x, long n) {
#ifdef RK_X86
    if (rk_level() >= RK_AVX2 && (kind == 2 || kind == 3)) {
        if (rk_level() >= RK_AVX512) rk_activate_avx512(kind, x, n); else rk_activate_avx2(kind, x, n);
        return;
    }
#endif
#ifdef __aarch64__
    if (rk_level() >= RK_NEON && (kind == 2 || kind == 3)) {
        rk_activate_neon(kind, x, n);
        return;
    }
#endif
    activate_scalar(kind, x, n);
}
