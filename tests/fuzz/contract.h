/*
 * contract.h: the checks the fuzz targets make of every call, besides crashes and sanitizer reports.
 * Define FUZZ_TARGET (the target's name, for messages) before including it.
 *
 *   contract_violation(what, status)   reports a broken promise of recur.h and aborts (libFuzzer keeps the input)
 *   CALL(expr)                         runs a recur_* call: its status must be documented, and a failure
 *                                      must leave a message; returns the status
 */
#ifndef RECUR_FUZZ_CONTRACT_H
#define RECUR_FUZZ_CONTRACT_H

#include "recur.h"

#include <stdio.h>
#include <stdlib.h>

static void contract_violation(const char *what, int status) {
    fprintf(stderr, FUZZ_TARGET ": contract violation: %s (status %d, last error \"%s\")\n", what, status,
            recur_last_error());
    abort();
}

/* Checks that a status is documented and that a failure left a message; returns the status. */
static recur_status check(recur_status s, const char *call) {
    if (s < RECUR_OK || s > RECUR_ERR_OUT_OF_MEMORY) contract_violation(call, s);
    if (s != RECUR_OK && recur_last_error()[0] == '\0') contract_violation(call, s);
    return s;
}

#define CALL(expr) check((expr), #expr)

#endif
