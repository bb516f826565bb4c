#!/usr/bin/env bash
# End to end on a fresh machine, as root: build berth, build a small busybox image with
# umoci, unpack it into a bundle with `berth unpack`, run it with `berth run`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for p in busybox-static umoci; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A static binary (.cargo/config.toml), so cargo puts it under the target's directory.
cargo build --release
berth=$PWD/target/x86_64-unknown-linux-gnu/release/berth
ldd "$berth" || true

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A one-layer image: busybox-static and its applet links.
mkdir -p "$work/tree/bin" "$work/tree/etc"
cp /bin/busybox "$work/tree/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$work/tree/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/tree/etc/passwd"
echo 'root:x:0:' > "$work/tree/etc/group"
umoci init --layout "$work/image"
umoci new --image "$work/image:demo"
# (unpack + repack: Debian's umoci 0.4.7 `insert` writes layer tars without their end padding)
umoci unpack --image "$work/image:demo" "$work/layer"
cp -a "$work/tree/." "$work/layer/rootfs/"
umoci repack --image "$work/image:demo" "$work/layer"
umoci config --image "$work/image:demo" --config.env PATH=/bin \
    --config.entrypoint /bin/sh --config.entrypoint -c \
    --config.cmd 'echo "hello from berth: $(uname -s) $(hostname) pid $$"; cat /proc/self/status | grep -E "^Cap(Eff|Bnd)"'

"$berth" unpack "$work/image:demo" "$work/bundle"
"$berth" --root "$work/state" run -b "$work/bundle" "demo-$$"
