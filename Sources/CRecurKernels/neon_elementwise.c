/* NEON element-wise kernels (AArch64): tanh and sigmoid, and the gates of a GRU or LSTM step in one pass
 * (rk_activate, rk_gru_gates, rk_lstm_gates in recur_kernels.h; elementwise.c picks them). */
#include "internal.h"
#ifdef __aarch64__
#include <arm_neon.h>

/* ---- tanh and sigmoid: the AVX2 kernels' exp, four lanes ------------------------------------------ */

/* Each function below takes NV vectors and applies every stage to all of them before the next stage, so that
 * NV independent dependency chains are in flight (one vector's exp is a chain of ~20 dependent operations).
 * NV is a constant where they are inlined (at most 4: the arrays' size). Lane for lane the operations are
 * those of one vector: the same bits for any NV. */
#define INLINE __attribute__((always_inline)) RK_EXACT static inline

/* e^x for x in [−88.38, 88.38] (clamped; NaN stays NaN): Cephes' expf, n = round(x·log2 e),
 * r = x − n·ln 2 in two parts, a degree-6 polynomial, then 2^n through the exponent bits. */
INLINE void exp4(float32x4_t *x, const int NV) {
    float32x4_t n[4], r[4], p[4];
    RK_EACH x[u] = vminq_f32(vmaxq_f32(x[u], vdupq_n_f32(-88.3762626647949f)), vdupq_n_f32(88.3762626647949f));
    RK_EACH n[u] = vrndnq_f32(vmulq_f32(x[u], vdupq_n_f32(1.44269504088896341f)));
    RK_EACH r[u] = vfmsq_f32(x[u], n[u], vdupq_n_f32(0.693359375f));
    RK_EACH r[u] = vfmsq_f32(r[u], n[u], vdupq_n_f32(-2.12194440e-4f));
    RK_EACH p[u] = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), vdupq_n_f32(1.9875691500e-4f), r[u]);
    RK_EACH p[u] = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p[u], r[u]);
    RK_EACH p[u] = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p[u], r[u]);
    RK_EACH p[u] = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p[u], r[u]);
    RK_EACH p[u] = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p[u], r[u]);
    RK_EACH p[u] = vfmaq_f32(vaddq_f32(r[u], vdupq_n_f32(1.0f)), p[u], vmulq_f32(r[u], r[u]));
    /* 2^n: n ∈ [−127, 128]; split it in two halves so that neither exponent overflows */
    RK_EACH {
        const int32x4_t ni = vcvtq_s32_f32(n[u]), h1 = vshrq_n_s32(ni, 1), h2 = vsubq_s32(ni, h1);
        const int32x4_t bias = vdupq_n_s32(127);
        const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(h1, bias), 23));
        const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(h2, bias), 23));
        x[u] = vmulq_f32(vmulq_f32(p[u], s1), s2);
    }
}

/* sigmoid(x) = 1 / (1 + e^−x);  tanh(x) = 1 − 2 / (e^2x + 1) */
INLINE void act4(const int kind, float32x4_t *v, const int NV) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    if (kind == RK_SIGMOID) {
        RK_EACH v[u] = vnegq_f32(v[u]);
        exp4(v, NV);
        RK_EACH v[u] = vdivq_f32(one, vaddq_f32(one, v[u]));
    } else {
        RK_EACH v[u] = vaddq_f32(v[u], v[u]);
        exp4(v, NV);
        RK_EACH v[u] = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(v[u], one)));
    }
}

/* kind RK_TANH or RK_SIGMOID (rk_activate). */
void RK_EXACT rk_activate_neon(int kind, float *x, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        float32x4_t v[4];
        for (int u = 0; u < 4; u++) v[u] = vld1q_f32(x + i + 4 * u);
        act4(kind, v, 4);
        for (int u = 0; u < 4; u++) vst1q_f32(x + i + 4 * u, v[u]);
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        act4(kind, &v, 1);
        vst1q_f32(x + i, v);
    }
    if (i < n) {
        float t[4] = {0};
        memcpy(t, x + i, (size_t)(n - i) * 4);
        float32x4_t v = vld1q_f32(t);
        act4(kind, &v, 1);
        vst1q_f32(t, v);
        memcpy(x + i, t, (size_t)(n - i) * 4);
    }
}

/* ---- the gates of a step in one pass (rk_gru_gates, rk_lstm_gates): the element-wise kernels' arithmetic
 * and act4, lane for lane, so the same bits as the separate passes; NV blocks of 4 units at a time ------- */

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define LD(p) vld1q_f32((p) + 4 * u)

