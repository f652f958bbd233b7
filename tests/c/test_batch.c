/* Tests of the batched calls of recur.h: recur_state_step_batch, recur_state_step_frames_batch,
 * recur_sampler_sample_batch, recur_generate_batch, recur_classify_batch and recur_tag_batch.
 *
 * Usage: test_batch OTHER FRAMES CLASSIFY TAG GENERATOR...
 *   OTHER: a generator (for mismatch checks); FRAMES: a regress frame model (`recur create --task regress
 *   --frame-size 12`); CLASSIFY, TAG: `recur create --task classify|tag`; GENERATOR...: generators of
 *   every dtype (`recur create` then `recur quantize --type f16|int8|q8r|q8|q4|int4`).
 *
 * Batched results must equal the single calls bit for bit (memcmp) in every dtype; run.sh runs this
 * program once per kernel level (RECUR_KERNELS unset, scalar, avx2: the variable is read once per
 * process), so every level is covered. Every refused call must change no state (compared by
 * recur_state_save bytes) and name the stream in its message. Two batched calls on disjoint states run on
 * two threads at once; a state inside a recur_generate is refused by a batched call from its callback.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

#define MAXN 9

static int mentions(const char *what) { return strstr(recur_last_error(), what) != NULL; }

static size_t output_size(const recur_model *m) {
    size_t v = 0;
    REQUIRE(recur_model_output_size(m, &v));
    return v;
}

/* A state's saved bytes (malloc'd), to compare states. */
static unsigned char *saved(const recur_state *s, size_t *n) {
    REQUIRE(recur_state_size(s, n));
    unsigned char *b = malloc(*n);
    size_t w = 0;
    REQUIRE(recur_state_save(s, b, *n, &w));
    return b;
}

