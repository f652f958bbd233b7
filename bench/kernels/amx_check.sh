#!/usr/bin/env bash
# Checks the AMX batch kernel against the scalar kernels: on a portable model of the tile instructions (any
# x86-64 machine), then with the real instructions when this CPU and OS offer them.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/kernels/sources.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
files=("${kernel_sources[@]}")
cc -O1 -std=gnu11 -Wall -Werror -Wno-unused-function -DRK_AMX_CHECK -I"$src/include" -I"$src" "${files[@]}" \
    bench/kernels/amx_check.c -lm -lpthread -o "$out/emulated"
echo "emulated tiles: $("$out/emulated")"
cc -O2 -std=gnu11 -Wall -Werror -Wno-unused-function -I"$src/include" -I"$src" "${files[@]}" bench/kernels/amx_check.c -lm -lpthread -o "$out/native"
echo "native: $("$out/native")"
