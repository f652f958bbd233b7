/*
 * Concurrency through the C API (include/recur.h only):
 *   1. one model shared by 8 threads, each with its own state and sampler, stepping, prefilling, saving
 *      and generating at once: every thread's results equal those of the same work run serially;
 *   2. models opened (from the file and from a buffer) and freed on 8 threads at once, each freed while
 *      its state still uses it: the state keeps the model alive;
 *   3. a model freed by the main thread while 8 threads keep stepping states made from it;
 *   4. error messages are per thread: 8 threads failing at once each read their own message;
 *   5. whole-sequence models (classify, tag, seq2seq) shared by 8 threads calling recur_classify,
 *      recur_tag, recur_translate and recur_model_label at once: the results of the serial calls.
 *
 *     test_threads [--text TEXT] MODEL [[--text TEXT] MODEL...]
 *
 * Models that can step (generators) get tests 1-3, the others test 5, with TEXT (default "a b c") as the
 * input of the whole-sequence calls of the models after it.
 *
 * Meant to run under ThreadSanitizer (tests/c/sanitize.sh) as well as plainly. Prints failures to stderr
 * and a last line "test_threads: N passed, M failed"; exits 1 when M > 0.
 */
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8
#define STEPS 50
#define GENERATE 60
#define ROUNDS 2
#define OPENS 12

/* ---------------------------------------------------------------------------------------------------- */
/* 1. One model, eight streams                                                                          */
/* ---------------------------------------------------------------------------------------------------- */

typedef struct {
    char text[4096];
    size_t length;
} text_sink;

static int collect(const char *piece, size_t length, void *user) {
    text_sink *t = (text_sink *)user;
    if (t->length + length < sizeof t->text) {
        memcpy(t->text + t->length, piece, length);
        t->length += length;
        t->text[t->length] = '\0';
    }
    return 0;
}

/* What one stream computes: logits after STEPS steps, after a prefill, the saved state, generated text. */
typedef struct {
    recur_model *model;
    int k;
    recur_status status;
    float *logits_steps;
    float *logits_prefill;
    unsigned char *saved;
    size_t saved_size;
    text_sink text;
} stream_work;

static recur_status run_stream(stream_work *w) {
    recur_state *st = NULL;
    recur_sampler *sampler = NULL;
    recur_sampler_params params;
    size_t vocab = 0, outputs = 0, i;
    const float *logits = NULL;
    int32_t tokens[40];
    recur_status s;
    if ((s = recur_model_vocab_size(w->model, &vocab)) != RECUR_OK) return s;
    if ((s = recur_model_output_size(w->model, &outputs)) != RECUR_OK) return s;
    if ((s = recur_state_new(w->model, &st)) != RECUR_OK) return s;
    for (i = 0; i < STEPS && s == RECUR_OK; i++) s = recur_state_step(st, (int32_t)((i * 7 + (size_t)w->k * 5) % vocab), &logits);
    if (s == RECUR_OK) {
        w->logits_steps = (float *)malloc(outputs * sizeof(float));
        memcpy(w->logits_steps, logits, outputs * sizeof(float));
        for (i = 0; i < 40; i++) tokens[i] = (int32_t)((i * 3 + (size_t)w->k) % vocab);
        s = recur_state_prefill(st, tokens, 40, &logits);
    }
    if (s == RECUR_OK) {
        w->logits_prefill = (float *)malloc(outputs * sizeof(float));
        memcpy(w->logits_prefill, logits, outputs * sizeof(float));
        s = recur_state_size(st, &w->saved_size);
    }
    if (s == RECUR_OK) {
        size_t written = 0;
        w->saved = (unsigned char *)malloc(w->saved_size);
        s = recur_state_save(st, w->saved, w->saved_size, &written);
    }
    if (s == RECUR_OK) {
        recur_sampler_params_init(&params);
        params.temperature = 0.9f;
        params.top_k = 8;
        params.seed = (uint64_t)w->k;
        s = recur_sampler_new(&params, &sampler);
    }
    if (s == RECUR_OK) s = recur_generate(st, sampler, "a", GENERATE, collect, &w->text, NULL);
    recur_sampler_free(sampler);
    recur_state_free(st);
    return s;
}

static void *stream_thread(void *arg) {
    stream_work *w = (stream_work *)arg;
    w->status = run_stream(w);
    return NULL;
}

static void free_work(stream_work *w) {
    free(w->logits_steps);
    free(w->logits_prefill);
    free(w->saved);
}

