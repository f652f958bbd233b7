/* n steps of one state through the C API, the calls Python's State.step makes (recur_state_step_copy into
 * the caller's buffer for a token model, recur_state_step_frame for a frame model): the C side of
 * bench/python_overhead.py, which loads this as a shared library into the same process as its Python
 * loops so that both run under the same conditions.
 *
 *   cc -O2 -shared -fPIC -I include bench/c/step_loop.c LIBRARY -o step_loop.so
 *
 * Returns seconds per step (wall clock), or a negative value when a step fails. */
#include "recur.h"
#include <time.h>

double recur_bench_step_loop(recur_state *state, int32_t token, const float *frame, size_t frame_size, float *out,
                             size_t capacity, long n) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        recur_status s = frame ? recur_state_step_frame(state, frame, frame_size, NULL)
                               : recur_state_step_copy(state, token, out, capacity);
        if (s != RECUR_OK) return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    return ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9) / (double)n;
}
