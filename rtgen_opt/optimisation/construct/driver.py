"""The construction's driver: the four steps in order, the report, and the floors (a
schedule given, the plain greedy schedule) that the answer is never worse than."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import NO_DEADLINE
from rtgen_opt.optimisation.construct.board import Board, ConstructionFailed
from rtgen_opt.optimisation.construct.frames import Frames, map_frames
from rtgen_opt.optimisation.construct.grouped import GROUP, Grouping
from rtgen_opt.optimisation.construct.polish import polish
from rtgen_opt.optimisation.construct.requests import place_unit
from rtgen_opt.optimisation.construct.units import Unit, required_jobs, units
from rtgen_opt.optimisation.greedy import greedy_schedule

# Candidate starts of a first-token segment reach this many frame windows (the longest
# relative deadline) past its ready time: waiting longer only repeats the frame pattern.
LOOKAHEAD_WINDOWS = 3
POLISH_SHARE = 0.8  # of the time limit, for the CP-SAT polish windows
# below this many segments, the plain greedy schedule is computed as a floor (its gap
# searches are unbounded: quadratic on long horizons)
GREEDY_FLOOR_SEGMENTS = 4000

Say = Callable[[str], None]


@dataclass
class ConstructionReport:
    """What the construction did, for progress lines and the solve output."""

    mapping: str = ""
    after_frames: float = 0.0  # weighted violations after step 1
    after_requests: float = 0.0  # after steps 2-3
    after_polish: float = 0.0
    plans: dict[str, int] = field(default_factory=dict)  # plan -> requests placed that way
    construct_s: float = 0.0
    polish_windows: int = 0
    polish_improved: int = 0
    source: str = "construction"  # or "greedy", "floor": which schedule was returned
    constructed: Schedule | None = None  # the construction's own schedule (None: failed)


def construct_schedule(problem: Problem, time_limit_s: float, workers: int = 1,
                       seed: int = 0, progress: Say | None = None,
                       floor: Schedule | None = None) -> Schedule:
    """A schedule feasible for ``problem`` with few weighted frame violations (see the
    package docstring); never worse than ``floor``, a schedule known to be feasible for
    the problem (a policy's firm schedule, say). Raises ``ConstructionFailed`` when no
    schedule is found that serves every required request by its deadlines."""
    return construct(problem, time_limit_s, workers, seed, progress, floor)[0]


def construct(problem: Problem, time_limit_s: float, workers: int = 1, seed: int = 0,
              progress: Say | None = None, floor: Schedule | None = None,
              groups: bool = True) -> tuple[Schedule, ConstructionReport]:
    """``construct_schedule`` with its report; ``groups=False``: the requests one at a
    time only (no step 2b)."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    report = ConstructionReport()
    scale = problem.weight_scale
    weights = int_weights(problem, scale)
    total = int(weights.sum())
    frames = Frames.of(problem)
    board, report.mapping = map_frames(problem, weights, frames)
    report.after_frames = (total - board.placed_weight) / scale
    say(f"frames: {report.mapping}: {report.after_frames:g} weighted violations")
    placed = _place_requests(board, frames, units(problem), report, say, groups)
    report.after_requests = (total - board.placed_weight) / scale
    report.construct_s = time.perf_counter() - started
    if placed:
        board.journal.clear()
        report.polish_windows, report.polish_improved = polish(
            board, frames, POLISH_SHARE * time_limit_s, workers, seed, say)
    schedule = report.constructed = board.schedule() if placed else None
    report.after_polish = (total - board.placed_weight) / scale if placed else math.inf
    if floor is not None and (schedule is None or weight_dropped(problem, floor, weights) / scale
                              < report.after_polish):
        say("the schedule given as a floor drops less: kept instead")
        report.source = "floor"
        schedule, report.after_polish = floor, weight_dropped(problem, floor, weights) / scale
    if sum(len(problem.segments(j)) for j in problem.job_ids.tolist()) <= GREEDY_FLOOR_SEGMENTS:
        schedule = _never_worse_than_greedy(problem, schedule, report, weights, say)
    if schedule is None:
        raise ConstructionFailed("no schedule serves every required request by its "
                                 "deadlines (the construction, greedy and any floor failed)")
    return schedule, report


def _place_requests(board: Board, frames: Frames, todo: list[Unit],
                    report: ConstructionReport, say: Say, groups: bool = True) -> bool:
    """Steps 2-3 for every request in arrival order, in groups where a group drops less
    than its requests one at a time (step 2b, ``grouped``). Where groups were placed, the
    whole run one request at a time is placed too, and kept when it drops no more (a
    group placed early changes what the later requests cost)."""
    base = board.mark()
    plans = _in_order(board, frames, todo, say, groups)
    if plans is not None and not any(plan.startswith(GROUP) for plan in plans):
        report.plans = plans
        return True
    grouped = None if plans is None else (dict(board.frames), dict(board.segs),
                                          board.placed_weight)
    board.rollback(base)
    alone = _in_order(board, frames, todo, lambda message: None, groups=False)
    scale = board.problem.weight_scale
    if grouped is None or (alone is not None and board.placed_weight >= grouped[2]):
        if grouped is not None:
            say(f"one request at a time drops no more "
                f"({(grouped[2] - board.placed_weight) / scale:+g} frames' weight): kept")
        report.plans = alone or {}
        return alone is not None
    say(f"one request at a time drops {(grouped[2] - board.placed_weight) / scale:g} "
        "more frames' weight: the groups kept")
    board.rollback(base)
    _restore(board, grouped[0], grouped[1])
    report.plans = plans or {}
    return True


def _restore(board: Board, frames: dict, segs: dict) -> None:
    """Put the board's frames and request segments back to ``frames`` and ``segs`` (a
    state it had, taken as copies)."""
    for job in [j for j, rows in board.frames.items() if frames.get(j) != rows]:
        board.take_frame(job)
    for seg in [s for s, row in board.segs.items() if segs.get(s) != row]:
        board.take_seg(seg)
    for job, rows in frames.items():
        if job not in board.frames:
            board.put_frame(job, rows)
    for seg, row in segs.items():
        if seg not in board.segs:
            board.put_seg(row)


def _in_order(board: Board, frames: Frames, todo: list[Unit], say: Say,
              groups: bool) -> dict[str, int] | None:
    """Steps 2-3 (and 2b with ``groups``) in arrival order; returns the plans used (plan
    -> requests), or None with the board as it was when no order served every request.
    When one cannot be served in time, start again with it first (each request moved to
    the front at most once)."""
    lookahead = LOOKAHEAD_WINDOWS * frames.max_window
    base, scale = board.mark(), board.problem.weight_scale
    order, moved = list(todo), set()
    while True:
        plans: dict[str, int] = {}
        grouping = Grouping(board, frames) if groups else None
        n = 0
        try:
            while n < len(order):
                unit, before = order[n], board.placed_weight
                grouped = None if grouping is None else grouping.step(board, frames, order,
                                                                      n, lookahead)
                if grouped is not None:
                    count, plan = grouped
                    jobs = ", ".join(str(u.job) for u in order[n:n + count])
                    say(f"requests {n + 1}-{n + count}/{len(order)} (jobs {jobs}): {plan}, "
                        f"{(before - board.placed_weight) / scale:g} frames' weight lost")
                    plans[plan] = plans.get(plan, 0) + count
                    n += count
                    continue
                plan = place_unit(board, frames, unit, lookahead)
                plans[plan] = plans.get(plan, 0) + 1
                say(f"request {n + 1}/{len(order)} (job {unit.job}): {plan}, "
                    f"{(before - board.placed_weight) / scale:g} frames' weight lost")
                n += 1
            return plans
        except ConstructionFailed as failure:
            board.rollback(base)
            unit = order[n]
            if unit.job in moved:
                say(f"construction failed: {failure}")
                return None
            say(f"{failure}: again with it first")
            moved.add(unit.job)
            order = [unit] + [u for u in order if u is not unit]


def _never_worse_than_greedy(problem: Problem, schedule: Schedule | None,
                             report: ConstructionReport, weights: np.ndarray,
                             say: Say) -> Schedule | None:
    """The plain greedy schedule (requests first, then frames), when it serves every
    required request in time and drops less: a floor under the construction."""
    greedy = greedy_schedule(problem)
    lost = weight_dropped(problem, greedy, weights) / problem.weight_scale
    if (schedule is None or lost < report.after_polish) and not unserved(problem, greedy):
        say(f"the plain greedy schedule drops less ({lost:g}): kept instead")
        report.after_polish, report.source = lost, "greedy"
        return greedy
    return schedule


def weight_dropped(problem: Problem, schedule: Schedule, weights: np.ndarray) -> int:
    """The integer frame weight that ``schedule`` does not complete."""
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
    for j in sorted(required_jobs(problem)):
        service = problem.token_service(j)
        segs = problem.segments(j)
        ok = all(s in end for s in segs) and end[segs[-1]] <= problem.end_us
        if ok and service is not None:
            first, last, first_by, last_by = service
            ok = (first_by is None or end[first] <= first_by) and end[last] <= last_by
        if not ok:
            missing.append(j)
    return missing


def int_weights(problem: Problem, scale: int) -> np.ndarray:
    """Per job: its task's weight in integer units for a firm job of the problem, else 0."""
    ts = problem.ts
    task_weight = np.array([round(t.weight * scale) for t in ts.tasks], dtype=np.int64)
    weights = np.where(ts.job_deadline_us != NO_DEADLINE, task_weight[ts.job_task], 0)
    mask = np.zeros(ts.num_jobs, dtype=bool)
    mask[problem.job_ids] = True
    return np.where(mask, weights, 0)
