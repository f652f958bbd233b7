#!/usr/bin/env bash
# Runs every test: installs what is missing, builds in release mode, then
#   1. the Swift tests (swift test),
#   2. the AVX-512 kernels against the scalar ones through SIMDe (on any x86-64 machine),
#      the C tests against an installed layout (make install PREFIX=...),
#   3. the Python tests (pytest) against the same library,
#   4. the C tests under valgrind and 60 s of fuzzing (scripts/sanitize.sh --ci).
# Exits non-zero on the first failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/setup.sh --python --kernels

echo "== build (release)"
make build

echo "== swift test"
swift test --scratch-path .build-test 2>&1 | tee /tmp/recur-swift-test.log | grep -E "error|failed|Executed [0-9]+ tests" || true
grep -q "with 0 failures" /tmp/recur-swift-test.log && ! grep -qE "error:|Fatal error" /tmp/recur-swift-test.log \
    || { echo "swift tests failed (log: /tmp/recur-swift-test.log)"; tail -50 /tmp/recur-swift-test.log; exit 1; }

if [ "$(uname -m)" = x86_64 ]; then
    echo "== AVX-512 kernels (SIMDe emulation) against the scalar kernels"
    bench/kernels/simde_check.sh 2>/dev/null
fi

echo "== C tests (installed layout)"
PREFIX=$(mktemp -d /tmp/recur-prefix.XXXXXX)
make install PREFIX="$PREFIX" >/dev/null
tests/c/run.sh "$PREFIX"

echo "== Python tests"
export RECUR_PREFIX="$PREFIX"
export RECUR_LIBRARY="$PREFIX/lib/librecur.so"
export RECUR_CLI="$PREFIX/bin/recur"
export PYTHONPATH="$ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
python3 -m pytest bindings/python/tests -q

echo "== sanitizers (subset: C tests under valgrind, fuzzing for 60 s)"
# The full run (Swift tests under ASan and TSan, C tests under ASan/UBSan/LSan and TSan) is
# scripts/sanitize.sh without --ci; it takes too long to build for every change (docs/ROBUSTNESS.md).
RECUR_RELEASE_SCRATCH=.build scripts/sanitize.sh --ci
