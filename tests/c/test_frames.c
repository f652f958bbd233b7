/*
 * Tests of the frame functions of the C API: recur_state_step_frame, recur_state_prefill_frames,
 * recur_predict and the properties RECUR_MODEL_INPUT, _FRAME_SIZE and _OUTPUT_KIND. Expected values come
 * from other calls (stepping against the whole sequence and the prefill, repeated calls, buffer sizes);
 * the numpy reference checks the values themselves (bindings/python/tests/test_frames.py).
 *
 *     test_frames REGRESS_MODEL BIDIRECTIONAL_CLASSIFY_MODEL TOKEN_MODEL
 *
 * REGRESS_MODEL: `recur create --task regress --frame-size 12 --outputs 3 --normalized ...`;
 * BIDIRECTIONAL_CLASSIFY_MODEL: `recur create --task classify --frame-size 5 --bidirectional ...`.
 * Prints failures to stderr and a last line "test_frames: N passed, M failed"; exits 1 when M > 0.
 */
#include "check.h"

#include <math.h>
#include <string.h>

enum { T = 40, F = 12, OUT = 3 };

static recur_model *open_model(const char *path) {
    recur_model *m = NULL;
    REQUIRE(recur_model_open(path, 0, &m));
    return m;
}

static int64_t get(const recur_model *m, int property) {
    int64_t v = -1;
    OK(recur_model_get(m, property, &v));
    return v;
}

static void test_properties(recur_model *reg, recur_model *cls, recur_model *text) {
    CHECK(get(reg, RECUR_MODEL_INPUT) == RECUR_INPUT_FRAMES && get(reg, RECUR_MODEL_FRAME_SIZE) == F);
    CHECK(get(reg, RECUR_MODEL_TASK) == RECUR_TASK_REGRESS && get(reg, RECUR_MODEL_OUTPUT_KIND) == RECUR_OUTPUT_VALUES);
    CHECK(get(reg, RECUR_MODEL_CAN_STEP) == 1 && get(reg, RECUR_MODEL_OUTPUT_SIZE) == OUT);
    CHECK(get(reg, RECUR_MODEL_VOCAB_SIZE) == 0 && get(reg, RECUR_MODEL_FORMAT_MAJOR) == 3);
    CHECK(get(cls, RECUR_MODEL_TASK) == RECUR_TASK_CLASSIFY && get(cls, RECUR_MODEL_CAN_STEP) == 0);
    CHECK(get(cls, RECUR_MODEL_OUTPUT_KIND) == RECUR_OUTPUT_PROBABILITIES && get(cls, RECUR_MODEL_FRAME_SIZE) == 5);
    CHECK(get(text, RECUR_MODEL_INPUT) == RECUR_INPUT_TOKENS && get(text, RECUR_MODEL_FRAME_SIZE) == 0);
    CHECK(get(text, RECUR_MODEL_OUTPUT_KIND) == RECUR_OUTPUT_LOGITS);
}

static void fill(float *x, long n, unsigned seed) {
    for (long i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) % 2001) / 500.0f - 2.0f;
    }
}

