#!/usr/bin/env bash
# The C tests (test_recur.c, test_threads.c, test_batch.c, test_layers.c) under dynamic checkers:
#   1. AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer: the library built with
#      --sanitize=address (Swift) and -fsanitize=undefined (the C kernels) into .build-asan (the same
#      configuration scripts/sanitize.sh uses for the Swift tests, so one build serves both), the test
#      programs with clang -fsanitize=address,undefined; leak detection on.
#   2. ThreadSanitizer: test_threads.c and test_batch.c against the library built with --sanitize=thread
#      (.build-tsan).
#   3. Valgrind memcheck on the normal release library (make build SCRATCH=$RECUR_RELEASE_SCRATCH, by
#      default .build-robust; scripts/test.sh passes the .build it has just built): both
#      programs with --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1, i.e. no
#      invalid access and zero definitely-lost bytes.
# Usage: tests/c/sanitize.sh [asan|tsan|valgrind ...]   (default: all three)
# Last line: "c-sanitize: N passed, M failed"; exit 1 when M > 0. Scratch files and logs are made under
# $TMPDIR (mktemp) and removed on exit; when a stage fails, its logs are kept and their folder is printed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=(asan tsan valgrind)
CLANG=${CLANG:-clang}
SWIFTLIB=$(dirname "$(dirname "$(command -v swift)")")/lib/swift/linux
WORK=$(mktemp -d "${TMPDIR:-/tmp}/recur-c-sanitize.XXXXXX")
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/recur-c-sanitize-logs.XXXXXX")
finish() {
    local code=$?
    rm -rf "$WORK"
    if [ $code -eq 0 ]; then rm -rf "$LOGS"; else echo "c-sanitize: logs kept in $LOGS"; fi
}
trap finish EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "  ok: $*"; }
bad() { failed=$((failed + 1)); echo "  FAILED: $*"; }

# A library folder where the build's libRecurC.so is found under its SONAME librecur.so.
libdir() {   # libdir NAME SO
    mkdir -p "$WORK/$1"
    ln -sf "$ROOT/$2" "$WORK/$1/librecur.so"
    echo "$WORK/$1"
}

# Runs one test program; its summary line must report no failures and the checker must stay silent.
run_test() {   # run_test LABEL LOG PROGRAM ARGS...
    local label=$1 log=$2; shift 2
    "$@" >"$log" 2>&1
    local code=$?
    if [ $code -eq 0 ] && ! grep -qE "ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:" "$log"; then
        ok "$label ($(grep -E '^test_[a-z]+: ' "$log" | tail -1))"
    else
        bad "$label (status $code, log $log)"
        grep -E -A25 "ERROR: |WARNING: ThreadSanitizer|runtime error:|FAIL" "$log" | head -60
    fi
}

# Models of the tests (the release command).
echo "== release build and models"
RELEASE=${RECUR_RELEASE_SCRATCH:-.build-robust}
make build SCRATCH="$RELEASE" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" | tail -20; echo "c-sanitize: build failed"; exit 1; }
RECUR=$RELEASE/release/recur
"$RECUR" create --out "$WORK/a.recur" --cell gru --layers 2 --hidden 48 --embedding 16 --seed 3 >/dev/null \
    && "$RECUR" create --out "$WORK/b.recur" --cell lstm --hidden 32 --embedding 8 --seed 4 >/dev/null \
    && "$RECUR" create --out "$WORK/c.recur" --cell peephole-lstm --hidden 20 --embedding 6 --seed 5 >/dev/null \
    && "$RECUR" quantize "$WORK/c.recur" "$WORK/c-q4.recur" --type q4 >/dev/null \
    && "$RECUR" create --task classify --out "$WORK/cls.recur" --cell lstm --hidden 8 --embedding 4 --seed 6 >/dev/null \
    && "$RECUR" create --task tag --out "$WORK/tag.recur" --cell gru --hidden 8 --embedding 4 --seed 7 >/dev/null \
    && "$RECUR" create --task seq2seq --out "$WORK/s2s.recur" --cell gru --layers 2 --hidden 8 --embedding 4 --seed 8 >/dev/null \
    && "$RECUR" create --task seq2seq --attention general --input-feeding --out "$WORK/att.recur" --cell gru --hidden 8 --embedding 4 --seed 14 >/dev/null \
    && "$RECUR" create --task seq2seq --attention additive --combine none --bidirectional --out "$WORK/att-bidi.recur" --cell lstm --hidden 6 --embedding 4 --seed 15 >/dev/null \
    && "$RECUR" create --task regress --frame-size 12 --outputs 3 --cell lstm --hidden 8 --out "$WORK/frames.recur" --seed 9 >/dev/null \
    && "$RECUR" quantize "$WORK/a.recur" "$WORK/a-int8.recur" --type int8 >/dev/null \
    && "$RECUR" quantize "$WORK/c.recur" "$WORK/c-int4.recur" --type int4 >/dev/null \
    && "$RECUR" create --out "$WORK/lstm2.recur" --cell peephole-lstm --layers 2 --hidden 12 --embedding 6 --seed 10 >/dev/null \
    || { echo "c-sanitize: recur create failed"; exit 1; }
