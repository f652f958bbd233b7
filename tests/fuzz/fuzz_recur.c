/*
 * fuzz_recur: a libFuzzer target over every entry point of include/recur.h that reads untrusted bytes.
 *
 * An input is a model file, optionally followed by a trailer: when the header's file_size field (bytes
 * 16..24) lies inside the input, the bytes before it are the model and the rest is the trailer; otherwise
 * the whole input is the model (so truncated files and wrong sizes are exercised too). The trailer is
 * used in turn as a saved state (recur_state_restore), as text (recur_model_encode, recur_generate's
 * prompt, recur_classify, recur_tag, recur_translate) and as token ids (steps, prefill). A seed made of a
 * model followed by a state saved from it restores successfully, so mutations reach past the state's
 * checks.
 *
 * The model is opened with the checksum verified; when only the checksum fails it is opened again with
 * RECUR_OPEN_SKIP_CHECKSUM, so that mutated files reach the structural checks and the loader.
 *
 * Besides crashes and sanitizer reports, the target aborts when the API breaks its own contract: a
 * status outside the documented codes, a failure without a message, counts or sizes that disagree
 * between two calls, a saved state that does not restore into its own model.
 *
 * Built by tests/fuzz/build.sh (clang -fsanitize=fuzzer,address,undefined); also compiled without
 * libFuzzer by tests/fuzz/replay.c to replay the corpus and the regressions against a normal library.
 */
#define _POSIX_C_SOURCE 200809L   /* setenv */
#include "recur.h"
#define FUZZ_TARGET "fuzz_recur"
#include "contract.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most this many tokens are fed or generated per input, so that one input stays fast. */
#define MAX_STEPS 12
#define MAX_TOKEN_QUERIES 300

/* Inputs that loaded as a model (reported by replay.c). */
int fuzz_recur_models_loaded = 0;


static uint64_t read_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* A deterministic stream of choices drawn from the trailer (zeros when it runs out). */
typedef struct {
    const uint8_t *p;
    size_t n, at;
} bytes_source;

static uint32_t next_byte(bytes_source *b) {
    if (b->n == 0) return 0;
    return b->p[b->at++ % b->n];
}

typedef struct {
    int calls;
    int stop_after;
    size_t bytes;
} piece_sink;

static int on_piece(const char *piece, size_t length, void *user) {
    piece_sink *s = (piece_sink *)user;
    if (piece == NULL || piece[length] != '\0') contract_violation("piece not NUL-terminated", 0);
    s->calls++;
    s->bytes += length;
    return s->stop_after > 0 && s->calls >= s->stop_after;
}

/* Token text and id queries: every id's text, and the id of that text. */
static void query_tokens(recur_model *m, size_t vocab) {
    const char *text = NULL;
    size_t length = 0;
    int32_t id = 0;
    size_t n = vocab < MAX_TOKEN_QUERIES ? vocab : MAX_TOKEN_QUERIES;
    for (size_t i = 0; i < n; i++) {
        if (CALL(recur_model_token_text(m, (int32_t)i, &text, &length)) != RECUR_OK)
            contract_violation("token_text of an id inside the vocabulary failed", 0);
        if (text[length] != '\0') contract_violation("token text not NUL-terminated", 0);
        if (strlen(text) == length && CALL(recur_model_token_id(m, text, &id)) == RECUR_OK) {
            /* Another id may share the text only if one of them is a special token. */
            const char *other = NULL;
            size_t other_length = 0;
            if (CALL(recur_model_token_text(m, id, &other, &other_length)) != RECUR_OK
                || other_length != length || memcmp(other, text, length) != 0)
                contract_violation("token_id gave an id whose text differs", 0);
        }
    }
    CALL(recur_model_token_text(m, -1, &text, &length));
    CALL(recur_model_token_text(m, (int32_t)(vocab > INT32_MAX ? INT32_MAX : vocab), &text, &length));
}

/* Encodes `text` (count query, then into a buffer) and decodes the ids back. */
static void encode_decode(recur_model *m, const char *text, int32_t *ids, size_t capacity, size_t *count) {
    size_t needed = 0, got = 0, length = 0;
    *count = 0;
    recur_status s = CALL(recur_model_encode(m, text, NULL, 0, &needed));
    if (s != RECUR_OK && s != RECUR_ERR_BUFFER_TOO_SMALL) return;
    if (s == RECUR_OK && needed != 0) contract_violation("encode with no buffer succeeded for non-empty ids", s);
    size_t cap = needed < capacity ? needed : capacity;
    s = CALL(recur_model_encode(m, text, ids, cap, &got));
    if (got != needed) contract_violation("encode counts differ between calls", s);
    if (needed > cap) {
        if (s != RECUR_ERR_BUFFER_TOO_SMALL) contract_violation("encode into a small buffer did not say so", s);
        return;
    }
    if (s != RECUR_OK) contract_violation("encode failed after counting", s);
    *count = got;
    s = CALL(recur_model_decode(m, ids, got, NULL, 0, &length));
    if (s == RECUR_OK) contract_violation("decode into no buffer succeeded", s);
    if (s == RECUR_ERR_BUFFER_TOO_SMALL) {
        char *buf = (char *)malloc(length + 1);
        if (buf == NULL) return;
        size_t again = 0;
        s = CALL(recur_model_decode(m, ids, got, buf, length + 1, &again));
        if (s != RECUR_OK || again != length || buf[length] != '\0') contract_violation("decode", s);
        free(buf);
    }
}

