#!/usr/bin/env bash
# The tests under dynamic checkers (docs/ROBUSTNESS.md):
#   1. every Swift test under AddressSanitizer, with UndefinedBehaviorSanitizer in the C kernels (Swift has
#      no UBSan; its arithmetic and bounds are checked by the language). Leak detection is off here because
#      XCTest itself leaks; leaks are checked on the C tests, which use the library through its C ABI.
#   2. the concurrency tests (Swift) under ThreadSanitizer: shared models, concurrent load/free, the
#      kernel worker pool.
#   3. tests/c/sanitize.sh: the C tests under ASan + UBSan + LSan and TSan (library and programs both
#      instrumented), and under valgrind against the release library.
#   4. the fuzz target (tests/fuzz): instrumented build, replay of the corpus and the regressions, then
#      $RECUR_FUZZ_SECONDS (default 60) seconds of fuzzing.
#
#   scripts/sanitize.sh          all of it (about 25 minutes on 2 busy cores, most of it building)
#   scripts/sanitize.sh --ci     what scripts/test.sh runs on every change: the C tests under valgrind
#                                (against the release build in $RECUR_RELEASE_SCRATCH) and the fuzz pass
#
# Each stage prints its own summary; the script exits non-zero if any stage fails. Logs are written under
# $TMPDIR (mktemp) and removed on exit, except when a stage fails: then their folder is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/recur-sanitize.XXXXXX")
finish() {
    local code=$?
    if [ $code -eq 0 ]; then rm -rf "$LOGS"; else echo "sanitize: logs kept in $LOGS"; fi
}
trap finish EXIT
CI=0
[ "${1:-}" = "--ci" ] && CI=1
scripts/setup.sh --sanitizers
start=$(date +%s)
elapsed() { echo "($(( $(date +%s) - start )) s so far)"; }

# The same flags for the Swift tests and for tests/c/sanitize.sh's library, so that one build serves both.
ASAN_FLAGS=(--sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined)

if [ $CI -eq 0 ]; then
    echo "== Swift tests under AddressSanitizer (+ UBSan in the C kernels)"
    swift build --scratch-path .build-asan --build-tests "${ASAN_FLAGS[@]}" 2>&1 | grep -E "error:" && exit 1 || true
    ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        .build-asan/debug/RecurPackageTests.xctest > "$LOGS/asan.log" 2>&1 \
        || { tail -40 "$LOGS/asan.log"; echo "asan: FAILED"; exit 1; }
    grep -E "Executed [0-9]+ tests" "$LOGS/asan.log" | tail -1
    elapsed

    echo "== concurrency tests under ThreadSanitizer"
    swift build --scratch-path .build-tsan --build-tests --sanitize=thread 2>&1 | grep -E "error:" && exit 1 || true
    # XCTest on Linux takes one argument: the tests, separated by commas.
    TSAN_OPTIONS=halt_on_error=1 .build-tsan/debug/RecurPackageTests.xctest \
        RecurTests.ConcurrencyTests,RecurTests.StateTests/testModelSharedAcrossThreads,RecurTests.KernelBatchTests/testThreadedStepEqualsSingleThread \
        > "$LOGS/tsan.log" 2>&1 || { tail -40 "$LOGS/tsan.log"; echo "tsan: FAILED"; exit 1; }
    grep -E "Executed [0-9]+ tests" "$LOGS/tsan.log" | tail -1
    elapsed

    echo "== C tests under ASan + UBSan + LSan, TSan and valgrind"
    tests/c/sanitize.sh asan tsan valgrind
else
    echo "== C tests under valgrind"
    tests/c/sanitize.sh valgrind
fi
elapsed

echo "== fuzzing"
tests/fuzz/build.sh
tests/fuzz/run.sh "${RECUR_FUZZ_SECONDS:-60}"
elapsed
echo "sanitizers: all clean"
