"""Run one task set in SimSo (global EDF) and print what happened, as JSON.

Runs in the benchmark's own virtualenv (bench/bench_simso.py creates it): SimSo is never a
dependency of rtgen-opt. Input on stdin: {"processors", "duration_ms", "tasks": [{"name",
"period_ms", "wcet_ms", "deadline_ms", "phase_ms"}]}.
Output: {"jobs", "missed": [[task, job index], ...], "wall_s"}.
"""

import contextlib
import io
import json
import sys
import time

from simso.configuration import Configuration
from simso.core import Model


def main() -> None:
    spec = json.load(sys.stdin)
    c = Configuration()
    c.duration = spec["duration_ms"] * c.cycles_per_ms
    for i, t in enumerate(spec["tasks"], start=1):
        c.add_task(name=t["name"], identifier=i, period=t["period_ms"],
                   activation_date=t["phase_ms"], wcet=t["wcet_ms"],
                   deadline=t["deadline_ms"], abort_on_miss=True)
    for p in range(spec["processors"]):
        c.add_processor(name=f"CPU {p + 1}", identifier=p + 1)
    c.scheduler_info.clas = "simso.schedulers.EDF"
    c.check_all()
    model = Model(c)
    with contextlib.redirect_stdout(io.StringIO()):  # SimSo prints its trace
        started = time.perf_counter()
        model.run_model()
        wall = time.perf_counter() - started
    missed, jobs = [], 0
    for task in model.results.tasks.values():
        for k, job in enumerate(task.jobs):
            jobs += 1
            if job.exceeded_deadline:
                missed.append([task.name, k])
    json.dump({"jobs": jobs, "missed": sorted(missed), "wall_s": wall}, sys.stdout)


if __name__ == "__main__":
    main()