/* Saves the state, restores it into a fresh state (must work), then restores a corrupted copy (must fail
 * cleanly or work) and the trailer as a saved state. */
static void save_restore(recur_model *m, recur_state *st, bytes_source *src, const uint8_t *trailer, size_t n) {
    size_t size = 0, written = 0;
    if (CALL(recur_state_size(st, &size)) != RECUR_OK) contract_violation("state_size", 0);
    uint8_t *buf = (uint8_t *)malloc(size ? size : 1);
    if (buf == NULL) return;
    if (CALL(recur_state_save(st, buf, size, &written)) != RECUR_OK || written != size)
        contract_violation("state_save into a buffer of state_size bytes", 0);
    recur_state *other = NULL;
    if (CALL(recur_state_new(m, &other)) == RECUR_OK) {
        if (CALL(recur_state_restore(other, buf, size)) != RECUR_OK)
            contract_violation("a saved state does not restore into its own model", 0);
        uint64_t p1 = 0, p2 = 0;
        CALL(recur_state_position(st, &p1));
        CALL(recur_state_position(other, &p2));
        if (p1 != p2) contract_violation("restored position differs", 0);
        CALL(recur_state_restore(other, buf, size ? size - 1 : 0));
        if (size > 0) {
            buf[next_byte(src) * 2654435761u % size] ^= (uint8_t)(1u << (next_byte(src) & 7));
            CALL(recur_state_restore(other, buf, size));
        }
        CALL(recur_state_copy(other, st));
        recur_state_free(other);
    }
    if (n > 0) CALL(recur_state_restore(st, trailer, n));
    free(buf);
}

/* Whole-sequence tasks: label names, classify, tag and translate (each refuses models of another task
 * with a status). `text` is at most TASK_TEXT bytes: these calls keep every step of the text, so their
 * memory grows with the text's length times the layers' width (docs/ROBUSTNESS.md). */
#define TASK_TEXT 128
static void run_tasks(recur_model *m, const char *text, size_t outputs, bytes_source *src) {
    const char *label = NULL;
    size_t count = 0, again = 0;
    recur_status s;
    for (size_t i = 0; i < 64; i++) {
        if (CALL(recur_model_label(m, i, &label)) != RECUR_OK) break;
        if (label == NULL) contract_violation("label is NULL", 0);
    }

    float probabilities[16];
    s = CALL(recur_classify(m, text, NULL, 0, &count));
    if (s == RECUR_OK && count != 0) contract_violation("classify into no buffer succeeded", s);
    if (s == RECUR_ERR_BUFFER_TOO_SMALL) {
        size_t cap = count < 16 ? count : 16;
        s = CALL(recur_classify(m, text, probabilities, cap, &again));
        if (again != count) contract_violation("classify counts differ between calls", s);
        if (count <= 16 && s != RECUR_OK) contract_violation("classify failed after counting", s);
        for (size_t i = 0; s == RECUR_OK && i < count; i++)
            if (!isfinite(probabilities[i])) contract_violation("classify gave a non-finite value", s);
    }

    int32_t tags[TASK_TEXT];
    s = CALL(recur_tag(m, text, NULL, 0, &count));
    if (s == RECUR_OK && count != 0) contract_violation("tag into no buffer succeeded", s);
    if (s == RECUR_ERR_BUFFER_TOO_SMALL) {
        s = CALL(recur_tag(m, text, tags, TASK_TEXT, &again));
        if (again != count || s != RECUR_OK) contract_violation("tag failed after counting", s);
        for (size_t i = 0; i < count; i++)
            if (tags[i] < 0 || (size_t)tags[i] >= outputs) contract_violation("tag out of range", s);
    }

    recur_translate_params params;
    recur_translate_params_init(&params);
    uint32_t b = next_byte(src);
    params.beam = 1 + (int32_t)(b % 3);
    params.max_length = 1 + (int32_t)(next_byte(src) % 8);
    params.length_penalty = (b & 4) ? 0.5f : 1.0f;
    char small[4], *big;
    s = CALL(recur_translate(m, text, &params, small, sizeof small, &count));
    if (s == RECUR_OK && small[count] != '\0') contract_violation("translation not NUL-terminated", s);
    if (s == RECUR_ERR_BUFFER_TOO_SMALL && (big = (char *)malloc(count + 1)) != NULL) {
        s = CALL(recur_translate(m, text, &params, big, count + 1, &again));
        if (s != RECUR_OK || again != count || big[count] != '\0')
            contract_violation("translating again with a large enough buffer", s);
        free(big);
    }
    CALL(recur_translate(m, text, NULL, NULL, 0, &count));

    /* The attention weights (a model with attention; others refuse with a status). */
    int32_t toks[8], srcs[TASK_TEXT + 1];
    static float weights[8 * (TASK_TEXT + 1)];
    size_t n_out = 0, n_src = 0;
    params.max_length = 1 + (int32_t)(next_byte(src) % 8);
    s = CALL(recur_translate_attention(m, text, &params, toks, 8, srcs, TASK_TEXT + 1, weights, 8 * (TASK_TEXT + 1),
                                       &n_out, &n_src));
    if (s == RECUR_OK) {
        if (n_out > 8 || n_src > TASK_TEXT + 1) contract_violation("attention sizes past the buffers", s);
        for (size_t i = 0; i < n_out; i++) {
            double sum = 0;
            for (size_t j = 0; j < n_src; j++) sum += weights[i * n_src + j];
            if (!(sum > 0.999 && sum < 1.001)) contract_violation("attention weights that do not sum to 1", s);
        }
    }
}

