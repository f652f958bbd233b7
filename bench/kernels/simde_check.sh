#!/usr/bin/env bash
# Compiles the AVX-512 kernels against SIMDe (apt-get install libsimde-dev) and checks them against the
# scalar kernels. Runs on any x86-64 machine, with or without AVX-512.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/kernels/sources.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -std=gnu11 -DRK_SIMDE_CHECK -I"$src/include" -I"$src" \
    "${kernel_sources[@]}" bench/kernels/simde_check.c -lm -lpthread -o "$out/check"
"$out/check"
