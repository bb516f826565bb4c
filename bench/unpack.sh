#!/bin/bash
# Benchmark `berth unpack` against `umoci unpack` and the floor (gunzip of each layer piped into
# GNU tar, in order), on a three-layer Debian minbase image and a busybox image, both built here
# once into $CACHE (debootstrap + umoci). Prints a table with ratios and peak RSS.
#
# Needs (Debian): debootstrap umoci time busybox-static; network to the Debian mirror once.
# Usage: bench/unpack.sh [runs]    (env: CACHE=/var/tmp/berth-bench, BERTH=target/x86_64-unknown-linux-gnu/release/berth)
set -euo pipefail

RUNS=${1:-3}
CACHE=${CACHE:-/var/tmp/berth-bench}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH:-$HERE/target/x86_64-unknown-linux-gnu/release/berth}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}

for t in umoci debootstrap /usr/bin/time gunzip tar busybox; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install -y umoci debootstrap time busybox-static)"; exit 1; }
done
[ -x "$BERTH" ] || (cd "$HERE" && cargo build --release)
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---- images (built once) ----
build_debian() {
    local img=$CACHE/debian
    [ -f "$img/index.json" ] && return
    if [ ! -d "$CACHE/minbase" ]; then
        debootstrap --variant=minbase "$SUITE" "$CACHE/minbase.tmp" "$MIRROR"
        mv "$CACHE/minbase.tmp" "$CACHE/minbase"
    fi
    local b=$CACHE/build
    rm -rf "$img.tmp" "$b"
    umoci init --layout "$img.tmp"
    umoci new --image "$img.tmp:minbase"
    # Each step unpacks the current image afresh, changes it and repacks: one layer per step.
    step() {
        rm -rf "$b"
        umoci unpack --image "$img.tmp:minbase" "$b" >/dev/null
        "$@"
        umoci repack --image "$img.tmp:minbase" "$b"
    }
    # layer 1: everything but /usr/share
    step sh -c "tar -C '$CACHE/minbase' --exclude=./usr/share -cf - . | tar -C '$b/rootfs' -xpf -"
    # layer 2: /usr/share
    step sh -c "tar -C '$CACHE/minbase' -cf - ./usr/share | tar -C '$b/rootfs' -xpf -"
    # layer 3: deletions (docs, man pages, apt caches) and a small change
    step sh -c "rm -rf '$b/rootfs/usr/share/doc' '$b/rootfs/usr/share/man' '$b/rootfs/var/cache/apt'; echo bench > '$b/rootfs/etc/hostname'"
    umoci config --image "$img.tmp:minbase" --config.cmd /bin/bash
    rm -rf "$b"
    mv "$img.tmp" "$img"
}

build_busybox() {
    local img=$CACHE/busybox
    [ -f "$img/index.json" ] && return
    local b=$CACHE/build-bb
    rm -rf "$img.tmp" "$b"
    umoci init --layout "$img.tmp"
    umoci new --image "$img.tmp:latest"
    umoci unpack --image "$img.tmp:latest" "$b" >/dev/null
    mkdir -p "$b/rootfs/bin" "$b/rootfs/etc" "$b/rootfs/tmp"
    cp "$(command -v busybox)" "$b/rootfs/bin/busybox"
    for a in $(busybox --list); do [ -e "$b/rootfs/bin/$a" ] || ln -s busybox "$b/rootfs/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$b/rootfs/etc/passwd"
    umoci repack --image "$img.tmp:latest" "$b"
    umoci config --image "$img.tmp:latest" --config.cmd /bin/sh
    rm -rf "$b"
    mv "$img.tmp" "$img"
}

