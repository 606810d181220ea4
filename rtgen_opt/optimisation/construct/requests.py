"""Steps 2 and 3 of the construction: a request's first-token work where it drops the
least frame weight (scored by repair), then its decode into idle time.

Per required request in arrival order (its `after` predecessors first, unless an earlier
request placed them already), each segment up to the first token is tried at its
earliest start free of other requests and blocked time, at the ends of busy intervals
shortly after, and in the first idle gap; a candidate is scored by taking out the frames
it displaces and list-scheduling them again around it (they may change backend): the
least damage wins, then the earliest end (TTFT). Beside this per-segment plan, whole
plans are tried — the same with the request's own segments kept on one backend (two
overlapping requests then share the platform, one on the GPU while the other uses the
NPU), its first-token segments back to back on one lane, and every segment in idle time
(which finds "after the last frame" when the give-up time allows) — and the cheapest
plan is kept, then the earliest first token. Decode then goes into idle time, never
displacing a frame; where that would miss the last token's deadline (service-matched
problems) it is placed like the first-token work, and as a last resort as early as
possible. Under a last-token deadline the decode's cost depends on when the first token
comes, so there each plan — and "asap", the earliest first token — is scored with its
decode placed, and the cheapest whole request wins; the decode is placed there both into
idle time and with frames moved within their windows, the cheaper kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Literal, NamedTuple

import numpy as np

from rtgen_opt.model.taskset import INELIGIBLE
from rtgen_opt.optimisation.construct.board import Board, ConstructionFailed, Row
from rtgen_opt.optimisation.construct.frames import Frames, schedule_frames, take_frames
from rtgen_opt.optimisation.construct.units import Unit

# How the frames a placement displaces are repaired: not at all (it displaces none), the
# frames it collides with, or every frame whose window meets its span; those taken out
# are list-scheduled again around it.
Repair = Literal["none", "colliding", "in-window"]
# How a request's first-token work is placed (a plan), see the module docstring; "asap"
# (as soon as possible, frames repaired) is the fallback when no plan serves the request,
# and a plan of its own under a last-token deadline.
PlanKind = Literal["least-damage", "back-to-back", "idle", "asap"]


class Choice(NamedTuple):
    """Rows to put on the board and how to repair the frames they displace."""

    rows: list[Row]
    repair: Repair


class Plan(NamedTuple):
    kind: PlanKind
    backend: int | None = None  # keep the request's own segments on this backend


class Tried(NamedTuple):
    """A plan that served the request, ordered by what it cost: weight lost, then the end
    of the first token, then the plan's rank."""

    lost: int
    first_token_end: int
    rank: int
    plan: Plan


class Lane(NamedTuple):
    """A lane that can run a segment in time: earliest start there, duration, and the
    latest start that meets the segment's latest end."""

    backend: int
    instance: int
    at: int
    dur: int
    latest: int


# A choice of where one segment of a unit goes: (board, frames, unit, index, lookahead).
Chooser = Callable[[Board, Frames, Unit, int, int], "Choice | None"]


def _ready(board: Board, unit: Unit, i: int) -> tuple[int, int, np.ndarray | None]:
    """Ready time of the unit's segment i, the backend of the segment before it in the
    same job (-1: none, no transfer) and that job's transfer matrix."""
    ts, job = board.ts, unit.seg_job[i]
    ready = max(int(ts.job_release_us[job]), board.not_before.get(job, 0))
    if i > 0 and unit.seg_job[i - 1] == job:
        prev = board.segs[unit.segs[i - 1]]
        return max(ready, prev.end), prev.backend, ts.transfer_us[ts.job_task[job]]
    pred = int(ts.job_after[job])
    if i > 0:  # the predecessor's last segment, in this unit (`after`: no transfer)
        ready = max(ready, board.segs[unit.segs[i - 1]].end)
    elif pred >= 0 and board.in_problem[pred]:
        pred_end = board.end_of(pred)
        if pred_end is None:
            raise ConstructionFailed(f"job {job} waits for job {pred}, which did not run")
        ready = max(ready, pred_end)
    return ready, -1, None


def _lanes_for(board: Board, seg: int, ready: int, prev: int, transfer: np.ndarray | None,
               latest_end: int) -> Iterator[Lane]:
    """Each lane that can still run ``seg`` by ``latest_end``, fastest backend first (so
    that searches bounded by the best end so far stop early)."""
    ts = board.ts
    only = board.only_backend if board.only_job == ts.seg_job[seg] else None
    for b in board.fastest_first[seg]:
        if only is not None and b != only:
            continue
        dur = int(ts.seg_dur_us[seg, b])
        if dur == INELIGIBLE:
            continue
        at = ready + (int(transfer[prev, b]) if transfer is not None and prev >= 0 else 0)
        if at + dur > latest_end:
            continue
        for k in range(ts.instances[b]):
            yield Lane(b, k, at, dur, latest_end - dur)


