"""Step 2b of the construction: requests placed in groups, sharing the frames they cost.

One request at a time, each prefill layer displaces the frames it meets. Together they
can do less. On scenario_c at 30 FPS OD (SR on the NPU, 14 of every 16.7 ms; OD on the
GPU, 13.6 of every 33.3 ms, or 7.6 ms on the NPU) a 34 ms NPU layer alone kills two SR
frames and a 103 ms GPU layer two OD frames: 64 frames for two requests one at a time.
With one request's GPU layer every fourth 33 ms block and the other's NPU layer beside
it, the two ODs the GPU layer displaces run on the NPU around the NPU layer, which then
kills three SR frames: three frames a pair of layers where apart they cost four (49 for
the pair). So a *group*: requests ``order[n:n + k]`` (k = 2, or 3 where a pair saved
something; a request may wait for the next ones up to its give-up time), every one held
back until all are ready (time S); then

1. with ``g`` > 0, the *lead* runs its first ``g`` first-token layers back to back on one
   backend from S (the frames they displace repaired);
2. every other request puts its first-token layers on one other backend, from the start
   of the lead's block (S without one), each where it drops the least frame weight —
   scored by the usual repair, over the usual starts and, beside them, the ends of busy
   intervals plus the duration there of a frame that can move to that backend (room for
   a displaced frame right before the layer, as the OD before the NPU layer above);
3. the lead's other first-token layers the same way (any backend, from S), then every
   request's decode (``requests._place_decode``).

A group is placed only when it drops less frame weight than the same requests placed one
at a time (``place_unit`` in arrival order, measured on the board and taken back), and of
the variants tried, the one that saves the most per request (ties: the smaller group,
then the order tried). Tried: the first and the last request as the lead, each backend
for the others, ``g`` = 0 and, per other backend for the lead's block, ``g`` at each of
``LEAD_SHARES`` of its layers. A variant is abandoned once it has lost what would not
beat the best known. The plan chosen for a step is tried first at a step of the same
shape (``_shape``: a period of a periodic load later) and kept there when it loses the
same weight; otherwise every variant is tried again.

Only requests without last-token deadlines are grouped (service-matched problems keep
their one-at-a-time placement), and after ``FRUITLESS_STEPS`` step(s) in a row where no
group saved anything, none is tried (scenario_c at 60 FPS OD: every group loses more than
its requests alone). The driver also places the whole run one at a time where groups
were placed, and keeps that when it drops no more. Deterministic: no time limits, every
choice by weight lost, then order.

Measured (scenario_c, `--set od.fps=30`, lower bound 288): 60 s 384 -> 294 (six pairs of
49 frames), 5.8 s; 600 s 3,840 -> 2,940 (bound 2,880), 30 s.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from typing import NamedTuple

from rtgen_opt.model.taskset import INELIGIBLE
from rtgen_opt.optimisation.construct.board import Board, ConstructionFailed, Row
from rtgen_opt.optimisation.construct.frames import Frames
from rtgen_opt.optimisation.construct.requests import (
    Choice,
    _block,
    _cost,
    _place_decode,
    _ready,
    choose_least_damage,
    occupy,
    place_segments,
    place_unit,
)
from rtgen_opt.optimisation.construct.units import Unit

GROUP_SIZES = (2, 3)  # requests in a group
LEAD_SHARES = (0.5, 1.0)  # of the lead's first-token layers run back to back
FRUITLESS_STEPS = 1  # steps in a row where no group saved anything: then none is tried
GROUP = "group of"  # how the label of a group's plan starts


class GroupPlan(NamedTuple):
    """How a group is placed: its size, which request leads (index in the group), the
    lead's backend, the others' backend and how many of the lead's layers run back to
    back."""

    size: int
    lead: int
    backend: int
    beside: int
    layers: int


class Abandoned(Exception):
    """A variant that has already lost as much as the best known."""


def own_first_token(unit: Unit) -> list[int]:
    """Indices (in the unit) of the request's own first-token segments."""
    return [i for i in range(unit.first_work) if unit.seg_job[i] == unit.job]


