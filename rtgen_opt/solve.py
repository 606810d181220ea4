"""Orchestration of `solve`: warm starts, the long-horizon decomposition, bounds, the gap.

**Small instances** (at most ``DIRECT_SEGMENTS`` segments) are one model, warm-started from
the best policy that serves every request; its status and bound are the solver's.

**Long horizons** are split into blocks of consecutive releases (the request period when
requests arrive ``every`` P and P is a multiple of the frame hyperperiod, so that blocks
repeat; otherwise ``WINDOW_S``):

* *Upper bound* — rolling windows: the jobs released in each block are solved with the
  backend time committed by earlier blocks blocked, and committed in turn. The result is a
  feasible schedule of the whole horizon. Each window is warm-started from a greedy
  schedule built around the committed time (feasible by construction).
* *Lower bound* — independent groups (``reference/solver-notes.md`` §2.1 (1)): any
  schedule of all jobs, restricted to the jobs of one block, is feasible for that block
  alone on the whole platform; so Σ over blocks of a proven lower bound of each block
  alone is a lower bound of the whole. Each group is relaxed further before it is solved —
  shifted to start at 0 and without the end-of-run limit on its requests (a relaxation
  only lowers its optimum) — so that identical blocks of a periodic scenario are solved
  once. The bound of a group is the CP-SAT bound of its relaxed model (its optimum when
  proven).

The reported status is OPTIMAL only when the upper bound equals the lower bound.
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from .executor import simulate
from .firm import firm_schedule, serves_every_request
from .formulations.cpsat import CpSatModel
from .formulations.problem import Problem
from .formulations.result import SolveResult, SolveStatus
from .metrics import evaluate
from .policies import POLICIES
from .replay import replay
from .schedule import Schedule
from .taskset import INELIGIBLE, NO_DEADLINE, TaskSet

DIRECT_SEGMENTS = 4000  # above this, decompose
WINDOW_S = Fraction(1)
# Shares of the time limit, fixed a priori (not from elapsed time) so that a run with one
# worker is reproducible: the rest covers simulating the policies, greedy and replay.
SOLVE_SHARE = 0.85
LB_SHARE = 0.3  # of SOLVE_SHARE, for the lower-bound groups (windows)
REPAIR_SHARE = 0.01  # of SOLVE_SHARE, for a frame-only window the greedy could not serve


@dataclass
class SolveOutcome:
    """Everything `rtgen-opt solve` reports."""

    status: SolveStatus
    schedule: Schedule | None
    violations: float | None  # weighted violations of the schedule
    violations_lower_bound: float
    metrics: dict | None
    replay_ok: bool
    replay_violations: list[str]
    warm_start: str | None  # the policy whose firm schedule seeded the search
    method: str  # "direct" or "windows"
    wall_s: float
    windows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def gap(self) -> float | None:
        """(UB - LB) / max(1, UB) on the weighted violations."""
        if self.violations is None:
            return None
        return (self.violations - self.violations_lower_bound) / max(1.0, self.violations)


def best_policy_schedule(ts: TaskSet) -> tuple[str | None, Schedule | None, float]:
    """The firm schedule of the best policy that serves every request (fewest weighted
    violations, then task order of the registry)."""
    best = (None, None, math.inf)
    for name in POLICIES:
        result = simulate(ts, name)
        metrics = evaluate(ts, result.schedule)
        if serves_every_request(ts, metrics) and metrics["weighted_violations"] < best[2]:
            best = (name, firm_schedule(ts, result.schedule), metrics["weighted_violations"])
    return best


def service_matched_problem(ts: TaskSet, trace: Schedule, ttft: str = "sum") -> Problem:
    """OPT(P) of DESIGN.md §2: every request P completed gets its first and last token no
    later than under P; requests P did not complete (starved, or cut by the end of the run)
    are left free (optional). P's own firm schedule is feasible for it, so the gap
    violations(P) - OPT(P) is never negative."""
    done = trace.done
    seg, end = trace.seg[done], trace.end_us[done]
    token = ts.seg_token[seg]
    job = ts.seg_job[seg]
    deadlines, optional = {}, set()
    for task in ts.tasks:
        if not task.is_llm:
            continue
        for j in task.job_range:
            first = end[(job == j) & (token == 1)]
            last = end[(job == j) & (token == task.output_tokens)]
            if len(last):
                deadlines[j] = (int(first[0]), int(last[0]))
            else:
                optional.update(_chain(ts, j).tolist())
    return Problem(ts, optional=frozenset(optional), token_deadlines=deadlines, ttft=ttft)


def solve(ts: TaskSet, time_limit_s: float = 60.0, workers: int = 0, seed: int = 0,
          ttft: str = "sum", progress=None, export_model: str | None = None) -> SolveOutcome:
    """Solve the task set with CP-SAT within ``time_limit_s`` seconds overall."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    warm_name, warm, _ = best_policy_schedule(ts)
    say(f"warm start: {warm_name or 'none (no policy serves every request)'}")
    budget = SOLVE_SHARE * time_limit_s
    if ts.num_segments <= DIRECT_SEGMENTS:
        model = CpSatModel(Problem(ts, ttft=ttft))
        if export_model:
            model.export(export_model)
        result = model.solve(budget, workers, seed, hint=warm)
        status, schedule, value = result.status, result.schedule, result.violations
        notes = list(result.notes)
        if warm is not None and status != SolveStatus.INFEASIBLE:
            policy = evaluate(ts, warm)["weighted_violations"]
            if value is None or policy < value:  # the incumbent is never worse than it
                status, schedule, value = SolveStatus.FEASIBLE, warm, policy
                notes.append(f"CP-SAT found nothing better than {warm_name}'s schedule")
            if value <= result.violations_lower_bound:
                status = SolveStatus.OPTIMAL
        return _finish(ts, status, schedule, value, result.violations_lower_bound, warm_name,
                       "direct", started, [], notes)
    return _solve_windows(ts, budget, workers, seed, ttft, warm_name, warm, say, started,
                          export_model)