static void test_shared_model(const char *path) {
    recur_model *m = NULL;
    stream_work serial[THREADS], parallel[THREADS];
    pthread_t t[THREADS];
    size_t outputs = 0;
    int k, round, same;
    CHECK(recur_model_open(path, 0, &m) == RECUR_OK);
    if (m == NULL) return;
    recur_model_output_size(m, &outputs);
    memset(serial, 0, sizeof serial);
    for (k = 0; k < THREADS; k++) {
        serial[k].model = m;
        serial[k].k = k;
        serial[k].status = run_stream(&serial[k]);
        CHECK(serial[k].status == RECUR_OK);
        if (serial[k].status != RECUR_OK) fprintf(stderr, "  serial stream %d: %s\n", k, recur_last_error());
    }
    for (round = 0; round < ROUNDS; round++) {
        memset(parallel, 0, sizeof parallel);
        for (k = 0; k < THREADS; k++) {
            parallel[k].model = m;
            parallel[k].k = k;
            CHECK(pthread_create(&t[k], NULL, stream_thread, &parallel[k]) == 0);
        }
        for (k = 0; k < THREADS; k++) pthread_join(t[k], NULL);
        for (k = 0; k < THREADS; k++) {
            stream_work *a = &serial[k], *b = &parallel[k];
            same = b->status == RECUR_OK && a->status == RECUR_OK
                && memcmp(a->logits_steps, b->logits_steps, outputs * sizeof(float)) == 0
                && memcmp(a->logits_prefill, b->logits_prefill, outputs * sizeof(float)) == 0
                && a->saved_size == b->saved_size && memcmp(a->saved, b->saved, a->saved_size) == 0
                && a->text.length == b->text.length && strcmp(a->text.text, b->text.text) == 0
                && a->text.length > 0;
            CHECK(same);
            if (!same) fprintf(stderr, "  %s: round %d, thread %d differs from the serial run\n", path, round, k);
            free_work(b);
        }
    }
    for (k = 0; k < THREADS; k++) free_work(&serial[k]);
    recur_model_free(m);
}

/* ---------------------------------------------------------------------------------------------------- */
/* 2. Concurrent open and free                                                                          */
/* ---------------------------------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    const unsigned char *bytes;
    size_t size;
    int k;
    int failures;
    float first_logit;
} open_work;

static void *open_thread(void *arg) {
    open_work *w = (open_work *)arg;
    int i;
    for (i = 0; i < OPENS; i++) {
        recur_model *m = NULL;
        recur_state *st = NULL;
        const float *logits = NULL;
        recur_status s = (i + w->k) % 2 == 0 ? recur_model_open(w->path, 0, &m)
                                             : recur_model_open_buffer(w->bytes, w->size, 0, &m);
        if (s == RECUR_OK) s = recur_state_new(m, &st);
        recur_model_free(m);                     /* the state keeps the model alive */
        if (s == RECUR_OK) s = recur_state_step(st, 1, &logits);
        if (s == RECUR_OK) s = recur_state_step(st, 2, &logits);
        if (s != RECUR_OK) {
            w->failures++;
        } else if (i == 0) {
            w->first_logit = logits[0];
        } else if (logits[0] != w->first_logit) {
            w->failures++;
        }
        recur_state_free(st);
    }
    return NULL;
}

static void test_open_free(const char *path) {
    open_work w[THREADS];
    pthread_t t[THREADS];
    size_t size = 0;
    unsigned char *bytes = read_file(path, &size);
    int k;
    CHECK(bytes != NULL);
    if (bytes == NULL) return;
    for (k = 0; k < THREADS; k++) {
        memset(&w[k], 0, sizeof w[k]);
        w[k].path = path;
        w[k].bytes = bytes;
        w[k].size = size;
        w[k].k = k;
        CHECK(pthread_create(&t[k], NULL, open_thread, &w[k]) == 0);
    }
    for (k = 0; k < THREADS; k++) pthread_join(t[k], NULL);
    for (k = 0; k < THREADS; k++) {
        CHECK(w[k].failures == 0);
        CHECK(w[k].first_logit == w[0].first_logit);
    }
    free(bytes);
}

/* ---------------------------------------------------------------------------------------------------- */
/* 3. The model freed while other threads step                                                          */
/* ---------------------------------------------------------------------------------------------------- */

typedef struct {
    recur_state *state;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    int *model_freed;
    float before[4];
    float after[4];
    recur_status status;
} orphan_work;

