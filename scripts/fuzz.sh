#!/usr/bin/env bash
# Fuzz berth's parsers with cargo fuzz (nightly). Usage:
#   bash scripts/fuzz.sh [--ci] [SECONDS_PER_TARGET] [TARGET...]
# Long runs (the default): AddressSanitizer, 300 s per target.
# --ci (what scripts/test.sh runs): no sanitizer, 40 s per target. berth is mostly safe
# Rust, and an ASan build of it and its dependencies takes far longer than the CI budget.
# Targets: config, seccomp, tar_apply, image, procfs. Seeds come from fuzz/seeds/TARGET
# (checked in) and a corpus kept in target/fuzz-corpus/TARGET. A crash leaves its input in
# fuzz/artifacts/TARGET/ and fails the script: add it as a unit test next to the code.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitizer=address
secs=300
if [ "${1:-}" = --ci ]; then
    sanitizer=none
    secs=40
    shift
fi
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config seccomp tar_apply image procfs)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi

# One target dir per sanitizer (switching rebuilds everything), under ours so that CI
# caches and cleans it with the rest. Built once; the targets' binaries are run directly.
export CARGO_TARGET_DIR="$PWD/target/fuzz-$sanitizer"
(cd fuzz && cargo +nightly fuzz build -O -s "$sanitizer")
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
for t in "${targets[@]}"; do
    corpus="target/fuzz-corpus/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    seeds=()
    [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
    log="target/fuzz-$t.log"
    # -rss_limit_mb: the applier and the image reader stay small; a blow-up is a finding.
    # -timeout: one input taking 10 s is a finding too (a hostile config stalling create).
    if ! "$bin/$t" "$corpus" "${seeds[@]}" -max_total_time="$secs" -rss_limit_mb=1024 \
        -timeout=10 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" 2>"$log"; then
        tail -n 40 "$log"
        echo "fuzz $t: CRASH (see fuzz/artifacts/$t)"
        exit 1
    fi
    stat() { grep -o "stat::$1: *[0-9]*" "$log" | grep -o '[0-9]*$' || echo "?"; }
    echo "fuzz $t ($sanitizer): ${secs} s, $(stat number_of_executed_units) runs," \
        "$(stat average_exec_per_sec) execs/s, slowest input $(stat slowest_unit_time_sec) s," \
        "corpus $(find "$corpus" -type f | wc -l) inputs, no crash"
done
