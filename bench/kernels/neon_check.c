/* Checks the AArch64 NEON kernels (Sources/CRecurKernels/neon.c, neon_elementwise.c) against the scalar kernels. Built for
 * AArch64 and run under qemu-aarch64 by bench/kernels/neon_check.sh, which prints "N passed, 0 failed".
 *   neon_check sdot|widening     the int8 path the CPU must have (checked: rk_neon_dotprod())
 * Exact (the same bits): q8, q4 and q8r products, against the same quantized x and through rk_matvec_at
 * (quantizer included), and the x quantizers' bytes. f32, f16 and rk_matmat_f32: within 1e-6 of
 * Σ_c |w_c·x_c| + |y_r| (another order of additions). tanh and sigmoid: within 1e-6 absolute of libm. */
#include "internal.h"
#include "layouts.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>



/* q8r: one scale per row, codes zero padded to a multiple of 32. */
static unsigned char *encode_q8r(const float *w, long rows, long cols) {
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
    return enc;
}



static int passed, failed;

static void result(int ok, const char *what, long rows, long cols, int acc, const char *detail) {
    if (ok) passed++;
    else { failed++; printf("FAIL %s %ldx%ld acc=%d: %s\n", what, rows, cols, acc, detail); }
}

/* The same bits in every row. */
static void expect_same(const char *what, long rows, long cols, int acc, const float *a, const float *b) {
    for (long r = 0; r < rows; r++)
        if (memcmp(a + r, b + r, 4)) {
            char m[96];
            snprintf(m, sizeof m, "row %ld: scalar %.9g, neon %.9g", r, a[r], b[r]);
            result(0, what, rows, cols, acc, m);
            return;
        }
    result(1, what, rows, cols, acc, "");
}

/* |a − b| ≤ 1e-6 · bound[r] in every row. */
static void expect_near(const char *what, long rows, long cols, int acc, const float *a, const float *b,
                        const double *bound) {
    for (long r = 0; r < rows; r++) {
        double e = fabs((double)a[r] - b[r]);
        if (!(e <= 1e-6 * bound[r])) {
            char m[128];
            snprintf(m, sizeof m, "row %ld: scalar %.9g, neon %.9g, |diff| %g > %g", r, a[r], b[r], e, 1e-6 * bound[r]);
            result(0, what, rows, cols, acc, m);
            return;
        }
    }
    result(1, what, rows, cols, acc, "");
}

static void reset(float *ya, float *yb, long rows) {
    for (long r = 0; r < rows; r++) ya[r] = yb[r] = (float)r * 0.25f - 1.0f;
}

/* pattern 0: uniform in [−1, 1]; 1: w[r,c] = x[c] = ±1 (every code at its extreme, every product
 * positive: the largest int16 lane sums of the widening path). */
