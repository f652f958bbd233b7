/* AVX2 + FMA element-wise kernels (x86-64): tanh and sigmoid, and the gates of a GRU or LSTM step in one pass
 * (rk_activate, rk_gru_gates, rk_lstm_gates in recur_kernels.h; elementwise.c picks them). */
#include "avx2.h"
#ifdef RK_X86

/* ---- tanh and sigmoid ------------------------------------------------------------------------------ */

/* Each function below takes NV vectors and applies every stage to all of them before the next stage, so that
 * NV independent dependency chains are in flight (one vector's exp is a chain of ~20 dependent operations;
 * the out-of-order window holds about one such chain when they come one after another). NV is a constant
 * where they are inlined (at most 4: the arrays' size). Lane for lane the operations are those of one
 * vector: the same bits for any NV. */
#define INLINE __attribute__((always_inline)) RK_EXACT AVX2 static inline

/* e^x for x in [−88.38, 88.38] (clamped): Cephes' expf, n = round(x·log2 e), r = x − n·ln 2 in two
 * parts, a degree-6 polynomial, then 2^n through the exponent bits. */
INLINE void exp8(__m256 *x, const int NV) {
    __m256 n[4], r[4], p[4];
    RK_EACH x[u] = _mm256_min_ps(_mm256_max_ps(x[u], _mm256_set1_ps(-88.3762626647949f)), _mm256_set1_ps(88.3762626647949f));
    RK_EACH n[u] = _mm256_round_ps(_mm256_mul_ps(x[u], _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    RK_EACH r[u] = _mm256_fnmadd_ps(n[u], _mm256_set1_ps(0.693359375f), x[u]);
    RK_EACH r[u] = _mm256_fnmadd_ps(n[u], _mm256_set1_ps(-2.12194440e-4f), r[u]);
    RK_EACH p[u] = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r[u], _mm256_set1_ps(1.3981999507e-3f));
    RK_EACH p[u] = _mm256_fmadd_ps(p[u], r[u], _mm256_set1_ps(8.3334519073e-3f));
    RK_EACH p[u] = _mm256_fmadd_ps(p[u], r[u], _mm256_set1_ps(4.1665795894e-2f));
    RK_EACH p[u] = _mm256_fmadd_ps(p[u], r[u], _mm256_set1_ps(1.6666665459e-1f));
    RK_EACH p[u] = _mm256_fmadd_ps(p[u], r[u], _mm256_set1_ps(5.0000001201e-1f));
    RK_EACH p[u] = _mm256_fmadd_ps(p[u], _mm256_mul_ps(r[u], r[u]), _mm256_add_ps(r[u], _mm256_set1_ps(1.0f)));
    /* 2^n: n ∈ [−127, 128]; split it in two halves so that neither exponent overflows */
    RK_EACH {
        const __m256i ni = _mm256_cvtps_epi32(n[u]);
        const __m256i h1 = _mm256_srai_epi32(ni, 1), h2 = _mm256_sub_epi32(ni, h1);
        const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h1, _mm256_set1_epi32(127)), 23));
        const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h2, _mm256_set1_epi32(127)), 23));
        x[u] = _mm256_mul_ps(_mm256_mul_ps(p[u], s1), s2);
    }
}

/* sigmoid(x) = 1 / (1 + e^−x);  tanh(x) = 1 − 2 / (e^2x + 1) */
INLINE void act8(const int kind, __m256 *v, const int NV) {
    const __m256 one = _mm256_set1_ps(1.0f);
    if (kind == RK_SIGMOID) {
        RK_EACH v[u] = _mm256_sub_ps(_mm256_setzero_ps(), v[u]);
        exp8(v, NV);
        RK_EACH v[u] = _mm256_div_ps(one, _mm256_add_ps(one, v[u]));
    } else {
        RK_EACH v[u] = _mm256_add_ps(v[u], v[u]);
        exp8(v, NV);
        RK_EACH v[u] = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(v[u], one)));
    }
}

void RK_EXACT AVX2 rk_activate_avx2(int kind, float *x, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 v[2] = {_mm256_loadu_ps(x + i), _mm256_loadu_ps(x + i + 8)};
        act8(kind, v, 2);
        _mm256_storeu_ps(x + i, v[0]), _mm256_storeu_ps(x + i + 8, v[1]);
    }
    for (; i < n; i += 8) {
        const __m256i m = first_lanes(n - i);
        __m256 v = _mm256_maskload_ps(x + i, m);
        act8(kind, &v, 1);
        _mm256_maskstore_ps(x + i, m, v);
    }
}

/* ---- the gates of a step in one pass (rk_gru_gates, rk_lstm_gates): the element-wise kernels' arithmetic
 * and act8, lane for lane, so the same bits as the separate passes; NV blocks of 8 units at a time ------- */

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define LD(p) _mm256_loadu_ps((p) + 8 * u)

