/*
 * fuzz_state: a libFuzzer target for the saved-state path (recur_state_restore and every call after it).
 *
 * fuzz_recur mutates whole saved states, so nearly every input dies at the payload CRC or the model
 * checksum. This target builds the saved state itself around the fuzzer's bytes, computing what a real
 * state carries, so the mutations reach the values inside:
 *
 *   byte 0       which model (of the generators under $RECUR_FUZZ_MODELS, default tests/fuzz/corpus)
 *   byte 1       flags: bit 0 take the position from the input (else a small one), bit 1 take the float
 *                count from the input (else the model's), bit 2 corrupt one header byte (offset from the
 *                input), bit 3 leave the CRC wrong, bits 4-7 how many calls follow the restore
 *   bytes 2..10  the position (u64, little-endian)
 *   bytes 10..14 the float count (u32)
 *   then         the floats of the state and the last output (raw bits: NaN, infinities, anything), and
 *                after them token ids and prompt text for the calls that follow.
 *
 * A restore that succeeds is followed by steps, a prefill, a sample, a generation and a save, which
 * must give back the restored bytes. Contract checks as in fuzz_recur: documented status codes, a
 * message on every failure, a saved state that restores into its own model.
 */
#define _POSIX_C_SOURCE 200809L
#include "recur.h"
#define FUZZ_TARGET "fuzz_state"
#include "contract.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODELS 16

static recur_model *models[MAX_MODELS];
static int model_count = 0;


/* CRC-32 (IEEE 802.3, reflected, as zlib and the format use), computed here independently of the library. */
static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get_u64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Loads each generator of the corpus folder: a seed is a model, maybe followed by a trailer, so only
 * the first file_size bytes are opened. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    const char *dir = getenv("RECUR_FUZZ_MODELS");
    if (dir == NULL) dir = "tests/fuzz/corpus";
    DIR *d = opendir(dir);
    if (d == NULL) { fprintf(stderr, "fuzz_state: cannot open %s\n", dir); exit(2); }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && model_count < MAX_MODELS) {
        if (strncmp(e->d_name, "gen-", 4) != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) continue;
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (n < 64) continue;
        uint64_t size = get_u64(buf + 16);
        if (size > n) continue;
        recur_model *m = NULL;
        int64_t step = 0;
        if (recur_model_open_buffer(buf, (size_t)size, 0, &m) == RECUR_OK &&
            recur_model_get(m, RECUR_MODEL_CAN_STEP, &step) == RECUR_OK && step == 1) {
            models[model_count++] = m;
        } else {
            recur_model_free(m);
        }
    }
    closedir(d);
    if (model_count == 0) { fprintf(stderr, "fuzz_state: no generator models in %s\n", dir); exit(2); }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 14) return 0;
    recur_model *m = models[data[0] % model_count];
    const uint8_t flags = data[1];
    int64_t major = 0, checksum = 0, file_bytes = 0, state_floats = 0, vocab = 0;
    size_t outputs = 0;
    CALL(recur_model_get(m, RECUR_MODEL_FORMAT_MAJOR, &major));
    CALL(recur_model_get(m, RECUR_MODEL_CHECKSUM, &checksum));
    CALL(recur_model_get(m, RECUR_MODEL_FILE_BYTES, &file_bytes));
    CALL(recur_model_get(m, RECUR_MODEL_STATE_FLOATS, &state_floats));
    CALL(recur_model_get(m, RECUR_MODEL_VOCAB_SIZE, &vocab));
    CALL(recur_model_output_size(m, &outputs));

    uint64_t position = flags & 1 ? get_u64(data + 2) : data[2];
    uint32_t count = flags & 2 ? get_u32(data + 10) : (uint32_t)(state_floats + (int64_t)outputs);
    size_t need = (size_t)(state_floats + (int64_t)outputs);
    const uint8_t *rest = data + 14;
    size_t rest_size = size - 14;

    /* The payload: as many floats as the model needs, taken from the input (zero-filled past its end),
     * so the CRC below can be made right even when the declared count is wrong. */
    size_t payload = 4 * need;
    size_t total = 40 + payload;
    uint8_t *state = calloc(1, total);
    if (state == NULL) return 0;
    memcpy(state + 40, rest, rest_size < payload ? rest_size : payload);
    memcpy(state, "RCRSTATE", 8);
    put_u16(state + 8, 1);
    put_u16(state + 10, (uint16_t)major);
    put_u32(state + 12, (uint32_t)checksum);
    put_u64(state + 16, (uint64_t)file_bytes);
    put_u64(state + 24, position);
    put_u32(state + 32, count);
    put_u32(state + 36, crc32_of(state + 40, payload) ^ (flags & 8 ? 1u : 0u));
    if (flags & 4 && rest_size > 0) state[rest[0] % 40] ^= (uint8_t)(rest_size > 1 ? rest[1] | 1 : 1);
    const uint8_t *tail = rest_size > payload ? rest + payload : NULL;
    size_t tail_size = tail ? rest_size - payload : 0;

    recur_state *s = NULL;
    if (CALL(recur_state_new(m, &s)) != RECUR_OK) { free(state); return 0; }
    if (CALL(recur_state_restore(s, state, total)) == RECUR_OK) {
        uint64_t got = 0;
        CALL(recur_state_position(s, &got));
        if (got != get_u64(state + 24)) contract_violation("restored position differs from the saved one", 0);
        /* Saving gives back the restored bytes. */
        size_t again_size = 0, written = 0;
        CALL(recur_state_size(s, &again_size));
        uint8_t *again = malloc(again_size);
        if (again != NULL) {
            if (CALL(recur_state_save(s, again, again_size, &written)) != RECUR_OK || written != total ||
                memcmp(again, state, total) != 0)
                contract_violation("save after restore does not give back the state", 0);
            free(again);
        }
        int calls = flags >> 4;
        int32_t tokens[8];
        size_t nt = 0;
        for (size_t i = 0; i < tail_size && nt < 8; i++) tokens[nt++] = (int32_t)(tail[i] % (vocab + 2)) - 1;
        for (int c = 0; c < calls && c < 6; c++) {
            const float *out = NULL;
            int32_t t = nt ? tokens[c % nt] : 0;
            switch (c % 4) {
            case 0: CALL(recur_state_step(s, t, &out)); break;
            case 1: if (nt) CALL(recur_state_prefill(s, tokens, nt, &out)); break;
            case 2: {
                recur_sampler_params p;
                recur_sampler *sm = NULL;
                int32_t tok = 0;
                recur_sampler_params_init(&p);
                p.seed = position;
                if (CALL(recur_sampler_new(&p, &sm)) == RECUR_OK) {
                    CALL(recur_sampler_sample_state(sm, s, &tok));
                    int32_t generated = 0;
                    CALL(recur_generate(s, sm, "", 3, NULL, NULL, &generated));
                    recur_sampler_free(sm);
                }
                break;
            }
            default: CALL(recur_state_reset(s)); break;
            }
        }
    }
    recur_state_free(s);
    free(state);
    return 0;
}