class Grouping:
    """Groups tried along the arrival order, step by step (``step``)."""

    def __init__(self, board: Board, frames: Frames):
        self.fruitless = 0
        self.durations = frame_durations(board, frames)
        self.chosen: dict[tuple, tuple[GroupPlan, int]] = {}  # shape -> plan, weight lost

    @property
    def active(self) -> bool:
        return self.fruitless < FRUITLESS_STEPS

    def step(self, board: Board, frames: Frames, order: list[Unit], n: int,
             lookahead: int) -> tuple[int, str] | None:
        """Groups starting at ``order[n]``: when one drops less than its requests one at
        a time, place it and return (requests placed, its label); else None (nothing
        changed)."""
        if not self.active:
            return None
        shape = _shape(board, order, n)
        if shape in self.chosen:  # the same step again (a period later): its plan first
            plan, lost = self.chosen[shape]
            mark = board.mark()
            if _place(board, frames, order[n:n + plan.size], plan, lookahead,
                      self.durations, math.inf) == lost:
                return plan.size, label(board, plan)
            board.rollback(mark)  # it lost something else here: every variant again
        best: tuple[float, int, GroupPlan] | None = None  # (-saved per request, size, plan)
        alone: list[int] = []
        for k in GROUP_SIZES:
            group = order[n:n + k]
            if not _groupable(board, group, k) or (k > GROUP_SIZES[0] and best is None):
                break  # a larger group only where a smaller one saved something
            alone += _one_at_a_time(board, frames, group, lookahead, alone)
            if len(alone) < k:
                break
            for plan in _plans(board, group):
                # to be kept, a variant must save more per request than the best so far
                bound = alone[k - 1] - (0 if best is None else -best[0] * k)
                lost = _try(board, frames, group, plan, lookahead, self.durations, bound)
                if lost is None or lost >= bound:
                    continue
                best = (-(alone[k - 1] - lost) / k, k, plan)
        if best is None:
            self.fruitless += 1
            return None
        self.fruitless = 0
        plan = best[2]
        group = order[n:n + plan.size]
        lost = _place(board, frames, group, plan, lookahead, self.durations, math.inf)
        if lost is None:  # deterministic: as tried
            raise AssertionError("a group that was placed failed on the second run")
        self.chosen[shape] = plan, lost
        return plan.size, label(board, plan)


def _shape(board: Board, order: list[Unit], n: int) -> tuple:
    """What a step at ``order[n]`` sees, relative to that request's release: the phase of
    the frames' hyperperiod there, and of the requests a group may take, their tasks,
    releases, latest first-token ends and segments left to place. A periodic load repeats
    it; a step with the same shape is tried first with the plan chosen before, kept when
    it loses exactly what it lost there."""
    ts = board.ts
    zero = int(ts.job_release_us[order[n].job])
    phase = (None if ts.hyperperiod_s is None
             else Fraction(zero, 1_000_000) % Fraction(ts.hyperperiod_s))
    return (phase,) + tuple(
        (int(ts.job_task[u.job]), int(ts.job_release_us[u.job]) - zero,
         u.latest_end[u.first_work - 1] - zero, len(u.segs) - u.first_unplaced(board))
        for u in order[n:n + max(GROUP_SIZES)])


def label(board: Board, plan: GroupPlan) -> str:
    names = board.ts.backends
    others = f"the other{'s' if plan.size > 2 else ''} on {names[plan.beside]}"
    if plan.layers == 0:
        return f"{GROUP} {plan.size} ({others}, then the lead beside)"
    return (f"{GROUP} {plan.size} ({plan.layers} layers of the lead back to back on "
            f"{names[plan.backend]}, {others}, then the lead's rest)")


def frame_durations(board: Board, frames: Frames) -> dict[int, list[int]]:
    """Per backend, the durations there of the segments of frames that can move: those
    of the periodic tasks whose jobs meet their deadline alone on two backends or more
    (a frame displaced from one may run on another, right before a request's layer)."""
    ts = board.ts
    seen: set[int] = set()
    out: dict[int, set[int]] = {}
    for job in frames.jobs.tolist():
        task = int(ts.job_task[job])
        if task in seen:
            continue
        seen.add(task)
        segs = list(board.problem.segments(job))
        window = int(ts.job_deadline_us[job] - ts.job_release_us[job])
        fit = [b for b in range(len(ts.backends))
               if all(ts.seg_dur_us[s, b] != INELIGIBLE for s in segs)
               and sum(int(ts.seg_dur_us[s, b]) for s in segs) <= window]
        if len(fit) < 2:
            continue
        for b in fit:
            out.setdefault(b, set()).update(int(ts.seg_dur_us[s, b]) for s in segs)
    return {b: sorted(d) for b, d in out.items()}


def _groupable(board: Board, group: list[Unit], k: int) -> bool:
    """k requests, none under a last-token deadline, each with first-token work of its
    own, the last released before the first token of every one is due."""
    if len(group) < k or any(u.job in board.problem.token_deadlines for u in group):
        return False
    if any(not own_first_token(u) for u in group):
        return False
    last = max(int(board.ts.job_release_us[u.job]) for u in group)
    return all(last < u.latest_end[u.first_work - 1] for u in group)


def _one_at_a_time(board: Board, frames: Frames, units: list[Unit], lookahead: int,
                   known: list[int]) -> list[int]:
    """The weight lost by placing ``units`` one at a time, after each (cumulative), for
    those after the ``len(known)`` first (``known``: theirs); as many as could be placed.
    The board is left as it was."""
    mark, before = board.mark(), board.placed_weight
    lost: list[int] = []
    try:
        for n, unit in enumerate(units):
            place_unit(board, frames, unit, lookahead)
            if n >= len(known):
                lost.append(before - board.placed_weight)
    except ConstructionFailed:
        pass
    finally:
        board.rollback(mark)
    return lost


