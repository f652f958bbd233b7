/* AMX (AMX-TILE + AMX-INT8) kernel for the batched q8ri product, on CPUs that have the tiles (Intel Xeon
 * from Sapphire Rapids on) and an OS that grants them (Linux ≥ 5.16, arch_prctl ARCH_REQ_XCOMP_PERM).
 *
 * One tdpbusd multiplies a tile of unsigned bytes A (M × 64: M vectors, 64 columns each) by a tile of
 * signed bytes B (16 × 64: 16 chunks of 4 columns for 16 rows, the q8ri layout as it is stored) into
 * M × 16 int32 sums, C[m][i] += Σ_k Σ_{j<4} A[m][4k + j] · B[k][4i + j]: the integer row sums
 * Σ_c u_m[c] · q[i, c] of rk_q8ri_avx512 for 16 vectors at once, exact (no saturation, and no overflow:
 * |Σ| ≤ 128 · 127 · cols). Each sum is then converted as the single kernel converts it,
 * y = ((float)(Σ − 64 · rowsum_i) · D_m) · s_i, so every vector gets the bits of its own product.
 *
 * Tiles: C for 4 groups of rows in tmm0–3, A in tmm4, B in tmm5; a last 32 columns (the q8ri padding is to
 * 32) use A' (M × 32) in tmm6 and B' (8 × 64) in tmm7. A is read straight from the vectors' quantized
 * copies (one stride apart), B straight from the weights. */
#include "internal.h"
#if defined(RK_X86) || defined(RK_AMX_CHECK)

#include <stdint.h>

#ifdef RK_AMX_CHECK
/* A portable model of the tile instructions used here, for checking this file's logic on machines without
 * AMX (bench/kernels/amx_check.c): 8 tiles of up to 16 rows × 64 bytes and their configuration. */
#define AMX
static struct { uint8_t rows[8]; uint16_t colsb[8]; unsigned char t[8][16][64]; } rk_tiles;
static void _tile_loadconfig(const void *cfg) {
    const unsigned char *c = (const unsigned char *)cfg;
    for (int i = 0; i < 8; i++) {
        memcpy(&rk_tiles.colsb[i], c + 16 + 2 * i, 2);
        rk_tiles.rows[i] = c[48 + i];
    }
}
static void _tile_release(void) { memset(&rk_tiles, 0, sizeof rk_tiles); }
static void _tile_zero(int t) { memset(rk_tiles.t[t], 0, sizeof rk_tiles.t[t]); }
static void _tile_loadd(int t, const void *p, long stride) {
    memset(rk_tiles.t[t], 0, sizeof rk_tiles.t[t]);
    for (int r = 0; r < rk_tiles.rows[t]; r++) memcpy(rk_tiles.t[t][r], (const unsigned char *)p + r * stride, rk_tiles.colsb[t]);
}
static void _tile_stored(int t, void *p, long stride) {
    for (int r = 0; r < rk_tiles.rows[t]; r++) memcpy((unsigned char *)p + r * stride, rk_tiles.t[t][r], rk_tiles.colsb[t]);
}
static void _tile_dpbusd(int c, int a, int b) {
    for (int m = 0; m < rk_tiles.rows[c]; m++)
        for (int i = 0; i < rk_tiles.colsb[c] / 4; i++) {
            int32_t s;
            memcpy(&s, &rk_tiles.t[c][m][4 * i], 4);
            for (int k = 0; k < rk_tiles.colsb[a] / 4; k++)
                for (int j = 0; j < 4; j++)
                    s = (int32_t)((uint32_t)s + (uint32_t)(rk_tiles.t[a][m][4 * k + j] * (int8_t)rk_tiles.t[b][k][4 * i + j]));
            memcpy(&rk_tiles.t[c][m][4 * i], &s, 4);
        }
}
int rk_amx_usable(void) { return 1; }
#else
#include <immintrin.h>
#include <cpuid.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#define AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq")))

/* cpuid leaf 7: AMX-TILE (edx bit 24) and AMX-INT8 (bit 25); then the tile data state requested from the
 * kernel for this process (ARCH_REQ_XCOMP_PERM, feature 18) and enabled in XCR0 (bits 17 and 18). */
static int amx_detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25))) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;   /* OSXSAVE, for xgetbv */
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) != 0) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & (3u << 17)) == (3u << 17);
}

static int amx_state = -1;   /* a benign race: every thread computes the same value */

int rk_amx_usable(void) {
    if (amx_state < 0) amx_state = rk_detected_level() >= RK_AVX512 && !getenv("RECUR_KERNELS") && amx_detect();
    return amx_state;
}
#endif

/* The tile configuration of ldtilecfg (palette 1). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} rk_tilecfg;

/* The 16 × 16 sums of group g (stored at `s`, vector m's at s[16m]) converted into y, with each vector's
 * scale d from its quantized copy (vector m's at xs + m · slot). */
AMX static inline void put_sums(float *y, long ldy, const int32_t *s, const unsigned char *G, const unsigned char *xs,
                                long slot, long cols, int n, long g, long row0, long end) {
    const float *scale = (const float *)G;
    const int32_t *rowsum = (const int32_t *)(G + 64);
    const int whole = 16 * g >= row0 && 16 * g + 16 <= end;
    for (int m = 0; m < n; m++) {
        const float d = rk_xr_view(xs + m * slot, cols).d;
        float v[16], *o = whole ? y + m * ldy + (16 * g - row0) : v;
        for (int i = 0; i < 16; i++)
            o[i] = ((float)(int32_t)((uint32_t)s[16 * m + i] - ((uint32_t)rowsum[i] << 6)) * d) * scale[i];
        if (!whole) rk_put_group(y + m * ldy, v, g, row0, end, 0);
    }
}

