#!/usr/bin/env bash
# Count the skipped tests of a `cargo test` run, and fail a lane (a test binary) whose tests
# all skipped: a lane that checks nothing is not green.
#   scripts/skips.sh TEST_OUTPUT SKIP_LOG
# TEST_OUTPUT is cargo test's output; SKIP_LOG has one `BINARY<TAB>TEST<TAB>REASON` line per
# skip (integration/common: skip!).
set -euo pipefail
out=$1
log=$2
[ -f "$log" ] || : >"$log"
awk -F'\t' -v skiplog="$log" '
    BEGIN {
        while ((getline line < skiplog) > 0) {
            split(line, f, "\t")
            key = f[1] "\t" f[2]
            if (!(key in seen)) { seen[key] = 1; skipped[f[1]]++; total++; reasons[total] = f[1] " " f[2] ": " f[3] }
        }
    }
    /^ *Running / {
        bin = $0
        sub(/.*\(/, "", bin); sub(/\).*/, "", bin); sub(/.*\//, "", bin); sub(/-[0-9a-f]+$/, "", bin)
        next
    }
    /^test result: / && bin != "" {
        n = $0; sub(/.*ok\. /, "", n); sub(/.*FAILED\. /, "", n); sub(/ passed.*/, "", n)
        passed[bin] += n
        bin = ""
    }
    END {
        printf "skipped: %d test(s)\n", total + 0
        for (i = 1; i <= total; i++) print "  " reasons[i]
        bad = 0
        for (b in passed) if (passed[b] > 0 && skipped[b] >= passed[b]) {
            printf "lane %s: all %d of its tests skipped\n", b, passed[b]; bad = 1
        }
        exit bad
    }
' "$out"
