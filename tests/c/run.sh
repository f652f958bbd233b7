#!/usr/bin/env bash
# The C tests, against an installed layout (`make install PREFIX=...`):
#   - the header compiles alone as C99 and C++ with -Wall -Wextra -Werror -pedantic;
#   - the library: SONAME librecur.so, no Swift runtime or Foundation needed (ldd lists only the
#     libraries the README names), exports exactly the functions the header declares;
#   - the installed program and library carry no debug information (make install strips them; with
#     RECUR_STRIPPED=0, for `make install STRIP=0`, they must carry it);
#   - test_recur.c (every function, error paths, numerics) built with pkg-config and run;
#   - test_tasks.c, test_attention.c, test_frames.c, test_batch.c (once per kernel level) and test_layers.c (the layer
#     calls, on the shipped models and made ones) likewise;
#   - examples/c/generate.c built with pkg-config: same text as `recur generate`, errors exit non-zero.
# Usage: tests/c/run.sh PREFIX        Last line: "c-tests: N passed, M failed"; exit 1 when M > 0.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 PREFIX   (an installed layout: PREFIX/bin/recur, PREFIX/lib/librecur.so, ...)" >&2
    exit 2
fi
PREFIX=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CC=${CC:-cc}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/recur-c-tests.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
STRICT=(-Wall -Wextra -Werror -pedantic)

passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() {   # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@" >"$WORK/out.log" 2>&1; then ok; else bad "$what"; sed 's/^/    /' "$WORK/out.log" >&2; fi
}

for f in bin/recur lib/librecur.so include/recur.h lib/pkgconfig/recur.pc; do
    [ -e "$PREFIX/$f" ] || { echo "c-tests: $PREFIX/$f is missing; run make install PREFIX=$PREFIX" >&2; exit 1; }
done
LIB="$PREFIX/lib/librecur.so"
RECUR="$PREFIX/bin/recur"

# --- the header on its own -------------------------------------------------------------------------
echo '#include <recur.h>' >"$WORK/h.c"
echo '#include <recur.h>' >"$WORK/h.cpp"
check "header as C99 (cc)" "$CC" -std=c99 "${STRICT[@]}" -I"$PREFIX/include" -fsyntax-only "$WORK/h.c"
for cxx in g++ clang++; do
    if command -v "$cxx" >/dev/null; then
        check "header as C++11 ($cxx)" "$cxx" -std=c++11 "${STRICT[@]}" -I"$PREFIX/include" -fsyntax-only "$WORK/h.cpp"
    fi
done
if command -v clang >/dev/null; then
    check "header as C99 (clang)" clang -std=c99 "${STRICT[@]}" -I"$PREFIX/include" -fsyntax-only "$WORK/h.c"
fi

# --- the library -----------------------------------------------------------------------------------
check "SONAME is librecur.so" bash -c "readelf -d '$LIB' | grep -q 'Library soname: \[librecur.so\]'"
check "no Swift runtime needed (ldd)" bash -c "ldd '$LIB' >'$WORK/ldd.txt' && ! grep -qiE 'libswift|libFoundation|libdispatch' '$WORK/ldd.txt'"
# The README's list (section "Install, and use from C"): libc, libm, libstdc++, libgcc_s, OpenBLAS,
# which brings libgfortran and libquadmath, and libdeflate; the loader and the vDSO; libpthread, libdl
# and librt where glibc still ships them apart.
check "ldd lists only the libraries the README names" bash -c "! awk '{print \$1}' '$WORK/ldd.txt' | grep -vE \
    '^(linux-vdso|/lib64/ld-linux-x86-64|/lib/ld-linux-aarch64|ld-linux[-a-z0-9_]*)\.so|^lib(c|m|stdc\+\+|gcc_s|openblas|gfortran|quadmath|deflate|pthread|dl|rt)\.so'"
