/* Single-core read bandwidth at a working-set size: the bound a memory-bound step cannot beat.
 *
 *   cc -O2 -march=native bench/c/bandwidth.c -o bandwidth
 *   taskset -c 1 ./bandwidth BYTES [BYTES ...]
 *
 * For each size, a buffer of BYTES is read whole, again and again (the way a step reads its weights: the
 * same bytes every step, so they stay in whichever cache level holds them), summing 64-byte lines into
 * four independent vector accumulators so that the loop is limited by the loads, not by the additions. Prints
 * one JSON object per size: bytes, gb_per_s (the best of 7 runs of at least 20 ms each) and ns_per_read
 * (one whole read of the buffer).
 *
 *   ./bandwidth --streams N --apart A BYTES [BYTES ...]
 *
 * reads the buffer as N = 2 or 4 interleaved streams A bytes apart, the way a kernel reads N rows of A bytes at once:
 * the buffer in blocks of N·A bytes, and in each block line c of stream 0, of stream 1, ..., then line c + 1.
 * A = BYTES / N puts the streams as far apart as the buffer allows. The JSON adds streams and apart. */
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

/* The same sum, the lines read as n = 2 or 4 streams `apart` bytes apart (bytes a multiple of n·apart, apart of
 * 64), one accumulator per stream: line c of each stream, then line c + 1. */
static uint64_t read_streams(const uint64_t *p, size_t bytes, size_t n, size_t apart) {
    const v8 *v = (const v8 *)p;
    const size_t L = apart / 64;
    v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    if (n == 2)
        for (size_t b = 0; b < bytes / 64; b += 2 * L)
            for (size_t c = 0; c < L; c++) {
                a0 += v[b + c]; a1 += v[b + L + c];
            }
    else
        for (size_t b = 0; b < bytes / 64; b += 4 * L)
            for (size_t c = 0; c < L; c++) {
                a0 += v[b + c]; a1 += v[b + L + c]; a2 += v[b + 2 * L + c]; a3 += v[b + 3 * L + c];
            }
    v8 s = a0 + a1 + a2 + a3;
    uint64_t t = 0;
    for (int k = 0; k < 8; k++) t += s[k];
    return t;
}

int main(int argc, char **argv) {
    size_t streams = 0, apart = 0;
    int first = 1;
    while (first + 1 < argc && (!strcmp(argv[first], "--streams") || !strcmp(argv[first], "--apart"))) {
        const long long v = atoll(argv[first + 1]);
        if (v <= 0) {
            fprintf(stderr, "bandwidth: %s wants a positive number, not '%s'\n", argv[first], argv[first + 1]);
            return 2;
        }
        if (!strcmp(argv[first], "--streams")) streams = (size_t)v; else apart = (size_t)v;
        first += 2;
    }
    if (first >= argc || (streams == 0) != (apart == 0) || (streams && streams != 2 && streams != 4) || apart % 64) {
        fprintf(stderr, "usage: %s [--streams N --apart A] BYTES [BYTES ...]   (N 2 or 4, A a multiple of 64)\n", argv[0]);
        return 2;
    }
    volatile uint64_t sink = 0;
    for (int i = first; i < argc; i++) {
        const long long want = atoll(argv[i]);
        if (want <= 0) {
            fprintf(stderr, "bandwidth: '%s' is not a positive byte count\n", argv[i]);
            return 2;
        }
        const size_t unit = streams ? streams * apart : 512;
        const size_t bytes = ((size_t)want + unit - 1) / unit * unit, words = bytes / 8;
        uint64_t *buf = aligned_alloc(64, bytes);
        if (!buf) {
            fprintf(stderr, "bandwidth: cannot allocate %zu bytes\n", bytes);
            return 1;
        }
        memset(buf, 1, bytes);
        long reps = 1;
        for (;;) {   /* enough repetitions for 20 ms */
            double t0 = now();
            for (long r = 0; r < reps; r++) sink += streams ? read_streams(buf, bytes, streams, apart) : read_all(buf, words);
            if (now() - t0 > 0.02) break;
            reps *= 2;
        }
        double best = 1e30;
        for (int run = 0; run < 7; run++) {
            double t0 = now();
            for (long r = 0; r < reps; r++) sink += streams ? read_streams(buf, bytes, streams, apart) : read_all(buf, words);
            double t = (now() - t0) / (double)reps;
            if (t < best) best = t;
        }
        if (streams)
            printf("{\"bytes\": %zu, \"streams\": %zu, \"apart\": %zu, \"gb_per_s\": %.2f, \"ns_per_read\": %.1f}\n", bytes,
                   streams, apart, (double)bytes / best / 1e9, best * 1e9);
        else
            printf("{\"bytes\": %zu, \"gb_per_s\": %.2f, \"ns_per_read\": %.1f}\n", bytes, (double)bytes / best / 1e9, best * 1e9);
        free(buf);
    }
    return (int)(sink & 0);
}