# ----------------------------------------------------------------------------- windows


def _solve_windows(ts, budget, workers, seed, ttft, warm_name, warm, say, started,
                   export_model) -> SolveOutcome:
    spans = request_spans(ts, warm)
    notes = [f"{len(spans)} windows ({sum(1 for s in spans if s[2])} around requests)"]
    lower, how = lower_bound(ts, LB_SHARE * budget, workers, seed, ttft)
    notes.append(how)
    say(f"lower bound {lower:g} ({how})")

    committed = ([], [], [], [], [], [])
    windows = []
    work = [len(_span_jobs(ts, a, b)) if has_request else 0 for a, b, has_request in spans]
    ub_budget = (1 - LB_SHARE - REPAIR_SHARE) * budget
    for k, (a, b, has_request) in enumerate(spans):
        jobs = _span_jobs(ts, a, b)
        problem = Problem(ts, jobs=jobs, blocked=_blocked(committed), ttft=ttft,
                          token_deadlines={j: (None, b) for j in jobs.tolist()
                                           if ts.tasks[ts.job_task[j]].is_llm})
        schedule, status, wall = greedy_schedule(problem), "GREEDY", 0.0
        greedy_violations = _weighted(ts, jobs, schedule)
        if has_request or greedy_violations > 0:
            left = (ub_budget * work[k] / max(1, sum(work)) if has_request
                    else REPAIR_SHARE * budget)
            model = CpSatModel(problem)
            if export_model and not windows:
                model.export(export_model)
            result = model.solve(left, workers, seed, hint=schedule)
            wall = result.wall_s
            if result.schedule is not None and result.violations <= greedy_violations:
                schedule, status = result.schedule, result.status.value
        for column, values in zip(committed, (schedule.seg, schedule.backend,
                                              schedule.instance, schedule.start_us,
                                              schedule.end_us, schedule.aborted)):
            column.extend(values.tolist())
        violations = _weighted(ts, jobs, schedule)
        windows.append({"window": k, "start_s": a / 1e6, "end_s": b / 1e6,
                        "jobs": int(len(jobs)), "status": status, "violations": violations,
                        "wall_s": round(wall, 3)})
        if has_request or violations:
            say(f"window {k + 1}/{len(spans)} [{a / 1e6:g} s, {b / 1e6:g} s): {status}, "
                f"{violations:g} violations")
    schedule = _reassign(Schedule.from_lists(*committed), ts)
    upper = sum(w["violations"] for w in windows)
    if warm is not None:
        policy = evaluate(ts, warm)["weighted_violations"]
        if policy < upper:  # never worse than the best policy that serves every request
            schedule, upper = warm, policy
            notes.append(f"the windows found {upper:g}+; kept {warm_name}'s schedule")
    status = SolveStatus.OPTIMAL if upper <= lower else SolveStatus.FEASIBLE
    return _finish(ts, status, schedule, upper, min(lower, upper), warm_name, "windows",
                   started, windows, notes)


