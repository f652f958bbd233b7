#!/usr/bin/env bash
# Runs the fuzz target built by tests/fuzz/build.sh.
#   tests/fuzz/run.sh [SECONDS [STATE_SECONDS]]
#                                  replays tests/fuzz/corpus and tests/fuzz/regressions, then fuzzes
#                                  fuzz_recur for SECONDS (default 60) of wall time and the saved-state
#                                  target fuzz_state for STATE_SECONDS (default half of SECONDS); 0 only replays.
# New inputs go to .build-fuzz/corpus (kept between runs; the committed corpus is only read); a crash
# is written to .build-fuzz/artifacts/ and makes the script exit non-zero. Add each crashing input to
# tests/fuzz/regressions/ once the library is fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-60}
STATE_SECONDS=${2:-$(( SECONDS_TO_RUN / 2 ))}
FUZZ=.build-fuzz/fuzz_recur
[ -x "$FUZZ" ] || { echo "run tests/fuzz/build.sh first" >&2; exit 1; }
mkdir -p .build-fuzz/corpus .build-fuzz/artifacts
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Limits: no single allocation above 80 MiB (the largest the library may make for a small file is the
# 64 MiB input-table budget, docs/ROBUSTNESS.md); 10 s per input; new inputs up to 32 KiB (the replay
# takes files of any size). The dictionary holds the format's magic numbers, keys and names.
OPTS=(-malloc_limit_mb=80 -rss_limit_mb=2048 -timeout=10 -artifact_prefix=.build-fuzz/artifacts/ -print_final_stats=1)

echo "== fuzz: replaying the committed corpus and the regressions"
"$FUZZ" "${OPTS[@]}" -runs=0 tests/fuzz/corpus tests/fuzz/regressions >.build-fuzz/replay.log 2>&1 \
    || { tail -60 .build-fuzz/replay.log; echo "fuzz: replay FAILED (log: .build-fuzz/replay.log)"; exit 1; }
grep -E "INITED|DONE" .build-fuzz/replay.log || true
if [ "$SECONDS_TO_RUN" -gt 0 ]; then
    echo "== fuzz: $SECONDS_TO_RUN s"
    "$FUZZ" "${OPTS[@]}" -max_len=32768 -dict=tests/fuzz/recur.dict -max_total_time="$SECONDS_TO_RUN" \
        .build-fuzz/corpus tests/fuzz/corpus tests/fuzz/regressions \
        >.build-fuzz/last-run.log 2>&1 || { tail -60 .build-fuzz/last-run.log; echo "fuzz: FAILED (log: .build-fuzz/last-run.log)"; exit 1; }
    grep -E "^#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb" .build-fuzz/last-run.log || true
fi
if [ "$STATE_SECONDS" -gt 0 ]; then
    echo "== fuzz: saved states, $STATE_SECONDS s"
    mkdir -p .build-fuzz/corpus-state
    .build-fuzz/fuzz_state "${OPTS[@]}" -max_len=4096 -max_total_time="$STATE_SECONDS" .build-fuzz/corpus-state \
        >.build-fuzz/last-state-run.log 2>&1 || { tail -60 .build-fuzz/last-state-run.log; echo "fuzz: saved states FAILED (log: .build-fuzz/last-state-run.log)"; exit 1; }
    grep -E "^#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb" .build-fuzz/last-state-run.log || true
fi
echo "fuzz: clean"