static int same_state(const recur_state *a, const recur_state *b) {
    size_t na, nb;
    unsigned char *x = saved(a, &na), *y = saved(b, &nb);
    int same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t next_random(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* n streams at different positions, stepped together and one by one: the same bits. */
static void test_step_batch(recur_model *m, const char *name) {
    size_t V = output_size(m), vocab = 0;
    REQUIRE(recur_model_vocab_size(m, &vocab));
    float *out = malloc(sizeof(float) * V * MAXN), *one = malloc(sizeof(float) * V);
    static const size_t sizes[] = {1, 2, 3, 5, 8, 9};
    int equal = 1, states_equal = 1;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        recur_state *batch[MAXN], *single[MAXN];
        for (size_t k = 0; k < n; k++) {
            REQUIRE(recur_state_new(m, &batch[k]));
            REQUIRE(recur_state_new(m, &single[k]));
            int32_t warm[8];
            for (size_t j = 0; j < k; j++) warm[j] = (int32_t)((j * 7 + k) % vocab);
            if (k > 0) {
                REQUIRE(recur_state_prefill(batch[k], warm, k, NULL));
                REQUIRE(recur_state_prefill(single[k], warm, k, NULL));
            }
        }
        for (int t = 0; t < 10; t++) {
            int32_t tokens[MAXN];
            for (size_t k = 0; k < n; k++) tokens[k] = (int32_t)(next_random() % vocab);
            OK(recur_state_step_batch(m, batch, n, tokens, out, V * n));
            for (size_t k = 0; k < n; k++) {
                REQUIRE(recur_state_step_copy(single[k], tokens[k], one, V));
                if (memcmp(out + k * V, one, V * sizeof(float)) != 0) equal = 0;
                const float *own = NULL;
                REQUIRE(recur_state_output(batch[k], &own));
                if (memcmp(own, one, V * sizeof(float)) != 0) equal = 0;
            }
        }
        for (size_t k = 0; k < n; k++) {
            if (!same_state(batch[k], single[k])) states_equal = 0;
            recur_state_free(batch[k]);
            recur_state_free(single[k]);
        }
    }
    if (!equal || !states_equal) fprintf(stderr, "FAIL: %s: batched steps differ from single steps\n", name);
    CHECK(equal);
    CHECK(states_equal);
    free(out);
    free(one);
}

/* Two batched calls on disjoint states of one model, on two threads at once: each stream ends where
 * stepping it alone ends (the model is shared read-only; each call has its own buffers). */
enum { THREAD_STREAMS = 6, THREAD_STEPS = 40 };
typedef struct {
    recur_model *model;
    recur_state *states[THREAD_STREAMS];
    int32_t tokens[THREAD_STEPS][THREAD_STREAMS];
    float *out;
    size_t V;
    int ok;
} batch_job;

static void *run_batch_job(void *arg) {
    batch_job *j = arg;
    j->ok = 1;
    for (int t = 0; t < THREAD_STEPS; t++) {
        if (recur_state_step_batch(j->model, j->states, THREAD_STREAMS, j->tokens[t], j->out,
                                   j->V * THREAD_STREAMS) != RECUR_OK) j->ok = 0;
    }
    return NULL;
}

static void test_concurrent_batches(recur_model *m) {
    size_t V = output_size(m), vocab = 0;
    REQUIRE(recur_model_vocab_size(m, &vocab));
    batch_job jobs[2];
    recur_state *alone[2][THREAD_STREAMS];
    for (int i = 0; i < 2; i++) {
        jobs[i].model = m;
        jobs[i].V = V;
        jobs[i].out = malloc(sizeof(float) * V * THREAD_STREAMS);
        for (int k = 0; k < THREAD_STREAMS; k++) {
            REQUIRE(recur_state_new(m, &jobs[i].states[k]));
            REQUIRE(recur_state_new(m, &alone[i][k]));
        }
        for (int t = 0; t < THREAD_STEPS; t++)
            for (int k = 0; k < THREAD_STREAMS; k++) jobs[i].tokens[t][k] = (int32_t)(next_random() % vocab);
    }
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&threads[i], NULL, run_batch_job, &jobs[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    int equal = jobs[0].ok && jobs[1].ok;
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < THREAD_STREAMS; k++) {
            for (int t = 0; t < THREAD_STEPS; t++) REQUIRE(recur_state_step(alone[i][k], jobs[i].tokens[t][k], NULL));
            equal &= same_state(jobs[i].states[k], alone[i][k]);
            recur_state_free(jobs[i].states[k]);
            recur_state_free(alone[i][k]);
        }
        free(jobs[i].out);
    }
    CHECK(equal);
}

/* A state inside a recur_generate is refused by a batched call made from its callback. */
typedef struct {
    recur_model *model;
    recur_state *busy, *free_state;
    recur_sampler *busy_sampler, *free_sampler;
    int refused, calls;
} busy_probe;

static int probe_busy(const char *piece, size_t length, void *user) {
    busy_probe *b = user;
    (void)piece;
    (void)length;
    size_t V = output_size(b->model);
    float *out = malloc(sizeof(float) * V * 2);
    recur_state *both[2] = {b->free_state, b->busy};
    int32_t tokens[2] = {1, 1}, got[2];
    if (recur_state_step_batch(b->model, both, 2, tokens, out, V * 2) == RECUR_ERR_INVALID_ARGUMENT
        && mentions("stream 1")) b->refused++;
    recur_sampler *samplers[2] = {b->free_sampler, b->busy_sampler};
    recur_state *states[2] = {b->free_state, b->free_state};
    if (recur_sampler_sample_batch(samplers, states, 2, got) == RECUR_ERR_INVALID_ARGUMENT && mentions("stream 1"))
        b->refused++;
    if (recur_state_step_copy(b->busy, 1, out, V * 2) == RECUR_ERR_INVALID_ARGUMENT && mentions("in use")) b->refused++;
    b->calls++;
    free(out);
    return b->calls >= 3;
}

