#!/usr/bin/env bash
# Cross-compiles the AArch64 NEON kernels with the scalar ones (Debian: gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross) and checks them against each other under user-mode emulation (qemu-user:
# qemu-aarch64), on any machine. Two builds, three runs:
#   -march=armv8-a                      on a Cortex-A53 (no dotprod: the widening int8 path)
#   -march=armv8-a                      on qemu's "max" CPU (dotprod: sdot, chosen at run time)
#   -march=armv8.2-a+dotprod+fp16       on qemu's "max" CPU (sdot)
# -ffp-contract=off: the scalar reference computes what its source says (GCC would otherwise fuse its
# multiply-adds on AArch64), so that the quantized kernels can be compared bit for bit.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=Sources/CRecurKernels
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "neon_check: $tool not found (scripts/setup.sh --kernels installs it)" >&2
        exit 1
    }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
build() {   # build NAME MARCH
    aarch64-linux-gnu-gcc -O2 -std=gnu11 -static -ffp-contract=off -march="$2" -Wall -Wextra -Werror \
        -I"$src/include" -I"$src" "$src/kernels.c" "$src/neon.c" bench/kernels/neon_check.c -lm -o "$out/$1"
}
build armv8 armv8-a
build dotprod armv8.2-a+dotprod+fp16
status=0
run() {   # run LABEL CPU BINARY PATH
    echo "-- $1"
    qemu-aarch64 -cpu "$2" "$out/$3" "$4" || status=1
}
run "armv8-a build, Cortex-A53 (widening)" cortex-a53 armv8 widening
run "armv8-a build, max CPU (sdot)" max armv8 sdot
run "armv8.2-a+dotprod+fp16 build, max CPU (sdot)" max dotprod sdot
exit $status
