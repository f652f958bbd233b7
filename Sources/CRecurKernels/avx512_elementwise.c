/* AVX-512 element-wise kernels (x86-64): tanh and sigmoid, and the gates of a GRU or LSTM step in one pass
 * (rk_activate, rk_gru_gates, rk_lstm_gates in recur_kernels.h; elementwise.c picks them). */
#include "avx512.h"
#if defined(RK_X86) || defined(RK_SIMDE_CHECK)

/* ---- tanh and sigmoid: rk_activate_avx2's arithmetic, 16 lanes (the same bits) --------------------- */

/* Each function below takes NV vectors and applies every stage to all of them before the next stage, so that
 * NV independent dependency chains are in flight (one vector's exp is a chain of ~15 dependent operations;
 * the out-of-order window holds about one such chain when they come one after another; RK_EACH). NV is a
 * constant where they are inlined (at most 4: the arrays' size). Lane for lane the operations are those of one
 * vector: the same bits for any NV. */
#define INLINE __attribute__((always_inline)) RK_EXACT AVX512 static inline

/* e^x: exp8's arithmetic (avx2_elementwise.c): n = round(x·log2 e), r = x − n·ln 2 in two parts, Cephes'
 * polynomial for e^r, then × 2^n rounded once by vscalefps (as exp8's two exact halves 2^⌊n/2⌋ · 2^⌈n/2⌉ round
 * it; checked for every float x). */
INLINE void exp16(__m512 *x, const int NV) {
    __m512 n[4], r[4], p[4];
    RK_EACH x[u] = _mm512_min_ps(_mm512_max_ps(x[u], _mm512_set1_ps(-88.3762626647949f)), _mm512_set1_ps(88.3762626647949f));
    RK_EACH n[u] = _mm512_roundscale_ps(_mm512_mul_ps(x[u], _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    RK_EACH r[u] = _mm512_fnmadd_ps(n[u], _mm512_set1_ps(0.693359375f), x[u]);
    RK_EACH r[u] = _mm512_fnmadd_ps(n[u], _mm512_set1_ps(-2.12194440e-4f), r[u]);
    RK_EACH p[u] = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), r[u], _mm512_set1_ps(1.3981999507e-3f));
    RK_EACH p[u] = _mm512_fmadd_ps(p[u], r[u], _mm512_set1_ps(8.3334519073e-3f));
    RK_EACH p[u] = _mm512_fmadd_ps(p[u], r[u], _mm512_set1_ps(4.1665795894e-2f));
    RK_EACH p[u] = _mm512_fmadd_ps(p[u], r[u], _mm512_set1_ps(1.6666665459e-1f));
    RK_EACH p[u] = _mm512_fmadd_ps(p[u], r[u], _mm512_set1_ps(5.0000001201e-1f));
    RK_EACH p[u] = _mm512_fmadd_ps(p[u], _mm512_mul_ps(r[u], r[u]), _mm512_add_ps(r[u], _mm512_set1_ps(1.0f)));
    RK_EACH x[u] = _mm512_scalef_ps(p[u], n[u]);
}

/* sigmoid(v) = 1 / (1 + e^−v); tanh(v) = 1 − 2 / (e^2v + 1). */
INLINE void act16(const int kind, __m512 *v, const int NV) {
    const __m512 one = _mm512_set1_ps(1.0f);
    if (kind == RK_SIGMOID) {
        RK_EACH v[u] = _mm512_sub_ps(_mm512_setzero_ps(), v[u]);
        exp16(v, NV);
        RK_EACH v[u] = _mm512_div_ps(one, _mm512_add_ps(one, v[u]));
    } else {
        RK_EACH v[u] = _mm512_add_ps(v[u], v[u]);
        exp16(v, NV);
        RK_EACH v[u] = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(v[u], one)));
    }
}

void RK_EXACT AVX512 rk_activate_avx512(int kind, float *x, long n) {
    long i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 v[4];
        for (int u = 0; u < 4; u++) v[u] = _mm512_loadu_ps(x + i + 16 * u);
        act16(kind, v, 4);
        for (int u = 0; u < 4; u++) _mm512_storeu_ps(x + i + 16 * u, v[u]);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = lanes16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        act16(kind, &v, 1);
        _mm512_mask_storeu_ps(x + i, m, v);
    }
}

/* ---- the gates of a step in one pass (rk_gru_gates, rk_lstm_gates): the element-wise kernels' arithmetic
 * and act16, lane for lane, so the same bits as the separate passes; NV blocks of 16 units at a time ------ */

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define LD(p) _mm512_maskz_loadu_ps(m, (p) + 16 * u)

