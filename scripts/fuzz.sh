#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time: bash scripts/fuzz.sh [SECONDS_PER_TARGET]
# (default 30). Needs the nightly toolchain; installs cargo-fuzz if it is missing. Each target
# starts from its committed seeds (fuzz/corpus/<target>), the inputs of past findings
# (fuzz/regressions/<target>, which must keep passing) and what earlier runs on this machine
# found (fuzz/generated/<target>, git-ignored); a crash fails the script and leaves the input in
# fuzz/artifacts/<target>/. Set FUZZ_TARGETS="a b" to run only some targets, and FUZZ_JOBS=N to
# run N fuzzing processes per target.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-30}"
targets="${FUZZ_TARGETS:-json_parse response_rewrite request_restore detect audit_verify}"
jobs="${FUZZ_JOBS:-1}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "the nightly toolchain is needed (cargo +nightly): rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
# The same flags for build and run, so `run` does not rebuild. No sanitizer: the gateway has no
# unsafe code, and without ASan the targets run several times faster.
flags=(--sanitizer none)

echo "== building the fuzz targets (nightly)"
start=$(date +%s)
cargo +nightly fuzz build "${flags[@]}"
echo "   built in $(( $(date +%s) - start )) s"

parallel=()
if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi

status=0
for t in $targets; do
    mkdir -p "generated/$t"
    echo "== fuzzing $t for ${secs} s"
    seeds=("corpus/$t")
    if [ -d "regressions/$t" ]; then seeds+=("regressions/$t"); fi
    if ! cargo +nightly fuzz run "${flags[@]}" "$t" "generated/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 "${parallel[@]}" \
        -print_final_stats=1 2>"generated/$t.log"; then
        echo "!! $t found a crash:"
        grep -E "panicked|ERROR|SUMMARY|Test unit written" -A3 "generated/$t.log" | head -40
        status=1
    else
        grep -E "^#[0-9]+.*DONE|^stat::(number_of_executed_units|average_exec_per_sec)" "generated/$t.log" |
            tr '\n' ' ' || true
        echo
    fi
done
exit $status
