/* The AVX-512 level's shared definitions (avx512.c: the integer products; avx512_float.c: the f32 and f16
 * products; avx512_elementwise.c: the element-wise work;
 * avx512_quantize.c: x's quantization): functions compiled for AVX-512 F/BW/VL/DQ + VNNI one by one, called
 * only when cpuid reports them; with
 * -DRK_SIMDE_CHECK the same source against SIMDe's emulation (avx512_simde.h), for the kernel check on any
 * x86-64 CPU. */
#ifndef RK_AVX512_H
#define RK_AVX512_H
#include "internal.h"
#if defined(RK_X86) || defined(RK_SIMDE_CHECK)

#ifdef RK_SIMDE_CHECK
#include "avx512_simde.h"
#else
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#endif

/* Lane mask of the first n lanes of 16 (all of them for n ≥ 16). */
AVX512 static inline __mmask16 lanes16(long n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

#endif
#endif
