"""The construction (the long-horizon upper bound) on 60 s instances.

    nice -n 10 python bench/bench_construct.py                  # every instance
    nice -n 10 python bench/bench_construct.py --only c c-od30  # some instances

(from the repository root, with rtgen_opt importable: installed, or PYTHONPATH=.)

Per instance: the construction's weighted violations after frame mapping, after the
requests, after polish, its construction and total wall time, whether `replay` accepts the
schedule, the frame mapping and the plans chosen (per request, how its first-token work was
placed: "least-damage" per segment, also on one backend, "back-to-back", "idle", or
"asap"; older runs in `latest_construct.txt` call "least-damage" "kill-aware", the name
`solve` still prints for the whole construction). One worker. `latest_construct.txt` also
holds the insertion heuristic it replaced, measured before its removal.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

from rtgen_opt.formulations.problem import Problem

from rtgen_opt.evaluation.replay import replay
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.optimisation.construct import construct

INSTANCES = {
    "c": ("scenario_c", []),
    "c-od30": ("scenario_c", ["od.fps=30"]),
    "c-npu2": ("scenario_c", ["platform.npu=2"]),
    "c-2048": ("scenario_c", ["llm.input_tokens=2048"]),
    "c-srphase": ("scenario_c", ["sr.phase=8ms"]),  # frame mapping matters
    "a": ("scenario_a", []),
    "b": ("scenario_b", []),
    "d": ("scenario_d", []),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(INSTANCES), choices=list(INSTANCES))
    parser.add_argument("--horizon", default="60", help="seconds")
    parser.add_argument("--time-limit", type=float, default=60.0,
                        help="the construction's limit (its polish gets a share)")
    args = parser.parse_args()
    print(f"{'instance':9s} {'jobs':>6s} {'frames':>6s} {'mapped':>6s} {'built':>6s} "
          f"{'polish':>6s} {'build s':>7s} {'total s':>7s} {'replay':>6s}  mapping / plans")
    for key in args.only:
        name, sets = INSTANCES[key]
        ts = build_taskset(load_scenario(name, sets), Fraction(args.horizon))
        frames = sum(t.num_jobs for t in ts.tasks if t.deadline_us is not None)
        started = time.perf_counter()
        schedule, report = construct(Problem(ts), args.time_limit, workers=1)
        total_s = time.perf_counter() - started
        check = replay(ts, schedule)
        print(f"{key:9s} {ts.num_jobs:6d} {frames:6d} {report.after_frames:6g} "
              f"{report.after_requests:6g} {report.after_polish:6g} "
              f"{report.construct_s:7.1f} {total_s:7.1f} {check.ok!s:>6s}  "
              f"{report.mapping}; {report.plans}", flush=True)


if __name__ == "__main__":
    main()
