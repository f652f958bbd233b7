/* AVX2 quantization of x (x86-64): per vector for q8r and q8ri (rk_quantize_xr_avx2), per block of 32 for q8,
 * q4 and q4i (rk_quantize_avx2); the scalar versions' bytes (internal.h, checked by simde_check). */
#include "avx2.h"
#ifdef RK_X86

/* Per-vector quantization for q8r (same arithmetic as rk_quantize_xr_scalar, so the same bytes). */
void AVX2 rk_quantize_xr_avx2(void *buf, const float *x, long cols) {
    const long ncp = rk_ncp(cols), c8 = cols & ~7L;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 m = _mm256_setzero_ps();
    long c = 0;
    for (; c < c8; c += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + c), absmask), m);   /* NaN ignored */
    if (c < cols) m = _mm256_max_ps(_mm256_and_ps(_mm256_maskload_ps(x + c, first_lanes(cols - c)), absmask), m);
    __m128 t = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    t = _mm_max_ss(t, _mm_movehdup_ps(t));
    const __m256 iv = _mm256_set1_ps(rk_xr_begin(buf, _mm_cvtss_f32(t)));
    const __m256 lo = _mm256_set1_ps(-64.0f), hi = _mm256_set1_ps(64.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int8_t *q = (int8_t *)buf + 64;
    __m256i sum = _mm256_setzero_si256();
    for (long c0 = 0; c0 < ncp; c0 += 32) {
        __m256i n[4];
        for (int k = 0; k < 4; k++) {
            long cc = c0 + 8 * k, left = cols - cc;
            __m256 e = left >= 8 ? _mm256_loadu_ps(x + cc)
                     : left > 0 ? _mm256_maskload_ps(x + cc, first_lanes(left)) : _mm256_setzero_ps();
            n[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(e, iv), lo), hi));
            sum = _mm256_add_epi32(sum, n[k]);
        }
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(n[0], n[1]), _mm256_packs_epi32(n[2], n[3]));
        _mm256_store_si256((__m256i *)(q + c0), _mm256_permutevar8x32_epi32(p, order));
    }
    const int32_t S = sum1_epi32(sum);
    memcpy((unsigned char *)buf + 4, &S, 4);
    const __m256i sixty4 = _mm256_set1_epi8(64);
    for (long c0 = 0; c0 < ncp; c0 += 32)   /* u = xq + 64 */
        _mm256_store_si256((__m256i *)(q + ncp + c0), _mm256_add_epi8(_mm256_load_si256((const __m256i *)(q + c0)), sixty4));
}

/* ---- dynamic quantization of x (same arithmetic as rk_quantize_scalar, so the same bytes) ---------- */

void AVX2 rk_quantize_avx2(void *buf, const float *x, long cols) {
    const rk_xq_out v = rk_xq_zeroed(buf, cols);
    float *d = v.d, *t8 = v.t8, *t128 = v.t128;
    int32_t *n8 = v.n8;
    int8_t *q = v.q;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (long b = 0; b < v.nb; b++) {
        __m256 e[4];
        for (int k = 0; k < 4; k++) {
            long c = 32 * b + 8 * k, n = cols - c;
            e[k] = n >= 8 ? _mm256_loadu_ps(x + c)
                 : n > 0 ? _mm256_maskload_ps(x + c, first_lanes(n)) : _mm256_setzero_ps();
        }
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) m = _mm256_max_ps(_mm256_and_ps(e[k], absmask), m);   /* NaN ignored */
        float amax;
        {
            __m128 t = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            t = _mm_max_ps(t, _mm_movehl_ps(t, t));
            t = _mm_max_ss(t, _mm_movehdup_ps(t));
            amax = _mm_cvtss_f32(t);
        }
        float inv = amax > 0 ? 127.0f / amax : 0.0f;
        d[b] = amax / 127.0f;
        const __m256 iv = _mm256_set1_ps(inv);
        __m256i n[4];
        __m256i sum = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(e[k], iv), lo), hi);
            n[k] = _mm256_cvtps_epi32(t);   /* round half to even, as nearbyintf */
            sum = _mm256_add_epi32(sum, n[k]);
        }
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(n[0], n[1]), _mm256_packs_epi32(n[2], n[3]));
        _mm256_store_si256((__m256i *)(q + 32 * b), _mm256_permutevar8x32_epi32(p, order));
        const int32_t Si = sum1_epi32(sum);
        const float S = (float)Si;
        n8[b] = -8 * Si;
        t8[b] = 8.0f * d[b] * S;
        t128[b] = 128.0f * d[b] * S;
    }
}

#endif
