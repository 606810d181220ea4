"""Executor benchmark: every built-in policy on 60 s of scenario_c at layer granularity.

    python bench/bench_executor.py [--scenario scenario_c] [--horizon 60] [--repeat 3]

Prints, per policy, the best wall time over the repeats, the events processed and events
per second; then the total against the target (all of them together in under 2 s on a
2-core machine). Speed is measured here, never asserted in the test suite.
"""

from __future__ import annotations

import argparse
import platform
import time
from fractions import Fraction

from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES

TARGET_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenario_c")
    parser.add_argument("--horizon", type=float, default=60.0, help="seconds")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    ts = build_taskset(load_scenario(args.scenario), Fraction(str(args.horizon)))
    expand_s = time.perf_counter() - started
    print(f"{args.scenario}, {args.horizon:g} s, granularity {ts.granularity}: {ts.num_jobs} jobs, "
          f"{ts.num_segments} segments (expanded in {expand_s * 1000:.1f} ms)")
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(f"{'policy':10s} {'wall s':>8s} {'events':>8s} {'events/s':>10s} {'rows':>8s}")
    total = 0.0
    for name in POLICIES:
        best = min((simulate(ts, name) for _ in range(args.repeat)), key=lambda r: r.wall_s)
        total += best.wall_s
        print(f"{name:10s} {best.wall_s:8.3f} {best.events:8d} {best.events / best.wall_s:10.0f} "
              f"{len(best.schedule):8d}")
    verdict = "meets" if total < TARGET_S else "misses"
    print(f"{'all':10s} {total:8.3f}   ({verdict} the {TARGET_S:g} s target)")


if __name__ == "__main__":
    main()