static void *orphan_thread(void *arg) {
    orphan_work *w = (orphan_work *)arg;
    const float *logits = NULL;
    int i;
    recur_status s = RECUR_OK;
    for (i = 0; i < 20 && s == RECUR_OK; i++) s = recur_state_step(w->state, i % 3, &logits);
    if (s == RECUR_OK) memcpy(w->before, logits, sizeof w->before);
    pthread_mutex_lock(w->lock);
    while (!*w->model_freed) pthread_cond_wait(w->cond, w->lock);
    pthread_mutex_unlock(w->lock);
    for (i = 0; i < 20 && s == RECUR_OK; i++) s = recur_state_step(w->state, i % 3, &logits);
    if (s == RECUR_OK) memcpy(w->after, logits, sizeof w->after);
    w->status = s;
    return NULL;
}

static void test_free_model_under_states(const char *path) {
    recur_model *m = NULL;
    orphan_work w[THREADS];
    pthread_t t[THREADS];
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    int freed = 0, k;
    size_t outputs = 0;
    CHECK(recur_model_open(path, 0, &m) == RECUR_OK);
    if (m == NULL) return;
    recur_model_output_size(m, &outputs);
    CHECK(outputs >= 4);
    for (k = 0; k < THREADS; k++) {
        memset(&w[k], 0, sizeof w[k]);
        CHECK(recur_state_new(m, &w[k].state) == RECUR_OK);
        w[k].lock = &lock;
        w[k].cond = &cond;
        w[k].model_freed = &freed;
    }
    for (k = 0; k < THREADS; k++) CHECK(pthread_create(&t[k], NULL, orphan_thread, &w[k]) == 0);
    recur_model_free(m);                       /* while the threads step */
    pthread_mutex_lock(&lock);
    freed = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (k = 0; k < THREADS; k++) pthread_join(t[k], NULL);
    for (k = 0; k < THREADS; k++) {
        CHECK(w[k].status == RECUR_OK);
        /* Every thread fed the same tokens: the same results, before and after the model was freed. */
        CHECK(memcmp(w[k].before, w[0].before, sizeof w[k].before) == 0);
        CHECK(memcmp(w[k].after, w[0].after, sizeof w[k].after) == 0);
        recur_state_free(w[k].state);           /* the last one releases the model */
    }
}

/* ---------------------------------------------------------------------------------------------------- */
/* 4. Per-thread error messages                                                                         */
/* ---------------------------------------------------------------------------------------------------- */

typedef struct {
    recur_model *model;
    int k;
    int wrong;
} error_work;

static void *error_thread(void *arg) {
    error_work *w = (error_work *)arg;
    char expected[32];
    int i;
    snprintf(expected, sizeof expected, "token id %d ", 100000 + w->k);
    for (i = 0; i < 200; i++) {
        const char *text = NULL;
        if (recur_model_token_text(w->model, 100000 + w->k, &text, NULL) != RECUR_ERR_OUT_OF_RANGE
            || strncmp(recur_last_error(), expected, strlen(expected)) != 0)
            w->wrong++;
    }
    return NULL;
}

static void test_error_messages(const char *path) {
    recur_model *m = NULL;
    error_work w[THREADS];
    pthread_t t[THREADS];
    int k;
    CHECK(recur_model_open(path, 0, &m) == RECUR_OK);
    if (m == NULL) return;
    for (k = 0; k < THREADS; k++) {
        w[k].model = m;
        w[k].k = k;
        w[k].wrong = 0;
        CHECK(pthread_create(&t[k], NULL, error_thread, &w[k]) == 0);
    }
    for (k = 0; k < THREADS; k++) pthread_join(t[k], NULL);
    for (k = 0; k < THREADS; k++) CHECK(w[k].wrong == 0);
    recur_model_free(m);
}

/* ---------------------------------------------------------------------------------------------------- */
/* 5. Whole-sequence calls                                                                              */
/* ---------------------------------------------------------------------------------------------------- */

typedef struct {
    recur_model *model;
    const char *text;
    int k;
    recur_status status[3];
    float probabilities[16];
    size_t classes;
    int32_t tags[256];
    size_t tagged;
    char translation[2048];
    size_t length;
    char labels[256];
} task_work;