def request_spans(ts: TaskSet, warm: Schedule | None) -> list[tuple[int, int, bool]]:
    """Partition [0, horizon) into windows: one around each request's activity (arrival
    to 1.5 x how long the best policy took to finish it; overlapping ones merged), and the
    frame-only gaps between them, cut at ``WINDOW_S``."""
    last_token = {}
    if warm is not None:
        done = warm.done
        job = ts.seg_job[warm.seg[done]]
        for j, e in zip(job.tolist(), warm.end_us[done].tolist()):
            last_token[j] = max(last_token.get(j, 0), e)
    active = []
    for task in ts.tasks:
        if task.kind != "request" or not task.is_llm:
            continue
        for j in task.job_range:
            a = int(ts.job_release_us[j])
            took = last_token.get(j, a + 3 * task.standalone_us) - a
            active.append([a, a + int(1.5 * max(took, task.standalone_us))])
    active.sort()
    merged: list[list[int]] = []
    for a, b in active:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    spans, t = [], 0
    step = int(WINDOW_S * 1_000_000)
    for a, b in merged + [[ts.horizon_us, ts.horizon_us]]:
        while t < min(a, ts.horizon_us):
            spans.append((t, min(a, t + step), False))
            t = spans[-1][1]
        if b > a:  # a request window may end after the horizon: its chain finishes there
            spans.append((a, b, True))
            t = b
    return spans


def _span_jobs(ts: TaskSet, a: int, b: int) -> np.ndarray:
    jobs = np.flatnonzero((ts.job_release_us >= a) & (ts.job_release_us < b))
    preds = ts.job_after[jobs]
    return np.union1d(jobs, preds[preds >= 0])


def lower_bound(ts: TaskSet, budget_s: float, workers: int, seed: int, ttft: str
                ) -> tuple[float, str]:
    """The best of two valid bounds (see the module docstring):

    * partition: jobs released in consecutive ``WINDOW_S`` blocks, each block alone;
    * overlapping request groups: each LLM request (with its RAG job) and every frame
      released between its arrival and its give-up time; a frame lies in at most m groups,
      so Σ bound(group) / m <= OPT.

    Each group is relaxed (shifted to 0, no end-of-run limit) and identical groups are
    solved once; a group's bound is CP-SAT's proven bound on it.
    """
    firm = ts.job_deadline_us != NO_DEADLINE
    requests = []
    for task in ts.tasks:
        if task.is_llm:
            for j in task.job_range:
                a = int(ts.job_release_us[j])
                window = firm & (ts.job_release_us >= a) & (ts.job_release_us < a + task.give_up_us)
                requests.append(np.union1d(np.flatnonzero(window), _chain(ts, j)))
    step = int(WINDOW_S * 1_000_000)
    blocks = _close_over_dependencies(ts, [
        np.flatnonzero((ts.job_release_us >= a) & (ts.job_release_us < a + step))
        for a in range(0, ts.horizon_us, step)])
    # identical groups (up to a shift of time) are solved once; the budget is split a
    # priori over the distinct ones
    distinct = {_signature(ts, g): g for g in requests + blocks}
    each = budget_s / max(1, len(distinct))
    solved = {key: CpSatModel(_relaxed_group(ts, g, ttft)).solve(
        each, workers, seed, stages=("violations",)).violations_lower_bound
        for key, g in distinct.items()}
    bounds = [(sum(solved[_signature(ts, g)] for g in blocks),
               f"{len(blocks)} blocks of {WINDOW_S} s")]
    if requests:
        membership = np.zeros(ts.num_jobs, dtype=np.int64)
        for g in requests:
            membership[g] += 1
        m = max(1, int(membership[firm].max()) if firm.any() else 1)
        total = sum(solved[_signature(ts, g)] for g in requests)
        bounds.append((math.ceil(total / m - 1e-9), f"{len(requests)} request groups (each "
                       f"frame in <= {m}): sum {total:g} / {m}"))
    value, how = max(bounds)
    return value, f"lower bound from {how}; {len(distinct)} distinct groups solved"


