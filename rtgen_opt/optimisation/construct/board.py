"""The occupancy board of the construction: backend lanes of busy intervals, the frames
and request segments placed, and an undo journal so that any candidate can be tried and
taken back."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet
from rtgen_opt.optimisation.construct.lanes import Lane
from rtgen_opt.optimisation.placement import Row, dependents

BLOCKED = -1  # owner of a blocked interval (segments own theirs by their index)


class ConstructionFailed(Exception):
    """No schedule found that serves every required request by its deadlines."""


class LaneEdit(NamedTuple):
    """Journal: an interval inserted into (or removed from) a lane."""

    inserted: bool
    backend: int
    instance: int
    start: int
    end: int
    owner: int


class FrameEdit(NamedTuple):
    """Journal: a frame job's rows changed; ``old`` what it had before (None: unplaced)."""

    job: int
    old: list[Row] | None


class SegEdit(NamedTuple):
    """Journal: a request segment's row changed; ``old`` its row before (None: unplaced)."""

    seg: int
    old: Row | None


class Fastest:
    """Per segment, its backends by duration (ties by index), computed on demand."""

    def __init__(self, ts: TaskSet):
        self.dur = ts.seg_dur_us
        self.cache: dict[bytes, list[int]] = {}

    def __getitem__(self, seg: int) -> list[int]:
        row = self.dur[seg]
        key = row.tobytes()
        if key not in self.cache:
            self.cache[key] = sorted((b for b in range(len(row)) if row[b] != INELIGIBLE),
                                     key=lambda b: (row[b], b))
        return self.cache[key]


