/* The dtype table, level detection and dispatch; the portable scalar kernels are in scalar.c. */
#include "internal.h"
#include <stdlib.h>
#include <limits.h>
#include <math.h>

/* ---- the dtype table ------------------------------------------------------------------------------ */

/*                        name   block elem rscale rsum group bscale bvalue  x                 major */
static const rk_dtype_info dtypes[RK_DTYPE_COUNT] = {
    [RK_F32] =  {"f32",  1,    4,   0,     0,   1,    0,     0,      RK_X_EXACT,       1},
    [RK_F16] =  {"f16",  1,    2,   0,     0,   1,    0,     0,      RK_X_EXACT,       1},
    [RK_Q8] =   {"q8",   32,   0,   0,     0,   1,    4,     32,     RK_X_PER_BLOCK,   1},
    [RK_Q4] =   {"q4",   32,   0,   0,     0,   1,    4,     16,     RK_X_PER_BLOCK,   1},
    [RK_Q8R] =  {"q8r",  32,   0,   4,     0,   1,    0,     32,     RK_X_PER_VECTOR,  2},
    [RK_Q8RI] = {"q8ri", 32,   0,   4,     4,   16,   0,     32,     RK_X_PER_VECTOR,  4},
    [RK_Q4I] =  {"q4i",  32,   0,   0,     0,   16,   4,     16,     RK_X_PER_BLOCK,   4},
};

const rk_dtype_info *rk_dtype_of(int dtype) {
    return dtype >= 0 && dtype < RK_DTYPE_COUNT ? &dtypes[dtype] : NULL;
}

long long rk_row_bytes(int dtype, long long cols) {
    const rk_dtype_info *t = rk_dtype_of(dtype);
    if (!t || cols < 0) return -1;
    if (t->block == 1) return cols > LLONG_MAX / t->element_bytes ? -1 : cols * t->element_bytes;
    long long nb = cols / t->block + (cols % t->block != 0);
    long long per = t->block_scale_bytes + t->block_value_bytes, fixed = t->row_scale_bytes + t->row_sum_bytes;
    if (nb > (LLONG_MAX - fixed) / per) return -1;
    return fixed + nb * per;
}

long long rk_matrix_bytes(int dtype, long long rows, long long cols) {
    const long long rb = rk_row_bytes(dtype, cols);
    if (rb < 0 || rows < 0) return -1;
    const long long g = rk_dtype_of(dtype)->row_group, padded = rows / g * g + (rows % g ? g : 0);
    if (rb > 0 && padded > LLONG_MAX / rb) return -1;
    return padded * rb;
}

/* ---- level detection ---------------------------------------------------------------------------- */