check "no Foundation in the runtime or the C ABI sources" \
    bash -c "! grep -rqE '^\s*import\s+Foundation' '$ROOT/Sources/Recur' '$ROOT/Sources/RecurC'"
# Foundation's type names (in Swift's metadata, which stripping keeps) and its ICU data.
check "no Foundation linked into the library" bash -c "! grep -qaE '10Foundation|20FoundationEssentials|icudt[0-9]' '$LIB'"
for f in "$LIB" "$RECUR"; do
    if [ "${RECUR_STRIPPED:-1}" = 0 ]; then
        check "$(basename "$f") installed with its debug information (STRIP=0)" \
            bash -c "readelf -S '$f' | grep -qF .debug_info"
    else
        check "$(basename "$f") installed without debug information" \
            bash -c "! readelf -S '$f' | grep -qE '\.debug_|\.symtab'"
    fi
done
check "only recur_* functions exported" bash -c "! nm -D --defined-only '$LIB' | awk '\$2 == \"T\"' | grep -v ' recur_'"
# Exported recur_* functions == functions declared in the header.
nm -D --defined-only "$LIB" | awk '$2 == "T" && $3 ~ /^recur_/ {print $3}' | sort >"$WORK/exported.txt"
grep -oE 'recur_[a-z_]+\(' "$PREFIX/include/recur.h" | tr -d '(' | sort -u >"$WORK/declared.txt"
check "exports match the header" diff "$WORK/declared.txt" "$WORK/exported.txt"

# --- models ----------------------------------------------------------------------------------------
"$RECUR" create --out "$WORK/a.recur" --cell gru --layers 2 --hidden 48 --embedding 16 --seed 3 >/dev/null \
    && "$RECUR" create --out "$WORK/b.recur" --cell lstm --hidden 32 --embedding 8 --seed 4 >/dev/null \
    || { echo "c-tests: recur create failed" >&2; exit 1; }

# --- the test programs -----------------------------------------------------------------------------
"$RECUR" create --task classify --out "$WORK/classify.recur" --cell lstm --hidden 12 --embedding 6 --seed 5 >/dev/null \
    && "$RECUR" create --task tag --out "$WORK/tag.recur" --cell gru --hidden 10 --embedding 6 --seed 6 >/dev/null \
    && "$RECUR" create --task seq2seq --out "$WORK/seq2seq.recur" --cell gru --layers 2 --hidden 12 --embedding 6 --seed 7 >/dev/null \
    || { echo "c-tests: recur create failed" >&2; exit 1; }

# run_program NAME ARGS...: compiles NAME.c strictly against the installed layout, runs it, adds its counts.
run_program() {
    local name=$1
    shift
    if "$CC" -std=c99 "${STRICT[@]}" -O1 -g "$HERE/$name.c" -o "$WORK/$name" \
            $(pkg-config --cflags --libs recur) -Wl,-rpath,"$PREFIX/lib" -lm -pthread 2>"$WORK/cc.log"; then
        "$WORK/$name" "$@" >"$WORK/test.log" 2>"$WORK/test.err"
        local code=$? line p f
        cat "$WORK/test.err" >&2
        line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed\$" "$WORK/test.log" | tail -1)
        if [ -n "$line" ]; then
            p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')
            f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')
            passed=$((passed + p))
            failed=$((failed + f))
            echo "$line"
        fi
        if [ -z "$line" ]; then
            bad "$name stopped before its summary (status $code)"
            tail -5 "$WORK/test.log" >&2
        elif [ "$code" -ne 0 ] && [ "$f" -eq 0 ]; then
            bad "$name exited with status $code"
        fi
    else
        bad "$name.c does not compile"
        cat "$WORK/cc.log" >&2
    fi
}