static void test_busy_states(recur_model *m) {
    busy_probe b = {m, NULL, NULL, NULL, NULL, 0, 0};
    recur_sampler_params p;
    recur_sampler_params_init(&p);
    REQUIRE(recur_state_new(m, &b.busy));
    REQUIRE(recur_state_new(m, &b.free_state));
    REQUIRE(recur_sampler_new(&p, &b.busy_sampler));
    REQUIRE(recur_sampler_new(&p, &b.free_sampler));
    uint64_t before = 0, after = 0;
    REQUIRE(recur_state_position(b.free_state, &before));
    OK(recur_generate(b.busy, b.busy_sampler, "a", 10, probe_busy, &b, NULL));
    REQUIRE(recur_state_position(b.free_state, &after));
    CHECK(b.calls == 3 && b.refused == 9);
    float out[1];
    CHECK(recur_state_step_copy((recur_state *)b.busy_sampler, 1, out, 1) == RECUR_ERR_INVALID_ARGUMENT
          && mentions("expected kind"));   /* a sampler handle given as a state */
    CHECK(before == after);          /* refused before stepping the free state */
    recur_state_free(b.busy);
    recur_state_free(b.free_state);
    recur_sampler_free(b.busy_sampler);
    recur_sampler_free(b.free_sampler);
}

