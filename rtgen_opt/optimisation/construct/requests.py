"""Steps 2-3 of the construction: each required request's first-token work placed where
it drops the least frame weight (several whole plans tried), then its decode in idle time."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE
from rtgen_opt.optimisation.construct.board import ConstructionFailed, Board
from rtgen_opt.optimisation.construct.frames import Frames, _schedule_frames


@dataclass
class Unit:
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


def _units(problem: Problem) -> list[Unit]:
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


def _unit(problem: Problem, job: int, required: set) -> Unit:
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
    return Unit(job, segs, seg_job, latest, first_work)


def _ready(board: Board, unit: Unit, i: int) -> tuple[int, int, np.ndarray | None]:
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


def _lanes_for(board: Board, seg: int, ready: int, prev: int, transfer, latest_end: int):
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


def _occupy(board: Board, frames: Frames, rows: list[tuple], how: str) -> int:
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


def _cost(board: Board, frames: Frames, rows: list[tuple]) -> tuple[int, str]:
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
    """Place the unit's segments [lo, hi) one by one with ``choose`` (a predecessor shared
    with a request placed before is already on the board: it runs once)."""
    for i in range(lo, hi):
        if unit.segs[i] in board.segs:
            continue
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


def _plans(board: Board, unit: Unit) -> list[tuple[str, int | None]]:
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


def _place_unit(board: Board, frames: Frames, unit: Unit, lookahead: int) -> str:
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

