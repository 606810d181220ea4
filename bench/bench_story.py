"""Every policy against the proven optimum, on the four built-in scenarios (a Markdown table).

    python bench/bench_story.py                 # 60 s, 30 s solve limit
    python bench/bench_story.py --horizon 20

Per scenario: the optimum's proven range (lower bound … best schedule found), then each
policy's weighted frame violations, marked (s) when it starved a request — a policy that
starves a request is not bounded by the optimum (it bought frames by not serving the user).
"""

from __future__ import annotations

import argparse
from fractions import Fraction

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.optimisation.solve import solve
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES

SCENARIOS = ("scenario_a", "scenario_b", "scenario_c", "scenario_d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=float, default=60.0, help="seconds")
    parser.add_argument("--time-limit", type=float, default=30.0)
    args = parser.parse_args()
    names = list(POLICIES)
    print("| scenario | frames | optimum | " + " | ".join(names) + " |")
    print("|---" * (3 + len(names)) + "|")
    for name in SCENARIOS:
        ts = build_taskset(load_scenario(name), Fraction(str(args.horizon)))
        out = solve(ts, args.time_limit, workers=1)
        low, high = out.violations_lower_bound, out.violations
        optimum = f"{high:g}" if low >= high else f"{low:g}…{high:g}"
        cells = []
        for policy in names:
            metrics = evaluate(ts, simulate(ts, policy).schedule)
            starved = sum(m["starved"] for m in metrics["llm"].values())
            cells.append(f"{metrics['weighted_violations']:g}" + (" (s)" if starved else ""))
        frames = sum(t.num_jobs for t in ts.tasks if t.deadline_us is not None)
        print(f"| {name} | {frames} | {optimum} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
