"""Executor vs SimSo: identical periodic task sets, EDF, on 1 and 3 identical processors.

    python bench/bench_simso.py [--seconds 20] [--sets 3] [--mode job layer] [--repeat 3]

Two modes, each with semantics both simulators share (all periods, phases, WCETs and
deadlines whole milliseconds; a miss aborts the job in both: `on_miss: drop` / SimSo's
`abort_on_miss`):

* job: a job is one segment of its WCET and runs to completion once started: our edf-dyn
  without preemption vs a non-preemptive global EDF written for SimSo (simso_runner.py).
* layer: a job is WCET unit layers of 1 ms, so our dispatch at segment boundaries is
  SimSo's preemptive global EDF (every decision falls on a millisecond). Verdicts are
  compared with a SimSo EDF that ranks equal deadlines by task order, as we do; speed is
  SimSo's own EDF's (which keeps a running job on an equal deadline; the table's last
  line counts how many verdicts that changes).

Per task set: jobs, misses in each, jobs whose verdict differs (and how many of those
have their deadline after the horizon, where SimSo stops), and simulated jobs per second
of each (best of --repeat runs; ours: `simulate()`, from the task set to the
schedule; SimSo: building the model and running it), with the ratio ours / SimSo's
(target >= 20x). SimSo is installed into bench/.simso-venv on first use.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from rtgen_opt.model.latency import load_db
from rtgen_opt.model.scenario import Scenario, TaskSpec
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.simulation.executor import simulate

HERE = Path(__file__).resolve().parent
VENV = HERE / ".simso-venv"


def simso_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "simso==0.8.5"],
                       check=True)
    return python


def task_sets(count: int, seed: int = 7):
    rng = random.Random(seed)  # explicit and seeded: the same sets every run
    for i in range(count):
        for processors in (1, 3):
            tasks, load = [], 0.0
            while load < 1.15 * processors:  # a little overloaded: misses to compare
                period = rng.choice([5, 7, 8, 10, 11, 13, 16, 20, 25, 32])
                wcet = rng.randint(1, min(8, period))
                tasks.append({"name": f"T{len(tasks) + 1}", "period_ms": period,
                              "wcet_ms": wcet, "deadline_ms": period,
                              "phase_ms": rng.randint(0, 3)})
                load += wcet / period
            yield f"set{i + 1}-{processors}cpu", processors, tasks


def ours(processors: int, tasks: list[dict], seconds: int, mode: str, repeat: int):
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "latency.csv"
        db.write_text("model,stage,backend,seq_len,layers,latency_ms,layer,source\n" + "".join(
            f"u{k},frame,cpu,,{k},{k},,unit layers\n" for k in range(1, 9)))
        specs = tuple(TaskSpec(name=t["name"], model=f"u{t['wcet_ms']}", kind="periodic",
                               period=Fraction(t["period_ms"], 1000),
                               deadline=Fraction(t["deadline_ms"], 1000),
                               phase=Fraction(t["phase_ms"], 1000)) for t in tasks)
        scenario = Scenario(name="simso", description="", source="bench", db=load_db(db),
                            platform={"cpu": processors}, tasks=specs, on_miss="drop",
                            preemption="none", after_horizon="stop",  # as SimSo: no drain
                            granularity="model" if mode == "job" else "layer")
        ts = build_taskset(scenario, Fraction(seconds))
    wall = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = simulate(ts, "edf-dyn")
        wall = min(wall, time.perf_counter() - started)
    s = result.schedule
    done = s.done
    finished = {}
    for seg, end in zip(s.seg[done].tolist(), s.end_us[done].tolist()):
        job = int(ts.seg_job[seg])
        if seg == ts.job_seg_start[job + 1] - 1:
            finished[job] = end
    missed = sorted([ts.tasks[ts.job_task[j]].name, int(ts.job_index[j])]
                    for j in range(ts.num_jobs)
                    if finished.get(j, 1 << 62) > ts.job_deadline_us[j])
    # SimSo stops at the horizon; we follow every job to its deadline
    at_end = {(ts.tasks[ts.job_task[j]].name, int(ts.job_index[j])) for j in range(ts.num_jobs)
              if ts.job_deadline_us[j] > ts.horizon_us}
    return {"jobs": ts.num_jobs, "missed": missed, "at_end": at_end, "wall_s": wall}


def run_simso(python: Path, spec: dict) -> dict:
    run = subprocess.run([str(python), str(HERE / "simso_runner.py")], input=json.dumps(spec),
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="simulated seconds")
    parser.add_argument("--sets", type=int, default=3, help="task sets per processor count")
    parser.add_argument("--mode", nargs="+", choices=["job", "layer"], default=["job", "layer"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per simulator; best kept")
    args = parser.parse_args()
    python = simso_python()
    print(f"{'mode':5s} {'task set':10s} {'tasks':>5s} {'jobs':>6s} {'miss ours':>9s} "
          f"{'miss simso':>10s} {'differ':>6s} {'at end':>6s} {'ours jobs/s':>11s} "
          f"{'simso jobs/s':>12s} {'ratio':>6s}")
    for mode in args.mode:
        ratios, stock_differ = [], 0
        for name, processors, tasks in task_sets(args.sets):
            spec = {"processors": processors, "duration_ms": args.seconds * 1000,
                    "repeat": args.repeat, "tasks": tasks}
            mine = ours(processors, tasks, args.seconds, mode, args.repeat)
            if mode == "job":
                agreed = timed = run_simso(python, {**spec, "scheduler": "non-preemptive"})
            else:  # verdicts from the tie-matched EDF, speed from SimSo's own
                agreed = run_simso(python, {**spec, "scheduler": "task-order", "repeat": 1})
                timed = run_simso(python, {**spec, "scheduler": "stock"})
                stock_differ += len(missed_set(mine) ^ missed_set(timed))
            differ = missed_set(mine) ^ missed_set(agreed)
            rate_ours = mine["jobs"] / mine["wall_s"]
            rate_simso = timed["jobs"] / timed["wall_s"]
            ratios.append(rate_ours / rate_simso)
            print(f"{mode:5s} {name:10s} {len(tasks):5d} {mine['jobs']:6d} "
                  f"{len(mine['missed']):9d} {len(agreed['missed']):10d} {len(differ):6d} "
                  f"{len(differ & mine['at_end']):6d} "
                  f"{rate_ours:11.0f} {rate_simso:12.0f} {ratios[-1]:6.1f}", flush=True)
        verdict = "meets" if min(ratios) >= 20 else "does NOT meet"
        print(f"{mode:5s} ratio {min(ratios):.1f}-{max(ratios):.1f}x: {verdict} the 20x target",
              flush=True)
        if mode == "layer":
            print(f"{mode:5s} SimSo's own EDF (timed; a running job keeps its processor on an "
                  f"equal deadline) differs from ours on {stock_differ} jobs in all", flush=True)


def missed_set(result: dict) -> set[tuple]:
    return {tuple(m) for m in result["missed"]}


if __name__ == "__main__":
    main()
