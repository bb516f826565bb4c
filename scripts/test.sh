#!/usr/bin/env bash
# The whole test suite on a fresh machine, as root: installs what it needs, then runs
# formatting and lint checks, unit tests, and the integration tests against real containers.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh must run as root (it creates real containers)" >&2
    exit 1
fi

need=(busybox-static python3-jsonschema runc umoci skopeo jq zstd file containerd podman docker.io libseccomp-dev gcc
      containernetworking-plugins iproute2 util-linux buildah uidmap passwd)
need+=(libarchive-tools attr)  # the unpack compatibility corpus (bsdtar, setfattr)
need+=(criu qemu-system-x86 cpio)  # checkpoint/restore, run in the VM lane (integration/vm/)
need+=(debootstrap e2fsprogs)  # the systemd lane (integration/vm-systemd/)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The CRI lane's client speaks gRPC through grpcio from PyPI, kept under target/.
if ! PYTHONPATH=target/py python3 -c 'import grpc' 2>/dev/null; then
    python3 -m pip install -q --target target/py grpcio
fi

# berth keeps its default /berth cgroup parent between containers, as runc keeps its
# parents; when the tests end (passed or not) it is empty, and the test command removes it.
trap 'rmdir /sys/fs/cgroup/*/berth 2>/dev/null || true' EXIT
cargo fmt --check
cargo clippy --all-targets -- -D warnings
# Integration tests start real containers; two at a time fits this 2-core machine. Every
# test binary runs even after one fails (--no-fail-fast), so one run shows every failure.
# Skipped tests are counted, and a test binary whose tests all skipped fails
# (scripts/skips.sh).
mkdir -p target/tmp
rm -f target/tmp/skips.log
cargo test --all-targets --no-fail-fast -- --test-threads=2 2>&1 | tee target/tmp/test-output.log
bash scripts/skips.sh target/tmp/test-output.log target/tmp/skips.log
# Fuzzing, short: every target 40 s without a sanitizer (`scripts/fuzz.sh` runs long ones).
bash scripts/fuzz.sh --ci
# What each engine lane saw berth called with (README: Runtime calls per engine).
for f in target/argv/*.txt; do [ -f "$f" ] && cat "$f"; done

# cgroup v2 with every controller: a Debian kernel under qemu (integration/vm/).
bash integration/vm/run.sh
# systemd as PID 1 on a Debian userland, on cgroup v2 and v1: the systemd cgroup driver,
# AppArmor and podman's systemd cgroup manager (integration/vm-systemd/).
bash integration/vm-systemd/run.sh
