"""Solver benchmark: CP-SAT on the built-in scenarios at growing horizons.

    python bench/bench_solve.py                      # hyperperiod-scale, 1 s, 5 s; 60 s of C
    python bench/bench_solve.py --scenarios scenario_c --horizons 60 --time-limit 120

Prints wall time, status, violations (of released frames), lower bound and gap per run.
Targets: hyperperiod-scale instances proven optimal in under 10 s each; 60 s of scenario_c
with a gap of at most 2 % of released frames within a 120 s limit (2 cores).
"""

from __future__ import annotations

import argparse
import os
from fractions import Fraction

from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.optimisation.solve import solve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="*",
                        default=["scenario_a", "scenario_b", "scenario_c", "scenario_d"])
    parser.add_argument("--horizons", nargs="*", default=["hyper", "1", "5"],
                        help="seconds, or 'hyper' for one hyperperiod")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--long", action="store_true",
                        help="also 60 s of scenario_c with a 120 s limit")
    args = parser.parse_args()
    runs = [(s, h, args.time_limit) for s in args.scenarios for h in args.horizons]
    if args.long:
        runs.append(("scenario_c", "60", 120.0))
    print(f"{'scenario':11s} {'horizon':>9s} {'jobs':>6s} {'segs':>6s} {'limit':>6s} "
          f"{'wall s':>7s} {'status':>10s} {'viol':>6s} {'LB':>6s} {'gap':>7s} "
          f"{'gap/frames':>10s} {'t_viol':>7s} {'method':>8s}")
    fit = []  # (jobs, seconds to the first objective) of direct runs
    for name, horizon, limit in runs:
        scenario = load_scenario(name)
        ts0 = build_taskset(scenario, Fraction(1))
        length = ts0.hyperperiod_s if horizon == "hyper" else Fraction(horizon)
        ts = build_taskset(scenario, length)
        out = solve(ts, limit, args.workers)
        released = sum(t.num_jobs for t in ts.tasks if t.deadline_us is not None)
        gap_frames = (None if out.violations is None else
                      (out.violations - out.violations_lower_bound) / max(1, released))
        # t_viol: wall time of the first objective's solve (direct runs), i.e. until the
        # violations were proven optimal (or the stage's share of the limit ran out)
        t_viol = next((f"{s['wall_s']:.1f}" for s in out.stages if s["name"] == "violations"
                       and "wall_s" in s), "-")
        if t_viol != "-" and float(t_viol) > 0:
            fit.append((ts.num_jobs, float(t_viol)))
        print(f"{name:11s} {float(length):8.4g}s {ts.num_jobs:6d} {ts.num_segments:6d} "
              f"{limit:6.0f} {out.wall_s:7.1f} {out.status.value:>10s} "
              f"{_fmt(out.violations):>6s} {_fmt(out.violations_lower_bound):>6s} "
              f"{_pct(out.gap):>7s} {_pct(gap_frames):>10s} {t_viol:>7s} {out.method:>8s}",
              flush=True)
    if len({j for j, _ in fit}) >= 2:
        import numpy as np

        jobs, secs = np.log([j for j, _ in fit]), np.log([t for _, t in fit])
        print(f"log-log exponent (direct runs): time to the first objective ~ "
              f"jobs^{np.polyfit(jobs, secs, 1)[0]:.2f}")


def _fmt(x) -> str:
    return "-" if x is None else f"{x:g}"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


if __name__ == "__main__":
    main()
