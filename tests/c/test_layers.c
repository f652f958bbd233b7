/*
 * Tests of the layer calls of the C API: recur_model_layer_get, recur_state_layer, recur_model_layer_outputs
 * and recur_model_layer_outputs_frames. Expected values come from other paths through the library, never
 * from constants taken from its output: a state's vectors after stepping against the whole-sequence run's
 * rows (two implementations of the recurrence); the last layer's rows against the logits of stepping,
 * recur_classify, recur_tag and recur_predict; a bidirectional layer's output against its two directions'
 * vectors; layer sizes against the model's own properties. (bindings/python/tests/test_layers.py compares
 * every layer with the numpy reference.)
 *
 *     test_layers GENERATOR BILSTM_CLASSIFIER BIGRU_TAGGER STACKED_LSTM_GENERATOR FRAME_MODEL
 *
 * The first three are the shipped models/alice.recur (GRU), models/sentiment.recur (bidirectional LSTM)
 * and models/pos.recur (bidirectional GRU); the others are made by `recur create` (two peephole LSTM
 * layers; a regress frame model of two LSTM layers). Prints failures to stderr and a last line
 * "test_layers: N passed, M failed"; exits 1 when M > 0.
 */
#include "check.h"

#include <math.h>
#include <string.h>

static recur_model *open_model(const char *path) {
    recur_model *m = NULL;
    REQUIRE(recur_model_open(path, 0, &m));
    return m;
}

static int64_t prop(const recur_model *m, size_t layer, int property) {
    int64_t v = -99;
    REQUIRE(recur_model_layer_get(m, layer, property, &v));
    return v;
}

static int64_t model_prop(const recur_model *m, int property) {
    int64_t v = -99;
    REQUIRE(recur_model_get(m, property, &v));
    return v;
}

static float max_diff(const float *a, const float *b, size_t n) {
    float d = 0;
    for (size_t i = 0; i < n; i++) {
        float e = fabsf(a[i] - b[i]);
        if (!(e <= d)) d = e;           /* NaN counts as a difference */
    }
    return d;
}

/* The values of `layer` over tokens (malloc'd rows × width floats), checked to be the size asked. */
static float *outputs(const recur_model *m, const int32_t *tokens, size_t n, size_t layer, int values,
                      size_t *rows, size_t *width) {
    EXPECT(recur_model_layer_outputs(m, tokens, n, layer, values, NULL, 0, rows, width), RECUR_ERR_BUFFER_TOO_SMALL);
    float *out = (float *)malloc(*rows * *width * sizeof(float) + 1);
    if (!out) exit(1);
    OK(recur_model_layer_outputs(m, tokens, n, layer, values, out, *rows * *width, rows, width));
    return out;
}

