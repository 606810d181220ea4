"""kill-aware against the paper's policies on the built-in scenarios and their variants.

    python bench/bench_policy.py [--horizon 60] [--policies ftf,kill-aware] [--paces]

Prints one Markdown row per scenario/variant and policy: frame violations (of the frames
released), mean TTFT and TPT of the LLM, starved requests, the wall and CPU time of the run;
then kill-aware's verdict against its goals on scenario_c (violations within 2 % of the
optimum's proven lower bound, every request within its TPT SLO, nothing starved, never
more violations than FTF on any variant, a run under 0.5 s). `--paces` adds kill-aware's
trade-off between decode pace and frames on scenario_c. Speed is measured here, never
asserted in the test suite.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from fractions import Fraction
from pathlib import Path

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES, KillAware, Policy
from rtgen_opt.simulation.policies.loader import load_policy

CASES = [("scenario_a", ()), ("scenario_b", ()), ("scenario_c", ()), ("scenario_d", ())]
CASES += [("scenario_c", (f"llm.input_tokens={n}",)) for n in (32, 256, 2048)]
CASES += [("scenario_d", (f"llm.input_tokens={n}",)) for n in (32, 256, 2048)]
CASES += [("scenario_c", ("od.fps=30",)), ("scenario_c", ("platform.npu=2",))]
EXAMPLE = Path(__file__).parent.parent / "examples" / "ftf_no_hopeless.py"


def run(ts, policy: Policy) -> dict:
    started = time.process_time()  # (CPU time: other processes on the machine inflate wall)
    result = simulate(ts, policy)
    cpu_s = time.process_time() - started
    metrics = evaluate(ts, result.schedule)
    llm = next(iter(metrics["llm"].values()), None)
    return {"violations": metrics["violations"],
            "released": sum(t["released"] for t in metrics["tasks"].values()),
            "ttft": llm and llm["ttft_ms"]["mean"], "tpt": llm and llm["tpt_ms"]["mean"],
            "tpt_max": llm and llm["tpt_ms"]["max"],
            "starved": llm["starved"] if llm else 0, "wall": result.wall_s, "cpu": cpu_s}


def fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=float, default=60.0, help="seconds")
    parser.add_argument("--policies", default="ftf,kill-aware",
                        help="comma-separated; 'all' for every built-in policy")
    parser.add_argument("--paces", action="store_true",
                        help="also kill-aware's decode pace against frames on scenario_c")
    args = parser.parse_args()
    names = list(POLICIES) if args.policies == "all" else args.policies.split(",")
    policies = [load_policy(n) for n in names] + [load_policy(f"{EXAMPLE}:FtfNoHopeless")]
    horizon = Fraction(str(args.horizon))
    print(f"horizon {args.horizon:g} s; `rtgen-opt simulate SCENARIO --set ... --policy P "
          f"--horizon {args.horizon:g}s` prints the same figures\n")
    print("| scenario | variant | policy | violations | of released | TTFT ms | TPT ms "
          "| starved | wall s | CPU s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    for scenario, overrides in CASES:
        ts = build_taskset(load_scenario(scenario, overrides), horizon)
        for policy in policies:
            r = results[scenario, overrides, policy.name] = run(ts, policy)
            print(f"| {scenario} | {' '.join(overrides) or '-'} | {policy.name} | "
                  f"{r['violations']} | {r['released']} | {fmt(r['ttft'])} | "
                  f"{fmt(r['tpt'], 2)} | {r['starved']} | {r['wall']:.3f} | {r['cpu']:.3f} |")
        sys.stdout.flush()
    if "ftf" in names and "kill-aware" in names:
        print_goals(results)
    if args.paces:
        print_paces(horizon)


def print_goals(results: dict) -> None:
    ours, ftf = results["scenario_c", (), "kill-aware"], results["scenario_c", (), "ftf"]
    worse = [f"{s} {' '.join(o) or '(as is)'}: {results[s, o, 'kill-aware']['violations']} > "
             f"{results[s, o, 'ftf']['violations']}" for s, o in CASES
             if results[s, o, "kill-aware"]["violations"] > results[s, o, "ftf"]["violations"]]
    # issue 24: at most 1.02 x the proven lower bound of the plain optimum (394 at 60 s),
    # every request within its TPT SLO (scenario_c: 100 ms), nothing starved
    bound, slo = 394, 100.0
    goals = [
        ("violations <= 1.02 x the optimum's proven lower bound (394)",
         ours["violations"] <= 1.02 * bound, f"{ours['violations']} vs {1.02 * bound:.0f}"),
        ("every request within its TPT SLO (100 ms)", (ours["tpt_max"] or 0) <= slo,
         f"TPT max {ours['tpt_max']:.1f} ms; FTF {ftf['tpt_max']:.1f} ms"),
        ("no request starved (every case)",
         all(r["starved"] == 0 for (s, o, p), r in results.items() if p == "kill-aware"), ""),
        ("never more violations than FTF", not worse, "; ".join(worse)),
        ("simulate of scenario_c under 0.5 s of CPU", ours["cpu"] < 0.5,
         f"{ours['cpu']:.3f} s, FTF {ftf['cpu']:.3f} s"),
    ]
    print("\nkill-aware against its goals (scenario_c):")
    for goal, met, detail in goals:
        print(f"- {goal}: {'met' if met else 'NOT met'}{f' ({detail})' if detail else ''}")


def print_paces(horizon: Fraction) -> None:
    ts = build_taskset(load_scenario("scenario_c"), horizon)
    print("\nkill-aware on scenario_c: decode pace (x standalone time per token) vs frames")
    print("| pace | violations | TTFT ms | TPT ms |\n|---:|---:|---:|---:|")
    for pace in (1.5, 2.0, 3.0, 4.0, 5.0, math.inf):
        r = run(ts, KillAware(pace))
        print(f"| {pace:g} | {r['violations']} | {fmt(r['ttft'])} | {fmt(r['tpt'], 2)} |")


if __name__ == "__main__":
    main()