# A layer with one 1 GiB sparse file holding 2 MiB of data (GNU tar, PAX sparse 1.0), in a
# layout written by hand: umoci's Go writer would store the holes as zeros.
build_sparse() {
    local img=$CACHE/sparse
    [ -f "$img/index.json" ] && return
    local src=$CACHE/sparse-src
    rm -rf "$img.tmp" "$src" && mkdir -p "$img.tmp/blobs/sha256" "$src"
    truncate -s 1G "$src/big"
    head -c 1M /dev/urandom | dd of="$src/big" conv=notrunc status=none
    head -c 1M /dev/urandom | dd of="$src/big" bs=1M seek=700 conv=notrunc status=none
    tar -C "$src" --format=posix --sparse --sparse-version=1.0 -cf "$img.tmp/layer.tar" .
    local diff blob cfg man
    diff=$(sha256sum < "$img.tmp/layer.tar" | cut -d' ' -f1)
    gzip -1 -c "$img.tmp/layer.tar" > "$img.tmp/layer.gz"
    blob=$(sha256sum < "$img.tmp/layer.gz" | cut -d' ' -f1)
    mv "$img.tmp/layer.gz" "$img.tmp/blobs/sha256/$blob"
    rm "$img.tmp/layer.tar"
    printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/big"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff" > "$img.tmp/cfg"
    cfg=$(sha256sum < "$img.tmp/cfg" | cut -d' ' -f1)
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
        "$cfg" "$(stat -c %s "$img.tmp/cfg")" "$blob" "$(stat -c %s "$img.tmp/blobs/sha256/$blob")" > "$img.tmp/man"
    man=$(sha256sum < "$img.tmp/man" | cut -d' ' -f1)
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
        "$man" "$(stat -c %s "$img.tmp/man")" > "$img.tmp/index.json"
    mv "$img.tmp/cfg" "$img.tmp/blobs/sha256/$cfg"
    mv "$img.tmp/man" "$img.tmp/blobs/sha256/$man"
    echo '{"imageLayoutVersion":"1.0.0"}' > "$img.tmp/oci-layout"
    rm -rf "$src"
    mv "$img.tmp" "$img"
}

build_debian
build_busybox
build_sparse

# ---- measuring ----
# Outputs go to $OUTDIR (default: a tmpfs) so the numbers measure the unpackers, not the disk's
# writeback and discard; OUTDIR=/var/tmp/x measures on disk.
OUTDIR=${OUTDIR:-/dev/shm/berth-bench-out}
mkdir -p "$OUTDIR"
trap 'rm -rf "$WORK" "$OUTDIR"' EXIT

# Best wall time (ms resolution) and the peak RSS of that run, over $RUNS runs;
# args: the command, which gets a fresh target path as $0 when it uses one.
measure() {
    local best="" rss=""
    for _ in $(seq "$RUNS"); do
        rm -rf "$OUTDIR/out"
        sync  # earlier runs' writeback and discards stay out of the timed window
        local t0 t1
        t0=$(date +%s%N)
        /usr/bin/time -f "%M" -o "$WORK/t" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
        t1=$(date +%s%N)
        local secs kb
        secs=$(awk "BEGIN{printf \"%.3f\", ($t1-$t0)/1e9}")
        kb=$(tail -1 "$WORK/t")
        if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; rss=$kb; fi
    done
    rm -rf "$OUTDIR/out"
    echo "$best $rss"
}

# Total syscalls of a command (all threads and children), from strace -c.
syscalls() {
    rm -rf "$OUTDIR/out"
    strace -f -c -o "$WORK/strace" "$@" >/dev/null 2>&1
    rm -rf "$OUTDIR/out"
    awk '/total/ {print $4}' "$WORK/strace"
}

layers_of() {  # blob paths of the image's layers, in order
    local img=$1 tag=$2
    local m
    m=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]==$t) | .digest' "$img/index.json")
    jq -r '.layers[].digest' "$img/blobs/sha256/${m#sha256:}" | sed "s|sha256:|$img/blobs/sha256/|"
}

