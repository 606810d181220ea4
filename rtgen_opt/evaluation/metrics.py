"""One evaluator: schedule table + task set -> every metric (docs/semantics.md, *Metrics*).

The executor's traces and the solvers' schedules go through this same function, which is
what makes comparing them fair. It reads only the schedule, never how it was produced.

* periodic tasks (and request tasks with a ``deadline``): ``released``, ``violations`` (a
  job not completed, or completed after its deadline), ``violation_rate`` — over the whole
  run; None when no job was released, a rate of nothing — and how much of it came in the drain after the horizon: ``drain_released``,
  ``drain_violations`` (the continuing load);
* overall ``violation_rate`` = total violations / total released frames (None when none
  was released), and
  ``weighted_violations`` (the solvers' first objective);
* LLM tasks: ``requests``, ``completed`` (last token out), ``served`` (last token out by
  the end of the drain: what ``solve`` demands of every request; one finished in the last
  frame deadline after the drain is completed but not served), ``starved`` (no first
  token by the end of the run), ``ttft_ms`` = first token - arrival and ``tpt_ms`` =
  (last token - first token) / (output_tokens - 1), each as mean / p50 / p99 / max over
  the requests that have them;
* ``utilization`` per backend: busy time (aborted work included) / (instances x span),
  span = max(end of the releases, end of the last segment);
* ``placement``: per task and stage, the share of completed segments on each backend.
"""

from __future__ import annotations

import numpy as np

from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import NO_DEADLINE, STAGE_NAMES, TaskSet


def evaluate(ts: TaskSet, schedule: Schedule) -> dict:
    """Every metric of ``schedule`` (see the module docstring)."""
    done = schedule.done
    seg, end = schedule.seg[done], schedule.end_us[done]
    job = ts.seg_job[seg]
    segs_per_job = np.diff(ts.job_seg_start)
    completed = np.bincount(job, minlength=ts.num_jobs) == segs_per_job
    finish = np.full(ts.num_jobs, -1, dtype=np.int64)
    np.maximum.at(finish, job, end)

    tasks, released_total, violations_total, weighted = {}, 0, 0, 0.0
    llm = {}
    token = ts.seg_token[seg]
    for info in ts.tasks:
        jobs = np.arange(info.first_job, info.first_job + info.num_jobs)
        if info.deadline_us is not None:
            deadline = ts.job_deadline_us[jobs]
            late = ~completed[jobs] | ((deadline != NO_DEADLINE) & (finish[jobs] > deadline))
            count = int(late.sum())
            drain = ts.job_in_drain[jobs]
            tasks[info.name] = {"released": len(jobs), "violations": count,
                                # none released (a phase past the run): no rate, not 0
                                "violation_rate": count / len(jobs) if len(jobs) else None,
                                "drain_released": int(drain.sum()),
                                "drain_violations": int((late & drain).sum())}
            released_total += len(jobs)
            violations_total += count
            weighted += count * info.weight
        if info.is_llm:
            llm[info.name] = _llm_metrics(ts, info, jobs, job, token, end)
    return {
        "tasks": tasks,
        "violation_rate": violations_total / released_total if released_total else None,
        "violations": violations_total,
        "weighted_violations": weighted,
        "llm": llm,
        "utilization": _utilization(ts, schedule),
        "placement": _placement(ts, schedule),
    }


def _llm_metrics(ts: TaskSet, info, jobs, job, token, end) -> dict:
    first = np.full(ts.num_jobs, -1, dtype=np.int64)
    last = np.full(ts.num_jobs, -1, dtype=np.int64)
    first[job[token == 1]] = end[token == 1]
    last[job[token == info.output_tokens]] = end[token == info.output_tokens]
    has_first, has_last = first[jobs] >= 0, last[jobs] >= 0
    ttft = (first[jobs] - ts.job_release_us[jobs])[has_first] / 1000
    tpt = np.array([])
    if info.output_tokens > 1:
        tpt = ((last[jobs] - first[jobs])[has_last] / (info.output_tokens - 1)) / 1000
    served = has_last & (last[jobs] <= ts.horizon_us + ts.drain_us)
    return {"requests": len(jobs), "completed": int(has_last.sum()),
            "served": int(served.sum()),
            "starved": int((~has_first).sum()), "ttft_ms": _stats(ttft), "tpt_ms": _stats(tpt)}


def _stats(values: np.ndarray) -> dict:
    if not len(values):
        return {"mean": None, "p50": None, "p99": None, "max": None}
    return {"mean": float(values.mean()), "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)), "max": float(values.max())}


def _utilization(ts: TaskSet, schedule: Schedule) -> dict:
    span = max(ts.release_end_us, int(schedule.end_us.max()) if len(schedule) else 0)
    busy = np.bincount(schedule.backend, weights=schedule.end_us - schedule.start_us,
                       minlength=len(ts.backends))
    return {b: float(busy[i] / (ts.instances[i] * span)) if span else 0.0
            for i, b in enumerate(ts.backends)}


def _placement(ts: TaskSet, schedule: Schedule) -> dict:
    done = schedule.done
    seg, backend = schedule.seg[done], schedule.backend[done]
    task, stage = ts.job_task[ts.seg_job[seg]], ts.seg_stage[seg]
    counts = np.zeros((len(ts.tasks), len(STAGE_NAMES), len(ts.backends)), dtype=np.int64)
    np.add.at(counts, (task, stage, backend), 1)
    placement = {}
    for t, info in enumerate(ts.tasks):
        stages = {}
        for s, name in enumerate(STAGE_NAMES):
            total = counts[t, s].sum()
            if total:
                stages[name] = {b: float(counts[t, s, i] / total)
                                for i, b in enumerate(ts.backends)}
        placement[info.name] = stages
    return placement
