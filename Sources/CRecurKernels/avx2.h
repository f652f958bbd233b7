/* The AVX2 level's shared definitions (avx2.c: the products; avx2_elementwise.c: the element-wise work; avx2_quantize.c: x's quantization):
 * functions compiled for AVX2 + FMA + F16C one by one, called only when cpuid reports them. */
#ifndef RK_AVX2_H
#define RK_AVX2_H
#include "internal.h"
#ifdef RK_X86
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* Lane mask of the first n (0..7) lanes. */
AVX2 static inline __m256i first_lanes(long n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The sum of the eight int32 lanes of a. */
AVX2 static inline int32_t sum1_epi32(__m256i a) {
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    return _mm_cvtsi128_si32(s4);
}

#endif
#endif
