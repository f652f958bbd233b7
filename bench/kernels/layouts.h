/* What the kernel checks (simde_check.c, neon_check.c) share: pseudo-random values, the weight layouts of
 * recur_kernels.h written from their description (q8, q4 from f32 values; the interleaved q8ri and q4i from
 * q8r and q4), sharing no code with the library's encoders, and the gates of a step pass by pass. Included
 * after internal.h. */
#ifndef RECUR_BENCH_LAYOUTS_H
#define RECUR_BENCH_LAYOUTS_H
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

/* Encodes a row-major f32 matrix: q8 (dtype 2) or q4 (3), as in Kernels/Quantized.swift. */
static unsigned char *encode(const float *v, long rows, long cols, int dtype) {
    long nb = (cols + 31) / 32, rb = dtype == 2 ? 36 * nb : 20 * nb;
    unsigned char *o = calloc((size_t)(rows * rb), 1);
    for (long r = 0; r < rows; r++)
        for (long b = 0; b < nb; b++) {
            float amax = 0, sgn = 0;
            for (long c = b * 32; c < cols && c < b * 32 + 32; c++)
                if (fabsf(v[r * cols + c]) > amax) { amax = fabsf(v[r * cols + c]); sgn = v[r * cols + c]; }
            float sc = dtype == 2 ? amax / 127 : sgn / -8;
            float inv = sc != 0 ? 1 / sc : 0;
            memcpy(o + r * rb + 4 * b, &sc, 4);
            for (int j = 0; j < 32; j++) {
                long c = b * 32 + j;
                float e = c < cols ? v[r * cols + c] : 0;
                if (dtype == 2) {
                    o[r * rb + 4 * nb + c] = (unsigned char)(int8_t)fmaxf(-127, fminf(127, nearbyintf(e * inv)));
                } else {
                    int q = (int)fmaxf(0, fminf(15, nearbyintf(e * inv) + 8));
                    if (c >= cols) q = 8;
                    unsigned char *p = o + r * rb + 4 * nb + b * 16 + (j & 15);
                    *p = j < 16 ? (unsigned char)((*p & 0xF0) | q) : (unsigned char)((*p & 0x0F) | (q << 4));
                }
            }
        }
    return o;
}

/* q8r rows (4 + n bytes each) → q8ri groups of 16 (recur_kernels.h). */
static unsigned char *interleave(const unsigned char *q8r, long rows, long cols) {
    const long n = (cols + 31) / 32 * 32, gb = 128 + 16 * n, groups = (rows + 15) / 16;
    unsigned char *o = calloc((size_t)(groups * gb), 1);
    for (long r = 0; r < rows; r++) {
        unsigned char *g = o + (r / 16) * gb;
        const long i = r % 16;
        memcpy(g + 4 * i, q8r + r * (4 + n), 4);
        int32_t sum = 0;
        for (long c = 0; c < n; c++) {
            const int8_t v = (int8_t)q8r[r * (4 + n) + 4 + c];
            sum += v;
            g[128 + (c / 4) * 64 + 4 * i + c % 4] = (unsigned char)v;
        }
        memcpy(g + 64 + 4 * i, &sum, 4);
    }
    return o;
}

/* q4 rows (nb scales, then nb·16 packed bytes) → q4i groups of 16 rows (recur_kernels.h). */
static unsigned char *interleave4(const unsigned char *q4, long rows, long cols) {
    const long nb = (cols + 31) / 32, rb = 20 * nb, groups = (rows + 15) / 16;
    unsigned char *o = calloc((size_t)(groups * 320 * nb), 1);
    for (long r = 0; r < groups * 16; r++)
        for (long b = 0; b < nb; b++) {
            unsigned char *B = o + (r / 16) * 320 * nb + 320 * b;
            const long i = r % 16;
            if (r < rows) memcpy(B + 4 * i, q4 + r * rb + 4 * b, 4);
            for (int j = 0; j < 32; j++) {
                int nib = 8;
                if (r < rows) {
                    const unsigned char byte = q4[r * rb + 4 * nb + 16 * b + (j & 15)];
                    nib = j < 16 ? byte & 15 : byte >> 4;
                }
                unsigned char *p = B + 64 + 64 * (j / 8) + 4 * i + j % 4;
                *p = (j % 8) < 4 ? (unsigned char)((*p & 0xF0) | nib) : (unsigned char)((*p & 0x0F) | (nib << 4));
            }
        }
    return o;
}

/* Inputs of the gate checks: gu and gx (4H, up to ±6: saturating activations), e (3H: a recurrent bias or
 * peepholes), h0 and c0 (H each). */
static void gate_inputs(long H, float *gu, float *gx, float *e, float *h0, float *c0) {
    for (long i = 0; i < 4 * H; i++) { gu[i] = 6 * frand(); gx[i] = 6 * frand(); }
    for (long i = 0; i < 3 * H; i++) e[i] = frand();
    for (long i = 0; i < H; i++) { h0[i] = frand(); c0[i] = 3 * frand(); }
}

/* The gates of a reset-after GRU step pass by pass (rk_gru_gates' definition): the element-wise kernels and
 * `activate` on whole vectors (σ sigmoid, act tanh). u: a copy of gu, overwritten. */
static void gru_gates_by_passes(void (*activate)(int, float *, long), float *h, float *u, const float *bh,
                                const float *gx, long H) {
    if (bh) rk_add(u, bh, 3 * H);
    rk_add(u, gx, 2 * H);
    activate(RK_SIGMOID, u, 2 * H);
    rk_gru_candidate(u + 2 * H, gx + 2 * H, u, H);
    activate(RK_TANH, u + 2 * H, H);
    rk_gru_update(h, u + H, u + 2 * H, H);
}

/* The same for an LSTM step (rk_lstm_gates' definition); tmp: H floats. */
static void lstm_gates_by_passes(void (*activate)(int, float *, long), float *h, float *c, float *u, const float *gx,
                                 const float *p, long H, float *tmp) {
    rk_add(u, gx, 4 * H);
    if (p) { rk_add_mul(u, p, c, H); rk_add_mul(u + H, p + H, c, H); }
    activate(RK_SIGMOID, u, 2 * H);
    activate(RK_TANH, u + 2 * H, H);
    rk_lstm_cell(c, u, u + H, u + 2 * H, H);
    if (p) rk_add_mul(u + 3 * H, p + 2 * H, c, H);
    activate(RK_SIGMOID, u + 3 * H, H);
    memcpy(tmp, c, sizeof(float) * (size_t)H);
    activate(RK_TANH, tmp, H);
    rk_mul(h, u + 3 * H, tmp, H);
}

#endif