static void check_shape(long rows, long cols, int pattern) {
    float *w = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * cols);
    uint16_t *h = malloc(2 * rows * cols);
    float *ya = malloc(sizeof(float) * rows), *yb = malloc(sizeof(float) * rows);
    double *bound = malloc(sizeof(double) * rows);
    for (long c = 0; c < cols; c++) x[c] = pattern ? (frand() < 0 ? -1.0f : 1.0f) : frand();
    for (long i = 0; i < rows * cols; i++) {
        w[i] = pattern ? x[i % cols] : frand();
        _Float16 f = (_Float16)w[i];
        memcpy(h + i, &f, 2);
        w[i] = (float)f;   /* f32 and f16 hold the same values (one bound for both) */
    }
    for (int acc = 0; acc < 2; acc++) {
        for (long r = 0; r < rows; r++) {
            double s = acc ? fabs((double)r * 0.25 - 1.0) : 0;
            for (long c = 0; c < cols; c++) s += fabs((double)w[r * cols + c] * x[c]);
            bound[r] = s + 1e-30;
        }
        reset(ya, yb, rows);
        rk_f32_scalar(ya, w, x, rows, cols, acc);
        rk_f32_neon(yb, w, x, rows, cols, acc);
        expect_near("f32", rows, cols, acc, ya, yb, bound);
        reset(ya, yb, rows);
        rk_f16_scalar(ya, h, x, rows, cols, acc);
        rk_f16_neon(yb, h, x, rows, cols, acc);
        expect_near("f16", rows, cols, acc, ya, yb, bound);
    }

    /* q8 and q4 against the same quantized x, then the whole product (quantizer and dispatch) */
    void *xq = aligned_alloc(64, rk_xq_bytes(cols));
    rk_quantize_scalar(xq, x, cols);
    rk_xq v = rk_xq_view(xq, cols);
    for (int dt = 2; dt <= 3; dt++) {
        unsigned char *enc = encode(w, rows, cols, dt);
        const char *name = dt == 2 ? "q8" : "q4", *whole = dt == 2 ? "q8 rk_matvec_at" : "q4 rk_matvec_at";
        for (int acc = 0; acc < 2; acc++) {
            reset(ya, yb, rows);
            if (dt == 2) { rk_q8_scalar(ya, enc, &v, rows, acc); rk_q8_neon(yb, enc, &v, rows, acc); }
            else { rk_q4_scalar(ya, enc, &v, rows, acc); rk_q4_neon(yb, enc, &v, rows, acc); }
            expect_same(name, rows, cols, acc, ya, yb);
            reset(ya, yb, rows);
            rk_matvec_at(RK_SCALAR, dt, ya, enc, x, rows, cols, acc);
            rk_matvec_at(RK_NEON, dt, yb, enc, x, rows, cols, acc);
            expect_same(whole, rows, cols, acc, ya, yb);
        }
        if (dt == 3) {   /* q4i: the same nibbles interleaved by 16 rows, equal to its scalar kernel */
            unsigned char *il = interleave4(enc, rows, cols);
            const long views[][2] = {{0, rows}, {rows / 3, rows - rows / 3}, {rows - 1, 1}};
            for (int k = 0; k < 3; k++) {
                const long r0 = views[k][0], m = views[k][1];
                for (int acc = 0; acc < 2; acc++) {
                    reset(ya, yb, m);
                    rk_q4i_scalar(ya, il, &v, r0, m, acc);
                    rk_q4i_neon(yb, il, &v, r0, m, acc);
                    expect_same("q4i", m, cols, acc, ya, yb);
                    reset(ya, yb, m);
                    rk_matvec_rows_at(RK_SCALAR, RK_Q4I, ya, il, x, r0, m, cols, acc);
                    rk_matvec_rows_at(RK_NEON, RK_Q4I, yb, il, x, r0, m, cols, acc);
                    expect_same("q4i rk_matvec_rows_at", m, cols, acc, ya, yb);
                }
            }
            free(il);
        }
        free(enc);
    }
    {
        unsigned char *enc = encode_q8r(w, rows, cols);
        void *xr = aligned_alloc(64, rk_xr_bytes(cols));
        rk_quantize_xr_scalar(xr, x, cols);
        rk_xr vr = rk_xr_view(xr, cols);
        for (int acc = 0; acc < 2; acc++) {
            reset(ya, yb, rows);
            rk_q8r_scalar(ya, enc, &vr, rows, acc);
            rk_q8r_neon(yb, enc, &vr, rows, acc);
            expect_same("q8r", rows, cols, acc, ya, yb);
            reset(ya, yb, rows);
            rk_matvec_at(RK_SCALAR, RK_Q8R, ya, enc, x, rows, cols, acc);
            rk_matvec_at(RK_NEON, RK_Q8R, yb, enc, x, rows, cols, acc);
            expect_same("q8r rk_matvec_at", rows, cols, acc, ya, yb);
        }
        /* q8ri: q8r's codes interleaved by 16 rows; equal to q8r's scalar product of the same rows. */
        unsigned char *il = interleave(enc, rows, cols);
        const long views[][2] = {{0, rows}, {rows / 3, rows - rows / 3}, {rows - 1, 1}};
        const long n = (cols + 31) / 32 * 32;
        for (int k = 0; k < 3; k++) {
            const long r0 = views[k][0], m = views[k][1];
            for (int acc = 0; acc < 2; acc++) {
                reset(ya, yb, m);
                rk_q8r_scalar(ya, enc + r0 * (4 + n), &vr, m, acc);
                rk_q8ri_neon(yb, il, &vr, r0, m, acc);
                expect_same("q8ri", m, cols, acc, ya, yb);
                reset(ya, yb, m);
                rk_matvec_rows_at(RK_NEON, RK_Q8RI, yb, il, x, r0, m, cols, acc);
                rk_matvec_rows_at(RK_SCALAR, RK_Q8R, ya, enc, x, r0, m, cols, acc);
                expect_same("q8ri rk_matvec_rows_at", m, cols, acc, ya, yb);
            }
        }
        free(il);
        free(xr); free(enc);
    }
    free(xq); free(w); free(x); free(h); free(ya); free(yb); free(bound);
}

