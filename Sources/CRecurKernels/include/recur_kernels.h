/*
 * recur_kernels.h — the matrix-vector kernels of Recur's recurrent step. Private to the Recur runtime:
 * this header is not part of the public C API (include/recur.h) and may change at any time.
 *
 * Every kernel computes  y[r] (+)= Σ_c W[r, c] · x[c]  for r in [0, rows)   (W: rows × cols, row-major)
 * with `accumulate` = 0 (store) or 1 (add to y). Weight layouts, per row of `cols` values:
 *
 *   f32  cols little-endian IEEE binary32.
 *   f16  cols little-endian IEEE binary16.
 *   q8   nb = ceil(cols/32) blocks. nb f32 scales s[0..nb), then nb·32 int8 q (last block zero padded).
 *        Row bytes 36·nb.  w[c] = s[c/32] · q[c].
 *   q4   nb f32 scales, then nb·16 bytes; byte j of block b holds element 32b+j in its low nibble and
 *        element 32b+j+16 in its high nibble (padding encodes 8).  Row bytes 20·nb.
 *        w[c] = s[c/32] · (nibble − 8).
 *   q8r  one f32 scale s, then nb·32 int8 q (zero padded).  Row bytes 4 + 32·nb.  w[c] = s · q[c].
 *   q8ri the codes and scales of q8r with the rows interleaved for the kernels: rows in groups of 16 (the
 *        last group padded with zero rows), a group being 16 f32 scales s_i, 16 int32 row sums Σ_c q[i, c],
 *        then 8·nb chunks of 64 bytes, chunk k holding columns 4k..4k+3 of the group's rows (row i's four
 *        codes at bytes 4i..4i+3).  Group bytes 16·(8 + 32·nb).  w[16g + i, c] = s_i · q[i, c].
 *        A vector of 64 bytes is 16 rows × 4 columns, so one vpdpbusd with 4 bytes of x broadcast adds
 *        into 16 row sums at once: no horizontal sums, x read once per group, weights streamed in order.
 *   q4i  the scales and nibbles of q4 with the rows interleaved the same way: groups of 16 rows (the last
 *        padded with zero rows: scale 0, nibble 8), a group being, for each block b, 16 f32 scales s_{i,b}
 *        then 4 vectors of 64 bytes; byte 4i + j of vector m holds row i's column 32b + 8m + j in its low
 *        nibble and column 32b + 8m + 4 + j in its high nibble.  Group bytes 320·nb.
 *        w[16g + i, c] = s_{i,c/32} · (nibble − 8), as in q4.
 *
 * Quantized kernels quantize x on the fly, per block of 32, to int8 (dynamic quantization):
 *   d_b = max|x_c| / 127,  x_c ≈ d_b · xq_c,  xq_c = round(x_c / d_b) ∈ [−127, 127]
 * and compute  y[r] = Σ_b s_b · d_b · Σ_{c ∈ b} q_c · xq_c  with exact integer block sums.
 * q8r kernels quantize x with one scale for the whole vector, to 7 bits and a sign:
 *   D = max|x| / 64,  xq_c = round(x_c / D) ∈ [−64, 64],   y[r] = s_r · D · Σ_c q_c · xq_c
 * with one exact integer sum per row (no per-block conversion: about twice the speed of q8 with AVX2).
 * q8ri is multiplied with the same x, its u8 form xq + 64 ∈ [0, 128] against the signed codes:
 *   Σ_c (xq_c + 64) · q_c = Σ_c xq_c · q_c + 64 · Σ_c q_c,   y[r] = s_r · D · (that − 64 · rowsum_r)
 * which is exactly q8r's integer sum, so q8ri and q8r give the same bits.
 *
 * Instruction sets, chosen at run time: on x86-64 (cpuid) AVX-512 F/BW/VL/DQ + VNNI (vpdpbusd) and AVX2 +
 * FMA + F16C (vpmaddubsw / vpmaddwd); on AArch64 NEON (Advanced SIMD, in every AArch64 CPU), its int8
 * products by sdot (ARMv8.2 dotprod) when the CPU has it (Linux: getauxval(AT_HWCAP) & HWCAP_ASIMDDP),
 * else by widening multiplies; and portable scalar C that runs everywhere.
 * The environment variable RECUR_KERNELS=scalar|avx2|avx512 caps the level (read once; on AArch64 only
 * "scalar" changes it).
 * All functions are thread-safe; none allocates except rk_matvec_q8/q4/q8r for cols > 16384.
 */
