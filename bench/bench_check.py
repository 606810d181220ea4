"""Benchmark: `check --policy P` under timing uncertainty (the exact analysis).

Prints, per horizon, the verdict, the wall time, the states explored and merged, and the
widest frontier, for the docs' worked example: scenario_c with two NPUs, every duration
within [0.9, 1.1] x nominal. Targets (issue 22): 10 s decided within 60 s, 60 s within
5 min, growth no worse than linear in the horizon.

    python bench/bench_check.py [--policy ftf] [--horizons 10,20,40,60] [--set K=V ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="ftf")
    parser.add_argument("--horizons", default="10,20,40,60")
    parser.add_argument("--set", action="append", default=None, dest="sets")
    parser.add_argument("--time-limit", default="600s")
    args = parser.parse_args()
    sets = args.sets or ["platform.npu=2", "execution=[0.9,1.1]"]
    print(f"check scenario_c --policy {args.policy} " + " ".join(f"--set {s}" for s in sets))
    print(f"{'horizon':>8} {'verdict':>8} {'wall s':>8} {'states':>10} {'merged':>10} "
          f"{'max width':>10} {'s per horizon s':>16}")
    for horizon in args.horizons.split(","):
        command = [sys.executable, "-m", "rtgen_opt.cli.app", "check", "scenario_c",
                   "--policy", args.policy, "--horizon", f"{horizon}s", "--time-limit",
                   args.time_limit, "-f", "json"]
        for s in sets:
            command += ["--set", s]
        started = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        data = json.loads(out.stdout)
        exact = (data.get("analysis") or {}).get("exact_analysis") or {}
        print(f"{horizon + ' s':>8} {data['verdict']:>8} {wall:8.1f} "
              f"{exact.get('states', 0):>10,} {exact.get('merged', 0):>10,} "
              f"{exact.get('max_width', 0):>10,} {wall / float(horizon):16.2f}")


if __name__ == "__main__":
    main()
