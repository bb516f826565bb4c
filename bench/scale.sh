#!/usr/bin/env bash
# Many containers: N (default 100) busybox `sleep` containers created, then started, then all
# deleted (`delete -f`), one at a time and 8 at a time, berth, runc and crun interleaved; then
# berth and crun at 1, 2, 4, 8 and 16 at a time, to show where parallel runs stop scaling.
# Each phase's median is printed too (bench/scale-one.sh).
# Run as root: bash bench/scale.sh [N] [ROUNDS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"
n=${1:-100}
rounds=${2:-3}

bench_workdir
bench_bins
bundle=$work/bundle
bench_bundle "$bundle" /bin/sleep 100000

phases() { # SCENARIO: per-phase medians of each runtime
    python3 - "$work" "$1" "${names[@]}" <<'PY'
import statistics, sys, os
work, scen, names = sys.argv[1], sys.argv[2], sys.argv[3:]
for n in names:
    p = f"{work}/{scen}.{n}.phases"
    if not os.path.exists(p):
        continue
    ph = {}
    for line in open(p):
        k, v = line.split()
        ph.setdefault(k, []).append(int(v) / 1000)
    print(f"  {n:8}" + "  ".join(f"{k} {statistics.median(v):7.1f}ms" for k, v in ph.items()))
PY
}

for p in 1 8; do
    for r in "${names[@]}"; do
        declare "cmd_$r=bash $bench_dir/scale-one.sh ${bin[$r]} $work/root-$r $bundle $n $p $work/p$p.$r.phases"
    done
    interleave "p$p" "$rounds" 1
    report "p$p" "$n containers, $p at a time (create, start, delete -f)"
    phases "p$p"
done

for p in 1 2 4 8 16; do
    for r in berth crun; do
        declare "cmd_$r=bash $bench_dir/scale-one.sh ${bin[$r]} $work/root-$r $bundle $n $p $work/sweep$p.$r.phases"
    done
    interleave "sweep$p" "$rounds" 1 berth crun
    report "sweep$p" "$n containers, $p at a time"
    phases "sweep$p"
done
bench_versions
