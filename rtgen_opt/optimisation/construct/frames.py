"""Step 1 of the construction: frame mapping with the whole task set in view, and the list
scheduling of frames that the later steps use to repair the frames they displace.

Per periodic task, the backends on which its frames meet their deadline; every
combination of them (a static mapping) is list-scheduled in deadline order, beside "each
frame where it finishes first"; the mapping that drops the least weight is kept. A frame
that misses on its mapped backend may fall back to another one.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet
from rtgen_opt.optimisation.construct.board import Board, Row
from rtgen_opt.optimisation.placement import predecessors_first

MAX_MAPPINGS = 64  # static frame mappings tried (all combinations up to this many)


class Mapping(NamedTuple):
    """How frames are list-scheduled: ``pref[task]`` the backends tried first (absent:
    each frame where it finishes first), ``fallback`` whether a frame that misses there
    may try the rest, ``first`` the tasks list-scheduled before the others."""

    pref: dict[int, tuple[int, ...]]
    fallback: bool
    first: frozenset[int]


@dataclass
class Frames:
    """The problem's firm jobs, indexed for window queries, and the mapping in use."""

    jobs: np.ndarray  # firm jobs of the problem, by (deadline, job)
    rank: dict[int, int]  # job -> position in that order
    by_release: np.ndarray  # firm jobs by release
    releases: list[int]  # their releases, sorted
    max_window: int  # the longest relative deadline
    pref: dict[int, tuple[int, ...]] = field(default_factory=dict)
    fallback: bool = True

    @classmethod
    def of(cls, problem: Problem) -> Frames:
        ts = problem.ts
        ids = problem.job_ids
        firm = ids[ts.job_deadline_us[ids] != NO_DEADLINE]
        order = firm[np.lexsort((firm, ts.job_deadline_us[firm]))]
        by_release = firm[np.lexsort((firm, ts.job_release_us[firm]))]
        windows = ts.job_deadline_us[firm] - ts.job_release_us[firm]
        return cls(order, {int(j): i for i, j in enumerate(order.tolist())}, by_release,
                   ts.job_release_us[by_release].tolist(),
                   int(windows.max()) if len(firm) else 0)

    def meeting(self, ts: TaskSet, lo: int, hi: int) -> list[int]:
        """Firm jobs whose window [release, deadline] meets [lo, hi), by deadline."""
        a = bisect.bisect_left(self.releases, lo - self.max_window)
        z = bisect.bisect_left(self.releases, hi)
        jobs = [j for j in self.by_release[a:z].tolist() if ts.job_deadline_us[j] > lo]
        return sorted(jobs, key=self.rank.__getitem__)


def frame_rows(board: Board, job: int, backends: Iterable[int]) -> list[Row] | None:
    """The frame's segments in order, each where it finishes first among ``backends``;
    None when it cannot complete by its deadline (or its predecessor did not run)."""
    ts, problem = board.ts, board.problem
    ready = int(ts.job_release_us[job])
    pred = int(ts.job_after[job])
    if pred >= 0 and board.in_problem[pred]:
        pred_end = board.end_of(pred)
        if pred_end is None:
            return None
        ready = max(ready, pred_end)
    deadline = int(ts.job_deadline_us[job])
    transfer = ts.transfer_us[ts.job_task[job]]
    rows: list[Row] = []
    prev = -1
    for seg in problem.segments(job):
        best = None
        for b in backends:
            dur = int(ts.seg_dur_us[seg, b])
            if dur == INELIGIBLE:
                continue
            at = ready + (int(transfer[prev, b]) if prev >= 0 else 0)
            for k in range(ts.instances[b]):
                start = board.earliest_gap(b, k, at, dur, limit=deadline - dur)
                if best is None or start + dur < best.end:
                    best = Row(seg, b, k, start, start + dur)
        if best is None or best.end > deadline:
            return None
        rows.append(best)
        ready, prev = best.end, best.backend
    return rows


def place_frame(board: Board, frames: Frames, job: int) -> bool:
    everywhere = range(len(board.ts.backends))
    mapped = frames.pref.get(int(board.ts.job_task[job]))
    rows = frame_rows(board, job, everywhere if mapped is None else mapped)
    if rows is None and mapped is not None and frames.fallback:
        rows = frame_rows(board, job, everywhere)
    if rows is None:
        return False
    board.put_frame(job, rows)
    return True


