"""From a policy's trace to a firm schedule (docs/semantics.md, *Why the optimum bounds a
policy*): remove aborted partial segments and every segment of a job that missed its
deadline. What remains is feasible for ``solve`` when the policy served every request, and
has the same number of violations — the warm start of the solvers, and the reason the
optimum is a lower bound on a policy's violations."""

from __future__ import annotations

import numpy as np

from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import NO_DEADLINE, TaskSet


def firm_schedule(ts: TaskSet, schedule: Schedule) -> Schedule:
    """Only complete, on-time jobs' segments (requests without deadline: complete ones)."""
    done = schedule.done
    seg, end = schedule.seg[done], schedule.end_us[done]
    job = ts.seg_job[seg]
    complete = np.bincount(job, minlength=ts.num_jobs) == np.diff(ts.job_seg_start)
    finish = np.full(ts.num_jobs, -1, dtype=np.int64)
    np.maximum.at(finish, job, end)
    deadline = ts.job_deadline_us
    on_time = complete & ((deadline == NO_DEADLINE) | (finish <= deadline))
    keep = np.flatnonzero(done)[on_time[job]]
    return Schedule(*(getattr(schedule, f)[keep] for f in ("seg", "backend", "instance",
                                                          "start_us", "end_us", "aborted")))


def serves_every_request(ts: TaskSet, metrics: dict) -> bool:
    """The policy completed every LLM request (so its firm schedule is feasible for solve)."""
    return all(m["completed"] == m["requests"] for m in metrics["llm"].values())
