"""Kill-aware construction: a feasible schedule for long horizons (the upper bound).

What makes a long horizon expensive is not backend capacity but non-preemption: a 34 ms
prefill layer on the NPU blocks it for two 60 FPS frame periods. The construction places
each piece of work where it drops the least frame weight, in four steps:

1. **Frame mapping with the whole task set in view.** Per periodic task, the backends on
   which its frames meet their deadline; every combination of them (a static mapping) is
   list-scheduled in deadline order, beside "each frame where it finishes first"; the
   mapping that drops the least weight is kept. A frame that misses on its mapped backend
   may fall back to another one.
2. **First-token work where it kills least, scored by repair.** Per required request in
   arrival order (its `after` predecessors first), each segment up to the first token
   is tried at its earliest start free of other requests and blocked time, at the ends
   of busy intervals shortly after, and in the first idle gap; a candidate is scored by
   taking out the frames whose windows meet its span and list-scheduling them again
   around it (they may change backend). The cheapest wins, then the earliest end (TTFT).
   Beside this per-segment plan, whole plans are tried — the same with the request's own
   segments kept on one backend (two overlapping requests then share the platform, one
   on the GPU while the other uses the NPU), its first-token segments back to back on
   one lane, and every segment in idle time (which finds "after the last frame" when the
   give-up time allows) — and the cheapest plan is kept, then the earliest first token.
3. **Decode into idle time**, never displacing a frame; where that would miss the last
   token's deadline (service-matched problems), the decode is placed like the first-token
   work, and as a last resort as early as possible.
4. **Polish**: short CP-SAT windows around the dropped frames, with the frames and the
   LLM segments inside free to move and everything else blocked, while the a-priori
   budget lasts; a window's answer is kept only when it drops less weight. (Measured: no
   gain on the 60 s instances of ``bench/bench_construct.py``, where the requests do not
   overlap; a frame or two where they do.)

Every step keeps the schedule feasible for the problem: required chains complete by their
token deadlines (latest ends computed backwards from the first- and last-token deadlines
are checked for every candidate), firm frames run inside [release, deadline] or not at
all, blocked time is never used. The work is deterministic (no wall-clock decisions) apart
from the polish, whose CP-SAT solves run on deterministic time with one worker.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet

# Candidate starts of a first-token segment reach this many frame windows (the longest
# relative deadline) past its ready time: waiting longer only repeats the frame pattern.
LOOKAHEAD_WINDOWS = 3
MAX_MAPPINGS = 64  # static frame mappings tried (all combinations up to this many)
POLISH_SHARE = 0.8  # of the time limit, for the CP-SAT polish windows
POLISH_WINDOW_US = 300_000  # a polish window: this long around a dropped frame
POLISH_MIN_S = 0.3  # per polish window
# deterministic time per second of a window's limit, with one worker. Measured on this
# machine (2 shared cores): a 300 ms window advances 0.003-0.015 units per wall second,
# so this stops first and runs repeat; twice the limit in wall-clock time caps each solve.
POLISH_DETERMINISTIC_PER_SECOND = 0.005
# below this many segments, the plain greedy schedule is computed as a floor (its gap
# searches are unbounded: quadratic on long horizons)
GREEDY_FLOOR_SEGMENTS = 4000


class ConstructionFailed(Exception):
    """No schedule found that serves every required request by its deadlines."""


# ----------------------------------------------------------------------------- the board


class _Board:
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
        self.fastest_first = _Fastest(ts)
        self.only_job, self.only_backend = -1, None  # a plan may keep a job on one backend
        self.in_problem = np.zeros(ts.num_jobs, dtype=bool)
        self.in_problem[problem.job_ids] = True
        self.successor = {int(ts.job_after[j]): int(j) for j in problem.job_ids.tolist()
                          if ts.job_after[j] >= 0}
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



class _Fastest:
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


@dataclass
class _Frames:
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
    def of(cls, problem: Problem) -> _Frames:
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


def _frame_rows(board: _Board, job: int, backends) -> list[tuple] | None:
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


def _place_frame(board: _Board, frames: _Frames, job: int) -> bool:
    everywhere = range(len(board.ts.backends))
    mapped = frames.pref.get(int(board.ts.job_task[job]))
    rows = _frame_rows(board, job, everywhere if mapped is None else mapped)
    if rows is None and mapped is not None and frames.fallback:
        rows = _frame_rows(board, job, everywhere)
    if rows is None:
        return False
    board.put_frame(job, rows)
    return True


def _schedule_frames(board: _Board, frames: _Frames, jobs) -> None:
    """List-schedule ``jobs`` (in the order given: by deadline) around what is placed."""
    for job in jobs:
        _place_frame(board, frames, job)


def _mappings(problem: Problem, frames: _Frames) -> list[tuple[dict, bool, frozenset]]:
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


def _map_frames(problem: Problem, weights: np.ndarray, frames: _Frames) -> tuple[_Board, str]:
    """Step 1: list-schedule every frame under each candidate mapping; keep the best."""
    best, how = None, ""
    job_task = problem.ts.job_task
    for pref, fallback, first in _mappings(problem, frames):
        board = _Board(problem, weights)
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


@dataclass
class _Unit:
    """A required request with the predecessors it waits for: its segments in chain
    order, the job of each, the latest end of each (from the token deadlines backwards,
    at the fastest durations) and where its first-token work ends."""

    job: int
    segs: list[int]
    seg_job: list[int]
    latest_end: list[int]
    first_work: int  # segments [0, first_work) are the first-token work

    @property
    def first_token(self) -> int:
        return self.segs[self.first_work - 1]


def _units(problem: Problem) -> list[_Unit]:
    """Every required request (and the predecessors it needs), in arrival order."""
    ts = problem.ts
    ids = problem.job_ids.tolist()
    in_problem = set(ids)
    required = {j for j in ids if ts.job_deadline_us[j] == NO_DEADLINE
                and j not in problem.optional}
    for j in sorted(required):  # a required request needs its predecessors
        pred = int(ts.job_after[j])
        while pred >= 0 and pred in in_problem and ts.job_deadline_us[pred] == NO_DEADLINE:
            required.add(pred)
            pred = int(ts.job_after[pred])
    needed_by_other = {int(ts.job_after[j]) for j in required}
    sinks = sorted((j for j in required if j not in needed_by_other),
                   key=lambda j: (int(ts.job_release_us[j]), j))
    return [_unit(problem, j, required) for j in sinks]


def _unit(problem: Problem, job: int, required: set) -> _Unit:
    ts = problem.ts
    chain = [job]
    while int(ts.job_after[chain[-1]]) in required:
        chain.append(int(ts.job_after[chain[-1]]))
    chain.reverse()
    segs, seg_job, due = [], [], []
    for j in chain:
        own = list(problem.segments(j))
        segs += own
        seg_job += [j] * len(own)
        due += [problem.end_us] * len(own)
    first_work = len(segs)
    service = problem.token_service(job)
    if service is not None:
        first, last, first_by, last_by = service
        first_at = segs.index(first)
        if first_by is not None:
            due[first_at] = min(due[first_at], first_by)
        due[segs.index(last)] = min(due[segs.index(last)], last_by)
        first_work = first_at + 1
    latest = list(due)
    for i in range(len(segs) - 2, -1, -1):
        latest[i] = min(due[i], latest[i + 1] - ts.fastest_us(segs[i + 1]))
    return _Unit(job, segs, seg_job, latest, first_work)


def _ready(board: _Board, unit: _Unit, i: int) -> tuple[int, int, np.ndarray | None]:
    """Ready time of the unit's segment i, the backend of the segment before it in the
    same job (-1: none, no transfer) and that job's transfer matrix."""
    ts, job = board.ts, unit.seg_job[i]
    ready = int(ts.job_release_us[job])
    if i > 0 and unit.seg_job[i - 1] == job:
        prev = board.segs[unit.segs[i - 1]]
        return max(ready, prev[4]), prev[1], ts.transfer_us[ts.job_task[job]]
    pred = int(ts.job_after[job])
    if i > 0:  # the predecessor's last segment, in this unit
        ready = max(ready, board.segs[unit.segs[i - 1]][4])
    elif pred >= 0 and board.in_problem[pred]:
        if pred in board.frames:
            ready = max(ready, board.frames[pred][-1][4])
        else:
            last = board.problem.segments(pred)[-1]
            if last not in board.segs:
                raise ConstructionFailed(f"job {job} waits for job {pred}, which did not run")
            ready = max(ready, board.segs[last][4])
    return ready, -1, None


