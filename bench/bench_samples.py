"""Monte Carlo benchmark: `simulate scenario_c --horizon 60s --policy ftf --samples 1000`.

    PYTHONPATH=. python bench/bench_samples.py [--samples 1000] [--workers 2] [--horizon 60]
        [--set execution=[0.9,1.1] --set od.jitter=1ms]

Runs the command's library path (task set once, then the sampled realizations on the
local process pool) and prints the wall time against the target (1,000 samples of 60 s
within 60 s on 2 cores), the time per sample, and how one sample splits into drawing the
realization, simulating and evaluating. Speed is measured here, never asserted in the test
suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from fractions import Fraction

import numpy as np

from rtgen_opt.analysis.sampling import draw, run_samples, summarize
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.simulation.executor import simulate

TARGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenario_c")
    parser.add_argument("--horizon", type=float, default=60.0, help="seconds")
    parser.add_argument("--policy", default="ftf")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append",
                        default=None, help="scenario overrides (default: execution=[0.9,1.1], "
                        "od.jitter=1ms)")
    args = parser.parse_args()
    overrides = args.overrides or ["execution=[0.9,1.1]", "od.jitter=1ms"]

    ts = build_taskset(load_scenario(args.scenario, overrides), Fraction(str(args.horizon)))
    print(f"{args.scenario} {' '.join(overrides)}, {args.horizon:g} s: {ts.num_jobs} jobs, "
          f"{ts.num_segments} segments; policy {args.policy}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")

    parts = {"draw": [], "simulate": [], "evaluate": []}
    for i in range(5):  # one sample, split into its phases (in this process)
        t0 = time.perf_counter()
        r = draw(ts, args.seed, i)
        t1 = time.perf_counter()
        result = simulate(ts, args.policy, r)
        t2 = time.perf_counter()
        evaluate(ts, result.schedule)
        t3 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
            parts[key].append(dt)
    print("one sample: " + ", ".join(f"{k} {np.median(v) * 1000:.1f} ms"
                                      for k, v in parts.items()))

    started = time.perf_counter()
    run = run_samples(ts, args.policy, args.samples, args.seed, args.workers)
    wall = time.perf_counter() - started
    summary = summarize(run)
    v = summary["violations"]
    print(f"{args.samples} samples on {args.workers} workers: {wall:.1f} s "
          f"({wall / args.samples * 1000:.1f} ms per sample, pool start included)")
    print(f"violations mean {v['mean']:.1f}, p99 {v['p99']:.0f}, max {v['max']:.0f}; "
          f"{summary['miss']['statement']}")
    verdict = "meets" if wall <= TARGET_S else "MISSES"
    print(f"target: {args.samples} samples within {TARGET_S:g} s on 2 cores: {verdict} it")


if __name__ == "__main__":
    main()