static float max_diff(const float *a, const float *b, long n) {
    float d = 0;
    for (long i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static void test_step_prefill_and_predict(recur_model *reg) {
    static float x[T * F], steps[T * OUT], rows[T * OUT];
    fill(x, T * F, 7);
    recur_state *s = NULL;
    REQUIRE(recur_state_new(reg, &s));
    for (int t = 0; t < T; t++) {
        const float *out = NULL;
        OK(recur_state_step_frame(s, x + t * F, F, &out));
        CHECK(out != NULL);
        if (out) memcpy(steps + t * OUT, out, sizeof(float) * OUT);
    }
    uint64_t position = 0;
    OK(recur_state_position(s, &position));
    CHECK(position == T);
    size_t n = 0;
    OK(recur_predict(reg, x, T, F, rows, T * OUT, &n));
    CHECK(n == T);
    CHECK(max_diff(steps, rows, T * OUT) < 1e-5f);
    /* The prefill reaches the stepped output and state. */
    recur_state *p = NULL;
    REQUIRE(recur_state_new(reg, &p));
    const float *last = NULL;
    OK(recur_state_prefill_frames(p, x, T, F, &last));
    CHECK(last && max_diff(last, steps + (T - 1) * OUT, OUT) < 1e-5f);
    /* The same frames give the same outputs; a reset starts again. */
    OK(recur_state_reset(s));
    const float *again = NULL;
    OK(recur_state_step_frame(s, x, F, &again));
    CHECK(again && memcmp(again, steps, sizeof(float) * OUT) == 0);
    /* Buffer sizes: the rows are reported and nothing is written when they do not fit. */
    float small[OUT] = {-7, -7, -7};
    EXPECT(recur_predict(reg, x, T, F, small, OUT, &n), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == T && small[0] == -7);
    EXPECT(recur_predict(reg, x, T, F, NULL, 0, &n), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == T);
    recur_state_free(p);
    recur_state_free(s);
}

static void test_bad_input(recur_model *reg, recur_model *cls, recur_model *text) {
    float x[2 * F];
    fill(x, 2 * F, 3);
    recur_state *s = NULL, *ts = NULL, *cs = NULL;
    REQUIRE(recur_state_new(reg, &s));
    REQUIRE(recur_state_new(text, &ts));
    REQUIRE(recur_state_new(cls, &cs));
    const float *out = NULL;
    OK(recur_state_step_frame(s, x, F, &out));
    unsigned char before[4096], after[4096];
    size_t wb = 0, wa = 0;
    OK(recur_state_save(s, before, sizeof before, &wb));
    x[F + 5] = NAN;
    EXPECT(recur_state_step_frame(s, x + F, F, &out), RECUR_ERR_NUMERICAL);
    CHECK(strstr(recur_last_error(), "feature 5") != NULL);
    EXPECT(recur_state_prefill_frames(s, x, 2, F, &out), RECUR_ERR_NUMERICAL);
    CHECK(strstr(recur_last_error(), "frame 1 holds nan") != NULL);
    x[F + 5] = INFINITY;
    EXPECT(recur_state_step_frame(s, x + F, F, &out), RECUR_ERR_NUMERICAL);
    x[F + 5] = 0;
    EXPECT(recur_state_step_frame(s, x, F - 1, &out), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_frame(s, x, (size_t)-1, &out), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_frame(s, NULL, F, &out), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_frame(NULL, x, F, &out), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_prefill_frames(s, x, 0, F, &out), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_prefill_frames(s, x, 2, F + 1, &out), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_prefill_frames(s, x, (size_t)-1 / 4, F, &out), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_prefill_frames(s, NULL, 2, F, &out), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step(s, 1, &out), RECUR_ERR_UNSUPPORTED);      /* a token to a frame model */
    CHECK(strstr(recur_last_error(), "reads frames of 12 floats") != NULL);
    int32_t ids[4];
    size_t n = 0;
    EXPECT(recur_model_encode(reg, "abc", ids, 4, &n), RECUR_ERR_UNSUPPORTED);
    OK(recur_state_save(s, after, sizeof after, &wa));
    CHECK(wa == wb && memcmp(before, after, wb) == 0);               /* nothing changed */
    EXPECT(recur_state_step_frame(ts, x, F, &out), RECUR_ERR_UNSUPPORTED);   /* a frame to a token model */
    EXPECT(recur_predict(text, x, 1, F, NULL, 0, &n), RECUR_ERR_UNSUPPORTED);
    EXPECT(recur_state_step_frame(cs, x, 5, &out), RECUR_ERR_UNSUPPORTED);   /* bidirectional */
    CHECK(strstr(recur_last_error(), "bidirectional") != NULL);
    float probs[3];
    OK(recur_predict(cls, x, 2, 5, probs, 3, &n));                   /* whole sequences are fine */
    CHECK(n == 1 && fabsf(probs[0] + probs[1] + probs[2] - 1) < 1e-5f);
    EXPECT(recur_predict(cls, x, 2, 5, NULL, 3, &n), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_predict(cls, x, 2, 5, probs, 3, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_predict(NULL, x, 2, 5, probs, 3, &n), RECUR_ERR_INVALID_ARGUMENT);
    recur_state_free(cs);
    recur_state_free(ts);
    recur_state_free(s);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_frames REGRESS_MODEL BIDIRECTIONAL_CLASSIFY_MODEL TOKEN_MODEL\n");
        return 2;
    }
    recur_model *reg = open_model(argv[1]), *cls = open_model(argv[2]), *text = open_model(argv[3]);
    test_properties(reg, cls, text);
    test_step_prefill_and_predict(reg);
    test_bad_input(reg, cls, text);
    recur_model_free(text);
    recur_model_free(cls);
    recur_model_free(reg);
    printf("test_frames: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
