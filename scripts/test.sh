#!/usr/bin/env bash
# Runs every test: installs what is missing, builds in release mode, then
#   1. the Swift tests (swift test),
#   2. the AVX-512 kernels against the scalar ones through SIMDe, and the AArch64 NEON kernels against
#      them under qemu-aarch64 (both on any x86-64 machine; on AArch64 the Swift tests run NEON natively),
#      the C tests against an installed layout (make install PREFIX=...),
#   3. the Python package's C module (recur._step) built against the installed header, and the Python
#      tests (pytest, in the project's virtual environment .venv) against the same library,
#      then the Ray pipelines of examples/ray in local mode on a small slice (their own environment
#      .venv-ray, made by scripts/setup.sh --ray; skipped with the reason only when Ray cannot be installed),
#   4. the C tests under valgrind and 60 s of fuzzing (scripts/sanitize.sh --ci),
#   5. that no stage left files behind in the temporary folder.
# Exits non-zero on the first failing suite. Python comes from .venv (made by scripts/setup.sh from
# $PYTHON, default python3). Scratch files live in one mktemp folder, removed on exit; when a stage
# fails, its logs are kept there and the path is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/recur-test.XXXXXX")
stage=setup
finish() {
    local code=$?
    if [ $code -eq 0 ]; then
        rm -rf "$WORK"
    else
        rm -rf "$WORK/prefix"          # the installed layout (tens of MB); the logs stay
        echo "test: stage '$stage' failed (status $code); logs and scratch files kept in $WORK" >&2
    fi
}
trap finish EXIT
trap "exit 130" INT
trap "exit 143" TERM
# Every stage makes its scratch files under $TMPDIR (mktemp) and removes them itself; the last stage
# checks that it did. (SwiftPM leaves TemporaryDirectory.* folders and _PATH.lock files of its own behind;
# they are not counted, and go with $WORK.)
export TMPDIR=$WORK/tmp
mkdir -p "$TMPDIR"

scripts/setup.sh --python --kernels
PY=$ROOT/.venv/bin/python

stage=build
echo "== build (release)"
make build 2>&1 | tee "$WORK/build.log"
# No warnings from the project's own code (a warning of a dependency or of the static Foundation the
# command links is not ours). Compiler warnings name the file: Sources/, Tests/ or tests/ of this checkout.
check_warnings() {
    local own
    own=$(grep -E "^$ROOT/(Sources|Tests|tests)/[^:]+:[0-9]+:[0-9]+: warning:" "$1" | sort -u || true)
    if [ -n "$own" ]; then
        echo "warnings in the project's code ($2):"
        echo "$own" | sed 's/^/    /'
        exit 1
    fi
}
check_warnings "$WORK/build.log" "release build"

stage="swift test"
echo "== swift test"
LOG=$WORK/swift-test.log
swift test --scratch-path .build-test 2>&1 | tee "$LOG" | grep -E "error|failed|Executed [0-9]+ tests" || true
grep -q "with 0 failures" "$LOG" && ! grep -qE "error:|Fatal error" "$LOG" \
    || { echo "swift tests failed (log: $LOG)"; tail -50 "$LOG"; exit 1; }
check_warnings "$LOG" "test build"

if [ "$(uname -m)" = x86_64 ]; then
    stage="AVX-512 kernels"
    echo "== AVX-512 kernels (SIMDe emulation) against the scalar kernels"
    bench/kernels/simde_check.sh 2>/dev/null
    stage="AMX kernel"
    echo "== AMX batch kernel (a model of the tile instructions, then the real ones where the CPU has them) against the scalar kernels"
    bench/kernels/amx_check.sh
    stage="NEON kernels"
    echo "== NEON kernels (AArch64, cross-compiled, under qemu-aarch64) against the scalar kernels"
    bench/kernels/neon_check.sh
fi

stage="C tests"
echo "== C tests (installed layout)"
PREFIX=$WORK/prefix
make install PREFIX="$PREFIX" >/dev/null
tests/c/run.sh "$PREFIX"

stage="Python module"
echo "== Python C module (recur._step, against the installed header)"
(cd bindings/python && RECUR_INCLUDE="$PREFIX/include" "$PY" -W ignore setup.py -q build_ext --inplace \
    --build-temp "$WORK/python-module")
export RECUR_STEP_MODULE=required      # tests/test_step.py fails, instead of skipping, without it

stage="Python tests"
echo "== Python tests"
export RECUR_PREFIX="$PREFIX"
export RECUR_LIBRARY="$PREFIX/lib/librecur.so"
export RECUR_CLI="$PREFIX/bin/recur"
export PYTHONPATH="$ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m pytest bindings/python/tests -q --basetemp="$WORK/pytest"

stage="Ray pipeline"
echo "== Ray pipeline (examples/ray, local mode, a small slice)"
ray_setup=$(scripts/setup.sh --ray)
if grep -q "^setup: ray unavailable" <<<"$ray_setup"; then
    echo "Ray pipeline: skipped: ${ray_setup#setup: ray unavailable: }"
else
    .venv-ray/bin/python -m pytest examples/ray -q -rs -p no:cacheprovider --basetemp="$WORK/pytest-ray"
fi

stage=sanitizers
echo "== sanitizers (subset: C tests under valgrind, fuzzing for 60 s)"
# The full run (Swift tests under ASan and TSan, C tests under ASan/UBSan/LSan and TSan) is
# scripts/sanitize.sh without --ci; it takes too long to build for every change (docs/ROBUSTNESS.md).
RECUR_RELEASE_SCRATCH=.build scripts/sanitize.sh --ci

stage="scratch files"
echo "== scratch files"
left=$(find "$TMPDIR" -mindepth 1 -maxdepth 1 ! -name 'TemporaryDirectory.*' ! -name '_*.lock' \
       | sed "s|^$TMPDIR/||" | sort | head -20)
if [ -n "$left" ]; then
    echo "left behind in the temporary folder by the stages above:"
    echo "$left" | sed 's/^/    /'
    exit 1
fi
# Scripts of the test command make their scratch paths with mktemp under $TMPDIR, never a fixed /tmp name.
fixed=$(grep -nE '(^|[^-])/tmp/[A-Za-z]' scripts/test.sh scripts/sanitize.sh tests/c/*.sh tests/fuzz/*.sh bench/kernels/*.sh \
        | grep -vE '^[^:]+:[0-9]+:\s*#' | grep -vF '${TMPDIR:-/tmp}' || true)
if [ -n "$fixed" ]; then
    echo "fixed paths under /tmp in the test scripts (use mktemp):"
    echo "$fixed" | sed 's/^/    /'
    exit 1
fi
echo "scratch files: none left behind"
