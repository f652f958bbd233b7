/* Times the f32 row kernels against the column-block kernels (rk_f32_columns_pack) on one rows × cols matrix,
 * at AVX2 and (when the CPU has it) AVX-512: the best of 15 rounds of 5,000 products each, µs per product.
 *   . bench/kernels/sources.sh
 *   clang -O2 -std=gnu11 -I"$src/include" -I"$src" "${kernel_sources[@]}" bench/kernels/columns_bench.c -lm -lpthread -o cb
 *   taskset -c 1 ./cb 768 12 */
#include "internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ROWS COLS\n", argv[0]);
        return 2;
    }
    const long rows = atol(argv[1]), cols = atol(argv[2]);
    if (rows < 1 || cols < 1 || cols > 64) return 2;
    enum { reps = 5000 };
    float *w = malloc(sizeof(float) * (size_t)(rows * cols)), *x = malloc(sizeof(float) * (size_t)cols);
    float *y = malloc(sizeof(float) * (size_t)rows);
    float *p = aligned_alloc(64, sizeof(float) * 16 * (size_t)((rows + 15) / 16) * (size_t)cols);
    srand(3);
    for (long i = 0; i < rows * cols; i++) w[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < cols; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    rk_f32_columns_pack(p, w, rows, cols);
    __builtin_cpu_init();
    const int avx512 = rk_detected_level() >= RK_AVX512;
    double best[4] = {1e9, 1e9, 1e9, 1e9};
    for (int round = 0; round < 15; round++) {
        for (int k = 0; k < (avx512 ? 4 : 2); k++) {
            const double t0 = now();
            for (int i = 0; i < reps; i++) {
                switch (k) {
                case 0: rk_f32_avx2(y, w, x, rows, cols, 0); break;
                case 1: rk_f32_columns_avx2(y, p, w, x, rows, cols, 0); break;
                case 2: rk_f32_avx512(y, w, x, rows, cols, 0); break;
                default: rk_f32_columns_avx512(y, p, x, rows, cols, 0);
                }
            }
            const double t = (now() - t0) / reps;
            if (t < best[k]) best[k] = t;
        }
    }
    printf("%ld x %ld  avx2: rows %.3f us, columns %.3f us", rows, cols, best[0] * 1e6, best[1] * 1e6);
    if (avx512) printf("  avx512: rows %.3f us, columns %.3f us", best[2] * 1e6, best[3] * 1e6);
    printf("\n");
    free(w); free(x); free(y); free(p);
    return 0;
}