run_program test_recur "$WORK/a.recur" "$WORK/b.recur"
run_program test_tasks "$WORK/classify.recur" "$WORK/tag.recur" "$WORK/seq2seq.recur" "$WORK/a.recur"
"$RECUR" create --task seq2seq --attention general --input-feeding --out "$WORK/attention.recur" --cell gru \
        --hidden 10 --embedding 6 --seed 12 >/dev/null \
    && "$RECUR" create --task seq2seq --attention additive --combine none --bidirectional --cell lstm \
        --out "$WORK/attention-bidi.recur" --hidden 6 --embedding 5 --seed 13 >/dev/null \
    || { echo "c-tests: recur create --attention failed" >&2; exit 1; }
run_program test_attention "$WORK/attention.recur" "$WORK/attention-bidi.recur" "$WORK/seq2seq.recur" "$WORK/a.recur"
"$RECUR" create --task regress --frame-size 12 --outputs 3 --normalized --cell lstm --layers 2 --hidden 16 \
        --out "$WORK/regress.recur" --seed 8 >/dev/null \
    && "$RECUR" create --task classify --frame-size 5 --bidirectional --cell gru --hidden 8 \
        --out "$WORK/frames-classify.recur" --seed 9 >/dev/null \
    && "$RECUR" create --task tag --frame-size 12 --cell gru --hidden 10 --out "$WORK/frames-tag.recur" --seed 10 >/dev/null \
    || { echo "c-tests: recur create --frame-size failed" >&2; exit 1; }
run_program test_frames "$WORK/regress.recur" "$WORK/frames-classify.recur" "$WORK/a.recur"

# --- the batched calls: every dtype, at every kernel level -------------------------------------------
# Generators of each dtype (two layers, so that the upper layer's input product and the head go through
# the batched products; GRU and peephole LSTM); RECUR_KERNELS is read once per process, so the program runs
# once per level (unset: the best the CPU has; scalar; avx2, a cap that changes nothing below it).
"$RECUR" create --out "$WORK/batch-gru.recur" --cell gru --layers 2 --hidden 40 --embedding 12 --seed 11 >/dev/null \
    && "$RECUR" create --out "$WORK/batch-lstm.recur" --cell peephole-lstm --layers 2 --hidden 24 --embedding 8 --seed 12 >/dev/null \
    || { echo "c-tests: recur create (batch models) failed" >&2; exit 1; }
batch_models=("$WORK/batch-gru.recur" "$WORK/batch-lstm.recur")
for t in f16 int8 q8r q8 q4 int4; do
    "$RECUR" quantize "$WORK/batch-gru.recur" "$WORK/batch-gru-$t.recur" --type "$t" >/dev/null \
        && "$RECUR" quantize "$WORK/batch-lstm.recur" "$WORK/batch-lstm-$t.recur" --type "$t" >/dev/null \
        || { echo "c-tests: recur quantize --type $t failed" >&2; exit 1; }
    batch_models+=("$WORK/batch-gru-$t.recur" "$WORK/batch-lstm-$t.recur")
done
batch_args=("$WORK/b.recur" "$WORK/regress.recur" "$WORK/classify.recur" "$WORK/tag.recur" "${batch_models[@]}")
run_program test_batch "${batch_args[@]}"
RECUR_KERNELS=scalar run_program test_batch "${batch_args[@]}"
[ "$(uname -m)" = x86_64 ] && RECUR_KERNELS=avx2 run_program test_batch "${batch_args[@]}"

# --- the layer calls: the shipped generator, BiLSTM classifier and BiGRU tagger, a stacked peephole LSTM,
# a frame model -------------------------------------------------------------------------------------
layer_args=("$ROOT/models/alice.recur" "$ROOT/models/sentiment.recur" "$ROOT/models/pos.recur"
            "$WORK/batch-lstm.recur" "$WORK/regress.recur")
run_program test_layers "${layer_args[@]}"