def schedule_frames(board: Board, frames: Frames, jobs: list[int]) -> None:
    """List-schedule ``jobs`` (in the order given: by deadline, each after the frames it
    waits for) around what is placed."""
    for job in jobs:
        place_frame(board, frames, job)


def take_frames(board: Board, frames: Frames, jobs: Iterable[int]) -> list[int]:
    """Take ``jobs`` off the board with every placed frame waiting for them (directly or
    through a chain: it could otherwise start before its predecessor, put back later,
    ends); returns them in the order to put them back: by deadline, predecessors first."""
    taken: set[int] = set()
    todo = list(jobs)
    while todo:
        job = todo.pop()
        if job in taken:
            continue
        taken.add(job)
        todo += [d for d in board.dependents.get(job, ()) if d in board.frames]
    order = predecessors_first(board.ts, sorted(taken, key=frames.rank.__getitem__))
    for job in order:
        board.take_frame(job)
    return order


def mappings(problem: Problem, frames: Frames) -> list[Mapping]:
    """Candidate frame mappings: "each where it finishes first", the same with the tasks
    that have a single feasible backend placed first (priority on it), then every static
    mapping (each task on one backend where its frames meet their deadline alone), strict
    and with fallback."""
    ts = problem.ts
    tasks = sorted({int(ts.job_task[j]) for j in frames.jobs.tolist()})
    options: list[list[int | None]] = []
    for t in tasks:
        job = ts.tasks[t].first_job
        rel = int(ts.job_deadline_us[job] - ts.job_release_us[job])
        segs = ts.job_segments(job)
        fit: list[int | None] = [
            b for b in range(len(ts.backends))
            if all(ts.seg_dur_us[s, b] != INELIGIBLE for s in segs)
            and sum(int(ts.seg_dur_us[s, b]) for s in segs) <= rel]
        options.append(fit or [None])
    out = [Mapping({}, True, frozenset())]
    single = frozenset(t for t, o in zip(tasks, options) if len(o) == 1 and o[0] is not None)
    if single and len(single) < len(tasks):
        out.append(Mapping({}, True, single))
    for combo in itertools.islice(itertools.product(*options), MAX_MAPPINGS):
        pref = {t: (b,) for t, b in zip(tasks, combo) if b is not None}
        if any(len(o) > 1 for o in options) or pref:
            out += [Mapping(pref, False, frozenset()), Mapping(pref, True, frozenset())]
    return out


def map_frames(problem: Problem, weights: np.ndarray, frames: Frames) -> tuple[Board, str]:
    """Step 1: list-schedule every frame under each candidate mapping; keep the best (its
    board, and ``frames`` set to its mapping). Returns the board and the mapping's name."""
    best: tuple[Board, Mapping] | None = None
    how = ""
    job_task = problem.ts.job_task
    everything = int(weights.sum())
    for mapping in mappings(problem, frames):
        if best is not None and best[0].placed_weight == everything:
            break  # every frame placed: no later mapping can do better (ties keep the first)
        board = Board(problem, weights)
        frames.pref, frames.fallback = mapping.pref, mapping.fallback
        order = frames.jobs.tolist()
        if mapping.first:
            order = ([j for j in order if job_task[j] in mapping.first]
                     + [j for j in order if job_task[j] not in mapping.first])
        schedule_frames(board, frames, predecessors_first(problem.ts, order))
        board.journal.clear()
        if best is None or board.placed_weight > best[0].placed_weight:
            best = (board, mapping)
            how = describe_mapping(problem.ts, mapping)
    assert best is not None  # the first mapping is always tried
    board, mapping = best
    frames.pref, frames.fallback = mapping.pref, mapping.fallback
    return board, how


def describe_mapping(ts: TaskSet, mapping: Mapping) -> str:
    if not mapping.pref:
        how = "frames where they finish first"
    else:
        text = ", ".join(f"{ts.tasks[t].name}->{ts.backends[b[0]]}"
                         for t, b in sorted(mapping.pref.items()))
        how = f"static mapping {text}" + (" (with fallback)" if mapping.fallback else "")
    if mapping.first:
        how += ", tasks with one feasible backend first"
    return how
