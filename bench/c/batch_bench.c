/* Throughput of the batched step through the C API (include/recur.h): N streams of one model stepped
 * together with recur_state_step_batch, each on a pseudo-random token, the outputs copied into one buffer.
 *
 *   cc -O2 -I include bench/c/batch_bench.c -L DIR -lrecur -o batch_bench    (or link libRecurC.so)
 *   RECUR_THREADS=1 ./batch_bench MODEL STREAMS [STEPS]
 *
 * A frame model (RECUR_MODEL_FRAME_SIZE > 0) is stepped on pseudo-random frames in [-1, 1] with
 * recur_state_step_frames_batch instead.
 *
 * STREAMS = 1 uses recur_state_step_copy or recur_state_step_frame (the single-stream step). Prints one JSON object: batch_us_median
 * (one call stepping every stream), tokens_per_s (STREAMS / median), tokens_per_cpu_s (tokens over
 * process CPU time: robust to other processes). 20 warm-up batches; the median of STEPS timed ones. */
#include "recur.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL STREAMS [STEPS]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[2]), steps = argc > 3 ? atoi(argv[3]) : 500;
    if (n < 1 || steps < 1) return 2;
    recur_model *m = NULL;
    if (recur_model_open(argv[1], 0, &m) != RECUR_OK) {
        fprintf(stderr, "%s\n", recur_last_error());
        return 1;
    }
    size_t vocab = 0, V = 0;
    recur_model_vocab_size(m, &vocab);
    recur_model_output_size(m, &V);
    int64_t frame_size = 0;
    recur_model_get(m, RECUR_MODEL_FRAME_SIZE, &frame_size);
    const size_t F = (size_t)frame_size;
    recur_state **states = calloc((size_t)n, sizeof *states);
    int32_t *tokens = calloc((size_t)n, sizeof *tokens);
    float *frames = calloc((size_t)n * (F ? F : 1), sizeof *frames);
    float *out = calloc((size_t)n * V, sizeof *out);
    double *ts = calloc((size_t)steps, sizeof *ts);
    for (int k = 0; k < n; k++) {
        if (recur_state_new(m, &states[k]) != RECUR_OK) return 1;
    }
    uint64_t r = 88172645463325252ull;
    double cpu0 = 0, cpu1 = 0;
    for (int t = -20; t < steps; t++) {
        for (int k = 0; k < n; k++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            tokens[k] = vocab ? (int32_t)(r % vocab) : 0;
            for (size_t f = 0; f < F; f++) {
                r ^= r << 13; r ^= r >> 7; r ^= r << 17;
                frames[(size_t)k * F + f] = (float)(r % 2001) / 1000.0f - 1.0f;
            }
        }
        if (t == 0) cpu0 = now(CLOCK_PROCESS_CPUTIME_ID);
        double t0 = now(CLOCK_MONOTONIC);
        const float *o1 = NULL;
        recur_status s = F ? (n == 1 ? recur_state_step_frame(states[0], frames, F, &o1)
                                     : recur_state_step_frames_batch(m, states, (size_t)n, frames, F, out, (size_t)n * V))
                           : (n == 1 ? recur_state_step_copy(states[0], tokens[0], out, V)
                                     : recur_state_step_batch(m, states, (size_t)n, tokens, out, (size_t)n * V));
        double t1 = now(CLOCK_MONOTONIC);
        if (s != RECUR_OK) {
            fprintf(stderr, "%s\n", recur_last_error());
            return 1;
        }
        if (t >= 0) ts[t] = t1 - t0;
    }
    cpu1 = now(CLOCK_PROCESS_CPUTIME_ID);
    qsort(ts, (size_t)steps, sizeof *ts, cmp);
    double med = ts[steps / 2];
    printf("{\"batch_us_median\": %.3f, \"tokens_per_s\": %.1f, \"tokens_per_cpu_s\": %.1f}\n", med * 1e6,
           n / med, (double)n * steps / (cpu1 - cpu0));
    for (int k = 0; k < n; k++) recur_state_free(states[k]);
    recur_model_free(m);
    free(states); free(tokens); free(frames); free(out); free(ts);
    return 0;
}
