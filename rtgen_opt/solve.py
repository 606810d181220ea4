"""Orchestration of `solve`: warm starts, bounds, constructions, the gap.

Every problem (plain, service-matched, TTFT-capped) gets the same treatment:

* *Lower bound* — the Lagrangian bound on a time grid (``formulations/bounds``): prices on
  backend time chosen by the phase LP, frames and request chains minimised exactly. It is
  valid for any prices and takes seconds at 60 s.
* *Upper bound* — a schedule: on small instances (at most ``DIRECT_SEGMENTS`` segments)
  one CP-SAT (or MILP) model, warm-started from the best schedule known; on long horizons
  the kill-aware construction (``construct.py``) when present, else the insertion
  heuristic below. Never worse than the best policy that serves every request.

The status is OPTIMAL exactly when the upper bound meets the lower bound; the outcome says
which method gave each bound.
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .executor import simulate
from .firm import firm_schedule, serves_every_request
from .errors import InputError
from .formulations.bounds import LowerBound, lower_bound, max_bound
from .formulations.cpsat import CpSatModel
from .formulations.milp import MilpModel
from .formulations.problem import Problem
from .formulations.result import SolveStatus
from .metrics import evaluate
from .policies import POLICIES
from .replay import replay
from .schedule import Schedule, assign_instances
from .taskset import INELIGIBLE, NO_DEADLINE, TaskSet

DIRECT_SEGMENTS = 4000  # above this, decompose
MILP_MAX_SEGMENTS = 4000  # the MILP solves one model; above this it is not attempted
# Shares of the time limit, fixed a priori (not from elapsed time) so that a run with one
# worker is reproducible: the rest covers simulating the policies, greedy and replay.
SOLVE_SHARE = 0.85
BLOCK_SHARE = 0.2  # of a problem's budget, kept for the block bound when a gap remains
CONSTRUCT_BEFORE_MODEL = 500  # segments: above this a model is hinted by the construction
CONSTRUCT_SHARE = 0.3  # of the model's budget, for that construction


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
    stages: list[dict] = field(default_factory=list)  # direct solves: per objective
    lower_bound_method: str = ""  # what proved violations_lower_bound
    upper_bound_method: str = ""  # what produced the schedule
    bound: LowerBound | None = None  # the Lagrangian certificate (--export-bound)

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
          ttft: str = "sum", progress=None, export_model: str | None = None,
          solver: str = "cpsat", mip_solver: str = "cbc") -> SolveOutcome:
    """Solve the task set within ``time_limit_s`` seconds overall, with CP-SAT (``solver``
    "cpsat") or the MILP ("milp", on CBC or HiGHS: ``mip_solver``)."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    if solver == "milp" and ts.num_segments > MILP_MAX_SEGMENTS:
        raise InputError("--solver", "milp", f"an instance of at most {MILP_MAX_SEGMENTS} "
                         f"segments for the MILP (this one has {ts.num_segments}: use a "
                         "shorter --horizon, a coarser granularity, or --solver cpsat)")
    say("simulating the policies for a warm start")
    warm_name, warm, _ = best_policy_schedule(ts)
    say(f"warm start: {warm_name or 'none (no policy serves every request)'}")
    return solve_problem(Problem(ts, ttft=ttft), SOLVE_SHARE * time_limit_s, workers, seed,
                         warm, warm_name, solver, mip_solver, export_model, started,
                         progress=say)


