/*
 * Tests of translators whose decoder attends over the encoder's outputs (format 5):
 * recur_translate_attention, recur_model_source_token_text, RECUR_LAYER_ATTENTION, and the refusals.
 * Expected values come from other calls (recur_translate's text, the source text's words, greedy = beam 1,
 * repeated calls, buffer sizes) and from the definition of the weights (rows of a softmax sum to 1); the
 * weights themselves are compared with the numpy reference in bindings/python/tests/test_attention.py.
 *
 *     test_attention ATTENTION_MODEL BIDIRECTIONAL_ATTENTION_MODEL SEQ2SEQ_MODEL GENERATOR_MODEL
 *
 * The models are made by `recur create --task seq2seq --attention general --input-feeding`,
 * `recur create --task seq2seq --attention additive --combine none --bidirectional --cell lstm`,
 * `recur create --task seq2seq` (no attention) and `recur create`.
 * Prints failures to stderr and a last line "test_attention: N passed, M failed"; exits 1 when M > 0.
 */
#include "check.h"

#include <math.h>
#include <string.h>

static recur_model *open_model(const char *path) {
    recur_model *m = NULL;
    REQUIRE(recur_model_open(path, 0, &m));
    return m;
}

static int64_t get(recur_model *m, int property) {
    int64_t v = -1;
    OK(recur_model_get(m, property, &v));
    return v;
}

/* The text recur_translate gives for these target tokens: the pieces of the ones that are not special,
 * joined by single spaces (a word vocabulary). */
static void decode(recur_model *m, const int32_t *tokens, size_t n, char *out, size_t cap) {
    int64_t special[4] = {get(m, RECUR_MODEL_BOS_ID), get(m, RECUR_MODEL_EOS_ID), get(m, RECUR_MODEL_PAD_ID),
                          get(m, RECUR_MODEL_UNK_ID)};
    size_t at = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        int skip = 0;
        for (int k = 0; k < 4; k++) skip |= tokens[i] == special[k];
        if (skip) continue;
        const char *piece = NULL;
        size_t len = 0;
        OK(recur_model_token_text(m, tokens[i], &piece, &len));
        if (at > 0 && at + 1 < cap) out[at++] = ' ';
        if (at + len + 1 >= cap) return;
        memcpy(out + at, piece, len);
        at += len;
        out[at] = 0;
    }
}

#define MAX_OUT 32
#define MAX_SRC 16

