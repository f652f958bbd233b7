/* Several vectors against one matrix (the batched step): f32, and any dtype through the single products' pieces
 * (kernels.c), each vector's bits those of its single product. */
#include "internal.h"
#include <stdlib.h>

/* ---- several vectors, f32 -------------------------------------------------------------------------- */

void rk_matmat_f32(float *y, const float *w, const float *x, long n, long rows, long cols) {
#ifdef RK_X86
    if (rk_level() >= RK_AVX2) {
        rk_mm_f32_avx2(y, w, x, n, rows, cols);
        return;
    }
#endif
#ifdef __aarch64__
    if (rk_level() >= RK_NEON) {
        for (long j = 0; j < n; j++) rk_f32_neon(y + j * rows, w, x + j * cols, rows, cols, 0);
        return;
    }
#endif
    for (long j = 0; j < n; j++) rk_f32_scalar(y + j * rows, w, x + j * cols, rows, cols, 0);
}

/* ---- several vectors, any dtype ------------------------------------------------------------------- */

/* Where vector j's quantized copy is: slot j of one buffer, or the j-th of a list of buffers. */
typedef struct {
    const unsigned char *base;
    size_t slot;
    const void *const *list;
} xq_set;

static inline const unsigned char *xq_at(xq_set s, long j) {
    return s.list ? (const unsigned char *)s.list[j] : s.base + (size_t)j * s.slot;
}

/* n vectors quantized for dtype (rk_prepare_x), multiplied: q8ri in groups of vectors that share each load of the
 * weights (`amx`: on the tiles, which read the copies at a fixed slot of one buffer, so only for such a set), the
 * rest one by one. */
static void matmat_quantized(int level, int amx, int dtype, float *y, const void *w, xq_set xs, long n, long row0,
                             long rows, long cols) {
    long j = 0;
    (void)amx;   /* tiles exist on x86-64 only */
    if (dtype == RK_Q8RI) {
#ifdef RK_X86
        if (amx && n >= RK_AMX_MINIMUM && !xs.list) {
            rk_q8ri_batch_amx(y, rows, w, xs.base, (long)xs.slot, n, row0, rows, cols);
            return;
        }
        rk_xr v[8];
        const int group = level >= RK_AVX512 ? 8 : level >= RK_AVX2 ? 4 : 1;
        /* The vectors the groups take: all but a last one left alone (a group has at least two). With more than one
         * group, the rows in blocks of RK_BATCH_BLOCK_BYTES of whole groups, every group over one block before the
         * next, so that a block stays in L2 for all of them. */
        const long together = group > 1 && n >= 2 ? n - (n % group == 1) : 0, end = row0 + rows;
        const long per = RK_BATCH_BLOCK_BYTES / rk_q8ri_group_bytes(cols), step = n > group ? 16 * (per > 0 ? per : 1) : end;
        for (long b0 = row0, b1; b0 < end; b0 = b1) {
            b1 = (b0 / step + 1) * step < end ? (b0 / step + 1) * step : end;
            for (long i = 0; i < together; i += group) {
                const int m = together - i < group ? (int)(together - i) : group;
                for (int k = 0; k < m; k++) v[k] = rk_xr_view(xq_at(xs, i + k), cols);
                if (level >= RK_AVX512) rk_q8ri_batch_avx512(y + i * rows + (b0 - row0), rows, w, v, m, b0, b1 - b0);
                else rk_q8ri_batch_avx2(y + i * rows + (b0 - row0), rows, w, v, m, b0, b1 - b0);
            }
        }
        j = together;
#endif
        for (; j < n; j++) {
            rk_xr one = rk_xr_view(xq_at(xs, j), cols);
            rk_q8r_xr_at(level, RK_Q8RI, y + j * rows, w, &one, row0, rows, 0);
        }
        return;
    }
    const int grouped = rk_dtype_of(dtype)->row_group > 1;
    const void *start = grouped ? w : rk_row_at(dtype, w, row0, cols);
    const long r0 = grouped ? row0 : 0;
    for (; j < n; j++) {
        if (rk_dtype_of(dtype)->x_quantization == RK_X_PER_VECTOR) {
            rk_xr one = rk_xr_view(xq_at(xs, j), cols);
            rk_q8r_xr_at(level, dtype, y + j * rows, start, &one, r0, rows, 0);
        } else {
            rk_xq one = rk_xq_view(xq_at(xs, j), cols);
            rk_q_xq_at(level, dtype, y + j * rows, start, &one, r0, rows, 0);
        }
    }
}