class Board:
    """Backend lanes (one per instance) of disjoint busy intervals sorted by start, the
    placed frames and request segments, and an undo journal."""

    def __init__(self, problem: Problem, weights: np.ndarray):
        ts = self.ts = problem.ts
        self.problem = problem
        self.weights = weights  # per job, integer (scaled) weight of a firm job
        self.lanes: list[list[Lane]] = [[Lane() for _ in range(k)] for k in ts.instances]
        self.frames: dict[int, list[Row]] = {}  # frame job -> its rows, in segment order
        self.placed_weight = 0  # of the frames placed
        self.segs: dict[int, Row] = {}  # request segment -> its row
        self.journal: list[LaneEdit | FrameEdit | SegEdit] = []
        self.is_frame_seg = ts.job_deadline_us[ts.seg_job] != NO_DEADLINE
        self.fastest_first = Fastest(ts)
        self.only_job, self.only_backend = -1, None  # a plan may keep a job on one backend
        self.not_before: dict[int, int] = {}  # a plan may hold a request back: job -> time
        self.in_problem = np.zeros(ts.num_jobs, dtype=bool)
        self.in_problem[problem.job_ids] = True
        # every `after` edge of the problem: a predecessor may have several dependents
        self.dependents = dependents(ts, problem.job_ids.tolist())
        for backend, start, end in sorted(problem.blocked, key=lambda x: (x[1], x[2])):
            if end <= start:
                continue
            k = next((k for k in range(ts.instances[backend])
                      if self._fits(backend, k, start, end)), None)
            if k is None:  # more overlapping blocks than instances: nothing can fit there
                raise ConstructionFailed(f"blocked time on {ts.backends[backend]} exceeds "
                                         f"its {ts.instances[backend]} instance(s)")
            self._insert(backend, k, start, end, BLOCKED)
        self.journal.clear()

    # ---------------------------------------------------------------- lanes and journal

    def _insert(self, b: int, k: int, s: int, e: int, owner: int, record: bool = True) -> None:
        self.lanes[b][k].insert(s, e, owner)
        if record:
            self.journal.append(LaneEdit(True, b, k, s, e, owner))

    def _remove(self, b: int, k: int, s: int, e: int, owner: int, record: bool = True) -> None:
        self.lanes[b][k].remove(s, owner)
        if record:
            self.journal.append(LaneEdit(False, b, k, s, e, owner))

    def mark(self) -> int:
        return len(self.journal)

    def rollback(self, mark: int) -> None:
        """Undo every change made since ``mark``."""
        while len(self.journal) > mark:
            entry = self.journal.pop()
            if type(entry) is LaneEdit:
                undo = self._remove if entry.inserted else self._insert
                undo(entry.backend, entry.instance, entry.start, entry.end, entry.owner,
                     record=False)
            elif type(entry) is FrameEdit:
                job = entry.job
                if job in self.frames:
                    self.placed_weight -= int(self.weights[job])
                    del self.frames[job]
                if entry.old is not None:
                    self.frames[job] = entry.old
                    self.placed_weight += int(self.weights[job])
            elif entry.old is None:
                self.segs.pop(entry.seg, None)
            else:
                self.segs[entry.seg] = entry.old

    def _fits(self, b: int, k: int, s: int, e: int) -> bool:
        last = self.lanes[b][k].last_before(e)  # of the intervals starting before e
        return last is None or last[1] <= s

    def earliest_gap(self, b: int, k: int, at: int, dur: int, skip_frames: bool = False,
                     limit: float = math.inf) -> int:
        """Earliest start >= at with [start, start + dur) free on lane (b, k); with
        ``skip_frames``, frames do not count as busy (they can be displaced). The search
        gives up past ``limit`` (the start returned is then beyond it)."""
        start = at
        is_frame = self.is_frame_seg
        for s, e, owner in self.lanes[b][k].scan(at):
            if s >= start + dur:  # sorted by start: nothing later can collide
                break
            if e <= start or (skip_frames and owner >= 0 and is_frame[owner]):
                continue
            start = e
            if start > limit:
                break
        return start

    def fixed_free(self, b: int, k: int, s: int, e: int) -> bool:
        """No request segment or blocked time on lane (b, k) meets [s, e)."""
        is_frame = self.is_frame_seg
        for start, end, owner in self.lanes[b][k].scan(s):
            if start >= e:
                break
            if end > s and (owner < 0 or not is_frame[owner]):
                return False
        return True

    def frames_on(self, b: int, k: int, s: int, e: int) -> list[int]:
        """Frame jobs with a row on lane (b, k) meeting [s, e)."""
        found = []
        for start, end, o in self.lanes[b][k].scan(s):
            if start >= e:
                break
            if end > s and o >= 0 and self.is_frame_seg[o]:
                found.append(int(self.ts.seg_job[o]))
        return found

    def busy_ends(self, b: int, k: int, lo: int, hi: int) -> list[int]:
        """Ends of busy intervals on lane (b, k) within (lo, hi]."""
        out = []
        for start, end, _ in self.lanes[b][k].scan(lo):
            if start >= hi:
                break
            if lo < end <= hi:
                out.append(end)
        return out

    # ---------------------------------------------------------------- placements

    def put_frame(self, job: int, rows: list[Row]) -> None:
        for seg, b, k, s, e in rows:
            self._insert(b, k, s, e, seg)
        self.journal.append(FrameEdit(job, self.frames.get(job)))
        self.frames[job] = rows
        self.placed_weight += int(self.weights[job])

    def take_frame(self, job: int) -> None:
        rows = self.frames.get(job)
        if rows is None:
            return
        for seg, b, k, s, e in rows:
            self._remove(b, k, s, e, seg)
        self.journal.append(FrameEdit(job, rows))
        del self.frames[job]
        self.placed_weight -= int(self.weights[job])

    def put_seg(self, row: Row) -> None:
        seg, b, k, s, e = row
        assert seg not in self.segs, f"segment {seg} placed twice"  # a shared predecessor
        self._insert(b, k, s, e, seg)
        self.journal.append(SegEdit(seg, self.segs.get(seg)))
        self.segs[seg] = row

    def take_seg(self, seg: int) -> None:
        row = self.segs.pop(seg)
        self._remove(row.backend, row.instance, row.start, row.end, seg)
        self.journal.append(SegEdit(seg, row))

    def end_of(self, job: int) -> int | None:
        """When ``job`` (a frame or a request) ends on the board; None: not (fully) placed."""
        if job in self.frames:
            return self.frames[job][-1].end
        row = self.segs.get(self.problem.segments(job)[-1])
        return None if row is None else row.end

    def rows(self) -> list[Row]:
        out = [r for rows in self.frames.values() for r in rows]
        return out + list(self.segs.values())

    def schedule(self) -> Schedule:
        """The board's rows as a schedule."""
        rows = self.rows()
        if not rows:
            return Schedule.from_lists([], [], [], [], [], [])
        seg, backend, instance, start, end = zip(*rows)
        return Schedule.from_lists(seg, backend, instance, start, end, [False] * len(rows))
