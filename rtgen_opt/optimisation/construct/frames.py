"""Step 1 of the construction: frame mappings with the whole task set in view, list
scheduling in deadline order, frames falling back to another backend."""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

import numpy as np

from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet
from rtgen_opt.optimisation.construct.board import Board

MAX_MAPPINGS = 64  # static frame mappings tried (all combinations up to this many)
@dataclass
class Frames:
    """The problem's firm jobs, indexed for window queries, and how to place them:
    ``pref[task]`` the backends tried first (a static mapping) or None (each frame where
    it finishes first), ``fallback`` whether a frame that misses there may try the rest."""

    jobs: np.ndarray  # firm jobs of the problem, by (deadline, job)
    rank: dict  # job -> position in that order
    by_release: np.ndarray  # firm jobs by release
    releases: list  # their releases, sorted
    max_window: int
    pref: dict
    fallback: bool

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
                   int(windows.max()) if len(firm) else 0, {}, True)

    def meeting(self, ts: TaskSet, lo: int, hi: int) -> list[int]:
        """Firm jobs whose window [release, deadline] meets [lo, hi), by deadline."""
        a = bisect.bisect_left(self.releases, lo - self.max_window)
        z = bisect.bisect_left(self.releases, hi)
        jobs = [j for j in self.by_release[a:z].tolist() if ts.job_deadline_us[j] > lo]
        return sorted(jobs, key=self.rank.__getitem__)


def _frame_rows(board: Board, job: int, backends) -> list[tuple] | None:
    """The frame's segments in order, each where it finishes first among ``backends``;
    None when it cannot complete by its deadline (or its predecessor did not run)."""
    ts, problem = board.ts, board.problem
    ready = int(ts.job_release_us[job])
    pred = int(ts.job_after[job])
    if pred >= 0 and pred in board.frames:
        ready = max(ready, board.frames[pred][-1][4])
    elif pred >= 0 and board.in_problem[pred]:
        last = problem.segments(pred)[-1]
        if last not in board.segs:
            return None
        ready = max(ready, board.segs[last][4])
    deadline = int(ts.job_deadline_us[job])
    transfer = ts.transfer_us[ts.job_task[job]]
    rows, prev = [], -1
    for seg in problem.segments(job):
        best = None
        for b in backends:
            dur = int(ts.seg_dur_us[seg, b])
            if dur == INELIGIBLE:
                continue
            at = ready + (int(transfer[prev, b]) if prev >= 0 else 0)
            for k in range(ts.instances[b]):
                start = board.earliest_gap(b, k, at, dur, limit=deadline - dur)
                if best is None or start + dur < best[4]:
                    best = (seg, b, k, start, start + dur)
        if best is None or best[4] > deadline:
            return None
        rows.append(best)
        ready, prev = best[4], best[1]
    return rows


def _place_frame(board: Board, frames: Frames, job: int) -> bool:
    everywhere = range(len(board.ts.backends))
    mapped = frames.pref.get(int(board.ts.job_task[job]))
    rows = _frame_rows(board, job, everywhere if mapped is None else mapped)
    if rows is None and mapped is not None and frames.fallback:
        rows = _frame_rows(board, job, everywhere)
    if rows is None:
        return False
    board.put_frame(job, rows)
    return True


def _schedule_frames(board: Board, frames: Frames, jobs) -> None:
    """List-schedule ``jobs`` (in the order given: by deadline) around what is placed."""
    for job in jobs:
        _place_frame(board, frames, job)


def _mappings(problem: Problem, frames: Frames) -> list[tuple[dict, bool, frozenset]]:
    """Candidate frame mappings (preferred backends, fallback, tasks list-scheduled
    first): "each where it finishes first", the same with the tasks that have a single
    feasible backend placed first (priority on it), then every static mapping (each task
    on one backend where its frames meet their deadline alone), strict and with
    fallback."""
    ts = problem.ts
    tasks = sorted({int(ts.job_task[j]) for j in frames.jobs.tolist()})
    options = []
    for t in tasks:
        job = ts.tasks[t].first_job
        rel = int(ts.job_deadline_us[job] - ts.job_release_us[job])
        segs = ts.job_segments(job)
        fit = [b for b in range(len(ts.backends))
               if all(ts.seg_dur_us[s, b] != INELIGIBLE for s in segs)
               and sum(int(ts.seg_dur_us[s, b]) for s in segs) <= rel]
        options.append(fit or [None])
    out = [({}, True, frozenset())]
    single = frozenset(t for t, o in zip(tasks, options) if len(o) == 1 and o[0] is not None)
    if single and len(single) < len(tasks):
        out.append(({}, True, single))
    combos = itertools.islice(itertools.product(*options), MAX_MAPPINGS)
    for combo in combos:
        pref = {t: (b,) for t, b in zip(tasks, combo) if b is not None}
        if any(len(o) > 1 for o in options) or pref:
            out += [(pref, False, frozenset()), (pref, True, frozenset())]
    return out


def _map_frames(problem: Problem, weights: np.ndarray, frames: Frames) -> tuple[Board, str]:
    """Step 1: list-schedule every frame under each candidate mapping; keep the best."""
    best, how = None, ""
    job_task = problem.ts.job_task
    for pref, fallback, first in _mappings(problem, frames):
        board = Board(problem, weights)
        frames.pref, frames.fallback = pref, fallback
        order = frames.jobs.tolist()
        if first:
            order = ([j for j in order if job_task[j] in first]
                     + [j for j in order if job_task[j] not in first])
        _schedule_frames(board, frames, order)
        board.journal.clear()
        if best is None or board.placed_weight > best[0].placed_weight:
            best = (board, pref, fallback)
            how = _describe_mapping(problem.ts, pref, fallback)
            if first:
                how += ", tasks with one feasible backend first"
    board, frames.pref, frames.fallback = best
    return board, how


def _describe_mapping(ts: TaskSet, pref: dict, fallback: bool) -> str:
    if not pref:
        return "frames where they finish first"
    text = ", ".join(f"{ts.tasks[t].name}->{ts.backends[b[0]]}" for t, b in sorted(pref.items()))
    return f"static mapping {text}" + (" (with fallback)" if fallback else "")


# ----------------------------------------------------------------------------- requests


