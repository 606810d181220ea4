"""Sweep engine benchmark: a 64-point `simulate` sweep of scenario_c at 60 s.

    python bench/bench_sweep.py [--points 64] [--policies all] [--engines local,ray]

The points vary the LLM's prompt (8 lengths) and answer (8 lengths); each runs the
policies on 60 s of scenario_c. Measured, each with the cache off:

* bare: every run computed in this process, one after the other (`sweep.compute`: load
  the scenario with its overrides, expand it, simulate, evaluate) — the work itself;
* local with 1 and 2 workers (process pool; its start-up included), Ray with 1 and 2 CPUs
  (Ray's start-up measured apart; every node of a real cluster is already up).

Printed: wall time, speed-up of 2 workers over 1 (target >= 1.8x on 2 cores), and the
per-point overhead of each engine over the bare run, (wall x workers - bare) / points,
against the target of 10 % of a point's bare time. On a machine shared with other jobs
wall times measure the contention as much as the engine (the load average is printed
with them), so the local engine's overhead is also given in CPU time — this process and
its worker processes, start-up included — which other jobs do not inflate. (Ray's
workers are not children of this process: its CPU time is not counted.)
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

from rtgen_opt.sweep.compute import compute
from rtgen_opt.sweep.run import plan, run_sweep
from rtgen_opt.sweep.spec import load_sweep

LENGTHS_IN = [32, 64, 128, 256, 512, 1024, 1536, 2048]
LENGTHS_OUT = [8, 16, 24, 32, 40, 48, 56, 64]


def sweep_file(folder: Path, points: int, policies: str) -> str:
    pairs = [(i, o) for i in LENGTHS_IN for o in LENGTHS_OUT][:points]
    data = {"name": "bench", "scenario": "scenario_c", "horizon": "60s",
            "zip": [{"llm.input_tokens": [i for i, _ in pairs],
                     "llm.output_tokens": [o for _, o in pairs]}],
            "run": {"simulate": {"policies": policies if policies == "all"
                                 else policies.split(",")}}}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


CPU_S: dict[str, float] = {}


def timed(label: str, fn, key: str | None = None) -> float:
    """Wall time of ``fn()``; with ``key``, also the CPU time of this process and of the
    child processes it waited for (the pool's workers) into CPU_S."""
    cpu = _cpu_s()
    started = time.perf_counter()
    fn()
    wall = time.perf_counter() - started
    used = _cpu_s() - cpu
    if key:
        CPU_S[key] = used
    print(f"  {label:<22s} {wall:8.2f} s wall, {used:7.2f} s CPU   (load average "
          f"{os.getloadavg()[0]:.2f})", flush=True)
    return wall


def _cpu_s() -> float:
    import resource

    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=64)
    parser.add_argument("--policies", default="all", help="all, or a comma-separated list")
    parser.add_argument("--engines", default="local,ray")
    args = parser.parse_args()
    engines = args.engines.split(",")

    with tempfile.TemporaryDirectory() as folder:
        spec = load_sweep(sweep_file(Path(folder), args.points, args.policies))
    runs = plan(spec)
    n = len(runs)
    print(f"{n} points of scenario_c, 60 s, policies {args.policies}; "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")

    def check(outcome) -> None:
        assert outcome.computed == n and not outcome.failed, outcome.errors

    walls = {"bare": timed("bare (in process)", lambda: [compute(r) for r in runs], "bare")}
    for workers in (1, 2):
        if "local" in engines:
            walls[f"local {workers}"] = timed(
                f"local, {workers} worker(s)",
                lambda w=workers: check(run_sweep(spec, runs, "local", w)), f"local {workers}")
    if "ray" in engines:
        _ray(spec, runs, walls, check)
    _summary(walls, n)


def _ray(spec, runs, walls: dict, check) -> None:
    try:
        import ray
    except ImportError:
        print("  ray: not installed (pip install 'rtgen-opt[ray]'), skipped")
        return
    import logging

    for cpus in (1, 2):
        started = time.perf_counter()
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        print(f"  ray start-up ({cpus} CPU)     {time.perf_counter() - started:8.2f} s")
        try:
            walls[f"ray {cpus}"] = timed(
                f"ray, {cpus} CPU(s)", lambda c=cpus: check(run_sweep(spec, runs, "ray", c)))
        finally:
            ray.shutdown()


def _summary(walls: dict, n: int) -> None:
    bare = walls["bare"]
    per_point = bare / n
    print(f"\nbare: {per_point * 1000:.0f} ms per point wall, "
          f"{CPU_S['bare'] / n * 1000:.0f} ms CPU")
    for engine in ("local", "ray"):
        if f"{engine} 1" in walls and f"{engine} 2" in walls:
            speedup = walls[f"{engine} 1"] / walls[f"{engine} 2"]
            print(f"{engine}: 2 workers vs 1: {speedup:.2f}x "
                  f"({'meets' if speedup >= 1.8 else 'misses'} the 1.8x target)")
    for key, wall in walls.items():
        if key == "bare":
            continue
        workers = int(key.split()[-1])
        _overhead(f"{key:8s} wall", (wall * workers - bare) / n, per_point)
    cpu_point = CPU_S["bare"] / n
    for key in (k for k in CPU_S if k != "bare"):
        _overhead(f"{key:8s} CPU ", (CPU_S[key] - CPU_S["bare"]) / n, cpu_point)


def _overhead(label: str, overhead: float, per_point: float) -> None:
    print(f"{label} overhead {overhead * 1000:7.1f} ms per point = "
          f"{100 * overhead / per_point:5.1f} % of a point "
          f"({'meets' if overhead <= 0.1 * per_point else 'misses'} the 10 % target)")


if __name__ == "__main__":
    main()