def _lanes_for(board: _Board, seg: int, ready: int, prev: int, transfer, latest_end: int):
    """(backend, instance, earliest start, duration, latest start) of each lane that can
    still run ``seg`` by ``latest_end``, fastest backend first (so that searches bounded
    by the best end so far stop early)."""
    ts = board.ts
    only = board.only_backend if board.only_job == ts.seg_job[seg] else None
    for b in board.fastest_first[seg]:
        if only is not None and b != only:
            continue
        dur = int(ts.seg_dur_us[seg, b])
        if dur == INELIGIBLE:
            continue
        at = ready + (int(transfer[prev, b]) if prev >= 0 else 0)
        if at + dur > latest_end:
            continue
        for k in range(ts.instances[b]):
            yield b, k, at, dur, latest_end - dur


def _occupy(board: _Board, frames: _Frames, rows: list[tuple], how: str) -> int:
    """Put request segments ``rows`` (consecutive) on the board, repairing the frames:
    "min" takes out only the frames they collide with, "full" every frame whose window
    meets their span; those are list-scheduled again around them. The weight lost."""
    before = board.placed_weight
    lo, hi = rows[0][3], rows[-1][4]
    if how == "min":
        hit = {j for _, b, k, s, e in rows for j in board.frames_on(b, k, s, e)}
        taken = sorted(hit, key=frames.rank.__getitem__)
    elif how == "full":
        taken = frames.meeting(board.ts, lo, hi)
    else:
        taken = []
    for job in taken:
        board.take_frame(job)
    for row in rows:
        board.put_seg(row)
    _schedule_frames(board, frames, taken)
    return before - board.placed_weight


