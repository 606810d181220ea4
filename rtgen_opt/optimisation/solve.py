"""Orchestration of `solve`: warm starts, bounds, constructions, the gap.

Every problem (plain, service-matched, TTFT-capped) gets the same treatment:

* *Lower bound* — the Lagrangian bound on a time grid (``formulations/bounds``): prices on
  backend time chosen by the phase LP, frames and request chains minimised exactly; valid
  for any prices, seconds at 60 s. While a gap remains after the schedule, the block bound
  (frames with slack) too; the larger is kept.
* *Upper bound* — a schedule: on small instances (at most ``DIRECT_SEGMENTS`` segments)
  one CP-SAT (or MILP) model, warm-started from the best schedule known (the policy's or
  the kill-aware construction's); on long horizons the construction itself
  (``construct.py``). Never worse than the best policy that serves every request.

The status is OPTIMAL exactly when the upper bound meets the lower bound; the outcome says
which method gave each bound. Every schedule is replayed against the problem's rules
(``ServiceRules``: service, drain, matched deadlines, TTFT cap) and its violations counted
by the evaluator, which must agree with the count of whatever produced it — the solver's
objective value, or, for a policy's or the construction's schedule, the weight of the firm
jobs it leaves out (``claimed_violations``, not the evaluator). Otherwise the status is
REPLAY_FAILED: nothing about that schedule is proven.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rtgen_opt.errors import InputError
from rtgen_opt.evaluation.firm import firm_schedule, serves_every_request
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.evaluation.replay import ServiceRules, replay
from rtgen_opt.formulations.bounds import LowerBound, lower_bound, max_bound
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.milp import MilpModel
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.formulations.result import SolveResult, SolveStatus
from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import NO_DEADLINE, TaskSet
from rtgen_opt.optimisation.construct import ConstructionFailed, construct_schedule
from rtgen_opt.output import write_with
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from rtgen_opt.supervise import abandonable, interrupted

DIRECT_SEGMENTS = 4000  # above this, decompose
MILP_MAX_SEGMENTS = 4000  # the MILP solves one model; above this it is not attempted
# Shares of the time limit, fixed a priori (not from elapsed time) so that a run with one
# worker is reproducible: the rest covers simulating the policies, greedy and replay.
SOLVE_SHARE = 0.85
BOUND_SHARE = 0.1  # of a problem's budget, for the phase-LP bound (seconds at 60 s)
BLOCK_SHARE = 0.2  # of a problem's budget, kept for the block bound when a gap remains
CONSTRUCT_BEFORE_MODEL = 500  # segments: above this a model is hinted by the construction
CONSTRUCT_SHARE = 0.3  # of the model's budget, for that construction
# simulated first for the warm start (the winner on every built-in scenario): the other
# policies' runs then stop early; the answer does not depend on this order
LIKELY_BEST = ("kill-aware",)


# builds a schedule for a long problem: (problem, budget_s, workers, seed, floor, say) ->
# (a schedule feasible for the problem or None, what made it)
UpperBound = Callable[[Problem, float, int, int, "Schedule | None", Callable[[str], None]],
                      "tuple[Schedule | None, str]"]


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
    method: str  # "direct" (one model) or "construction" (long horizons)
    wall_s: float
    notes: list[str] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)  # direct solves: per objective
    lower_bound_method: str = ""  # what proved violations_lower_bound
    upper_bound_method: str = ""  # what produced the schedule
    bound: LowerBound | None = None  # the Lagrangian certificate (--export-bound)
    warm_trace: Schedule | None = None  # the warm-start policy's own run (not firm)

    @property
    def gap(self) -> float | None:
        """(UB - LB) / max(1, UB) on the weighted violations."""
        if self.violations is None:
            return None
        return (self.violations - self.violations_lower_bound) / max(1.0, self.violations)


def best_policy_schedule(ts: TaskSet
                         ) -> tuple[str | None, Schedule | None, float, Schedule | None]:
    """The best policy that serves every request (fewest weighted violations, then task
    order of the registry): its name, firm schedule, violations and own run. The usual
    winner runs first, so that every other run stops as soon as it drops more weight than
    the best so far or starves a request (it can then be neither)."""
    best = (None, None, math.inf, None)
    rank = {name: i for i, name in enumerate(POLICIES)}
    for name in sorted(POLICIES, key=lambda name: (name not in LIKELY_BEST, rank[name])):
        if best[0] is not None and interrupted():
            break  # Ctrl-C: the best policy so far is the warm start
        if best[0] is None:  # an answer needs one schedule that serves every request
            result = simulate(ts, name)
        else:
            stop = best[2]  # more than the best so far: this policy cannot be it
            result = abandonable(lambda name=name, stop=stop: simulate(ts, name, stop_above=stop),
                                 None)
            if result is None:
                break  # abandoned (Ctrl-C, the deadline): the best so far
        if result.stopped:
            continue
        metrics = evaluate(ts, result.schedule)
        better = (metrics["weighted_violations"], rank[name]) < (best[2], rank.get(best[0], 0))
        if serves_every_request(ts, metrics) and better:
            best = (name, firm_schedule(ts, result.schedule), metrics["weighted_violations"],
                    result.schedule)
    return best


def service_matched_problem(ts: TaskSet, trace: Schedule, ttft: str = "sum") -> Problem:
    """OPT(P), the service-matched optimum (docs/semantics.md): every request P completed
    gets its first and last token no later than under P; requests P did not complete
    (starved, cut by the end of the run, or finished after the end of the drain) are left
    free (optional), and so is every other request it did not complete (an encoder that
    waits for a starved LLM). P's own firm schedule is feasible for it, so the gap
    violations(P) - OPT(P) is never negative."""
    done = trace.done
    seg, end = trace.seg[done], trace.end_us[done]
    token = ts.seg_token[seg]
    job = ts.seg_job[seg]
    deadlines, optional = {}, set()
    drain_end = ts.horizon_us + ts.drain_us
    finished = _finished_jobs(ts, trace, drain_end)
    for task in ts.tasks:
        if task.deadline_us is not None:
            continue
        for j in task.job_range:
            if j not in finished:  # starved, cut by the run's end, or done after the drain
                optional.update(ts.chain(j) if task.is_llm else [j])
            elif task.is_llm:
                first = end[(job == j) & (token == 1)]
                last = end[(job == j) & (token == task.output_tokens)]
                deadlines[j] = (int(first[0]), int(last[0]))
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
    warm_name, warm, _, warm_trace = best_policy_schedule(ts)
    say(f"warm start: {warm_name or 'none (no policy serves every request)'}")
    out = solve_problem(Problem(ts, ttft=ttft), SOLVE_SHARE * time_limit_s, workers, seed,
                        warm, warm_name, solver, mip_solver, export_model, started,
                        progress=say)
    out.warm_trace = warm_trace  # the best policy beside the answer, not simulated again
    return out


def solve_problem(problem: Problem, budget_s: float, workers: int = 0, seed: int = 0,
                  warm: Schedule | None = None, warm_name: str | None = None,
                  solver: str = "cpsat", mip_solver: str = "cbc",
                  export_model: str | None = None, started: float | None = None,
                  stages: tuple[str, ...] = ("violations", "ttft", "tpt"),
                  progress=None, upper: UpperBound | None = None,
                  blocks: bool = True) -> SolveOutcome:
    """Bound and solve ``problem`` (the plain problem, a service-matched one, a TTFT
    cap...) within ``budget_s``; ``warm`` must be feasible for it: the answer is never
    worse. ``upper``: on long horizons, what builds the schedule instead of the
    construction of the whole problem (``gap`` passes the matched windows). ``blocks``:
    the block bound where a gap remains (``gap`` runs it itself, after cheaper bounds)."""
    started = time.perf_counter() if started is None else started
    say = progress or (lambda message: None)
    say("lower bound: phase LP and Lagrangian prices")
    bound = abandonable(lambda: lower_bound(problem, blocks=False), _NO_BOUND)
    say(f"lower bound {bound.value:g} ({bound.wall_s:.1f} s)")
    # shares fixed a priori, not from elapsed time: reproducible with one worker
    remaining = (1 - BOUND_SHARE - BLOCK_SHARE) * budget_s
    if solver == "milp" or _num_segments(problem) <= DIRECT_SEGMENTS:
        outcome = _solve_model(problem, remaining, workers, seed, warm, warm_name, solver,
                               mip_solver, export_model, started, stages, bound.value)
    else:
        outcome = _solve_long(problem, remaining, workers, seed, warm, warm_name, say,
                              started, build=upper)
    if blocks and (outcome.violations is None or outcome.violations > bound.value):
        say("lower bound: block bound (frames with slack)")
        bound = abandonable(lambda: max_bound(problem, bound), bound)
        say(f"lower bound {bound.value:g}")
    return _with_bound(outcome, bound)


# the bound of an interrupted bound phase: nothing proven
_NO_BOUND = LowerBound(0.0, "none (the bound was interrupted)", None, 0.0, 0.0)


def _num_segments(problem: Problem) -> int:
    if problem.jobs is None:
        return problem.ts.num_segments
    return sum(len(problem.segments(int(j))) for j in problem.job_ids)


def _with_bound(outcome: SolveOutcome, bound: LowerBound) -> SolveOutcome:
    """Take the Lagrangian bound where it is at least the solver's own (it has a
    certificate, and CP-SAT may have been given it); OPTIMAL once they meet."""
    outcome.bound = bound
    if bound.value >= outcome.violations_lower_bound or not outcome.lower_bound_method:
        outcome.violations_lower_bound = bound.value
        outcome.lower_bound_method = bound.method
    if outcome.violations is not None and outcome.status == SolveStatus.FEASIBLE \
            and outcome.violations <= outcome.violations_lower_bound + 1e-9:
        outcome.status = SolveStatus.OPTIMAL
    if outcome.violations is not None and outcome.replay_ok:  # a bound above a feasible
        # schedule is a bug (an invalid schedule bounds nothing: REPLAY_FAILED says so)
        assert outcome.violations_lower_bound <= outcome.violations + 1e-6, (
            outcome.violations_lower_bound, outcome.violations)
    return outcome


def _solve_model(problem, budget_s, workers, seed, warm, warm_name, solver, mip_solver,
                 export_model, started, stages, proven: float = 0.0) -> SolveOutcome:
    """One CP-SAT or MILP model of the whole problem, hinted with the best schedule known
    (the policy's, or the construction's when it is better). Where that schedule already
    meets the ``proven`` lower bound, CP-SAT is given the bound (valid: no schedule drops
    less) and proves the violations at once instead of spending their share on it."""
    if _num_segments(problem) > CONSTRUCT_BEFORE_MODEL:
        built = _construct(problem, CONSTRUCT_SHARE * budget_s, workers, seed, warm)
        if built is not None and (warm is None or claimed_violations(problem, built)
                                  < claimed_violations(problem, warm)):
            warm, warm_name = built, "the kill-aware construction"
        budget_s *= 1 - CONSTRUCT_SHARE
    if solver == "milp":
        # building a large model in PuLP can take longer than the whole time limit: the
        # deadline (or Ctrl-C) abandons it, and the best schedule known is the answer
        model = abandonable(lambda: MilpModel(problem), None)
        if model is None:
            note = ("the time limit ended the MILP before its model was built: the best "
                    "schedule found by then")
            result = SolveResult(SolveStatus.UNKNOWN, None, None, 0, 0.0, [], [note])
        else:
            if export_model:  # through the one atomic writer, like every output
                write_with({export_model: model.export})
            result = model.solve(budget_s, mip_solver, max(1, workers), hint=warm,
                                 stages=stages)
        engine = f"MILP ({mip_solver})"
    else:
        model = CpSatModel(problem)
        if export_model:
            write_with({export_model: model.export})
        met = warm is not None and claimed_violations(problem, warm) <= proven + 1e-9
        result = model.solve(budget_s, workers, seed, hint=warm, stages=stages,
                             violations_floor=proven if met else None)
        engine = "CP-SAT"
    status, schedule, value = result.status, result.schedule, result.violations
    notes = list(result.notes)
    made_by = f"{engine} on the whole problem"
    if warm is not None and status != SolveStatus.INFEASIBLE:
        policy = claimed_violations(problem, warm)
        if value is None or policy < value:  # the incumbent is never worse than it
            status, schedule, value = SolveStatus.FEASIBLE, warm, policy
            made_by = f"{warm_name}'s schedule (the solver found nothing better)"
            notes.append(f"the solver found nothing better than {warm_name}'s schedule")
        if value <= result.violations_lower_bound:
            status = SolveStatus.OPTIMAL
    outcome = _finish(problem, status, schedule, value, result.violations_lower_bound,
                      warm_name, "direct", started, notes)
    outcome.stages = result.stages
    outcome.lower_bound_method = f"{engine}'s proven bound"
    outcome.upper_bound_method = made_by
    return outcome


def _solve_long(problem, budget, workers, seed, warm, warm_name, say, started,
                build: UpperBound | None = None) -> SolveOutcome:
    """Long horizons: a schedule by construction, or by ``build`` (the bound comes from
    the caller)."""
    if build is None:
        schedule = _construct(problem, budget, workers, seed, warm, say)
        made_by = "kill-aware construction"
    else:  # Ctrl-C or the deadline abandon it: the floor is the answer so far
        schedule, made_by = abandonable(
            lambda: build(problem, budget, workers, seed, warm, say),
            (warm, f"{warm_name}'s schedule (the search was interrupted)"))
    upper = math.inf if schedule is None else claimed_violations(problem, schedule)
    notes = [f"upper bound from the {made_by}"] if schedule is not None else []
    if warm is not None:
        policy = claimed_violations(problem, warm)
        if policy < upper:  # never worse than the best policy that serves every request
            schedule, upper = warm, policy
            made_by = f"{warm_name}'s schedule"
            notes.append(f"kept {warm_name}'s schedule: the construction found more violations")
    if schedule is None:
        return _finish(problem, SolveStatus.UNKNOWN, None, None, 0.0, warm_name,
                       "construction", started, notes)
    outcome = _finish(problem, SolveStatus.FEASIBLE, schedule, upper, 0.0, warm_name,
                      "construction", started, notes)
    outcome.upper_bound_method = made_by
    return outcome


def _construct(problem: Problem, budget_s: float, workers: int, seed: int,
               floor: Schedule | None, say=None) -> Schedule | None:
    """The kill-aware construction (never worse than ``floor``), or None where no schedule
    it can build serves every required request."""
    try:  # Ctrl-C or the deadline abandon it: the floor is the answer so far
        return abandonable(lambda: construct_schedule(problem, budget_s, max(1, workers), seed,
                                                      progress=say, floor=floor), floor)
    except ConstructionFailed:
        return floor


def _finished_jobs(ts: TaskSet, trace: Schedule, drain_end: int) -> set[int]:
    """The jobs whose every segment the trace completed by ``drain_end``."""
    done = trace.done
    ended = np.zeros(ts.num_segments, dtype=bool)
    ended[trace.seg[done][trace.end_us[done] <= drain_end]] = True
    finished = np.ones(ts.num_jobs, dtype=bool)
    np.logical_and.at(finished, ts.seg_job, ended)
    return set(np.flatnonzero(finished).tolist())


def claimed_violations(problem: Problem, schedule: Schedule) -> float:
    """What a firm schedule (a policy's, the construction's) claims: the weight of the firm
    jobs of the problem it leaves out — everything else runs whole and on time. Counted
    without the evaluator, so that comparing the two checks the schedule."""
    ts = problem.ts
    present = np.bincount(ts.seg_job[schedule.seg[schedule.done]], minlength=ts.num_jobs)
    total = 0.0
    for job in problem.job_ids.tolist():
        if ts.job_deadline_us[job] != NO_DEADLINE and present[job] < len(problem.segments(job)):
            total += ts.tasks[ts.job_task[job]].weight
    return total


def service_rules(problem: Problem) -> ServiceRules:
    """The problem's demands on requests, for replay (which re-checks them on its own)."""
    ts = problem.ts
    required = frozenset(j for j in problem.job_ids.tolist()
                         if ts.job_deadline_us[j] == NO_DEADLINE and j not in problem.optional)
    return ServiceRules(problem.end_us, required, dict(problem.token_deadlines),
                        problem.ttft_cap_us)


# ----------------------------------------------------------------------------- finish


def _finish(problem, status, schedule, violations, lower, warm_name, method, started,
            notes) -> SolveOutcome:
    """Replay the schedule against the problem's rules and compare the evaluator's count
    with the producer's own (``violations``); a failure makes the status REPLAY_FAILED."""
    ts = problem.ts
    metrics, replay_ok, problems = None, False, []
    if schedule is not None:
        check = replay(ts, schedule, service_rules(problem))
        problems = check.violations
        if check.ok:
            metrics = check.metrics
            replay_ok = abs(metrics["weighted_violations"] - violations) < 1e-6
            if not replay_ok:
                problems = [(f"metrics: the evaluator counts {metrics['weighted_violations']} "
                             f"weighted violations, the schedule's producer {violations}")]
        if not replay_ok:
            status = SolveStatus.REPLAY_FAILED
            notes = [*notes, f"replay failed: {problems[0]}"]
    return SolveOutcome(status, schedule, violations, lower, metrics, replay_ok, problems,
                        warm_name, method, time.perf_counter() - started, notes)