# test_batch's models: another model, a frame model, a classifier, a tagger, then generators (f32, int8, int4).
BATCH_MODELS=("$WORK/b.recur" "$WORK/frames.recur" "$WORK/cls.recur" "$WORK/tag.recur" "$WORK/a.recur"
              "$WORK/a-int8.recur" "$WORK/c-int4.recur")
# test_threads' models: generators (f32, q4) and whole-sequence models with texts of their vocabularies.
THREAD_MODELS=("$WORK/a.recur" "$WORK/c-q4.recur" --text "w2 w3 w5 w7 w11" "$WORK/cls.recur" "$WORK/tag.recur"
               --text "s3 s5 s4 s7" "$WORK/s2s.recur")
# test_attention's models: attention translators (unidirectional GRU; bidirectional LSTM), one without, a generator.
ATTENTION_MODELS=("$WORK/att.recur" "$WORK/att-bidi.recur" "$WORK/s2s.recur" "$WORK/a.recur")
# test_layers' models: the shipped generator, BiLSTM classifier and BiGRU tagger, a stacked LSTM, a frame model.
LAYER_MODELS=("$ROOT/models/alice.recur" "$ROOT/models/sentiment.recur" "$ROOT/models/pos.recur" "$WORK/lstm2.recur"
              "$WORK/frames.recur")