def _cost(board: _Board, frames: _Frames, rows: list[tuple]) -> tuple[int, str]:
    """The cheaper repair of putting ``rows``, tried and taken back."""
    if not any(board.frames_on(b, k, s, e) for _, b, k, s, e in rows):
        return 0, "none"
    best = None
    for how in ("min", "full"):
        mark = board.mark()
        lost = _occupy(board, frames, rows, how)
        board.rollback(mark)
        if best is None or lost < best[0]:
            best = (lost, how)
        if lost <= 0:
            break
    return best


def _choose_idle(board, frames, unit, i, lookahead):
    """The segment where it finishes first in idle time (displacing nothing)."""
    return _earliest_end(board, unit, i, skip_frames=False, how="none")


def _choose_asap(board, frames, unit, i, lookahead):
    """The segment where it finishes first if frames did not count (they are repaired)."""
    return _earliest_end(board, unit, i, skip_frames=True, how="full")


def _earliest_end(board, unit, i, skip_frames: bool, how: str):
    """Segment i of the unit on the lane where it ends first (each search bounded by the
    best end so far); ``skip_frames``: frames' time counts as free."""
    seg = unit.segs[i]
    ready, prev, transfer = _ready(board, unit, i)
    best = None
    for b, k, at, dur, latest in _lanes_for(board, seg, ready, prev, transfer,
                                            unit.latest_end[i]):
        limit = latest if best is None else min(latest, best[4] - dur)
        start = board.earliest_gap(b, k, at, dur, skip_frames=skip_frames, limit=limit)
        if start <= limit and (best is None or start + dur < best[4]):
            best = (seg, b, k, start, start + dur)
    return None if best is None else ([best], how)


def _choose_kill_aware(board, frames, unit, i, lookahead):
    """Step 2: the segment at its earliest start free of other requests and blocked time,
    at the ends of busy intervals up to ``lookahead`` later, or in the first idle gap —
    the start that loses the least frame weight after repair, then the earliest end."""
    seg = unit.segs[i]
    ready, prev, transfer = _ready(board, unit, i)
    candidates, idle_end = [], math.inf
    for b, k, at, dur, latest in _lanes_for(board, seg, ready, prev, transfer,
                                            unit.latest_end[i]):
        at = board.earliest_gap(b, k, at, dur, skip_frames=True, limit=latest)
        if at > latest:
            continue
        limit = min(latest, at + lookahead, idle_end - dur)
        gap = board.earliest_gap(b, k, at, dur, limit=limit)
        if gap <= limit:
            idle_end = min(idle_end, gap + dur)
            candidates.append((gap + dur, b, k, gap))
        for start in [at] + board.busy_ends(b, k, at, min(at + lookahead, latest, gap)):
            if start < gap and start <= latest and board.fixed_free(b, k, start, start + dur):
                candidates.append((start + dur, b, k, start))
    best = None
    for end, b, k, start in sorted(set(candidates)):
        if end > idle_end or (best is not None and best[0] == 0):
            break
        rows = [(seg, b, k, start, end)]
        lost, how = _cost(board, frames, rows)
        if best is None or lost < best[0]:
            best = (lost, rows, how)
    return None if best is None else best[1:]


def _place_segments(board, frames, unit, lo, hi, choose, lookahead) -> bool:
    """Place the unit's segments [lo, hi) one by one with ``choose``."""
    for i in range(lo, hi):
        choice = choose(board, frames, unit, i, lookahead)
        if choice is None:
            return False
        _occupy(board, frames, *choice)
    return True


