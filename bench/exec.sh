#!/usr/bin/env bash
# exec latency into a running container (busybox sleep as its init), interleaved:
#   exec      `RUNTIME exec ID /bin/true`: join, run, wait for the exit
#   exec -d   `RUNTIME exec -d ID /bin/true`: return once the process runs (what engines do
#             for every probe, with --pid-file)
# Run as root: bash bench/exec.sh [ROUNDS] [RUNS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"
rounds=${1:-10}
runs=${2:-5}

bench_workdir
bench_bins
bundle=$work/bundle
bench_bundle "$bundle" /bin/sleep 100000

# One container per runtime, each with an id of its own (ex-NAME): with BERTH_BEFORE, the two
# berth binaries' default cgroups (/berth/ID) must not be the same.
for r in "${names[@]}"; do
    "${bin[$r]}" --root "$work/root-$r" run -d -b "$bundle" "ex-$r" </dev/null >/dev/null 2>&1
    declare "cmd_$r=${bin[$r]} --root $work/root-$r exec ex-$r /bin/true"
done
interleave exec "$rounds" "$runs"
report exec "exec /bin/true"

for r in "${names[@]}"; do
    declare "cmd_$r=${bin[$r]} --root $work/root-$r exec -d --pid-file $work/$r.pid ex-$r /bin/true"
done
interleave exec-d "$rounds" "$runs"
report exec-d "exec -d /bin/true"
for r in "${names[@]}"; do "${bin[$r]}" --root "$work/root-$r" delete -f "ex-$r" >/dev/null 2>&1 || true; done
bench_versions
