#!/usr/bin/env bash
# Checks the AMX batch kernel against the scalar kernels: on a portable model of the tile instructions (any
# x86-64 machine), then with the real instructions when this CPU and OS offer them.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=Sources/CRecurKernels
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
files=("$src/amx.c" "$src/kernels.c" "$src/scalar.c" "$src/elementwise.c" "$src/check.c" "$src/avx2.c" "$src/avx512.c")
cc -O1 -std=gnu11 -Wall -Werror -Wno-unused-function -DRK_AMX_CHECK -I"$src/include" -I"$src" "${files[@]}" \
    bench/kernels/amx_check.c -lm -o "$out/emulated"
echo "emulated tiles: $("$out/emulated")"
cc -O2 -std=gnu11 -Wall -Werror -Wno-unused-function -I"$src/include" -I"$src" "${files[@]}" bench/kernels/amx_check.c -lm -o "$out/native"
echo "native: $("$out/native")"
