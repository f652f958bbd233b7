#!/usr/bin/env bash
# Cross-compiles the AArch64 NEON kernels with the scalar ones and checks them against each other under
# user-mode emulation, on any machine (Debian: gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user;
# scripts/setup.sh --kernels). Static binaries, so qemu-aarch64 needs no AArch64 libraries. Five runs:
#   gcc -march=armv8-a -ffp-contract=off     on a Cortex-A53 (no dotprod: the widening int8 path)
#                                            and on qemu's "max" CPU (dotprod: sdot, chosen at run time)
#   gcc -march=armv8.2-a+dotprod+fp16        on "max" (sdot; gcc's default contraction, -ffp-contract=fast)
#   clang (the Swift toolchain's, which builds the package) with its defaults (-march=armv8-a,
#   -ffp-contract=on; its target("dotprod") functions), on a Cortex-A53 and on "max"
# Each prints "N passed, 0 failed"; the script exits non-zero when any check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/kernels/sources.sh
clang=clang
if command -v swift >/dev/null 2>&1; then
    swift_bin=$(dirname "$(readlink -f "$(command -v swift)")")
    [ -x "$swift_bin/clang" ] && clang=$swift_bin/clang
fi
for tool in aarch64-linux-gnu-gcc qemu-aarch64 "$clang"; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "neon_check: $tool not found (scripts/setup.sh --kernels installs the cross compiler and qemu;" \
            "clang comes with the Swift toolchain)" >&2
        exit 1
    }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
files=("${kernel_sources[@]}" bench/kernels/neon_check.c)
flags=(-O2 -std=gnu11 -static -Wall -Wextra -Werror -I"$src/include" -I"$src")
aarch64-linux-gnu-gcc "${flags[@]}" -march=armv8-a -ffp-contract=off "${files[@]}" -lm -lpthread -o "$out/gcc-armv8"
aarch64-linux-gnu-gcc "${flags[@]}" -march=armv8.2-a+dotprod+fp16 "${files[@]}" -lm -lpthread -o "$out/gcc-dotprod"
"$clang" --target=aarch64-linux-gnu "${flags[@]}" "${files[@]}" -lm -lpthread -o "$out/clang"
status=0
run() {   # run LABEL CPU BINARY PATH
    echo "-- $1"
    qemu-aarch64 -cpu "$2" "$out/$3" "$4" || status=1
}
run "gcc, armv8-a, Cortex-A53: widening multiplies" cortex-a53 gcc-armv8 widening
run "gcc, armv8-a, max CPU: sdot" max gcc-armv8 sdot
run "gcc, armv8.2-a+dotprod+fp16, max CPU: sdot" max gcc-dotprod sdot
run "clang, armv8-a, Cortex-A53: widening multiplies" cortex-a53 clang widening
run "clang, armv8-a, max CPU: sdot" max clang sdot
exit $status
