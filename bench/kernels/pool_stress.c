/* Stress test of the worker pool (Sources/CRecurKernels/pool.c): many products of random sizes and types,
 * from two caller threads sharing one pool, each result compared bit for bit with a one-thread product.
 *   bench/kernels/pool_stress.sh   (also builds it with ThreadSanitizer)  → "N passed, 0 failed" */
#include "internal.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static rk_pool *pool;
static int failures, checks;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static long row_bytes(int dtype, long cols) { return (long)rk_row_bytes(dtype, cols); }

static void *caller(void *arg) {
    unsigned seed = (unsigned)(size_t)arg;
    for (int it = 0; it < 300; it++) {
        int dtype = rand_r(&seed) % RK_DTYPE_COUNT;   /* every rk_dtype */
        long rows = 1 + rand_r(&seed) % 700, cols = 1 + rand_r(&seed) % 300;
        long row0 = rand_r(&seed) % 3 == 0 ? rand_r(&seed) % rows : 0;   /* a view of the last rows */
        size_t wb = (size_t)rk_matrix_bytes(dtype, rows, cols);
        unsigned char *w = malloc(wb);
        float *x = malloc(sizeof(float) * (size_t)cols), *a = malloc(sizeof(float) * (size_t)rows),
              *b = malloc(sizeof(float) * (size_t)rows);
        for (size_t i = 0; i < wb; i++) w[i] = (unsigned char)rand_r(&seed);
        if (dtype == 0 || dtype == 1) {   /* finite weights: small random floats / halves */
            for (long i = 0; i < rows * cols; i++) {
                float v = (float)(rand_r(&seed) % 2001 - 1000) / 1000.0f;
                if (dtype == 0) memcpy(w + 4 * i, &v, 4);
                else { _Float16 h = (_Float16)v; memcpy(w + 2 * i, &h, 2); }
            }
        } else if (dtype == RK_Q8RI) {   /* 16 scales at the start of each group of 16 rows */
            long gb = 128 + 16 * ((cols + 31) / 32 * 32);
            for (long r = 0; r < (rows + 15) / 16 * 16; r++) { float s = 0.01f; memcpy(w + (r / 16) * gb + 4 * (r % 16), &s, 4); }
        } else {
            long nb = (cols + 31) / 32, rb = row_bytes(dtype, cols);
            for (long r = 0; r < rows; r++)
                for (long k = 0; k < nb; k++) { float s = 0.01f; memcpy(w + r * rb + 4 * k, &s, 4); }
        }
        for (long c = 0; c < cols; c++) x[c] = (float)(rand_r(&seed) % 2001 - 1000) / 1000.0f;
        int acc = rand_r(&seed) % 2;
        for (long r = 0; r < rows; r++) a[r] = b[r] = (float)r;
        rk_pool_matvec(pool, dtype, a, w, x, row0, rows - row0, cols, acc);
        rk_matvec_rows_at(rk_level(), dtype, b, w, x, row0, rows - row0, cols, acc);
        int bad = memcmp(a, b, sizeof(float) * (size_t)(rows - row0)) != 0;
        pthread_mutex_lock(&lock);
        checks++;
        if (bad) { failures++; printf("FAIL dtype %d %ldx%ld acc %d\n", dtype, rows, cols, acc); }
        pthread_mutex_unlock(&lock);
        free(w); free(x); free(a); free(b);
    }
    return NULL;
}

int main(void) {
    pool = rk_pool_create(3);
    if (!pool) { printf("0 passed, 1 failed (no pool)\n"); return 1; }
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, caller, (void *)(size_t)(i + 1));
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    rk_pool_destroy(pool);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures != 0;
}
