# Shared by the bench scripts (sourced, not run). As root.
#
# Every scenario is one interleaved run of berth, runc and crun (Debian's): ROUNDS rounds, each
# one hyperfine call that times every runtime RUNS times, the runtimes' order rotating from
# round to round, so a change in the machine's load hits all of them alike. bench/summary.py
# pools the rounds and prints medians, min/max and the ratios to crun and runc.
#
# crun refuses this host's hybrid cgroup layout, so each script re-executes itself in a
# private mount namespace with an empty tmpfs over /sys/fs/cgroup/unified, the same for all
# three runtimes.

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)

bench_log() { echo "bench: $*" >&2; }

# Debian packages the benchmarks need (the same list is in scripts/test.sh for CI machines).
bench_packages() {
    local missing=() p
    for p in runc crun busybox-static hyperfine time bc jq valgrind "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# The release binary, built with the repository's default (static) settings; prints its path.
bench_build() {
    (cd "$repo" && cargo build --release --message-format=json-render-diagnostics -q) |
        jq -r 'select(.reason == "compiler-artifact" and .target.name == "berth" and .executable != null) | .executable' |
        tail -1
}

# Re-execute the calling script in a private mount namespace without the cgroup2 tree.
# Usage: bench_enter "$0" "$@"   (returns only inside the namespace)
bench_enter() {
    # A caller's RUST_BACKTRACE would make every error berth builds capture a backtrace
    # (millions of instructions each, on the error paths the prepare steps take).
    unset RUST_BACKTRACE RUST_LIB_BACKTRACE
    if [ -n "${BERTH_BENCH_INNER:-}" ]; then
        if mountpoint -q /sys/fs/cgroup/unified; then
            mount -t tmpfs -o mode=0755 none /sys/fs/cgroup/unified
        fi
        return 0
    fi
    [ "$(id -u)" = 0 ] || { echo "the benchmarks run as root (they create containers)" >&2; exit 1; }
    bench_packages
    local berth
    berth=${BERTH:-$(bench_build)}
    [ -x "$berth" ] || { echo "no berth binary" >&2; exit 1; }
    local script=$1
    shift
    exec env BERTH_BENCH_INNER=1 BERTH="$berth" unshare -m --propagation private bash "$script" "$@"
}

# A scratch directory removed on exit; sets $work.
bench_workdir() {
    work=$(mktemp -d /tmp/berth-bench.XXXXXX)
    # Containers left by an interrupted run are removed before the directory.
    trap 'bench_cleanup' EXIT
}

bench_cleanup() {
    local r d
    for r in "${names[@]}"; do
        for d in "$work/root-$r"/*/; do
            [ -d "$d" ] || continue
            "${bin[$r]}" --root "$work/root-$r" delete -f "$(basename "$d")" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$work"
}

# A busybox bundle at $1 running ARGS (default /bin/true), as the engines' configs do:
# the runtime's own `spec` template (berth's is runc's).
bench_bundle() {
    local b=$1
    shift
    mkdir -p "$b/rootfs/bin" "$b/rootfs/etc" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" "$b/rootfs/tmp"
    cp /bin/busybox "$b/rootfs/bin/busybox"
    local a
    for a in true sh sleep cat; do ln -sf busybox "$b/rootfs/bin/$a"; done
    "$BERTH" spec -b "$b"
    python3 - "$b/config.json" "$@" <<'PY'
import json, sys
p = sys.argv[1]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = sys.argv[2:] or ["/bin/true"]
# Debian 12's crun only accepts 1.0.x configs.
s["ociVersion"] = "1.0.2-dev"
json.dump(s, open(p, "w"))
PY
}

names=(berth runc crun)
runtimes=(berth runc crun)
declare -A bin

# BERTH_BEFORE=PATH adds a second berth binary, `before`, to the interleaved runs of the
# scenarios whose containers come and go within one command (`run`, `--version`, the peak RSS)
# or have ids of their own (`exec`):
# a change's before/after figures from one run. The others keep containers of the same id
# alive, and two berth binaries would share their default cgroup /berth/<id>: they run
# "${runtimes[@]}", berth, runc and crun only.
bench_bins() {
    bin=([berth]=$BERTH [runc]=$(command -v runc) [crun]=$(command -v crun))
    if [ -n "${BERTH_BEFORE:-}" ]; then
        bin[before]=$BERTH_BEFORE
        names=(berth before runc crun)
    fi
}

# interleave SCENARIO ROUNDS RUNS [NAME...] — times "$cmd_NAME" for each NAME (default: berth
# runc crun; strings run without a shell), each optionally after "$prep_NAME", which runs
# before every timed run. Results go to $work/results/SCENARIO.ROUND.json.
#
# BENCH_GAP=SECONDS sleeps that long before each timed run of a scenario without a prepare
# step (run, exec, exec -d, --version, state). Back to back, a run's move of a process into a
# cgroup by pid finds the kernel's cgroup_threadgroup_rwsem still warm from the previous
# run's and skips the RCU grace period it waits for when idle (6-10 ms here); engines' calls
# come seconds apart, so BENCH_GAP=0.1 shows what each of their calls costs.
interleave() {
    local scen=$1 rounds=$2 runs=$3 round k r
    shift 3
    local who=("$@")
    [ $# -gt 0 ] || who=("${names[@]}")
    mkdir -p "$work/results"
    for round in $(seq "$rounds"); do
        local args=()
        for k in $(seq 0 $((${#who[@]} - 1))); do
            r=${who[$(((round + k) % ${#who[@]}))]}
            local c="cmd_$r" p="prep_$r"
            if [ -n "${!p:-}" ]; then
                args+=(--prepare "${!p}")
            elif [ -n "${BENCH_GAP:-}" ]; then
                args+=(--prepare "sleep $BENCH_GAP")
            fi
            args+=(-n "$r" "${!c}")
        done
        hyperfine -N -r "$runs" --style none --export-json "$work/results/$scen.$round.json" \
            "${args[@]}" >/dev/null 2>"$work/hyperfine.log" ||
            { bench_log "$scen: hyperfine failed (round $round):"; tail -20 "$work/hyperfine.log" >&2; return 1; }
    done
}

# report SCENARIO TITLE — the table for one scenario.
report() {
    python3 "$bench_dir/summary.py" "$work/results" "$1" "$2"
}

# Mangled names on stdin with their hashes replaced by `*` (bench/order.sh, build.rs), and
# the number LLVM appends to a local symbol to keep it unique (`.1418`), which moves too.
bench_hashless() {
    sed -E -e 's/17h[0-9a-f]{16}E$/17h*E/' -e '/^_R/{s/Cs[0-9A-Za-z]+_/Cs*_/g; s/B[0-9A-Za-z]*_/B*_/g}' \
        -e '/^(_R|_ZN)/s/\.[0-9]+$/.*/'
}

# bench_order_share [MIN_PERCENT] — how many of link/hot.order's names and patterns $BERTH
# has; fails below MIN_PERCENT (default 0).
bench_order_share() {
    local min=${1:-0} have total found
    have=$(mktemp)
    # A line is a name (exact) or a pattern (the hash-free form of a name).
    nm --defined-only "$BERTH" | awk '$2 ~ /^[tTwW]$/ {print $3}' | tee "$have.exact" | bench_hashless |
        cat - "$have.exact" | sort -u >"$have"
    total=$(grep -vc '^#' "$repo/link/hot.order")
    found=$(grep -v '^#' "$repo/link/hot.order" | sort -u | comm -12 - "$have" | wc -l)
    rm -f "$have" "$have.exact"
    echo "link/hot.order: $found of $total names are in $BERTH"
    [ $((found * 100)) -ge $((total * min)) ] ||
        { echo "link/hot.order: under $min% of its names match: rewrite it (bash bench/order.sh)" >&2; return 1; }
}

# bench_rss N BUNDLE — the peak RSS (/usr/bin/time's maximum resident set size) of `run` of
# BUNDLE, N times for each of "${names[@]}", interleaved; prints medians, min/max, vs crun.
bench_rss() {
    for r in "${names[@]}"; do : >"$work/$r.kb"; done
    for i in $(seq "$1"); do
        for r in "${names[@]}"; do
            /usr/bin/time -f %M -o "$work/rss" "${bin[$r]}" --root "$work/root-$r" run -b "$2" "m$i" >/dev/null
            cat "$work/rss" >>"$work/$r.kb"
        done
    done
    bench_order_share
    python3 - "$work" "${names[@]}" <<'PY'
import statistics, sys
work, names = sys.argv[1], sys.argv[2:]
kb = {n: [int(l) for l in open(f"{work}/{n}.kb")] for n in names}
print(f"peak RSS of run ({len(kb['berth'])} runs each, interleaved)")
print(f"  {'':8}{'median':>10}{'min':>10}{'max':>10}{'vs crun':>10}")
for n in names:
    m = statistics.median(kb[n])
    print(f"  {n:8}{m / 1024:8.2f}MB{min(kb[n]) / 1024:8.2f}MB{max(kb[n]) / 1024:8.2f}MB"
          f"{m / statistics.median(kb['crun']):10.2f}")
PY
}

bench_versions() {
    echo "(berth $("$BERTH" --version | head -1 | cut -d' ' -f3) $(file -b "$BERTH" | grep -oE 'static-pie linked|statically linked|dynamically linked'), $(runc --version | head -1), $(crun --version | head -1); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
}
