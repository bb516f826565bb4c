#!/bin/bash
# systemd lane: boots a Debian bookworm userland (debootstrap, packages.list) with systemd as
# PID 1 on the Debian cloud kernel under qemu (TCG, no KVM needed), runs the test binaries
# named in tests.list as a systemd service, and exits with their status. Two boots: cgroup v2
# (systemd's default) and cgroup v1 (systemd.unified_cgroup_hierarchy=0).
#
# What is built, all under target/vm-systemd (or $BERTH_VM_DIR):
#   rootfs-KEY.img   ext4 image of the userland, made by `mkfs.ext4 -d` (no loop mount); KEY
#                    hashes packages.list, setup-rootfs.sh and the kernel package, so a second
#                    run reuses it. Booted with snapshot=on: it never changes.
#   initramfs.cpio.gz busybox + the virtio modules the cloud kernel needs for its root disk.
#   payload.img      a second, read-only disk: static test binaries, berth, guest/run-tests.
#
#   integration/vm-systemd/run.sh             # both hierarchies
#   integration/vm-systemd/run.sh v2          # one of them (v2 or v1)
#   BERTH_VM_KEEP=1 ...                       # print the serial log's path on success too
#   BERTH_VM_BENCH=1 ...                      # also time the systemd driver (guest/bench-systemd)
#
# Adding tests: a line in tests.list (the hierarchies to run on, a cargo integration test name
# and its arguments). The binary is built statically and runs inside the VM as root, with
# systemd, dbus, AppArmor, criu and podman there; BERTH_VM_HIERARCHY is v1 or v2. The two
# boots run side by side, one vCPU each.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${BERTH_VM_DIR:-$repo/target/vm-systemd}
mirror=${BERTH_VM_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$work"

log() { echo "vm-systemd: $(date +%T) $*" >&2; }

ensure_packages() {
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    command -v cpio >/dev/null || missing+=(cpio)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
    [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || missing+=(busybox-static)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get install -y --no-install-recommends "${missing[@]}" >"$work/apt.log" 2>&1
    fi
}

. "$here/../vm-kernel.sh"

image=
ensure_image() {
    local key
    key=$( (grep -v '^#' "$here/packages.list"; cat "$here/setup-rootfs.sh"; echo "$kernel_pkg") | sha256sum | cut -c1-16)
    image="$work/rootfs-$key.img"
    if [ -f "$image" ]; then
        log "cached image $(basename "$image")"
        return
    fi
    local packages root="$work/rootfs"
    packages=$(grep -v '^#' "$here/packages.list" | grep -v '^$' | paste -sd,)
    log "debootstrap bookworm with $packages (several minutes; log in $work/debootstrap.log)"
    rm -rf "$root" && mkdir -p "$work/debs"
    # --cache-dir keeps the downloaded .debs: a changed package list downloads only what is new.
    debootstrap --variant=minbase --include="$packages" --cache-dir="$work/debs" \
        bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { log "debootstrap failed:"; tail -30 "$work/debootstrap.log" >&2; exit 1; }
    log "configuring the root filesystem"
    bash "$here/setup-rootfs.sh" "$root" "$work/kernel/root/lib/modules/$kver" "$here/guest" >"$work/setup.log" 2>&1 ||
        { log "setup-rootfs.sh failed:"; tail -30 "$work/setup.log" >&2; exit 1; }
    local mb
    mb=$(du -sm "$root" | cut -f1)
    rm -f "$work"/rootfs-*.img "$work"/rootfs-*.img.modules.dep
    cp "$root/lib/modules/$kver/modules.dep" "$image.modules.dep"
    # Room for the tests' bundles and podman's storage (writes go to qemu's snapshot file).
    mkfs.ext4 -q -F -L berth-root -d "$root" "$image.tmp" "$((mb + 1536))M" >/dev/null
    mv "$image.tmp" "$image"
    rm -rf "$root"
    log "image $(basename "$image") built (${mb} MB of files)"
}

# The initramfs: busybox, the virtio modules (in the order modules.dep gives, from the depmod
# run setup-rootfs.sh did inside the image) and init. It mounts /dev/vda and hands over to
# systemd.
build_initramfs() {
    local root="$work/initramfs" mods="$work/kernel/root/lib/modules/$kver" m
    rm -rf "$root" && mkdir -p "$root"/{bin,proc,sys,dev,newroot,modules}
    cp /bin/busybox "$root/bin/busybox"
    cp "$here/initramfs-init" "$root/init"
    : >"$root/modules/order"
    for m in virtio_pci virtio_blk; do
        local line dep deps
        line=$(grep -E "/$m\\.ko(\\.[a-z]+)?:" "$image.modules.dep") || { log "no $m in modules.dep"; exit 1; }
        # modules.dep lists a module's dependencies with the deepest last: load them in reverse.
        deps=$(echo "${line#*:}" | tr ' ' '\n' | tac)
        for dep in $deps "${line%%:*}"; do
            grep -qx "$(basename "$dep")" "$root/modules/order" && continue
            cp "$mods/$dep" "$root/modules/"
            basename "$dep" >>"$root/modules/order"
        done
    done
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.cpio.gz"
}

# Each test binary in tests.list and berth, built as every build is (.cargo/config.toml: glibc
# +crt-static, so static; the artifacts the host's `cargo test` made).
build_payload() {
    local p="$work/payload" json names=() lines=() hier name rest
    rm -rf "$p" && mkdir -p "$p/bin"
    while read -r hier name rest; do
        case "$hier" in ''|'#'*) continue ;; esac
        lines+=("$hier $name $rest")
        [[ " ${names[*]} " == *" $name "* ]] || names+=("$name")
    done <"$here/tests.list"
    local flags=()
    for name in "${names[@]}"; do flags+=(--test "$name"); done
    log "building ${names[*]} (static)"
    json=$(cd "$repo" && cargo test --no-run "${flags[@]}" \
        --message-format=json 2>"$work/build.log") || { log "building the tests failed:"; tail -30 "$work/build.log" >&2; exit 1; }
    exe_of() {
        echo "$json" | jq -r --arg n "$1" 'select(.reason == "compiler-artifact" and .target.name == $n and .executable != null) | .executable' | tail -1
    }
    local berth exe i
    berth=$(exe_of berth)
    [ -x "$berth" ] || { log "no berth executable"; exit 1; }
    cp "$berth" "$p/bin/berth"
    # The tests run berth from the absolute path cargo baked into them, and read engine-written
    # process files from ../shared next to the repository: "PATH TARGET" symlinks to make.
    echo "$berth /payload/bin/berth" >"$p/links"
    for name in "${names[@]}"; do
        exe=$(exe_of "$name")
        [ -x "$exe" ] || { log "no executable for $name"; exit 1; }
        file "$exe" | grep -qE "static(-pie)? linked|statically linked" || { log "$exe is not static"; exit 1; }
        cp "$exe" "$p/bin/$name-tests"
    done
    printf '%s\n' "${lines[@]}" >"$p/tests"
    if [ -d "$repo/../shared/testdata" ]; then
        mkdir -p "$p/shared"
        cp -r "$repo/../shared/testdata" "$p/shared/"
        echo "$(cd "$repo/.." && pwd)/shared /payload/shared" >>"$p/links"
    fi
    cp "$here/guest/run-tests" "$here/guest/bench-systemd" "$p/"
    local mb
    mb=$(du -sm "$p" | cut -f1)
    rm -f "$work/payload.img"
    mkfs.ext4 -q -F -L berth-payload -d "$p" "$work/payload.img" "$((mb + 64))M" >/dev/null
}

# Boots once with the given hierarchy; returns the tests' status.
boot() {
    local hierarchy=$1 serial="$work/serial-$1.log" extra=""
    [ "$hierarchy" = v1 ] && extra="systemd.unified_cgroup_hierarchy=0"
    [ -n "${BERTH_VM_BENCH:-}" ] && extra="$extra berth.bench=1"
    rm -f "$serial"
    log "booting ($hierarchy, TCG); serial console in $serial"
    local start=$SECONDS
    timeout "${BERTH_VM_TIMEOUT:-1200}" qemu-system-x86_64 -accel tcg -m 2560 -smp 1 \
        -kernel "$vmlinuz" -initrd "$work/initramfs.cpio.gz" \
        -append "console=ttyS0 panic=-1 no_timer_check loglevel=4 systemd.show_status=0 berth.hierarchy=$hierarchy $extra" \
        -drive "file=$image,format=raw,if=virtio,snapshot=on" \
        -drive "file=$work/payload.img,format=raw,if=virtio,readonly=on" \
        -display none -serial "file:$serial" -no-reboot -nodefaults >/dev/null 2>&1 || true
    local rc
    rc=$(grep -a -o 'BERTH_VM_RC=[0-9]*' "$serial" | tail -1 | cut -d= -f2)
    log "$hierarchy: the tests' output:"
    grep -a -E '^(test |running |test result|berth-vm|thread |  left|  right|assertion|skipped)|panicked' "$serial" >&2 || true
    log "$hierarchy: $((SECONDS - start)) s from boot to power-off"
    if [ -z "$rc" ]; then
        log "no result line from the VM ($hierarchy: boot failure or timeout); last lines:"
        tail -40 "$serial" >&2
        return 1
    fi
    if [ "$rc" != 0 ] || [ -n "${BERTH_VM_KEEP:-}" ]; then
        log "full serial log: $serial"
    fi
    return "$rc"
}

ensure_packages
ensure_kernel
ensure_image
build_initramfs
build_payload
# Both hierarchies at once (TCG runs a vCPU per host thread); each reports when it is done.
pids=()
for h in ${1:-v2 v1}; do
    boot "$h" &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do
    wait "$pid" || rc=1
done
exit $rc