/* Units [j, j + 16·NV) (the lanes of m in the last block). */
INLINE void gru_units(float *h, const float *gu, const float *bh, const float *gx, long H, long j, __mmask16 m,
                      const int NV, const int ract, const int act) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 r[4], z[4], n[4], un[4];
    gu += j, gx += j, h += j;
    RK_EACH r[u] = LD(gu), z[u] = LD(gu + H), un[u] = LD(gu + 2 * H);
    if (bh) {
        bh += j;
        RK_EACH r[u] = _mm512_add_ps(r[u], LD(bh)), z[u] = _mm512_add_ps(z[u], LD(bh + H)), un[u] = _mm512_add_ps(un[u], LD(bh + 2 * H));
    }
    RK_EACH r[u] = _mm512_add_ps(r[u], LD(gx)), z[u] = _mm512_add_ps(z[u], LD(gx + H));
    act16(ract, r, NV);
    act16(ract, z, NV);
    RK_EACH n[u] = _mm512_add_ps(LD(gx + 2 * H), _mm512_mul_ps(r[u], un[u]));
    act16(act, n, NV);
    RK_EACH _mm512_mask_storeu_ps(h + 16 * u, m, _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(one, z[u]), n[u]),
                                                          _mm512_mul_ps(z[u], LD(h))));
}

INLINE void gru_gates(float *h, const float *gu, const float *bh, const float *gx, long H, const int ract, const int act) {
    long j = 0;
    for (; j + 64 <= H; j += 64) gru_units(h, gu, bh, gx, H, j, 0xFFFF, 4, ract, act);
    for (; j < H; j += 16) gru_units(h, gu, bh, gx, H, j, lanes16(H - j), 1, ract, act);
}

void RK_EXACT AVX512 rk_gru_gates_avx512(float *h, const float *gu, const float *bh, const float *gx, long H,
                                         int ract, int act) {
    RK_BY_KINDS(gru_gates, ract, act, h, gu, bh, gx, H);
}

INLINE void lstm_units(float *h, float *c, const float *gu, const float *gx, const float *p, long H, long j,
                       __mmask16 m, const int NV, const int ract, const int act) {
    __m512 gi[4], gf[4], gg[4], go[4], cv[4];
    gu += j, gx += j, h += j, c += j;
    RK_EACH gi[u] = _mm512_add_ps(LD(gu), LD(gx)), gf[u] = _mm512_add_ps(LD(gu + H), LD(gx + H));
    RK_EACH gg[u] = _mm512_add_ps(LD(gu + 2 * H), LD(gx + 2 * H)), go[u] = _mm512_add_ps(LD(gu + 3 * H), LD(gx + 3 * H));
    RK_EACH cv[u] = LD(c);
    if (p) {
        p += j;
        RK_EACH gi[u] = _mm512_add_ps(gi[u], _mm512_mul_ps(LD(p), cv[u])), gf[u] = _mm512_add_ps(gf[u], _mm512_mul_ps(LD(p + H), cv[u]));
    }
    act16(ract, gf, NV);
    act16(ract, gi, NV);
    act16(act, gg, NV);
    RK_EACH cv[u] = _mm512_add_ps(_mm512_mul_ps(gf[u], cv[u]), _mm512_mul_ps(gi[u], gg[u]));
    if (p) RK_EACH go[u] = _mm512_add_ps(go[u], _mm512_mul_ps(LD(p + 2 * H), cv[u]));
    RK_EACH _mm512_mask_storeu_ps(c + 16 * u, m, cv[u]);
    act16(ract, go, NV);
    act16(act, cv, NV);
    RK_EACH _mm512_mask_storeu_ps(h + 16 * u, m, _mm512_mul_ps(go[u], cv[u]));
}

INLINE void lstm_gates(float *h, float *c, const float *gu, const float *gx, const float *p, long H, const int ract,
                       const int act) {
    long j = 0;
    for (; j + 64 <= H; j += 64) lstm_units(h, c, gu, gx, p, H, j, 0xFFFF, 4, ract, act);
    for (; j < H; j += 16) lstm_units(h, c, gu, gx, p, H, j, lanes16(H - j), 1, ract, act);
}

void RK_EXACT AVX512 rk_lstm_gates_avx512(float *h, float *c, const float *gu, const float *gx, const float *p,
                                          long H, int ract, int act) {
    RK_BY_KINDS(lstm_gates, ract, act, h, c, gu, gx, p, H);
}

#undef LD
#undef INLINE
#if defined(__clang__)
#pragma clang fp contract(on)
#endif

#endif
