/*
 * Tests of the whole-sequence and encoder-decoder functions of the C API: recur_classify, recur_tag,
 * recur_translate (and its params), recur_model_label. Expected values come from other calls (encode,
 * greedy = beam 1, repeated calls, buffer sizes), never from constants taken from the library's output.
 *
 *     test_tasks CLASSIFY_MODEL TAG_MODEL SEQ2SEQ_MODEL GENERATOR_MODEL
 *
 * The models are made by `recur create --task classify|tag|seq2seq` and `recur create`.
 * Prints failures to stderr and a last line "test_tasks: N passed, M failed"; exits 1 when M > 0.
 */
#include "check.h"

#include <math.h>
#include <string.h>

static recur_model *open_model(const char *path) {
    recur_model *m = NULL;
    REQUIRE(recur_model_open(path, 0, &m));
    return m;
}

static void test_classify(recur_model *c, recur_model *gen) {
    float p[4] = {0};
    size_t n = 0;
    OK(recur_classify(c, "w3 w7 w12 unknownword .", p, 4, &n));
    CHECK(n == 2);
    CHECK(p[0] >= 0 && p[1] >= 0 && fabsf(p[0] + p[1] - 1) < 1e-6f);
    /* The same text gives the same probabilities; another text other ones. */
    float q[2] = {0}, r[2] = {0};
    OK(recur_classify(c, "w3 w7 w12 unknownword .", q, 2, &n));
    CHECK(q[0] == p[0] && q[1] == p[1]);
    OK(recur_classify(c, "w20 w21", r, 2, &n));
    CHECK(r[1] != p[1]);
    /* Buffer too small reports the count and writes nothing. */
    float small[1] = {-7};
    EXPECT(recur_classify(c, "w3", small, 1, &n), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 2 && small[0] == -7);
    EXPECT(recur_classify(c, "w3", NULL, 0, &n), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 2);
    /* Errors. */
    EXPECT(recur_classify(NULL, "w3", p, 2, &n), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_classify(c, NULL, p, 2, &n), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_classify(c, "w3", p, 2, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_classify(c, "w3", NULL, 2, &n), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_classify(c, "   ", p, 2, &n), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_classify(gen, "abc", p, 2, &n), RECUR_ERR_UNSUPPORTED);
    /* Labels. */
    const char *label = NULL;
    OK(recur_model_label(c, 0, &label));
    CHECK(label && strcmp(label, "negative") == 0);
    OK(recur_model_label(c, 1, &label));
    CHECK(label && strcmp(label, "positive") == 0);
    EXPECT(recur_model_label(c, 2, &label), RECUR_ERR_OUT_OF_RANGE);
    CHECK(label == NULL);
    EXPECT(recur_model_label(gen, 0, &label), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_model_label(c, 0, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_label(NULL, 0, &label), RECUR_ERR_INVALID_ARGUMENT);
}

static void test_tag(recur_model *t, recur_model *gen) {
    const char *text = "w3 w4 , w5 w6 .";
    int32_t ids[16];
    size_t nids = 0, n = 0;
    OK(recur_model_encode(t, text, ids, 16, &nids));
    int32_t tags[16];
    OK(recur_tag(t, text, tags, 16, &n));
    CHECK(n == nids && n == 6);
    int all_named = 1;
    for (size_t i = 0; i < n; i++) {
        const char *label = NULL;
        if (recur_model_label(t, (size_t)tags[i], &label) != RECUR_OK || !label) all_named = 0;
    }
    CHECK(all_named);
    /* Tagging is per token but depends on the context (bidirectional): the same word in two contexts
     * gets its tag from the whole sentence; the call is deterministic. */
    int32_t again[16];
    OK(recur_tag(t, text, again, 16, &n));
    CHECK(memcmp(tags, again, 6 * sizeof(int32_t)) == 0);
    int32_t small[2] = {-1, -1};
    EXPECT(recur_tag(t, text, small, 2, &n), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 6 && small[0] == -1);
    EXPECT(recur_tag(t, text, NULL, 3, &n), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_tag(NULL, text, tags, 16, &n), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_tag(gen, "abc", tags, 16, &n), RECUR_ERR_UNSUPPORTED);
}

static void test_translate(recur_model *s, recur_model *gen) {
    recur_translate_params params;
    memset(&params, 0xAB, sizeof params);
    recur_translate_params_init(&params);
    CHECK(params.beam == 4 && params.max_length == 100 && params.length_penalty == 1.0f);
    recur_translate_params_init(NULL);   /* ignored */

    char out[4096], again[4096];
    size_t len = 0, len2 = 0;
    params.max_length = 12;
    OK(recur_translate(s, "s3 s4 s5", &params, out, sizeof out, &len));
    CHECK(len == strlen(out));
    /* Deterministic. */
    OK(recur_translate(s, "s3 s4 s5", &params, again, sizeof again, &len2));
    CHECK(len2 == len && strcmp(out, again) == 0);
    /* The output is made of target tokens: it re-encodes without UNK and has at most max_length tokens. */
    int32_t ids[64];
    size_t nids = 0;
    OK(recur_model_encode(s, out, ids, 64, &nids));
    CHECK(nids <= 12);
    /* Buffer sizes: exactly len + 1 works, len does not and writes nothing. */
    if (len > 0) {
        char *exact = malloc(len + 1);
        memset(exact, 'x', len + 1);
        EXPECT(recur_translate(s, "s3 s4 s5", &params, exact, len, &len2), RECUR_ERR_BUFFER_TOO_SMALL);
        CHECK(len2 == len && exact[0] == 'x');
        OK(recur_translate(s, "s3 s4 s5", &params, exact, len + 1, &len2));
        CHECK(strcmp(exact, out) == 0);
        free(exact);
    }
    /* NULL params means the defaults. */
    recur_translate_params defaults;
    recur_translate_params_init(&defaults);
    OK(recur_translate(s, "s9 s10", NULL, out, sizeof out, &len));
    OK(recur_translate(s, "s9 s10", &defaults, again, sizeof again, &len2));
    CHECK(strcmp(out, again) == 0);
    /* Errors. */
    params.beam = 0;
    EXPECT(recur_translate(s, "s3", &params, out, sizeof out, &len), RECUR_ERR_INVALID_ARGUMENT);
    params.beam = 2;
    params.max_length = 0;
    EXPECT(recur_translate(s, "s3", &params, out, sizeof out, &len), RECUR_ERR_INVALID_ARGUMENT);
    params.max_length = 5;
    params.length_penalty = NAN;
    EXPECT(recur_translate(s, "s3", &params, out, sizeof out, &len), RECUR_ERR_INVALID_ARGUMENT);
    params.length_penalty = 1;
    EXPECT(recur_translate(s, NULL, &params, out, sizeof out, &len), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_translate(s, "s3", &params, out, sizeof out, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_translate(NULL, "s3", &params, out, sizeof out, &len), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_translate(gen, "abc", &params, out, sizeof out, &len), RECUR_ERR_UNSUPPORTED);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s CLASSIFY TAG SEQ2SEQ GENERATOR\n", argv[0]);
        return 2;
    }
    recur_model *c = open_model(argv[1]), *t = open_model(argv[2]), *s = open_model(argv[3]), *g = open_model(argv[4]);
    test_classify(c, g);
    test_tag(t, g);
    test_translate(s, g);
    {
        /* RECUR_OPEN_NO_PADDING: accepted; a model that records no padding classifies the same either way
         * (the chapter's padded models are compared with the framework in the Python converter tests). */
        recur_model *u = NULL;
        OK(recur_model_open(argv[1], RECUR_OPEN_NO_PADDING, &u));
        float a[2] = {0}, b[2] = {0};
        size_t n = 0;
        OK(recur_classify(c, "w3 w7 w12 .", a, 2, &n));
        OK(recur_classify(u, "w3 w7 w12 .", b, 2, &n));
        CHECK(a[0] == b[0] && a[1] == b[1]);
        recur_model_free(u);
    }
    {
        /* Each model says what it is; only a generator runs recur_generate. */
        int64_t kind = -1;
        recur_state *st = NULL;
        recur_sampler *sm = NULL;
        recur_sampler_params sp;
        OK(recur_model_get(c, RECUR_MODEL_TASK, &kind)); CHECK(kind == RECUR_TASK_CLASSIFY);
        OK(recur_model_get(t, RECUR_MODEL_TASK, &kind)); CHECK(kind == RECUR_TASK_TAG);
        OK(recur_model_get(s, RECUR_MODEL_TASK, &kind)); CHECK(kind == RECUR_TASK_SEQ2SEQ);
        OK(recur_model_get(g, RECUR_MODEL_TASK, &kind)); CHECK(kind == RECUR_TASK_GENERATE);
        recur_sampler_params_init(&sp);
        OK(recur_sampler_new(&sp, &sm));
        OK(recur_state_new(s, &st));
        EXPECT(recur_generate(st, sm, "a", 5, NULL, NULL, NULL), RECUR_ERR_UNSUPPORTED);
        CHECK(strstr(recur_last_error(), "translate") != NULL);
        recur_state_free(st);
        recur_sampler_free(sm);
    }
    recur_model_free(c);
    recur_model_free(t);
    recur_model_free(s);
    recur_model_free(g);
    printf("test_tasks: %d passed, %d failed\n", passed, failed);
    return failed > 0;
}