/* One rk_x_bytes slot (64-byte aligned) per vector, and room for n of them: `stack` when they fit, else the
 * heap (NULL: no memory). */
enum { RK_SLOTS_ON_STACK = 64 << 10 };
static size_t x_slot(int dtype, long cols) { return (rk_x_bytes(dtype, cols) + 63) & ~(size_t)63; }
static unsigned char *slots(unsigned char *stack, long n, size_t slot) {
    return (size_t)n * slot <= RK_SLOTS_ON_STACK ? stack : (unsigned char *)aligned_alloc(64, (size_t)n * slot);
}

int rk_matmat_prepared(int dtype, float *y, const void *w, const void *const *xq, long n, long row0, long rows,
                       long cols) {
    const rk_dtype_info *t = rk_dtype_of(dtype);
    if (!t || t->x_quantization == RK_X_EXACT) return -1;
    if (cols <= 0 || n <= 0 || rows <= 0) return 0;
    const int level = rk_level();
#ifdef RK_X86
    if (level == RK_AVX512 && dtype == RK_Q8RI && n >= RK_AMX_MINIMUM && rk_amx_usable()) {
        /* the tiles read one buffer: the copies gathered into it (without memory for it, the AVX-512 groups
         * below: the same bits) */
        const size_t slot = x_slot(dtype, cols);
        _Alignas(64) unsigned char stack[RK_SLOTS_ON_STACK];
        unsigned char *buf = slots(stack, n, slot);
        if (buf) {
            for (long k = 0; k < n; k++) memcpy(buf + (size_t)k * slot, xq[k], rk_xr_bytes(cols));
            matmat_quantized(level, 1, dtype, y, w, (xq_set){buf, slot, NULL}, n, row0, rows, cols);
            if (buf != stack) free(buf);
            return 0;
        }
    }
#endif
    matmat_quantized(level, 0, dtype, y, w, (xq_set){NULL, 0, xq}, n, row0, rows, cols);
    return 0;
}

int rk_matmat_rows(int dtype, float *y, const void *w, const float *x, long n, long row0, long rows, long cols) {
#ifdef RK_X86
    if (rk_level() == RK_AVX512 && rk_amx_usable()) return rk_matmat_rows_at(RK_AMX, dtype, y, w, x, n, row0, rows, cols);
#endif
    return rk_matmat_rows_at(rk_level(), dtype, y, w, x, n, row0, rows, cols);
}

int rk_matmat_rows_at(int level, int dtype, float *y, const void *w, const float *x, long n, long row0, long rows,
                      long cols) {
    const rk_dtype_info *t = rk_dtype_of(dtype);
    if (!t) return -1;
#ifdef RK_X86
    const int amx = level >= RK_AMX && rk_amx_usable();
#else
    const int amx = 0;
#endif
    level = rk_clamp_level(level);
    if (t->x_quantization == RK_X_EXACT || cols <= 0 || n <= 0 || rows <= 0) {
        long j = 0;
#ifdef RK_X86
        if (dtype == RK_F32 && level >= RK_AVX512 && cols > 0 && rows > 0) {   /* 8 streams per load of the weights */
            const float *wr = (const float *)w + row0 * cols;
            for (; j + 2 <= n; j += 8) {
                const int m = n - j < 8 ? (int)(n - j) : 8;
                const float *xs[8];
                for (int k = 0; k < m; k++) xs[k] = x + (j + k) * cols;
                rk_f32_batch_avx512(y + j * rows, rows, wr, xs, m, rows, cols);
                if (m < 8) { j += m; break; }
            }
        }
#endif
        for (; j < n; j++) rk_matvec_rows_at(level, dtype, y + j * rows, w, x + j * cols, row0, rows, cols, 0);
        return 0;
    }
    const size_t slot = x_slot(dtype, cols);
    _Alignas(64) unsigned char stack[RK_SLOTS_ON_STACK];
    unsigned char *buf = slots(stack, n, slot);
    if (!buf) {   /* no memory: one by one (the same bits) */
        for (long j = 0; j < n; j++) rk_matvec_rows_at(level, dtype, y + j * rows, w, x + j * cols, row0, rows, cols, 0);
        return 0;
    }
    for (long j = 0; j < n; j++) rk_quantize_xr_or_x(level, dtype, buf + j * slot, x + j * cols, cols);
    matmat_quantized(level, amx, dtype, y, w, (xq_set){buf, slot, NULL}, n, row0, rows, cols);
    if (buf != stack) free(buf);
    return 0;
}