static int detect(void) {
#ifdef RK_X86
    __builtin_cpu_init();
    int level = RK_SCALAR;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        level = RK_AVX2;
    if (level == RK_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni"))
        level = RK_AVX512;
    return level;
#elif defined(__aarch64__)
    return RK_NEON;   /* Advanced SIMD is part of every AArch64 CPU */
#else
    return RK_SCALAR;
#endif
}

static int detected = -1, chosen = -1;   /* races are benign: every thread computes the same values */

int rk_detected_level(void) {
    if (detected < 0) detected = detect();
    return detected;
}

int rk_level(void) {
    if (chosen < 0) {
        int l = rk_detected_level();
        const char *env = getenv("RECUR_KERNELS");
        if (env) {
            if (!strcmp(env, "scalar")) l = RK_SCALAR;
            else if (!strcmp(env, "avx2") && l > RK_AVX2) l = RK_AVX2;   /* "avx512" and "neon": no cap */
        }
        chosen = l;
    }
    return chosen;
}

const char *rk_level_name(int level) {
    switch (level) {
#ifdef __aarch64__
    case RK_NEON: return "neon";
#else
    case RK_AVX2: return "avx2";
    case RK_AVX512: return "avx512";
#endif
    default: return "scalar";
    }
}

int rk_clamp_level(int level) {
    int d = rk_detected_level();
    return level < 0 ? 0 : (level > d ? d : level);
}

/* ---- dispatch ----------------------------------------------------------------------------------- */

size_t rk_xq_bytes(long cols) { return (size_t)rk_nbp(cols) * (RK_XQ_SCALE_BYTES + 64); }

/* x quantized per block for a product with a matrix of `dtype` (RK_X_PER_BLOCK types); qp is filled only
 * for the kernels that read it, the AVX2 and AVX-512 ones of plain q4. */
static void quantize_at(int level, int dtype, void *buf, const float *x, long cols) {
#ifdef RK_X86
    if (level >= RK_AVX2) {
        /* The same bytes either way; AVX-512's fixed cost (two passes over 16 blocks) pays from 9 blocks on. */
        if (level >= RK_AVX512 && cols > 256) rk_quantize_avx512(buf, x, cols); else rk_quantize_avx2(buf, x, cols);
        if (dtype == RK_Q4) rk_permute_xq((unsigned char *)buf, cols);
        return;
    }
#else
    (void)dtype;
#endif
#ifdef __aarch64__
    if (level >= RK_NEON) { rk_quantize_neon(buf, x, cols); return; }
#endif
    rk_quantize_scalar(buf, x, cols);
}


void rk_matvec_f32_at(int level, float *y, const float *w, const float *x, long rows, long cols, int acc) {
    switch (rk_clamp_level(level)) {
#ifdef RK_X86
    case RK_AVX512: rk_f32_avx512(y, w, x, rows, cols, acc); return;
    case RK_AVX2: rk_f32_avx2(y, w, x, rows, cols, acc); return;
#endif
#ifdef __aarch64__
    case RK_NEON: rk_f32_neon(y, w, x, rows, cols, acc); return;
#endif
    default: rk_f32_scalar(y, w, x, rows, cols, acc);
    }
}

long rk_f32_columns_max(void) {
#ifdef RK_X86
    /* measured on Zen 5 (768 rows): AVX-512 1.5–7.7× faster than the row kernel from 64 columns down to 1,
     * AVX2 1.1–4× (past 64 columns the row kernels' horizontal sums no longer dominate) */
    return rk_level() >= RK_AVX2 ? 64 : 0;
#else
    return 0;
#endif
}

int rk_turn(const void *w) {
    static _Thread_local struct { const void *w; int back; } slot[RK_TURN_SLOTS];
    static _Thread_local int next;
    for (int i = 0; i < RK_TURN_SLOTS; i++)
        if (slot[i].w == w) return slot[i].back ^= 1;
    slot[next].w = w;
    slot[next].back = 0;
    next = (next + 1) % RK_TURN_SLOTS;
    return 0;
}

size_t rk_f32_columns_bytes(long rows, long cols) {
    if (rows < 16 || cols < 1 || cols > rk_f32_columns_max() || rows > (LONG_MAX >> 12)) return 0;
    return (size_t)((rows + 15) / 16) * 16 * (size_t)cols * sizeof(float);
}

void rk_f32_columns_pack(float *out, const float *w, long rows, long cols) {
    for (long b = 0; b < (rows + 15) / 16; b++)
        for (long c = 0; c < cols; c++)
            for (long i = 0; i < 16; i++) {
                const long r = 16 * b + i;
                out[16 * (cols * b + c) + i] = r < rows ? w[r * cols + c] : 0.0f;
            }
}

void rk_f32_columns_matvec(float *y, const float *packed, const float *w, const float *x, long rows, long cols, int acc) {
    const int level = rk_level();
#ifdef RK_X86
    if (level == RK_AVX512 && packed) {
        rk_f32_columns_avx512(y, packed, x, rows, cols, acc);
        return;
    }
    if (level == RK_AVX2 && packed) {
        rk_f32_columns_avx2(y, packed, w, x, rows, cols, acc);
        return;
    }
#else
    (void)packed;
#endif
    rk_matvec_f32_at(level, y, w, x, rows, cols, acc);
}

void rk_matvec_f16_at(int level, float *y, const uint16_t *w, const float *x, long rows, long cols, int acc) {
    switch (rk_clamp_level(level)) {
#ifdef RK_X86
    case RK_AVX512: rk_f16_avx512(y, w, x, rows, cols, acc); return;
    case RK_AVX2: rk_f16_avx2(y, w, x, rows, cols, acc); return;
#endif
#ifdef __aarch64__
    case RK_NEON: rk_f16_neon(y, w, x, rows, cols, acc); return;
#endif
    default: rk_f16_scalar(y, w, x, rows, cols, acc);
    }
}

static void q4i_xq_at(int level, float *y, const void *w, const rk_xq *v, long row0, long rows, int acc) {
    switch (rk_clamp_level(level)) {
#ifdef RK_X86
    case RK_AVX512: rk_q4i_avx512(y, w, v, row0, rows, acc); return;
    case RK_AVX2: rk_q4i_avx2(y, w, v, row0, rows, acc); return;
#endif
#ifdef __aarch64__
    case RK_NEON: rk_q4i_neon(y, w, v, row0, rows, acc); return;
#endif
    default: rk_q4i_scalar(y, w, v, row0, rows, acc);
    }
}

/* q8 or q4 (rows from w on), or q4i (rows from row0 of the matrix at w), times x quantized per block. */
void rk_q_xq_at(int level, int dtype, float *y, const void *w, const rk_xq *v, long row0, long rows, int acc) {
    if (dtype == RK_Q4I) { q4i_xq_at(level, y, w, v, row0, rows, acc); return; }
    const int four = dtype == RK_Q4;
    switch (rk_clamp_level(level)) {
#ifdef RK_X86
    case RK_AVX512:
        if (four) rk_q4_avx512(y, w, v, rows, acc); else rk_q8_avx512(y, w, v, rows, acc);
        return;
    case RK_AVX2:
        if (four) rk_q4_avx2(y, w, v, rows, acc); else rk_q8_avx2(y, w, v, rows, acc);
        return;
#endif
#ifdef __aarch64__
    case RK_NEON:
        if (four) rk_q4_neon(y, w, v, rows, acc); else rk_q8_neon(y, w, v, rows, acc);
        return;
#endif
    default:
        if (four) rk_q4_scalar(y, w, v, rows, acc); else rk_q8_scalar(y, w, v, rows, acc);
    }
}

/* Weight (r, c) of a q4i matrix of `cols` columns: s_{r,b} · (nibble − 8). */
static float q4i_weight(const void *w, long r, long c, long cols) {
    const long nb = (cols + 31) / 32, b = c / 32, j = c % 32, m = j / 8, half = (j % 8) / 4;
    const unsigned char *B = (const unsigned char *)w + (r / 16) * 320 * nb + 320 * b;
    const unsigned char byte = B[64 + 64 * m + 4 * (r % 16) + j % 4];
    return rk_load_f32(B + 4 * (r % 16)) * (float)((half ? byte >> 4 : byte & 15) - 8);
}

/* y (+)= W·x without quantizing x, decoding one block of 32 weights (q8r, q8ri: one row) at a time (no
 * allocation), rows from row0. */
static void q_decode_matvec(int dtype, float *y, const void *w, const float *x, long row0, long rows, long cols, int acc) {
    const long nb = (cols + 31) / 32;
    const int four = dtype == RK_Q4;
    const long rb = (long)rk_row_bytes(dtype, cols);
    if (dtype == RK_Q8RI) {
        for (long r = 0; r < rows; r++) {
            const long i = (row0 + r) % 16;
            const unsigned char *g = (const unsigned char *)w + (row0 + r) / 16 * rk_q8ri_group_bytes(cols);
            const int8_t *q = (const int8_t *)(g + 128 + 4 * i);
            float t = 0;
            for (long c = 0; c < cols; c++) t += (float)q[(c / 4) * 64 + c % 4] * x[c];
            t *= rk_load_f32(g + 4 * i);
            y[r] = acc ? y[r] + t : t;
        }
        return;
    }
    if (dtype == RK_Q4I) {
        for (long r = 0; r < rows; r++) {
            float t = 0;
            for (long c = 0; c < cols; c++) t += q4i_weight(w, row0 + r, c, cols) * x[c];
            y[r] = acc ? y[r] + t : t;
        }
        return;
    }
    w = (const unsigned char *)w + row0 * rb;
    if (dtype == RK_Q8R) {
        for (long r = 0; r < rows; r++) {
            const unsigned char *row = (const unsigned char *)w + r * rb;
            const int8_t *q = (const int8_t *)(row + 4);
            float t = 0;
            for (long c = 0; c < cols; c++) t += (float)q[c] * x[c];
            t *= rk_load_f32(row);
            y[r] = acc ? y[r] + t : t;
        }
        return;
    }
    for (long r = 0; r < rows; r++) {
        const unsigned char *row = (const unsigned char *)w + r * rb;
        float s = 0;
        for (long b = 0; b < nb; b++) {
            float sc = rk_load_f32(row + 4 * b), t = 0;
            for (long j = 0; j < 32 && b * 32 + j < cols; j++) {
                int v;
                if (four) {
                    unsigned char byte = row[4 * nb + b * 16 + (j & 15)];
                    v = (j < 16 ? byte & 15 : byte >> 4) - 8;
                } else {
                    v = ((const int8_t *)(row + 4 * nb))[b * 32 + j];
                }
                t += (float)v * x[b * 32 + j];
            }
            s += sc * t;
        }
        y[r] = acc ? y[r] + s : s;
    }
}

#define RK_STACK_COLS 16384

static void quantize_xr_at(int level, void *buf, const float *x, long cols);

/* y (+)= W·x for a quantized W (q8, q4, q8r; q8ri from row row0): x quantized into a buffer on the stack (on
 * the heap past RK_STACK_COLS columns; without memory, the weights are decoded instead), then the product. */
static void q_at(int level, int dtype, float *y, const void *w, const float *x, long row0, long rows, long cols, int acc) {
    if (rows <= 0) return;
    if (cols <= 0) {
        for (long r = 0; r < rows; r++) y[r] = acc ? y[r] : 0.0f;
        return;
    }
    level = rk_clamp_level(level);
    _Alignas(64) unsigned char stack[(RK_STACK_COLS / 32) * (RK_XQ_SCALE_BYTES + 64)];   /* ≥ rk_xr_bytes(RK_STACK_COLS) too */
    _Static_assert((RK_STACK_COLS / 32) * (RK_XQ_SCALE_BYTES + 64) >= 64 + 2 * RK_STACK_COLS, "the stack buffer holds an rk_xr");
    unsigned char *buf = stack;
    if (cols > RK_STACK_COLS) {
        const int per_vector = rk_dtype_of(dtype)->x_quantization == RK_X_PER_VECTOR;
        buf = (unsigned char *)aligned_alloc(64, per_vector ? rk_xr_bytes(cols) : rk_xq_bytes(cols));
        if (!buf) {
            q_decode_matvec(dtype, y, w, x, row0, rows, cols, acc);
            return;
        }
    }
    if (rk_dtype_of(dtype)->x_quantization == RK_X_PER_VECTOR) {
        quantize_xr_at(level, buf, x, cols);
        rk_xr v = rk_xr_view(buf, cols);
        rk_q8r_xr_at(level, dtype, y, w, &v, row0, rows, acc);
    } else {
        quantize_at(level, dtype, buf, x, cols);
        rk_xq v = rk_xq_view(buf, cols);
        rk_q_xq_at(level, dtype, y, w, &v, row0, rows, acc);
    }
    if (buf != stack) free(buf);
}

void rk_matvec_q8_at(int level, float *y, const void *w, const float *x, long rows, long cols, int acc) {
    q_at(level, RK_Q8, y, w, x, 0, rows, cols, acc);
}
void rk_matvec_q4_at(int level, float *y, const void *w, const float *x, long rows, long cols, int acc) {
    q_at(level, RK_Q4, y, w, x, 0, rows, cols, acc);
}


void rk_matvec_q8_xq(float *y, const void *w, const void *xq, long rows, long cols, int acc) {
    rk_xq v = rk_xq_view(xq, cols);
    rk_q_xq_at(rk_level(), RK_Q8, y, w, &v, 0, rows, acc);
}
void rk_matvec_q4_xq(float *y, const void *w, const void *xq, long rows, long cols, int acc) {
    rk_xq v = rk_xq_view(xq, cols);
    rk_q_xq_at(rk_level(), RK_Q4, y, w, &v, 0, rows, acc);
}
void rk_matvec_q4i_xq(float *y, const void *w, const void *xq, long row0, long rows, long cols, int acc) {
    rk_xq v = rk_xq_view(xq, cols);
    rk_q_xq_at(rk_level(), RK_Q4I, y, w, &v, row0, rows, acc);
}

size_t rk_xr_bytes(long cols) { return 64 + 2 * (size_t)rk_ncp(cols); }

static void quantize_xr_at(int level, void *buf, const float *x, long cols) {
#ifdef RK_X86
    if (level >= RK_AVX512) { rk_quantize_xr_avx512(buf, x, cols); return; }
    if (level >= RK_AVX2) { rk_quantize_xr_avx2(buf, x, cols); return; }
#endif
#ifdef __aarch64__
    if (level >= RK_NEON) { rk_quantize_xr_neon(buf, x, cols); return; }
#endif
    (void)level;
    rk_quantize_xr_scalar(buf, x, cols);
}

void rk_quantize_xr(void *xr, const float *x, long cols) { quantize_xr_at(rk_level(), xr, x, cols); }

/* x quantized for a product with a matrix of `dtype` (quantized types only). */
void rk_quantize_xr_or_x(int level, int dtype, void *buf, const float *x, long cols) {
    if (rk_dtype_of(dtype)->x_quantization == RK_X_PER_VECTOR) quantize_xr_at(level, buf, x, cols);
    else quantize_at(level, dtype, buf, x, cols);
}

/* q8r (rows from w on) or q8ri (rows from row0 of the matrix at w) times x quantized per vector. */
void rk_q8r_xr_at(int level, int dtype, float *y, const void *w, const rk_xr *v, long row0, long rows, int acc) {
    const int interleaved = dtype == RK_Q8RI;
#ifdef RK_X86
    switch (rk_clamp_level(level)) {
    case RK_AVX512:
        if (interleaved) rk_q8ri_avx512(y, w, v, row0, rows, acc); else rk_q8r_avx512(y, w, v, rows, acc);
        return;
    case RK_AVX2:
        if (interleaved) rk_q8ri_avx2(y, w, v, row0, rows, acc); else rk_q8r_avx2(y, w, v, rows, acc);
        return;
    default: break;
    }
#endif
#ifdef __aarch64__
    if (rk_clamp_level(level) == RK_NEON) {
        if (interleaved) rk_q8ri_neon(y, w, v, row0, rows, acc); else rk_q8r_neon(y, w, v, rows, acc);
        return;
    }
#endif
    (void)level;
    if (interleaved) rk_q8ri_scalar(y, w, v, row0, rows, acc); else rk_q8r_scalar(y, w, v, rows, acc);
}

void rk_matvec_q8r_at(int level, float *y, const void *w, const float *x, long rows, long cols, int acc) {
    q_at(level, RK_Q8R, y, w, x, 0, rows, cols, acc);
}

void rk_matvec_q8r_xr(float *y, const void *w, const void *xr, long rows, long cols, int acc) {
    rk_xr v = rk_xr_view(xr, cols);
    rk_q8r_xr_at(rk_level(), RK_Q8R, y, w, &v, 0, rows, acc);
}

void rk_matvec_q8ri_at(int level, float *y, const void *w, const float *x, long row0, long rows, long cols, int acc) {
    q_at(level, RK_Q8RI, y, w, x, row0, rows, cols, acc);
}

void rk_matvec_q8ri_xr(float *y, const void *w, const void *xr, long row0, long rows, long cols, int acc) {
    rk_xr v = rk_xr_view(xr, cols);
    rk_q8r_xr_at(rk_level(), RK_Q8RI, y, w, &v, row0, rows, acc);
}

/* ---- one entry for every dtype ----------------------------------------------------------------- */

/* The first byte of row `row0` of a row-major matrix (row_group 1). */
const void *rk_row_at(int dtype, const void *w, long row0, long cols) {
    return (const unsigned char *)w + row0 * rk_row_bytes(dtype, cols);
}

int rk_matvec_rows_at(int level, int dtype, float *y, const void *w, const float *x, long row0, long rows, long cols,
                      int acc) {
    if (!rk_dtype_of(dtype)) return -1;
    if (rk_dtype_of(dtype)->row_group == 1) w = rk_row_at(dtype, w, row0, cols);
    switch ((rk_dtype)dtype) {
    case RK_F32: rk_matvec_f32_at(level, y, (const float *)w, x, rows, cols, acc); break;
    case RK_F16: rk_matvec_f16_at(level, y, (const uint16_t *)w, x, rows, cols, acc); break;
    case RK_Q8: rk_matvec_q8_at(level, y, w, x, rows, cols, acc); break;
    case RK_Q4: rk_matvec_q4_at(level, y, w, x, rows, cols, acc); break;
    case RK_Q8R: rk_matvec_q8r_at(level, y, w, x, rows, cols, acc); break;
    case RK_Q8RI: rk_matvec_q8ri_at(level, y, w, x, row0, rows, cols, acc); break;
    case RK_Q4I: q_at(level, RK_Q4I, y, w, x, row0, rows, cols, acc); break;
    }
    return 0;
}

int rk_matvec_at(int level, int dtype, float *y, const void *w, const float *x, long rows, long cols, int acc) {
    return rk_matvec_rows_at(level, dtype, y, w, x, 0, rows, cols, acc);
}

int rk_matvec(int dtype, float *y, const void *w, const float *x, long rows, long cols, int acc) {
    return rk_matvec_at(rk_level(), dtype, y, w, x, rows, cols, acc);
}

size_t rk_x_bytes(int dtype, long cols) {
    const rk_dtype_info *t = rk_dtype_of(dtype);
    if (!t || t->x_quantization == RK_X_EXACT) return 0;
    return t->x_quantization == RK_X_PER_VECTOR ? rk_xr_bytes(cols) : rk_xq_bytes(cols);
}

void rk_prepare_x(int dtype, void *xq, const float *x, long cols) {
    const rk_dtype_info *t = rk_dtype_of(dtype);
    if (!t || t->x_quantization == RK_X_EXACT) return;
    if (t->x_quantization == RK_X_PER_VECTOR) rk_quantize_xr(xq, x, cols); else quantize_at(rk_level(), dtype, xq, x, cols);
}

void rk_matvec_prepared(int dtype, float *y, const void *w, const float *x, const void *xq, long row0, long rows,
                        long cols, int acc) {
    if (!rk_dtype_of(dtype)) return;
    if (rk_dtype_of(dtype)->row_group == 1) w = rk_row_at(dtype, w, row0, cols);
    switch ((rk_dtype)dtype) {
    case RK_F32: rk_matvec_f32_at(rk_level(), y, (const float *)w, x, rows, cols, acc); break;
    case RK_F16: rk_matvec_f16_at(rk_level(), y, (const uint16_t *)w, x, rows, cols, acc); break;
    case RK_Q8: rk_matvec_q8_xq(y, w, xq, rows, cols, acc); break;
    case RK_Q4: rk_matvec_q4_xq(y, w, xq, rows, cols, acc); break;
    case RK_Q8R: rk_matvec_q8r_xr(y, w, xq, rows, cols, acc); break;
    case RK_Q8RI: rk_matvec_q8ri_xr(y, w, xq, row0, rows, cols, acc); break;
    case RK_Q4I: rk_matvec_q4i_xq(y, w, xq, row0, rows, cols, acc); break;
    }
}

void rk_dequantize(float *out, const void *w, int dtype, long row0, long rows, long cols) {
    if (!rk_dtype_of(dtype)) return;
    const long nb = (cols + 31) / 32;
    const long rb = (long)rk_row_bytes(dtype, cols);
    for (long r = 0; r < rows; r++) {
        float *o = out + r * cols;
        const unsigned char *row = (const unsigned char *)w + (row0 + r) * rb;
        switch ((rk_dtype)dtype) {
        case RK_F32:
            memcpy(o, row, (size_t)cols * sizeof(float));
            break;
        case RK_F16: {
            const uint16_t *p = (const uint16_t *)row;
            for (long c = 0; c < cols; c++) o[c] = rk_half_to_float(p[c]);
            break;
        }
        case RK_Q8: {
            const int8_t *q = (const int8_t *)(row + 4 * nb);
            for (long c = 0; c < cols; c++) o[c] = rk_load_f32(row + 4 * (c / 32)) * (float)q[c];
            break;
        }
        case RK_Q8R: {
            const int8_t *q = (const int8_t *)(row + 4);
            const float s = rk_load_f32(row);
            for (long c = 0; c < cols; c++) o[c] = s * (float)q[c];
            break;
        }
        case RK_Q4I:
            for (long c = 0; c < cols; c++) o[c] = q4i_weight(w, row0 + r, c, cols);
            break;
        case RK_Q8RI: {
            const long i = (row0 + r) % 16;
            const unsigned char *g = (const unsigned char *)w + (row0 + r) / 16 * rk_q8ri_group_bytes(cols);
            const int8_t *q = (const int8_t *)(g + 128 + 4 * i);
            const float s = rk_load_f32(g + 4 * i);
            for (long c = 0; c < cols; c++) o[c] = s * (float)q[(c / 4) * 64 + c % 4];
            break;
        }
        case RK_Q4: {
            const unsigned char *q = row + 4 * nb;
            for (long b = 0; b < nb; b++) {
                float s = rk_load_f32(row + 4 * b);
                for (int j = 0; j < 32 && b * 32 + j < cols; j++) {
                    unsigned char byte = q[b * 16 + (j & 15)];
                    int nib = j < 16 ? byte & 15 : byte >> 4;
                    o[b * 32 + j] = s * (float)(nib - 8);
                }
            }
            break;
        }
        }
    }
}