/* Tiles for blocks of m ≤ 16 vectors (rows of A and C). */
AMX static inline void configure(int m) {
    rk_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 5; t++) { cfg.rows[t] = (uint8_t)m; cfg.colsb[t] = 64; }   /* C0–C3, A */
    cfg.rows[5] = 16; cfg.colsb[5] = 64;                                              /* B */
    cfg.rows[6] = (uint8_t)m; cfg.colsb[6] = 32;                                      /* A' */
    cfg.rows[7] = 8; cfg.colsb[7] = 64;                                               /* B' */
    _tile_loadconfig(&cfg);
}

/* The sums of four groups of rows (their codes at q, one group every gb bytes) for the block of vectors at u:
 * `full` chunks of 64 columns, then 32 more when `tail`. */
AMX static inline void four_groups(int32_t sums[4][256], const unsigned char *q, long gb, const uint8_t *u,
                                   long ustride, long full, int tail) {
    const unsigned char *q0 = q, *q1 = q0 + gb, *q2 = q1 + gb, *q3 = q2 + gb;
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    for (long k = 0; k < full; k++) {
        _tile_loadd(4, u + 64 * k, ustride);
        _tile_loadd(5, q0 + 1024 * k, 64); _tile_dpbusd(0, 4, 5);
        _tile_loadd(5, q1 + 1024 * k, 64); _tile_dpbusd(1, 4, 5);
        _tile_loadd(5, q2 + 1024 * k, 64); _tile_dpbusd(2, 4, 5);
        _tile_loadd(5, q3 + 1024 * k, 64); _tile_dpbusd(3, 4, 5);
    }
    if (tail) {
        _tile_loadd(6, u + 64 * full, ustride);
        _tile_loadd(7, q0 + 1024 * full, 64); _tile_dpbusd(0, 6, 7);
        _tile_loadd(7, q1 + 1024 * full, 64); _tile_dpbusd(1, 6, 7);
        _tile_loadd(7, q2 + 1024 * full, 64); _tile_dpbusd(2, 6, 7);
        _tile_loadd(7, q3 + 1024 * full, 64); _tile_dpbusd(3, 6, 7);
    }
    _tile_stored(0, sums[0], 64); _tile_stored(1, sums[1], 64);
    _tile_stored(2, sums[2], 64); _tile_stored(3, sums[3], 64);
}

/* The same for one group. */
AMX static inline void one_group(int32_t sums[256], const unsigned char *q, const uint8_t *u, long ustride, long full,
                                 int tail) {
    _tile_zero(0);
    for (long k = 0; k < full; k++) {
        _tile_loadd(4, u + 64 * k, ustride);
        _tile_loadd(5, q + 1024 * k, 64); _tile_dpbusd(0, 4, 5);
    }
    if (tail) {
        _tile_loadd(6, u + 64 * full, ustride);
        _tile_loadd(7, q + 1024 * full, 64); _tile_dpbusd(0, 6, 7);
    }
    _tile_stored(0, sums, 64);
}

/* Vectors [j0, j1) (j1 − j0 a multiple of m, or less than 16 = m) in blocks of m, for every group of rows:
 * the blocks are the inner loop, so that each group's weights, read once from memory, serve every block
 * from the cache. */
AMX static void blocks(float *y, long ldy, const unsigned char *w, const unsigned char *xs, long slot, long j0, long j1,
                       int m, long row0, long end, long cols) {
    const long kp = (cols + 31) & ~31L, full = kp / 64, gb = rk_q8ri_group_bytes(cols), gend = (end + 15) / 16;
    const uint8_t *u = rk_xr_view(xs, cols).u;   /* vector j's u bytes at u + j · slot, as the A tiles read them */
    const int tail = (kp % 64) != 0;
    _Alignas(64) int32_t sums[4][256];
    long g = row0 / 16;
    for (; g + 4 <= gend; g += 4)   /* four groups of rows share each A tile */
        for (long j = j0; j < j1; j += m) {
            four_groups(sums, w + g * gb + 128, gb, u + j * slot, slot, full, tail);
            for (int i = 0; i < 4; i++)
                put_sums(y + j * ldy, ldy, sums[i], w + (g + i) * gb, xs + j * slot, slot, cols, m, g + i, row0, end);
        }
    for (; g < gend; g++)   /* the last 1–3 groups one at a time */
        for (long j = j0; j < j1; j += m) {
            one_group(sums[0], w + g * gb + 128, u + j * slot, slot, full, tail);
            put_sums(y + j * ldy, ldy, sums[0], w + g * gb, xs + j * slot, slot, cols, m, g, row0, end);
        }
}

/* y[j] (stride ldy) = rows [row0, row0 + rows) of the q8ri matrix w times vector j, for the n vectors quantized
 * (rk_quantize_xr) one slot apart from xs: the bits rk_q8ri_avx512 gives each. Blocks of 16 vectors, then one
 * block of the n mod 16 left (tiles configured once for each). */
AMX void rk_q8ri_batch_amx(float *y, long ldy, const void *w, const unsigned char *xs, long slot, long n, long row0,
                           long rows, long cols) {
    const long whole = n / 16 * 16;
    if (whole > 0) {
        configure(16);
        blocks(y, ldy, (const unsigned char *)w, xs, slot, 0, whole, 16, row0, row0 + rows, cols);
    }
    if (n > whole) {
        configure((int)(n - whole));
        blocks(y, ldy, (const unsigned char *)w, xs, slot, whole, n, (int)(n - whole), row0, row0 + rows, cols);
    }
    _tile_release();
}

#else
int rk_amx_usable(void) { return 0; }
#endif
