"""How `solve` grows with the horizon: scenario_c at 60 s, 600 s and one hour.

    python bench/bench_horizon.py [--horizons 60 600 3600]

Each horizon is one `rtgen-opt solve scenario_c --horizon H --time-limit L --workers 1
--format json` process, L the target's time (60 s up to 600 s, 5 min for an hour). Prints, per horizon, the frames released, the best schedule and
the proven lower bound, the gap in points of the frames, the wall and CPU seconds of the
process and its peak memory, then the exponent of a log-log fit of CPU time against the
horizon (linear growth: ~1) and the verdict against the targets (60 s: <= 2 violations
of gap in <= 10 s; 600 s: <= 0.1 % in <= 60 s; one hour: <= 0.1 % in <= 5 min). On a
busy machine the wall time says more about the neighbours than about the tool: compare
the CPU column, and `reproducible: false` says a wall-clock cap fired.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CLI = Path(sys.executable).with_name("rtgen-opt")
TARGETS = {60: ("violations", 2, 60), 600: ("pp", 0.1, 60), 3600: ("pp", 0.1, 300)}
FAST_60S = 10  # seconds: the 60 s answer is also wanted within this


def time_limit(horizon: int) -> str:
    return f"{TARGETS[horizon][2]}s" if horizon in TARGETS else "60s"


def run(horizon: int, time_limit: str) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run([str(CLI), "solve", "scenario_c", "--horizon", f"{horizon}s",
                          "--time-limit", time_limit, "--workers", "1", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    data = json.loads(out)
    return {"horizon": horizon, "released": data["released"], "best": data["violations"],
            "lower": data["violations_lower_bound"], "gap": data["gap_violations"],
            "pp": data["gap_pp"], "wall": wall, "cpu": cpu,
            "peak_mb": after.ru_maxrss / 1024, "reproducible": data["reproducible"]}


def verdict(row: dict) -> str:
    if row["horizon"] not in TARGETS:
        return ""
    kind, most, seconds = TARGETS[row["horizon"]]
    value = row["gap"] if kind == "violations" else row["pp"]
    seconds = FAST_60S if row["horizon"] == 60 else seconds
    met = value <= most and row["wall"] <= seconds
    unit = " violations" if kind == "violations" else " pp"
    return (f"{'met' if met else 'MISSED'} (target <= {most}{unit} in <= {seconds} s: "
            f"{value:.3g}{unit} in {row['wall']:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", nargs="*", type=int, default=[60, 600, 3600])
    args = parser.parse_args()
    rows = []
    print("| horizon s | frames | best | lower bound | gap pp | wall s | CPU s | peak MB "
          "| reproducible | target |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for horizon in args.horizons:
        row = run(horizon, time_limit(horizon))
        rows.append(row)
        print(f"| {horizon} | {row['released']} | {row['best']:g} | {row['lower']:g} | "
              f"{row['pp']:.3f} | {row['wall']:.1f} | {row['cpu']:.1f} | "
              f"{row['peak_mb']:.0f} | {row['reproducible']} | {verdict(row)} |", flush=True)
    if len(rows) >= 2:
        slope = np.polyfit([math.log(r["horizon"]) for r in rows],
                           [math.log(max(r["cpu"], 1e-3)) for r in rows], 1)[0]
        print(f"\nCPU time grows as horizon^{slope:.2f}")


if __name__ == "__main__":
    main()
