#!/usr/bin/env bash
# Instruction counts, which do not depend on the machine's load, of the berth process itself
# (never of the container's processes):
#   callgrind (valgrind)   --version, state, start, delete (of a stopped container)
#   icount (bench/icount.c, single-stepping under ptrace)
#                          the parent side of `run` and of `create`: their init is a fork of
#                          berth, and a fork of a process under valgrind 3.19 stays under
#                          valgrind, which does not know openat2, so the init cannot run there
# Compares them with bench/callgrind.txt and prints the change; `--record` rewrites that file.
# Run as root: bash bench/callgrind.sh [--record]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"
record=${1:-}

bench_workdir
bench_bins
bundle=$work/bundle
bench_bundle "$bundle"
base=$bench_dir/callgrind.txt
gcc -O2 -o "$work/icount" "$bench_dir/icount.c"

# callgrind NAME CMD... — instructions of the process CMD starts.
callgrind() {
    local name=$1 pid
    shift
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$@" </dev/null >/dev/null 2>"$work/$name.log" &
    pid=$!
    wait "$pid" || { bench_log "$name failed:"; tail -5 "$work/$name.log" >&2; exit 1; }
    awk '/^summary:/ {print $2}' "$work/cg.$pid"
}
# icount NAME CMD...
icount() {
    local name=$1
    shift
    "$work/icount" "$@" </dev/null >/dev/null 2>"$work/$name.log" ||
        { bench_log "$name failed:"; tail -5 "$work/$name.log" >&2; exit 1; }
    awk '/^instructions:/ {print $2}' "$work/$name.log" | tail -1
}

rt="$BERTH --root $work/root"
q() { "$@" </dev/null >/dev/null 2>&1; }
{
    echo "version callgrind $(callgrind version $BERTH --version)"
    q $rt create -b "$bundle" cg
    echo "state callgrind $(callgrind state $rt state cg)"
    echo "start callgrind $(callgrind start $rt start cg)"
    while $rt state cg | grep -q '"running"'; do sleep 0.01; done
    echo "delete callgrind $(callgrind delete $rt delete cg)"
    echo "create icount $(icount create $rt create -b "$bundle" cg)"
    q $rt delete -f cg
    echo "run icount $(icount run $rt run -b "$bundle" cg-run)"
} >"$work/counts"

printf '%-8s %-10s %14s %14s %8s\n' command tool instructions recorded change
while read -r scen tool n; do
    old=$(awk -v s="$scen" '$1 == s {print $3}' "$base" 2>/dev/null || true)
    if [ -n "$old" ]; then
        printf '%-8s %-10s %14d %14d %+7.1f%%\n' "$scen" "$tool" "$n" "$old" "$(echo "($n - $old) * 100 / $old" | bc -l)"
    else
        printf '%-8s %-10s %14d %14s %8s\n' "$scen" "$tool" "$n" - -
    fi
done <"$work/counts"
if [ "$record" = --record ]; then
    {
        echo "# bench/callgrind.sh: instructions of the berth process; rewrite with --record"
        echo "# $(bench_versions)"
        cat "$work/counts"
    } >"$base"
    echo "recorded in $base"
fi