/* Frame models: frames read from the trailer as little-endian floats (NaN and infinity among them), stepped,
 * prefilled and run whole. A step of finite frames works on a frame model that can step; a frame with NaN
 * or infinity is refused with RECUR_ERR_NUMERICAL and changes nothing. */
#define MAX_FRAMES 16
static void run_frames(recur_model *m, recur_state *st, const uint8_t *trailer, size_t n, size_t outputs) {
    int64_t input = 0, frame_size = 0, can_step = 0;
    CALL(recur_model_get(m, RECUR_MODEL_INPUT, &input));
    CALL(recur_model_get(m, RECUR_MODEL_FRAME_SIZE, &frame_size));
    CALL(recur_model_get(m, RECUR_MODEL_CAN_STEP, &can_step));
    static float frames[MAX_FRAMES * 64];
    size_t F = (size_t)frame_size, count = F && F <= 64 ? n / 4 / F : 0;
    if (count > MAX_FRAMES) count = MAX_FRAMES;
    for (size_t i = 0; i < count * F; i++) memcpy(&frames[i], trailer + 4 * i, 4);
    const float *out = NULL;
    if (input != RECUR_INPUT_FRAMES) {
        if (CALL(recur_state_step_frame(st, frames, F ? F : 1, &out)) == RECUR_OK)
            contract_violation("a frame step worked on a token model", 0);
        return;
    }
    CALL(recur_state_reset(st));
    for (size_t t = 0; t < count; t++) {
        int finite = 1;
        for (size_t j = 0; j < F; j++) finite &= isfinite(frames[t * F + j]) != 0;
        recur_status s = CALL(recur_state_step_frame(st, frames + t * F, F, &out));
        if (can_step == 1 && finite && s != RECUR_OK) contract_violation("a finite frame step failed", s);
        if (can_step == 1 && !finite && s != RECUR_ERR_NUMERICAL)
            contract_violation("a frame with NaN or infinity was not refused", s);
    }
    CALL(recur_state_step(st, 0, &out));
    if (count > 0) {
        CALL(recur_state_prefill_frames(st, frames, count, F, &out));
        size_t rows = 0;
        recur_status s = CALL(recur_predict(m, frames, count, F, NULL, 0, &rows));
        if (s == RECUR_ERR_BUFFER_TOO_SMALL && rows > 0 && rows <= MAX_FRAMES && outputs <= 64) {
            static float result[MAX_FRAMES * 64];
            size_t again = 0;
            if (CALL(recur_predict(m, frames, count, F, result, rows * outputs, &again)) == RECUR_OK && again != rows)
                contract_violation("predict's row count changed", 0);
        }
    }
    CALL(recur_state_prefill_frames(st, frames, 0, F, &out));
    CALL(recur_state_step_frame(st, frames, F + 1, &out));
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* One thread per step and per matrix product: reproducible and fast for tiny models. */
    setenv("RECUR_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t model_size = size;
    if (size >= 24) {
        uint64_t declared = read_u64(data + 16);
        if (declared >= 64 && declared < size) model_size = (size_t)declared;
    }
    const uint8_t *trailer = data + model_size;
    size_t trailer_size = size - model_size;
    bytes_source src = {trailer, trailer_size, 0};

    recur_model *m = NULL;
    /* An empty input still has a valid (non-NULL) pointer. */
    recur_status s = CALL(recur_model_open_buffer(size ? (const void *)data : (const void *)"", model_size, 0, &m));
    if (s == RECUR_ERR_CHECKSUM)
        s = CALL(recur_model_open_buffer(data, model_size, RECUR_OPEN_SKIP_CHECKSUM, &m));
    if (s != RECUR_OK) {
        if (m != NULL) contract_violation("failed open left a model", s);
        return 0;
    }
    fuzz_recur_models_loaded++;

    /* Properties. */
    size_t vocab = 0, outputs = 0;
    int64_t v = 0, can_step = 0;
    if (CALL(recur_model_vocab_size(m, &vocab)) != RECUR_OK || CALL(recur_model_output_size(m, &outputs)) != RECUR_OK)
        contract_violation("size queries", 0);
    for (int p = 0; p <= RECUR_MODEL_OUTPUT_KIND + 1; p++) CALL(recur_model_get(m, p, &v));
    CALL(recur_model_get(m, RECUR_MODEL_CAN_STEP, &can_step));

    query_tokens(m, vocab);

    /* Text: the trailer, NUL-terminated (the first NUL ends it), or a fixed prompt. */
    char *text = (char *)malloc(trailer_size + 1);
    if (text == NULL) {
        recur_model_free(m);
        return 0;
    }
    memcpy(text, trailer, trailer_size);
    text[trailer_size] = '\0';
    const char *prompt = trailer_size > 0 ? text : "Alice was beginning";
    int32_t ids[64];
    size_t count = 0;
    encode_decode(m, prompt, ids, 64, &count);

    recur_state *st = NULL;
    if (CALL(recur_state_new(m, &st)) != RECUR_OK) contract_violation("state_new", 0);

    /* Steps with ids from the trailer (some outside the vocabulary), then a prefill. */
    int32_t tokens[MAX_STEPS];
    size_t steps = 1 + next_byte(&src) % MAX_STEPS;
    for (size_t i = 0; i < steps; i++) {
        uint32_t b = next_byte(&src);
        tokens[i] = vocab == 0 ? 0 : (b == 255 ? (int32_t)vocab : b == 254 ? -1 : (int32_t)(b % vocab));
    }
    const float *logits = NULL;
    for (size_t i = 0; i < steps; i++) {
        s = CALL(recur_state_step(st, tokens[i], &logits));
        if (s == RECUR_OK && can_step != 1) contract_violation("a step worked on a model that cannot step", s);
        if (s != RECUR_OK && can_step == 1 && tokens[i] >= 0 && (size_t)tokens[i] < vocab)
            contract_violation("a step inside the vocabulary failed on a model that can step", s);
    }
    float out[8];
    CALL(recur_state_step_copy(st, tokens[0], out, outputs < 8 ? outputs : 8));
    CALL(recur_state_prefill(st, tokens, steps, &logits));
    if (count > 0) CALL(recur_state_prefill(st, ids, count, &logits));

    save_restore(m, st, &src, trailer, trailer_size);

    /* Sampling and generation. */
    recur_sampler_params params;
    recur_sampler_params_init(&params);
    uint32_t choice = next_byte(&src);
    params.temperature = (choice & 3) == 0 ? 0.0f : 0.25f * (float)(choice & 7);
    params.top_k = (int32_t)(next_byte(&src) % 5);
    params.top_p = (choice & 8) ? 0.9f : 1.0f;
    params.seed = next_byte(&src);
    recur_sampler *sampler = NULL;
    if (CALL(recur_sampler_new(&params, &sampler)) != RECUR_OK) contract_violation("sampler_new", 0);
    int32_t token = 0, generated = 0;
    CALL(recur_sampler_sample_state(sampler, st, &token));
    if (outputs > 0) {
        const float *o = NULL;
        if (CALL(recur_state_output(st, &o)) == RECUR_OK) CALL(recur_sampler_sample(sampler, o, outputs, &token));
    }
    piece_sink sink = {0, (int)(next_byte(&src) % 4), 0};
    s = CALL(recur_generate(st, sampler, prompt, (int32_t)(next_byte(&src) % MAX_STEPS), on_piece, &sink, &generated));
    if (s == RECUR_OK && generated < 0) contract_violation("negative generated count", s);
    CALL(recur_state_reset(st));
    CALL(recur_generate(st, sampler, NULL, 3, NULL, NULL, NULL));

    run_frames(m, st, trailer, trailer_size, outputs);

    char task_text[TASK_TEXT + 1];
    strncpy(task_text, prompt, TASK_TEXT);
    task_text[TASK_TEXT] = '\0';
    run_tasks(m, task_text, outputs, &src);

    /* The model is released first: its states keep it alive. */
    recur_model_free(m);
    CALL(recur_state_step(st, 0, &logits));
    recur_sampler_free(sampler);
    recur_state_free(st);
    free(text);
    return 0;
}