static void test_weights(recur_model *m, const char *text, const char *const *words, size_t n_words) {
    recur_translate_params p;
    recur_translate_params_init(&p);
    p.beam = 1;
    p.max_length = 12;
    /* The sizes first: all NULL. */
    size_t n_out = 99, n_src = 99;
    EXPECT(recur_translate_attention(m, text, &p, NULL, 0, NULL, 0, NULL, 0, &n_out, &n_src), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(n_src == n_words + 1);        /* the words and EOS */
    CHECK(n_out >= 1 && n_out <= 12);
    if (n_out > MAX_OUT || n_src > MAX_SRC) return;

    int32_t tokens[MAX_OUT], source[MAX_SRC];
    float w[MAX_OUT * MAX_SRC];
    size_t n2 = 0, s2 = 0;
    OK(recur_translate_attention(m, text, &p, tokens, MAX_OUT, source, MAX_SRC, w, MAX_OUT * MAX_SRC, &n2, &s2));
    CHECK(n2 == n_out && s2 == n_src);
    /* The source positions are the text's words, then EOS. */
    for (size_t j = 0; j < n_src; j++) {
        const char *piece = NULL;
        size_t len = 0;
        OK(recur_model_source_token_text(m, source[j], &piece, &len));
        const char *want = j < n_words ? words[j] : "<eos>";
        CHECK(piece && len == strlen(want) && memcmp(piece, want, len) == 0);
    }
    /* The tokens are recur_translate's translation. */
    char text_a[512], text_b[512];
    size_t len = 0;
    OK(recur_translate(m, text, &p, text_a, sizeof text_a, &len));
    decode(m, tokens, n_out, text_b, sizeof text_b);
    CHECK(strcmp(text_a, text_b) == 0);
    /* Each row is a distribution over the source positions. */
    for (size_t i = 0; i < n_out; i++) {
        double sum = 0;
        for (size_t j = 0; j < n_src; j++) {
            float v = w[i * n_src + j];
            CHECK(v >= 0 && v <= 1);
            sum += v;
        }
        CHECK(fabs(sum - 1) < 1e-5);
    }
    /* The same call gives the same weights, bit for bit; beam search with width 1 too. */
    float again[MAX_OUT * MAX_SRC];
    OK(recur_translate_attention(m, text, &p, tokens, MAX_OUT, source, MAX_SRC, again, MAX_OUT * MAX_SRC, &n2, &s2));
    CHECK(memcmp(w, again, sizeof(float) * n_out * n_src) == 0);
    p.length_penalty = 0.5f;    /* the beam-search path, width 1 */
    OK(recur_translate_attention(m, text, &p, tokens, MAX_OUT, source, MAX_SRC, again, MAX_OUT * MAX_SRC, &n2, &s2));
    CHECK(n2 == n_out);
    for (size_t k = 0; k < n_out * n_src; k++) CHECK(fabsf(again[k] - w[k]) < 1e-6f);
    /* A wider beam: still distributions, one row per token. */
    p.beam = 4;
    p.length_penalty = 1;
    OK(recur_translate_attention(m, text, &p, tokens, MAX_OUT, source, MAX_SRC, again, MAX_OUT * MAX_SRC, &n2, &s2));
    CHECK(s2 == n_src && n2 >= 1);
    for (size_t i = 0; i < n2; i++) {
        double sum = 0;
        for (size_t j = 0; j < s2; j++) sum += again[i * s2 + j];
        CHECK(fabs(sum - 1) < 1e-5);
    }
    char beam_text[512], beam_b[512];
    OK(recur_translate(m, text, &p, beam_text, sizeof beam_text, &len));
    decode(m, tokens, n2, beam_b, sizeof beam_b);
    CHECK(strcmp(beam_text, beam_b) == 0);

    /* Buffers one element too small: BUFFER_TOO_SMALL, the sizes, nothing written. */
    p.beam = 1;
    float sentinel[MAX_OUT * MAX_SRC];
    for (size_t k = 0; k < MAX_OUT * MAX_SRC; k++) sentinel[k] = -7;
    int32_t tok_sentinel[MAX_OUT], src_sentinel[MAX_SRC];
    for (size_t k = 0; k < MAX_OUT; k++) tok_sentinel[k] = -7;
    for (size_t k = 0; k < MAX_SRC; k++) src_sentinel[k] = -7;
    EXPECT(recur_translate_attention(m, text, &p, tok_sentinel, n_out, src_sentinel, n_src, sentinel, n_out * n_src - 1,
                                     &n2, &s2), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(n2 == n_out && s2 == n_src);
    EXPECT(recur_translate_attention(m, text, &p, tok_sentinel, n_out - 1, src_sentinel, n_src, sentinel, n_out * n_src,
                                     &n2, &s2), RECUR_ERR_BUFFER_TOO_SMALL);
    EXPECT(recur_translate_attention(m, text, &p, tok_sentinel, n_out, src_sentinel, n_src - 1, sentinel, n_out * n_src,
                                     &n2, &s2), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(sentinel[0] == -7 && tok_sentinel[0] == -7 && src_sentinel[0] == -7);
    /* Exactly the sizes: fits. */
    OK(recur_translate_attention(m, text, &p, tok_sentinel, n_out, src_sentinel, n_src, sentinel, n_out * n_src, &n2, &s2));
    CHECK(memcmp(sentinel, w, sizeof(float) * n_out * n_src) == 0);
}

static void test_errors(recur_model *att, recur_model *plain, recur_model *gen) {
    recur_translate_params p;
    recur_translate_params_init(&p);
    int32_t tokens[8], source[8];
    float w[64];
    size_t n = 0, s = 0;
    EXPECT(recur_translate_attention(plain, "s3 s4", &p, tokens, 8, source, 8, w, 64, &n, &s), RECUR_ERR_UNSUPPORTED);
    CHECK(n == 0 && s == 0);
    EXPECT(recur_translate_attention(gen, "abc", &p, tokens, 8, source, 8, w, 64, &n, &s), RECUR_ERR_UNSUPPORTED);
    EXPECT(recur_translate_attention(NULL, "s3", &p, tokens, 8, source, 8, w, 64, &n, &s), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_translate_attention(att, NULL, &p, tokens, 8, source, 8, w, 64, &n, &s), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_translate_attention(att, "s3", &p, tokens, 8, source, 8, w, 64, NULL, &s), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_translate_attention(att, "s3", &p, tokens, 8, source, 8, w, 64, &n, NULL), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_translate_attention(att, "s3", &p, NULL, 8, source, 8, w, 64, &n, &s), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_translate_attention(att, "s3", &p, tokens, 8, NULL, 8, w, 64, &n, &s), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_translate_attention(att, "s3", &p, tokens, 8, source, 8, NULL, 64, &n, &s), RECUR_ERR_INVALID_ARGUMENT);
    EXPECT(recur_translate_attention(att, "   ", &p, tokens, 8, source, 8, w, 64, &n, &s), RECUR_ERR_INVALID_ARGUMENT);
    p.beam = 0;
    EXPECT(recur_translate_attention(att, "s3", &p, tokens, 8, source, 8, w, 64, &n, &s), RECUR_ERR_INVALID_ARGUMENT);
    recur_translate_params_init(&p);
    p.length_penalty = NAN;
    EXPECT(recur_translate_attention(att, "s3", &p, tokens, 8, source, 8, w, 64, &n, &s), RECUR_ERR_INVALID_ARGUMENT);
    /* NULL params: the defaults (beam 4). */
    size_t n_out = 0, n_src = 0;
    EXPECT(recur_translate_attention(att, "s3 s4", NULL, NULL, 0, NULL, 0, NULL, 0, &n_out, &n_src), RECUR_ERR_BUFFER_TOO_SMALL);
    CHECK(n_src == 3);

    /* Source token texts. */
    const char *piece = NULL;
    size_t len = 0;
    OK(recur_model_source_token_text(att, 3, &piece, &len));
    CHECK(piece && strcmp(piece, "s3") == 0 && len == 2);
    EXPECT(recur_model_source_token_text(att, 1000, &piece, &len), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_model_source_token_text(att, -1, &piece, &len), RECUR_ERR_OUT_OF_RANGE);
    EXPECT(recur_model_source_token_text(gen, 0, &piece, &len), RECUR_ERR_UNSUPPORTED);
    EXPECT(recur_model_source_token_text(att, 0, NULL, &len), RECUR_ERR_INVALID_ARGUMENT);
    OK(recur_model_source_token_text(plain, 3, &piece, NULL));

    /* The layers: embedding, GRU, attention, dense. */
    int64_t v = -1;
    OK(recur_model_layer_get(att, 2, RECUR_LAYER_KIND, &v));
    CHECK(v == RECUR_LAYER_ATTENTION);
    OK(recur_model_layer_get(att, 1, RECUR_LAYER_KIND, &v));
    CHECK(v == RECUR_LAYER_GRU);
    int64_t units = -1, dense_in = -1;
    OK(recur_model_layer_get(att, 2, RECUR_LAYER_OUTPUT_SIZE, &units));
    OK(recur_model_layer_get(att, 3, RECUR_LAYER_INPUT_SIZE, &dense_in));
    CHECK(units == dense_in && units > 0);
    CHECK(get(att, RECUR_MODEL_FORMAT_MAJOR) == 5);
    CHECK(get(att, RECUR_MODEL_CAN_STEP) == 0);     /* its states come from an encoded source only */
    CHECK(get(plain, RECUR_MODEL_CAN_STEP) == 1);
    CHECK(get(plain, RECUR_MODEL_FORMAT_MAJOR) == 1);

    /* A fresh state has no encoded source: stepping it is refused, and changes nothing. */
    recur_state *st = NULL;
    OK(recur_state_new(att, &st));
    const float *logits = NULL;
    EXPECT(recur_state_step(st, 1, &logits), RECUR_ERR_UNSUPPORTED);
    uint64_t pos = 99;
    OK(recur_state_position(st, &pos));
    CHECK(pos == 0);
    recur_state_free(st);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s ATTENTION_MODEL BIDIRECTIONAL_ATTENTION_MODEL SEQ2SEQ_MODEL GENERATOR_MODEL\n", argv[0]);
        return 2;
    }
    recur_model *att = open_model(argv[1]), *bidi = open_model(argv[2]), *plain = open_model(argv[3]),
                *gen = open_model(argv[4]);
    const char *words[] = {"s3", "s4", "s5", "s7", "s11"};
    test_weights(att, "s3 s4 s5 s7 s11", words, 5);
    test_weights(att, "s3", words, 1);
    test_weights(bidi, "s3 s4 s5 s7 s11", words, 5);
    test_weights(bidi, "s3 s4", words, 2);
    test_errors(att, plain, gen);
    recur_model_free(att);
    recur_model_free(bidi);
    recur_model_free(plain);
    recur_model_free(gen);
    printf("test_attention: %d passed, %d failed\n", passed, failed);
    return failed > 0;
}