export -f layers_of
printf '\n%-9s %-22s %8s %9s %9s %10s\n' image tool seconds vs_umoci vs_floor peak_RSS
for spec in "debian:minbase" "busybox:latest" "sparse:latest"; do
    name=${spec%%:*}; tag=${spec#*:}; img=$CACHE/$name
    blobs=$(layers_of "$img" "$tag" | tr '\n' ' ')
    gz=$(du -cb $blobs | tail -1 | cut -f1)
    read -r u_s u_k < <(measure sh -c "umoci unpack --image $img:$tag \$0" "$OUTDIR/out")
    read -r b_s b_k < <(measure sh -c "$BERTH unpack $img:$tag \$0" "$OUTDIR/out")
    # BERTH_BASE=path: the same runs with another berth binary (before/after a change).
    [ -n "${BERTH_BASE:-}" ] && read -r bb_s bb_k < <(measure sh -c "$BERTH_BASE unpack $img:$tag \$0" "$OUTDIR/out")
    read -r f_s f_k < <(measure sh -c "mkdir -p \$0/rootfs && for l in $blobs; do gunzip -c \$l | tar -C \$0/rootfs -xpf - --numeric-owner --xattrs --xattrs-include='*'; done" "$OUTDIR/out")
    read -r g_s g_k < <(measure sh -c "for l in $blobs; do gunzip -c \$l >/dev/null; done")
    # overlay: fill the cache once, then time a second bundle (in a private mount namespace).
    ocache=$OUTDIR/ocache
    unshare -m --propagation private "$BERTH" unpack --cache "$ocache" --overlay "$img:$tag" "$OUTDIR/warm" >/dev/null 2>&1
    read -r o_s o_k < <(measure unshare -m --propagation private sh -c "$BERTH unpack --cache $ocache --overlay $img:$tag \$0" "$OUTDIR/out")
    read -r c_s c_k < <(measure sh -c "$BERTH unpack --cache $ocache $img:$tag \$0" "$OUTDIR/out")
    rm -rf "$OUTDIR/warm" "$ocache"
    row() { printf '%-9s %-22s %8s %9s %9s %8s MB\n' "$name" "$1" "$2" \
        "$(awk "BEGIN{printf \"%.2fx\", $u_s/$2}")" "$(awk "BEGIN{printf \"%.2fx\", $2/$f_s}")" "$(awk "BEGIN{printf \"%.1f\", $3/1024}")"; }
    entries=0
    for l in $blobs; do entries=$((entries + $(gunzip -c "$l" | tar -tf - | wc -l))); done
    echo "# $name: $(echo $blobs | wc -w) layers, $((gz / 1000000)) MB compressed, $entries tar entries"
    row "umoci unpack" "$u_s" "$u_k"
    row "berth unpack" "$b_s" "$b_k"
    [ -n "${BERTH_BASE:-}" ] && row "berth (BERTH_BASE)" "$bb_s" "$bb_k"
    row "gunzip|tar (floor)" "$f_s" "$f_k"
    row "gunzip only" "$g_s" "$g_k"
    row "berth --overlay (warm)" "$o_s" "$o_k"
    row "berth --cache (warm)" "$c_s" "$c_k"
    if command -v strace >/dev/null; then
        su=$(syscalls umoci unpack --image "$img:$tag" "$OUTDIR/out")
        sb=$(syscalls "$BERTH" unpack "$img:$tag" "$OUTDIR/out")
        sf=$(syscalls sh -c "mkdir -p \$0/rootfs && for l in $blobs; do gunzip -c \$l | tar -C \$0/rootfs -xpf - --numeric-owner --xattrs --xattrs-include='*'; done" "$OUTDIR/out")
        printf '%-9s syscalls per tar entry: umoci %s, berth %s, gunzip|tar %s\n' "$name" \
            "$(awk "BEGIN{printf \"%.1f\", $su/$entries}")" "$(awk "BEGIN{printf \"%.1f\", $sb/$entries}")" "$(awk "BEGIN{printf \"%.1f\", $sf/$entries}")"
    fi
done
echo
echo "vs_umoci = umoci time / this time (higher is faster); vs_floor = this time / floor time."
