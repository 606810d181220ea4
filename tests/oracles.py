"""Independent oracles for the solvers: brute force and Moore-Hodgson.

Neither uses CP-SAT or the executor; they share only the task set.
"""

from __future__ import annotations

import itertools

from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet


def brute_force_min_violations(ts: TaskSet) -> float:
    """Minimum weighted violations, by enumeration (tiny instances, one instance per backend).

    For every choice of frames to run, every backend per segment and every order of the
    segments (respecting chains and `after`), build the earliest-start schedule. With the
    order on each backend fixed, earliest starts minimise every start and end at once, so
    if any schedule with that order meets the deadlines, this one does; every feasible
    schedule has such an order. Returns inf when no schedule serves every request.
    """
    assert all(k == 1 for k in ts.instances), "brute force assumes one instance per backend"
    jobs = list(range(ts.num_jobs))
    firm = [j for j in jobs if ts.job_deadline_us[j] != NO_DEADLINE]
    required = [j for j in jobs if j not in firm]
    weight = {j: ts.tasks[ts.job_task[j]].weight for j in firm}
    best = float("inf")
    for mask in range(1 << len(firm)):
        dropped = [j for k, j in enumerate(firm) if not mask >> k & 1]
        cost = sum(weight[j] for j in dropped)
        if cost >= best:
            continue
        running = sorted(required + [j for k, j in enumerate(firm) if mask >> k & 1])
        if any(ts.job_after[j] >= 0 and ts.job_after[j] not in running for j in running):
            continue
        if _feasible(ts, running):
            best = cost
    return best


def _feasible(ts: TaskSet, running: list[int]) -> bool:
    segs = [s for j in running for s in ts.job_segments(j)]
    choices = [[b for b in range(len(ts.backends)) if ts.seg_dur_us[s, b] != INELIGIBLE]
               for s in segs]
    for backends in itertools.product(*choices):
        on = dict(zip(segs, backends))
        for order in itertools.permutations(segs):
            if _valid_order(ts, order) and _meets_everything(ts, order, on, running):
                return True
    return False


def _valid_order(ts: TaskSet, order) -> bool:
    position = {s: i for i, s in enumerate(order)}
    for s in order:
        job = int(ts.seg_job[s])
        first = int(ts.job_seg_start[job])
        if s > first and position[s - 1] > position[s]:
            return False
        pred = int(ts.job_after[job])
        if s == first and pred >= 0 and position[int(ts.job_seg_start[pred + 1]) - 1] > position[s]:
            return False
    return True


def _meets_everything(ts: TaskSet, order, on, running) -> bool:
    free = [0] * len(ts.backends)
    end: dict[int, int] = {}
    for s in order:
        job, b = int(ts.seg_job[s]), on[s]
        first = int(ts.job_seg_start[job])
        ready = int(ts.job_release_us[job])
        if s > first:
            prev = on[s - 1]
            ready = max(ready, end[s - 1] + int(ts.transfer_us[ts.job_task[job], prev, b]))
        elif ts.job_after[job] >= 0:
            ready = max(ready, end[int(ts.job_seg_start[ts.job_after[job] + 1]) - 1])
        start = max(ready, free[b])
        end[s] = start + int(ts.seg_dur_us[s, b])
        free[b] = end[s]
    run_end = ts.horizon_us + ts.drain_us
    for job in running:
        last = int(ts.job_seg_start[job + 1]) - 1
        deadline = int(ts.job_deadline_us[job])
        if deadline != NO_DEADLINE and end[last] > deadline:
            return False
        task = ts.tasks[ts.job_task[job]]
        if task.is_llm:
            if end[last] > run_end:
                return False
            segs = ts.job_segments(job)
            first_token = next(s for s in segs if ts.seg_token[s] == 1)
            if end[first_token] > int(ts.job_release_us[job]) + task.give_up_us:
                return False
    return True


def moore_hodgson(jobs: list[tuple[int, int]]) -> int:
    """Fewest late jobs on one machine, all released at 0: (processing, due date) pairs."""
    scheduled, total = [], 0
    for p, d in sorted(jobs, key=lambda j: j[1]):
        scheduled.append(p)
        total += p
        if total > d:
            longest = max(scheduled)
            scheduled.remove(longest)
            total -= longest
    return len(jobs) - len(scheduled)
