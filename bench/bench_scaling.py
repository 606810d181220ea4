"""Executor scaling: wall time, events/s and peak memory for growing horizons of
scenario_c at layer granularity; the exponent of a log-log fit of time against horizon
(linear growth: ~1).

    python bench/bench_scaling.py [--horizons 1 5 30 60 300 600] [--policy ftf]

Each horizon runs in a fresh process so that its peak resident memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np


def one(horizon: float, policy: str) -> dict:
    from rtgen_opt.model.scenario import load_scenario
    from rtgen_opt.model.taskset import build_taskset
    from rtgen_opt.simulation.executor import simulate

    started = time.perf_counter()
    ts = build_taskset(load_scenario("scenario_c"), Fraction(str(horizon)))
    expand = time.perf_counter() - started
    result = simulate(ts, policy)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"horizon_s": horizon, "segments": ts.num_segments, "events": result.events,
            "expand_s": expand, "wall_s": result.wall_s, "peak_mb": peak_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", nargs="*", type=float,
                        default=[1, 5, 30, 60, 300, 600])
    parser.add_argument("--policy", default="ftf")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one(args.child, args.policy)))
        return
    print(f"{'horizon s':>9s} {'segments':>9s} {'events':>9s} {'expand s':>8s} {'run s':>7s} "
          f"{'events/s':>9s} {'peak MB':>8s}   ({args.policy})")
    rows = []
    for h in args.horizons:
        out = subprocess.run([sys.executable, __file__, "--child", str(h), "--policy",
                              args.policy], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout)
        rows.append(r)
        print(f"{h:9g} {r['segments']:9d} {r['events']:9d} {r['expand_s']:8.3f} "
              f"{r['wall_s']:7.2f} {r['events'] / r['wall_s']:9.0f} {r['peak_mb']:8.0f}",
              flush=True)
    if len(rows) >= 2:
        x = np.log([r["horizon_s"] for r in rows])
        slope = np.polyfit(x, np.log([r["wall_s"] for r in rows]), 1)[0]
        mem = np.polyfit(x, np.log([r["peak_mb"] for r in rows]), 1)[0]
        print(f"log-log exponent: time ~ horizon^{slope:.2f}, peak memory ~ horizon^{mem:.2f}")


if __name__ == "__main__":
    main()
