#!/usr/bin/env python3
"""Pool the interleaved hyperfine rounds of one scenario and print medians, min/max and ratios.

usage: summary.py RESULTS_DIR SCENARIO[,SCENARIO...] TITLE
Reads RESULTS_DIR/SCENARIO.*.json (hyperfine --export-json, commands named with -n). Ratios are
of medians, to crun and to runc when they ran; with a `floor` row, each row also shows its
distance from the floor. With several scenarios (the steps of one sequence, timed apart), each
figure is the sum of the steps' figures.
"""
import glob
import json
import statistics
import sys


def load(results, scen):
    times = {}
    for path in sorted(glob.glob(f"{results}/{scen}.*.json")):
        for r in json.load(open(path))["results"]:
            times.setdefault(r["command"], []).extend(r["times"])
    if not times:
        sys.exit(f"summary: no results for {scen}")
    return times


def main():
    results, scen, title = sys.argv[1:4]
    steps = [load(results, s) for s in scen.split(",")]
    order = list(steps[0])
    pref = ["berth", "before", "runc", "crun", "floor"]
    order.sort(key=lambda n: pref.index(n) if n in pref else -1)
    med = {n: sum(statistics.median(st[n]) for st in steps) for n in order}
    lo = {n: sum(min(st[n]) for st in steps) for n in order}
    hi = {n: sum(max(st[n]) for st in steps) for n in order}
    cols = ["median", "min", "max"]
    if "floor" in med:
        cols.append("- floor")
    if "crun" in med:
        cols.append("vs crun")
    if "runc" in med:
        cols.append("vs runc")
    n = min(len(t) for st in steps for t in st.values())
    print(f"{title} ({n} runs each, interleaved)")
    print(f"  {'':8}" + "".join(f"{c:>10}" for c in cols))
    for name in order:
        row = [f"{med[name] * 1e3:8.2f}ms", f"{lo[name] * 1e3:8.2f}ms", f"{hi[name] * 1e3:8.2f}ms"]
        if "floor" in med:
            row.append(f"{(med[name] - med['floor']) * 1e3:8.2f}ms")
        if "crun" in med:
            row.append(f"{med[name] / med['crun']:10.2f}")
        if "runc" in med:
            row.append(f"{med[name] / med['runc']:10.2f}")
        print(f"  {name:8}" + "".join(f"{c:>10}" for c in row))


if __name__ == "__main__":
    main()