/* The quantizers' bytes for x (cols values): per block (rk_xq: d, t8, t128, n8, q) and per vector (rk_xr). */
static void check_quantizers(const char *what, const float *x, long cols) {
    const size_t nq = (size_t)rk_nbp(cols) * (RK_XQ_SCALE_BYTES + 32), nr = rk_xr_bytes(cols);
    unsigned char *a = aligned_alloc(64, rk_xq_bytes(cols)), *b = aligned_alloc(64, rk_xq_bytes(cols));
    memset(a, 0xAA, nq); memset(b, 0x55, nq);
    rk_quantize_scalar(a, x, cols);
    rk_quantize_neon(b, x, cols);
    result(!memcmp(a, b, nq), "quantize (per block)", 1, cols, 0, what);
    unsigned char *c = aligned_alloc(64, nr), *d = aligned_alloc(64, nr);
    memset(c, 0xAA, nr); memset(d, 0x55, nr);
    rk_quantize_xr_scalar(c, x, cols);
    rk_quantize_xr_neon(d, x, cols);
    result(!memcmp(c, d, nr), "quantize (per vector)", 1, cols, 0, what);
    free(a); free(b); free(c); free(d);
}

static void check_activations(void) {
    const long n = 20003;   /* not a multiple of 4: the tail */
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    for (int kind = RK_TANH; kind <= RK_SIGMOID; kind++) {   /* (the two consecutive kinds) */
        for (long i = 0; i < n; i++) x[i] = (float)(i - n / 2) * (40.0f / n) + frand() * 1e-3f;
        x[0] = INFINITY; x[1] = -INFINITY; x[2] = 0.0f; x[3] = -0.0f; x[4] = 100.0f; x[5] = -100.0f;
        memcpy(y, x, sizeof(float) * n);
        rk_activate_neon(kind, y, n);
        double worst = 0;
        for (long i = 0; i < n; i++) {
            float want = kind == RK_TANH ? tanhf(x[i]) : 1.0f / (1.0f + expf(-x[i]));
            worst = fmax(worst, fabs((double)want - y[i]));
        }
        char m[64];
        snprintf(m, sizeof m, "max |error| %g", worst);
        result(worst <= 1e-6, kind == RK_TANH ? "tanh" : "sigmoid", 1, n, 0, m);
        float nan = NAN;
        rk_activate_neon(kind, &nan, 1);
        result(isnan(nan), kind == RK_TANH ? "tanh(NaN)" : "sigmoid(NaN)", 1, 1, 0, "not NaN");
    }
    free(x); free(y);
}

/* The gates in one pass (rk_gru_gates_neon, rk_lstm_gates_neon) against the element-wise kernels and
 * rk_activate_neon pass by pass: bit for bit, every tail, with and without bias and peepholes. */
static void check_gates(void) {
    const long lengths[] = {1, 3, 4, 5, 8, 13, 16, 21, 64, 100};
    for (size_t t = 0; t < sizeof lengths / sizeof lengths[0]; t++) {
        const long H = lengths[t];
        float gu[400], gx[400], e[300], h0[100], c0[100], ref[100], refc[100], u[400], tmp[100], hv[100], cv[100];
        gate_inputs(H, gu, gx, e, h0, c0);
        for (int extra = 0; extra < 2; extra++) {
            const float *bh = extra ? e : NULL;
            memcpy(u, gu, sizeof u); memcpy(ref, h0, sizeof ref);
            gru_gates_by_passes(rk_activate_neon, ref, u, bh, gx, H);
            memcpy(hv, h0, sizeof hv);
            rk_gru_gates_neon(hv, gu, bh, gx, H, RK_SIGMOID, RK_TANH);
            result(!memcmp(hv, ref, sizeof(float) * (size_t)H), extra ? "gru gates, bias" : "gru gates", 1, H, 0,
                   "bits differ");

            const float *p = extra ? e : NULL;
            memcpy(u, gu, sizeof u); memcpy(ref, h0, sizeof ref); memcpy(refc, c0, sizeof refc);
            lstm_gates_by_passes(rk_activate_neon, ref, refc, u, gx, p, H, tmp);
            memcpy(hv, h0, sizeof hv); memcpy(cv, c0, sizeof cv);
            rk_lstm_gates_neon(hv, cv, gu, gx, p, H, RK_SIGMOID, RK_TANH);
            result(!memcmp(hv, ref, sizeof(float) * (size_t)H) && !memcmp(cv, refc, sizeof(float) * (size_t)H),
                   extra ? "lstm gates, peepholes" : "lstm gates", 1, H, 0, "bits differ");
        }
    }
}