/* Units [0, 4·NV) of gates S floats apart. */
INLINE void gru4(float *h, const float *gu, const float *bh, const float *gx, long S, const int NV, const int ract,
                 const int act) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t r[4], z[4], n[4], un[4];
    RK_EACH r[u] = LD(gu), z[u] = LD(gu + S), un[u] = LD(gu + 2 * S);
    if (bh) RK_EACH r[u] = vaddq_f32(r[u], LD(bh)), z[u] = vaddq_f32(z[u], LD(bh + S)), un[u] = vaddq_f32(un[u], LD(bh + 2 * S));
    RK_EACH r[u] = vaddq_f32(r[u], LD(gx)), z[u] = vaddq_f32(z[u], LD(gx + S));
    act4(ract, r, NV);
    act4(ract, z, NV);
    RK_EACH n[u] = vaddq_f32(LD(gx + 2 * S), vmulq_f32(r[u], un[u]));
    act4(act, n, NV);
    RK_EACH vst1q_f32(h + 4 * u, vaddq_f32(vmulq_f32(vsubq_f32(one, z[u]), n[u]), vmulq_f32(z[u], LD(h))));
}

INLINE void lstm4(float *h, float *c, const float *gu, const float *gx, const float *p, long S, const int NV,
                  const int ract, const int act) {
    float32x4_t gi[4], gf[4], gg[4], go[4], cv[4];
    RK_EACH gi[u] = vaddq_f32(LD(gu), LD(gx)), gf[u] = vaddq_f32(LD(gu + S), LD(gx + S));
    RK_EACH gg[u] = vaddq_f32(LD(gu + 2 * S), LD(gx + 2 * S)), go[u] = vaddq_f32(LD(gu + 3 * S), LD(gx + 3 * S));
    RK_EACH cv[u] = LD(c);
    if (p) RK_EACH gi[u] = vaddq_f32(gi[u], vmulq_f32(LD(p), cv[u])), gf[u] = vaddq_f32(gf[u], vmulq_f32(LD(p + S), cv[u]));
    act4(ract, gf, NV);
    act4(ract, gi, NV);
    act4(act, gg, NV);
    RK_EACH cv[u] = vaddq_f32(vmulq_f32(gf[u], cv[u]), vmulq_f32(gi[u], gg[u]));
    if (p) RK_EACH go[u] = vaddq_f32(go[u], vmulq_f32(LD(p + 2 * S), cv[u]));
    RK_EACH vst1q_f32(c + 4 * u, cv[u]);
    act4(ract, go, NV);
    act4(act, cv, NV);
    RK_EACH vst1q_f32(h + 4 * u, vmulq_f32(go[u], cv[u]));
}

/* The last t < 4 elements of k gate vectors H apart, copied to k zero-padded vectors 4 apart. */
static void tail4(float *dst, const float *src, long H, long t, int k) {
    memset(dst, 0, sizeof(float) * 4 * (size_t)k);
    for (int g = 0; g < k; g++) memcpy(dst + 4 * g, src + g * H, sizeof(float) * (size_t)t);
}

INLINE void gru_gates(float *h, const float *gu, const float *bh, const float *gx, long H, const int ract, const int act) {
    long j = 0;
    for (; j + 16 <= H; j += 16) gru4(h + j, gu + j, bh ? bh + j : NULL, gx + j, H, 4, ract, act);
    for (; j + 4 <= H; j += 4) gru4(h + j, gu + j, bh ? bh + j : NULL, gx + j, H, 1, ract, act);
    if (j < H) {
        const long t = H - j;
        float u[12], b[12], x[12], hh[4];
        tail4(u, gu + j, H, t, 3), tail4(x, gx + j, H, t, 3), tail4(hh, h + j, H, t, 1);
        if (bh) tail4(b, bh + j, H, t, 3);
        gru4(hh, u, bh ? b : NULL, x, 4, 1, ract, act);
        memcpy(h + j, hh, sizeof(float) * (size_t)t);
    }
}

INLINE void lstm_gates(float *h, float *c, const float *gu, const float *gx, const float *p, long H, const int ract,
                       const int act) {
    long j = 0;
    for (; j + 16 <= H; j += 16) lstm4(h + j, c + j, gu + j, gx + j, p ? p + j : NULL, H, 4, ract, act);
    for (; j + 4 <= H; j += 4) lstm4(h + j, c + j, gu + j, gx + j, p ? p + j : NULL, H, 1, ract, act);
    if (j < H) {
        const long t = H - j;
        float u[16], x[16], q[12], hh[4], cc[4];
        tail4(u, gu + j, H, t, 4), tail4(x, gx + j, H, t, 4), tail4(hh, h + j, H, t, 1), tail4(cc, c + j, H, t, 1);
        if (p) tail4(q, p + j, H, t, 3);
        lstm4(hh, cc, u, x, p ? q : NULL, 4, 1, ract, act);
        memcpy(h + j, hh, sizeof(float) * (size_t)t), memcpy(c + j, cc, sizeof(float) * (size_t)t);
    }
}

void RK_EXACT rk_gru_gates_neon(float *h, const float *gu, const float *bh, const float *gx, long H, int ract,
                                int act) {
    RK_BY_KINDS(gru_gates, ract, act, h, gu, bh, gx, H);
}

void RK_EXACT rk_lstm_gates_neon(float *h, float *c, const float *gu, const float *gx, const float *p, long H,
                                 int ract, int act) {
    RK_BY_KINDS(lstm_gates, ract, act, h, c, gu, gx, p, H);
}

#undef LD
#undef INLINE
#if defined(__clang__)
#pragma clang fp contract(on)
#endif

#endif
