/* Minimal check macros shared by the C test programs: counters, CHECK, EXPECT (a status, and a message in
 * recur_last_error() for failures), OK and REQUIRE. Each program prints "NAME: N passed, M failed". */
#ifndef RECUR_TEST_CHECK_H
#define RECUR_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include "recur.h"

static int passed = 0;
static int failed = 0;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (cond) {                                                                      \
            passed++;                                                                    \
        } else {                                                                         \
            failed++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
        }                                                                                \
    } while (0)

/* Checks a status; a failure status must also leave a message in recur_last_error(). */
#define EXPECT(call, expected)                                                           \
    do {                                                                                 \
        recur_status s_ = (call);                                                        \
        if (s_ == (expected) && (s_ == RECUR_OK || recur_last_error()[0] != '\0')) {     \
            passed++;                                                                    \
        } else {                                                                         \
            failed++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: %s returned %d (%s), expected %d (%s); last error: %s\n", \
                    __FILE__, __LINE__, #call, s_, recur_status_string(s_), (int)(expected),        \
                    recur_status_string(expected), recur_last_error());                \
        }                                                                                \
    } while (0)

#define OK(call) EXPECT(call, RECUR_OK)

/* Fails the whole run when setup cannot proceed. */
#define REQUIRE(call)                                                                    \
    do {                                                                                 \
        recur_status s_ = (call);                                                        \
        if (s_ != RECUR_OK) {                                                            \
            fprintf(stderr, "FATAL %s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, s_, \
                    recur_last_error());                                                 \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* The bytes of a file (malloc'd, *size set), or NULL. */
static inline unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = (unsigned char *)malloc((size_t)n);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return buf;
}

#endif