def solve_problem(problem: Problem, budget_s: float, workers: int = 0, seed: int = 0,
                  warm: Schedule | None = None, warm_name: str | None = None,
                  solver: str = "cpsat", mip_solver: str = "cbc",
                  export_model: str | None = None, started: float | None = None,
                  stages: tuple[str, ...] = ("violations", "ttft", "tpt"),
                  progress=None) -> SolveOutcome:
    """Bound and solve ``problem`` (the plain problem, a service-matched one, a TTFT
    cap...) within ``budget_s``; ``warm`` must be feasible for it: the answer is never
    worse."""
    started = time.perf_counter() if started is None else started
    say = progress or (lambda message: None)
    say("lower bound: phase LP and Lagrangian prices")
    bound = lower_bound(problem, blocks=False)
    say(f"lower bound {bound.value:g} ({bound.wall_s:.1f} s)")
    # a share kept for the block bound, fixed a priori (reproducible with one worker)
    remaining = max(0.5, (1 - BLOCK_SHARE) * budget_s - bound.wall_s)
    if solver == "milp" or _num_segments(problem) <= DIRECT_SEGMENTS:
        outcome = _solve_model(problem, remaining, workers, seed, warm, warm_name, solver,
                               mip_solver, export_model, started, stages)
    else:
        outcome = _solve_long(problem, remaining, workers, seed, warm, warm_name, say,
                              export_model, started)
    if outcome.violations is None or outcome.violations > bound.value:
        say("lower bound: block bound (frames with slack)")
        bound = max_bound(problem, bound)
        say(f"lower bound {bound.value:g}")
    return _with_bound(outcome, bound)


def _num_segments(problem: Problem) -> int:
    if problem.jobs is None:
        return problem.ts.num_segments
    return sum(len(problem.segments(int(j))) for j in problem.job_ids)


def _with_bound(outcome: SolveOutcome, bound: LowerBound) -> SolveOutcome:
    """Take the Lagrangian bound where it beats the solver's own; OPTIMAL once they meet."""
    outcome.bound = bound
    if bound.value > outcome.violations_lower_bound:
        outcome.violations_lower_bound = bound.value
        outcome.lower_bound_method = bound.method
    if outcome.violations is not None and outcome.status == SolveStatus.FEASIBLE \
            and outcome.violations <= outcome.violations_lower_bound + 1e-9:
        outcome.status = SolveStatus.OPTIMAL
    if outcome.violations is not None:  # a bound above a feasible schedule is a bug
        assert outcome.violations_lower_bound <= outcome.violations + 1e-6, (
            outcome.violations_lower_bound, outcome.violations)
    return outcome


def _solve_model(problem, budget_s, workers, seed, warm, warm_name, solver, mip_solver,
                 export_model, started, stages) -> SolveOutcome:
    """One CP-SAT or MILP model of the whole problem, hinted with the best schedule known
    (the policy's, or the construction's when it is better)."""
    ts = problem.ts
    construct = _construction()
    if construct is not None and _num_segments(problem) > CONSTRUCT_BEFORE_MODEL:
        built = construct(problem, CONSTRUCT_SHARE * budget_s, max(1, workers), seed)
        value = evaluate(ts, built)["weighted_violations"]
        if warm is None or value < evaluate(ts, warm)["weighted_violations"]:
            warm, warm_name = built, "the kill-aware construction"
        budget_s *= 1 - CONSTRUCT_SHARE
    if solver == "milp":
        model = MilpModel(problem)
        if export_model:
            model.prob.writeLP(export_model)
        result = model.solve(budget_s, mip_solver, max(1, workers), hint=warm, stages=stages)
        engine = f"MILP ({mip_solver})"
    else:
        model = CpSatModel(problem)
        if export_model:
            model.export(export_model)
        result = model.solve(budget_s, workers, seed, hint=warm, stages=stages)
        engine = "CP-SAT"
    status, schedule, value = result.status, result.schedule, result.violations
    notes = list(result.notes)
    made_by = f"{engine} on the whole problem"
    if warm is not None and status != SolveStatus.INFEASIBLE:
        policy = evaluate(ts, warm)["weighted_violations"]
        if value is None or policy < value:  # the incumbent is never worse than it
            status, schedule, value = SolveStatus.FEASIBLE, warm, policy
            made_by = f"{warm_name}'s schedule (the solver found nothing better)"
            notes.append(f"the solver found nothing better than {warm_name}'s schedule")
        if value <= result.violations_lower_bound:
            status = SolveStatus.OPTIMAL
    outcome = _finish(ts, status, schedule, value, result.violations_lower_bound, warm_name,
                      "direct", started, [], notes)
    outcome.stages = result.stages
    outcome.lower_bound_method = f"{engine}'s proven bound"
    outcome.upper_bound_method = made_by
    return outcome


