"""CP-SAT vs MILP (CBC, HiGHS; disjunctive and time-indexed) on growing instances: which
engine to pick, and where the MILP's bound helps.

    python bench/bench_engines.py [--time-limit 20]

Instances (default database, model granularity):
* ``mixed``: four frame tasks at 60/45/30/24 FPS with phases on a GPU + NPU platform
  (overloaded: the optimum drops frames), horizons 0.1 s to 2 s (~20 to ~400 jobs);
* ``llm-cap``: scenario_c's tasks with every request's TTFT capped at 900 ms (1.5 x its
  612 ms alone), so that the LLM must be served while frames run (0.5 s to 2 s).
Each cell: status, weighted violations, proven lower bound, wall seconds (first objective).
The time-indexed MILP uses 1 ms ticks: inexact on this data, so it reports FEASIBLE and no
bound (its schedules are still valid).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from fractions import Fraction

from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.milp import MilpModel, TimeIndexedMilp, available_engines
from rtgen_opt.formulations.problem import Problem

from rtgen_opt.evaluation.replay import replay
from rtgen_opt.model.scenario import TaskSpec, load_scenario
from rtgen_opt.model.taskset import build_taskset


def instances():
    base = load_scenario("scenario_c", ["granularity=model"])
    mixed = tuple(TaskSpec(name=f"t{fps}", model=model, kind="periodic",
                           period=1 / Fraction(fps), deadline=1 / Fraction(fps),
                           phase=Fraction(phase, 1000))
                  for fps, model, phase in ((60, "rcan", 0), (45, "yolov3", 3),
                                            (30, "pointpainting-seg", 7), (24, "yolov3", 11)))
    scenario = replace(base, tasks=mixed, platform={"gpu": 1, "npu": 1})
    for ms in (100, 250, 500, 1000, 2000):
        yield "mixed", Problem(build_taskset(scenario, Fraction(ms, 1000)))
    for ms in (500, 1000, 2000):
        yield "llm-cap", Problem(build_taskset(base, Fraction(ms, 1000)), ttft_cap_us=900_000)


def run(engine: str, problem: Problem, limit: float):
    stages = ("violations",)
    if engine == "cpsat":
        return CpSatModel(problem).solve(limit, workers=1, stages=stages)
    name, _, encoding = engine.partition("/")
    model = TimeIndexedMilp(problem, 1000) if encoding == "ti" else MilpModel(problem)
    return model.solve(limit, name.split("-")[1], stages=stages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=20.0)
    args = parser.parse_args()
    engines = ["cpsat"] + [f"milp-{e}" for e in available_engines()] + ["milp-cbc/ti"]
    print(f"{'instance':9s} {'horizon':>8s} {'jobs':>5s} " + " ".join(f"{e:>28s}" for e in engines))
    for label, problem in instances():
        ts = problem.ts
        cells = []
        for engine in engines:
            result = run(engine, problem, args.time_limit)
            ok = result.schedule is None or replay(ts, result.schedule).ok
            viol = "-" if result.violations is None else f"{result.violations:g}"
            cells.append(f"{result.status.value[:4]} {viol:>4s} LB {result.violations_lower_bound:<4g}"
                         f"{result.wall_s:6.1f}s" + ("" if ok else " REPLAY-FAIL"))
        print(f"{label:9s} {ts.horizon_us / 1000:6.0f}ms {ts.num_jobs:5d} "
              + " ".join(f"{c:>28s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