static void run_tasks(task_work *w) {
    recur_translate_params params;
    const char *label = NULL;
    size_t i, at = 0;
    for (i = 0; i < 16 && recur_model_label(w->model, i, &label) == RECUR_OK; i++) {
        size_t n = strlen(label);
        if (at + n + 1 < sizeof w->labels) {
            memcpy(w->labels + at, label, n);
            at += n;
            w->labels[at++] = ',';
        }
    }
    w->labels[at] = '\0';
    w->status[0] = recur_classify(w->model, w->text, w->probabilities, 16, &w->classes);
    w->status[1] = recur_tag(w->model, w->text, w->tags, 256, &w->tagged);
    recur_translate_params_init(&params);
    params.beam = 1 + w->k % 3;
    params.max_length = 12;
    w->status[2] = recur_translate(w->model, w->text, &params, w->translation, sizeof w->translation, &w->length);
}

static void *task_thread(void *arg) {
    run_tasks((task_work *)arg);
    return NULL;
}

static int same_tasks(const task_work *a, const task_work *b) {
    return memcmp(a->status, b->status, sizeof a->status) == 0 && a->classes == b->classes
        && memcmp(a->probabilities, b->probabilities, a->classes * sizeof(float)) == 0 && a->tagged == b->tagged
        && memcmp(a->tags, b->tags, a->tagged * sizeof(int32_t)) == 0 && a->length == b->length
        && (a->status[2] != RECUR_OK || strcmp(a->translation, b->translation) == 0) && strcmp(a->labels, b->labels) == 0;
}

static void test_shared_tasks(const char *path, const char *text) {
    recur_model *m = NULL;
    static task_work serial[THREADS], parallel[THREADS];
    pthread_t t[THREADS];
    int k, round, worked = 0;
    CHECK(recur_model_open(path, 0, &m) == RECUR_OK);
    if (m == NULL) return;
    memset(serial, 0, sizeof serial);
    for (k = 0; k < THREADS; k++) {
        serial[k].model = m;
        serial[k].text = text;
        serial[k].k = k;
        run_tasks(&serial[k]);
        worked |= serial[k].status[0] == RECUR_OK || serial[k].status[1] == RECUR_OK || serial[k].status[2] == RECUR_OK;
    }
    CHECK(worked);   /* the model does one of the tasks with this text */
    if (!worked) fprintf(stderr, "  %s: no whole-sequence call works with the text \"%s\"\n", path, text);
    for (round = 0; round < ROUNDS; round++) {
        memset(parallel, 0, sizeof parallel);
        for (k = 0; k < THREADS; k++) {
            parallel[k].model = m;
            parallel[k].text = text;
            parallel[k].k = k;
            CHECK(pthread_create(&t[k], NULL, task_thread, &parallel[k]) == 0);
        }
        for (k = 0; k < THREADS; k++) pthread_join(t[k], NULL);
        for (k = 0; k < THREADS; k++) {
            CHECK(same_tasks(&serial[k], &parallel[k]));
            if (!same_tasks(&serial[k], &parallel[k]))
                fprintf(stderr, "  %s: round %d, thread %d differs from the serial run\n", path, round, k);
        }
    }
    recur_model_free(m);
}

static int can_step(const char *path) {
    recur_model *m = NULL;
    int64_t v = 0;
    if (recur_model_open(path, 0, &m) != RECUR_OK) return -1;
    int64_t task = -1;
    /* Streams of generated text: generators only (a seq2seq decoder can be stepped, but runs through
     * recur_translate, with the whole-sequence models). */
    recur_model_get(m, RECUR_MODEL_CAN_STEP, &v);
    recur_model_get(m, RECUR_MODEL_TASK, &task);
    recur_model_free(m);
    return v == 1 && task == RECUR_TASK_GENERATE ? 1 : 0;
}

int main(int argc, char **argv) {
    int i;
    const char *text = "a b c", *first_generator = NULL;
    if (argc < 2) {
        fprintf(stderr, "usage: %s [--text TEXT] MODEL [[--text TEXT] MODEL...]\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++) {
        int stepping;
        if (strcmp(argv[i], "--text") == 0 && i + 1 < argc) {
            text = argv[++i];
            continue;
        }
        stepping = can_step(argv[i]);
        CHECK(stepping >= 0);
        if (stepping == 1) {
            if (first_generator == NULL) first_generator = argv[i];
            test_shared_model(argv[i]);
            test_open_free(argv[i]);
            test_free_model_under_states(argv[i]);
        } else if (stepping == 0) {
            test_shared_tasks(argv[i], text);
        }
    }
    if (first_generator != NULL) test_error_messages(first_generator);
    printf("test_threads: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
