"""From a policy's trace to a firm schedule (docs/semantics.md, *Why the optimum bounds a
policy*): remove aborted partial segments, every segment of a job that missed its
deadline, and every request not served by the end of the drain. What remains is feasible
for ``solve`` when the policy served every request, and has the same number of violations
— the warm start of the solvers, and the reason the optimum is a lower bound on a
policy's violations."""

from __future__ import annotations

import numpy as np

from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import NO_DEADLINE, TaskSet


def firm_schedule(ts: TaskSet, schedule: Schedule) -> Schedule:
    """Only complete, on-time jobs' segments: frames by their deadline, requests without a
    deadline by the end of the drain (a request finished after it is not served: the
    problem forbids it, so it is left out like a starved one),
    and only when the job it waits for (``after``) is kept."""
    on_time = _on_time_jobs(ts, schedule)
    done = schedule.done
    keep = np.flatnonzero(done)[on_time[ts.seg_job[schedule.seg[done]]]]
    return Schedule(*(getattr(schedule, f)[keep] for f in ("seg", "backend", "instance",
                                                          "start_us", "end_us", "aborted")))


def serves_every_request(ts: TaskSet, metrics: dict) -> bool:
    """The policy served every LLM request — its last token by the end of the drain — so
    its firm schedule is feasible for solve (``served`` in the evaluator's metrics)."""
    return all(m["served"] == m["requests"] for m in metrics["llm"].values())


def _on_time_jobs(ts: TaskSet, schedule: Schedule) -> np.ndarray:
    done = schedule.done
    seg, end = schedule.seg[done], schedule.end_us[done]
    job = ts.seg_job[seg]
    complete = np.bincount(job, minlength=ts.num_jobs) == np.diff(ts.job_seg_start)
    finish = np.full(ts.num_jobs, -1, dtype=np.int64)
    np.maximum.at(finish, job, end)
    deadline = ts.job_deadline_us.copy()
    deadline[deadline == NO_DEADLINE] = ts.horizon_us + ts.drain_us
    on_time = complete & (finish <= deadline)
    # a job kept without the job it waits for would break `after`: drop it too
    pred = ts.job_after
    while True:
        orphan = on_time & (pred >= 0) & ~on_time[np.maximum(pred, 0)]
        if not orphan.any():
            return on_time
        on_time &= ~orphan