#ifndef RECUR_KERNELS_H
#define RECUR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Levels, per architecture: x86-64 0 scalar, 1 AVX2, 2 AVX-512; AArch64 0 scalar, 1 NEON. RK_AMX (x86-64,
 * rk_matmat_rows_at only) is AVX-512 with AMX int8 tiles for batches of q8ri products (rk_amx_usable). */
enum { RK_SCALAR = 0, RK_AVX2 = 1, RK_AVX512 = 2, RK_NEON = 1, RK_AMX = 3 };

/*
 * Weight types: the dtype codes of the file format (docs/FORMAT.md §7) and the one table of what each type
 * is (kernels.c). A row of `cols` elements takes
 *     element_bytes · cols                                                            (plain types: block = 1)
 *     row_scale_bytes + row_sum_bytes + nb · (block_scale_bytes + block_value_bytes)  (blocked: nb = ⌈cols / block⌉)
 * bytes, and a matrix of `rows` rows ⌈rows / row_group⌉ · row_group of them: row-major types have
 * row_group = 1 (row r at r · row bytes); interleaved types store groups of row_group rows (the last one
 * padded with zero rows), so that their rows are addressed by index (row0 arguments below), never by
 * pointer arithmetic. Switches over rk_dtype list every type and have no default, so a type missing from one is a
 * compiler warning (and the test command fails on warnings), never a silent run of another kernel.
 */
typedef enum rk_dtype { RK_F32 = 0, RK_F16 = 1, RK_Q8 = 2, RK_Q4 = 3, RK_Q8R = 4, RK_Q8RI = 5, RK_Q4I = 6 } rk_dtype;
enum { RK_DTYPE_COUNT = 7 };

/* How a product W·x with a matrix of the type treats x (see the kernels above). */
enum { RK_X_EXACT = 0, RK_X_PER_BLOCK = 1, RK_X_PER_VECTOR = 2 };

typedef struct rk_dtype_info {
    const char *name;          /* as in files' tools and on the command line: "f32", "q8r", ... */
    int block;                 /* elements per block along a row; 1 for plain types */
    int element_bytes;         /* plain types: bytes per element */
    int row_scale_bytes;       /* blocked types: bytes of per-row scales before the blocks */
    int row_sum_bytes;         /* blocked types: bytes of per-row code sums (int32) after the scales */
    int row_group;             /* rows stored together: 1 (row-major), or the interleave of the rows */
    int block_scale_bytes;     /* blocked types: bytes of scales per block (stored before all values) */
    int block_value_bytes;     /* blocked types: bytes of values per block */
    int x_quantization;        /* RK_X_EXACT, RK_X_PER_BLOCK (per block of 32) or RK_X_PER_VECTOR (rk_quantize_xr) */
    int format_major;          /* the first major version of the file format that has the type */
} rk_dtype_info;

/* The table entry of a dtype code, or NULL when the code is not a dtype. */
const rk_dtype_info *rk_dtype_of(int dtype);
/* Bytes of one row of `cols` elements; -1 for an unknown code, a negative `cols` or an overflow. */
long long rk_row_bytes(int dtype, long long cols);
/* Bytes of a rows × cols matrix (rows padded to the type's row_group); -1 as above. */
long long rk_matrix_bytes(int dtype, long long rows, long long cols);

/* The level the kernels use: the best the CPU supports, capped by RECUR_KERNELS. */
int rk_level(void);
/* The best level the CPU supports (ignores RECUR_KERNELS). */
int rk_detected_level(void);
/* "scalar", "avx2", "avx512"; on AArch64 "scalar", "neon". */
const char *rk_level_name(int level);
/* 1 when batches of q8ri products run on AMX tiles (tdpbusd): the CPU has AMX-TILE and AMX-INT8, the OS grants
 * the tile state to this process (requested here, once) and RECUR_KERNELS is unset; else 0. The same bits as
 * without (exact integer sums, each converted as the single product converts it). */
int rk_amx_usable(void);

/*
 * y (+)= W·x for a rows × cols matrix W of any dtype (y = W·x, or y += W·x when `accumulate`), at the
 * default level or an explicit one (clamped to rk_detected_level(); for tests and benchmarks). Quantized
 * dtypes quantize x as the table's x_quantization says. Returns 0, or -1 (y untouched) for a code that
 * is not a dtype.
 */
int rk_matvec(int dtype, float *y, const void *w, const float *x, long rows, long cols, int accumulate);
int rk_matvec_at(int level, int dtype, float *y, const void *w, const float *x, long rows, long cols, int accumulate);
/* The same for rows [row0, row0 + rows) of the matrix that starts at w: y[i] (+)= row (row0 + i) · x. */
int rk_matvec_rows_at(int level, int dtype, float *y, const void *w, const float *x, long row0, long rows, long cols,
                      int accumulate);