/* Units [0, 8·NV) of gates S floats apart. */
INLINE void gru8(float *h, const float *gu, const float *bh, const float *gx, long S, const int NV, const int ract,
                 const int act) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 r[4], z[4], n[4], un[4];
    RK_EACH r[u] = LD(gu), z[u] = LD(gu + S), un[u] = LD(gu + 2 * S);
    if (bh) RK_EACH r[u] = _mm256_add_ps(r[u], LD(bh)), z[u] = _mm256_add_ps(z[u], LD(bh + S)), un[u] = _mm256_add_ps(un[u], LD(bh + 2 * S));
    RK_EACH r[u] = _mm256_add_ps(r[u], LD(gx)), z[u] = _mm256_add_ps(z[u], LD(gx + S));
    act8(ract, r, NV);
    act8(ract, z, NV);
    RK_EACH n[u] = _mm256_add_ps(LD(gx + 2 * S), _mm256_mul_ps(r[u], un[u]));
    act8(act, n, NV);
    RK_EACH _mm256_storeu_ps(h + 8 * u, _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(one, z[u]), n[u]), _mm256_mul_ps(z[u], LD(h))));
}

INLINE void lstm8(float *h, float *c, const float *gu, const float *gx, const float *p, long S, const int NV,
                  const int ract, const int act) {
    __m256 gi[4], gf[4], gg[4], go[4], cv[4];
    RK_EACH gi[u] = _mm256_add_ps(LD(gu), LD(gx)), gf[u] = _mm256_add_ps(LD(gu + S), LD(gx + S));
    RK_EACH gg[u] = _mm256_add_ps(LD(gu + 2 * S), LD(gx + 2 * S)), go[u] = _mm256_add_ps(LD(gu + 3 * S), LD(gx + 3 * S));
    RK_EACH cv[u] = LD(c);
    if (p) RK_EACH gi[u] = _mm256_add_ps(gi[u], _mm256_mul_ps(LD(p), cv[u])), gf[u] = _mm256_add_ps(gf[u], _mm256_mul_ps(LD(p + S), cv[u]));
    act8(ract, gf, NV);
    act8(ract, gi, NV);
    act8(act, gg, NV);
    RK_EACH cv[u] = _mm256_add_ps(_mm256_mul_ps(gf[u], cv[u]), _mm256_mul_ps(gi[u], gg[u]));
    if (p) RK_EACH go[u] = _mm256_add_ps(go[u], _mm256_mul_ps(LD(p + 2 * S), cv[u]));
    RK_EACH _mm256_storeu_ps(c + 8 * u, cv[u]);
    act8(ract, go, NV);
    act8(act, cv, NV);
    RK_EACH _mm256_storeu_ps(h + 8 * u, _mm256_mul_ps(go[u], cv[u]));
}

/* The last t < 8 elements of k gate vectors H apart, copied to k zero-padded vectors 8 apart. */
static void tail8(float *dst, const float *src, long H, long t, int k) {
    memset(dst, 0, sizeof(float) * 8 * (size_t)k);
    for (int g = 0; g < k; g++) memcpy(dst + 8 * g, src + g * H, sizeof(float) * (size_t)t);
}

INLINE void gru_gates(float *h, const float *gu, const float *bh, const float *gx, long H, const int ract, const int act) {
    long j = 0;
    for (; j + 32 <= H; j += 32) gru8(h + j, gu + j, bh ? bh + j : NULL, gx + j, H, 4, ract, act);
    for (; j + 8 <= H; j += 8) gru8(h + j, gu + j, bh ? bh + j : NULL, gx + j, H, 1, ract, act);
    if (j < H) {
        const long t = H - j;
        float u[24], b[24], x[24], hh[8];
        tail8(u, gu + j, H, t, 3), tail8(x, gx + j, H, t, 3), tail8(hh, h + j, H, t, 1);
        if (bh) tail8(b, bh + j, H, t, 3);
        gru8(hh, u, bh ? b : NULL, x, 8, 1, ract, act);
        memcpy(h + j, hh, sizeof(float) * (size_t)t);
    }
}

INLINE void lstm_gates(float *h, float *c, const float *gu, const float *gx, const float *p, long H, const int ract,
                       const int act) {
    long j = 0;
    for (; j + 32 <= H; j += 32) lstm8(h + j, c + j, gu + j, gx + j, p ? p + j : NULL, H, 4, ract, act);
    for (; j + 8 <= H; j += 8) lstm8(h + j, c + j, gu + j, gx + j, p ? p + j : NULL, H, 1, ract, act);
    if (j < H) {
        const long t = H - j;
        float u[32], x[32], q[24], hh[8], cc[8];
        tail8(u, gu + j, H, t, 4), tail8(x, gx + j, H, t, 4), tail8(hh, h + j, H, t, 1), tail8(cc, c + j, H, t, 1);
        if (p) tail8(q, p + j, H, t, 3);
        lstm8(hh, cc, u, x, p ? q : NULL, 8, 1, ract, act);
        memcpy(h + j, hh, sizeof(float) * (size_t)t), memcpy(c + j, cc, sizeof(float) * (size_t)t);
    }
}

void RK_EXACT AVX2 rk_gru_gates_avx2(float *h, const float *gu, const float *bh, const float *gx, long H, int ract,
                                     int act) {
    RK_BY_KINDS(gru_gates, ract, act, h, gu, bh, gx, H);
}

void RK_EXACT AVX2 rk_lstm_gates_avx2(float *h, float *c, const float *gu, const float *gx, const float *p, long H,
                                      int ract, int act) {
    RK_BY_KINDS(lstm_gates, ract, act, h, c, gu, gx, p, H);
}

#undef LD
#undef INLINE
#if defined(__clang__)
#pragma clang fp contract(on)
#endif

#endif