def _chain(ts: TaskSet, job: int) -> np.ndarray:
    chain = [job]
    while ts.job_after[chain[-1]] >= 0:
        chain.append(int(ts.job_after[chain[-1]]))
    return np.array(chain, dtype=np.int64)


def _close_over_dependencies(ts: TaskSet, groups: list[np.ndarray]) -> list[np.ndarray]:
    """Keep each `after` chain inside the group of its last job (a RAG with its LLM)."""
    where = np.empty(ts.num_jobs, dtype=np.int64)
    for g, jobs in enumerate(groups):
        where[jobs] = g
    for job, pred in enumerate(ts.job_after.tolist()):
        if pred >= 0:
            where[pred] = where[job]
    return [np.flatnonzero(where == g) for g in range(len(groups))]


def _blocked(committed) -> tuple[tuple[int, int, int], ...]:
    return tuple(zip(committed[1], committed[3], committed[4]))


def _weighted(ts: TaskSet, jobs: np.ndarray, schedule: Schedule) -> float:
    ran = set(ts.seg_job[schedule.seg[schedule.done]].tolist())
    return float(sum(ts.tasks[ts.job_task[j]].weight for j in jobs.tolist()
                     if ts.job_deadline_us[j] != NO_DEADLINE and j not in ran))


def _relaxed_group(ts: TaskSet, jobs: np.ndarray, ttft: str) -> Problem:
    """The group alone, shifted to start at 0, without the end-of-run limit: a relaxation
    of the group's problem, identical for translated copies of a block."""
    shift = int(ts.job_release_us[jobs].min())
    shifted = replace(ts, job_release_us=ts.job_release_us - shift,
                      job_deadline_us=np.where(ts.job_deadline_us == NO_DEADLINE, NO_DEADLINE,
                                               ts.job_deadline_us - shift),
                      horizon_us=ts.horizon_us + 10 * ts.drain_us + 10**9)
    return Problem(shifted, jobs=jobs, ttft=ttft)


def _signature(ts: TaskSet, jobs: np.ndarray) -> tuple:
    """Equal for groups that are the same problem up to a shift of time."""
    shift = int(ts.job_release_us[jobs].min())
    deadlines = ts.job_deadline_us[jobs]
    segs = np.concatenate([np.arange(ts.job_seg_start[j], ts.job_seg_start[j + 1])
                           for j in jobs]) if len(jobs) else np.array([], dtype=np.int64)
    return (tuple((ts.job_release_us[jobs] - shift).tolist()),
            tuple(np.where(deadlines == NO_DEADLINE, -1, deadlines - shift).tolist()),
            tuple(ts.job_task[jobs].tolist()),
            tuple(np.where(ts.job_after[jobs] >= 0, ts.job_after[jobs] - jobs, 0).tolist()),
            ts.seg_dur_us[segs].tobytes())


def _reassign(schedule: Schedule, ts: TaskSet) -> Schedule:
    """Windows solve backends as cumulative resources: assign instances over the whole."""
    from .formulations.cpsat.model import _assign_instances

    rows = list(zip(schedule.seg.tolist(), schedule.backend.tolist(),
                    schedule.start_us.tolist(), schedule.end_us.tolist()))
    return _assign_instances(rows, ts.instances)


# ----------------------------------------------------------------------------- greedy