def occupy(board: Board, frames: Frames, rows: list[Row], repair: Repair) -> int:
    """Put request segments ``rows`` (consecutive) on the board, repairing the frames
    they displace (see ``Repair``). Returns the frame weight lost."""
    before = board.placed_weight
    if repair == "colliding":
        hit = {j for _, b, k, s, e in rows for j in board.frames_on(b, k, s, e)}
        taken = take_frames(board, frames, sorted(hit, key=frames.rank.__getitem__))
    elif repair == "in-window":
        taken = take_frames(board, frames, frames.meeting(board.ts, rows[0].start,
                                                          rows[-1].end))
    else:
        taken = []
    for row in rows:
        board.put_seg(row)
    schedule_frames(board, frames, taken)
    return before - board.placed_weight


def _cost(board: Board, frames: Frames, rows: list[Row]) -> tuple[int, Repair]:
    """The cheaper repair of putting ``rows``, tried and taken back: (weight lost, how)."""
    if not any(board.frames_on(b, k, s, e) for _, b, k, s, e in rows):
        return 0, "none"
    best_lost: float = math.inf
    best_repair: Repair = "none"
    repair: Repair
    for repair in ("colliding", "in-window"):
        mark = board.mark()
        lost = occupy(board, frames, rows, repair)
        board.rollback(mark)
        if lost < best_lost:
            best_lost, best_repair = lost, repair
        if lost <= 0:
            break
    return int(best_lost), best_repair


def choose_idle(board: Board, frames: Frames, unit: Unit, i: int,
                lookahead: int) -> Choice | None:
    """The segment where it finishes first in idle time (displacing nothing)."""
    return _earliest_end(board, unit, i, skip_frames=False, repair="none")


def choose_asap(board: Board, frames: Frames, unit: Unit, i: int,
                lookahead: int) -> Choice | None:
    """The segment where it finishes first if frames did not count (they are repaired)."""
    return _earliest_end(board, unit, i, skip_frames=True, repair="in-window")


def _earliest_end(board: Board, unit: Unit, i: int, skip_frames: bool,
                  repair: Repair) -> Choice | None:
    """Segment i of the unit on the lane where it ends first (each search bounded by the
    best end so far); ``skip_frames``: frames' time counts as free."""
    seg = unit.segs[i]
    ready, prev, transfer = _ready(board, unit, i)
    best: Row | None = None
    for lane in _lanes_for(board, seg, ready, prev, transfer, unit.latest_end[i]):
        limit = lane.latest if best is None else min(lane.latest, best.end - lane.dur)
        start = board.earliest_gap(lane.backend, lane.instance, lane.at, lane.dur,
                                   skip_frames=skip_frames, limit=limit)
        if start <= limit and (best is None or start + lane.dur < best.end):
            best = Row(seg, lane.backend, lane.instance, start, start + lane.dur)
    return None if best is None else Choice([best], repair)


def choose_least_damage(board: Board, frames: Frames, unit: Unit, i: int,
                        lookahead: int, shifts: dict[int, list[int]] | None = None
                        ) -> Choice | None:
    """The segment at its earliest start free of other requests and blocked time, at the
    ends of busy intervals up to ``lookahead`` later, or in the first idle gap — the start
    that loses the least frame weight after repair, then the earliest end. ``shifts``
    (backend -> durations): each of those starts plus each duration is tried too."""
    seg = unit.segs[i]
    ready, prev, transfer = _ready(board, unit, i)
    candidates: list[tuple[int, int, int, int]] = []  # (end, backend, instance, start)
    idle_end = math.inf
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
        ends = [at] + board.busy_ends(b, k, at, min(at + lookahead, latest, gap))
        for start in ends + [e + d for e in ends for d in (shifts or {}).get(b, ())]:
            if start < gap and start <= latest and board.fixed_free(b, k, start, start + dur):
                candidates.append((start + dur, b, k, start))
    best, best_lost = None, math.inf
    for end, b, k, start in sorted(set(candidates)):
        if end > idle_end or best_lost == 0:
            break
        rows = [Row(seg, b, k, start, end)]
        lost, repair = _cost(board, frames, rows)
        if lost < best_lost:
            best, best_lost = Choice(rows, repair), lost
    return best