def _solve_long(problem, budget, workers, seed, warm, warm_name, say, export_model,
                started) -> SolveOutcome:
    """Long horizons: a schedule by construction (the bound comes from the caller)."""
    ts = problem.ts
    windows: list[dict] = []
    construct = _construction()
    if construct is not None:
        schedule = construct(problem, budget, max(1, workers), seed, progress=say)
        made_by = "kill-aware construction"
    elif _is_plain(problem):
        schedule, windows = insertion_schedule(ts, budget, workers, seed, problem.ttft, say,
                                               export_model)
        made_by = f"insertion heuristic ({len(windows)} request windows)"
    else:
        schedule, made_by = None, ""
    upper = math.inf if schedule is None else evaluate(ts, schedule)["weighted_violations"]
    notes = [f"upper bound from the {made_by}"] if schedule is not None else []
    if warm is not None:
        policy = evaluate(ts, warm)["weighted_violations"]
        if policy < upper:  # never worse than the best policy that serves every request
            schedule, upper = warm, policy
            made_by = f"{warm_name}'s schedule"
            notes.append(f"kept {warm_name}'s schedule: the construction found more violations")
    if schedule is None:
        return _finish(ts, SolveStatus.UNKNOWN, None, None, 0.0, warm_name, "construction",
                       started, windows, notes)
    outcome = _finish(ts, SolveStatus.FEASIBLE, schedule, upper, 0.0, warm_name,
                      "construction", started, windows, notes)
    outcome.upper_bound_method = made_by
    return outcome


def _construction():
    """The kill-aware construction, when this build has it."""
    try:
        from .construct import construct_schedule
    except ImportError:
        return None
    return construct_schedule


def _is_plain(problem: Problem) -> bool:
    return (problem.jobs is None and not problem.blocked and not problem.optional
            and not problem.token_deadlines and problem.ttft_cap_us is None
            and not problem.prefix)


def insertion_schedule(ts: TaskSet, budget_s: float, workers: int, seed: int, ttft: str,
                       say, export_model: str | None = None) -> tuple[Schedule, list[dict]]:
    """A feasible schedule of a long horizon, built in three steps:

    1. every frame, greedily (by deadline, each where it finishes first): alone, frames
       mostly fit;
    2. for each request in arrival order, CP-SAT re-solves its first-token work (RAG and
       prefill: a few dozen segments) together with the frames released in a window after
       its arrival (3 x its first-token latency alone), everything else blocked, its first
       token due by the window's end (a restriction: still a valid schedule);
    3. its decode steps go into the idle time left, so they never displace a frame.
    """
    firm = np.flatnonzero(ts.job_deadline_us != NO_DEADLINE)
    rows = _rows(greedy_schedule(Problem(ts, jobs=firm)))
    llm_jobs = sorted((j for t in ts.tasks if t.is_llm for j in t.job_range),
                      key=lambda j: (int(ts.job_release_us[j]), j))
    windows = []
    each = budget_s / max(1, len(llm_jobs))
    for k, job in enumerate(llm_jobs):
        chain = _chain(ts, job)
        first = _first_token_prefix(ts, job)
        a = int(ts.job_release_us[job])
        alone = sum(ts.fastest_us(s) for j in chain.tolist() if j != job
                    for s in ts.job_segments(j))
        alone += sum(ts.fastest_us(s) for s in range(int(ts.job_seg_start[job]),
                                                      int(ts.job_seg_start[job]) + first))
        b = a + 3 * alone
        frames = firm[(ts.job_release_us[firm] >= a) & (ts.job_release_us[firm] < b)]
        mine = set(frames.tolist())
        kept = [r for r in rows if int(ts.seg_job[r[0]]) not in mine]
        problem = Problem(ts, jobs=np.concatenate([frames, chain]), ttft=ttft,
                          blocked=tuple((r[1], r[3], r[4]) for r in kept),
                          prefix={job: first}, token_deadlines={job: (b, None)})
        greedy = greedy_schedule(problem)
        model = CpSatModel(problem)
        if export_model and k == 0:
            model.export(export_model)
        result = model.solve(each, workers, seed, hint=greedy, stages=("violations", "ttft"))
        found, status = greedy, "GREEDY"
        if result.schedule is not None and (_weighted(ts, frames, result.schedule)
                                            <= _weighted(ts, frames, greedy)):
            found, status = result.schedule, result.status.value
        rows = kept + _rows(found)
        rows += _decode_into_gaps(ts, job, first, rows)
        windows.append({"window": k, "start_s": a / 1e6, "end_s": b / 1e6,
                        "jobs": int(len(frames) + len(chain)), "status": status,
                        "violations": _weighted(ts, frames, found),
                        "wall_s": round(result.wall_s, 3)})
        say(f"request {k + 1}/{len(llm_jobs)} at {a / 1e6:g} s: {status}, "
            f"{windows[-1]['violations']:g} violations in its window")
    return _schedule_of(rows, ts), windows