# --- the example -----------------------------------------------------------------------------------
if "$CC" -std=c99 "${STRICT[@]}" "$ROOT/examples/c/generate.c" -o "$WORK/generate" \
        $(pkg-config --cflags --libs recur) -Wl,-rpath,"$PREFIX/lib" 2>"$WORK/cc.log"; then
    ok
    for args in "Alice|150|0.8|42" "The |80|0|1" "Down|60|1.3|7"; do
        IFS='|' read -r prompt tokens temp seed <<<"$args"
        "$WORK/generate" "$WORK/a.recur" "$prompt" "$tokens" "$temp" "$seed" >"$WORK/ex.txt" 2>"$WORK/ex.err"
        "$RECUR" generate "$WORK/a.recur" --prompt "$prompt" --tokens "$tokens" --temperature "$temp" \
            --seed "$seed" --no-prompt >"$WORK/cli.txt" 2>"$WORK/cli.err"
        if cmp -s "$WORK/ex.txt" "$WORK/cli.txt" && [ "$(wc -c <"$WORK/ex.txt")" -gt "$tokens" ]; then
            ok
        else
            bad "example and CLI differ for prompt '$prompt', $tokens tokens, temperature $temp, seed $seed"
            diff "$WORK/ex.txt" "$WORK/cli.txt" | head -5 >&2
        fi
    done
    if "$WORK/generate" "$WORK/missing.recur" "Alice" 5 >"$WORK/ex.txt" 2>"$WORK/ex.err"; then
        bad "example succeeded on a missing model"
    elif grep -q "missing.recur" "$WORK/ex.err"; then
        ok
    else
        bad "example's error does not carry the library's message"; cat "$WORK/ex.err" >&2
    fi
else
    bad "examples/c/generate.c does not compile"
    cat "$WORK/cc.log" >&2
fi

# --- the streaming example: frames from stdin, a prediction per frame, the same lines as `recur predict`
if "$CC" -std=c99 "${STRICT[@]}" "$ROOT/examples/c/stream_frames.c" -o "$WORK/stream_frames" \
        $(pkg-config --cflags --libs recur) -Wl,-rpath,"$PREFIX/lib" 2>"$WORK/cc.log"; then
    ok
    awk 'BEGIN { srand(5); print "f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12";
                 for (t = 0; t < 30; t++) { if (t == 20) print ""; line = "";
                   for (j = 0; j < 12; j++) line = line (j ? "," : "") sprintf("%.4f", 4 * rand() - 2); print line } }' \
        >"$WORK/frames.csv"
    for model in regress frames-tag; do
        "$WORK/stream_frames" "$WORK/$model.recur" <"$WORK/frames.csv" >"$WORK/ex.txt" 2>"$WORK/ex.err"
        "$RECUR" predict "$WORK/$model.recur" --csv "$WORK/frames.csv" >"$WORK/cli.txt" 2>"$WORK/cli.err"
        if cmp -s "$WORK/ex.txt" "$WORK/cli.txt" && [ "$(wc -l <"$WORK/ex.txt")" -eq 30 ]; then
            ok
        else
            bad "stream_frames and recur predict differ for $model"
            diff "$WORK/ex.txt" "$WORK/cli.txt" | head -5 >&2
        fi
    done
    printf '1,2,3,4,5,6,7,8,9,10,11,12\n1,2,3,nan,5,6,7,8,9,10,11,12\n' >"$WORK/nan.csv"
    if "$WORK/stream_frames" "$WORK/regress.recur" "$WORK/nan.csv" >"$WORK/ex.txt" 2>"$WORK/ex.err"; then
        bad "stream_frames accepted a NaN frame"
    elif grep -q "line 2: .*must be finite" "$WORK/ex.err" && [ "$(wc -l <"$WORK/ex.txt")" -eq 1 ]; then
        ok
    else
        bad "stream_frames' NaN error does not carry the library's message"; cat "$WORK/ex.err" >&2
    fi
else
    bad "examples/c/stream_frames.c does not compile"
    cat "$WORK/cc.log" >&2
fi

echo "c-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
