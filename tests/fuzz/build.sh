#!/usr/bin/env bash
# Builds the fuzz targets .build-fuzz/fuzz_recur and .build-fuzz/fuzz_state:
#   - the library (targets CRecurKernels, Recur, RecurC) in release mode into the scratch path .build-fuzz,
#     Swift code with AddressSanitizer and libFuzzer's coverage (inline 8-bit edge counters, PC table,
#     comparison tracing), the C kernels with AddressSanitizer, UndefinedBehaviorSanitizer and the same
#     coverage. The library is a shared object without libFuzzer's main; the sanitizer and fuzzer
#     runtimes come from the executable.
#   - tests/fuzz/fuzz_recur.c with clang -fsanitize=fuzzer,address,undefined, linked to that library.
# Usage: tests/fuzz/build.sh            (prints the build time; CLANG overrides the compiler)
set -euo pipefail
cd "$(dirname "$0")/../.."
SCRATCH=.build-fuzz
CLANG=${CLANG:-clang}
COVERAGE=inline-8bit-counters,pc-table,trace-cmp
start=$(date +%s)

swift build -c release --scratch-path "$SCRATCH" --product RecurC \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,$COVERAGE \
    -Xcc -fsanitize=address,undefined -Xcc -fno-sanitize-recover=undefined -Xcc -fsanitize-coverage=$COVERAGE \
    2>&1 | grep -E "error:|Build of product" || true
echo
LIB="$SCRATCH/release/libRecurC.so"
[ -f "$LIB" ] || { echo "fuzz build: $LIB was not built" >&2; exit 1; }

"$CLANG" -g -O1 -std=c11 -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fuse-ld=lld -Iinclude tests/fuzz/fuzz_recur.c -o "$SCRATCH/fuzz_recur" \
    -L"$SCRATCH/release" -lRecurC -Wl,-rpath,"$(pwd)/$SCRATCH/release" -Wl,-rpath,/opt/swift/usr/lib/swift/linux
"$CLANG" -g -O1 -std=c11 -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fuse-ld=lld -Iinclude tests/fuzz/fuzz_state.c -o "$SCRATCH/fuzz_state" \
    -L"$SCRATCH/release" -lRecurC -Wl,-rpath,"$(pwd)/$SCRATCH/release" -Wl,-rpath,/opt/swift/usr/lib/swift/linux
echo "fuzz build: $SCRATCH/fuzz_recur and $SCRATCH/fuzz_state in $(( $(date +%s) - start )) s"