def _schedule_of(rows, ts: TaskSet) -> Schedule:
    """Rows (seg, backend, instance, start, end) -> a schedule with instances reassigned."""
    if not rows:
        return Schedule.from_lists([], [], [], [], [], [])
    seg, backend, _, start, end = zip(*rows)
    return _reassign(Schedule.from_lists(seg, backend, [-1] * len(seg), start, end,
                                         [False] * len(seg)), ts)


def _rows(schedule: Schedule) -> list[tuple[int, int, int, int, int]]:
    done = schedule.done
    return list(zip(schedule.seg[done].tolist(), schedule.backend[done].tolist(),
                    schedule.instance[done].tolist(), schedule.start_us[done].tolist(),
                    schedule.end_us[done].tolist()))


def _first_token_prefix(ts: TaskSet, job: int) -> int:
    segs = ts.job_segments(job)
    return int(np.flatnonzero(ts.seg_token[segs.start:segs.stop] == 1)[0]) + 1


def _decode_into_gaps(ts: TaskSet, job: int, done: int, rows) -> list[tuple]:
    """Place the job's remaining segments, in order, each where it finishes first in the
    idle time of the current schedule."""
    lanes = {b: [[] for _ in range(k)] for b, k in enumerate(ts.instances)}
    for _, b, k, s, e in _rows(_schedule_of(rows, ts)):
        lanes[b][k].append((s, e))
    for lane_list in lanes.values():
        for lane in lane_list:
            lane.sort()
    segs = ts.job_segments(job)
    last = segs.start + done - 1
    prefix_end, prev = next((r[4], r[1]) for r in rows if r[0] == last)
    return _place_chain(ts, job, lanes, {}, range(segs.start + done, segs.stop),
                        prefix_end, prev)


def _chain(ts: TaskSet, job: int) -> np.ndarray:
    chain = [job]
    while ts.job_after[chain[-1]] >= 0:
        chain.append(int(ts.job_after[chain[-1]]))
    return np.array(chain, dtype=np.int64)


def _weighted(ts: TaskSet, jobs: np.ndarray, schedule: Schedule) -> float:
    ran = set(ts.seg_job[schedule.seg[schedule.done]].tolist())
    return float(sum(ts.tasks[ts.job_task[j]].weight for j in jobs.tolist()
                     if ts.job_deadline_us[j] != NO_DEADLINE and j not in ran))


def _reassign(schedule: Schedule, ts: TaskSet) -> Schedule:
    """Windows solve backends as cumulative resources: assign instances over the whole."""
    rows = list(zip(schedule.seg.tolist(), schedule.backend.tolist(),
                    schedule.start_us.tolist(), schedule.end_us.tolist()))
    return assign_instances(rows, ts.instances)


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
        placed = _place_chain(ts, job, lanes, finish, problem.segments(job))
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


def _place_chain(ts, job, lanes, finish, segments=None, ready=None, prev_backend=-1):
    """Place ``segments`` of ``job`` (default: all) in order, each on the lane where it
    finishes first, from ``ready`` (default: release, after its predecessor)."""
    if ready is None:
        ready = max(int(ts.job_release_us[job]), finish.get(int(ts.job_after[job]), 0))
    placed = []
    transfer = ts.transfer_us[ts.job_task[job]]
    for seg in ts.job_segments(job) if segments is None else segments:
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
