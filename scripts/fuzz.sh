#!/usr/bin/env bash
# Fuzz berth's parsers with cargo fuzz (nightly). Usage:
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Default: 300 s for each of config, seccomp, tar_apply, image, procfs. CI runs it with 20 s.
# Seeds come from fuzz/seeds/TARGET (checked in) and a corpus kept in target/fuzz-corpus/.
# A crash leaves its input in fuzz/artifacts/TARGET/; add it as a unit test next to the code.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config seccomp tar_apply image procfs)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi

# The fuzz crate has its own target dir, under ours so CI caches and cleans it with the rest.
export CARGO_TARGET_DIR="$PWD/target/fuzz"
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
    corpus="target/fuzz-corpus/$t"
    mkdir -p "$corpus"
    seeds=()
    [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
    start=$(date +%s)
    # -rss_limit_mb: the applier and the image reader stay small; a blow-up is a finding.
    cargo +nightly fuzz run -O "$t" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$secs" -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
        2>"target/fuzz-$t.log" || { tail -n 40 "target/fuzz-$t.log"; echo "fuzz $t: CRASH (see fuzz/artifacts/$t)"; exit 1; }
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "target/fuzz-$t.log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz $t: $(( $(date +%s) - start )) s, $runs runs, no crash"
done
