#!/usr/bin/env bash
# Writes link/hot.order, the symbol ordering file build.rs gives the linker (rust-lld): the
# functions that the commands engines call run, in the order they first run, so that the linker
# puts them next to each other at the start of .text. A command then touches a few dozen
# contiguous pages of code instead of pages all over the binary's 4 MB of text: the kernel
# maps 64 KB around every page fault of a file (fault-around), so the resident set of a
# command follows how spread the code it runs is (README, Benchmarks: memory).
#
# The functions are found by bench/hotfuncs.c (a breakpoint on every function of the release
# binary), for: run,
# create, start, state, exec (attached and -d), kill, delete, --version, features, ps, list.
# The names are the mangled ones of the release build; after a change of dependencies or of
# the toolchain they drift, which `bash bench/order.sh --check` reports (the share of the
# ordering file's names that the binary still has). Rewrite it then: bash bench/order.sh
# Run as root.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"
mode=${1:-}

out=$repo/link/hot.order
syms=$(mktemp)
nm --defined-only "$BERTH" | awk '$2 ~ /^[tTwW]$/ {print $1, $3}' | sort -u >"$syms"
if [ "$mode" = --check ]; then
    cut -d' ' -f2 "$syms" | sort -u >"$syms.names"
    total=$(wc -l <"$out")
    found=$(sort -u "$out" | comm -12 - "$syms.names" | wc -l)
    echo "link/hot.order: $found of $total names are in $BERTH"
    rm -f "$syms" "$syms.names"
    exit 0
fi
file -b "$BERTH" | grep -qE 'statically linked|static-pie linked' ||
    { echo "$BERTH is not a static binary: its functions would not all be in its own symbol table" >&2; exit 1; }

bench_workdir
bundle=$work/bundle
bench_bundle "$bundle"
sleeper=$work/sleeper
bench_bundle "$sleeper" /bin/sleep 100000
gcc -O2 -o "$work/hotfuncs" "$bench_dir/hotfuncs.c"
n=0
# hot CMD...: appends the functions CMD runs to $work/lists.
hot() {
    n=$((n + 1))
    "$work/hotfuncs" "$syms" "$work/list.$n" "$@" </dev/null >/dev/null 2>"$work/log.$n" ||
        { bench_log "$* failed:"; tail -5 "$work/log.$n" >&2; exit 1; }
}
# The root bench_cleanup looks in: an interrupted run leaves no container behind.
rt="$BERTH --root $work/root-berth"
# The lifecycle first: what every container start runs is what matters most.
hot $rt run -b "$bundle" o-run
hot $rt create -b "$bundle" o-c
hot $rt start o-c
hot $rt state o-c
while $rt state o-c | grep '"running"' >/dev/null; do sleep 0.01; done
hot $rt delete o-c
$rt run -d -b "$sleeper" o-s </dev/null >/dev/null 2>&1
hot $rt exec o-s /bin/true
hot $rt exec -d --pid-file "$work/pid" o-s /bin/true
hot $rt ps o-s
hot $rt list
hot $rt kill o-s KILL
while $rt state o-s | grep '"running"' >/dev/null; do sleep 0.01; done
hot $rt delete o-s
hot "$BERTH" --version
hot "$BERTH" features
mkdir -p "$(dirname "$out")"
{
    echo "# Written by bench/order.sh from $(bench_versions); do not edit."
    for i in $(seq "$n"); do cat "$work/list.$i"; done | awk '!seen[$0]++'
} >"$out"
echo "$(grep -vc '^#' "$out") functions in $out"
rm -f "$syms"
