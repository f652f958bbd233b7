/*
 * replay: runs the fuzz target's body (fuzz_recur.c) on files, without libFuzzer or sanitizers, against
 * the normal library: the committed corpus and every regression must go through without a crash or a
 * broken contract (the target aborts on those).
 *
 *     cc replay.c fuzz_recur.c -I include -lrecur -o replay
 *     replay FILE...             runs the target on each file; prints "replay: N files, M models loaded"
 *     replay --open FILE...      only opens each file (recur_model_open), prints "FILE: STATUS MESSAGE"
 *                                (for measuring time and memory of the loader alone)
 * Both print a last line "peak_rss_kb N peak_vm_kb M": the process's peak resident memory and peak address
 * space (VmHWM and VmPeak of /proc/self/status; -1 where that does not exist).
 */
#include "recur.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern int fuzz_recur_models_loaded;

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0, got;
    if (f == NULL) return NULL;
    do {
        if (n == cap) {
            uint8_t *bigger = (uint8_t *)realloc(buf, cap = cap ? 2 * cap : 65536);
            if (bigger == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *size = n;
    return buf;
}

/* A "Vm...:" field of /proc/self/status in KiB, or -1. (A parent's wait4 is no help for the peak resident
 * memory: ru_maxrss survives fork and exec.) */
static long status_kb(const char *field) {
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, n) == 0) kb = strtol(line + n, NULL, 10);
    fclose(f);
    return kb;
}

static void print_peaks(void) {
    printf("peak_rss_kb %ld peak_vm_kb %ld\n", status_kb("VmHWM:"), status_kb("VmPeak:"));
}

int main(int argc, char **argv) {
    int i, files = 0;
    if (argc >= 2 && strcmp(argv[1], "--open") == 0) {
        for (i = 2; i < argc; i++) {
            recur_model *m = NULL;
            recur_status s = recur_model_open(argv[i], 0, &m);
            printf("%s: %d %s\n", argv[i], s, s == RECUR_OK ? "" : recur_last_error());
            recur_model_free(m);
        }
        print_peaks();
        return 0;
    }
    LLVMFuzzerInitialize(&argc, &argv);
    for (i = 1; i < argc; i++) {
        size_t size = 0;
        uint8_t *data = read_all(argv[i], &size);
        if (data == NULL) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 2;
        }
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        files++;
    }
    printf("replay: %d files, %d models loaded\n", files, fuzz_recur_models_loaded);
    print_peaks();
    return 0;
}
