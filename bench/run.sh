#!/usr/bin/env bash
# Container start-up benchmark: median wall time and peak RSS of `RUNTIME run` of /bin/true
# (create + start + wait + delete) for berth, runc and crun, interleaved in one run, with
# ratios. Run as root: bash bench/run.sh [ITERATIONS]
#
# crun refuses this host's hybrid cgroup layout, so the whole benchmark runs in a private
# mount namespace with an empty tmpfs over /sys/fs/cgroup/unified, the same for all three.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-40}

if [ -z "${BERTH_BENCH_INNER:-}" ]; then
    missing=()
    for p in runc crun busybox-static time; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    cargo build --release -q
    exec env BERTH_BENCH_INNER=1 unshare -m --propagation private bash "$0" "$n"
fi

if mountpoint -q /sys/fs/cgroup/unified; then
    mount -t tmpfs -o mode=0755 none /sys/fs/cgroup/unified
fi

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
ln -s busybox "$bundle/rootfs/bin/sh"
./target/release/berth spec -b "$bundle"
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["/bin/true"]
# Debian 12's crun only accepts 1.0.x configs.
s["ociVersion"] = "1.0.2-dev"
json.dump(s, open(p, "w"))
PY

declare -A bin=([berth]=$PWD/target/release/berth [runc]=$(command -v runc) [crun]=$(command -v crun))
names=(berth runc crun)
for r in "${names[@]}"; do : > "$work/$r.ms"; : > "$work/$r.kb"; done

one() { # runtime iteration
    local r=$1 i=$2 t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f %M -o "$work/rss" "${bin[$r]}" --root "$work/root-$r" run -b "$bundle" "b$i" >/dev/null
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 )) >> "$work/$r.ms"
    cat "$work/rss" >> "$work/$r.kb"
}

for r in "${names[@]}"; do one "$r" warm; done
for i in $(seq "$n"); do
    for r in "${names[@]}"; do one "$r" "$i"; done
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A med rss
for r in "${names[@]}"; do
    med[$r]=$(median "$work/$r.ms")
    rss[$r]=$(sort -n "$work/$r.kb" | tail -1)
done
printf '%-6s %12s %14s %12s %12s\n' runtime "median (ms)" "peak RSS (KB)" "vs crun" "vs runc"
for r in "${names[@]}"; do
    printf '%-6s %12.2f %14d %12.2f %12.2f\n' "$r" "$(echo "${med[$r]}/1000" | bc -l)" "${rss[$r]}" \
        "$(echo "${med[$r]}/${med[crun]}" | bc -l)" "$(echo "${med[$r]}/${med[runc]}" | bc -l)"
done
echo "($n interleaved runs each of /bin/true; berth $(./target/release/berth --version | head -1 | cut -d' ' -f3), $(runc --version | head -1), $(crun --version | head -1))"