/* Refused batches: the message names the stream and no state changes. */
static void test_step_batch_safety(recur_model *m, recur_model *other, recur_model *frames) {
    size_t V = output_size(m), vocab = 0;
    REQUIRE(recur_model_vocab_size(m, &vocab));
    recur_state *s[4], *twin[4], *foreign;
    for (int k = 0; k < 4; k++) {
        REQUIRE(recur_state_new(m, &s[k]));
        REQUIRE(recur_state_new(m, &twin[k]));
        int32_t t = k;
        REQUIRE(recur_state_step(s[k], t, NULL));
        REQUIRE(recur_state_step(twin[k], t, NULL));
    }
    REQUIRE(recur_state_new(other, &foreign));
    float *out = malloc(sizeof(float) * V * 4);
    int32_t tokens[4] = {1, 2, 3, 4};

    recur_state *mixed[4] = {s[0], foreign, s[2], s[3]};
    EXPECT(recur_state_step_batch(m, mixed, 4, tokens, out, V * 4), RECUR_ERR_MISMATCH);
    CHECK(mentions("stream 1"));
    recur_state *twice[4] = {s[0], s[1], s[2], s[1]};
    EXPECT(recur_state_step_batch(m, twice, 4, tokens, out, V * 4), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(mentions("stream 3") && mentions("states[1]"));
    int32_t bad[4] = {1, 2, (int32_t)vocab, 4};
    EXPECT(recur_state_step_batch(m, s, 4, bad, out, V * 4), RECUR_ERR_OUT_OF_RANGE);
    CHECK(mentions("stream 2") && mentions("outside the vocabulary"));
    bad[2] = -1;
    EXPECT(recur_state_step_batch(m, s, 4, bad, out, V * 4), RECUR_ERR_OUT_OF_RANGE);
    CHECK(mentions("stream 2"));
    EXPECT(recur_state_step_batch(m, s, 0, tokens, out, V * 4), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_batch(m, s, SIZE_MAX, tokens, out, SIZE_MAX), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_batch(m, s, SIZE_MAX / 2 + 1, tokens, out, SIZE_MAX), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_batch(m, s, SIZE_MAX / V + 1, tokens, out, SIZE_MAX), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_batch(m, s, 4, tokens, out, V * 4 - 1), RECUR_ERR_BUFFER_TOO_SMALL);
    EXPECT(recur_state_step_batch(m, NULL, 4, tokens, out, V * 4), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_batch(m, s, 4, NULL, out, V * 4), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_batch(m, s, 4, tokens, NULL, V * 4), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_batch(NULL, s, 4, tokens, out, V * 4), RECUR_ERR_INVALID_ARGUMENT);
    recur_state *holes[4] = {s[0], s[1], NULL, s[3]};
    EXPECT(recur_state_step_batch(m, holes, 4, tokens, out, V * 4), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(mentions("stream 2"));
    recur_sampler *not_a_state = NULL;
    recur_sampler_params p;
    recur_sampler_params_init(&p);
    REQUIRE(recur_sampler_new(&p, &not_a_state));
    recur_state *kinds[4] = {s[0], s[1], s[2], (recur_state *)(void *)not_a_state};
    EXPECT(recur_state_step_batch(m, kinds, 4, tokens, out, V * 4), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(mentions("stream 3"));
    recur_sampler_free(not_a_state);
    EXPECT(recur_state_step_frames_batch(m, s, 4, (const float *)out, 12, out, V * 4), RECUR_ERR_UNSUPPORTED);
    recur_state *fs;
    REQUIRE(recur_state_new(frames, &fs));
    EXPECT(recur_state_step_batch(frames, &fs, 1, tokens, out, V * 4), RECUR_ERR_UNSUPPORTED);
    recur_state_free(fs);
    int unchanged = 1;
    for (int k = 0; k < 4; k++) unchanged &= same_state(s[k], twin[k]);
    CHECK(unchanged);

    /* A refused sample batch leaves every sampler where it was. */
    recur_sampler *sm[3], *ref[3];
    for (int k = 0; k < 3; k++) {
        p.seed = (uint64_t)(10 + k);
        REQUIRE(recur_sampler_new(&p, &sm[k]));
        REQUIRE(recur_sampler_new(&p, &ref[k]));
    }
    int32_t got[3] = {-5, -5, -5}, want;
    recur_sampler *dup[3] = {sm[0], sm[1], sm[0]};
    EXPECT(recur_sampler_sample_batch(dup, s, 3, got), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(mentions("stream 2"));
    EXPECT(recur_sampler_sample_batch(sm, s, 0, got), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_sampler_sample_batch(sm, NULL, 3, got), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_sampler_sample_batch(sm, s, 3, NULL), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(got[0] == -5 && got[2] == -5);
    /* Then a good one: the same draws as one sampler at a time. */
    int draws_equal = 1;
    for (int r = 0; r < 5; r++) {
        OK(recur_sampler_sample_batch(sm, s, 3, got));
        for (int k = 0; k < 3; k++) {
            REQUIRE(recur_sampler_sample_state(ref[k], s[k], &want));
            if (got[k] != want) draws_equal = 0;
        }
    }
    CHECK(draws_equal);
    for (int k = 0; k < 3; k++) {
        recur_sampler_free(sm[k]);
        recur_sampler_free(ref[k]);
    }
    for (int k = 0; k < 4; k++) {
        recur_state_free(s[k]);
        recur_state_free(twin[k]);
    }
    recur_state_free(foreign);
    free(out);
}

/* Frame models: batched frames equal single frames; a NaN in one stream is refused, naming it. */
static void test_frames_batch(recur_model *m) {
    size_t V = output_size(m);
    int64_t F = 0;
    REQUIRE(recur_model_get(m, RECUR_MODEL_FRAME_SIZE, &F));
    enum { N = 5 };
    recur_state *batch[N], *single[N];
    for (int k = 0; k < N; k++) {
        REQUIRE(recur_state_new(m, &batch[k]));
        REQUIRE(recur_state_new(m, &single[k]));
    }
    float *x = malloc(sizeof(float) * (size_t)F * N), *out = malloc(sizeof(float) * V * N);
    int equal = 1;
    for (int t = 0; t < 6; t++) {
        for (int64_t j = 0; j < F * N; j++) x[j] = (float)((int)(next_random() % 2001) - 1000) / 500.0f;
        OK(recur_state_step_frames_batch(m, batch, N, x, (size_t)F, out, V * N));
        for (int k = 0; k < N; k++) {
            const float *o = NULL;
            REQUIRE(recur_state_step_frame(single[k], x + k * F, (size_t)F, &o));
            if (memcmp(o, out + k * V, V * sizeof(float)) != 0) equal = 0;
        }
    }
    CHECK(equal);
    x[1 * F + 3] = 0.0f / 0.0f;
    EXPECT(recur_state_step_frames_batch(m, batch, N, x, (size_t)F, out, V * N), RECUR_ERR_NUMERICAL);
    CHECK(mentions("stream 1"));
    EXPECT(recur_state_step_frames_batch(m, batch, N, x, (size_t)F + 1, out, V * N), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_state_step_frames_batch(m, batch, N, NULL, (size_t)F, out, V * N), RECUR_ERR_INVALID_ARGUMENT);
    int unchanged = 1;
    for (int k = 0; k < N; k++) {
        unchanged &= same_state(batch[k], single[k]);
        recur_state_free(batch[k]);
        recur_state_free(single[k]);
    }
    CHECK(unchanged);
    free(x);
    free(out);
}

/* Texts collected per prompt by the batched generate's callback. */
typedef struct {
    char text[16][4096];
    size_t length[16];
    size_t calls;
    size_t order[4096];       /* prompt index of each call */
    size_t stop_after;        /* a positive reply after this many pieces of prompt `stop_index` */
    size_t stop_index;
    int abort_at;             /* a negative reply at this call (0: never) */
} collected;

static int collect(size_t index, const char *piece, size_t length, void *user) {
    collected *c = user;
    if (index >= 16 || c->length[index] + length >= sizeof c->text[0] || strlen(piece) != length) return -1;
    memcpy(c->text[index] + c->length[index], piece, length);
    c->length[index] += length;
    c->text[index][c->length[index]] = 0;
    if (c->calls < 4096) c->order[c->calls] = index;
    c->calls++;
    if (c->abort_at && (int)c->calls == c->abort_at) return -1;
    if (c->stop_after && index == c->stop_index && c->length[index] >= c->stop_after) return 1;
    return 0;
}

typedef struct {
    char text[4096];
    size_t length;
} single_text;

static int collect_single(const char *piece, size_t length, void *user) {
    single_text *t = user;
    if (t->length + length >= sizeof t->text) return 1;
    memcpy(t->text + t->length, piece, length);
    t->length += length;
    t->text[t->length] = 0;
    return 0;
}

/* The text recur_generate gives for a prompt on a new state. */
static void generate_one(recur_model *m, const char *prompt, int32_t max_tokens, const recur_sampler_params *p,
                         single_text *out, int32_t *generated) {
    recur_state *s;
    recur_sampler *sm;
    REQUIRE(recur_state_new(m, &s));
    REQUIRE(recur_sampler_new(p, &sm));
    memset(out, 0, sizeof *out);
    REQUIRE(recur_generate(s, sm, prompt, max_tokens, collect_single, out, generated));
    recur_sampler_free(sm);
    recur_state_free(s);
}

static void test_generate_batch(recur_model *m, const char *name) {
    enum { P = 11 };
    const char *prompts[P] = {"Alice", "The", "a", "Down the rabbit", "x", "Why", "She", "It was", "O", "and", "Queen"};
    int32_t max_tokens[P];
    recur_sampler_params params[P];
    single_text want[P];
    int32_t want_count[P];
    for (int k = 0; k < P; k++) {
        max_tokens[k] = (int32_t)((k * 37) % 90 + (k == 4 ? -3 : 0));   /* prompt 0: 0 tokens */
        recur_sampler_params_init(&params[k]);
        params[k].temperature = k % 3 == 0 ? 0.0f : 0.9f;
        params[k].top_k = k % 4 == 1 ? 5 : 0;
        params[k].seed = (uint64_t)(1000 + k);
        generate_one(m, prompts[k], max_tokens[k], &params[k], &want[k], &want_count[k]);
    }
    static const size_t slot_counts[] = {1, 3, 4, 16};
    for (size_t si = 0; si < sizeof slot_counts / sizeof slot_counts[0]; si++) {
        collected *c = calloc(1, sizeof *c);
        int32_t generated[P];
        OK(recur_generate_batch(m, prompts, P, max_tokens, params, NULL, 0, slot_counts[si], collect, c, generated));
        int equal = 1;
        for (int k = 0; k < P; k++) {
            if (c->length[k] != want[k].length || memcmp(c->text[k], want[k].text, want[k].length) != 0
                || generated[k] != want_count[k]) {
                equal = 0;
                fprintf(stderr, "%s slots %zu prompt %d: batched \"%s\" (%d), single \"%s\" (%d)\n", name,
                        slot_counts[si], k, c->text[k], generated[k], want[k].text, want_count[k]);
            }
        }
        CHECK(equal);
        /* With several slots the streams interleave; with one they run one after another. */
        int interleaved = 0;
        for (size_t j = 1; j < c->calls && j < 4096; j++) if (c->order[j] < c->order[j - 1]) interleaved = 1;
        CHECK(interleaved == (slot_counts[si] > 1));
        free(c);
    }

    /* A positive reply ends that stream only: its text is a prefix of the single one; the others are whole. */
    collected *c = calloc(1, sizeof *c);
    c->stop_index = 3;
    c->stop_after = 10;
    OK(recur_generate_batch(m, prompts, P, max_tokens, params, NULL, 0, 3, collect, c, NULL));
    CHECK(c->length[3] >= 10 && c->length[3] < want[3].length && memcmp(c->text[3], want[3].text, c->length[3]) == 0);
    CHECK(c->length[5] == want[5].length && memcmp(c->text[5], want[5].text, want[5].length) == 0);
    free(c);
    /* A negative reply ends the whole generation. */
    c = calloc(1, sizeof *c);
    c->abort_at = 7;
    int32_t generated[P];
    OK(recur_generate_batch(m, prompts, P, max_tokens, params, NULL, 0, 2, collect, c, generated));
    CHECK(c->calls == 7);
    CHECK(generated[P - 1] == 0);
    free(c);

    /* Stop strings: each stream's text stops before the first one (and holds back what may start one). */
    const char *stops[2] = {"e", "zz"};
    c = calloc(1, sizeof *c);
    OK(recur_generate_batch(m, prompts, P, max_tokens, params, stops, 2, 4, collect, c, NULL));
    int cut = 1;
    for (int k = 0; k < P; k++) {
        const char *e = strchr(want[k].text, 'e');
        size_t expect = e ? (size_t)(e - want[k].text) : want[k].length;
        if (strstr(want[k].text, "zz") && (size_t)(strstr(want[k].text, "zz") - want[k].text) < expect) {
            expect = (size_t)(strstr(want[k].text, "zz") - want[k].text);
        }
        if (c->length[k] != expect || memcmp(c->text[k], want[k].text, expect) != 0) cut = 0;
    }
    CHECK(cut);
    free(c);

    /* Refused: the message names the prompt; nothing is delivered. */
    c = calloc(1, sizeof *c);
    const char *holes[3] = {"Alice", NULL, "b"};
    int32_t three[3] = {5, 5, 5};
    EXPECT(recur_generate_batch(m, holes, 3, three, NULL, NULL, 0, 2, collect, c, NULL), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(mentions("prompt 1"));
    int32_t negative[3] = {5, 5, -1};
    const char *fine[3] = {"Alice", "a", "b"};
    EXPECT(recur_generate_batch(m, fine, 3, negative, NULL, NULL, 0, 2, collect, c, NULL), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(mentions("prompt 2"));
    recur_sampler_params badp[3];
    for (int k = 0; k < 3; k++) recur_sampler_params_init(&badp[k]);
    badp[1].temperature = -1;
    EXPECT(recur_generate_batch(m, fine, 3, three, badp, NULL, 0, 2, collect, c, NULL), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(mentions("prompt 1"));
    const char *outside[3] = {"Alice", "a", "\xe2\x98\x83"};     /* a snowman: not in the vocabulary */
    recur_status st = recur_generate_batch(m, outside, 3, three, NULL, NULL, 0, 2, collect, c, NULL);
    CHECK(st == RECUR_OK || (st == RECUR_ERR_OUT_OF_RANGE && mentions("prompt 2")));
    if (st == RECUR_ERR_OUT_OF_RANGE) CHECK(c->calls == 0);
    EXPECT(recur_generate_batch(m, fine, 3, three, NULL, NULL, 0, 0, collect, c, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_generate_batch(m, fine, 3, three, NULL, NULL, 1, 2, collect, c, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_generate_batch(m, NULL, 3, three, NULL, NULL, 0, 2, collect, c, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_generate_batch(m, fine, 3, NULL, NULL, NULL, 0, 2, collect, c, NULL), RECUR_ERR_INVALID_ARGUMENT);
    OK(recur_generate_batch(m, fine, 0, three, NULL, NULL, 0, 2, collect, c, NULL));
    free(c);
}

static void test_task_batches(recur_model *classify, recur_model *tag, recur_model *gen) {
    const char *texts[4] = {"a cat", "the dog sat on the mat", "x", "hello there"};
    float probs[64], one[16];
    size_t classes = 0, count = 0;
    OK(recur_classify_batch(classify, texts, 4, probs, 64, &classes));
    int equal = classes > 0 && classes <= 16;
    for (int k = 0; k < 4 && equal; k++) {
        REQUIRE(recur_classify(classify, texts[k], one, 16, &count));
        if (count != classes || memcmp(one, probs + k * classes, classes * sizeof(float)) != 0) equal = 0;
    }
    CHECK(equal);
    EXPECT(recur_classify_batch(classify, texts, 4, probs, 4 * classes - 1, &classes), RECUR_ERR_BUFFER_TOO_SMALL);
    EXPECT(recur_classify_batch(classify, texts, 0, probs, 64, &classes), RECUR_ERR_INVALID_ARGUMENT);
    const char *bad[3] = {"a", "", "b"};
    EXPECT(recur_classify_batch(classify, bad, 3, probs, 64, &classes), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(mentions("text 1"));
    EXPECT(recur_classify_batch(gen, texts, 4, probs, 64, &classes), RECUR_ERR_UNSUPPORTED);

    int32_t tags[256], single[64];
    size_t counts[4];
    OK(recur_tag_batch(tag, texts, 4, tags, 256, counts));
    size_t at = 0;
    equal = 1;
    for (int k = 0; k < 4; k++) {
        REQUIRE(recur_tag(tag, texts[k], single, 64, &count));
        if (count != counts[k] || memcmp(single, tags + at, count * sizeof(int32_t)) != 0) equal = 0;
        at += count;
    }
    CHECK(equal);
    EXPECT(recur_tag_batch(tag, texts, 4, tags, at - 1, counts), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(counts[1] > 0);
    const char *nulls[2] = {"a", NULL};
    EXPECT(recur_tag_batch(tag, nulls, 2, tags, 256, counts), RECUR_ERR_INVALID_ARGUMENT);
    CHECK(mentions("text 1"));
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s OTHER FRAMES CLASSIFY TAG GENERATOR...\n", argv[0]);
        return 2;
    }
    recur_model *other, *frames, *classify, *tag;
    REQUIRE(recur_model_open(argv[1], 0, &other));
    REQUIRE(recur_model_open(argv[2], 0, &frames));
    REQUIRE(recur_model_open(argv[3], 0, &classify));
    REQUIRE(recur_model_open(argv[4], 0, &tag));
    for (int i = 5; i < argc; i++) {
        recur_model *m;
        REQUIRE(recur_model_open(argv[i], 0, &m));
        test_step_batch(m, argv[i]);
        test_generate_batch(m, argv[i]);
        if (i == 5) test_step_batch_safety(m, other, frames);
        if (i == 5 || i == argc - 1) test_concurrent_batches(m);
        if (i == 5) test_busy_states(m);
        recur_model_free(m);
    }
    test_frames_batch(frames);
    test_task_batches(classify, tag, other);
    recur_model_free(other);
    recur_model_free(frames);
    recur_model_free(classify);
    recur_model_free(tag);
    const char *level = getenv("RECUR_KERNELS");
    printf("test_batch: %d passed, %d failed\n", passed, failed);
    fprintf(stderr, "test_batch: kernels %s\n", level ? level : "(default)");
    return failed ? 1 : 0;
}