def _place_back_to_back(board, frames, unit, lookahead) -> bool:
    """The first-token segments of the request itself back to back on one lane (its
    predecessors first, segment by segment), at the start that loses the least."""
    own = [i for i in range(unit.first_work) if unit.seg_job[i] == unit.job]
    if not own or not _place_segments(board, frames, unit, 0, own[0], _choose_kill_aware,
                                      lookahead):
        return False
    ts = board.ts
    segs = [unit.segs[i] for i in own]
    ready, _, _ = _ready(board, unit, own[0])
    transfer = ts.transfer_us[ts.job_task[unit.job]]
    best = None
    for b in range(len(ts.backends)):
        durs = [int(ts.seg_dur_us[s, b]) for s in segs]
        if INELIGIBLE in durs:
            continue
        for k in range(ts.instances[b]):
            total = sum(durs) + int(transfer[b, b]) * (len(segs) - 1)
            latest = unit.latest_end[own[-1]] - total
            at = board.earliest_gap(b, k, ready, total, skip_frames=True, limit=latest)
            if at > latest:
                continue
            horizon = at + lookahead
            gap = board.earliest_gap(b, k, at, total, limit=horizon)
            starts = {at, *board.busy_ends(b, k, at, min(horizon, gap))}
            if gap <= horizon:
                starts.add(gap)
            for start in sorted(starts):
                rows = _block(segs, durs, b, k, start, int(transfer[b, b]))
                if not all(r[4] <= unit.latest_end[i] for r, i in zip(rows, own)):
                    continue
                if not board.fixed_free(b, k, rows[0][3], rows[-1][4]):
                    continue
                lost, how = _cost(board, frames, rows)
                key = (lost, rows[-1][4], b, k)
                if best is None or key < best[0]:
                    best = (key, rows, how)
    if best is None:
        return False
    _occupy(board, frames, best[1], best[2])
    return True


def _block(segs, durs, b, k, start, transfer) -> list[tuple]:
    rows, at = [], start
    for seg, dur in zip(segs, durs):
        rows.append((seg, b, k, at, at + dur))
        at += dur + transfer
    return rows


def _plans(board: _Board, unit: _Unit) -> list[tuple[str, int | None]]:
    """Plans for a request's first-token work: kill-aware per segment (anywhere, or its
    own segments kept on one backend — two requests then share the platform, one on the
    GPU while the other uses the NPU), back to back on one lane, all in idle time."""
    ts = board.ts
    own = [s for s, j in zip(unit.segs[:unit.first_work], unit.seg_job) if j == unit.job]
    single = [b for b in range(len(ts.backends))
              if own and all(ts.seg_dur_us[s, b] != INELIGIBLE for s in own)]
    plans = [("kill-aware", None)]
    if len(single) > 1:
        plans += [("kill-aware on " + ts.backends[b], b) for b in single]
    if unit.first_work < len(unit.segs):  # a token service: the request's own part
        plans.append(("back-to-back", None))
    return plans + [("idle", None)]


def _run_plan(board, frames, unit, plan, lookahead) -> bool:
    name, backend = plan
    if name == "back-to-back":
        return _place_back_to_back(board, frames, unit, lookahead)
    choose = _choose_idle if name == "idle" else _choose_kill_aware
    board.only_job, board.only_backend = (unit.job, backend) if backend is not None else (-1, None)
    try:
        return _place_segments(board, frames, unit, 0, unit.first_work, choose, lookahead)
    finally:
        board.only_job, board.only_backend = -1, None


def _place_unit(board: _Board, frames: _Frames, unit: _Unit, lookahead: int) -> str:
    """Steps 2 and 3 for one request; returns the plan used for its first-token work."""
    start = board.mark()
    tried = []
    used = None  # the backends of the request's own segments under the plain plan
    for n, plan in enumerate(_plans(board, unit)):
        if plan[1] is not None and used == {plan[1]}:
            continue  # kept on that backend anyway
        mark = board.mark()
        before = board.placed_weight
        if _run_plan(board, frames, unit, plan, lookahead):
            tried.append((before - board.placed_weight, board.segs[unit.first_token][4], n,
                          plan))
            if n == 0:
                used = {board.segs[s][1] for s, j in zip(unit.segs[:unit.first_work],
                                                          unit.seg_job) if j == unit.job}
        board.rollback(mark)
    plan = min(tried)[3] if tried else ("asap", None)
    if plan[0] == "asap" or not _run_plan(board, frames, unit, plan, lookahead):
        board.rollback(start)
        if not _place_segments(board, frames, unit, 0, len(unit.segs), _choose_asap, 0):
            raise ConstructionFailed(f"request job {unit.job} cannot be served by its "
                                     f"deadlines")
        return "asap"
    mark = board.mark()
    n = len(unit.segs)
    if _place_segments(board, frames, unit, unit.first_work, n, _choose_idle_or_kill,
                       lookahead):
        return plan[0]
    board.rollback(mark)
    if _place_segments(board, frames, unit, unit.first_work, n, _choose_asap, 0):
        return plan[0]
    board.rollback(start)
    if not _place_segments(board, frames, unit, 0, n, _choose_asap, 0):
        raise ConstructionFailed(f"request job {unit.job} cannot be served by its deadlines")
    return "asap"


