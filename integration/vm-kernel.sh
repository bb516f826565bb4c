# Sourced by integration/vm/run.sh and integration/vm-systemd/run.sh, which set $work and log():
# the kernel both VM lanes boot, the one Debian's linux-image-cloud-amd64 meta package points
# at, downloaded and unpacked once into $work/kernel/root (again when the meta package points
# at another one). ensure_kernel sets kernel_pkg (the package), kver (its modules directory's
# name) and vmlinuz (the kernel image).
kernel_pkg=
kver=
vmlinuz=
ensure_kernel() {
    kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$kernel_pkg" ] || { log "cannot find the kernel package behind linux-image-cloud-amd64"; exit 1; }
    if [ ! -f "$work/kernel/$kernel_pkg.done" ]; then
        log "downloading $kernel_pkg"
        rm -rf "$work/kernel" && mkdir -p "$work/kernel"
        (cd "$work/kernel" && apt-get download "$kernel_pkg" >/dev/null 2>&1)
        dpkg-deb -x "$work"/kernel/*.deb "$work/kernel/root"
        touch "$work/kernel/$kernel_pkg.done"
    fi
    kver=$(ls "$work/kernel/root/lib/modules")
    vmlinuz=$work/kernel/root/boot/vmlinuz-$kver
}