/*
 * Two-phase form for splitting rows across threads: x prepared once for a dtype (quantized when its
 * x_quantization is not RK_X_EXACT) into `xq` of rk_x_bytes(dtype, cols) bytes, 64-byte aligned (0: none
 * needed, `xq` unused), then any range of rows multiplied against it (x itself for exact dtypes).
 */
size_t rk_x_bytes(int dtype, long cols);
void rk_prepare_x(int dtype, void *xq, const float *x, long cols);
void rk_matvec_prepared(int dtype, float *y, const void *w, const float *x, const void *xq, long row0, long rows,
                        long cols, int accumulate);

/*
 * f32 matrices of few columns (a frame of features, a small state) multiplied from a copy in column blocks,
 * made once at load: per block of 16 rows, the block's columns one after another, 16 floats each (rows past
 * the end 0). At the AVX2 and AVX-512 levels their kernels sum a block of 16 rows at once instead of one
 * horizontal sum per row, with the additions of the row kernel in its order: the bits of rk_matvec(RK_F32, …)
 * at the same level.
 *   rk_f32_columns_max     the most columns the level in use multiplies so (64 at AVX2 and AVX-512, else 0)
 *   rk_f32_columns_bytes   bytes of the copy, or 0 when the level has no such kernel or the shape gains
 *                          nothing (cols > rk_f32_columns_max(), rows < 16): then use the matrix itself
 *   rk_f32_columns_pack    writes the copy of w (rows × cols, row-major) into out (64-byte aligned)
 *   rk_f32_columns_matvec  y (+)= W·x from the copy, or from w itself at a level without the kernel
 */
long rk_f32_columns_max(void);
size_t rk_f32_columns_bytes(long rows, long cols);
void rk_f32_columns_pack(float *out, const float *w, long rows, long cols);
void rk_f32_columns_matvec(float *y, const float *packed, const float *w, const float *x, long rows, long cols,
                           int accumulate);

/*
 * Checks the bytes of a rows × cols matrix of a quantized dtype as a reader must: every scale s finite with
 * s · (largest code) finite (so every decoded weight is finite), q8/q8r/q8ri codes in −127…127, padding past
 * `cols` zero (q4: nibble 8), q8ri row sums equal to the sums of the codes and padding rows all zero. Returns 0 when valid, else 1 + the first bad row,
 * with *what set to a static description of the fault. Other dtypes return 0.
 */
long rk_check_quantized(int dtype, const void *w, long rows, long cols, const char **what);

/*
 * Y (n × rows) = X (n × cols) · Wᵀ for f32 weights: n vectors against one matrix, each weight read once
 * per group of 4 vectors (the batched step of a few streams; for many, sgemm is faster).
 */
void rk_matmat_f32(float *y, const float *w, const float *x, long n, long rows, long cols);

/*
 * Y (n × rows) = X (n × cols) · Wᵀ for rows [row0, row0 + rows) of the matrix at w, any dtype: exactly the n
 * products rk_matvec_rows_at gives (the same bits, each x quantized as there). q8ri weights are read once
 * per group of 16 vectors (RK_AMX), 8 (AVX-512) or 4 (AVX2), f32 weights once per 8 vectors (AVX-512); the other types
 * are multiplied vector by vector, x quantized once each. Allocates (x's quantized copies) only past 64 KiB of them; returns -1 (y untouched)
 * for a code that is not a dtype, else 0.
 */
int rk_matmat_rows(int dtype, float *y, const void *w, const float *x, long n, long row0, long rows, long cols);
int rk_matmat_rows_at(int level, int dtype, float *y, const void *w, const float *x, long n, long row0, long rows,
                      long cols);
/* The same product for n vectors already prepared for dtype (rk_prepare_x; xq[j] is vector j's copy, 64-byte
 * aligned, anywhere), at the CPU's level: the bits rk_matmat_rows gives the vectors themselves. -1 (y untouched)
 * for a code that is not a dtype or a dtype that quantizes nothing, else 0. */
int rk_matmat_prepared(int dtype, float *y, const void *w, const void *const *xq, long n, long row0, long rows,
                       long cols);

