/* The AVX2 level's shared definitions (avx2.c: the products; avx2_elementwise.c: the element-wise work):
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

#endif
#endif
