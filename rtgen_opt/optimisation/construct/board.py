"""The occupancy board of the construction: per backend instance the busy intervals, the placed
frames and request segments, a journal to roll a trial placement back."""

from __future__ import annotations

import bisect
import math

import numpy as np

from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet


class ConstructionFailed(Exception):
    """No schedule found that serves every required request by its deadlines."""


# ----------------------------------------------------------------------------- the board


class Board:
    """Backend lanes (one per instance) of disjoint busy intervals sorted by start, the
    placed frames and request segments, and an undo journal so that any candidate can be
    tried and taken back."""

    def __init__(self, problem: Problem, weights: np.ndarray):
        ts = self.ts = problem.ts
        self.problem = problem
        self.weights = weights  # per job, integer (scaled) weight of a firm job
        self.starts = [[[] for _ in range(k)] for k in ts.instances]
        self.ends = [[[] for _ in range(k)] for k in ts.instances]
        self.owners = [[[] for _ in range(k)] for k in ts.instances]
        self.frames: dict[int, list[tuple]] = {}  # job -> rows (seg, b, k, start, end)
        self.placed_weight = 0  # of the frames placed
        self.segs: dict[int, tuple] = {}  # request segment -> (seg, b, k, start, end)
        self.journal: list[tuple] = []
        self.is_frame_seg = ts.job_deadline_us[ts.seg_job] != NO_DEADLINE
        self.fastest_first = Fastest(ts)
        self.only_job, self.only_backend = -1, None  # a plan may keep a job on one backend
        self.in_problem = np.zeros(ts.num_jobs, dtype=bool)
        self.in_problem[problem.job_ids] = True
        self.successors: dict[int, list[int]] = {}  # `after`: a job may have several
        for j in problem.job_ids.tolist():
            if ts.job_after[j] >= 0:
                self.successors.setdefault(int(ts.job_after[j]), []).append(int(j))
        for backend, start, end in sorted(problem.blocked, key=lambda x: (x[1], x[2])):
            if end <= start:
                continue
            k = next((k for k in range(ts.instances[backend])
                      if self._fits(backend, k, start, end)), None)
            if k is None:  # more overlapping blocks than instances: nothing can fit there
                raise ConstructionFailed(f"blocked time on {ts.backends[backend]} exceeds "
                                         f"its {ts.instances[backend]} instance(s)")
            self._insert(backend, k, start, end, -1)
        self.journal.clear()

    # ---------------------------------------------------------------- lanes and journal

    def _insert(self, b, k, s, e, owner, record=True) -> None:
        starts = self.starts[b][k]
        i = bisect.bisect_left(starts, s)
        starts.insert(i, s)
        self.ends[b][k].insert(i, e)
        self.owners[b][k].insert(i, owner)
        if record:
            self.journal.append(("ins", b, k, s, e, owner))

    def _remove(self, b, k, s, e, owner, record=True) -> None:
        starts, owners = self.starts[b][k], self.owners[b][k]
        i = bisect.bisect_left(starts, s)
        while owners[i] != owner:
            i += 1
        del starts[i], self.ends[b][k][i], owners[i]
        if record:
            self.journal.append(("del", b, k, s, e, owner))

    def mark(self) -> int:
        return len(self.journal)

    def rollback(self, mark: int) -> None:
        while len(self.journal) > mark:
            entry = self.journal.pop()
            kind = entry[0]
            if kind == "ins":
                self._remove(*entry[1:], record=False)
            elif kind == "del":
                self._insert(*entry[1:], record=False)
            elif kind == "frame":
                _, job, old = entry
                if job in self.frames:
                    self.placed_weight -= int(self.weights[job])
                    del self.frames[job]
                if old is not None:
                    self.frames[job] = old
                    self.placed_weight += int(self.weights[job])
            elif kind == "seg":
                _, seg, old = entry
                if old is None:
                    self.segs.pop(seg, None)
                else:
                    self.segs[seg] = old

    def _fits(self, b, k, s, e) -> bool:
        starts, ends = self.starts[b][k], self.ends[b][k]
        i = bisect.bisect_left(starts, e)  # intervals starting before e
        return i == 0 or ends[i - 1] <= s

    def earliest_gap(self, b, k, at, dur, skip_frames=False, limit=math.inf) -> int:
        """Earliest start >= at with [start, start + dur) free on lane (b, k); with
        ``skip_frames``, frames do not count as busy (they can be displaced). The search
        gives up past ``limit`` (the start returned is then beyond it)."""
        starts, ends, owners = self.starts[b][k], self.ends[b][k], self.owners[b][k]
        start = at
        i = max(0, bisect.bisect_right(starts, at) - 1)
        n = len(starts)
        is_frame = self.is_frame_seg
        while i < n:
            if starts[i] >= start + dur:  # sorted by start: nothing later can collide
                break
            if ends[i] <= start or (skip_frames and owners[i] >= 0 and is_frame[owners[i]]):
                i += 1
                continue
            start = ends[i]
            if start > limit:
                break
            i += 1
        return start

    def fixed_free(self, b, k, s, e) -> bool:
        """No request segment or blocked time on lane (b, k) meets [s, e)."""
        starts, ends, owners = self.starts[b][k], self.ends[b][k], self.owners[b][k]
        i = max(0, bisect.bisect_right(starts, s) - 1)
        is_frame = self.is_frame_seg
        while i < len(starts) and starts[i] < e:
            if ends[i] > s and (owners[i] < 0 or not is_frame[owners[i]]):
                return False
            i += 1
        return True

    def frames_on(self, b, k, s, e) -> list[int]:
        """Frame jobs with a row on lane (b, k) meeting [s, e)."""
        starts, ends, owners = self.starts[b][k], self.ends[b][k], self.owners[b][k]
        i = max(0, bisect.bisect_right(starts, s) - 1)
        found = []
        while i < len(starts) and starts[i] < e:
            o = owners[i]
            if ends[i] > s and o >= 0 and self.is_frame_seg[o]:
                found.append(int(self.ts.seg_job[o]))
            i += 1
        return found

    def busy_ends(self, b, k, lo, hi) -> list[int]:
        """Ends of busy intervals on lane (b, k) within (lo, hi]."""
        starts, ends = self.starts[b][k], self.ends[b][k]
        i = max(0, bisect.bisect_right(starts, lo) - 1)
        out = []
        while i < len(starts) and starts[i] < hi:
            if lo < ends[i] <= hi:
                out.append(ends[i])
            i += 1
        return out

    # ---------------------------------------------------------------- placements

    def put_frame(self, job, rows) -> None:
        for seg, b, k, s, e in rows:
            self._insert(b, k, s, e, seg)
        self.journal.append(("frame", job, self.frames.get(job)))
        self.frames[job] = rows
        self.placed_weight += int(self.weights[job])

    def take_frame(self, job) -> None:
        rows = self.frames.get(job)
        if rows is None:
            return
        for seg, b, k, s, e in rows:
            self._remove(b, k, s, e, seg)
        self.journal.append(("frame", job, rows))
        del self.frames[job]
        self.placed_weight -= int(self.weights[job])

    def put_seg(self, row) -> None:
        seg, b, k, s, e = row
        self._insert(b, k, s, e, seg)
        self.journal.append(("seg", seg, self.segs.get(seg)))
        self.segs[seg] = row

    def take_seg(self, seg) -> None:
        _, b, k, s, e = row = self.segs.pop(seg)
        self._remove(b, k, s, e, seg)
        self.journal.append(("seg", seg, row))

    def rows(self) -> list[tuple]:
        out = [r for rows in self.frames.values() for r in rows]
        return out + list(self.segs.values())



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


# ----------------------------------------------------------------------------- frames


