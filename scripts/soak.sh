#!/usr/bin/env bash
# The long soak: 1,000 cycles (or the number given) of create/start/exec/kill/delete with
# failures mixed in, against the debug binary the tests build, printing the counts taken
# before and after (fds, mounts, cgroups, --root entries, zombies, peak RSS). As root.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-1000}
BERTH_SOAK_CYCLES="$cycles" cargo test --test soak -- --nocapture --test-threads=1 2>&1 |
    grep -E 'soak:|test result|panicked|assert'