/* rk_matmat_f32 (n vectors) against n scalar products. */
static void check_matmat(long n, long rows, long cols) {
    float *w = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * n * cols);
    float *ya = malloc(sizeof(float) * n * rows), *yb = malloc(sizeof(float) * n * rows);
    double *bound = malloc(sizeof(double) * n * rows);
    for (long i = 0; i < rows * cols; i++) w[i] = frand();
    for (long i = 0; i < n * cols; i++) x[i] = frand();
    for (long j = 0; j < n; j++) {
        rk_f32_scalar(ya + j * rows, w, x + j * cols, rows, cols, 0);
        for (long r = 0; r < rows; r++) {
            double s = 1e-30;
            for (long c = 0; c < cols; c++) s += fabs((double)w[r * cols + c] * x[j * cols + c]);
            bound[j * rows + r] = s;
        }
    }
    rk_matmat_f32(yb, w, x, n, rows, cols);
    expect_near("matmat f32", n * rows, cols, 0, ya, yb, bound);
    free(w); free(x); free(ya); free(yb); free(bound);
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "sdot") && strcmp(argv[1], "widening"))) {
        fprintf(stderr, "usage: neon_check sdot|widening\n");
        return 2;
    }
    const int want_dot = !strcmp(argv[1], "sdot");
    printf("level %s (detected %s), int8 products by %s\n", rk_level_name(rk_level()),
           rk_level_name(rk_detected_level()), rk_neon_dotprod() ? "sdot" : "widening multiplies");
    result(rk_detected_level() == RK_NEON && !strcmp(rk_level_name(RK_NEON), "neon"), "level", 0, 0, 0,
           "the detected level is not neon");
    result(rk_neon_dotprod() == want_dot, "int8 path", 0, 0, 0, "not the path asked for");

    const long sizes[] = {1, 3, 31, 32, 33, 63, 64, 65, 100, 129, 255, 513, 1000, 2049};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < ns; j++) {
            long rows = sizes[i], cols = sizes[j];
            if (rows * cols > 1100000) continue;   /* 1000×2049 and up: time under emulation, no new case */
            check_shape(rows, cols, 0);
            if (rows <= 65) check_shape(rows, cols, 1);
        }

    check_shape(3, 16500, 0);   /* past RK_STACK_COLS: x quantized into a heap buffer */
    for (int dt = 0; dt < RK_DTYPE_COUNT; dt++)   /* no columns: y = 0, or y unchanged */
        for (int acc = 0; acc < 2; acc++) {
            float ya[3], yb[3], x0 = 0;
            unsigned char w0[4] = {0};
            reset(ya, yb, 3);
            rk_matvec_at(RK_SCALAR, dt, ya, w0, &x0, 3, 0, acc);
            rk_matvec_at(RK_NEON, dt, yb, w0, &x0, 3, 0, acc);
            expect_same(rk_dtype_of(dt)->name, 3, 0, acc, ya, yb);
        }

    /* quantizers: random vectors of every size, then special values */
    for (int j = 0; j < ns; j++) {
        long cols = sizes[j];
        float *x = malloc(sizeof(float) * cols);
        for (long c = 0; c < cols; c++) x[c] = frand() * 3.0f;
        check_quantizers("uniform", x, cols);
        for (long c = 0; c < cols; c++) x[c] = 0.0f;
        check_quantizers("zeros", x, cols);
        /* ties: with max|x| = 127 (per block) or 64 (per vector) the scale is 1 and x·inv = x exactly */
        for (long c = 0; c < cols; c++) x[c] = (c % 32 == 0) ? 127.0f : (float)((c % 61) - 30) + 0.5f;
        check_quantizers("halves, per-block scale 1", x, cols);
        for (long c = 0; c < cols; c++) x[c] = c == 0 ? 64.0f : (float)((c % 31) - 15) + 0.5f;
        check_quantizers("halves, per-vector scale 1", x, cols);
        for (long c = 0; c < cols; c++) x[c] = frand();
        x[cols / 2] = NAN;
        if (cols > 2) x[cols - 1] = -INFINITY;
        check_quantizers("NaN and -inf", x, cols);
        free(x);
    }

    check_activations();
    check_gates();
    check_matmat(1, 33, 65);
    check_matmat(3, 100, 129);
    check_matmat(5, 17, 31);

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