def greedy_schedule(problem: Problem) -> Schedule:
    """A schedule feasible by construction around the blocked time: requests first in
    arrival order (their chains as early as possible, each segment where it finishes
    first), then frames by deadline, each placed only if it completes in time. Used to
    warm-start windows, where a policy's trace may collide with committed blocks."""
    ts = problem.ts
    lanes = {b: [[] for _ in range(k)] for b, k in enumerate(ts.instances)}  # sorted (s, e)
    for backend, start, end in sorted(problem.blocked, key=lambda x: (x[1], x[2])):
        lane = min(lanes[backend], key=lambda ln: (ln[-1][1] if ln else 0) > start)
        bisect.insort(lane, (start, end))
    jobs = problem.job_ids.tolist()
    requests = sorted((j for j in jobs if ts.job_deadline_us[j] == NO_DEADLINE),
                      key=lambda j: (ts.job_release_us[j], j))
    frames = sorted((j for j in jobs if ts.job_deadline_us[j] != NO_DEADLINE),
                    key=lambda j: (ts.job_deadline_us[j], j))
    finish: dict[int, int] = {}
    rows = ([], [], [], [], [], [])
    for job in _predecessors_first(ts, requests) + frames:
        placed = _place_chain(ts, job, lanes, finish)
        limit = int(ts.job_deadline_us[job])
        if placed is None or (limit != NO_DEADLINE and placed[-1][4] > limit):
            continue
        for seg, backend, k, start, end in placed:
            bisect.insort(lanes[backend][k], (start, end))
            for column, value in zip(rows, (seg, backend, k, start, end, False)):
                column.append(value)
        finish[job] = placed[-1][4]
    return Schedule.from_lists(*rows)


def _predecessors_first(ts: TaskSet, requests: list[int]) -> list[int]:
    order, seen = [], set()
    for job in requests:
        chain = [job]
        while ts.job_after[chain[-1]] >= 0 and ts.job_after[chain[-1]] in requests:
            chain.append(int(ts.job_after[chain[-1]]))
        for j in reversed(chain):
            if j not in seen:
                seen.add(j)
                order.append(j)
    return order


def _place_chain(ts, job, lanes, finish):
    ready = max(int(ts.job_release_us[job]), finish.get(int(ts.job_after[job]), 0))
    placed, prev_backend = [], -1
    transfer = ts.transfer_us[ts.job_task[job]]
    for seg in ts.job_segments(job):
        best = None
        for b, lane_list in lanes.items():
            dur = int(ts.seg_dur_us[seg, b])
            if dur == INELIGIBLE:
                continue
            at = ready + (int(transfer[prev_backend, b]) if prev_backend >= 0 else 0)
            for k, lane in enumerate(lane_list):
                start = _earliest_gap(lane, at, dur)
                if best is None or (start + dur, b, k) < (best[4], best[1], best[2]):
                    best = (seg, b, k, start, start + dur)
        placed.append(best)
        ready, prev_backend = best[4], best[1]
    return placed


def _earliest_gap(busy, at, dur) -> int:
    """Earliest start >= at with [start, start + dur) free on a lane of sorted, disjoint
    busy intervals. (A chain's own earlier segments end before ``at``: no conflict.)"""
    start = at
    i = max(0, bisect.bisect_right(busy, (at, math.inf)) - 1)
    while i < len(busy):
        s, e = busy[i]
        if e <= start:
            i += 1
            continue
        if s >= start + dur:
            break
        start = max(start, e)
        i += 1
    return start


# ----------------------------------------------------------------------------- finish


def _finish(ts, status, schedule, violations, lower, warm_name, method, started, windows,
            notes) -> SolveOutcome:
    """Replay the schedule in the executor's checker and compare its metrics."""
    metrics, replay_ok, problems = None, False, []
    if schedule is not None:
        check = replay(ts, schedule)
        problems = check.violations
        if check.ok:
            metrics = check.metrics
            replay_ok = abs(metrics["weighted_violations"] - violations) < 1e-6
            if not replay_ok:
                problems = [f"metrics: the evaluator counts {metrics['weighted_violations']} "
                            f"weighted violations, the solver {violations}"]
    return SolveOutcome(status, schedule, violations, lower, metrics, replay_ok, problems,
                        warm_name, method, time.perf_counter() - started, windows, notes)
