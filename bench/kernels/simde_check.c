/* Checks the AVX-512 kernels' logic on any x86-64 machine by compiling them against SIMDe's portable
 * emulation of the intrinsics (Debian: libsimde-dev), and comparing with the scalar kernels.
 *   bench/kernels/simde_check.sh       → prints "N passed, 0 failed" */
#include "internal.h"
#include "layouts.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int passed, failed, has_avx2;
static void expect(const char *what, long rows, long cols, const float *a, const float *b, double tol) {
    double worst = 0;
    for (long r = 0; r < rows; r++) worst = fmax(worst, fabs((double)a[r] - b[r]));
    if (worst <= tol) passed++;
    else { failed++; printf("FAIL %s %ldx%ld: max-abs %g > %g\n", what, rows, cols, worst, tol); }
}

typedef void (*quantizer)(void *buf, const float *x, long cols);

/* A quantizer's AVX-512 and AVX2 versions write its scalar version's first `bytes` bytes, padding included, for
 * random vectors, exact ties (x · m / max|x| = k + ½ in each block of `block` elements), zeros, and vectors
 * holding NaN or ±∞. */
static void check_quantizer(const char *name, quantizer scalar, quantizer avx2, quantizer avx512, long cols,
                            size_t bytes, size_t alloc, long block, int m) {
    float *x = malloc(sizeof(float) * cols);
    unsigned char *a = aligned_alloc(64, alloc), *b = aligned_alloc(64, alloc);
    for (int kind = 0; kind < 6; kind++) {
        for (long c = 0; c < cols; c++) {
            x[c] = frand();
            if (kind == 1) x[c] = c % block == 0 ? 1.0f : (float)((c % (2 * m + 1)) - m + 0.5) / (float)m;
            if (kind == 2) x[c] = 0;
            if (kind == 3 && c % 7 == 3) x[c] = NAN;
            if (kind == 4 && c == cols / 2) x[c] = INFINITY;
            if (kind == 5 && c == cols - 1) x[c] = -INFINITY;
        }
        memset(a, 0xA5, bytes);
        scalar(a, x, cols);
        for (int level = 1; level <= 2; level++) {
            if (level == 1 && !has_avx2) continue;
            memset(b, 0x5A, bytes);
            (level == 2 ? avx512 : avx2)(b, x, cols);
            if (memcmp(a, b, bytes) == 0) passed++;
            else {
                failed++;
                long at = 0;
                while (a[at] == b[at]) at++;
                printf("FAIL %s %s cols %ld kind %d: byte %ld is %d, not %d\n", name, level == 2 ? "avx512" : "avx2",
                       cols, kind, at, b[at], a[at]);
            }
        }
    }
    free(x); free(a); free(b);
}

/* Per-vector quantization (q8r, q8ri): scale, sum, q and u; ties at k + ½ of x · 64 / max|x| over the vector. */
static void check_quantize_xr(long cols) {
    check_quantizer("quantize_xr", rk_quantize_xr_scalar, rk_quantize_xr_avx2, rk_quantize_xr_avx512, cols,
                    rk_xr_bytes(cols), rk_xr_bytes(cols), cols, 64);
}

/* Per-block quantization (q8, q4, q4i): d, t8, t128, n8 and q (all but qp); ties at k + ½ of x · 127 / max|x| in
 * each block of 32. */
static void check_quantize_x(long cols) {
    check_quantizer("quantize_x", rk_quantize_scalar, rk_quantize_avx2, rk_quantize_avx512, cols,
                    (size_t)rk_nbp(cols) * (RK_XQ_SCALE_BYTES + 32), rk_xq_bytes(cols), 32, 127);
}

