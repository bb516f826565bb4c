#!/usr/bin/env bash
# cgroup v2 figures: `run` of /bin/true and the split create/start/delete, berth, runc and
# crun interleaved, inside the cgroup v2 VM of integration/vm (Debian's cloud kernel under
# qemu, cgroup2 with every controller, so berth clones the init straight into its cgroup).
# qemu emulates the CPU (TCG), so every time is many times the host's: compare the ratios.
# Uses the VM lane's kernel (integration/vm/run.sh --kernel-only fetches it into target/vm).
# Run as root: bash bench/v2.sh [ROUNDS] [RUNS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
rounds=${1:-4}
runs=${2:-3}
bench_packages qemu-system-x86 cpio
BERTH=${BERTH:-$(bench_build)}
vm=${BERTH_VM_DIR:-$repo/target/vm}
[ -f "$vm/vmlinuz" ] || bash "$repo/integration/vm/run.sh" --kernel-only
work=$(mktemp -d /tmp/berth-v2bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The initramfs: busybox, static berth, runc, crun and hyperfine with their libraries.
root=$work/initramfs
mkdir -p "$root"/{bin,proc,sys,dev,tmp,run}
cp /bin/busybox "$root/bin/busybox"
cp "$BERTH" "$root/bin/berth"
for b in /usr/sbin/runc /usr/bin/crun /usr/bin/hyperfine; do
    cp "$b" "$root/bin/"
    for l in $(ldd "$b" | awk '/=>/ {print $3}') /lib64/ld-linux-x86-64.so.2; do
        cp -L --parents "$l" "$root"
    done
done
bench_bundle "$root/bundle"

cat >"$root/init" <<INIT
#!/bin/busybox sh
if [ ! -e /.switched ]; then
    /bin/busybox mkdir -p /newroot
    /bin/busybox mount -t tmpfs -o size=90% tmpfs /newroot
    for f in /*; do [ "\$f" = /newroot ] || /bin/busybox cp -a "\$f" /newroot/; done
    /bin/busybox touch /newroot/.switched
    exec /bin/busybox switch_root /newroot /init
fi
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for c in \$(cat /sys/fs/cgroup/cgroup.controllers); do echo "+\$c" > /sys/fs/cgroup/cgroup.subtree_control; done
echo "berth-v2-bench: kernel \$(uname -r), \$(nproc) cpu"
names="berth runc crun"
rt() { echo "/bin/\$1 --root /run/\$1"; }
bench() { # scenario: hyperfine rounds, the runtimes' order rotating
    scen=\$1
    for i in \$(seq $rounds); do
        set -- ; n=0
        for k in 0 1 2; do
            r=\$(echo \$names | cut -d' ' -f\$(( (i + k) % 3 + 1 )))
            case \$scen in
            run) set -- "\$@" -n \$r "\$(rt \$r) run -b /bundle b" ;;
            create) set -- "\$@" --prepare "sh -c '\$(rt \$r) delete -f s >/dev/null 2>&1; true'" -n \$r "\$(rt \$r) create -b /bundle s" ;;
            start) set -- "\$@" --prepare "sh -c '\$(rt \$r) delete -f s >/dev/null 2>&1; \$(rt \$r) create -b /bundle s </dev/null >/dev/null 2>&1'" -n \$r "\$(rt \$r) start s" ;;
            delete) set -- "\$@" --prepare "sh -c '\$(rt \$r) delete -f s >/dev/null 2>&1; \$(rt \$r) create -b /bundle s </dev/null >/dev/null 2>&1; \$(rt \$r) start s; while \$(rt \$r) state s 2>/dev/null | grep -q running; do :; done'" -n \$r "\$(rt \$r) delete s" ;;
            esac
        done
        hyperfine -N -r $runs --style none --export-json /tmp/out.json "\$@" >/dev/null 2>/tmp/hf.log || cat /tmp/hf.log
        echo "BENCH-BEGIN \$scen.\$i"; cat /tmp/out.json; echo; echo "BENCH-END"
    done
}
for s in run create start delete; do bench \$s; done
for r in \$names; do \$(rt \$r) delete -f s >/dev/null 2>&1; done
echo "BENCH-DONE"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.cpio.gz"

bench_log "booting the VM (TCG); this takes a few minutes"
timeout "${BERTH_VM_TIMEOUT:-1200}" qemu-system-x86_64 -accel tcg -m 2048 -smp 1 \
    -kernel "$vm/vmlinuz" -initrd "$work/initramfs.cpio.gz" \
    -append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=3" \
    -display none -serial "file:$work/serial.log" -no-reboot -nodefaults >/dev/null 2>&1 || true
grep -a -q BENCH-DONE "$work/serial.log" || { bench_log "the VM did not finish:"; tail -30 "$work/serial.log" >&2; exit 1; }
mkdir -p "$work/results"
awk -v dir="$work/results" '/^BENCH-BEGIN/ {f = dir "/" $2 ".json"; next} /^BENCH-END/ {close(f); f = ""; next} f {print > f}' \
    <(tr -d '\r' <"$work/serial.log")
grep -a '^berth-v2-bench' "$work/serial.log" | tr -d '\r'
report run "v2 (VM, TCG): run /bin/true"
report create "v2 (VM, TCG): create"
report start "v2 (VM, TCG): start"
report delete "v2 (VM, TCG): delete"
report create,start,delete "v2 (VM, TCG): create + start + delete (sum of the steps)"
