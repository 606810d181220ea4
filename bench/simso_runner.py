"""Run one task set in SimSo and print what happened, as JSON.

Runs in the benchmark's own virtualenv (bench/bench_simso.py creates it): SimSo is never a
dependency of rtgen-opt. Input on stdin: {"processors", "duration_ms", "scheduler",
"repeat", "tasks": [{"name", "period_ms", "wcet_ms", "deadline_ms", "phase_ms"}]}.
Output: {"jobs", "missed": [[task, job index], ...], "wall_s"} where wall_s is the best of
`repeat` runs, each timed from building the model to the end of the run.

Schedulers ("scheduler" in the input): "stock" is SimSo's own global EDF
(`simso.schedulers.EDF`, preemptive; it never preempts a job for an equal deadline);
"task-order" is a preemptive global EDF that ranks equal deadlines by task order, as
rtgen-opt does (SimSo's EDF2 would, but it fails on tasks with a phase); "non-preemptive"
is the global EDF without preemption below (SimSo ships none), ties by task order too.
"""

import contextlib
import io
import json
import sys
import time

from simso.configuration import Configuration
from simso.core import Model, Scheduler


class NonPreemptiveEdf(Scheduler):
    """Global EDF without preemption: idle processors take the ready jobs with the
    earliest deadlines; a running job is never interrupted (except by its deadline)."""

    def on_activate(self, job):
        job.cpu.resched()

    def on_terminated(self, job):
        job.cpu.resched()

    def schedule(self, cpu):
        idle = [p for p in self.processors if p.running is None]
        if not idle:
            return []
        ready = [t.job for t in self.task_list if t.is_active() and not t.job.is_running()]
        ready.sort(key=lambda job: job.absolute_deadline)  # stable: task order on ties
        return list(zip(ready, idle))


class TaskOrderEdf(Scheduler):
    """Preemptive global EDF: the m most urgent active jobs run, ranked by (absolute
    deadline, task order); a running job keeps its processor while it stays among them."""

    def on_activate(self, job):
        job.cpu.resched()

    def on_terminated(self, job):
        job.cpu.resched()

    def schedule(self, cpu):
        active = [t.job for t in self.task_list if t.is_active()]
        active.sort(key=lambda job: job.absolute_deadline)  # stable: task order on ties
        chosen = active[:len(self.processors)]
        free = [p for p in self.processors if p.running is None or p.running not in chosen]
        waiting = [job for job in chosen if not job.is_running()]
        return list(zip(waiting, free))


SCHEDULERS = {"stock": "simso.schedulers.EDF", "task-order": TaskOrderEdf,
              "non-preemptive": NonPreemptiveEdf}


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
    c.scheduler_info.clas = SCHEDULERS[spec["scheduler"]]
    c.check_all()
    best = float("inf")
    for _ in range(spec.get("repeat", 1)):
        with contextlib.redirect_stdout(io.StringIO()):  # SimSo prints its trace
            started = time.perf_counter()
            model = Model(c)
            model.run_model()
            best = min(best, time.perf_counter() - started)
    missed, jobs = [], 0
    for task in model.results.tasks.values():
        for k, job in enumerate(task.jobs):
            jobs += 1
            if job.exceeded_deadline:
                missed.append([task.name, k])
    json.dump({"jobs": jobs, "missed": sorted(missed), "wall_s": best}, sys.stdout)


if __name__ == "__main__":
    main()