def _choose_idle_or_kill(board, frames, unit, i, lookahead):
    """Step 3: decode into idle time; only where that misses the deadline, kill-aware."""
    return (_choose_idle(board, frames, unit, i, lookahead)
            or _choose_kill_aware(board, frames, unit, i, lookahead))


# ----------------------------------------------------------------------------- driver


@dataclass
class ConstructionReport:
    """What the construction did, for progress lines and the solve output."""

    mapping: str = ""
    after_frames: float = 0.0  # weighted violations after step 1
    after_requests: float = 0.0  # after steps 2-3
    after_polish: float = 0.0
    plans: dict = None  # plan name -> requests placed that way
    construct_s: float = 0.0
    polish_windows: int = 0
    polish_improved: int = 0
    source: str = "construction"  # or "greedy", "floor": which schedule was returned
    constructed: Schedule | None = None  # the construction's own schedule (None: failed)


def construct_schedule(problem: Problem, time_limit_s: float, workers: int = 1,
                       seed: int = 0, progress=None, floor: Schedule | None = None
                       ) -> Schedule:
    """A schedule feasible for ``problem`` with few weighted frame violations (see the
    module docstring); never worse than ``floor``, a schedule known to be feasible for
    the problem (a policy's firm schedule, say). Raises ``ConstructionFailed`` when no
    schedule is found that serves every required request by its deadlines."""
    return construct(problem, time_limit_s, workers, seed, progress, floor)[0]