def choose_idle_or_least_damage(board: Board, frames: Frames, unit: Unit, i: int,
                                lookahead: int) -> Choice | None:
    """Step 3: decode into idle time; only where that misses the deadline, least damage."""
    return (choose_idle(board, frames, unit, i, lookahead)
            or choose_least_damage(board, frames, unit, i, lookahead))


def place_segments(board: Board, frames: Frames, unit: Unit, lo: int, hi: int,
                   choose: Chooser, lookahead: int) -> bool:
    """Place the unit's segments [lo, hi) one by one with ``choose``."""
    for i in range(lo, hi):
        choice = choose(board, frames, unit, i, lookahead)
        if choice is None:
            return False
        occupy(board, frames, choice.rows, choice.repair)
    return True


def _place_back_to_back(board: Board, frames: Frames, unit: Unit, lo: int,
                        lookahead: int) -> bool:
    """The first-token segments of the request itself back to back on one lane (its
    unplaced predecessors first, segment by segment), at the start that loses least."""
    own = [i for i in range(unit.first_work) if unit.seg_job[i] == unit.job]
    if not own or not place_segments(board, frames, unit, lo, own[0], choose_least_damage,
                                     lookahead):
        return False
    ts = board.ts
    segs = [unit.segs[i] for i in own]
    ready, _, _ = _ready(board, unit, own[0])
    transfer = ts.transfer_us[ts.job_task[unit.job]]
    best: Choice | None = None
    best_key = (math.inf,)  # (weight lost, end, backend, instance): the least wins
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
                if not all(r.end <= unit.latest_end[i] for r, i in zip(rows, own)):
                    continue
                if not board.fixed_free(b, k, rows[0].start, rows[-1].end):
                    continue
                lost, repair = _cost(board, frames, rows)
                key = (lost, rows[-1].end, b, k)
                if key < best_key:
                    best, best_key = Choice(rows, repair), key
    if best is None:
        return False
    occupy(board, frames, best.rows, best.repair)
    return True


def _block(segs: list[int], durs: list[int], b: int, k: int, start: int,
           transfer: int) -> list[Row]:
    rows, at = [], start
    for seg, dur in zip(segs, durs):
        rows.append(Row(seg, b, k, at, at + dur))
        at += dur + transfer
    return rows


def _plans(board: Board, unit: Unit) -> list[Plan]:
    """Plans for a request's first-token work: least damage per segment (anywhere, or its
    own segments kept on one backend), back to back on one lane, all in idle time."""
    ts = board.ts
    own = [s for s, j in zip(unit.segs[:unit.first_work], unit.seg_job) if j == unit.job]
    single = [b for b in range(len(ts.backends))
              if own and all(ts.seg_dur_us[s, b] != INELIGIBLE for s in own)]
    plans = [Plan("least-damage")]
    if len(single) > 1:
        plans += [Plan("least-damage", b) for b in single]
    if unit.first_work < len(unit.segs):  # a token service: the request's own part
        plans.append(Plan("back-to-back"))
    return plans + [Plan("idle")]


def _label(board: Board, plan: Plan) -> str:
    if plan.backend is None:
        return plan.kind
    return f"{plan.kind} on {board.ts.backends[plan.backend]}"


def _run_plan(board: Board, frames: Frames, unit: Unit, lo: int, plan: Plan,
              lookahead: int) -> bool:
    """Place the unit's first-token work from segment ``lo`` (the first unplaced) on."""
    if plan.kind == "back-to-back":
        return _place_back_to_back(board, frames, unit, lo, lookahead)
    choose = choose_idle if plan.kind == "idle" else choose_least_damage
    if plan.backend is not None:
        board.only_job, board.only_backend = unit.job, plan.backend
    try:
        return place_segments(board, frames, unit, lo, unit.first_work, choose, lookahead)
    finally:
        board.only_job, board.only_backend = -1, None


