#!/usr/bin/env bash
# The lifecycle of a /bin/true container, berth against Debian's runc and crun, interleaved:
#   run                   `RUNTIME run` (create, start, wait, delete in one command)
#   create/start/delete   each step timed alone (the others are hyperfine --prepare steps)
#   peak RSS of `run`     /usr/bin/time's maximum resident set size
# Run as root: bash bench/run.sh [ROUNDS] [RUNS_PER_ROUND]   (default 10 x 4)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"
rounds=${1:-10}
runs=${2:-4}

bench_workdir
bench_bins
bundle=$work/bundle
bench_bundle "$bundle"

for r in "${names[@]}"; do
    declare "cmd_$r=${bin[$r]} --root $work/root-$r run -b $bundle b"
done
interleave run "$rounds" "$runs"
report run "run /bin/true"

# The split lifecycle: every timed step starts from the state the previous step leaves.
for r in "${runtimes[@]}"; do
    rt="${bin[$r]} --root $work/root-$r"
    gone="$rt delete -f s >/dev/null 2>&1; true"
    declare "cmd_$r=$rt create -b $bundle s" "prep_$r=sh -c \"$gone\""
done
interleave create "$rounds" "$runs" "${runtimes[@]}"
for r in "${runtimes[@]}"; do
    rt="${bin[$r]} --root $work/root-$r"
    declare "cmd_$r=$rt start s" "prep_$r=sh -c \"$rt delete -f s >/dev/null 2>&1; $rt create -b $bundle s </dev/null >/dev/null 2>&1\""
done
interleave start "$rounds" "$runs" "${runtimes[@]}"
for r in "${runtimes[@]}"; do
    rt="${bin[$r]} --root $work/root-$r"
    declare "cmd_$r=$rt delete s" "prep_$r=sh -c \"$rt delete -f s >/dev/null 2>&1; $rt create -b $bundle s </dev/null >/dev/null 2>&1; $rt start s; while $rt state s 2>/dev/null | grep -q running; do :; done\""
done
interleave delete "$rounds" "$runs" "${runtimes[@]}"
for r in "${runtimes[@]}"; do "${bin[$r]}" --root "$work/root-$r" delete -f s >/dev/null 2>&1 || true; done
unset prep_berth prep_runc prep_crun
report create "create"
report start "start"
report delete "delete"
report create,start,delete "create + start + delete (sum of the steps)"

# Peak RSS of `run`, interleaved too.
bench_rss $((rounds * runs)) "$bundle"
bench_versions
