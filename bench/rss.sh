#!/usr/bin/env bash
# Peak RSS of `run` of a /bin/true container alone (bench/run.sh measures it too, after the
# timings): berth against Debian's runc and crun, and BERTH_BEFORE when set, interleaved.
# Run as root: bash bench/rss.sh [RUNS]   (default 20)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"

bench_workdir
bench_bins
bundle=$work/bundle
bench_bundle "$bundle"
bench_rss "${1:-20}" "$bundle"
bench_versions
