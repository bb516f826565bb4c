#!/usr/bin/env bash
# One scale run (called by bench/scale.sh): N containers created, then started, then deleted,
# P at a time, by runtime RT with state root ROOT; each phase's wall time (ms) is appended to
# PHASES as "create S\nstart S\ndelete S".
# usage: scale-one.sh RT ROOT BUNDLE N P PHASES
set -euo pipefail
rt=$1 root=$2 bundle=$3 n=$4 p=$5 phases=$6
tag=$(basename "$root")
now() { date +%s%N; }
t0=$(now)
seq "$n" | xargs -P "$p" -I{} "$rt" --root "$root" create -b "$bundle" "$tag-{}" >/dev/null
t1=$(now)
seq "$n" | xargs -P "$p" -I{} "$rt" --root "$root" start "$tag-{}"
t2=$(now)
seq "$n" | xargs -P "$p" -I{} "$rt" --root "$root" delete -f "$tag-{}"
t3=$(now)
printf 'create %d\nstart %d\ndelete %d\n' $(((t1 - t0) / 1000)) $(((t2 - t1) / 1000)) $(((t3 - t2) / 1000)) >>"$phases"