def _plans(board: Board, group: list[Unit]) -> Iterator[GroupPlan]:
    """The variants tried for a group, in order: lead the first request, then the last;
    per pair of backends (the lead's, the others'), each share of the lead's layers."""
    ts = board.ts
    k = len(group)

    def runs_all(unit: Unit, b: int) -> bool:
        return all(ts.seg_dur_us[unit.segs[i], b] != INELIGIBLE for i in own_first_token(unit))

    for lead in dict.fromkeys((0, k - 1)):
        others = [u for i, u in enumerate(group) if i != lead]
        own = len(own_first_token(group[lead]))
        for beside in range(len(ts.backends)):
            if not all(runs_all(u, beside) for u in others):
                continue
            yield GroupPlan(k, lead, beside, beside, 0)  # no block: the backend unused
            for b in range(len(ts.backends)):
                if b == beside or not runs_all(group[lead], b):
                    continue
                for g in dict.fromkeys(max(1, round(share * own)) for share in LEAD_SHARES):
                    yield GroupPlan(k, lead, b, beside, g)


def _try(board: Board, frames: Frames, group: list[Unit], plan: GroupPlan, lookahead: int,
         durations: dict[int, list[int]], bound: float) -> int | None:
    """The weight lost by placing the group with ``plan`` (None: it could not be placed,
    or lost ``bound`` or more on the way). The board is left as it was."""
    mark = board.mark()
    try:
        return _place(board, frames, group, plan, lookahead, durations, bound)
    finally:
        board.rollback(mark)


def _place(board: Board, frames: Frames, group: list[Unit], plan: GroupPlan,
           lookahead: int, durations: dict[int, list[int]], bound: float) -> int | None:
    """Place the group with ``plan``; returns the weight lost, or None when it could not
    be placed or lost ``bound`` or more (the board is then partly changed)."""
    before = board.placed_weight

    def check() -> None:
        if before - board.placed_weight >= bound:
            raise Abandoned

    try:
        for unit in group:  # predecessors not placed yet, as one at a time would
            own = own_first_token(unit)
            lo = unit.first_unplaced(board)
            if not place_segments(board, frames, unit, lo, own[0], choose_least_damage,
                                  lookahead):
                return None
        check()
        lead = group[plan.lead]
        start = _lead_block(board, frames, group, plan)
        if start is None:
            return None
        check()
        shared = _shared_chooser(durations)
        for i, unit in enumerate(group):
            if i == plan.lead:
                continue
            board.only_job, board.only_backend = unit.job, plan.beside
            board.not_before[unit.job] = start
            try:
                if not _place_each(board, frames, unit, own_first_token(unit), shared,
                                   lookahead, check):
                    return None
            finally:
                board.only_job, board.only_backend = -1, None
                del board.not_before[unit.job]
        board.not_before[lead.job] = start
        try:
            if not _place_each(board, frames, lead, own_first_token(lead)[plan.layers:],
                               shared, lookahead, check):
                return None
        finally:
            del board.not_before[lead.job]
        for unit in group:
            if not _place_decode(board, frames, unit, lookahead):
                return None
            check()
    except Abandoned:
        return None
    return before - board.placed_weight


def _lead_block(board: Board, frames: Frames, group: list[Unit],
                plan: GroupPlan) -> int | None:
    """Step 1: the lead's first ``plan.layers`` own first-token layers back to back on
    its backend, from when the whole group is ready; returns the block's start (None:
    it cannot meet the lead's latest ends)."""
    ts = board.ts
    lead = group[plan.lead]
    ready = max(_ready(board, u, own_first_token(u)[0])[0] for u in group)
    own = own_first_token(lead)[:plan.layers]
    if not own:
        return ready
    segs = [lead.segs[i] for i in own]
    b = plan.backend
    durs = [int(ts.seg_dur_us[s, b]) for s in segs]
    gap = int(ts.transfer_us[ts.job_task[lead.job]][b, b])
    total = sum(durs) + gap * (len(segs) - 1)
    latest = lead.latest_end[own[-1]] - total
    best: list[Row] | None = None
    for k in range(ts.instances[b]):
        at = board.earliest_gap(b, k, ready, total, skip_frames=True, limit=latest)
        if at > latest or (best is not None and at >= best[0].start):
            continue
        rows = _block(segs, durs, b, k, at, gap)
        if all(r.end <= lead.latest_end[i] for r, i in zip(rows, own)):
            best = rows
    if best is None:
        return None
    _, repair = _cost(board, frames, best)
    occupy(board, frames, best, repair)
    return best[0].start


def _place_each(board: Board, frames: Frames, unit: Unit, indices, choose, lookahead: int,
                check) -> bool:
    """The unit's segments ``indices`` one by one where ``choose`` puts them (``check``
    after each); False when one has no place."""
    for n in indices:
        choice = choose(board, frames, unit, n, lookahead)
        if choice is None:
            return False
        occupy(board, frames, choice.rows, choice.repair)
        check()
    return True


def _shared_chooser(durations: dict[int, list[int]]):
    """``choose_least_damage`` over more starts: beside its own (the earliest start, the
    ends of busy intervals within the lookahead, the first idle gap), each of them plus
    the duration of a frame segment that can run on the lane's backend."""

    def choose(board: Board, frames: Frames, unit: Unit, i: int,
               lookahead: int) -> Choice | None:
        return choose_least_damage(board, frames, unit, i, lookahead, durations)

    return choose
