"""Every policy against the proven optimum, on the four built-in scenarios (Markdown tables).

    python bench/bench_story.py                  # 60 s horizon, gap's default time limit
    python bench/bench_story.py --horizon 20s

Every figure comes from the command users run, one per scenario:
`rtgen-opt gap SCENARIO --horizon 60s --workers 1 --format json`. Two tables:

1. weighted frame violations of each policy beside the plain optimum (every request
   served; one number when proven, else lower bound…best schedule); (s) marks a policy
   that starved a request — it bought frames by not serving the user, so the optimum
   does not bound it;
2. each policy's gap to its service-matched optimum (the best schedule serving every
   request at least as fast as the policy did), in points of the frames released
   (a…b: not proven within the run), and its TPT p99 against the declared SLO.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).with_name("rtgen-opt")
SCENARIOS = ("scenario_a", "scenario_b", "scenario_c", "scenario_d")


def gap(scenario: str, horizon: str) -> dict:
    command = [str(CLI), "gap", scenario, "--horizon", horizon, "--workers", "1",
               "--format", "json"]
    return json.loads(subprocess.run(command, capture_output=True, text=True,
                                     check=True).stdout)


def _range(low: float, high: float, spec: str) -> str:
    """One number when the bounds meet, else low…high — with more decimals where the
    printed ends would otherwise look equal (0.00…0.02, never a proven-looking 0.0)."""
    if low >= high or not spec.endswith("f"):
        return format(high, spec) if format(low, spec) == format(high, spec) \
            else f"{format(low, spec)}…{format(high, spec)}"
    digits = int(spec.strip(".f"))
    while format(low, f".{digits}f") == format(high, f".{digits}f") and digits < 3:
        digits += 1
    return f"{low:.{digits}f}…{high:.{digits}f}"


def violations_cell(policy: dict) -> str:
    return f"{policy['violations']:g}" + (" (s)" if policy["starved"] else "")


def gap_cell(policy: dict) -> str:
    if policy["starved"]:
        return "starves"
    if policy["gap_pp_min"] is None:
        return "-"
    low, high = policy["gap_pp_min"], policy["gap_pp_max"]
    return _range(low, high, ".1f")


def tpt_cell(policy: dict) -> str:
    p99 = (policy.get("tpt_ms") or {}).get("p99")
    return "-" if p99 is None else f"{p99:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", default="60s")
    args = parser.parse_args()
    results = {name: gap(name, args.horizon) for name in SCENARIOS}
    names = [p["policy"] for p in results[SCENARIOS[0]]["policies"]]
    print("| scenario | frames | optimum | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * (2 + len(names)))
    for name, data in results.items():
        o = data["optimum"]
        optimum = _range(o["violations_lower_bound"], o["violations"], "g")
        cells = [violations_cell(p) for p in data["policies"]]
        print(f"| {name} | {data['released']} | {optimum} | " + " | ".join(cells) + " |")
    print("\nGap to the service-matched optimum, points of the frames (TPT p99 ms):\n")
    print("| scenario | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for name, data in results.items():
        cells = [f"{gap_cell(p)} ({tpt_cell(p)})" for p in data["policies"]]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
