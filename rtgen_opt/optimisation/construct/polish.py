"""Step 4 of the construction: short CP-SAT windows around the dropped frames."""

from __future__ import annotations

import bisect
import itertools
import math

from rtgen_opt.model.taskset import INELIGIBLE
from rtgen_opt.optimisation.construct.board import Board
from rtgen_opt.optimisation.construct.frames import Frames
from rtgen_opt.optimisation.construct.report import ConstructionReport

POLISH_WINDOW_US = 300_000  # a polish window: this long around a dropped frame
POLISH_MIN_S = 0.3  # per polish window
# deterministic time per second of a window's limit, with one worker. Measured on this
# machine (2 shared cores): a 300 ms window advances 0.003-0.015 units per wall second,
# so this stops first and runs repeat; twice the limit in wall-clock time caps each solve.
POLISH_DETERMINISTIC_PER_SECOND = 0.005
# ----------------------------------------------------------------------------- polish


def _polish(board: Board, frames: Frames, budget_s: float, workers: int, seed: int,
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


def _polish_window(board, frames, lo, hi, limit_s, workers, seed) -> bool:
    """Re-optimise the window [lo, hi) with CP-SAT; True when the board improved."""
    window = PolishWindow(board, frames, lo, hi)
    return bool(window.free_frames) and window.solve(limit_s, workers, seed)


class PolishWindow:
    """The CP-SAT model of one polish window: the frames whose window lies inside it
    (optional, on any lane) and the request segments inside it (on any lane, between
    their fixed neighbours), around every other row meeting the window, fixed."""

    def __init__(self, board: Board, frames: Frames, lo: int, hi: int):
        from ortools.sat.python import cp_model

        self.board, self.lo, self.hi = board, lo, hi
        ts = self.ts = board.ts
        # frames inside the window; frames in `after` chains stay as they are
        self.free_frames = [j for j in frames.meeting(ts, lo, hi)
                            if ts.job_release_us[j] >= lo and ts.job_deadline_us[j] <= hi
                            and ts.job_after[j] < 0 and j not in board.successors]
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
            for succ in board.successors.get(job, ()) if seg == segs.stop - 1 else ():
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
    for succ in board.successors.get(job, ()) if seg == segs.stop - 1 else ():
        first = problem.segments(succ)[0]  # every job waiting for this one
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
