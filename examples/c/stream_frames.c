/*
 * Streams frames into a frame model and prints one prediction per frame as each frame arrives: the
 * real-time use (a voice-activity detector, a sensor monitor, a forecaster fed each new observation).
 *
 *     stream_frames MODEL [CSV]
 *
 * Reads CSV (or standard input): one frame per line, the model's frame size in numbers separated by
 * commas or spaces; an empty line starts a new sequence (the state is reset); a first line that is not
 * numbers is a header. Prints, per frame, the values of a regress model ("0.12,-3.4") or the most likely
 * label and its probability ("b,0.912345") — what `recur predict MODEL --csv CSV` prints (with --running
 * for classify models). Errors go to stderr with the library's message; the exit status is 1.
 *
 *     cc stream_frames.c $(pkg-config --cflags --libs recur) -o stream_frames
 */
#include <recur.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "stream_frames: %s: %s\n", what, recur_last_error());
    return 1;
}

/* Parses up to `max` numbers of a line into out; returns how many, or -1 when a field is not a number. */
static long parse(char *line, float *out, long max) {
    long n = 0;
    char *p = line;
    for (;;) {
        while (*p == ',' || *p == ';' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (*p == '\0') return n;
        char *end = NULL;
        float v = strtof(p, &end);
        if (end == p) return -1;
        if (n < max) out[n] = v;
        n++;
        p = end;
        if (*p && *p != ',' && *p != ';' && !isspace((unsigned char)*p)) return -1;
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: stream_frames MODEL [CSV]\n");
        return 2;
    }
    recur_model *model = NULL;
    if (recur_model_open(argv[1], 0, &model) != RECUR_OK) return fail(argv[1]);
    int64_t input = 0, frame_size = 0, task = 0, can_step = 0, outputs = 0;
    recur_model_get(model, RECUR_MODEL_INPUT, &input);
    recur_model_get(model, RECUR_MODEL_FRAME_SIZE, &frame_size);
    recur_model_get(model, RECUR_MODEL_TASK, &task);
    recur_model_get(model, RECUR_MODEL_CAN_STEP, &can_step);
    recur_model_get(model, RECUR_MODEL_OUTPUT_SIZE, &outputs);
    if (input != RECUR_INPUT_FRAMES || !can_step) {
        fprintf(stderr, "stream_frames: %s is not a frame model that can be stepped\n", argv[1]);
        recur_model_free(model);
        return 1;
    }
    FILE *in = argc == 3 ? fopen(argv[2], "r") : stdin;
    if (!in) {
        perror(argv[2]);
        recur_model_free(model);
        return 1;
    }
    recur_state *state = NULL;
    if (recur_state_new(model, &state) != RECUR_OK) return fail("state");
    float *frame = malloc(sizeof(float) * (size_t)frame_size);
    char line[1 << 16];
    long number = 0;
    int status = 0;
    while (frame && fgets(line, sizeof line, in)) {
        number++;
        long n = parse(line, frame, frame_size);
        if (n == 0) {                          /* an empty line: a new sequence */
            recur_state_reset(state);
            continue;
        }
        if (n < 0 && number == 1) continue;    /* a header */
        if (n != frame_size) {
            fprintf(stderr, "stream_frames: line %ld: expected %lld numbers\n", number, (long long)frame_size);
            status = 1;
            break;
        }
        const float *out = NULL;
        if (recur_state_step_frame(state, frame, (size_t)n, &out) != RECUR_OK) {
            char what[64];
            snprintf(what, sizeof what, "line %ld", number);
            status = fail(what);
            break;
        }
        if (task == RECUR_TASK_REGRESS) {
            for (int64_t j = 0; j < outputs; j++) printf(j ? ",%.6g" : "%.6g", (double)out[j]);
            printf("\n");
        } else {
            /* The most likely label (a single sigmoid output p stands for [1 - p, p]). */
            int64_t best = 0;
            float p = outputs == 1 ? (out[0] >= 0.5f ? out[0] : 1 - out[0]) : out[0];
            if (outputs == 1) best = out[0] > 1 - out[0];
            for (int64_t j = 1; j < outputs; j++)
                if (out[j] > p) { p = out[j]; best = j; }
            const char *label = NULL;
            if (recur_model_label(model, (size_t)best, &label) == RECUR_OK) printf("%s,%.6f\n", label, (double)p);
            else printf("%lld,%.6f\n", (long long)best, (double)p);
        }
        fflush(stdout);
    }
    free(frame);
    recur_state_free(state);
    recur_model_free(model);
    if (in != stdin) fclose(in);
    return status;
}
