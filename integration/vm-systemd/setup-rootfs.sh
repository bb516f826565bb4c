#!/bin/bash
# Configures the debootstrapped root filesystem of the systemd lane (run by run.sh as root,
# before mkfs.ext4 -d). Arguments: ROOT MODULES_DIR GUEST_DIR. Part of the image cache key.
set -euxo pipefail
root=$1 modules=$2 guest=$3

# The kernel's modules (podman's overlay and netfilter, criu's diag modules) and their index.
mkdir -p "$root/lib/modules"
cp -a "$modules" "$root/lib/modules/"
chroot "$root" depmod "$(basename "$modules")"

echo berth-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost berth-vm\n::1 localhost\n' >"$root/etc/hosts"
: >"$root/etc/fstab"
# A fixed machine id: no first-boot setup.
chroot "$root" systemd-machine-id-setup
# Boot straight to the tests: no gettys, no timers, no waiting for a network.
chroot "$root" systemctl set-default multi-user.target
for u in getty@tty1.service serial-getty@ttyS0.service console-getty.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer systemd-timesyncd.service systemd-networkd-wait-online.service \
    podman-restart.service podman-auto-update.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# The tests, as a service once the system is up.
install -m 0644 "$guest/berth-tests.service" "$root/etc/systemd/system/berth-tests.service"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/payload"
ln -sf ../berth-tests.service "$root/etc/systemd/system/multi-user.target.wants/berth-tests.service"
# A user with a lingering systemd user instance (user@1000.service starts at boot), for the
# rootless systemd driver; subordinate ids for rootless podman.
chroot "$root" useradd -m -u 1000 -s /bin/sh sysdtest
mkdir -p "$root/var/lib/systemd/linger"
touch "$root/var/lib/systemd/linger/sysdtest"
echo "sysdtest:100000:65536" >"$root/etc/subuid"
echo "sysdtest:100000:65536" >"$root/etc/subgid"
# podman: vfs storage (no fuse in the image).
mkdir -p "$root/etc/containers"
printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' >"$root/etc/containers/storage.conf"
# Smaller image: no package lists or downloaded archives.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* "$root"/usr/share/man/*