int main(void) {
    __builtin_cpu_init();
    has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const long sizes[][2] = {{1, 1}, {3, 5}, {7, 31}, {13, 33}, {5, 64}, {9, 100}, {17, 129}, {4, 255},
                             {11, 513}, {6, 1000}, {3, 2049}, {16, 64}, {35, 100}, {48, 257}, {100, 40},
                             {8, 8}, {13, 3}, {96, 8}, {24, 1}, {7, 6}, {21, 7}, {200, 40}, {768, 12},
                             {33, 16}, {47, 17}, {31, 48}, {50, 63}};
    for (long cols = 1; cols <= 300; cols++) check_quantize_xr(cols);
    for (long cols = 500; cols <= 2100; cols += 97) check_quantize_xr(cols);
    for (long cols = 1; cols <= 300; cols++) check_quantize_x(cols);
    for (long cols = 500; cols <= 2100; cols += 97) check_quantize_x(cols);
    /* rk_turn: alternates per matrix; forgets a matrix after RK_TURN_SLOTS others */
    {
        static const char m[RK_TURN_SLOTS + 2];
        int ok = rk_turn(m) == 0 && rk_turn(m) == 1 && rk_turn(m) == 0 && rk_turn(m + 1) == 0 && rk_turn(m) == 1;
        for (int i = 0; i < RK_TURN_SLOTS; i++) ok = ok && rk_turn(m + 2 + i) == 0;
        ok = ok && rk_turn(m) == 0;
        if (ok) passed++;
        else { failed++; printf("FAIL rk_turn\n"); }
    }
    /* f32 past L2 (RK_TURN_MIN_BYTES to _MAX_BYTES): three products in turn, forwards, backwards, forwards, the
     * same bits */
    {
        const long rows = 1537, cols = 256;
        float *w = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * cols);
        float *y0 = malloc(sizeof(float) * rows), *y1 = malloc(sizeof(float) * rows), *y2 = malloc(sizeof(float) * rows);
        for (long i = 0; i < rows * cols; i++) w[i] = frand();
        for (long c = 0; c < cols; c++) x[c] = frand();
        rk_f32_avx512(y0, w, x, rows, cols, 0);
        rk_f32_avx512(y1, w, x, rows, cols, 0);
        rk_f32_avx512(y2, w, x, rows, cols, 0);
        if (memcmp(y0, y1, sizeof(float) * rows) == 0 && memcmp(y0, y2, sizeof(float) * rows) == 0) passed++;
        else { failed++; printf("FAIL f32 avx512 in turns %ldx%ld\n", rows, cols); }
        rk_f32_scalar(y1, w, x, rows, cols, 0);
        expect("f32 avx512 in turns", rows, cols, y1, y0, 1e-4 * sqrt((double)cols));
        free(w); free(x); free(y0); free(y1); free(y2);
    }
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        long rows = sizes[t][0], cols = sizes[t][1];
        float *w = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * cols);
        uint16_t *h = malloc(2 * rows * cols);
        float *ya = malloc(sizeof(float) * rows), *yb = malloc(sizeof(float) * rows);
        for (long i = 0; i < rows * cols; i++) {
            w[i] = frand();
            _Float16 f = (_Float16)w[i];
            memcpy(h + i, &f, 2);
        }
        for (long c = 0; c < cols; c++) x[c] = frand();
        for (int acc = 0; acc < 2; acc++) {
            for (long r = 0; r < rows; r++) ya[r] = yb[r] = (float)r;
            rk_f32_scalar(ya, w, x, rows, cols, acc);
            rk_f32_avx512(yb, w, x, rows, cols, acc);
            expect("f32", rows, cols, ya, yb, 1e-4 * sqrt((double)cols));
            for (long r = 0; r < rows; r++) ya[r] = yb[r] = (float)r;
            rk_f16_scalar(ya, h, x, rows, cols, acc);
            rk_f16_avx512(yb, h, x, rows, cols, acc);
            expect("f16", rows, cols, ya, yb, 1e-4 * sqrt((double)cols));
        }
        /* f32 from the copy in column blocks (rk_f32_columns_pack): the row kernel's bits */
        if (cols <= 64) {   /* what the AVX-512 kernel takes (rk_f32_columns_max), the AVX2 one too */
            float *p = aligned_alloc(64, sizeof(float) * 16 * (size_t)((rows + 15) / 16) * (size_t)cols);
            float *yc = malloc(sizeof(float) * rows);
            rk_f32_columns_pack(p, w, rows, cols);
            for (int acc = 0; acc < 2; acc++) {
                for (long r = 0; r < rows; r++) ya[r] = yc[r] = (float)r;
                rk_f32_avx512(ya, w, x, rows, cols, acc);
                rk_f32_columns_avx512(yc, p, x, rows, cols, acc);
                expect("f32 columns avx512", rows, cols, ya, yc, 0);
                if (!has_avx2) continue;
                for (long r = 0; r < rows; r++) ya[r] = yc[r] = (float)r;
                rk_f32_avx2(ya, w, x, rows, cols, acc);
                rk_f32_columns_avx2(yc, p, w, x, rows, cols, acc);
                expect("f32 columns avx2", rows, cols, ya, yc, 0);
            }
            free(p); free(yc);
        }
        /* f32, several vectors (x, −x, x/3): each the single AVX-512 product's bits */
        {
            float *xs = malloc(sizeof(float) * 3 * cols), *y3 = malloc(sizeof(float) * 3 * rows);
            const float *xp[3] = {xs, xs + cols, xs + 2 * cols};
            for (long c = 0; c < cols; c++) { xs[c] = x[c]; xs[cols + c] = -x[c]; xs[2 * cols + c] = x[c] / 3; }
            rk_f32_batch_avx512(y3, rows, w, xp, 3, rows, cols);
            for (int j = 0; j < 3; j++) {
                rk_f32_avx512(ya, w, xp[j], rows, cols, 0);
                expect("f32 batch avx512", rows, cols, ya, y3 + j * rows, 0);
            }
            free(xs); free(y3);
        }
        void *xq = aligned_alloc(64, rk_xq_bytes(cols));
        rk_quantize_scalar(xq, x, cols);
        rk_permute_xq(xq, cols);
        rk_xq v = rk_xq_view(xq, cols);
        for (int dt = 2; dt <= 3; dt++) {
            unsigned char *enc = encode(w, rows, cols, dt);
            for (int acc = 0; acc < 2; acc++) {
                for (long r = 0; r < rows; r++) ya[r] = yb[r] = (float)r;
                if (dt == 2) { rk_q8_scalar(ya, enc, &v, rows, acc); rk_q8_avx512(yb, enc, &v, rows, acc); }
                else { rk_q4_scalar(ya, enc, &v, rows, acc); rk_q4_avx512(yb, enc, &v, rows, acc); }
                expect(dt == 2 ? "q8" : "q4", rows, cols, ya, yb, 1e-4 * sqrt((double)cols));
            }
            free(enc);
        }
        /* q4i: q4's scales and nibbles interleaved by 16 rows; every level gives the scalar kernel's bits,
         * and the scalar kernel agrees with q4's within rounding. */
        {
            unsigned char *enc = encode(w, rows, cols, 3), *il = interleave4(enc, rows, cols);
            const long views[][2] = {{0, rows}, {rows / 3, rows - rows / 3}, {rows - 1, 1}};
            for (int k = 0; k < 3; k++) {
                const long r0 = views[k][0], m = views[k][1];
                for (int acc = 0; acc < 2; acc++) {
                    for (long r = 0; r < m; r++) ya[r] = yb[r] = (float)r;
                    rk_q4_scalar(ya, enc + r0 * 20 * ((cols + 31) / 32), &v, m, acc);
                    rk_q4i_scalar(yb, il, &v, r0, m, acc);
                    expect("q4i scalar vs q4", m, cols, ya, yb, 1e-4 * sqrt((double)cols));
                    for (long r = 0; r < m; r++) ya[r] = (float)r;
                    rk_q4i_avx512(ya, il, &v, r0, m, acc);
                    /* (bitwise natively, KernelTests; SIMDe may emulate the fused multiply-adds unfused) */
                    expect("q4i avx512", m, cols, ya, yb, 1e-5 * sqrt((double)cols));
                    if (has_avx2) {
                        for (long r = 0; r < m; r++) ya[r] = (float)r;
                        rk_q4i_avx2(ya, il, &v, r0, m, acc);
                        expect("q4i avx2", m, cols, ya, yb, 0);
                    }
                }
            }
            const char *what;
            if (rk_check_quantized(6, il, rows, cols, &what) != 0) { failed++; printf("FAIL q4i check: %s\n", what); }
            else passed++;
            free(il); free(enc);
        }
        /* q8r: one scale per row, x quantized per vector; exact integer sums, so the same bits. */
        {
            const long n = (cols + 31) / 32 * 32;
            unsigned char *enc = calloc((size_t)rows, (size_t)(4 + n));
            for (long r = 0; r < rows; r++) {
                float amax = 0;
                for (long c = 0; c < cols; c++) amax = fmaxf(amax, fabsf(w[r * cols + c]));
                float sc = amax / 127, inv = sc > 0 ? 1 / sc : 0;
                memcpy(enc + r * (4 + n), &sc, 4);
                for (long c = 0; c < cols; c++)
                    ((int8_t *)(enc + r * (4 + n) + 4))[c] = (int8_t)fmaxf(-127, fminf(127, roundf(w[r * cols + c] * inv)));
            }
            void *xr = aligned_alloc(64, rk_xr_bytes(cols));
            rk_quantize_xr_scalar(xr, x, cols);
            rk_xr vr = rk_xr_view(xr, cols);
            for (int acc = 0; acc < 2; acc++) {
                for (long r = 0; r < rows; r++) ya[r] = yb[r] = (float)r;
                rk_q8r_scalar(ya, enc, &vr, rows, acc);
                rk_q8r_avx512(yb, enc, &vr, rows, acc);
                expect("q8r", rows, cols, ya, yb, 0);
            }
            /* q8ri: the same codes interleaved by 16 rows; every kernel equals q8r's scalar kernel bit for
             * bit, on the whole matrix and on views that start and end inside a group. */
            unsigned char *il = interleave(enc, rows, cols);
            const long views[][2] = {{0, rows}, {rows / 3, rows - rows / 3}, {rows / 2, (rows + 1) / 4}, {rows - 1, 1}};
            for (int k = 0; k < 4; k++) {
                const long r0 = views[k][0], m = views[k][1];
                if (m <= 0) continue;
                for (int acc = 0; acc < 2; acc++) {
                    for (long r = 0; r < m; r++) ya[r] = yb[r] = (float)r;
                    rk_q8r_scalar(ya, enc + r0 * (4 + n), &vr, m, acc);
                    rk_q8ri_scalar(yb, il, &vr, r0, m, acc);
                    expect("q8ri scalar", m, cols, ya, yb, 0);
                    for (long r = 0; r < m; r++) yb[r] = (float)r;
                    rk_q8ri_avx512(yb, il, &vr, r0, m, acc);
                    expect("q8ri avx512", m, cols, ya, yb, 0);
                    if (has_avx2) {
                        for (long r = 0; r < m; r++) yb[r] = (float)r;
                        rk_q8ri_avx2(yb, il, &vr, r0, m, acc);
                        expect("q8ri avx2", m, cols, ya, yb, 0);
                    }
                }
            }
            /* The batched kernels: 1 to 8 vectors (x, −x/2, x², ...) in one pass over three ranges of rows (the
             * groups taken 1 to 4 at a time, cut by either end), each equal to its single product. */
            {
                float *xs = malloc(sizeof(float) * 8 * cols), *yb8 = malloc(sizeof(float) * 8 * rows);
                unsigned char *bufs = aligned_alloc(64, 8 * rk_xr_bytes(cols));
                rk_xr vs[8];
                for (int j = 0; j < 8; j++) {
                    for (long c = 0; c < cols; c++) {
                        const float v = x[c], k = (float)(j + 1);
                        xs[j * cols + c] = j == 0 ? v : j == 1 ? -v / 2 : j == 2 ? v * v : j % 2 ? v / k - x[(c * 7 + j) % cols] : x[(c * 3 + j) % cols] * k;
                    }
                    rk_quantize_xr_scalar(bufs + j * rk_xr_bytes(cols), xs + j * cols, cols);
                    vs[j] = rk_xr_view(bufs + j * rk_xr_bytes(cols), cols);
                }
                const long r5 = rows > 5 ? 5 : 0, m5 = rows - r5 > 100 ? 50 : (rows - r5 + 1) / 2;
                const long ranges[3][2] = {{0, rows}, {rows / 3, rows - rows / 3}, {r5, m5}};
                for (int t = 0; t < 3; t++) {
                    const long r0 = ranges[t][0], m = ranges[t][1];
                    if (m <= 0) continue;
                    for (int nv = 1; nv <= 8; nv++) {
                        rk_q8ri_batch_avx512(yb8, m, il, vs, nv, r0, m);
                        for (int j = 0; j < nv; j++) {
                            rk_q8r_scalar(ya, enc + r0 * (4 + n), &vs[j], m, 0);
                            expect("q8ri batch avx512", m, cols, ya, yb8 + j * m, 0);
                        }
                        if (has_avx2 && nv <= 4) {
                            rk_q8ri_batch_avx2(yb8, m, il, vs, nv, r0, m);
                            for (int j = 0; j < nv; j++) {
                                rk_q8r_scalar(ya, enc + r0 * (4 + n), &vs[j], m, 0);
                                expect("q8ri batch avx2", m, cols, ya, yb8 + j * m, 0);
                            }
                        }
                    }
                }
                free(xs); free(yb8); free(bufs);
            }
            const char *what;
            if (rk_check_quantized(5, il, rows, cols, &what) != 0) { failed++; printf("FAIL q8ri check: %s\n", what); }
            else passed++;
            il[64] ^= 1;   /* row 0's sum no longer that of its codes */
            if (rk_check_quantized(5, il, rows, cols, &what) != 1) { failed++; printf("FAIL q8ri check: a bad sum passed\n"); }
            else passed++;
            free(il);
            free(xr); free(enc);
        }
        free(xq); free(w); free(x); free(h); free(ya); free(yb);
    }
    /* tanh and sigmoid: the AVX-512 version computes the AVX2 version's arithmetic lane for lane. */
    if (has_avx2) {
        const long n = 1037;
        float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        for (int kind = RK_TANH; kind <= RK_SIGMOID; kind++) {   /* (the two consecutive kinds) */
            for (long i = 0; i < n; i++) a[i] = b[i] = (float)(i - n / 2) * 0.05f + frand() * 1e-3f;
            a[0] = b[0] = 200.0f; a[1] = b[1] = -200.0f;
            rk_activate_avx2(kind, a, n);
            rk_activate_avx512(kind, b, n);
            /* (bitwise on real AVX-512: the golden outputs; SIMDe may emulate the fused multiply-adds unfused) */
            expect(kind == RK_TANH ? "tanh avx512" : "sigmoid avx512", n, 1, a, b, 1e-6);
        }
        free(a); free(b);
    }
    /* The gates' element-wise arithmetic at this CPU's level against the expressions rounded step by step
     * (each partial result stored in a volatile float, so nothing is fused): the same bits, every length. */
    {
        const long lengths[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 257, 1000};
        for (size_t t = 0; t < sizeof lengths / sizeof lengths[0]; t++) {
            const long n = lengths[t];
            float a[1000], b[1000], c[1000], y[1000], ref[1000];
            for (long i = 0; i < n; i++) { a[i] = frand(); b[i] = frand(); c[i] = frand(); y[i] = frand(); }
            int bad = 0;
            #define SAME(name, call, expr)                                                                  \
                do {                                                                                        \
                    for (long i = 0; i < n; i++) { volatile float v; expr; ref[i] = v; }                    \
                    call;                                                                                   \
                    for (long i = 0; i < n; i++) bad += memcmp(&y[i], &ref[i], sizeof(float)) != 0;         \
                    if (bad) { printf("FAIL %s n=%ld: %d lanes differ\n", name, n, bad); failed++; bad = 0; } \
                    else passed++;                                                                          \
                } while (0)
            SAME("rk_add", rk_add(y, a, n), v = y[i] + a[i]);
            SAME("rk_add_mul", rk_add_mul(y, a, b, n), volatile float p = a[i] * b[i]; v = y[i] + p);
            SAME("rk_mul", rk_mul(y, a, b, n), v = a[i] * b[i]);
            SAME("rk_gru_candidate", rk_gru_candidate(y, a, b, n), volatile float p = b[i] * y[i]; v = a[i] + p);
            SAME("rk_gru_update", rk_gru_update(y, a, b, n),
                 volatile float o = 1.0f - a[i]; volatile float p = o * b[i]; volatile float q = a[i] * y[i]; v = p + q);
            SAME("rk_lstm_cell", rk_lstm_cell(y, a, b, c, n),
                 volatile float p = b[i] * y[i]; volatile float q = a[i] * c[i]; v = p + q);
            #undef SAME
        }
    }
    /* The gates in one pass against the passes one by one (the element-wise kernels, the AVX2 activations):
     * AVX2 bit for bit, AVX-512 (SIMDe) to the activations' tolerance; every tail, bias and peepholes or not. */
    if (has_avx2) {
        const long lengths[] = {1, 5, 7, 8, 9, 15, 16, 17, 33, 36, 64, 70, 100};
        for (size_t t = 0; t < sizeof lengths / sizeof lengths[0]; t++) {
            const long H = lengths[t];
            float gu[400], gx[400], e[300], h0[100], c0[100], ref[100], refc[100], u[400], tmp[100];
            float ha[100], ca[100], hb[100], cb[100];
            gate_inputs(H, gu, gx, e, h0, c0);
            for (int extra = 0; extra < 2; extra++) {
                const float *bh = extra ? e : NULL;
                memcpy(u, gu, sizeof u); memcpy(ref, h0, sizeof ref);
                gru_gates_by_passes(rk_activate_avx2, ref, u, bh, gx, H);
                memcpy(ha, h0, sizeof ha); memcpy(hb, h0, sizeof hb);
                rk_gru_gates_avx2(ha, gu, bh, gx, H, RK_SIGMOID, RK_TANH);
                rk_gru_gates_avx512(hb, gu, bh, gx, H, RK_SIGMOID, RK_TANH);
                int bad = 0;
                for (long i = 0; i < H; i++) bad += memcmp(&ha[i], &ref[i], sizeof(float)) != 0;
                if (bad) { failed++; printf("FAIL gru gates avx2 H=%ld bias=%d: %d lanes differ\n", H, extra, bad); }
                else passed++;
                expect("gru gates avx512", H, 1, ref, hb, 1e-6);

                const float *p = extra ? e : NULL;
                memcpy(u, gu, sizeof u); memcpy(ref, h0, sizeof ref); memcpy(refc, c0, sizeof refc);
                lstm_gates_by_passes(rk_activate_avx2, ref, refc, u, gx, p, H, tmp);
                memcpy(ha, h0, sizeof ha); memcpy(hb, h0, sizeof hb); memcpy(ca, c0, sizeof ca); memcpy(cb, c0, sizeof cb);
                rk_lstm_gates_avx2(ha, ca, gu, gx, p, H, RK_SIGMOID, RK_TANH);
                rk_lstm_gates_avx512(hb, cb, gu, gx, p, H, RK_SIGMOID, RK_TANH);
                bad = 0;
                for (long i = 0; i < H; i++) bad += memcmp(&ha[i], &ref[i], sizeof(float)) != 0;
                for (long i = 0; i < H; i++) bad += memcmp(&ca[i], &refc[i], sizeof(float)) != 0;
                if (bad) { failed++; printf("FAIL lstm gates avx2 H=%ld peepholes=%d: %d lanes differ\n", H, extra, bad); }
                else passed++;
                expect("lstm gates avx512 h", H, 1, ref, hb, 1e-6);
                expect("lstm gates avx512 c", H, 1, refc, cb, 1e-6);
            }
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
