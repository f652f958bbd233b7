/* Single-core read bandwidth at a working-set size: the bound a memory-bound step cannot beat.
 *
 *   cc -O2 -march=native bench/c/bandwidth.c -o bandwidth
 *   taskset -c 1 ./bandwidth BYTES [BYTES ...]
 *
 * For each size, a buffer of BYTES is read whole, again and again (the way a step reads its weights: the
 * same bytes every step, so they stay in whichever cache level holds them), summing 64-byte lines into
 * four independent vector accumulators so that the loop is limited by the loads, not by the additions. Prints
 * one JSON object per size: bytes, gb_per_s (the best of 7 runs of at least 20 ms each) and ns_per_read
 * (one whole read of the buffer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* 64 bytes as one vector (the widest loads the compiler has for the target: -march=native). */
typedef uint64_t v8 __attribute__((vector_size(64)));

/* Σ of the buffer's 64-byte lines, four accumulators (n a multiple of 8 lines). */
static uint64_t read_all(const uint64_t *p, size_t words) {
    const v8 *v = (const v8 *)p;
    v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (size_t i = 0; i < words / 8; i += 4) {
        a0 += v[i]; a1 += v[i + 1]; a2 += v[i + 2]; a3 += v[i + 3];
    }
    v8 s = a0 + a1 + a2 + a3;
    uint64_t t = 0;
    for (int k = 0; k < 8; k++) t += s[k];
    return t;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BYTES [BYTES ...]\n", argv[0]);
        return 2;
    }
    volatile uint64_t sink = 0;
    for (int i = 1; i < argc; i++) {
        const long long want = atoll(argv[i]);
        if (want <= 0) {
            fprintf(stderr, "bandwidth: '%s' is not a positive byte count\n", argv[i]);
            return 2;
        }
        const size_t bytes = ((size_t)want + 511) & ~(size_t)511, words = bytes / 8;
        uint64_t *buf = aligned_alloc(64, bytes);
        if (!buf) {
            fprintf(stderr, "bandwidth: cannot allocate %zu bytes\n", bytes);
            return 1;
        }
        memset(buf, 1, bytes);
        long reps = 1;
        for (;;) {   /* enough repetitions for 20 ms */
            double t0 = now();
            for (long r = 0; r < reps; r++) sink += read_all(buf, words);
            if (now() - t0 > 0.02) break;
            reps *= 2;
        }
        double best = 1e30;
        for (int run = 0; run < 7; run++) {
            double t0 = now();
            for (long r = 0; r < reps; r++) sink += read_all(buf, words);
            double t = (now() - t0) / (double)reps;
            if (t < best) best = t;
        }
        printf("{\"bytes\": %zu, \"gb_per_s\": %.2f, \"ns_per_read\": %.1f}\n", bytes, (double)bytes / best / 1e9, best * 1e9);
        free(buf);
    }
    return (int)(sink & 0);
}