/*
 * A pool of worker threads for one matrix-vector product at a time, rows split evenly (in groups of 16).
 * Created with the total thread count (caller included, ≥ 2; NULL otherwise or on failure). Workers spin
 * for 0.2 ms after a product, then sleep. rk_pool_matvec is safe to call from several threads: while the
 * pool serves one caller, the others compute on their own thread. dtype: any rk_dtype.
 */
typedef struct rk_pool rk_pool;
rk_pool *rk_pool_create(int threads);
void rk_pool_destroy(rk_pool *pool);
int rk_pool_threads(const rk_pool *pool);
void rk_pool_matvec(rk_pool *pool, int dtype, float *y, const void *w, const float *x, long row0, long rows,
                    long cols, int accumulate);

/*
 * Activation functions applied in place to x[0..n), by kind: linear, relu, tanh, sigmoid, hard sigmoid
 * (Keras 2: clip(0.2x + 0.5, 0, 1)), hard sigmoid (Keras 3: clip(x/6 + 0.5, 0, 1)).
 * With AVX2, tanh and sigmoid use a vectorized exp (Cephes polynomial, |error| ≲ 2e-7 absolute for
 * tanh and sigmoid); otherwise libm's expf/tanhf.
 */
enum { RK_LINEAR = 0, RK_RELU = 1, RK_TANH = 2, RK_SIGMOID = 3, RK_HARD_SIGMOID_KERAS2 = 4, RK_HARD_SIGMOID_KERAS3 = 5 };
void rk_activate(int kind, float *x, long n);

/*
 * The element-wise arithmetic of the cells' gates, each element computed exactly as written (no fused
 * multiply-add: the same bits as the plain expression in any language), vectorized by the compiler for
 * the kernel level (rk_level: 16 lanes with AVX-512, 8 with AVX2), each lane rounded the same way:
 *   rk_add          y[i] = y[i] + x[i]
 *   rk_add_mul      y[i] = y[i] + a[i] · b[i]
 *   rk_mul          y[i] = a[i] · b[i]
 *   rk_gru_candidate n[i] = gx[i] + r[i] · n[i]
 *   rk_gru_update   h[i] = (1 − z[i]) · n[i] + z[i] · h[i]
 *   rk_lstm_cell    c[i] = f[i] · c[i] + in[i] · g[i]
 * Output arrays must not overlap the inputs (except as the expressions say: y, n, h, c are read and written).
 */
void rk_add(float *y, const float *x, long n);
void rk_add_mul(float *y, const float *a, const float *b, long n);
void rk_mul(float *y, const float *a, const float *b, long n);
void rk_gru_candidate(float *n, const float *gx, const float *r, long count);
void rk_gru_update(float *h, const float *z, const float *n, long count);
void rk_lstm_cell(float *c, const float *in, const float *f, const float *g, long count);

/*
 * The gates of one step of a cell given gu, its recurrent product (the gates' rows of U·h, stacked by gate,
 * H floats each), and gx = W·x + b (the same layout); `ract` and `act` are activation kinds as above (the
 * recurrent activation σ and the activation). Each element is computed as the expressions of rk_add,
 * rk_gru_candidate, … and rk_activate would compute it pass by pass, so the same bits; with AVX2, AVX-512
 * or NEON and σ, act ∈ {RK_TANH, RK_SIGMOID}, in one pass. gu is scratch: its contents afterwards are unspecified.
 *   rk_gru_gates (reset after; bh the recurrent bias or NULL; gates r, z, n):
 *     r = σ(gu_r + bh_r + gx_r),  z = σ(gu_z + bh_z + gx_z),  n = act(gx_n + r ⊙ (gu_n + bh_n)),
 *     h = (1 − z) ⊙ n + z ⊙ h
 *   rk_lstm_gates (p the peepholes, 3 × H rows i, f, o, or NULL; gates i, f, g, o; tmp H floats):
 *     i = σ(gu_i + gx_i + p_i ⊙ c),  f = σ(gu_f + gx_f + p_f ⊙ c),  g = act(gu_g + gx_g),
 *     c = f ⊙ c + i ⊙ g,  o = σ(gu_o + gx_o + p_o ⊙ c),  h = o ⊙ act(c)
 */
void rk_gru_gates(float *h, float *gu, const float *bh, const float *gx, long H, int ract, int act);
void rk_lstm_gates(float *h, float *c, float *gu, const float *gx, const float *p, long H, int ract, int act,
                   float *tmp);

/* Decodes rows [row0, row0 + rows) of the matrix at w into f32 (out: rows × cols), any dtype. */
void rk_dequantize(float *out, const void *w, int dtype, long row0, long rows, long cols);

#ifdef __cplusplus
}
#endif
#endif