for stage in "${STAGES[@]}"; do
    case $stage in
    asan)
        echo "== ASan + UBSan + LSan"
        swift build --scratch-path .build-asan --build-tests --sanitize=address \
            -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined 2>&1 | grep -E "error:" && { bad "asan build"; continue; }
        swift build --scratch-path .build-asan --product RecurC --sanitize=address \
            -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined 2>&1 | grep -E "error:" && { bad "asan library build"; continue; }
        L=$(libdir asan .build-asan/debug/libRecurC.so)
        for t in test_recur test_threads test_batch test_layers test_attention; do
            "$CLANG" -fuse-ld=lld -std=c99 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
                -Iinclude "$HERE/$t.c" -o "$WORK/$t-asan" -L"$L" -lrecur -Wl,-rpath,"$L" -Wl,-rpath,"$SWIFTLIB" -lm -pthread \
                || { bad "$t does not compile with ASan"; continue; }
        done
        export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        export LSAN_OPTIONS=suppressions="$HERE/lsan.supp":print_suppressions=0
        run_test "test_recur under ASan+UBSan+LSan" "$LOGS/asan-test_recur.log" "$WORK/test_recur-asan" "$WORK/a.recur" "$WORK/b.recur"
        run_test "test_threads under ASan+UBSan+LSan" "$LOGS/asan-test_threads.log" "$WORK/test_threads-asan" "${THREAD_MODELS[@]}"
        run_test "test_batch under ASan+UBSan+LSan" "$LOGS/asan-test_batch.log" "$WORK/test_batch-asan" "${BATCH_MODELS[@]}"
        run_test "test_layers under ASan+UBSan+LSan" "$LOGS/asan-test_layers.log" "$WORK/test_layers-asan" "${LAYER_MODELS[@]}"
        run_test "test_attention under ASan+UBSan+LSan" "$LOGS/asan-test_attention.log" "$WORK/test_attention-asan" "${ATTENTION_MODELS[@]}"
        unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
        ;;
    tsan)
        echo "== TSan"
        swift build --scratch-path .build-tsan --build-tests --sanitize=thread 2>&1 | grep -E "error:" && { bad "tsan build"; continue; }
        swift build --scratch-path .build-tsan --product RecurC --sanitize=thread 2>&1 | grep -E "error:" && { bad "tsan library build"; continue; }
        L=$(libdir tsan .build-tsan/debug/libRecurC.so)
        # The Swift toolchain's TSan runtime intercepts libdispatch, so it links libdispatch and BlocksRuntime.
        "$CLANG" -fuse-ld=lld -std=c99 -g -O1 -fsanitize=thread -Iinclude "$HERE/test_threads.c" -o "$WORK/test_threads-tsan" \
            -L"$L" -lrecur -L"$SWIFTLIB" -ldispatch -lBlocksRuntime -Wl,-rpath,"$L" -Wl,-rpath,"$SWIFTLIB" -pthread \
            || { bad "test_threads does not compile with TSan"; continue; }
        TSAN_OPTIONS=halt_on_error=1 run_test "test_threads under TSan" "$LOGS/tsan-test_threads.log" \
            "$WORK/test_threads-tsan" "${THREAD_MODELS[@]}"
        # test_batch runs two batched calls on disjoint states on two threads at once.
        "$CLANG" -fuse-ld=lld -std=c99 -g -O1 -fsanitize=thread -Iinclude "$HERE/test_batch.c" -o "$WORK/test_batch-tsan" \
            -L"$L" -lrecur -L"$SWIFTLIB" -ldispatch -lBlocksRuntime -Wl,-rpath,"$L" -Wl,-rpath,"$SWIFTLIB" -pthread \
            || { bad "test_batch does not compile with TSan"; continue; }
        TSAN_OPTIONS=halt_on_error=1 run_test "test_batch under TSan" "$LOGS/tsan-test_batch.log" \
            "$WORK/test_batch-tsan" "${BATCH_MODELS[@]}"
        ;;
    valgrind)
        echo "== valgrind memcheck (release library)"
        command -v valgrind >/dev/null || { bad "valgrind is not installed (apt-get install valgrind)"; continue; }
        # A copy without debug information: this valgrind cannot read the DWARF 5 of the Swift toolchain
        # (symbols stay, so reports still name functions).
        L="$WORK/release"
        mkdir -p "$L"
        objcopy --strip-debug "$RELEASE/release/libRecurC.so" "$L/librecur.so"
        for t in test_recur test_threads test_batch test_layers test_attention; do
            cc -std=c99 -g -O1 -Iinclude "$HERE/$t.c" -o "$WORK/$t" -L"$L" -lrecur -Wl,-rpath,"$L" -lm -pthread \
                || { bad "$t does not compile"; continue; }
        done
        VG=(valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 --show-leak-kinds=definite
            --suppressions="$HERE/valgrind.supp")
        RECUR_THREADS=1 run_test "test_recur under valgrind" "$LOGS/valgrind-test_recur.log" \
            "${VG[@]}" "$WORK/test_recur" "$WORK/a.recur" "$WORK/b.recur"
        RECUR_THREADS=1 run_test "test_threads under valgrind" "$LOGS/valgrind-test_threads.log" \
            "${VG[@]}" "$WORK/test_threads" "$WORK/a.recur" --text "w2 w3 w5 w7 w11" "$WORK/cls.recur" --text "s3 s5 s4 s7" "$WORK/s2s.recur"
        RECUR_THREADS=1 run_test "test_batch under valgrind" "$LOGS/valgrind-test_batch.log" \
            "${VG[@]}" "$WORK/test_batch" "${BATCH_MODELS[@]}"
        RECUR_THREADS=1 run_test "test_layers under valgrind" "$LOGS/valgrind-test_layers.log" \
            "${VG[@]}" "$WORK/test_layers" "${LAYER_MODELS[@]}"
        RECUR_THREADS=1 run_test "test_attention under valgrind" "$LOGS/valgrind-test_attention.log" \
            "${VG[@]}" "$WORK/test_attention" "${ATTENTION_MODELS[@]}"
        for t in test_recur test_threads test_batch test_layers test_attention; do
            grep -E "definitely lost|ERROR SUMMARY" "$LOGS/valgrind-$t.log" | sed 's/^==[0-9]*==/   /'
        done
        ;;
    *) echo "unknown stage '$stage' (asan, tsan, valgrind)"; exit 2 ;;
    esac
done
echo "c-sanitize: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
