/*
 * Tests of the C API through include/recur.h only: every declared function, its error paths, and
 * numerical checks whose expected values come from other calls or from plain C (argmax, the sampling
 * distribution), never from constants taken from the library's output.
 *
 *     test_recur MODEL_A MODEL_B
 *
 * MODEL_A: a character generator with two recurrent layers (so prefill's matrix products run on an upper
 * layer); MODEL_B: any other generator (for mismatch checks). Both made by `recur create`.
 * Prints failures to stderr and a last line "test_recur: N passed, M failed"; exits 1 when M > 0.
 */
#include "recur.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *path_a;
static const char *path_b;

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

static int all_finite(const float *a, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

static int32_t argmax(const float *a, size_t n) {
    size_t i, best = 0;
    for (i = 1; i < n; i++)
        if (a[i] > a[best]) best = i;
    return (int32_t)best;
}

/* A growing text buffer for generation callbacks. */
typedef struct {
    char text[8192];
    size_t length;
    int pieces;
    int stop_after; /* stop (return 1) after this many pieces; 0: never */
} collector;

static int collect(const char *piece, size_t length, void *user) {
    collector *c = (collector *)user;
    if (strlen(piece) != length) return 1; /* the piece must be NUL-terminated at length */
    if (c->length + length < sizeof c->text) {
        memcpy(c->text + c->length, piece, length);
        c->length += length;
        c->text[c->length] = '\0';
    }
    c->pieces++;
    return c->stop_after > 0 && c->pieces >= c->stop_after;
}

static void test_versions(void) {
    int major = -1, minor = -1, patch = -1;
    char expected[64];
    recur_version(&major, &minor, &patch);
    CHECK(major == RECUR_VERSION_MAJOR && minor == RECUR_VERSION_MINOR && patch == RECUR_VERSION_PATCH);
    recur_version(NULL, NULL, NULL);
    snprintf(expected, sizeof expected, "%d.%d.%d", major, minor, patch);
    CHECK(strcmp(recur_version_string(), expected) == 0);
    CHECK(strcmp(recur_version_string(), RECUR_VERSION_STRING) == 0);
    major = minor = -1;
    recur_format_version(&major, &minor);
    CHECK(major == RECUR_FORMAT_VERSION_MAJOR && minor == RECUR_FORMAT_VERSION_MINOR);
    recur_format_version(NULL, NULL);
}

static void test_status_strings(void) {
    int code;
    const char *seen[13];
    CHECK(strcmp(recur_status_string(RECUR_OK), "ok") == 0);
    for (code = 0; code <= 12; code++) {
        int j, distinct = 1;
        seen[code] = recur_status_string(code);
        for (j = 0; j < code; j++)
            if (strcmp(seen[j], seen[code]) == 0) distinct = 0;
        CHECK(seen[code] != NULL && seen[code][0] != '\0' && distinct);
        CHECK(strcmp(seen[code], "unknown status code") != 0);
    }
    CHECK(strcmp(recur_status_string(13), "unknown status code") == 0);
    CHECK(strcmp(recur_status_string(-1), "unknown status code") == 0);
    CHECK(RECUR_ERR_INVALID_ARGUMENT == 1 && RECUR_ERR_IO == 2 && RECUR_ERR_FORMAT == 3 &&
          RECUR_ERR_UNSUPPORTED_VERSION == 4 && RECUR_ERR_CHECKSUM == 5 && RECUR_ERR_MODEL == 6 &&
          RECUR_ERR_OUT_OF_RANGE == 7 && RECUR_ERR_BUFFER_TOO_SMALL == 8 && RECUR_ERR_MISMATCH == 9 &&
          RECUR_ERR_NUMERICAL == 10 && RECUR_ERR_UNSUPPORTED == 11 && RECUR_ERR_OUT_OF_MEMORY == 12);
}

static void *fail_on_other_thread(void *arg) {
    recur_model *m = NULL;
    recur_status s = recur_model_open("/nonexistent/other-thread.recur", 0, &m);
    char **out = (char **)arg;
    *out = s == RECUR_ERR_IO && strstr(recur_last_error(), "other-thread") ? (char *)"ok" : (char *)"bad";
    return NULL;
}

static void test_last_error(void) {
    recur_model *m = (recur_model *)&m; /* must be reset to NULL on failure */
    pthread_t t;
    char *result = NULL;
    EXPECT(recur_model_open("/nonexistent/main-thread.recur", 0, &m), RECUR_ERR_IO);
    CHECK(m == NULL);
    CHECK(strstr(recur_last_error(), "main-thread") != NULL);
    /* A failure on another thread does not touch this thread's message. */
    CHECK(pthread_create(&t, NULL, fail_on_other_thread, &result) == 0);
    pthread_join(t, NULL);
    CHECK(result != NULL && strcmp(result, "ok") == 0);
    CHECK(strstr(recur_last_error(), "main-thread") != NULL);
    /* Successful calls leave the message alone. */
    {
        size_t n = 0;
        recur_model *a = NULL;
        REQUIRE(recur_model_open(path_a, 0, &a));
        OK(recur_model_vocab_size(a, &n));
        CHECK(strstr(recur_last_error(), "main-thread") != NULL);
        recur_model_free(a);
    }
}

static void test_open_errors(void) {
    recur_model *m = NULL;
    size_t size = 0;
    unsigned char *bytes = read_file(path_a, &size);
    unsigned char *copy;
    CHECK(bytes != NULL && size > 64);
    if (!bytes) return;
    copy = (unsigned char *)malloc(size + 1);

    EXPECT(recur_model_open(NULL, 0, &m), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_open(path_a, 0, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_open(path_a, 0x80, &m), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL);
    EXPECT(recur_model_open("/", 0, &m), RECUR_ERR_IO);
    EXPECT(recur_model_open("\xff\xfe.recur", 0, &m), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_open_buffer(NULL, 10, 0, &m), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_open_buffer(bytes, size, 0, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_open_buffer(bytes, 0, 0, &m), RECUR_ERR_FORMAT);
    EXPECT(recur_model_open_buffer("hello, world", 12, 0, &m), RECUR_ERR_FORMAT);
    /* Truncated: inside the header, then inside the data. */
    EXPECT(recur_model_open_buffer(bytes, 40, 0, &m), RECUR_ERR_FORMAT);
    EXPECT(recur_model_open_buffer(bytes, size - 1, 0, &m), RECUR_ERR_FORMAT);
    EXPECT(recur_model_open_buffer(bytes, size - 1, RECUR_OPEN_SKIP_CHECKSUM, &m), RECUR_ERR_FORMAT);
    CHECK(m == NULL);
    /* Bad magic. */
    memcpy(copy, bytes, size);
    copy[1] ^= 0xff;
    EXPECT(recur_model_open_buffer(copy, size, 0, &m), RECUR_ERR_FORMAT);
    /* A future major version. */
    memcpy(copy, bytes, size);
    copy[8] = (unsigned char)(RECUR_FORMAT_VERSION_MAJOR + 1);
    EXPECT(recur_model_open_buffer(copy, size, RECUR_OPEN_SKIP_CHECKSUM, &m), RECUR_ERR_UNSUPPORTED_VERSION);
    /* A flipped bit in the last weight (the output bias of the last token): checksum error, unless
     * skipped, and then only that token's logit differs. */
    memcpy(copy, bytes, size);
    copy[size - 2] ^= 0x10;
    EXPECT(recur_model_open_buffer(copy, size, 0, &m), RECUR_ERR_CHECKSUM);
    CHECK(strstr(recur_last_error(), "checksum") != NULL);
    {
        recur_model *good = NULL, *bent = NULL;
        recur_state *sg = NULL, *sb = NULL;
        const float *lg = NULL, *lb = NULL;
        size_t n = 0, i, same = 0;
        OK(recur_model_open_buffer(copy, size, RECUR_OPEN_SKIP_CHECKSUM, &bent));
        OK(recur_model_open_buffer(bytes, size, 0, &good));
        if (good && bent) {
            REQUIRE(recur_model_output_size(good, &n));
            REQUIRE(recur_state_new(good, &sg));
            REQUIRE(recur_state_new(bent, &sb));
            REQUIRE(recur_state_step(sg, 5, &lg));
            REQUIRE(recur_state_step(sb, 5, &lb));
            for (i = 0; i + 1 < n; i++) same += lg[i] == lb[i];
            CHECK(same == n - 1);
            CHECK(lg[n - 1] != lb[n - 1]);
        }
        recur_state_free(sg);
        recur_state_free(sb);
        recur_model_free(good);
        recur_model_free(bent);
    }
    /* The buffer is copied: scribbling over it after opening changes nothing. */
    {
        recur_model *a = NULL, *b = NULL;
        recur_state *sa = NULL, *sb = NULL;
        const float *la = NULL, *lb = NULL;
        size_t n = 0;
        memcpy(copy, bytes, size);
        REQUIRE(recur_model_open_buffer(copy, size, 0, &a));
        memset(copy, 0, size);
        free(copy);
        copy = NULL;
        REQUIRE(recur_model_open(path_a, 0, &b));
        REQUIRE(recur_model_output_size(a, &n));
        REQUIRE(recur_state_new(a, &sa));
        REQUIRE(recur_state_new(b, &sb));
        REQUIRE(recur_state_step(sa, 3, &la));
        REQUIRE(recur_state_step(sb, 3, &lb));
        CHECK(max_abs_diff(la, lb, n) == 0.0f);
        recur_state_free(sa);
        recur_state_free(sb);
        recur_model_free(a);
        recur_model_free(b);
    }
    free(copy);
    free(bytes);
}

static void test_model_queries(recur_model *a) {
    size_t vocab = 0, out = 0, len = 0;
    int64_t v = -2;
    const char *text = NULL;
    int32_t id = -1;
    int32_t i;

    OK(recur_model_vocab_size(a, &vocab));
    OK(recur_model_output_size(a, &out));
    CHECK(vocab > 10 && out == vocab); /* a generator: one logit per token */
    EXPECT(recur_model_vocab_size(NULL, &vocab), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_vocab_size(a, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_output_size(NULL, &out), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_output_size(a, NULL), RECUR_ERR_INVALID_ARGUMENT);

    OK(recur_model_get(a, RECUR_MODEL_VOCAB_SIZE, &v));
    CHECK(v == (int64_t)vocab);
    OK(recur_model_get(a, RECUR_MODEL_OUTPUT_SIZE, &v));
    CHECK(v == (int64_t)out);
    OK(recur_model_get(a, RECUR_MODEL_STATE_FLOATS, &v));
    CHECK(v > 0);
    OK(recur_model_get(a, RECUR_MODEL_TOKENIZER, &v));
    CHECK(v == RECUR_TOKENIZER_CHAR);
    OK(recur_model_get(a, RECUR_MODEL_BOS_ID, &v));
    CHECK(v == -1);
    OK(recur_model_get(a, RECUR_MODEL_EOS_ID, &v));
    CHECK(v == -1);
    OK(recur_model_get(a, RECUR_MODEL_PAD_ID, &v));
    CHECK(v == -1);
    OK(recur_model_get(a, RECUR_MODEL_UNK_ID, &v));
    CHECK(v == -1);
    OK(recur_model_get(a, RECUR_MODEL_OUTPUT_IS_PROBABILITY, &v));
    CHECK(v == 0);
    OK(recur_model_get(a, RECUR_MODEL_FORMAT_MAJOR, &v));
    CHECK(v == 1 || v == 2);
    OK(recur_model_get(a, RECUR_MODEL_FORMAT_MINOR, &v));
    CHECK(v >= 0);
    OK(recur_model_get(a, RECUR_MODEL_CHECKSUM, &v));
    CHECK(v >= 0 && v <= 0xffffffffLL);
    OK(recur_model_get(a, RECUR_MODEL_PARAMETERS, &v));
    CHECK(v > (int64_t)(vocab * vocab));
    OK(recur_model_get(a, RECUR_MODEL_LAYERS, &v));
    CHECK(v == 4); /* embedding, two recurrent layers, dense */
    {
        size_t fsize = 0;
        unsigned char *bytes = read_file(path_a, &fsize);
        free(bytes);
        OK(recur_model_get(a, RECUR_MODEL_FILE_BYTES, &v));
        CHECK(v == (int64_t)fsize);
    }
    OK(recur_model_get(a, RECUR_MODEL_CAN_STEP, &v));
    CHECK(v == 1);
    EXPECT(recur_model_get(a, 999, &v), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_get(a, -1, &v), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_get(NULL, RECUR_MODEL_VOCAB_SIZE, &v), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_get(a, RECUR_MODEL_VOCAB_SIZE, NULL), RECUR_ERR_INVALID_ARGUMENT);

    /* Every token's text maps back to its id. */
    {
        int round_trip = 1;
        for (i = 0; i < (int32_t)vocab; i++) {
            if (recur_model_token_text(a, i, &text, &len) != RECUR_OK || strlen(text) != len ||
                recur_model_token_id(a, text, &id) != RECUR_OK || id != i)
                round_trip = 0;
        }
        CHECK(round_trip);
    }
    OK(recur_model_token_id(a, "A", &id));
    OK(recur_model_token_text(a, id, &text, NULL));
    CHECK(strcmp(text, "A") == 0);
    EXPECT(recur_model_token_text(a, (int32_t)vocab, &text, &len), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_model_token_text(a, -1, &text, &len), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_model_token_text(NULL, 0, &text, &len), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_token_text(a, 0, NULL, &len), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_token_id(a, "no such piece", &id), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_model_token_id(a, "\xc3\xa9", &id), RECUR_ERR_OUT_OF_RANGE); /* é: not in ASCII vocab */
    EXPECT(recur_model_token_id(a, NULL, &id), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_token_id(a, "A", NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_token_id(NULL, "A", &id), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_token_id(a, "\xff", &id), RECUR_ERR_INVALID_ARGUMENT);
}

static void test_encode_decode(recur_model *a) {
    const char *text = "Alice was beginning to get very tired.";
    int32_t ids[64];
    size_t count = 0, length = 0, k;
    char buffer[128], joined[128];

    /* Ask for the count, then encode. */
    EXPECT(recur_model_encode(a, text, NULL, 0, &count), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(count == strlen(text));
    ids[0] = -7;
    EXPECT(recur_model_encode(a, text, ids, 5, &count), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(count == strlen(text) && ids[0] == -7); /* nothing written */
    OK(recur_model_encode(a, text, ids, 64, &count));
    CHECK(count == strlen(text));
    /* Each id is the token of that character (character vocabulary). */
    joined[0] = '\0';
    for (k = 0; k < count; k++) {
        const char *piece = NULL;
        if (recur_model_token_text(a, ids[k], &piece, NULL) == RECUR_OK) strcat(joined, piece);
    }
    CHECK(strcmp(joined, text) == 0);
    OK(recur_model_encode(a, "", ids, 64, &count));
    CHECK(count == 0);
    OK(recur_model_encode(a, "", NULL, 0, &count));
    CHECK(count == 0);
    EXPECT(recur_model_encode(a, "caf\xc3\xa9", ids, 64, &count), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_model_encode(a, "\xff\xfe", ids, 64, &count), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_encode(a, NULL, ids, 64, &count), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_encode(a, text, NULL, 64, &count), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_encode(a, text, ids, 64, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_encode(NULL, text, ids, 64, &count), RECUR_ERR_INVALID_ARGUMENT);

    /* Decode round trip, with the buffer-size protocol. */
    OK(recur_model_encode(a, text, ids, 64, &count));
    EXPECT(recur_model_decode(a, ids, count, NULL, 0, &length), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(length == strlen(text));
    buffer[0] = 'x';
    EXPECT(recur_model_decode(a, ids, count, buffer, length, &length), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(buffer[0] == 'x' && length == strlen(text)); /* no room for the NUL: nothing written */
    OK(recur_model_decode(a, ids, count, buffer, length + 1, &length));
    CHECK(strcmp(buffer, text) == 0 && length == strlen(text));
    OK(recur_model_decode(a, NULL, 0, buffer, sizeof buffer, &length));
    CHECK(length == 0 && buffer[0] == '\0');
    ids[3] = 100000;
    EXPECT(recur_model_decode(a, ids, count, buffer, sizeof buffer, &length), RECUR_ERR_OUT_OF_RANGE);
    ids[3] = -1;
    EXPECT(recur_model_decode(a, ids, count, buffer, sizeof buffer, &length), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_model_decode(a, NULL, 3, buffer, sizeof buffer, &length), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_decode(a, ids, 0, NULL, 10, &length), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_decode(a, ids, 0, buffer, sizeof buffer, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_decode(NULL, ids, 0, buffer, sizeof buffer, &length), RECUR_ERR_INVALID_ARGUMENT);
}

static void test_states(recur_model *a, recur_model *b) {
    const char *prompt = "Down the Rabbit-Hole";
    int32_t ids[64];
    size_t count = 0, n = 0, k, save_size = 0, written = 0;
    recur_state *s1 = NULL, *s2 = NULL, *s3 = NULL, *sb = NULL;
    const float *logits = NULL, *prefilled = NULL, *out = NULL;
    float *stepped, *copy_out, *after_a, *after_b;
    unsigned char *saved, *bad;
    uint64_t position = 99;

    REQUIRE(recur_model_output_size(a, &n));
    REQUIRE(recur_model_encode(a, prompt, ids, 64, &count));
    stepped = (float *)calloc(n, sizeof(float));
    copy_out = (float *)calloc(n, sizeof(float));
    after_a = (float *)calloc(n, sizeof(float));
    after_b = (float *)calloc(n, sizeof(float));

    EXPECT(recur_state_new(NULL, &s1), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_new(a, NULL), RECUR_ERR_INVALID_ARGUMENT);
    OK(recur_state_new(a, &s1));
    OK(recur_state_new(a, &s2));
    OK(recur_state_new(a, &s3));
    OK(recur_state_new(b, &sb));

    /* A fresh state: position 0, zero output. */
    OK(recur_state_position(s1, &position));
    CHECK(position == 0);
    OK(recur_state_output(s1, &out));
    CHECK(out != NULL && max_abs_diff(out, after_a, n) == 0.0f);

    /* Step one by one vs prefill: equal up to rounding. */
    for (k = 0; k < count; k++) REQUIRE(recur_state_step(s1, ids[k], &logits));
    memcpy(stepped, logits, n * sizeof(float));
    OK(recur_state_prefill(s2, ids, count, &prefilled));
    CHECK(all_finite(stepped, n) && all_finite(prefilled, n));
    CHECK(max_abs_diff(stepped, prefilled, n) <= 1e-5f);
    CHECK(max_abs_diff(stepped, after_a, n) > 1e-3f); /* not all zero */
    OK(recur_state_position(s1, &position));
    CHECK(position == count);
    OK(recur_state_position(s2, &position));
    CHECK(position == count);
    OK(recur_state_output(s2, &out));
    CHECK(out == prefilled);

    /* step_copy gives the same values as step, and refuses small buffers without stepping. */
    OK(recur_state_copy(s3, s1));
    EXPECT(recur_state_step_copy(s3, ids[0], copy_out, n - 1), RECUR_ERR_BUFFER_TOO_SMALL);
    OK(recur_state_position(s3, &position));
    CHECK(position == count);
    OK(recur_state_step_copy(s3, ids[0], copy_out, n));
    OK(recur_state_step(s1, ids[0], &logits));
    CHECK(max_abs_diff(copy_out, logits, n) == 0.0f);
    EXPECT(recur_state_step_copy(s3, ids[0], NULL, n), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_copy(NULL, ids[0], copy_out, n), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_copy(s3, (int32_t)n, copy_out, n), RECUR_ERR_OUT_OF_RANGE);

    /* Bad tokens leave the state unchanged. */
    OK(recur_state_output(s1, &out));
    memcpy(after_a, out, n * sizeof(float));
    EXPECT(recur_state_step(s1, -1, &logits), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_state_step(s1, (int32_t)n, &logits), RECUR_ERR_OUT_OF_RANGE);
    CHECK(strstr(recur_last_error(), "outside the vocabulary") != NULL);
    ids[count] = (int32_t)n + 5;
    EXPECT(recur_state_prefill(s1, ids, count + 1, &logits), RECUR_ERR_OUT_OF_RANGE);
    OK(recur_state_position(s1, &position));
    CHECK(position == count + 1);
    OK(recur_state_output(s1, &out));
    CHECK(max_abs_diff(out, after_a, n) == 0.0f);
    EXPECT(recur_state_step(NULL, 0, &logits), RECUR_ERR_INVALID_ARGUMENT);
    OK(recur_state_step(s3, 0, NULL)); /* logits is optional */
    EXPECT(recur_state_prefill(s1, ids, 0, &logits), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_prefill(s1, NULL, 3, &logits), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_prefill(NULL, ids, 3, &logits), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_position(NULL, &position), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_position(s1, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_output(NULL, &out), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_output(s1, NULL), RECUR_ERR_INVALID_ARGUMENT);

    /* Save, continue, restore, continue again: identical. */
    OK(recur_state_size(s1, &save_size));
    CHECK(save_size > n * sizeof(float));
    saved = (unsigned char *)malloc(save_size + 8);
    bad = (unsigned char *)malloc(save_size + 8);
    EXPECT(recur_state_save(s1, saved, save_size - 1, &written), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(written == save_size);
    written = 0;
    EXPECT(recur_state_save(s1, NULL, 0, &written), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(written == save_size);
    OK(recur_state_save(s1, saved, save_size + 8, &written));
    CHECK(written == save_size);
    REQUIRE(recur_state_step(s1, ids[1], &logits));
    REQUIRE(recur_state_step(s1, ids[2], &logits));
    memcpy(after_a, logits, n * sizeof(float));
    OK(recur_state_reset(s1));
    OK(recur_state_position(s1, &position));
    CHECK(position == 0);
    OK(recur_state_restore(s1, saved, save_size));
    OK(recur_state_position(s1, &position));
    CHECK(position == count + 1);
    REQUIRE(recur_state_step(s1, ids[1], &logits));
    REQUIRE(recur_state_step(s1, ids[2], &logits));
    CHECK(max_abs_diff(after_a, logits, n) == 0.0f);
    /* Restoring into a new state of another handle of the same file works too. */
    {
        recur_model *again = NULL;
        recur_state *s4 = NULL;
        REQUIRE(recur_model_open(path_a, RECUR_OPEN_SKIP_CHECKSUM, &again));
        REQUIRE(recur_state_new(again, &s4));
        OK(recur_state_restore(s4, saved, save_size));
        REQUIRE(recur_state_step(s4, ids[1], &logits));
        REQUIRE(recur_state_step(s4, ids[2], &logits));
        CHECK(max_abs_diff(after_a, logits, n) == 0.0f);
        /* ... and states of two handles of one file may be copied between. */
        OK(recur_state_copy(s4, s2));
        recur_state_free(s4);
        recur_model_free(again);
    }
    /* Errors: another model, corrupt values, bad magic, truncated, trailing bytes, NULLs. */
    EXPECT(recur_state_restore(sb, saved, save_size), RECUR_ERR_MISMATCH);
    memcpy(bad, saved, save_size);
    bad[save_size - 3] ^= 0x40;
    EXPECT(recur_state_restore(s1, bad, save_size), RECUR_ERR_CHECKSUM);
    memcpy(bad, saved, save_size);
    bad[0] = 'X';
    EXPECT(recur_state_restore(s1, bad, save_size), RECUR_ERR_FORMAT);
    EXPECT(recur_state_restore(s1, saved, save_size - 4), RECUR_ERR_FORMAT);
    EXPECT(recur_state_restore(s1, saved, 10), RECUR_ERR_FORMAT);
    memcpy(bad, saved, save_size);
    bad[save_size] = 0;
    EXPECT(recur_state_restore(s1, bad, save_size + 1), RECUR_ERR_FORMAT);
    memcpy(bad, saved, save_size);
    bad[8] = 0x7f; /* saved-state version */
    EXPECT(recur_state_restore(s1, bad, save_size), RECUR_ERR_UNSUPPORTED_VERSION);
    EXPECT(recur_state_restore(s1, NULL, save_size), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_restore(NULL, saved, save_size), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_size(NULL, &save_size), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_size(s1, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_save(NULL, saved, save_size, &written), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_save(s1, saved, save_size, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_save(s1, NULL, save_size, &written), RECUR_ERR_INVALID_ARGUMENT);
    /* A failed restore left s1 as it was. */
    OK(recur_state_output(s1, &out));
    CHECK(max_abs_diff(out, after_a, n) == 0.0f);

    /* Copy: the copy continues exactly like the original. */
    OK(recur_state_copy(s3, s1));
    OK(recur_state_copy(s3, s3));
    REQUIRE(recur_state_step(s1, ids[4], &logits));
    memcpy(after_a, logits, n * sizeof(float));
    REQUIRE(recur_state_step(s3, ids[4], &logits));
    CHECK(max_abs_diff(after_a, logits, n) == 0.0f);
    EXPECT(recur_state_copy(sb, s1), RECUR_ERR_MISMATCH);
    EXPECT(recur_state_copy(NULL, s1), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_copy(s1, NULL), RECUR_ERR_INVALID_ARGUMENT);

    /* Reset: the next step equals a fresh state's first step. */
    OK(recur_state_reset(s1));
    OK(recur_state_output(s1, &out));
    memset(after_b, 0, n * sizeof(float));
    CHECK(max_abs_diff(out, after_b, n) == 0.0f);
    REQUIRE(recur_state_step(s1, ids[0], &logits));
    memcpy(after_a, logits, n * sizeof(float));
    {
        recur_state *fresh = NULL;
        REQUIRE(recur_state_new(a, &fresh));
        REQUIRE(recur_state_step(fresh, ids[0], &logits));
        CHECK(max_abs_diff(after_a, logits, n) == 0.0f);
        recur_state_free(fresh);
    }
    EXPECT(recur_state_reset(NULL), RECUR_ERR_INVALID_ARGUMENT);

    /* Handles of the wrong kind are refused, not misread. */
    EXPECT(recur_state_reset((recur_state *)a), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_model_vocab_size((recur_model *)s1, &k), RECUR_ERR_INVALID_ARGUMENT);

    /* A state keeps its model alive: free the model first, then use the state. */
    {
        recur_model *m = NULL;
        recur_state *s = NULL;
        REQUIRE(recur_model_open(path_a, 0, &m));
        REQUIRE(recur_state_new(m, &s));
        recur_model_free(m);
        OK(recur_state_step(s, ids[0], &logits));
        CHECK(max_abs_diff(after_a, logits, n) == 0.0f);
        recur_state_free(s);
    }

    recur_state_free(NULL);
    recur_model_free(NULL);
    recur_sampler_free(NULL);
    recur_state_free(s1);
    recur_state_free(s2);
    recur_state_free(s3);
    recur_state_free(sb);
    free(saved);
    free(bad);
    free(stepped);
    free(copy_out);
    free(after_a);
    free(after_b);
}

static void test_sampler(recur_model *a) {
    recur_sampler_params p;
    recur_sampler *s = NULL, *g = NULL;
    int32_t token = -1;
    int counts[3] = {0, 0, 0};
    int i;
    float logits[3];
    recur_state *st = NULL;
    const float *out = NULL;
    size_t n = 0;

    /* The struct layout the library reads. */
    CHECK(sizeof(recur_sampler_params) == 24);
    CHECK(offsetof(recur_sampler_params, temperature) == 0 && offsetof(recur_sampler_params, top_k) == 4 &&
          offsetof(recur_sampler_params, top_p) == 8 && offsetof(recur_sampler_params, seed) == 16);
    memset(&p, 0x55, sizeof p);
    recur_sampler_params_init(&p);
    CHECK(p.temperature == 1.0f && p.top_k == 0 && p.top_p == 1.0f && p.seed == 0);
    recur_sampler_params_init(NULL);

    /* Invalid parameters. */
    EXPECT(recur_sampler_new(NULL, &s), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_sampler_new(&p, NULL), RECUR_ERR_INVALID_ARGUMENT);
    p.temperature = -1;
    EXPECT(recur_sampler_new(&p, &s), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);
    p.temperature = (float)NAN;
    EXPECT(recur_sampler_new(&p, &s), RECUR_ERR_INVALID_ARGUMENT);
    recur_sampler_params_init(&p);
    p.top_k = -1;
    EXPECT(recur_sampler_new(&p, &s), RECUR_ERR_INVALID_ARGUMENT);
    recur_sampler_params_init(&p);
    p.top_p = 0;
    EXPECT(recur_sampler_new(&p, &s), RECUR_ERR_INVALID_ARGUMENT);
    p.top_p = 1.5f;
    EXPECT(recur_sampler_new(&p, &s), RECUR_ERR_INVALID_ARGUMENT);

    /* Temperature 0 is argmax (computed here). */
    recur_sampler_params_init(&p);
    p.temperature = 0;
    OK(recur_sampler_new(&p, &g));
    REQUIRE(recur_model_output_size(a, &n));
    REQUIRE(recur_state_new(a, &st));
    REQUIRE(recur_state_step(st, 40, &out));
    OK(recur_sampler_sample(g, out, n, &token));
    CHECK(token == argmax(out, n));
    token = -1;
    OK(recur_sampler_sample_state(g, st, &token));
    CHECK(token == argmax(out, n));
    logits[0] = 1;
    logits[1] = 3;
    logits[2] = 3;
    OK(recur_sampler_sample(g, logits, 3, &token));
    CHECK(token == 1); /* lowest id among equal maxima */

    /* Temperature 1 draws from softmax: logits (0, ln 3, -inf) give token 1 with probability 3/4 and
     * never token 2. 4000 draws: the standard deviation of the frequency is 0.007; allow 0.03. */
    recur_sampler_params_init(&p);
    p.seed = 12345;
    OK(recur_sampler_new(&p, &s));
    logits[0] = 0;
    logits[1] = logf(3.0f);
    logits[2] = -INFINITY;
    for (i = 0; i < 4000; i++) {
        if (recur_sampler_sample(s, logits, 3, &token) == RECUR_OK && token >= 0 && token < 3) counts[token]++;
    }
    CHECK(counts[2] == 0 && counts[0] + counts[1] == 4000);
    CHECK(fabs(counts[1] / 4000.0 - 0.75) < 0.03);
    recur_sampler_free(s);
    s = NULL;

    /* top_p 0.6 over probabilities (0.5, 0.3, 0.2) keeps tokens 0 and 1, renormalized to 5/8 and 3/8. */
    recur_sampler_params_init(&p);
    p.top_p = 0.6f;
    p.seed = 99;
    OK(recur_sampler_new(&p, &s));
    logits[0] = logf(0.5f);
    logits[1] = logf(0.3f);
    logits[2] = logf(0.2f);
    counts[0] = counts[1] = counts[2] = 0;
    for (i = 0; i < 4000; i++) {
        if (recur_sampler_sample(s, logits, 3, &token) == RECUR_OK && token >= 0 && token < 3) counts[token]++;
    }
    CHECK(counts[2] == 0 && fabs(counts[0] / 4000.0 - 0.625) < 0.03);
    recur_sampler_free(s);
    s = NULL;

    /* top_k 1 is argmax at any temperature. */
    recur_sampler_params_init(&p);
    p.top_k = 1;
    p.temperature = 5;
    OK(recur_sampler_new(&p, &s));
    {
        int all = 1;
        for (i = 0; i < 50; i++)
            if (recur_sampler_sample(s, out, n, &token) != RECUR_OK || token != argmax(out, n)) all = 0;
        CHECK(all);
    }

    /* Errors. */
    logits[1] = (float)NAN;
    EXPECT(recur_sampler_sample(s, logits, 3, &token), RECUR_ERR_NUMERICAL);
    logits[1] = INFINITY;
    EXPECT(recur_sampler_sample(s, logits, 3, &token), RECUR_ERR_NUMERICAL);
    EXPECT(recur_sampler_sample(s, logits, 0, &token), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_sampler_sample(s, NULL, 3, &token), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_sampler_sample(s, logits, 3, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_sampler_sample(NULL, logits, 3, &token), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_sampler_sample_state(NULL, st, &token), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_sampler_sample_state(s, NULL, &token), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_sampler_sample_state(s, st, NULL), RECUR_ERR_INVALID_ARGUMENT);

    recur_sampler_free(s);
    recur_sampler_free(g);
    recur_state_free(st);
}

/* A callback that tries to use the generation's own state and sampler, and another state. */
typedef struct {
    recur_state *state;
    recur_sampler *sampler;
    recur_state *other;
    int calls;
    int refused;
    int other_ok;
    int free_after; /* free state and sampler on this call (then stop) */
} reentrant;

static int reenter(const char *piece, size_t length, void *user) {
    reentrant *r = (reentrant *)user;
    float logits[2] = {0, 1};
    int32_t token = 0;
    uint64_t position = 0;
    (void)piece;
    (void)length;
    r->calls++;
    r->refused += recur_state_step(r->state, 1, NULL) == RECUR_ERR_INVALID_ARGUMENT;
    r->refused += recur_state_position(r->state, &position) == RECUR_ERR_INVALID_ARGUMENT;
    r->refused += recur_sampler_sample(r->sampler, logits, 2, &token) == RECUR_ERR_INVALID_ARGUMENT;
    r->refused += recur_generate(r->state, r->sampler, "A", 1, NULL, NULL, NULL) == RECUR_ERR_INVALID_ARGUMENT;
    r->other_ok += recur_state_step(r->other, 1, NULL) == RECUR_OK;
    if (r->free_after && r->calls == r->free_after) {
        recur_state_free(r->state);
        recur_sampler_free(r->sampler);
        return 1;
    }
    return 0;
}

static void test_callback_reentry(recur_model *a) {
    reentrant r;
    recur_sampler_params p;
    int32_t generated = 0;
    uint64_t position = 0;
    memset(&r, 0, sizeof r);
    recur_sampler_params_init(&p);
    REQUIRE(recur_state_new(a, &r.state));
    REQUIRE(recur_state_new(a, &r.other));
    REQUIRE(recur_sampler_new(&p, &r.sampler));
    OK(recur_generate(r.state, r.sampler, "Alice", 6, reenter, &r, &generated));
    CHECK(generated == 6 && r.calls == 6 && r.refused == 4 * 6 && r.other_ok == 6);
    /* After the generation both handles work again. */
    OK(recur_state_position(r.state, &position));
    CHECK(position == 5 + 6);
    OK(recur_state_step(r.state, 1, NULL));
    /* Freed inside the callback: released when recur_generate returns. */
    memset(&r.calls, 0, sizeof r - offsetof(reentrant, calls));
    r.free_after = 2;
    OK(recur_generate(r.state, r.sampler, "Alice", 6, reenter, &r, &generated));
    CHECK(generated == 2 && r.calls == 2);
    recur_state_free(r.other);
}

/* Generates with recur_generate and returns the text in c. */
static recur_status generate(recur_model *m, const char *prompt, int32_t tokens, float temperature,
                             uint64_t seed, collector *c, int32_t *generated) {
    recur_state *st = NULL;
    recur_sampler *sp = NULL;
    recur_sampler_params p;
    recur_status s;
    recur_sampler_params_init(&p);
    p.temperature = temperature;
    p.seed = seed;
    REQUIRE(recur_state_new(m, &st));
    REQUIRE(recur_sampler_new(&p, &sp));
    c->length = 0;
    c->text[0] = '\0';
    c->pieces = 0;
    s = recur_generate(st, sp, prompt, tokens, collect, c, generated);
    recur_sampler_free(sp);
    recur_state_free(st);
    return s;
}

static void test_generate(recur_model *a) {
    collector c1, c2, c3;
    int32_t generated = -1;
    recur_state *st = NULL;
    recur_sampler *sp = NULL;
    recur_sampler_params p;
    char manual[8192];

    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    memset(&c3, 0, sizeof c3);

    /* Same seed, same text; another seed, other text. */
    OK(generate(a, "Alice", 120, 0.9f, 7, &c1, &generated));
    CHECK(generated == 120 && c1.pieces == 120 && c1.length >= 120);
    OK(generate(a, "Alice", 120, 0.9f, 7, &c2, &generated));
    CHECK(strcmp(c1.text, c2.text) == 0);
    OK(generate(a, "Alice", 120, 0.9f, 8, &c3, &generated));
    CHECK(strcmp(c1.text, c3.text) != 0);

    /* recur_generate equals the loop written with the lower-level calls and the same seed:
     * prefill the prompt, then sample from the state, step, and append the token's text. */
    {
        int32_t ids[64], token = 0;
        size_t count = 0;
        int i;
        const char *piece = NULL;
        recur_sampler_params_init(&p);
        p.temperature = 0.9f;
        p.seed = 7;
        REQUIRE(recur_state_new(a, &st));
        REQUIRE(recur_sampler_new(&p, &sp));
        REQUIRE(recur_model_encode(a, "Alice", ids, 64, &count));
        REQUIRE(recur_state_prefill(st, ids, count, NULL));
        manual[0] = '\0';
        for (i = 0; i < 120; i++) {
            REQUIRE(recur_sampler_sample_state(sp, st, &token));
            REQUIRE(recur_state_step(st, token, NULL));
            REQUIRE(recur_model_token_text(a, token, &piece, NULL));
            strcat(manual, piece);
        }
        CHECK(strcmp(manual, c1.text) == 0);
        recur_sampler_free(sp);
        recur_state_free(st);
    }

    /* Greedy generation follows argmax of the logits (computed here). */
    {
        int32_t ids[64], token;
        size_t count = 0, n = 0;
        int i;
        const float *logits = NULL;
        const char *piece = NULL;
        REQUIRE(recur_model_output_size(a, &n));
        REQUIRE(recur_state_new(a, &st));
        REQUIRE(recur_model_encode(a, "The ", ids, 64, &count));
        REQUIRE(recur_state_prefill(st, ids, count, &logits));
        manual[0] = '\0';
        for (i = 0; i < 60; i++) {
            token = argmax(logits, n);
            REQUIRE(recur_model_token_text(a, token, &piece, NULL));
            strcat(manual, piece);
            REQUIRE(recur_state_step(st, token, &logits));
        }
        recur_state_free(st);
        OK(generate(a, "The ", 60, 0.0f, 1, &c1, &generated));
        CHECK(strcmp(manual, c1.text) == 0);
    }

    /* Continuing a stream: two calls on one state equal one call of the summed length. */
    recur_sampler_params_init(&p);
    p.temperature = 0.7f;
    p.seed = 3;
    REQUIRE(recur_state_new(a, &st));
    REQUIRE(recur_sampler_new(&p, &sp));
    c1.length = 0;
    c1.text[0] = '\0';
    c1.pieces = 0;
    OK(recur_generate(st, sp, "Alice", 30, collect, &c1, &generated));
    OK(recur_generate(st, sp, "", 20, collect, &c1, &generated));
    CHECK(generated == 20);
    OK(recur_generate(st, sp, NULL, 10, collect, &c1, &generated));
    OK(generate(a, "Alice", 60, 0.7f, 3, &c2, &generated));
    CHECK(strcmp(c1.text, c2.text) == 0);
    recur_sampler_free(sp);
    recur_state_free(st);

    /* The callback stops the generation; the count says how many tokens were sampled. */
    c1.stop_after = 3;
    OK(generate(a, "Alice", 50, 0.8f, 1, &c1, &generated));
    CHECK(generated == 3 && c1.pieces == 3);
    c1.stop_after = 0;
    OK(generate(a, "Alice", 0, 0.8f, 1, &c1, &generated));
    CHECK(generated == 0 && c1.pieces == 0);

    /* A NULL callback generates without delivering text. */
    recur_sampler_params_init(&p);
    REQUIRE(recur_state_new(a, &st));
    REQUIRE(recur_sampler_new(&p, &sp));
    OK(recur_generate(st, sp, "Alice", 15, NULL, NULL, &generated));
    CHECK(generated == 15);
    OK(recur_generate(st, sp, "Alice", 5, NULL, NULL, NULL));
    {
        uint64_t position = 0;
        OK(recur_state_position(st, &position));
        CHECK(position == 5 + 15 + 5 + 5);
    }

    /* Errors. */
    EXPECT(recur_generate(st, sp, "Alice", -1, collect, &c1, &generated), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(generated == 0);
    EXPECT(recur_generate(st, sp, "caf\xc3\xa9", 5, collect, &c1, &generated), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_generate(st, sp, "\xff", 5, collect, &c1, &generated), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_generate(NULL, sp, "Alice", 5, collect, &c1, &generated), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_generate(st, NULL, "Alice", 5, collect, &c1, &generated), RECUR_ERR_INVALID_ARGUMENT);
    recur_state_free(st);
    REQUIRE(recur_state_new(a, &st));
    EXPECT(recur_generate(st, sp, "", 5, collect, &c1, &generated), RECUR_ERR_INVALID_ARGUMENT);
    recur_sampler_free(sp);
    recur_state_free(st);
}

/* Several threads share one model, each with its own state and sampler: each gets the text a single
 * thread gets. */
typedef struct {
    recur_model *model;
    uint64_t seed;
    collector c;
    recur_status status;
} worker;

/* The continuations handed to a recur_continuation_callback. */
typedef struct {
    int count;
    int stop_after; /* stop (return 1) after this many; 0: never */
    char texts[8][1024];
    int32_t tokens[8][256];
    size_t token_counts[8];
    double log_p[8], score[8];
    int bad; /* a rank out of order, an unterminated text, or too many tokens */
} continuations;

static int collect_continuation(size_t rank, const char *text, size_t length, const int32_t *tokens, size_t count,
                                double log_p, double score, void *user) {
    continuations *r = (continuations *)user;
    if (rank != (size_t)r->count || strlen(text) != length || length >= 1024 || count > 256 || rank >= 8) {
        r->bad = 1;
        return 1;
    }
    memcpy(r->texts[rank], text, length + 1);
    memcpy(r->tokens[rank], tokens, count * sizeof *tokens);
    r->token_counts[rank] = count;
    r->log_p[rank] = log_p;
    r->score[rank] = score;
    r->count++;
    return r->stop_after > 0 && r->count >= r->stop_after;
}

/* Both callbacks of recur_generate_beam get the same user pointer. */
typedef struct {
    collector pieces;
    continuations results;
} beam_run;

static int beam_piece(const char *piece, size_t length, void *user) { return collect(piece, length, &((beam_run *)user)->pieces); }
static int beam_result(size_t rank, const char *text, size_t length, const int32_t *tokens, size_t count, double log_p,
                       double score, void *user) {
    return collect_continuation(rank, text, length, tokens, count, log_p, score, &((beam_run *)user)->results);
}

static recur_status run_beam(recur_state *st, const char *prompt, int32_t tokens, const recur_beam_params *bp,
                             beam_run *run, int32_t *generated) {
    memset(run, 0, sizeof *run);
    return recur_generate_beam(st, prompt, tokens, bp, beam_piece, beam_result, run, generated);
}

/* log softmax(output)[token], in double. */
static double log_probability(const float *out, size_t n, int32_t token) {
    double m = out[0], sum = 0;
    for (size_t k = 1; k < n; k++) m = out[k] > m ? out[k] : m;
    for (size_t k = 0; k < n; k++) sum += exp((double)out[k] - m);
    return (double)out[token] - m - log(sum);
}

static void test_beam(recur_model *a) {
    collector greedy;
    beam_run run;
    recur_beam_params bp;
    recur_state *st = NULL, *manual = NULL;
    const float *out = NULL;
    int32_t generated = -1, prompt_ids[16];
    size_t n_prompt = 0, V = 0;
    uint64_t pos = 0, pos2 = 0;

    recur_beam_params_init(&bp);
    CHECK(bp.beam == 4 && bp.best == 1 && bp.length_penalty == 1.0f && bp.unknown == RECUR_UNKNOWN_ERROR);
    REQUIRE(recur_model_output_size(a, &V));
    REQUIRE(recur_model_encode(a, "Alice", prompt_ids, 16, &n_prompt));

    /* Beam 1 is greedy decoding: the text of recur_generate at temperature 0. */
    memset(&greedy, 0, sizeof greedy);
    OK(generate(a, "Alice", 80, 0.0f, 7, &greedy, NULL));
    bp.beam = 1;
    REQUIRE(recur_state_new(a, &st));
    OK(run_beam(st, "Alice", 80, &bp, &run, &generated));
    CHECK(strcmp(run.pieces.text, greedy.text) == 0);
    CHECK(run.results.count == 1 && !run.results.bad && strcmp(run.results.texts[0], greedy.text) == 0);
    CHECK(generated == 80 && run.results.token_counts[0] == 80);
    OK(recur_state_position(st, &pos));
    CHECK(pos == n_prompt + 80);

    /* A wider beam: ranks by falling score; the pieces add up to the best text; each log-probability is
     * the sum computed here along its tokens; the state ends as if the best tokens had been stepped. */
    bp.beam = 6;
    bp.best = 3;
    OK(recur_state_reset(st));
    OK(run_beam(st, "Alice", 40, &bp, &run, &generated));
    CHECK(run.results.count == 3 && !run.results.bad);
    CHECK(run.results.score[0] >= run.results.score[1] && run.results.score[1] >= run.results.score[2]);
    CHECK(strcmp(run.pieces.text, run.results.texts[0]) == 0);
    CHECK(generated == (int32_t)run.results.token_counts[0]);
    REQUIRE(recur_state_new(a, &manual));
    for (int r = 0; r < 3; r++) {
        double lp = 0;
        OK(recur_state_reset(manual));
        OK(recur_state_prefill(manual, prompt_ids, n_prompt, &out));
        for (size_t k = 0; k < run.results.token_counts[r]; k++) {
            lp += log_probability(out, V, run.results.tokens[r][k]);
            OK(recur_state_step(manual, run.results.tokens[r][k], &out));
        }
        CHECK(fabs(lp - run.results.log_p[r]) < 1e-4 * (1 + fabs(lp)));
        /* The length penalty 1 divides by the token count (no EOS in this model). */
        CHECK(fabs(run.results.score[r] - lp / (double)run.results.token_counts[r]) < 1e-4);
        if (r == 0) {
            const float *got = NULL;
            OK(recur_state_output(st, &got));
            CHECK(memcmp(got, out, V * sizeof *out) == 0);
            OK(recur_state_position(manual, &pos2));
            OK(recur_state_position(st, &pos));
            CHECK(pos == pos2);
        }
    }
    /* NULL callbacks are allowed, and the result does not depend on them. */
    OK(recur_state_reset(manual));
    OK(recur_generate_beam(manual, "Alice", 40, &bp, NULL, NULL, NULL, &generated));
    CHECK(generated == (int32_t)run.results.token_counts[0]);
    /* A stop from the piece callback ends the search: the state holds the delivered prefix only. */
    OK(recur_state_reset(st));
    memset(&run, 0, sizeof run);
    run.pieces.stop_after = 2;
    OK(recur_generate_beam(st, "Alice", 200, &bp, beam_piece, beam_result, &run, &generated));
    CHECK(run.pieces.pieces == 2 && run.results.count == 1 && strcmp(run.results.texts[0], run.pieces.text) == 0);
    OK(recur_state_position(st, &pos));
    CHECK(pos == n_prompt + (uint64_t)generated && generated == (int32_t)run.results.token_counts[0] && generated < 200);
    /* The result callback may stop early. */
    OK(recur_state_reset(st));
    memset(&run, 0, sizeof run);
    run.results.stop_after = 1;
    OK(recur_generate_beam(st, "Alice", 20, &bp, NULL, beam_result, &run, NULL));
    CHECK(run.results.count == 1);

    /* Bad parameters are refused before anything is fed. */
    OK(recur_state_reset(st));
    OK(recur_state_step(st, prompt_ids[0], NULL));
    recur_beam_params bad;
    recur_beam_params_init(&bad); bad.beam = 0;
    EXPECT(recur_generate_beam(st, "Alice", 5, &bad, NULL, NULL, NULL, &generated), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(generated == 0);
    recur_beam_params_init(&bad); bad.beam = 257;
    EXPECT(recur_generate_beam(st, "Alice", 5, &bad, NULL, NULL, NULL, NULL), RECUR_ERR_INVALID_ARGUMENT);
    recur_beam_params_init(&bad); bad.best = 5;
    EXPECT(recur_generate_beam(st, "Alice", 5, &bad, NULL, NULL, NULL, NULL), RECUR_ERR_INVALID_ARGUMENT);
    recur_beam_params_init(&bad); bad.length_penalty = -1;
    EXPECT(recur_generate_beam(st, "Alice", 5, &bad, NULL, NULL, NULL, NULL), RECUR_ERR_INVALID_ARGUMENT);
    recur_beam_params_init(&bad); bad.length_penalty = NAN;
    EXPECT(recur_generate_beam(st, "Alice", 5, &bad, NULL, NULL, NULL, NULL), RECUR_ERR_INVALID_ARGUMENT);
    recur_beam_params_init(&bad); bad.unknown = 9;
    EXPECT(recur_generate_beam(st, "Alice", 5, &bad, NULL, NULL, NULL, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_generate_beam(st, "Alice", -1, NULL, NULL, NULL, NULL, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_generate_beam(NULL, "Alice", 5, NULL, NULL, NULL, NULL, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_generate_beam(st, "Alice\xff", 5, NULL, NULL, NULL, NULL, NULL), RECUR_ERR_INVALID_ARGUMENT);
    OK(recur_state_position(st, &pos));
    CHECK(pos == 1);
    recur_state_free(manual);
    recur_state_free(st);
}

static void *run_worker(void *arg) {
    worker *w = (worker *)arg;
    int32_t generated = 0;
    w->status = generate(w->model, "Alice", 200, 0.8f, w->seed, &w->c, &generated);
    return NULL;
}

static void test_threads(recur_model *a) {
    worker w[4];
    pthread_t t[4];
    collector expected[2];
    int32_t generated = 0;
    int i, same = 1;
    memset(w, 0, sizeof w);
    memset(expected, 0, sizeof expected);
    REQUIRE(generate(a, "Alice", 200, 0.8f, 100, &expected[0], &generated));
    REQUIRE(generate(a, "Alice", 200, 0.8f, 101, &expected[1], &generated));
    for (i = 0; i < 4; i++) {
        w[i].model = a;
        w[i].seed = 100 + (uint64_t)(i % 2);
        CHECK(pthread_create(&t[i], NULL, run_worker, &w[i]) == 0);
    }
    for (i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (i = 0; i < 4; i++)
        if (w[i].status != RECUR_OK || strcmp(w[i].c.text, expected[i % 2].text) != 0) same = 0;
    CHECK(same);
}

/* Untrusted saved states, text outside the vocabulary, the task property and reading without a mapping. */
static void test_hardening(recur_model *a) {
    int32_t ids[16], plain[16];
    size_t count = 0, plain_count = 0, need = 0, written = 0;
    int64_t task = -1;
    uint64_t position = 0, limit = (uint64_t)INT64_MAX;
    recur_state *s = NULL, *t = NULL;
    recur_sampler *sampler = NULL;
    recur_sampler_params params;
    recur_model *m = NULL;
    const float *out_a = NULL, *out_m = NULL;
    unsigned char *saved;

    OK(recur_model_get(a, RECUR_MODEL_TASK, &task));
    CHECK(task == RECUR_TASK_GENERATE);

    EXPECT(recur_model_encode_with(a, "caf\xc3\xa9", RECUR_UNKNOWN_ERROR, ids, 16, &count), RECUR_ERR_OUT_OF_RANGE);
    CHECK(strstr(recur_last_error(), "U+00E9") != NULL && strstr(recur_last_error(), "position 4") != NULL);
    OK(recur_model_encode(a, "caf", plain, 16, &plain_count));
    OK(recur_model_encode_with(a, "caf\xc3\xa9", RECUR_UNKNOWN_SKIP, ids, 16, &count));
    CHECK(count == 3 && memcmp(ids, plain, 3 * sizeof(int32_t)) == 0);
    OK(recur_model_encode(a, "cafe", plain, 16, &plain_count));
    OK(recur_model_encode_with(a, "caf\xc3\xa9", RECUR_UNKNOWN_REPLACE, ids, 16, &count));
    CHECK(count == 4 && memcmp(ids, plain, 4 * sizeof(int32_t)) == 0);
    EXPECT(recur_model_encode_with(a, "caf\xe2\x98\x83", RECUR_UNKNOWN_REPLACE, ids, 16, &count), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_model_encode_with(a, "cafe", 3, ids, 16, &count), RECUR_ERR_INVALID_ARGUMENT);

    /* A saved state whose position is 2^63 - 1: refused with a status, never a trap; nothing changes. */
    REQUIRE(recur_state_new(a, &s));
    OK(recur_state_step(s, plain[0], NULL));
    OK(recur_state_size(s, &need));
    saved = malloc(need);
    REQUIRE(saved != NULL ? RECUR_OK : RECUR_ERR_OUT_OF_MEMORY);
    OK(recur_state_save(s, saved, need, &written));
    for (int k = 0; k < 8; k++) saved[24 + k] = (unsigned char)(limit >> (8 * k));   /* little-endian u64 */
    OK(recur_state_restore(s, saved, written));
    OK(recur_state_position(s, &position));
    CHECK(position == limit);
    EXPECT(recur_state_step(s, plain[0], NULL), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_state_prefill(s, plain, 2, NULL), RECUR_ERR_OUT_OF_RANGE);
    recur_sampler_params_init(&params);
    params.temperature = 0;
    REQUIRE(recur_sampler_new(&params, &sampler));
    EXPECT(recur_generate(s, sampler, "ca", 5, NULL, NULL, NULL), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_generate(s, sampler, "", 5, NULL, NULL, NULL), RECUR_ERR_OUT_OF_RANGE);
    OK(recur_state_position(s, &position));
    CHECK(position == limit);
    OK(recur_state_reset(s));
    OK(recur_state_step(s, plain[0], NULL));
    free(saved);

    /* Opened without a mapping: the same model, the same outputs. Unknown flags are refused. */
    OK(recur_model_open(path_a, RECUR_OPEN_NO_MMAP, &m));
    REQUIRE(recur_state_new(m, &t));
    OK(recur_state_reset(s));
    OK(recur_state_prefill(s, plain, 4, &out_a));
    OK(recur_state_prefill(t, plain, 4, &out_m));
    {
        size_t n = 0;
        OK(recur_model_output_size(a, &n));
        CHECK(out_a != NULL && out_m != NULL && memcmp(out_a, out_m, n * sizeof(float)) == 0);
    }
    recur_state_free(t);
    recur_model_free(m);
    m = NULL;
    EXPECT(recur_model_open(path_a, 8, &m), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL);
    recur_state_free(s);
    recur_sampler_free(sampler);
}

int main(int argc, char **argv) {
    recur_model *a = NULL, *b = NULL;
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_A MODEL_B\n", argv[0]);
        return 2;
    }
    path_a = argv[1];
    path_b = argv[2];
    test_versions();
    test_status_strings();
    test_last_error();
    test_open_errors();
    REQUIRE(recur_model_open(path_a, 0, &a));
    REQUIRE(recur_model_open(path_b, 0, &b));
    test_model_queries(a);
    test_encode_decode(a);
    test_states(a, b);
    test_sampler(a);
    test_generate(a);
    test_beam(a);
    test_callback_reentry(a);
    test_threads(a);
    test_hardening(a);
    recur_model_free(a);
    recur_model_free(b);
    printf("test_recur: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
