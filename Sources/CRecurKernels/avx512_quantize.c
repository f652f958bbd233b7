/* AVX-512 quantization of x (x86-64): per block of 32 for q8, q4 and q4i (rk_quantize_avx512), per vector for
 * q8r and q8ri (rk_quantize_xr_avx512); the scalar versions' bytes (internal.h, checked by simde_check). */
#include "avx512.h"
#if defined(RK_X86) || defined(RK_SIMDE_CHECK)

/* ---- per-block quantization for q8, q4 and q4i: rk_quantize_scalar's operations, in four passes ----- */

/* Lanes of the 16 floats at c of x that lie in [0, cols). */
AVX512 static inline __mmask16 lanes_at(long c, long cols) { return c < cols ? lanes16(cols - c) : 0; }

/* Pass 1, per block: amax_b = max |x| (NaN ignored, as fmaxf ignores it), kept in d. Pass 2, 16 blocks per
 * vector: d_b = amax_b / 127 and 1/d_b's stand-in 127 / amax_b (0 for amax_b = 0), kept in t8. Pass 3, per
 * block: xq = round-half-even(clamp(x · inv_b, ±127)), the int32 sum S_b kept in n8. Pass 4, 16 blocks per
 * vector: n8 = −8·S, t8 = (8·d)·S, t128 = (128·d)·S. The blocks past nb stay zero (rk_xq_zeroed). */
void AVX512 rk_quantize_avx512(void *buf, const float *x, long cols) {
    const rk_xq_out v = rk_xq_zeroed(buf, cols);
    float *d = v.d, *t8 = v.t8, *t128 = v.t128;
    int32_t *n8 = v.n8;
    int8_t *q = v.q;
    const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF);
    for (long b = 0; b < v.nb; b++) {
        const long c = 32 * b;
        const __m512 e0 = _mm512_maskz_loadu_ps(lanes_at(c, cols), x + c);
        const __m512 e1 = _mm512_maskz_loadu_ps(lanes_at(c + 16, cols), x + c + 16);
        const __m512 a0 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(e0), absmask));
        const __m512 a1 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(e1), absmask));
        d[b] = _mm512_reduce_max_ps(_mm512_max_ps(a1, _mm512_max_ps(a0, _mm512_setzero_ps())));   /* NaN lanes: 0 */
    }
    for (long g = 0; g < v.nbp; g += 16) {
        const __m512 amax = _mm512_load_ps(d + g);
        const __mmask16 pos = _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_GT_OQ);
        _mm512_store_ps(t8 + g, _mm512_maskz_div_ps(pos, _mm512_set1_ps(127.0f), amax));
        _mm512_store_ps(d + g, _mm512_div_ps(amax, _mm512_set1_ps(127.0f)));
    }
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (long b = 0; b < v.nb; b++) {
        const long c = 32 * b;
        const __m512 iv = _mm512_set1_ps(t8[b]);
        const __m512 e0 = _mm512_maskz_loadu_ps(lanes_at(c, cols), x + c);
        const __m512 e1 = _mm512_maskz_loadu_ps(lanes_at(c + 16, cols), x + c + 16);
        const __m512i n0 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(e0, iv), lo), hi));
        const __m512i n1 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(e1, iv), lo), hi));
        _mm_store_si128((__m128i *)(q + c), _mm512_cvtsepi32_epi8(n0));
        _mm_store_si128((__m128i *)(q + c + 16), _mm512_cvtsepi32_epi8(n1));
        n8[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(n0, n1));
    }
    for (long g = 0; g < v.nbp; g += 16) {
        const __m512i si = _mm512_load_si512((const void *)(n8 + g));
        const __m512 S = _mm512_cvtepi32_ps(si), db = _mm512_load_ps(d + g);
        _mm512_store_si512((void *)(n8 + g), _mm512_mullo_epi32(si, _mm512_set1_epi32(-8)));
        _mm512_store_ps(t8 + g, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(8.0f), db), S));
        _mm512_store_ps(t128 + g, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(128.0f), db), S));
    }
}

/* ---- per-vector quantization for q8r / q8ri ----------------------------------------------------------- */

/* rk_quantize_xr_scalar's arithmetic 16 floats at a time, so the same bytes: D = max|x| / 64 (NaN ignored:
 * vmaxps keeps its second operand), q = clamp(round-half-even(x · 64 / max|x|), −64, 64) (NaN → −64, the
 * clamp's second operand again), Σq, and u = q + 64 written in the same pass; the padding columns up to
 * ncp are q = 0, u = 64. */
void AVX512 rk_quantize_xr_avx512(void *buf, const float *x, long cols) {
    const long ncp = rk_ncp(cols);
    const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF);
    __m512 m = _mm512_setzero_ps();
    for (long c = 0; c < cols; c += 16)
        m = _mm512_max_ps(_mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(_mm512_maskz_loadu_ps(lanes16(cols - c), x + c)), absmask)), m);
    /* The largest lane by halves (m holds no NaN and no negative value, so the order does not matter). */
    __m256 h = _mm256_max_ps(_mm512_castps512_ps256(m), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1)));
    __m128 t = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    t = _mm_max_ss(t, _mm_movehdup_ps(t));
    const __m512 iv = _mm512_set1_ps(rk_xr_begin(buf, _mm_cvtss_f32(t)));
    const __m512 lo = _mm512_set1_ps(-64.0f), hi = _mm512_set1_ps(64.0f);
    const __m128i sixty4 = _mm_set1_epi8(64);
    int8_t *q = (int8_t *)buf + 64, *u = q + ncp;
    __m512i sum = _mm512_setzero_si512();
    for (long c = 0; c < ncp; c += 16) {
        const __mmask16 k = c < cols ? lanes16(cols - c) : 0;
        const __m512 e = _mm512_maskz_loadu_ps(k, x + c);
        const __m512i n = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(e, iv), lo), hi));
        sum = _mm512_add_epi32(sum, n);
        const __m128i b = _mm512_cvtsepi32_epi8(n);
        _mm_storeu_si128((__m128i *)(q + c), b);
        _mm_storeu_si128((__m128i *)(u + c), _mm_add_epi8(b, sixty4));
    }
    const int32_t S = _mm512_reduce_add_epi32(sum);
    memcpy((unsigned char *)buf + 4, &S, 4);
}

#endif
