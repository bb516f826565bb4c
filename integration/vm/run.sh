#!/bin/bash
# cgroup v2 lane: boots a Debian cloud kernel under qemu (TCG, no KVM needed) with an
# initramfs holding busybox-static, ./init and static builds of integration/cgroups.rs,
# lifecycle.rs and checkpoint.rs, plus Debian's criu with its libraries and the kernel's
# sock_diag/nf_tables modules (criu fails on the host's kernel but works on this one), runs
# the tests inside, and exits with their status. Everything is built under
# target/vm (or $BERTH_VM_DIR). Needs root only for apt-get when packages are missing.
#
#   integration/vm/run.sh            # build + boot + test
#   BERTH_VM_KEEP=1 integration/vm/run.sh   # keep the serial log on success too
#   integration/vm/run.sh --kernel-only      # only fetch the kernel (for bench/v2.sh)
#   BERTH_VM_ONLY=checkpoint integration/vm/run.sh   # one suite (cgroups, lifecycle, checkpoint)
#   BERTH_VM_ONLY=checkpoint BERTH_VM_FILTER=criu_tty integration/vm/run.sh   # some tests of it
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${BERTH_VM_DIR:-$repo/target/vm}
mkdir -p "$work"

log() { echo "vm: $*" >&2; }

ensure_packages() {
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    command -v cpio >/dev/null || missing+=(cpio)
    [ -x /usr/sbin/criu ] || missing+=(criu)
    [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || missing+=(busybox-static)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get install -y --no-install-recommends "${missing[@]}" >"$work/apt.log" 2>&1
    fi
}

. "$here/../vm-kernel.sh"

# The cgroup, lifecycle and checkpoint tests and the berth binary they drive, built as every build
# is (.cargo/config.toml: glibc +crt-static, so static; these are the artifacts the host's
# `cargo test` made). Prints the cgroups, lifecycle, checkpoint and berth paths.
build_tests() {
    local json
    json=$(cd "$repo" && cargo test --no-run --test cgroups --test lifecycle --test checkpoint \
        --message-format=json 2>"$work/build.log") || { log "building the tests failed:"; tail -30 "$work/build.log" >&2; exit 1; }
    local out=() name exe
    for name in cgroups lifecycle checkpoint berth; do
        exe=$(echo "$json" | jq -r --arg n "$name" 'select(.reason == "compiler-artifact" and .target.name == $n and .executable != null) | .executable' | tail -1)
        [ -n "$exe" ] && [ -x "$exe" ] || { log "no executable for $name"; exit 1; }
        file "$exe" | grep -qE "static(-pie)? linked|statically linked" || { log "$exe is not static"; exit 1; }
        out+=("$exe")
    done
    echo "${out[@]}"
}

build_initramfs() {
    local root="$work/initramfs"
    rm -rf "$root" && mkdir -p "$root"/{bin,proc,sys,dev,tmp}
    cp /bin/busybox "$root/bin/busybox"
    cp "$here/init" "$root/init"
    cp "$1" "$root/cgroups-tests"
    cp "$2" "$root/lifecycle-tests"
    cp "$3" "$root/checkpoint-tests"
    # The tests run berth from the absolute path cargo baked into them, and read
    # engine-written process files from ../shared next to the repository.
    mkdir -p "$root$(dirname "$4")"
    cp "$4" "$root$4"
    add_criu "$root"
    if [ -d "$repo/../shared/testdata" ]; then
        mkdir -p "$root$repo" "$root$(cd "$repo/.." && pwd)/shared"
        cp -r "$repo/../shared/testdata" "$root$(cd "$repo/.." && pwd)/shared/"
    fi
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.cpio.gz"
}

# criu and GNU tar from the host's packages with every library ldd names, and the modules it needs from
# the VM's kernel package (loaded in this order by ./init).
criu_modules="lib/libcrc32c net/netfilter/nfnetlink net/netfilter/nf_tables drivers/net/tun
drivers/net/veth net/unix/unix_diag net/netlink/netlink_diag net/packet/af_packet_diag
net/ipv4/inet_diag net/ipv4/tcp_diag net/ipv4/udp_diag net/ipv4/raw_diag"
add_criu() {
    local root=$1 lib m exe
    # GNU tar too: criu dumps and restores tmpfs contents with it (busybox's lacks options).
    for exe in /usr/sbin/criu /usr/bin/tar; do
        cp --parents -L "$exe" "$root"
        for lib in $(ldd "$exe" | grep -o '/[^ ]*'); do
            cp --parents -L "$lib" "$root"
        done
    done
    # No iptables here: berth then has criu lock the network with nftables (linked in).
    local kmod
    kmod=$(echo "$work"/kernel/root/lib/modules/*/kernel)
    mkdir -p "$root/lib/modules/criu"
    : >"$root/lib/modules/criu/order"
    for m in $criu_modules; do
        cp "$kmod/$m.ko" "$root/lib/modules/criu/"
        basename "$m" >>"$root/lib/modules/criu/order"
    done
}

boot() {
    local serial="$work/serial.log"
    rm -f "$serial"
    log "booting (TCG); serial console in $serial"
    timeout "${BERTH_VM_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -m 2048 -smp 1 \
        -kernel "$vmlinuz" -initrd "$work/initramfs.cpio.gz" \
        -append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=3 berth.only=${BERTH_VM_ONLY:-all} berth.filter=${BERTH_VM_FILTER:-}" \
        -display none -serial "file:$serial" -no-reboot -nodefaults >/dev/null 2>&1 || true
    local rc
    rc=$(grep -a -o 'BERTH_VM_RC=[0-9]*' "$serial" | tail -1 | cut -d= -f2)
    grep -a -E '^(test |running |test result|berth-vm|thread |  left|  right|assertion)|panicked' "$serial" >&2 || true
    if [ -z "$rc" ]; then
        log "no result line from the VM (boot failure or timeout); last lines:"
        tail -40 "$serial" >&2
        exit 1
    fi
    if [ "$rc" != 0 ] || [ -n "${BERTH_VM_KEEP:-}" ]; then
        log "full serial log: $serial"
    fi
    # A run where every v2 test skipped (not a v2 kernel) is a failure of the lane.
    if grep -a -q 'skipped: this test needs a cgroup v2 host' "$serial"; then
        log "tests did not see cgroup v2"; exit 1
    fi
    # criu works on this kernel: a skipped checkpoint test is a failure of the lane.
    if grep -a -q 'skipped: criu' "$serial"; then
        log "checkpoint tests skipped in the VM:"; grep -a 'skipped: criu' "$serial" | head -3 >&2; exit 1
    fi
    exit "$rc"
}

ensure_packages
ensure_kernel
# bench/v2.sh boots its own initramfs on this kernel, from here.
cp "$vmlinuz" "$work/vmlinuz"
[ "${1:-}" = --kernel-only ] && exit 0
exes=$(build_tests)
read -r cg_exe life_exe ckpt_exe berth_exe <<<"$exes"
build_initramfs "$cg_exe" "$life_exe" "$ckpt_exe" "$berth_exe"
boot
