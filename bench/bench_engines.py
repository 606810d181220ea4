"""CP-SAT vs MILP (CBC, HiGHS) on growing instances: which engine to pick, and where the
MILP's bound helps.

    python bench/bench_engines.py [--time-limit 30]

Instances: scenario_c's two 60 FPS tasks on a CPU + NPU platform (overloaded: the optimum
drops frames) over growing horizons, frames only and with one RAG + LLM request at model
granularity. Prints, per engine, the status, violations, bound and wall time.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from fractions import Fraction

from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.milp import MilpModel, available_engines
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.replay import replay
from rtgen_opt.scenario import load_scenario
from rtgen_opt.taskset import build_taskset


def instances():
    for with_llm in (False, True):
        base = load_scenario("scenario_c", ["platform.cpu=1", "granularity=model"])
        tasks = tuple(t for t in base.tasks if with_llm or t.kind == "periodic")
        scenario = replace(base, platform={"cpu": 1, "npu": 1} if not with_llm else
                           {"cpu": 1, "gpu": 1, "npu": 1}, tasks=tasks)
        for ms in (50, 100, 200, 400):
            yield ("frames" if not with_llm else "frames+LLM"), build_taskset(
                scenario, Fraction(ms, 1000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=30.0)
    args = parser.parse_args()
    engines = ["cpsat"] + [f"milp-{e}" for e in available_engines()]
    print(f"{'instance':11s} {'horizon':>8s} {'jobs':>5s} {'segs':>5s} " + " ".join(
        f"{e + ' (status viol LB s)':>34s}" for e in engines))
    for label, ts in instances():
        cells = []
        for engine in engines:
            if engine == "cpsat":
                result = CpSatModel(Problem(ts)).solve(args.time_limit, workers=1,
                                                       stages=("violations",))
            else:
                result = MilpModel(Problem(ts)).solve(args.time_limit, engine.split("-")[1],
                                                      stages=("violations",))
            ok = result.schedule is None or replay(ts, result.schedule).ok
            viol = "-" if result.violations is None else f"{result.violations:g}"
            cells.append(f"{result.status.value[:8]:>9s} {viol:>5s} "
                         f"{result.violations_lower_bound:>5g} {result.wall_s:6.1f}"
                         + ("" if ok else " REPLAY-FAIL"))
        print(f"{label:11s} {ts.horizon_us / 1000:6.0f}ms {ts.num_jobs:5d} {ts.num_segments:5d} "
              + " ".join(f"{c:>34s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
