/* Checks the AMX batch kernel (Sources/CRecurKernels/amx.c) against the scalar q8r kernel, vector by vector and
 * bit for bit: compiled with RK_AMX_CHECK it runs on a portable model of the tile instructions (any x86-64
 * machine); compiled natively it runs the real instructions, when the CPU and the OS offer them. Both also check
 * the library's dispatch (rk_matmat_rows_at at RK_AMX against RK_AVX512, batches of 1 to 72).
 *   bench/kernels/amx_check.sh                 → "N passed, 0 failed" for each build
 *   amx_check --time ROWS COLS N               → µs per batch of N products, AMX and AVX-512 (native build) */
#include "internal.h"
#include "layouts.h"
#include <stdio.h>
#include <time.h>

static int passed, failed;

static void expect(const char *what, long rows, long cols, int n, const float *a, const float *b) {
    if (!memcmp(a, b, sizeof(float) * rows)) { passed++; return; }
    if (++failed <= 10) printf("FAIL %s %ldx%ld, %d vectors: not the same bits\n", what, rows, cols, n);
}

/* rows × cols random q8r codes (one scale per row), and their q8ri interleaving. */
static unsigned char *q8r_codes(long rows, long cols) {
    const long n = (cols + 31) / 32 * 32;
    unsigned char *enc = calloc((size_t)rows, (size_t)(4 + n));
    for (long r = 0; r < rows; r++) {
        float sc = (frand() + 1.5f) / 127;
        memcpy(enc + r * (4 + n), &sc, 4);
        for (long c = 0; c < cols; c++) ((int8_t *)(enc + r * (4 + n) + 4))[c] = (int8_t)lrintf(frand() * 127);
    }
    return enc;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static int timing(long rows, long cols, int n) {
#ifdef RK_AMX_CHECK
    (void)rows; (void)cols; (void)n;
    printf("--time needs the native build\n");
    return 1;
#else
    unsigned char *il = interleave(q8r_codes(rows, cols), rows, cols);
    float *x = malloc(sizeof(float) * n * cols), *y = malloc(sizeof(float) * n * rows);
    for (long i = 0; i < n * cols; i++) x[i] = frand();
    for (int level = RK_AMX; level >= RK_AVX512; level--) {
        double best = 1e30;
        for (int rep = 0; rep < 2000; rep++) {
            const double t0 = now();
            rk_matmat_rows_at(level, RK_Q8RI, y, il, x, n, 0, rows, cols);
            const double t = now() - t0;
            if (t < best) best = t;
        }
        printf("%s %ld x %ld, %d vectors: %.2f µs per batch, %.3f µs per vector\n",
               level == RK_AMX ? (rk_amx_usable() ? "amx   " : "(no amx)") : "avx512", rows, cols, n, best, best / n);
    }
    return 0;
#endif
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--time")) return timing(atol(argv[2]), atol(argv[3]), atoi(argv[4]));
#ifndef RK_AMX_CHECK
    if (!rk_amx_usable()) {
        printf("skipped: this CPU or OS offers no AMX int8 tiles\n");
        return 0;
    }
#endif
    enum { MAXN = 72 };   /* the largest batch checked */
    const long sizes[][2] = {{1, 1}, {16, 32}, {16, 64}, {7, 31}, {33, 96}, {64, 100}, {48, 257}, {100, 40},
                             {80, 1000}, {17, 2049}, {128, 512}, {96, 96}, {70, 2049}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        const long rows = sizes[t][0], cols = sizes[t][1], n32 = (cols + 31) / 32 * 32;
        unsigned char *enc = q8r_codes(rows, cols), *il = interleave(enc, rows, cols);
        const size_t slot = (rk_xr_bytes(cols) + 63) & ~(size_t)63;
        unsigned char *bufs = aligned_alloc(64, MAXN * slot);
        float *x = malloc(sizeof(float) * cols);
        float *ya = malloc(sizeof(float) * rows), *yb = malloc(sizeof(float) * MAXN * rows);
        for (int j = 0; j < MAXN; j++) {
            for (long c = 0; c < cols; c++) x[c] = j == 3 ? 0 : frand() * (float)(j % 7 + 1);   /* one vector all zero */
            rk_quantize_xr_scalar(bufs + j * slot, x, cols);
        }
        /* batch sizes 1–16 and some above (blocks of 16 and a remainder), on the whole matrix and on views that start and end inside a group of 16 rows */
        const long views[][2] = {{0, rows}, {rows / 3, rows - rows / 3}, {rows / 2, (rows + 1) / 4}, {rows - 1, 1}};
        const int counts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 32, 33, 40, 48, 64, 72};
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
            for (int k = 0, n = counts[c]; k < 4; k++) {
                const long r0 = views[k][0], m = views[k][1];
                if (m <= 0) continue;
                for (long i = 0; i < MAXN * rows; i++) yb[i] = -1;
                rk_q8ri_batch_amx(yb, rows, il, bufs, (long)slot, n, r0, m, cols);
                for (int j = 0; j < n; j++) {
                    rk_xr v = rk_xr_view(bufs + j * slot, cols);
                    rk_q8r_scalar(ya, enc + r0 * (4 + n32), &v, m, 0);
                    expect("q8ri batch amx", m, cols, n, ya, yb + j * rows);
                }
            }
        /* the library's dispatch: batches of 1..MAXN vectors (blocks of 16 and a remainder), AMX against AVX-512 */
        {
            float *xs = malloc(sizeof(float) * MAXN * cols), *y1 = malloc(sizeof(float) * MAXN * rows),
                  *y2 = malloc(sizeof(float) * MAXN * rows);
            for (long i = 0; i < MAXN * cols; i++) xs[i] = frand();
            for (int n = 1; n <= MAXN; n++) {
                rk_matmat_rows_at(RK_AVX512, RK_Q8RI, y1, il, xs, n, 0, rows, cols);
                rk_matmat_rows_at(RK_AMX, RK_Q8RI, y2, il, xs, n, 0, rows, cols);
                expect("rk_matmat_rows_at amx", rows * n, cols, n, y1, y2);
            }
            free(xs); free(y1); free(y2);
        }
        free(enc); free(il); free(bufs); free(x); free(ya); free(yb);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
