"""A greedy schedule, feasible by construction: a floor for the constructions and a warm
start where a policy's trace would collide with time already committed (``blocked``)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable

from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet
from rtgen_opt.optimisation.placement import Row, predecessors_first

Lanes = dict[int, list[list[tuple[int, int]]]]  # backend -> per instance, sorted (start, end)


def greedy_schedule(problem: Problem) -> Schedule:
    """A schedule feasible by construction around the blocked time: requests first in
    arrival order (their chains as early as possible, each segment where it finishes
    first), then frames by deadline, each placed only if it completes in time. Used to
    warm-start windows, where a policy's trace may collide with committed blocks."""
    ts = problem.ts
    lanes: Lanes = {b: [[] for _ in range(k)] for b, k in enumerate(ts.instances)}
    for backend, start, end in sorted(problem.blocked, key=lambda x: (x[1], x[2])):
        lane = min(lanes[backend], key=lambda ln: (ln[-1][1] if ln else 0) > start)
        bisect.insort(lane, (start, end))
    jobs = problem.job_ids.tolist()
    requests = sorted((j for j in jobs if ts.job_deadline_us[j] == NO_DEADLINE),
                      key=lambda j: (ts.job_release_us[j], j))
    frames = sorted((j for j in jobs if ts.job_deadline_us[j] != NO_DEADLINE),
                    key=lambda j: (ts.job_deadline_us[j], j))
    finish: dict[int, int] = {}
    rows: tuple[list, ...] = ([], [], [], [], [], [])
    in_problem = set(jobs)
    for job in predecessors_first(ts, requests) + predecessors_first(ts, frames):
        pred = int(ts.job_after[job])
        if pred in in_problem and pred not in finish:
            continue  # its predecessor (a frame) missed its deadline: it cannot run
        placed = _place_chain(ts, job, lanes, finish, problem.segments(job))
        limit = int(ts.job_deadline_us[job])
        if limit != NO_DEADLINE and placed[-1].end > limit:
            continue
        for seg, backend, k, start, end in placed:
            bisect.insort(lanes[backend][k], (start, end))
            for column, value in zip(rows, (seg, backend, k, start, end, False)):
                column.append(value)
        finish[job] = placed[-1].end
    return Schedule.from_lists(*rows)


def _place_chain(ts: TaskSet, job: int, lanes: Lanes, finish: dict[int, int],
                 segments: Iterable[int]) -> list[Row]:
    """Place ``segments`` of ``job`` in order, each on the lane where it finishes first,
    from its release (after its predecessor, when that ran)."""
    ready = max(int(ts.job_release_us[job]), finish.get(int(ts.job_after[job]), 0))
    prev_backend = -1
    placed: list[Row] = []
    transfer = ts.transfer_us[ts.job_task[job]]
    for seg in segments:
        best: Row | None = None
        for b, lane_list in lanes.items():
            dur = int(ts.seg_dur_us[seg, b])
            if dur == INELIGIBLE:
                continue
            at = ready + (int(transfer[prev_backend, b]) if prev_backend >= 0 else 0)
            for k, lane in enumerate(lane_list):
                start = _earliest_gap(lane, at, dur)
                if best is None or (start + dur, b, k) < (best.end, best.backend,
                                                          best.instance):
                    best = Row(seg, b, k, start, start + dur)
        assert best is not None  # every segment has a backend (the task set checks it)
        placed.append(best)
        ready, prev_backend = best.end, best.backend
    return placed


def _earliest_gap(busy: list[tuple[int, int]], at: int, dur: int) -> int:
    """Earliest start >= at with [start, start + dur) free on a lane of sorted, disjoint
    busy intervals. (A chain's own earlier segments end before ``at``: no conflict.)"""
    start = at
    i = max(0, bisect.bisect_right(busy, (at, math.inf)) - 1)
    while i < len(busy):
        s, e = busy[i]
        if e <= start:
            i += 1
            continue
        if s >= start + dur:
            break
        start = max(start, e)
        i += 1
    return start
