/* Step latency and prefill throughput of one model through the C API (include/recur.h).
 *
 *   cc -O2 -I include bench/c/step_bench.c -L DIR -lrecur -o step_bench     (or link libRecurC.so)
 *   RECUR_THREADS=1 ./step_bench MODEL [STEPS] [PROMPT]
 *
 * Prints one JSON object: step_us_median, step_us_p90, prefill_tokens_per_s (wall clock) and
 * prefill_tokens_per_cpu_s (process CPU time: robust to other processes on a busy machine; with several
 * threads it counts all of them). Steps are timed one by one (clock_gettime, CLOCK_MONOTONIC) after 200
 * warm-up steps; tokens are pseudo-random; prefill is the best of 7. A frame model (RECUR_INPUT_FRAMES) is
 * fed pseudo-random frames with recur_state_step_frame and recur_state_prefill_frames instead. */
#include "recur.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [STEPS] [PROMPT]\n", argv[0]);
        return 2;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 5000, prompt = argc > 3 ? atoi(argv[3]) : 1000;
    if (steps < 1 || prompt < 1) return 2;
    recur_model *model = NULL;
    recur_state *state = NULL;
    if (recur_model_open(argv[1], 0, &model) != RECUR_OK || recur_state_new(model, &state) != RECUR_OK) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], recur_last_error());
        return 1;
    }
    size_t vocab = 0;
    recur_model_vocab_size(model, &vocab);
    int64_t frame_size = 0;
    recur_model_get(model, RECUR_MODEL_FRAME_SIZE, &frame_size);
    uint64_t rng = 12345;
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)(steps + prompt + 200));
    double *t = malloc(sizeof(double) * (size_t)steps);
    for (int i = 0; i < steps + prompt + 200; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = vocab ? (int32_t)((rng >> 33) % (uint64_t)vocab) : 0;   /* frame models: unused */
    }
    const float *out = NULL;
    const size_t F = (size_t)frame_size;
    float *frames = NULL;
    if (F) {
        frames = malloc(sizeof(float) * F * (size_t)(steps + prompt + 200));
        for (size_t i = 0; i < F * (size_t)(steps + prompt + 200); i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            frames[i] = (float)((rng >> 33) % 2001) / 1000.0f - 1.0f;
        }
    }
    for (int i = 0; i < 200; i++) {
        if (F) recur_state_step_frame(state, frames + (size_t)i * F, F, &out);
        else recur_state_step(state, tokens[i], &out);
    }
    for (int i = 0; i < steps; i++) {
        double t0 = now();
        if (F) recur_state_step_frame(state, frames + (size_t)(200 + i) * F, F, &out);
        else recur_state_step(state, tokens[200 + i], &out);
        t[i] = now() - t0;
    }
    qsort(t, (size_t)steps, sizeof(double), cmp);
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < 7; r++) {
        recur_state_reset(state);
        double t0 = now(), c0 = cpu_now();
        if (F) recur_state_prefill_frames(state, frames, (size_t)prompt, F, &out);
        else recur_state_prefill(state, tokens, (size_t)prompt, &out);
        double d = now() - t0, dc = cpu_now() - c0;
        if (d < best) best = d;
        if (dc < best_cpu) best_cpu = dc;
    }
    printf("{\"step_us_median\": %.3f, \"step_us_p90\": %.3f, \"prefill_tokens_per_s\": %.1f, "
           "\"prefill_tokens_per_cpu_s\": %.1f}\n",
           t[steps / 2] * 1e6, t[steps * 9 / 10] * 1e6, prompt / best, prompt / best_cpu);
    recur_state_free(state);
    recur_model_free(model);
    free(tokens);
    free(frames);
    free(t);
    return 0;
}