def construct(problem: Problem, time_limit_s: float, workers: int = 1, seed: int = 0,
              progress=None, floor: Schedule | None = None
              ) -> tuple[Schedule, ConstructionReport]:
    """``construct_schedule`` with its report."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    report = ConstructionReport(plans={})
    scale = problem.weight_scale
    weights = _int_weights(problem, scale)
    total = int(weights.sum())
    frames = _Frames.of(problem)
    board, report.mapping = _map_frames(problem, weights, frames)
    report.after_frames = (total - board.placed_weight) / scale
    say(f"frames: {report.mapping}: {report.after_frames:g} weighted violations")
    placed = _place_requests(board, frames, _units(problem), report, say)
    report.after_requests = (total - board.placed_weight) / scale
    report.construct_s = time.perf_counter() - started
    if placed:
        board.journal.clear()
        _polish(board, frames, POLISH_SHARE * time_limit_s, workers, seed, report, say)
    schedule = report.constructed = _schedule_of(board) if placed else None
    report.after_polish = (total - board.placed_weight) / scale if placed else math.inf
    if floor is not None and (schedule is None or _dropped(problem, floor, weights) / scale
                              < report.after_polish):
        say("the schedule given as a floor drops less: kept instead")
        report.source = "floor"
        schedule, report.after_polish = floor, _dropped(problem, floor, weights) / scale
    if sum(len(problem.segments(j)) for j in problem.job_ids.tolist()) <= GREEDY_FLOOR_SEGMENTS:
        schedule = _never_worse_than_greedy(problem, schedule, report, weights, say)
    if schedule is None:
        raise ConstructionFailed("no schedule serves every required request by its "
                                 "deadlines (the construction, greedy and any floor failed)")
    return schedule, report


def _place_requests(board, frames, units, report, say) -> bool:
    """Steps 2-3 for every request in arrival order. When one cannot be served in time,
    start again with it first (each request moved to the front at most once)."""
    lookahead = LOOKAHEAD_WINDOWS * frames.max_window
    base, scale = board.mark(), board.problem.weight_scale
    order, moved = list(units), set()
    while True:
        plans = {}
        try:
            for n, unit in enumerate(order):
                before = board.placed_weight
                plan = _place_unit(board, frames, unit, lookahead)
                plans[plan] = plans.get(plan, 0) + 1
                say(f"request {n + 1}/{len(order)} (job {unit.job}): {plan}, "
                    f"{(before - board.placed_weight) / scale:g} frames' weight lost")
            report.plans = plans
            return True
        except ConstructionFailed as failure:
            board.rollback(base)
            unit = order[n]
            if unit.job in moved:
                say(f"construction failed: {failure}")
                return False
            say(f"{failure}: again with it first")
            moved.add(unit.job)
            order = [unit] + [u for u in order if u is not unit]


def _never_worse_than_greedy(problem, schedule, report, weights, say) -> Schedule:
    """The plain greedy schedule (requests first, then frames), when it serves every
    required request in time and drops less: a floor under the construction."""
    from rtgen_opt.optimisation.greedy import greedy_schedule

    greedy = greedy_schedule(problem)
    lost = _dropped(problem, greedy, weights) / problem.weight_scale
    if (schedule is None or lost < report.after_polish) and not unserved(problem, greedy):
        say(f"the plain greedy schedule drops less ({lost:g}): kept instead")
        report.after_polish, report.source = lost, "greedy"
        return greedy
    return schedule


def _dropped(problem: Problem, schedule: Schedule, weights: np.ndarray) -> int:
    ts = problem.ts
    done = schedule.done
    count = np.bincount(ts.seg_job[schedule.seg[done]], minlength=ts.num_jobs)
    needed = np.array([len(problem.segments(j)) for j in range(ts.num_jobs)]) \
        if problem.prefix else np.diff(ts.job_seg_start)
    return int(weights[count < needed].sum())


def unserved(problem: Problem, schedule: Schedule) -> list[int]:
    """Required requests of ``problem`` that ``schedule`` does not complete by their
    deadlines (first token by ``token_service``'s due time, last segment by its own)."""
    done = schedule.done
    end = dict(zip(schedule.seg[done].tolist(), schedule.end_us[done].tolist()))
    missing = []
    for unit in _units(problem):
        for j in {*unit.seg_job}:
            service = problem.token_service(j)
            segs = problem.segments(j)
            ok = all(s in end for s in segs) and end[segs[-1]] <= problem.end_us
            if ok and service is not None:
                first, last, first_by, last_by = service
                ok = (first_by is None or end[first] <= first_by) and end[last] <= last_by
            if not ok:
                missing.append(j)
    return sorted(missing)


def _int_weights(problem: Problem, scale: int) -> np.ndarray:
    """Per job: its task's weight in integer units for a firm job of the problem, else 0."""
    ts = problem.ts
    task_weight = np.array([round(t.weight * scale) for t in ts.tasks], dtype=np.int64)
    weights = np.where(ts.job_deadline_us != NO_DEADLINE, task_weight[ts.job_task], 0)
    mask = np.zeros(ts.num_jobs, dtype=bool)
    mask[problem.job_ids] = True
    return np.where(mask, weights, 0)


def _schedule_of(board: _Board) -> Schedule:
    rows = board.rows()
    if not rows:
        return Schedule.from_lists([], [], [], [], [], [])
    seg, backend, instance, start, end = zip(*rows)
    return Schedule.from_lists(seg, backend, instance, start, end, [False] * len(rows))


# ----------------------------------------------------------------------------- polish


def _polish(board: _Board, frames: _Frames, budget_s: float, workers: int, seed: int,
            report: ConstructionReport, say) -> None:
    """Step 4: CP-SAT on windows around the dropped frames (frames whose window lies
    inside and request segments inside are free, everything else stays); a window's
    answer replaces the board's when it places more frame weight. The windows and their
    limits are fixed before the first solve (reproducible with one worker)."""
    windows = _polish_windows(board, frames)
    count = min(len(windows), int(budget_s / POLISH_MIN_S))
    if count == 0:
        return
    each = budget_s / count
    for lo, hi in windows[:count]:
        report.polish_windows += 1
        if _polish_window(board, frames, lo, hi, each, workers, seed):
            report.polish_improved += 1
    say(f"polish: {report.polish_improved} of {report.polish_windows} windows improved")


def _polish_windows(board: _Board, frames: _Frames) -> list[tuple[int, int]]:
    """Windows of ``POLISH_WINDOW_US`` centred on dropped frames, in time order, each
    dropped frame covered once, then the same again shifted by half a window."""
    ts = board.ts
    dropped = [j for j in frames.by_release.tolist() if j not in board.frames]
    half = POLISH_WINDOW_US // 2
    windows = []
    for shift in (0, half):
        covered = -math.inf
        for job in dropped:
            at = int(ts.job_release_us[job]) + shift
            if at - shift < covered:
                continue
            windows.append((max(0, at - half), at + half))
            covered = at + half - shift
    return windows


def _polish_window(board, frames, lo, hi, limit_s, workers, seed) -> bool:
    """Re-optimise the window [lo, hi) with CP-SAT; True when the board improved."""
    window = _PolishWindow(board, frames, lo, hi)
    return bool(window.free_frames) and window.solve(limit_s, workers, seed)


class _PolishWindow:
    """The CP-SAT model of one polish window: the frames whose window lies inside it
    (optional, on any lane) and the request segments inside it (on any lane, between
    their fixed neighbours), around every other row meeting the window, fixed."""

    def __init__(self, board: _Board, frames: _Frames, lo: int, hi: int):
        from ortools.sat.python import cp_model

        self.board, self.lo, self.hi = board, lo, hi
        ts = self.ts = board.ts
        # frames inside the window; frames in `after` chains stay as they are
        self.free_frames = [j for j in frames.meeting(ts, lo, hi)
                            if ts.job_release_us[j] >= lo and ts.job_deadline_us[j] <= hi
                            and ts.job_after[j] < 0 and j not in board.successor]
        self.free_segs = sorted(s for s, r in board.segs.items() if r[3] >= lo and r[4] <= hi)
        self.model = cp_model.CpModel()
        self.lanes = [(b, k) for b in range(len(ts.backends)) for k in range(ts.instances[b])]
        self.intervals = {lane: [] for lane in self.lanes}
        self.start, self.end, self.on, self.runs = {}, {}, {}, {}
        if self.free_frames:
            self._add_frames()
            self._add_requests()
            self._add_lanes()

    def _add_segment(self, seg, earliest, latest_end, present, current) -> None:
        """A segment on one of the lanes that can run it within [earliest, latest_end],
        hinted from its ``current`` row (None: not placed)."""
        m, ts = self.model, self.ts
        choices = {}
        for b, k in self.lanes:
            dur = int(ts.seg_dur_us[seg, b])
            if dur == INELIGIBLE or earliest + dur > latest_end:
                continue
            choices[b, k] = m.new_bool_var(f"on_{seg}_{b}_{k}")
            m.add_hint(choices[b, k], current is not None and current[1:3] == (b, k))
        top = max(earliest, latest_end)
        self.start[seg] = m.new_int_var(earliest, top, f"s_{seg}")
        self.end[seg] = m.new_int_var(earliest, top, f"e_{seg}")
        if current is not None:
            m.add_hint(self.start[seg], current[3])
            m.add_hint(self.end[seg], current[4])
        m.add(sum(choices.values()) == present)
        for (b, k), lit in choices.items():
            dur = int(ts.seg_dur_us[seg, b])
            m.add(self.end[seg] == self.start[seg] + dur).only_enforce_if(lit)
            self.intervals[b, k].append(m.new_optional_fixed_size_interval_var(
                self.start[seg], dur, lit, f"iv_{seg}_{b}_{k}"))
        self.on[seg] = choices

    def _add_frames(self) -> None:
        board, ts = self.board, self.ts
        for job in self.free_frames:
            run = self.runs[job] = self.model.new_bool_var(f"run_{job}")
            self.model.add_hint(run, job in board.frames)
            placed = {r[0]: r for r in board.frames.get(job, [])}
            release, deadline = int(ts.job_release_us[job]), int(ts.job_deadline_us[job])
            segs = list(board.problem.segments(job))
            for seg in segs:
                self._add_segment(seg, release, deadline, run, placed.get(seg))
            _chain_links(self.model, ts, job, segs, self.start, self.end, self.on, run)

    def _add_requests(self) -> None:
        board, ts, problem = self.board, self.ts, self.board.problem
        free = set(self.free_segs)
        for seg in self.free_segs:
            earliest, latest = _seg_limits(board, seg, free)
            # inside the window: outside it, only the rows meeting the window are modelled
            self._add_segment(seg, max(self.lo, earliest), min(self.hi, latest), 1,
                              board.segs[seg])
        for seg in self.free_segs:
            job = int(ts.seg_job[seg])
            segs = problem.segments(job)
            if seg + 1 in free and seg + 1 < segs.stop:
                _chain_links(self.model, ts, job, [seg, seg + 1], self.start, self.end,
                             self.on, None)
            succ = board.successor.get(job)
            if seg == segs.stop - 1 and succ is not None:
                first = problem.segments(succ)[0]
                if first in free:  # `after`: no transfer, as in the models
                    self.model.add(self.start[first] >= self.end[seg])
            _fixed_neighbours(self.model, board, seg, free, self.start, self.end, self.on)

    def _add_lanes(self) -> None:
        """No overlap per lane, with every row that stays as a fixed interval."""
        board, free = self.board, set(self.free_segs)
        free_jobs = set(self.free_frames)
        for b, k in self.lanes:
            starts, ends, owners = board.starts[b][k], board.ends[b][k], board.owners[b][k]
            first = max(0, bisect.bisect_right(starts, self.lo) - 1)
            last = bisect.bisect_left(starts, self.hi)
            fixed = [(starts[i], ends[i]) for i in range(first, last)
                     if ends[i] > self.lo and not _is_free(board, owners[i], free_jobs, free)]
            for n, (s, e) in enumerate(fixed):
                self.intervals[b, k].append(
                    self.model.new_fixed_size_interval_var(s, e - s, f"f{b}{k}{n}"))
            self.model.add_no_overlap(self.intervals[b, k])

    def solve(self, limit_s: float, workers: int, seed: int) -> bool:
        """Maximise the frame weight placed; apply the answer when it places more."""
        from ortools.sat.python import cp_model

        weights = self.board.weights
        self.model.maximize(sum(int(weights[j]) * self.runs[j] for j in self.free_frames))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = limit_s
        if workers == 1:  # stop on deterministic work first (reproducible); wall time: a cap
            solver.parameters.max_deterministic_time = POLISH_DETERMINISTIC_PER_SECOND * limit_s
            solver.parameters.max_time_in_seconds = 2 * limit_s
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = seed
        status = solver.solve(self.model)
        before = sum(int(weights[j]) for j in self.free_frames if j in self.board.frames)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or (
                round(solver.objective_value) <= before):
            return False
        self._apply(solver)
        return True

    def _row(self, solver, seg) -> tuple:
        (b, k), = [lane for lane, lit in self.on[seg].items() if solver.boolean_value(lit)]
        return seg, b, k, solver.value(self.start[seg]), solver.value(self.end[seg])

    def _apply(self, solver) -> None:
        board = self.board
        for job in self.free_frames:
            board.take_frame(job)
        for seg in self.free_segs:
            board.take_seg(seg)
        for seg in self.free_segs:
            board.put_seg(self._row(solver, seg))
        for job in self.free_frames:
            if solver.boolean_value(self.runs[job]):
                board.put_frame(job, [self._row(solver, seg)
                                      for seg in board.problem.segments(job)])
        board.journal.clear()


def _is_free(board, owner, free_frames, free_segs) -> bool:
    if owner < 0:
        return False
    if board.is_frame_seg[owner]:
        return int(board.ts.seg_job[owner]) in free_frames
    return owner in free_segs


def _chain_links(model, ts, job, segs, start, end, on, present) -> None:
    """Consecutive segments of one job: in order, with the transfer between backends
    (``present``: the job's run literal, or None when it always runs)."""
    transfer = ts.transfer_us[ts.job_task[job]]
    for a, c in itertools.pairwise(segs):
        order = model.add(start[c] >= end[a])
        if present is not None:
            order.only_enforce_if(present)
        for (ba, _), la in on[a].items():
            for (bc, _), lc in on[c].items():
                if transfer[ba, bc] > 0:
                    model.add(start[c] >= end[a] + int(transfer[ba, bc])).only_enforce_if(
                        [la, lc])


def _seg_limits(board, seg, free) -> tuple[int, int]:
    """Earliest start and latest end of a free request segment from what stays fixed
    around it: its job's release, the fixed segments before and after it (transfers are
    added per backend in ``_fixed_neighbours``), its token deadlines and the run's end."""
    ts, problem = board.ts, board.problem
    job = int(ts.seg_job[seg])
    segs = problem.segments(job)
    earliest = int(ts.job_release_us[job])
    latest = problem.end_us
    if seg > segs.start and seg - 1 not in free:
        earliest = max(earliest, board.segs[seg - 1][4])
    pred = int(ts.job_after[job])
    if seg == segs.start and pred >= 0 and board.in_problem[pred]:
        last = problem.segments(pred)[-1]
        if last not in free:
            earliest = max(earliest, board.segs[last][4] if last in board.segs
                           else board.frames[pred][-1][4])
    if seg < segs.stop - 1 and seg + 1 not in free:
        latest = min(latest, board.segs[seg + 1][3])
    succ = board.successor.get(job)
    if seg == segs.stop - 1 and succ is not None:
        first = problem.segments(succ)[0]
        if first not in free and first in board.segs:
            latest = min(latest, board.segs[first][3])
    service = problem.token_service(job)
    if service is not None:
        first, last, first_by, last_by = service
        if seg == first and first_by is not None:
            latest = min(latest, first_by)
        if seg == last:
            latest = min(latest, last_by)
    return earliest, latest


def _fixed_neighbours(model, board, seg, free, start, end, on) -> None:
    """Transfers to and from the fixed segments next to a free one, per backend chosen."""
    ts = board.ts
    job = int(ts.seg_job[seg])
    segs = board.problem.segments(job)
    transfer = ts.transfer_us[ts.job_task[job]]
    if seg > segs.start and seg - 1 not in free:
        _, pb, _, _, pe = board.segs[seg - 1]
        for (b, _), lit in on[seg].items():
            if transfer[pb, b] > 0:
                model.add(start[seg] >= pe + int(transfer[pb, b])).only_enforce_if(lit)
    if seg < segs.stop - 1 and seg + 1 not in free:
        _, nb, _, ns, _ = board.segs[seg + 1]
        for (b, _), lit in on[seg].items():
            if transfer[b, nb] > 0:
                model.add(end[seg] + int(transfer[b, nb]) <= ns).only_enforce_if(lit)
