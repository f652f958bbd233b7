/*
 * generate: stream text from a .recur generator model through the C API.
 *
 *     generate MODEL PROMPT [TOKENS [TEMPERATURE [SEED]]]
 *
 * Prints the generated text (not the prompt) piece by piece as it is sampled, then a newline: the same
 * output as `recur generate MODEL --prompt PROMPT --tokens TOKENS --temperature TEMPERATURE --seed SEED
 * --no-prompt`. On error prints the library's message to stderr and exits with status 1.
 *
 * Build against an installed Recur:
 *     cc generate.c $(pkg-config --cflags --libs recur) -o generate
 */
#include <recur.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int print_piece(const char *piece, size_t length, void *user) {
    (void)user;
    fwrite(piece, 1, length, stdout);
    fflush(stdout);
    return 0;
}

static int fail(const char *what) {
    fprintf(stderr, "generate: %s: %s\n", what, recur_last_error());
    return 1;
}

static int parse_long(const char *s, long *out) {
    char *end = NULL;
    errno = 0;
    *out = strtol(s, &end, 10);
    return errno == 0 && end != s && *end == '\0';
}

int main(int argc, char **argv) {
    long tokens = 200;
    double temperature = 0.8;
    unsigned long long seed = 42;
    recur_model *model = NULL;
    recur_state *state = NULL;
    recur_sampler *sampler = NULL;
    recur_sampler_params params;
    int status = 0;

    if (argc < 3 || argc > 6) {
        fprintf(stderr, "usage: %s MODEL PROMPT [TOKENS [TEMPERATURE [SEED]]]\n", argv[0]);
        return 2;
    }
    if (argc > 3 && (!parse_long(argv[3], &tokens) || tokens < 0 || tokens > 0x7fffffffL)) {
        fprintf(stderr, "generate: TOKENS must be an integer >= 0 (got '%s')\n", argv[3]);
        return 2;
    }
    if (argc > 4) {
        char *end = NULL;
        temperature = strtod(argv[4], &end);
        if (end == argv[4] || *end != '\0') {
            fprintf(stderr, "generate: TEMPERATURE must be a number (got '%s')\n", argv[4]);
            return 2;
        }
    }
    if (argc > 5) {
        char *end = NULL;
        seed = strtoull(argv[5], &end, 10);
        if (end == argv[5] || *end != '\0') {
            fprintf(stderr, "generate: SEED must be an integer >= 0 (got '%s')\n", argv[5]);
            return 2;
        }
    }

    recur_sampler_params_init(&params);
    params.temperature = (float)temperature;
    params.seed = (uint64_t)seed;

    if (recur_model_open(argv[1], 0, &model) != RECUR_OK) {
        status = fail(argv[1]);
    } else if (recur_state_new(model, &state) != RECUR_OK) {
        status = fail("state");
    } else if (recur_sampler_new(&params, &sampler) != RECUR_OK) {
        status = fail("sampler");
    } else if (recur_generate(state, sampler, argv[2], (int32_t)tokens, print_piece, NULL, NULL) != RECUR_OK) {
        status = fail("generate");
    } else {
        putchar('\n');
    }

    recur_sampler_free(sampler);
    recur_state_free(state);
    recur_model_free(model);
    return status;
}
