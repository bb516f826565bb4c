#!/usr/bin/env bash
# Through the engines: `ctr run --rm` of /bin/true through containerd's runc shim
# (`--runc-binary`), and `podman run --rm` (`--runtime`), with berth, runc and crun as the
# runtime, interleaved. containerd and podman are Debian's, with private state, started here.
# Run as root, under the engines lock:
#   flock /work/wt/.engines.lock bash bench/engines.sh [ROUNDS] [RUNS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if [ -z "${BERTH_BENCH_INNER:-}" ]; then bench_packages containerd podman umoci; fi
bench_enter "$0" "$@"
rounds=${1:-5}
runs=${2:-4}

bench_workdir
bench_bins
trap 'engines_cleanup' EXIT
ctd_pid=
engines_cleanup() {
    if [ -n "$ctd_pid" ]; then
        for r in "${names[@]}"; do
            ctr_ task delete -f "e-$r" >/dev/null 2>&1 || true
            ctr_ container delete "e-$r" >/dev/null 2>&1 || true
        done
        kill "$ctd_pid" 2>/dev/null || true
        wait "$ctd_pid" 2>/dev/null || true
    fi
    # containerd made a cgroup per hierarchy for its namespace; empty now, so rmdir takes it.
    rmdir /sys/fs/cgroup/*/berth-bench 2>/dev/null || true
    podman_ rm -f -a >/dev/null 2>&1 || true
    bench_cleanup
}

# A one-layer busybox image (umoci: init, unpack, add the tree, repack), as an OCI archive.
img=$work/oci
umoci init --layout "$img"
umoci new --image "$img:bench"
umoci unpack --image "$img:bench" "$work/layer" >/dev/null
mkdir -p "$work/layer/rootfs/bin"
cp /bin/busybox "$work/layer/rootfs/bin/busybox"
for a in true sh sleep; do ln -s busybox "$work/layer/rootfs/bin/$a"; done
umoci repack --image "$img:bench" "$work/layer"
umoci config --image "$img:bench" --config.env PATH=/bin --config.cmd /bin/true
tar -C "$img" -cf "$work/bench.tar" .

# containerd, private root, state and socket.
mkdir -p "$work/ctd"
cat >"$work/ctd/config.toml" <<TOML
version = 2
root = "$work/ctd/root"
state = "$work/ctd/state"
[grpc]
  address = "$work/ctd/ctd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable_cgroup = true
TOML
containerd --config "$work/ctd/config.toml" >/dev/null 2>"$work/ctd/log" &
ctd_pid=$!
ctr_() { ctr --address "$work/ctd/ctd.sock" --namespace berth-bench "$@"; }
for _ in $(seq 200); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
ctr_ images import --base-name localhost/bench --digests "$work/bench.tar" >/dev/null
for r in "${names[@]}"; do
    declare "cmd_$r=ctr --address $work/ctd/ctd.sock --namespace berth-bench run --rm --runc-binary ${bin[$r]} localhost/bench:bench e-$r /bin/true"
done
interleave ctr "$rounds" "$runs"
report ctr "ctr run --rm /bin/true (containerd $(containerd --version | awk '{print $3}'), runc shim)"

# podman, private storage; the ulimits capped to what this host allows (see integration/engines.rs).
cat >"$work/containers.conf" <<CONF
[containers]
netns = "none"
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=$(($(ulimit -Hu) < 32768 ? $(ulimit -Hu) : 32768)):$(($(ulimit -Hu) < 32768 ? $(ulimit -Hu) : 32768))"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
pflags="--root $work/storage --runroot $work/prun --tmpdir $work/ptmp --storage-driver vfs"
podman_() { CONTAINERS_CONF=$work/containers.conf podman $pflags "$@"; }
id=$(podman_ pull -q "oci-archive:$work/bench.tar")
podman_ tag "$id" localhost/bench:latest
export CONTAINERS_CONF=$work/containers.conf
for r in "${names[@]}"; do
    declare "cmd_$r=podman $pflags --runtime ${bin[$r]} run --rm localhost/bench:latest /bin/true"
done
interleave podman "$rounds" "$runs"
report podman "podman run --rm /bin/true (podman $(podman --version | awk '{print $3}'), conmon)"
bench_versions
