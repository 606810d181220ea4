"""Benchmark: `gap` — every serving policy's service-matched optimum, how tightly proven.

Prints, per scenario and policy: the policy's violations, its matched optimum's proven
lower .. upper bound, the gap in percentage points of the run's frames (one number when
the bounds meet), the bound's width in points, and the command's wall time. Targets
(issue 24): every policy that serves its requests within 1 point of the run's frames, the
whole command within 60 s on 2 cores.

    python bench/bench_gap.py [--scenarios scenario_c] [--horizon 60s] [--set K=V ...]

Measured on 2 shared cores (scenario_c, 60 s; the command itself: `rtgen-opt gap
scenario_c --horizon 60s --format json`), before -> after the window bound:

    policy      violations  matched optimum     gap (pp of 8224 frames)  width
    fcfs-aot    4556        401 .. 900 -> 614 .. 900   44.5..50.5 -> 44.5..47.9   6.1 -> 3.5
    fcfs-dyn    1332        401 .. 900 -> 614 .. 900   5.3..11.3  -> 5.3..8.7     6.1 -> 3.5
    ftf         888         443 .. 444 (unchanged)     5.4                        0.01
    kill-aware  648         394 .. 648 (unchanged)     0..3.1                     3.1
    wall        36 s -> 40 s (the window bound: one MILP per distinct request window)

then after the matched windows (optimisation/matched_windows.py; 2 cores, quiet):

    fcfs-aot    4556        615 .. 900 -> 615 .. 888   width 3.47 -> 3.32
    fcfs-dyn    1332        614 .. 900 -> 614 .. 888   width 3.48 -> 3.33
    kill-aware-fast 648     394 .. 648 (its own schedule: near its optimum, see
                            docs/optimum.md; the lower bound is what is weak)
    wall        47.8 s -> 40.5 s (the windows replace the whole-horizon construction)

then after the stronger window bound (one backend per frame segment, decode counted per
duration class, long layers against the frames' slack, groups above 500 frames cut):

    fcfs-aot    4556        615 .. 888 -> 888 (proven)   width 3.32 -> 0
    fcfs-dyn    1332        614 .. 888 -> 888 (proven)   width 3.33 -> 0
    kill-aware-fast 648     394 .. 648 -> 501 .. 648     width 3.09 -> 1.79
    wall        66.8 s on a shared machine, 45.2 s user CPU (main the same hour: 46.1 s
                wall, 45.2 s CPU: the bound costs no more; the wall is the neighbour's)

    --set od.fps=30: fcfs-dyn 384 .. 648 -> 636 .. 648, kill-aware(-fast) 275 -> 311 .. 384
    --set llm.input_tokens=2048: fcfs 900 -> 1152 .. 1164, ftf 672 -> 683 .. 684 (ftf's and
        kill-aware's one 60 s group, cut into parts, no longer hits the 20 s cap), kill-aware-fast
        588 .. 864 unchanged (3.16 pp); 95.6 s wall, 77.3 s CPU
    scenario_d: fcfs-aot/dyn 0 .. 200 -> 120/132 .. 169/181, ftf 0 .. 216 -> 204 .. 216

then a class's segments counted whole per backend (window bound) and each window's
first-token part bounded by CP-SAT (matched windows, step 5b); `--scenarios
scenario_a,scenario_d`, then scenario_c and scenario_b alone, 2 shared cores, width in pp:

    scenario_a  fcfs-aot 0 .. 24 -> 18 .. 24        0.66 -> 0.16
                fcfs-dyn, edf-dyn 0 .. 42 -> 36 .. 42   1.15 -> 0.16
                wall 27.2 s -> 27.6 s
    scenario_d  fcfs-aot 120 .. 169 -> 156 .. 169   1.19 -> 0.32
                fcfs-dyn 132 .. 181 -> 156 .. 181   1.19 -> 0.61
                ftf 204 .. 216 (unchanged, 0.29); wall 24.3 s -> 28.2 s
    scenario_c  ftf 443 .. 444 -> 444 (proven by the exact windows), kill-aware-fast 501 -> 500
                .. 648 (the node limit spent on the counts); fcfs 888; wall 44.3 s
    scenario_b  fcfs-dyn 31 .. 71-82 (0.84-0.93: the windows' CP-SAT runs on every core
                against the clock by default), edf-dyn 6 .. 48 (0.77), ftf 96 -> 102 .. 108;
                wall 46 s -> 48.8 s (first-token parts: 7, 2.1 s)

then the window bound's rows between frames and requests (window_cuts.py), a sorted fit
check in the matched windows, and no window bound on rows already within 0.25 points:

    scenario_c  kill-aware-fast 500 .. 648 -> 576 .. 648   1.80 -> 0.88; wall 42.0 s -> 36.8 s
    --set llm.input_tokens=2048: kill-aware-fast 588 .. 864 -> 708 .. 864 (3.16 -> 1.79),
                ftf 683 .. 684 -> 672 .. 684 (not bounded again at 0.14); 68.6 s -> 48.7 s
    --set od.fps=30: kill-aware(-fast) 324 .. 384 (0.97); 48.3 s
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="scenario_c")
    parser.add_argument("--horizon", default="60s")
    parser.add_argument("--set", action="append", default=[], dest="sets")
    args = parser.parse_args()
    for scenario in args.scenarios.split(","):
        command = [sys.executable, "-m", "rtgen_opt.cli.app", "gap", scenario, "--horizon",
                   args.horizon, "--format", "json"]
        for s in args.sets:
            command += ["--set", s]
        started = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if not out.stdout.strip():
            print(f"{scenario}: exit {out.returncode}: {out.stderr.strip()[-300:]}")
            continue
        report(scenario, json.loads(out.stdout), wall)


def report(scenario: str, data: dict, wall: float) -> None:
    frames = data["released"]
    print(f"{scenario} {data['horizon_s']:g} s ({frames} frames), wall {wall:.1f} s, "
          f"complete {data['complete']}")
    print(f"{'policy':<12} {'violations':>10} {'matched lower..upper':>22} {'gap pp':>14} "
          f"{'width pp':>9}  lower bound")
    for row in data["policies"]:
        m = row["matched_optimum"]
        lower, upper = m["violations_lower_bound"], m["violations"]
        if upper is None:
            print(f"{row['policy']:<12} {row['violations']:>10g} {'none':>22}")
            continue
        gap = (f"{row['gap_pp']:.2f}" if row["gap_pp"] is not None
               else f"{row['gap_pp_min']:.2f}..{row['gap_pp_max']:.2f}")
        width = 100 * (upper - lower) / frames
        print(f"{row['policy']:<12} {row['violations']:>10g} {lower:>10g} .. {upper:<9g} "
              f"{gap:>14} {width:>9.2f}  {m.get('lower_bound_method') or ''}")


if __name__ == "__main__":
    main()
