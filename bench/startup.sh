#!/usr/bin/env bash
# Start-up cost of a runtime command against the floor, fork+exec of static busybox `true`:
#   --version   nothing but argument parsing and a print
#   state       load one container's state and print the OCI state JSON (a created container)
# berth, runc and crun interleaved with the floor. Run as root: bash bench/startup.sh [ROUNDS] [RUNS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"
rounds=${1:-10}
runs=${2:-20}

bench_workdir
bench_bins
bundle=$work/bundle
bench_bundle "$bundle"

cmd_floor="/bin/busybox true"
for r in "${names[@]}"; do declare "cmd_$r=${bin[$r]} --version"; done
interleave version "$rounds" "$runs" "${names[@]}" floor
report version "--version"

for r in "${runtimes[@]}"; do
    "${bin[$r]}" --root "$work/root-$r" create -b "$bundle" st </dev/null >/dev/null 2>&1
    declare "cmd_$r=${bin[$r]} --root $work/root-$r state st"
done
interleave state "$rounds" "$runs" "${runtimes[@]}" floor
report state "state of a created container"
for r in "${runtimes[@]}"; do "${bin[$r]}" --root "$work/root-$r" delete -f st >/dev/null 2>&1 || true; done
bench_versions
