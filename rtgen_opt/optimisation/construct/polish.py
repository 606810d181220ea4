"""Step 4 of the construction: short CP-SAT windows around the dropped frames.

In a window, the frames whose window lies inside it and the request segments inside it
are free to move; everything else meeting the window stays, as fixed intervals. A
window's answer is kept only when it places more frame weight. (Measured: no gain on the
60 s instances of ``bench/bench_construct.py``, where the requests do not overlap; a
frame or two where they do.) Every `after` edge of a free request segment is kept: to its
predecessor's last segment and to the first segment of each request waiting for it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from rtgen_opt.model.taskset import INELIGIBLE, TaskSet
from rtgen_opt.optimisation.construct.board import Board, Row
from rtgen_opt.optimisation.construct.frames import Frames

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

POLISH_WINDOW_US = 300_000  # a polish window: this long around a dropped frame
POLISH_MIN_S = 0.3  # per polish window
# deterministic time per second of a window's limit, with one worker. Measured on this
# machine (2 shared cores): a 300 ms window advances 0.003-0.015 units per wall second,
# so this stops first and runs repeat; twice the limit in wall-clock time caps each solve.
POLISH_DETERMINISTIC_PER_SECOND = 0.005

Lanes = dict[tuple[int, int], "cp_model.IntVar"]  # (backend, instance) -> its literal


class PolishResult(NamedTuple):
    windows: int  # solved
    improved: int  # of them, those whose answer was kept


def polish(board: Board, frames: Frames, budget_s: float, workers: int, seed: int,
           say: Callable[[str], None]) -> PolishResult:
    """CP-SAT on windows around the dropped frames; a window's answer replaces the
    board's when it places more frame weight. The windows and their limits are fixed
    before the first solve (reproducible with one worker)."""
    windows = _polish_windows(board, frames)
    count = min(len(windows), int(budget_s / POLISH_MIN_S))
    if count == 0:
        return PolishResult(0, 0)
    each = budget_s / count
    improved, skipped = 0, 0
    fruitless: set[tuple] = set()  # windows (up to a shift of time) that found nothing
    for lo, hi in windows[:count]:
        window = PolishWindow(board, frames, lo, hi)
        if not window.free_frames:
            continue
        shape = window.shape()
        if shape in fruitless:  # periodic load: the same window again, a period later
            skipped += 1
        elif window.solve(each, workers, seed):
            improved += 1
        else:
            fruitless.add(shape)
    say(f"polish: {improved} of {count} windows improved ({skipped} equal up to a shift "
        "to one that found nothing: skipped)")
    return PolishResult(count, improved)


def _polish_windows(board: Board, frames: Frames) -> list[tuple[int, int]]:
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


class PolishWindow:
    """The CP-SAT model of one polish window: the frames whose window lies inside it
    (optional, on any lane) and the request segments inside it (on any lane, between
    their fixed neighbours), around every other row meeting the window, fixed."""

    def __init__(self, board: Board, frames: Frames, lo: int, hi: int):
        self.board, self.lo, self.hi = board, lo, hi
        ts = self.ts = board.ts
        # frames inside the window; frames in `after` chains stay as they are
        self.free_frames = [j for j in frames.meeting(ts, lo, hi)
                            if ts.job_release_us[j] >= lo and ts.job_deadline_us[j] <= hi
                            and ts.job_after[j] < 0 and j not in board.dependents]
        self.lanes = [(b, k) for b in range(len(ts.backends)) for k in range(ts.instances[b])]
        self.free_segs = sorted(self._segs_inside())

    def _segs_inside(self) -> list[int]:
        """The request segments placed inside [lo, hi), found on the lanes (every placed
        row is on one)."""
        found = []
        for b, k in self.lanes:
            for start, end, owner in self.board.lanes[b][k].scan(self.lo):
                if start >= self.hi:
                    break
                if start >= self.lo and end <= self.hi and owner >= 0 \
                        and not self.board.is_frame_seg[owner]:
                    found.append(owner)
        return found

    def _build(self) -> None:
        """The CP-SAT model (built only for a window that is solved)."""
        from ortools.sat.python import cp_model  # deferred: start-up time of the CLI

        self.model = cp_model.CpModel()
        self.intervals: dict[tuple[int, int], list[cp_model.IntervalVar]] = {
            lane: [] for lane in self.lanes}
        self.start: dict[int, cp_model.IntVar] = {}
        self.end: dict[int, cp_model.IntVar] = {}
        self.on: dict[int, Lanes] = {}
        self.runs: dict[int, cp_model.IntVar] = {}
        if self.free_frames:
            self._add_frames()
            self._add_requests()
            self._add_lanes()

    def shape(self) -> tuple:
        """Everything the window's model is built from, relative to its start: equal
        shapes are the same model shifted in time (the same tasks, windows, durations,
        hints, links and fixed intervals)."""
        board, ts, lo = self.board, self.ts, self.lo
        free = set(self.free_segs)
        index = {seg: i for i, seg in enumerate(self.free_segs)}

        def rel(row: Row | None) -> tuple | None:
            return None if row is None else (row.backend, row.instance, row.start - lo,
                                             row.end - lo)

        durations = ts.seg_dur_us
        frames = tuple((int(ts.job_task[j]), int(ts.job_release_us[j]) - lo,
                        int(ts.job_deadline_us[j]) - lo,
                        durations[list(board.problem.segments(j))].tobytes(),
                        tuple(rel(r) for r in board.frames.get(j, ())))
                       for j in self.free_frames)
        segs = []
        for seg in self.free_segs:
            job = int(ts.seg_job[seg])
            run = board.problem.segments(job)
            earliest, latest = _seg_limits(board, seg, free)
            neighbours = tuple(rel(board.segs.get(n)) for n in (seg - 1, seg + 1)
                               if run.start <= n < run.stop and n not in free)
            dependents = tuple(index.get(f, -1) for f in _dependent_firsts(board, job)
                               ) if seg == run.stop - 1 else ()
            segs.append((int(ts.job_task[job]), seg - run.start, durations[seg].tobytes(),
                         max(lo, earliest) - lo, min(self.hi, latest) - lo,
                         rel(board.segs[seg]), neighbours, index.get(seg + 1, -1),
                         dependents))
        fixed = []
        for b, k in self.lanes:
            for start, end, owner in board.lanes[b][k].scan(lo):
                if start >= self.hi:
                    break
                if end > lo and not _is_free(board, owner, set(self.free_frames), free):
                    fixed.append((b, k, start - lo, end - lo))
        return self.hi - lo, frames, tuple(segs), tuple(fixed)

    def _add_segment(self, seg: int, earliest: int, latest_end: int,
                     present: cp_model.IntVar | int, current: Row | None) -> None:
        """A segment on one of the lanes that can run it within [earliest, latest_end],
        hinted from its ``current`` row (None: not placed)."""
        m, ts = self.model, self.ts
        choices: Lanes = {}
        for b, k in self.lanes:
            dur = int(ts.seg_dur_us[seg, b])
            if dur == INELIGIBLE or earliest + dur > latest_end:
                continue
            choices[b, k] = m.new_bool_var(f"on_{seg}_{b}_{k}")
            m.add_hint(choices[b, k], current is not None
                       and (current.backend, current.instance) == (b, k))
        top = max(earliest, latest_end)
        self.start[seg] = m.new_int_var(earliest, top, f"s_{seg}")
        self.end[seg] = m.new_int_var(earliest, top, f"e_{seg}")
        if current is not None:
            m.add_hint(self.start[seg], current.start)
            m.add_hint(self.end[seg], current.end)
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
            placed = {r.seg: r for r in board.frames.get(job, [])}
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
            if seg == segs.stop - 1:  # `after`: no transfer, as in the models
                for first in _dependent_firsts(board, job):
                    if first in free:
                        self.model.add(self.start[first] >= self.end[seg])
            _fixed_neighbours(self.model, board, seg, free, self.start, self.end, self.on)

    def _add_lanes(self) -> None:
        """No overlap per lane, with every row that stays as a fixed interval."""
        board, free = self.board, set(self.free_segs)
        free_jobs = set(self.free_frames)
        for b, k in self.lanes:
            fixed = []
            for s, e, owner in board.lanes[b][k].scan(self.lo):
                if s >= self.hi:
                    break
                if e > self.lo and not _is_free(board, owner, free_jobs, free):
                    fixed.append((s, e))
            for n, (s, e) in enumerate(fixed):
                self.intervals[b, k].append(
                    self.model.new_fixed_size_interval_var(s, e - s, f"f{b}{k}{n}"))
            self.model.add_no_overlap(self.intervals[b, k])

    def solve(self, limit_s: float, workers: int, seed: int) -> bool:
        """Maximise the frame weight placed; apply the answer when it places more."""
        from ortools.sat.python import cp_model  # deferred: start-up time of the CLI

        self._build()
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

    def _row(self, solver: cp_model.CpSolver, seg: int) -> Row:
        (b, k), = [lane for lane, lit in self.on[seg].items() if solver.boolean_value(lit)]
        return Row(seg, b, k, solver.value(self.start[seg]), solver.value(self.end[seg]))

    def _apply(self, solver: cp_model.CpSolver) -> None:
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


def _dependent_firsts(board: Board, job: int) -> list[int]:
    """The first segment of every placed request waiting for ``job``."""
    firsts = (board.problem.segments(d)[0] for d in board.dependents.get(job, ()))
    return [first for first in firsts if first in board.segs]


def _is_free(board: Board, owner: int, free_frames: set[int], free_segs: set[int]) -> bool:
    if owner < 0:
        return False
    if board.is_frame_seg[owner]:
        return int(board.ts.seg_job[owner]) in free_frames
    return owner in free_segs


def _chain_links(model: cp_model.CpModel, ts: TaskSet, job: int, segs: list[int],
                 start: Mapping[int, cp_model.IntVar], end: Mapping[int, cp_model.IntVar],
                 on: Mapping[int, Lanes], present: cp_model.IntVar | None) -> None:
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


def _seg_limits(board: Board, seg: int, free: set[int]) -> tuple[int, int]:
    """Earliest start and latest end of a free request segment from what stays fixed
    around it: its job's release, the fixed segments before and after it in its job
    (transfers are added per backend in ``_fixed_neighbours``), its predecessor's end,
    the start of every request waiting for it, its token deadlines and the run's end."""
    ts, problem = board.ts, board.problem
    job = int(ts.seg_job[seg])
    segs = problem.segments(job)
    earliest = int(ts.job_release_us[job])
    latest = problem.end_us
    if seg > segs.start and seg - 1 not in free:
        earliest = max(earliest, board.segs[seg - 1].end)
    pred = int(ts.job_after[job])
    if seg == segs.start and pred >= 0 and board.in_problem[pred]:
        pred_end = board.end_of(pred)
        if problem.segments(pred)[-1] not in free and pred_end is not None:
            earliest = max(earliest, pred_end)
    if seg < segs.stop - 1 and seg + 1 not in free:
        latest = min(latest, board.segs[seg + 1].start)
    if seg == segs.stop - 1:
        for first in _dependent_firsts(board, job):
            if first not in free:
                latest = min(latest, board.segs[first].start)
    service = problem.token_service(job)
    if service is not None:
        first, last, first_by, last_by = service
        if seg == first and first_by is not None:
            latest = min(latest, first_by)
        if seg == last:
            latest = min(latest, last_by)
    return earliest, latest


def _fixed_neighbours(model: cp_model.CpModel, board: Board, seg: int, free: set[int],
                      start: Mapping[int, cp_model.IntVar], end: Mapping[int, cp_model.IntVar],
                      on: Mapping[int, Lanes]) -> None:
    """Transfers to and from the fixed segments next to a free one, per backend chosen."""
    ts = board.ts
    job = int(ts.seg_job[seg])
    segs = board.problem.segments(job)
    transfer = ts.transfer_us[ts.job_task[job]]
    if seg > segs.start and seg - 1 not in free:
        prev = board.segs[seg - 1]
        for (b, _), lit in on[seg].items():
            if transfer[prev.backend, b] > 0:
                model.add(start[seg] >= prev.end + int(transfer[prev.backend, b])
                          ).only_enforce_if(lit)
    if seg < segs.stop - 1 and seg + 1 not in free:
        after = board.segs[seg + 1]
        for (b, _), lit in on[seg].items():
            if transfer[b, after.backend] > 0:
                model.add(end[seg] + int(transfer[b, after.backend]) <= after.start
                          ).only_enforce_if(lit)
