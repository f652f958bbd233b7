/* The AVX-512 intrinsics avx512.c, avx512_float.c and avx512_elementwise.c use, from SIMDe (libsimde-dev), for
 * checking their logic on machines without AVX-512 (bench/kernels/simde_check.sh, built with -DRK_SIMDE_CHECK;
 * never in the library). Where SIMDe lacks an intrinsic or its native alias, or emulates one differently from
 * the instruction, the definition is here. */
#ifndef RK_AVX512_SIMDE_H
#define RK_AVX512_SIMDE_H
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <math.h>
#include <simde/x86/avx512.h>
#define AVX512
typedef simde__mmask16 __mmask16;
typedef simde__mmask64 __mmask64;
typedef simde__mmask8 __mmask8;
static inline __m512 _mm512_maskz_loadu_ps(__mmask16 k, const void *p) {
    float t[16];
    for (int i = 0; i < 16; i++) t[i] = (k >> i) & 1 ? ((const float *)p)[i] : 0.0f;
    return _mm512_loadu_ps(t);
}
static inline __m256 _mm256_maskz_loadu_ps(__mmask8 k, const void *p) {
    float t[8];
    for (int i = 0; i < 8; i++) t[i] = (k >> i) & 1 ? ((const float *)p)[i] : 0.0f;
    return _mm256_loadu_ps(t);
}
static inline __m512i _mm512_maskz_loadu_epi8(__mmask64 k, const void *p) {
    int8_t t[64];
    for (int i = 0; i < 64; i++) t[i] = (k >> i) & 1 ? ((const int8_t *)p)[i] : 0;
    return _mm512_loadu_si512(t);
}
static inline __m256i _mm256_maskz_loadu_epi16(__mmask16 k, const void *p) {
    int16_t t[16];
    for (int i = 0; i < 16; i++) t[i] = (k >> i) & 1 ? ((const int16_t *)p)[i] : 0;
    return _mm256_loadu_si256((const void *)t);
}
static inline __m512 _mm512_cvtepi32_ps(__m512i v) {
    int32_t t[16];
    float f[16];
    _mm512_storeu_si512(t, v);
    for (int i = 0; i < 16; i++) f[i] = (float)t[i];
    return _mm512_loadu_ps(f);
}
static inline __m512 _mm512_cvtph_ps(__m256i v) {
    uint16_t t[16];
    float f[16];
    _mm256_storeu_si256((void *)t, v);
    for (int i = 0; i < 16; i++) f[i] = rk_half_to_float(t[i]);
    return _mm512_loadu_ps(f);
}
#ifndef _mm512_shuffle_f32x4   /* SIMDe names it without the native alias */
#define _mm512_shuffle_f32x4(a, b, imm) simde_mm512_shuffle_f32x4(a, b, imm)
#endif
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#define _MM_FROUND_TO_NEAREST_INT SIMDE_MM_FROUND_TO_NEAREST_INT
#endif
static inline float _mm512_reduce_max_ps(__m512 v) {   /* SIMDe has none; for lanes without NaN */
    float f[16];
    _mm512_storeu_ps(f, v);
    float m = f[0];
    for (int i = 1; i < 16; i++) m = f[i] > m ? f[i] : m;
    return m;
}
static inline __m512i _mm512_cvtps_epi32(__m512 v) {   /* round to nearest even, as the instruction */
    float f[16];
    int32_t t[16];
    _mm512_storeu_ps(f, v);
    for (int i = 0; i < 16; i++) t[i] = (int32_t)nearbyintf(f[i]);
    return _mm512_loadu_si512(t);
}
static inline __m512i _mm512_srai_epi32(__m512i v, int k) {
    int32_t t[16];
    _mm512_storeu_si512(t, v);
    for (int i = 0; i < 16; i++) t[i] >>= k;
    return _mm512_loadu_si512(t);
}
static inline void _mm512_mask_storeu_ps(void *p, __mmask16 k, __m512 v) {
    float t[16];
    _mm512_storeu_ps(t, v);
    for (int i = 0; i < 16; i++) if ((k >> i) & 1) ((float *)p)[i] = t[i];
}
static inline int32_t _mm512_reduce_add_epi32(__m512i v) {
    int32_t t[16], s = 0;
    _mm512_storeu_si512(t, v);
    for (int i = 0; i < 16; i++) s += t[i];
    return s;
}
static inline float _mm512_reduce_add_ps(__m512 v) {
    float t[16], s = 0;
    _mm512_storeu_ps(t, v);
    for (int i = 0; i < 16; i++) s += t[i];
    return s;
}
#endif
