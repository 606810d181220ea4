"""The proven optimum at the headline scale: lower bound, best schedule and proven gap.

    python bench/bench_optimum.py                    # 60 s: scenario_c, its variants, a, b, d
    python bench/bench_optimum.py --horizon 600 --cases c
    python bench/bench_optimum.py --time-limit 30 --workers 1

One `solve` per instance (the command's whole pipeline: policies for the warm start, the
Lagrangian bound, the construction, replay), printed as: instance, LB, UB, gap in
violations and in % of the run's frames, wall time, and which method gave each bound.

Targets (2 cores, default time limit): scenario_c at 60 s with a proven gap <= 1 % of
frames within 30 s; <= 2 % on the variants and on scenario_a/b/d; 600 s of scenario_c
<= 1 % within 3 minutes.
"""

from __future__ import annotations

import argparse
from fractions import Fraction

from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.optimisation.solve import solve

CASES = {
    "c": ("scenario_c", ()),
    "c-2048": ("scenario_c", ("llm.input_tokens=2048",)),
    "c-od30": ("scenario_c", ("od.fps=30",)),
    "c-npu2": ("scenario_c", ("platform.npu=2",)),
    "a": ("scenario_a", ()),
    "b": ("scenario_b", ()),
    "d": ("scenario_d", ()),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--horizon", type=float, default=60.0, help="seconds")
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    print(f"{'instance':28s} {'frames':>6s} {'LB':>6s} {'UB':>6s} {'gap':>5s} "
          f"{'gap % frames':>12s} {'wall s':>7s}  bounds (lower | upper)")
    for key in args.cases:
        name, overrides = CASES[key]
        ts = build_taskset(load_scenario(name, overrides), Fraction(str(args.horizon)))
        out = solve(ts, args.time_limit, args.workers)
        frames = sum(t.num_jobs for t in ts.tasks if t.deadline_us is not None)
        label = name + ("" if not overrides else " " + " ".join(overrides))
        gap = None if out.violations is None else out.violations - out.violations_lower_bound
        pct = "-" if gap is None else f"{100 * gap / max(1, frames):.2f} %"
        print(f"{label:28s} {frames:6d} {out.violations_lower_bound:6g} "
              f"{_fmt(out.violations):>6s} {_fmt(gap):>5s} {pct:>12s} {out.wall_s:7.1f}  "
              f"{out.lower_bound_method} | {out.upper_bound_method}"
              f"{'' if out.replay_ok else '  REPLAY FAILED'}", flush=True)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:g}"


if __name__ == "__main__":
    main()
