#!/usr/bin/env bash
# Compiles the AVX-512 kernels against SIMDe (apt-get install libsimde-dev) and checks them against the
# scalar kernels. Runs on any x86-64 machine, with or without AVX-512.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=Sources/CRecurKernels
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O1 -std=gnu11 -DRK_SIMDE_CHECK -I"$src/include" -I"$src" \
    "$src/avx512.c" "$src/kernels.c" "$src/scalar.c" "$src/elementwise.c" "$src/check.c" "$src/avx2.c" bench/kernels/simde_check.c -lm -o "$out/check"
"$out/check"