def place_unit(board: Board, frames: Frames, unit: Unit, lookahead: int) -> str:
    """Steps 2 and 3 for one request (and its predecessors not placed yet); returns the
    name of the plan used for its first-token work ("asap" when none served it)."""
    if unit.job in board.problem.token_deadlines:
        return _place_under_deadline(board, frames, unit, lookahead)
    start = board.mark()
    lo = unit.first_unplaced(board)
    tried: list[Tried] = []
    used = None  # the backends of the request's own segments under the plain plan
    for n, plan in enumerate(_plans(board, unit)):
        if plan.backend is not None and used == {plan.backend}:
            continue  # kept on that backend anyway
        mark = board.mark()
        before = board.placed_weight
        if _run_plan(board, frames, unit, lo, plan, lookahead):
            tried.append(Tried(before - board.placed_weight,
                               board.segs[unit.first_token].end, n, plan))
            if n == 0:
                used = {board.segs[s].backend for s, j in zip(unit.segs[:unit.first_work],
                                                              unit.seg_job) if j == unit.job}
        board.rollback(mark)
    best = min(tried).plan if tried else None
    if best is None or not _run_plan(board, frames, unit, lo, best, lookahead):
        board.rollback(start)
        _place_asap(board, frames, unit, lo)
        return "asap"
    if _place_decode(board, frames, unit, lookahead):
        return _label(board, best)
    board.rollback(start)
    _place_asap(board, frames, unit, lo)
    return "asap"


def _place_asap(board: Board, frames: Frames, unit: Unit, lo: int) -> None:
    """The last resort: every unplaced segment as early as possible, frames repaired."""
    if not place_segments(board, frames, unit, lo, len(unit.segs), choose_asap, 0):
        raise ConstructionFailed(f"request job {unit.job} cannot be served by its deadlines")


# ------------------------------------------------------------- under a last-token deadline


def _place_under_deadline(board: Board, frames: Frames, unit: Unit, lookahead: int) -> str:
    """Steps 2 and 3 for a request whose last token has a deadline (a service-matched
    problem): there the decode may have to displace frames, and what it costs depends on
    when the first token comes. So each plan for the first-token work — and "asap", the
    earliest first token — is scored with its decode placed too; the cheapest whole
    request wins (then the plan's rank)."""
    lo = unit.first_unplaced(board)
    plans = [*_plans(board, unit), Plan("asap")]
    best: tuple[int, int] | None = None  # (weight lost, plan's rank)
    for n, plan in enumerate(plans):
        mark = board.mark()
        before = board.placed_weight
        placed = (_run_first_token(board, frames, unit, lo, plan, lookahead)
                  and _place_decode_under_deadline(board, frames, unit, lookahead))
        if placed and (best is None or before - board.placed_weight < best[0]):
            best = (before - board.placed_weight, n)
        board.rollback(mark)
    if best is None:
        _place_asap(board, frames, unit, lo)
        return "asap"
    plan = plans[best[1]]
    if not (_run_first_token(board, frames, unit, lo, plan, lookahead)
            and _place_decode_under_deadline(board, frames, unit, lookahead)):  # as tried
        raise AssertionError("a plan that placed the request failed on the second run")
    return _label(board, plan)


def _run_first_token(board: Board, frames: Frames, unit: Unit, lo: int, plan: Plan,
                     lookahead: int) -> bool:
    if plan.kind == "asap":
        return place_segments(board, frames, unit, lo, unit.first_work, choose_asap, 0)
    return _run_plan(board, frames, unit, lo, plan, lookahead)


def _place_decode(board: Board, frames: Frames, unit: Unit, lookahead: int) -> bool:
    """Step 3: the segments after the first token into idle time, displacing frames only
    where a deadline needs it; failing that, as soon as possible."""
    mark = board.mark()
    n = len(unit.segs)
    if place_segments(board, frames, unit, unit.first_work, n, choose_idle_or_least_damage,
                      lookahead):
        return True
    board.rollback(mark)
    return place_segments(board, frames, unit, unit.first_work, n, choose_asap, 0)


def _place_decode_under_deadline(board: Board, frames: Frames, unit: Unit,
                                 lookahead: int) -> bool:
    """The decode placed as ``_place_decode`` does, and again with every segment at its
    earliest end that loses least, frames moved within their windows: the way that
    loses less is kept (ties: the first). Moving frames opens time idle time lacks — two
    SR frames pushed apart leave the NPU 5.3 ms, room for a 4.1 ms decode layer that
    the 2.7 ms idle gaps never hold: at 2,048-token prompts kill-aware-fast's matched
    optimum drops 70 frames a request instead of 72."""
    mark = board.mark()
    before = board.placed_weight
    if not _place_decode(board, frames, unit, lookahead):
        board.rollback(mark)
        return place_segments(board, frames, unit, unit.first_work, len(unit.segs),
                              choose_least_damage, lookahead)
    idle_lost = before - board.placed_weight
    if idle_lost <= 0:
        return True
    board.rollback(mark)
    if place_segments(board, frames, unit, unit.first_work, len(unit.segs),
                      choose_least_damage, lookahead) \
            and before - board.placed_weight < idle_lost:
        return True
    board.rollback(mark)
    return _place_decode(board, frames, unit, lookahead)