/* Sizes of every layer against the model's properties: the recurrent layers' state is the state's size. */
static void test_sizes(const recur_model *m) {
    int64_t layers = model_prop(m, RECUR_MODEL_LAYERS), state = 0;
    for (size_t i = 0; i < (size_t)layers; i++) {
        int64_t kind = prop(m, i, RECUR_LAYER_KIND), dirs = prop(m, i, RECUR_LAYER_DIRECTIONS);
        int64_t units = prop(m, i, RECUR_LAYER_UNITS), vectors = prop(m, i, RECUR_LAYER_STATE_VECTORS);
        int recurrent = kind == RECUR_LAYER_RNN || kind == RECUR_LAYER_GRU || kind == RECUR_LAYER_LSTM;
        CHECK(recurrent ? (dirs == 1 || dirs == 2) : dirs == 0);
        CHECK(vectors == (kind == RECUR_LAYER_LSTM ? 2 : recurrent ? 1 : 0));
        state += dirs * vectors * units;
        if (i + 1 < (size_t)layers) {
            CHECK(prop(m, i, RECUR_LAYER_OUTPUT_SIZE) == prop(m, i + 1, RECUR_LAYER_INPUT_SIZE));
        }
        if (kind == RECUR_LAYER_EMBEDDING) {
            CHECK(i == 0 && prop(m, i, RECUR_LAYER_INPUT_SIZE) == model_prop(m, RECUR_MODEL_VOCAB_SIZE));
        }
        if (!recurrent) CHECK(prop(m, i, RECUR_LAYER_RETURN_SEQUENCES) == 1);
    }
    CHECK(state == model_prop(m, RECUR_MODEL_STATE_FLOATS));
    CHECK(prop(m, (size_t)layers - 1, RECUR_LAYER_OUTPUT_SIZE) == model_prop(m, RECUR_MODEL_OUTPUT_SIZE));
    int64_t v = 7;
    EXPECT(recur_model_layer_get(m, (size_t)layers, RECUR_LAYER_KIND, &v), RECUR_ERR_OUT_OF_RANGE);
    CHECK(strstr(recur_last_error(), "outside the model's layers") != NULL && v == 7);
    EXPECT(recur_model_layer_get(m, (size_t)-1, RECUR_LAYER_KIND, &v), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_model_layer_get(m, 0, 99, &v), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_get(m, 0, -1, &v), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_get(m, 0, RECUR_LAYER_KIND, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_get(NULL, 0, RECUR_LAYER_KIND, &v), RECUR_ERR_INVALID_ARGUMENT);
}

/* A stepped generator: after every step, each recurrent layer's h (and c) equals row t of the whole-sequence
 * run, and the last layer's row t is the step's logits. */
static void test_stepped(recur_model *m, const char *text, float tol) {
    int32_t ids[64];
    size_t n = 0;
    OK(recur_model_encode(m, text, ids, 64, &n));
    CHECK(n > 3);
    size_t layers = (size_t)model_prop(m, RECUR_MODEL_LAYERS), V = (size_t)model_prop(m, RECUR_MODEL_OUTPUT_SIZE);
    float *h[8] = {0}, *c[8] = {0}, *logits = NULL;
    size_t rows = 0, width = 0, widths[8] = {0};
    CHECK(layers <= 8);
    for (size_t i = 0; i < layers && i < 8; i++) {
        if (prop(m, i, RECUR_LAYER_DIRECTIONS) == 0) continue;
        h[i] = outputs(m, ids, n, i, RECUR_VALUES_HIDDEN, &rows, &widths[i]);
        CHECK(rows == n && widths[i] == (size_t)prop(m, i, RECUR_LAYER_UNITS));
        float *o = outputs(m, ids, n, i, RECUR_VALUES_OUTPUT, &rows, &width);
        CHECK(rows == n && width == widths[i] && max_diff(o, h[i], n * width) == 0);
        free(o);
        if (prop(m, i, RECUR_LAYER_KIND) == RECUR_LAYER_LSTM) c[i] = outputs(m, ids, n, i, RECUR_VALUES_CELL, &rows, &width);
    }
    logits = outputs(m, ids, n, layers - 1, RECUR_VALUES_OUTPUT, &rows, &width);
    CHECK(rows == n && width == V);
    recur_state *s = NULL;
    REQUIRE(recur_state_new(m, &s));
    float got[1024];
    size_t count = 0;
    for (size_t t = 0; t < n; t++) {
        const float *out = NULL;
        OK(recur_state_step(s, ids[t], &out));
        CHECK(max_diff(out, logits + t * V, V) < tol);
        for (size_t i = 0; i < layers && i < 8; i++) {
            if (!h[i]) continue;
            OK(recur_state_layer(s, i, RECUR_VALUES_HIDDEN, got, 1024, &count));
            CHECK(count == widths[i] && max_diff(got, h[i] + t * widths[i], count) < tol);
            if (c[i]) {
                OK(recur_state_layer(s, i, RECUR_VALUES_CELL, got, 1024, &count));
                CHECK(count == widths[i] && max_diff(got, c[i] + t * widths[i], count) < tol);
            }
        }
    }
    /* A prefill leaves the vectors the steps left. */
    recur_state *p = NULL;
    REQUIRE(recur_state_new(m, &p));
    OK(recur_state_prefill(p, ids, n, NULL));
    size_t last = 0;
    for (size_t i = 0; i < layers; i++) if (prop(m, i, RECUR_LAYER_DIRECTIONS)) last = i;
    float stepped[1024];
    OK(recur_state_layer(s, last, RECUR_VALUES_OUTPUT, stepped, 1024, &count));
    OK(recur_state_layer(p, last, RECUR_VALUES_HIDDEN, got, 1024, &count));
    CHECK(max_diff(got, stepped, count) < tol);
    /* Errors; none changes the state. */
    const float *before = NULL;
    OK(recur_state_output(s, &before));
    float keep[1024];
    memcpy(keep, before, V * sizeof(float));
    float small[2] = {-7, -7};
    count = 0;
    EXPECT(recur_state_layer(s, last, RECUR_VALUES_HIDDEN, small, 2, &count), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(count == widths[last] && small[0] == -7 && small[1] == -7);
    EXPECT(recur_state_layer(s, last, RECUR_VALUES_HIDDEN, NULL, 0, &count), RECUR_ERR_BUFFER_TOO_SMALL);
    EXPECT(recur_state_layer(s, last, RECUR_VALUES_HIDDEN, NULL, 4, &count), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_layer(s, last, RECUR_VALUES_HIDDEN, got, 1024, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_layer(NULL, last, RECUR_VALUES_HIDDEN, got, 1024, &count), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_layer(s, layers, RECUR_VALUES_HIDDEN, got, 1024, &count), RECUR_ERR_OUT_OF_RANGE);
    CHECK(strstr(recur_last_error(), "outside the model's layers") != NULL);
    EXPECT(recur_state_layer(s, 0, RECUR_VALUES_HIDDEN, got, 1024, &count), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(strstr(recur_last_error(), "embedding") != NULL);
    EXPECT(recur_state_layer(s, layers - 1, RECUR_VALUES_HIDDEN, got, 1024, &count), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_layer(s, last, 3, got, 1024, &count), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_layer(s, last, -1, got, 1024, &count), RECUR_ERR_INVALID_ARGUMENT);
    if (!c[last]) {
        EXPECT(recur_state_layer(s, last, RECUR_VALUES_CELL, got, 1024, &count), RECUR_ERR_INVALID_ARGUMENT);
        CHECK(strstr(recur_last_error(), "no cell state") != NULL);
        size_t r = 5, w = 5;
        EXPECT(recur_model_layer_outputs(m, ids, n, last, RECUR_VALUES_CELL, NULL, 0, &r, &w), RECUR_ERR_INVALID_ARGUMENT);
    }
    const float *after = NULL;
    OK(recur_state_output(s, &after));
    CHECK(memcmp(keep, after, V * sizeof(float)) == 0);
    OK(recur_state_layer(s, last, RECUR_VALUES_HIDDEN, got, 1024, &count));
    CHECK(memcmp(got, stepped, count * sizeof(float)) == 0);
    /* After a reset: zeros. */
    OK(recur_state_reset(s));
    OK(recur_state_layer(s, last, RECUR_VALUES_HIDDEN, got, 1024, &count));
    int zero = 1;
    for (size_t j = 0; j < count; j++) zero &= got[j] == 0;
    CHECK(zero);
    recur_state_free(p);
    recur_state_free(s);
    for (size_t i = 0; i < 8; i++) { free(h[i]); free(c[i]); }
    free(logits);
}

/* The argument checks of recur_model_layer_outputs. */
static void test_output_errors(const recur_model *m, const recur_model *frames) {
    int32_t ids[3] = {1, 2, 3};
    float buf[8] = {-7};
    size_t rows = 9, width = 9;
    int64_t vocab = model_prop(m, RECUR_MODEL_VOCAB_SIZE), layers = model_prop(m, RECUR_MODEL_LAYERS);
    EXPECT(recur_model_layer_outputs(m, ids, 3, 1, RECUR_VALUES_OUTPUT, buf, 8, &rows, &width), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(rows > 0 && width > 0 && rows * width > 8 && buf[0] == -7);
    EXPECT(recur_model_layer_outputs(m, ids, 3, (size_t)layers, RECUR_VALUES_OUTPUT, buf, 8, &rows, &width),
           RECUR_ERR_OUT_OF_RANGE);
    CHECK(rows == 0 && width == 0);
    EXPECT(recur_model_layer_outputs(m, ids, 0, 1, RECUR_VALUES_OUTPUT, buf, 8, &rows, &width), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_outputs(m, NULL, 3, 1, RECUR_VALUES_OUTPUT, buf, 8, &rows, &width), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_outputs(m, ids, 3, 1, RECUR_VALUES_OUTPUT, NULL, 8, &rows, &width), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_outputs(m, ids, 3, 1, RECUR_VALUES_OUTPUT, buf, 8, NULL, &width), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_outputs(m, ids, 3, 1, RECUR_VALUES_OUTPUT, buf, 8, &rows, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_outputs(m, ids, 3, 1, 5, buf, 8, &rows, &width), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_outputs(m, ids, 3, 0, RECUR_VALUES_HIDDEN, buf, 8, &rows, &width), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_outputs(NULL, ids, 3, 1, RECUR_VALUES_OUTPUT, buf, 8, &rows, &width), RECUR_ERR_INVALID_ARGUMENT);
    int32_t bad[2] = {1, (int32_t)vocab};
    EXPECT(recur_model_layer_outputs(m, bad, 2, 1, RECUR_VALUES_OUTPUT, NULL, 0, &rows, &width), RECUR_ERR_OUT_OF_RANGE);
    float frame[64] = {0};
    EXPECT(recur_model_layer_outputs_frames(m, frame, 1, 4, 1, RECUR_VALUES_OUTPUT, buf, 8, &rows, &width),
           RECUR_ERR_UNSUPPORTED);
    EXPECT(recur_model_layer_outputs(frames, ids, 3, 0, RECUR_VALUES_OUTPUT, buf, 8, &rows, &width), RECUR_ERR_UNSUPPORTED);
    /* The embedding's rows are the layer's input: one per token. */
    size_t E = (size_t)prop(m, 0, RECUR_LAYER_UNITS);
    float *e = outputs(m, ids, 3, 0, RECUR_VALUES_OUTPUT, &rows, &width);
    CHECK(rows == 3 && width == E);
    float *e1 = outputs(m, ids + 1, 1, 0, RECUR_VALUES_OUTPUT, &rows, &width);
    CHECK(rows == 1 && memcmp(e1, e + E, E * sizeof(float)) == 0);
    free(e);
    free(e1);
}

/* A bidirectional LSTM classifier returning its last step: the layer's output is [forward h at T-1,
 * backward h at 0]; the head's last row is recur_classify's probability. */
static void test_bilstm_classifier(const recur_model *m) {
    const char *text = "this film was a wonderful surprise , i loved it";
    int32_t ids[64];
    size_t n = 0, rows = 0, width = 0;
    OK(recur_model_encode(m, text, ids, 64, &n));
    CHECK(n > 3);
    CHECK(prop(m, 1, RECUR_LAYER_KIND) == RECUR_LAYER_LSTM && prop(m, 1, RECUR_LAYER_DIRECTIONS) == 2);
    CHECK(prop(m, 1, RECUR_LAYER_RETURN_SEQUENCES) == 0);
    size_t H = (size_t)prop(m, 1, RECUR_LAYER_UNITS);
    float *h = outputs(m, ids, n, 1, RECUR_VALUES_HIDDEN, &rows, &width);
    CHECK(rows == n && width == 2 * H);
    float *c = outputs(m, ids, n, 1, RECUR_VALUES_CELL, &rows, &width);
    CHECK(rows == n && width == 2 * H);
    float *o = outputs(m, ids, n, 1, RECUR_VALUES_OUTPUT, &rows, &width);
    CHECK(rows == 1 && width == (size_t)prop(m, 1, RECUR_LAYER_OUTPUT_SIZE) && width == 2 * H);
    CHECK(max_diff(o, h + (n - 1) * 2 * H, H) == 0);
    CHECK(max_diff(o + H, h + H, H) == 0);
    /* h = o ⊙ tanh(c) with o in (0, 1): |h| < |tanh(c)| wherever c is not 0. */
    int bounded = 1;
    for (size_t j = 0; j < n * 2 * H; j++) bounded &= fabsf(h[j]) <= fabsf(tanhf(c[j])) + 1e-6f;
    CHECK(bounded);
    size_t layers = (size_t)model_prop(m, RECUR_MODEL_LAYERS);
    float *head = outputs(m, ids, n, layers - 1, RECUR_VALUES_OUTPUT, &rows, &width);
    CHECK(rows == 1 && width == 1);
    float p[2] = {0};
    size_t classes = 0;
    OK(recur_classify(m, text, p, 2, &classes));
    CHECK(classes == 2 && fabsf(p[1] - head[0]) < 1e-5f);
    float *dense = outputs(m, ids, n, 2, RECUR_VALUES_OUTPUT, &rows, &width);
    CHECK(rows == 1 && width == (size_t)prop(m, 2, RECUR_LAYER_UNITS));
    /* A state of a bidirectional model is not stepped; its vectors are zeros of both directions. */
    recur_model *mm = (recur_model *)m;
    recur_state *s = NULL;
    REQUIRE(recur_state_new(mm, &s));
    float v[512];
    size_t count = 0;
    OK(recur_state_layer(s, 1, RECUR_VALUES_CELL, v, 512, &count));
    CHECK(count == 2 * H && v[0] == 0 && v[2 * H - 1] == 0);
    recur_state_free(s);
    free(h);
    free(c);
    free(o);
    free(head);
    free(dense);
}

/* A bidirectional GRU tagger: concatenated outputs are the directions' vectors; the head's rows give
 * recur_tag's tags. */
static void test_bigru_tagger(const recur_model *m) {
    const char *text = "the quick brown fox jumps over the lazy dog .";
    int32_t ids[64], tags[64];
    size_t n = 0, rows = 0, width = 0, count = 0;
    OK(recur_model_encode(m, text, ids, 64, &n));
    CHECK(n > 3);
    CHECK(prop(m, 1, RECUR_LAYER_KIND) == RECUR_LAYER_GRU && prop(m, 1, RECUR_LAYER_DIRECTIONS) == 2);
    float *o = outputs(m, ids, n, 1, RECUR_VALUES_OUTPUT, &rows, &width);
    CHECK(rows == n && width == 2 * (size_t)prop(m, 1, RECUR_LAYER_UNITS));
    float *h = outputs(m, ids, n, 1, RECUR_VALUES_HIDDEN, &rows, &width);
    CHECK(rows == n && max_diff(o, h, n * width) == 0);
    size_t r = 0, w = 0;
    EXPECT(recur_model_layer_outputs(m, ids, n, 1, RECUR_VALUES_CELL, NULL, 0, &r, &w), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(strstr(recur_last_error(), "no cell state") != NULL);
    float *head = outputs(m, ids, n, 2, RECUR_VALUES_OUTPUT, &rows, &width);
    CHECK(rows == n && width == (size_t)model_prop(m, RECUR_MODEL_OUTPUT_SIZE));
    OK(recur_tag(m, text, tags, 64, &count));
    CHECK(count == n);
    int same = count == n;
    for (size_t t = 0; t < n && t < count; t++) {
        size_t best = 0;
        for (size_t j = 1; j < width; j++) if (head[t * width + j] > head[t * width + best]) best = j;
        same &= (int32_t)best == tags[t];
    }
    CHECK(same);
    free(o);
    free(h);
    free(head);
}

/* A frame model: the last layer's rows are recur_predict's; a state's vectors after a prefill are the last
 * rows of the whole-sequence run. */
static void test_frames(recur_model *m) {
    size_t F = (size_t)model_prop(m, RECUR_MODEL_FRAME_SIZE), T = 9, rows = 0, width = 0;
    float frames[9 * 64];
    CHECK(F <= 64);
    for (size_t i = 0; i < T * F; i++) frames[i] = sinf(0.37f * (float)i) * 1.5f;
    size_t layers = (size_t)model_prop(m, RECUR_MODEL_LAYERS), V = (size_t)model_prop(m, RECUR_MODEL_OUTPUT_SIZE);
    float predicted[9 * 64], out[9 * 64];
    OK(recur_predict(m, frames, T, F, predicted, T * V, &rows));
    CHECK(rows == T);
    EXPECT(recur_model_layer_outputs_frames(m, frames, T, F, layers - 1, RECUR_VALUES_OUTPUT, out, T * V - 1, &rows, &width),
           RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(rows == T && width == V);
    OK(recur_model_layer_outputs_frames(m, frames, T, F, layers - 1, RECUR_VALUES_OUTPUT, out, T * V, &rows, &width));
    CHECK(rows == T && width == V && max_diff(out, predicted, T * V) == 0);
    EXPECT(recur_model_layer_outputs_frames(m, frames, T, F + 1, 0, RECUR_VALUES_OUTPUT, out, T * V, &rows, &width),
           RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_layer_outputs_frames(m, frames, 0, F, 0, RECUR_VALUES_OUTPUT, out, T * V, &rows, &width),
           RECUR_ERR_INVALID_ARGUMENT);
    recur_state *s = NULL;
    REQUIRE(recur_state_new(m, &s));
    OK(recur_state_prefill_frames(s, frames, T, F, NULL));
    for (size_t i = 0; i < layers; i++) {
        if (prop(m, i, RECUR_LAYER_DIRECTIONS) == 0) continue;
        int values[2] = {RECUR_VALUES_HIDDEN, RECUR_VALUES_CELL};
        for (int k = 0; k < (prop(m, i, RECUR_LAYER_KIND) == RECUR_LAYER_LSTM ? 2 : 1); k++) {
            float seq[9 * 256], v[256];
            size_t count = 0;
            EXPECT(recur_model_layer_outputs_frames(m, frames, T, F, i, values[k], seq, sizeof seq / sizeof *seq, &rows, &width),
                   RECUR_OK);
            OK(recur_state_layer(s, i, values[k], v, 256, &count));
            CHECK(rows == T && count == width && max_diff(v, seq + (T - 1) * width, width) < 1e-4f);
        }
    }
    recur_state_free(s);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s GENERATOR BILSTM_CLASSIFIER BIGRU_TAGGER STACKED_LSTM_GENERATOR FRAME_MODEL\n", argv[0]);
        return 2;
    }
    recur_model *gen = open_model(argv[1]), *cls = open_model(argv[2]), *tag = open_model(argv[3]);
    recur_model *lstm = open_model(argv[4]), *frames = open_model(argv[5]);
    recur_model *all[5] = {gen, cls, tag, lstm, frames};
    for (int i = 0; i < 5; i++) test_sizes(all[i]);
    test_stepped(gen, "Alice was beginning to get very tired", 1e-4f);
    test_stepped(lstm, "the cat sat on the mat", 1e-4f);
    test_output_errors(gen, frames);
    test_bilstm_classifier(cls);
    test_bigru_tagger(tag);
    test_frames(frames);
    for (int i = 0; i < 5; i++) recur_model_free(all[i]);
    printf("test_layers: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
