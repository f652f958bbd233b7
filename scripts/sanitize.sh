#!/usr/bin/env bash
# The test suites under sanitizers:
#   1. every Swift test under AddressSanitizer (Swift has no UBSan; its arithmetic and bounds are checked
#      by the language). Leak detection is off here because XCTest itself leaks; leaks are checked on the
#      C tests below, which exercise the library through its C ABI.
#   2. the concurrency tests under ThreadSanitizer.
#   3. the C tests under AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer (when tests/c exists).
# Each stage prints its own summary; the script exits non-zero if any stage fails.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Swift tests under AddressSanitizer"
swift build --scratch-path .build-asan --build-tests --sanitize=address 2>&1 | grep -E "error:" && exit 1 || true
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 .build-asan/debug/RecurPackageTests.xctest > /tmp/recur-asan.log 2>&1 \
    || { tail -40 /tmp/recur-asan.log; echo "asan: FAILED"; exit 1; }
grep -E "Executed [0-9]+ tests" /tmp/recur-asan.log | tail -1

echo "== concurrency tests under ThreadSanitizer"
swift build --scratch-path .build-tsan --build-tests --sanitize=thread 2>&1 | grep -E "error:" && exit 1 || true
TSAN_OPTIONS=halt_on_error=1 .build-tsan/debug/RecurPackageTests.xctest RecurTests.ConcurrencyTests RecurTests.StateTests/testModelSharedAcrossThreads \
    > /tmp/recur-tsan.log 2>&1 || { tail -40 /tmp/recur-tsan.log; echo "tsan: FAILED"; exit 1; }
grep -E "Executed [0-9]+ tests" /tmp/recur-tsan.log | tail -1

if [ -x tests/c/sanitize.sh ]; then
    echo "== C tests under ASan + UBSan + LSan"
    tests/c/sanitize.sh
fi
echo "sanitizers: all clean"
