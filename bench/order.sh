#!/usr/bin/env bash
# Writes link/hot.order, which build.rs turns into the linker's layout (a linker script and
# rust-lld's symbol ordering file): the functions that the commands engines call run, in the
# order they first run, so that the linker puts them next to each other at the start of the
# text. A command then touches a few dozen
# contiguous pages of code instead of pages all over the binary's 4 MB of text: the kernel
# maps 64 KB around every page fault of a file (fault-around), so the resident set of a
# command follows how spread the code it runs is (README, Benchmarks: memory).
#
# The functions are found by bench/hotfuncs.c (a breakpoint on every function of the release
# binary), for: run,
# create, start, state, exec (attached and -d), kill, delete, --version, features, ps, list.
# The names are the mangled ones of the release build, most with their hashes (legacy
# `17h<16 hex>E`, v0 crate disambiguators `Cs<base62>_` and back-references `B<base62>_`,
# whose offsets move with them) replaced by `*`: build.rs makes section patterns of them, so
# a new dependency, feature or toolchain does not scatter them (see below for the exceptions).
# What still drifts is the code: functions renamed, inlined or new. `bash bench/order.sh --check` reports the share of the file's names that a
# binary has and fails under 90%; rewrite the file then: bash bench/order.sh
# Run as root.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"
mode=${1:-}

out=$repo/link/hot.order
if [ "$mode" = --check ]; then
    bench_order_share 90
    exit
fi
syms=$(mktemp)
nm --defined-only "$BERTH" | awk '$2 ~ /^[tTwW]$/ {print $1, $3}' | sort -u >"$syms"
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
# A name whose hash-free form is a pattern only it (give or take 1 KB of other instances)
# matches in this binary is written as the pattern. The instances of a generic that legacy
# mangling tells apart only by the hash (serde's PhantomData<T>::deserialize has over a
# hundred, 340 KB) are written exact, and their pattern comes at the end: a fresh build puts
# the hot instances with the rest and the others after all of it, where no command runs;
# after a hash change the pattern still gathers every instance there, together.
nm -S --defined-only "$BERTH" | awk '$3 ~ /^[tTwW]$/ {print $4, $2}' >"$work/sizes"
cut -d' ' -f1 "$work/sizes" | bench_hashless | paste -d' ' - "$work/sizes" >"$work/patterns"
mkdir -p "$(dirname "$out")"
{
    echo "# Written by bench/order.sh from $(bench_versions); do not edit."
    for i in $(seq "$n"); do cat "$work/list.$i"; done | awk '!seen[$0]++' >"$work/hot"
    awk 'function hex(h,  i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
         NR == FNR { all[$1] += hex($3); size[$2] = hex($3); pat[$2] = $1; next }
         { hot[pat[$1]] += size[$1]; name[FNR] = $1 }
         END { for (i = 1; i in name; i++) {
                   p = pat[name[i]]
                   if (p == "" || p == name[i]) { print name[i]; continue }
                   if (all[p] - hot[p] <= 1024) { if (!(p in seen)) print p; seen[p] = 1; continue }
                   print name[i]
                   if (!(p in tail)) { tail[p] = 1; tails[++nt] = p }
               }
               for (i = 1; i <= nt; i++) print tails[i] }' "$work/patterns" "$work/hot"
} >"$out"
echo "$(grep -vc '^#' "$out") functions in $out"
rm -f "$syms"
