#!/usr/bin/env bash
# Builds and runs bench/kernels/pool_stress.c, plainly and under ThreadSanitizer (clang).
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/kernels/sources.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
files=("${kernel_sources[@]}" bench/kernels/pool_stress.c)
cc=${CC:-clang}
$cc -O2 -I"$src/include" -I"$src" "${files[@]}" -lm -lpthread -o "$out/stress"
"$out/stress"
tsan=${TSAN_CC:-gcc}
if $tsan -O1 -g -fsanitize=thread -I"$src/include" -I"$src" "${files[@]}" -lm -lpthread -o "$out/stress-tsan" 2>/dev/null; then
    "$out/stress-tsan"
else
    echo "(ThreadSanitizer not available with $tsan; skipped)"
fi
