"""Optimality-gap analysis: how far each policy is from the best possible (`rtgen-opt gap`).

For every policy P (docs/semantics.md): its violations, and its **service-matched optimum**
OPT(P) — the fewest violations of any schedule that gives every request P completed its
first and last token no later than P did (requests P did not complete are free). P's own
firm schedule is feasible for OPT(P) and is its floor (an earlier policy's matched optimum
replaces it where that meets P's deadlines and drops less), so the gap violations(P) -
OPT(P) is never negative. On long horizons the matched windows
(``optimisation/matched_windows.py``) build OPT(P)'s schedule, and a bound beside it.
When OPT(P) is not proven, the gap lies between violations(P) - OPT(P).violations (a
proven minimum) and violations(P) - its lower bound (the maximum).

The gap is never clamped: a negative one means a bug (the policy's firm schedule is
feasible for OPT(P) and seeds it), so it stops the command as an internal error with both
numbers (``NegativeGap``, exit 70). A schedule whose replay failed proves nothing: its row
says REPLAY_FAILED with no gap, and ``replay_failed`` lists the first failed constraint of
each such schedule (the command exits 1).

Plus the plain optimum (every request served, any TTFT) and the **Pareto front** of frame
violations against the LLM's TTFT: the minimum violations under a cap on every request's
TTFT, for caps from the LLM's standalone TTFT up.
"""

from __future__ import annotations

import math
import time

from rtgen_opt.evaluation.firm import firm_schedule, serves_every_request
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.formulations.bounds import max_bound
from rtgen_opt.formulations.bounds.token_leaves import refined_window_bound
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.formulations.result import SolveStatus
from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import TaskSet
from rtgen_opt.optimisation.construct import unserved
from rtgen_opt.optimisation.matched_windows import MatchedWindows
from rtgen_opt.optimisation.solve import (
    claimed_violations,
    service_matched_problem,
    solve,
    solve_problem,
)
from rtgen_opt.report.gap import TOLERANCE_PP
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES, Policy
from rtgen_opt.supervise import TimeUp, abandonable, budget_kwargs, cutoff

CAP_FACTORS = (1.0, 1.25, 1.5, 2.0, 3.0, 5.0)  # x the LLM's standalone TTFT
SHARES = {"optimum": 0.3, "matched": 0.45, "pareto": 0.25}
CLOSE_ENOUGH_PP = 0.25  # a matched optimum this close to its bound (points of the run's
# frames) gets no window bound: a quarter of the 1-point target, seconds saved a policy
TOLERANCE = 1e-6  # weighted counts are sums of float weights


class NegativeGap(RuntimeError):
    """A policy beat its own service-matched optimum: a bug, never a result to print."""


def gap_analysis(ts: TaskSet, time_limit_s: float = 120.0, workers: int = 0,
                 progress=None, budget=None, policies: list[Policy] | None = None) -> dict:
    """The `gap` JSON (docs/files-and-output.md), plus the schedules the report draws
    (``policies``: those to compare, by default every built-in one).

    ``time_limit_s`` is split a priori (``SHARES``); ``budget`` (a progress.Budget), when
    given, is asked between phases: once it is interrupted or spent, the remaining
    policies and the Pareto front are skipped (the JSON says ``complete: false``)."""
    say = progress or (lambda m: None)

    def stopped() -> bool:
        return budget is not None and (budget.interrupted.is_set() or budget.expired)

    def short_of_time() -> bool:  # optional work stops while the Pareto front's share is left
        return budget is not None and budget.remaining() < SHARES["pareto"] * time_limit_s

    started = time.perf_counter()
    chosen = list(POLICIES.values()) if policies is None else policies
    _phase(progress, "simulating the policies")
    # first: a user's policy that fails does so in a second, before any solve
    runs = {policy.name: simulate(ts, policy).schedule for policy in chosen}
    _phase(progress, "the plain optimum")
    optimum = solve(ts, SHARES["optimum"] * time_limit_s, workers,
                    **budget_kwargs(solve, budget))
    say(f"optimum: {optimum.status.value}, {optimum.violations} violations")
    replay_failed = _replay_failures("optimum", optimum)
    released = sum(t.num_jobs for t in ts.tasks if t.deadline_us is not None) or 1
    policies, traces, seeds = [], {}, [optimum.schedule if optimum.replay_ok else None]
    each = SHARES["matched"] * time_limit_s / len(chosen)
    windows = MatchedWindows()  # the matched upper bound, window by window
    found: list[tuple[str, Schedule]] = []  # matched optima so far, for the next ones
    for policy in chosen:
        if stopped():
            break
        name = policy.name
        _phase(progress, f"{name} and its service-matched optimum")
        trace = traces[name] = runs[name]
        metrics = evaluate(ts, trace)
        try:  # a matched optimum still unfinished at the deadline is dropped
            with cutoff(budget):
                problem = service_matched_problem(ts, trace)
                warm_name, warm = _matched_floor(problem, name, firm_schedule(ts, trace),
                                                 found)
                matched = solve_problem(problem, each, workers, warm=warm,
                                        warm_name=warm_name, stages=("violations",),
                                        upper=windows, blocks=False)
                matched = _with_exact_windows(matched, windows.report_for(problem))
                matched = _with_window_bound(problem, matched, released, short_of_time)
                if not short_of_time():
                    matched = _with_block_bound(problem, matched, released)
        except TimeUp:
            say(f"{name}: matched optimum {_cut_by(budget)}")
            break
        seeds += [firm_schedule(ts, trace), matched.schedule if matched.replay_ok else None]
        if matched.replay_ok:
            found.append((f"{name}'s matched optimum", matched.schedule))
        replay_failed += _replay_failures(f"{name}'s matched optimum", matched)
        violations = metrics["weighted_violations"]
        row = {"policy": name, "violations": violations,
               "violation_rate": metrics["violation_rate"], "tasks": metrics["tasks"],
               "starved": sum(m["starved"] for m in metrics["llm"].values()),
               "requests": sum(m["requests"] for m in metrics["llm"].values()),
               "matched_optimum": {"status": matched.status.value,
                                   "violations": matched.violations,
                                   "violations_lower_bound": matched.violations_lower_bound,
                                   "lower_bound_method": getattr(matched,
                                                                 "lower_bound_method", None),
                                   "replay_ok": matched.replay_ok},
               **_gap_fields(name, violations, matched, released)}
        policies.append({**row, "ttft_ms": _llm_stat(metrics, "ttft_ms"),
                         "tpt_ms": _llm_stat(metrics, "tpt_ms")})
        say(f"{name}: {violations:g} violations, matched optimum {matched.violations} "
            f"({matched.status.value})")
    complete = len(policies) == len(chosen) and not stopped()
    _phase(progress, "the Pareto front")
    pareto = []
    if complete:
        try:
            with cutoff(budget):
                pareto = _pareto(ts, SHARES["pareto"] * time_limit_s, workers, seeds,
                                 replay_failed)
        except TimeUp:
            say(f"Pareto front {_cut_by(budget)}")
            complete = False
    return {
        "scenario": ts.scenario, "horizon_s": ts.horizon_us / 1e6,
        "optimum": {"status": optimum.status.value, "violations": optimum.violations,
                    "violations_lower_bound": optimum.violations_lower_bound,
                    "gap": optimum.gap, "replay_ok": optimum.replay_ok,
                    "lower_bound_method": getattr(optimum, "lower_bound_method", None),
                    **({k: optimum.metrics[k] for k in ("tasks", "llm", "violation_rate")}
                       if optimum.metrics else {})},
        "policies": policies, "pareto": pareto, "released": released,
        "complete": complete, "replay_failed": replay_failed,
        "wall_s": round(time.perf_counter() - started, 3),
        "_schedules": {"optimum": optimum.schedule, **traces},  # for the report only
    }


def _matched_floor(problem: Problem, name: str, firm: Schedule,
                   found: list[tuple[str, Schedule]]) -> tuple[str, Schedule]:
    """The schedule a matched optimum starts from: the policy's own firm schedule, or an
    earlier policy's matched optimum where that meets this policy's deadlines too (fcfs-aot
    answers 47 µs earlier than fcfs-dyn) and drops less."""
    best = (claimed_violations(problem, firm), name, firm)
    for label, schedule in found:
        if not unserved(problem, schedule):
            best = min(best, (claimed_violations(problem, schedule), label, schedule),
                       key=lambda c: c[0])
    return best[1], best[2]


def _with_exact_windows(matched, report):
    """The matched optimum with the windows' bound (CP-SAT on each request's window, the
    frames around it left out: docs/optimum.md) where it beats the bound it has."""
    if report is None or matched.status.value != "FEASIBLE" \
            or report.lower_bound <= matched.violations_lower_bound:
        return matched
    assert report.lower_bound <= matched.violations + 1e-6, (report.lower_bound,
                                                             matched.violations)
    matched.violations_lower_bound = report.lower_bound
    matched.lower_bound_method = (
        f"exact windows (CP-SAT on each request's window without the frames around it, "
        "or on its frames before the first token, "
        f"{report.windows} windows, {report.exact} solved exactly; no certificate)")
    if matched.violations <= report.lower_bound + 1e-9:
        matched.status = SolveStatus.OPTIMAL
    return matched


def _with_window_bound(problem: Problem, matched, released: int,
                       short_of_time=lambda: False):
    """The matched optimum with the window bound (the requests' own deadlines, priced
    around each request) where it beats the bound it has; OPTIMAL once they meet. Not
    tried where the bounds are already within ``CLOSE_ENOUGH_PP`` (it costs seconds);
    refined over the time of token 1 while the range is wider than ``TOLERANCE_PP`` and
    time is not short."""
    if matched.status.value != "FEASIBLE" or not problem.token_deadlines:
        return matched
    width = matched.violations - matched.violations_lower_bound
    if 100 * width / released <= CLOSE_ENOUGH_PP:
        return matched
    # refined over token 1's time only while the row is not yet an answer (it costs MILPs)
    bound = refined_window_bound(problem, matched.violations - TOLERANCE_PP * released / 100,
                                 stop=short_of_time)
    if bound is None:
        return matched
    value = _window_value(problem, bound.value)
    if value > matched.violations_lower_bound:
        assert value <= matched.violations + 1e-6, (value, matched.violations)
        matched.violations_lower_bound = value
        matched.lower_bound_method = (
            f"window bound (preemptive relaxation around the requests, {bound.groups} "
            f"groups, {bound.proven_groups} solved exactly"
            + (f", {bound.refined} refined over the time of token 1" if bound.refined else "")
            + "; no certificate)")
        if matched.violations <= value + 1e-9:
            matched.status = SolveStatus.OPTIMAL
    return matched


def _with_block_bound(problem: Problem, matched, released: int):
    """The matched optimum with the block bound (frames with slack) where it beats the
    bound it has: run last, only on rows the cheaper bounds left wider than
    ``CLOSE_ENOUGH_PP`` (at 2,048-token prompts it cost 2 s a policy, proving nothing)."""
    if matched.status.value != "FEASIBLE" or matched.bound is None \
            or 100 * (matched.violations - matched.violations_lower_bound) / released \
            <= CLOSE_ENOUGH_PP:
        return matched
    bound = abandonable(lambda: max_bound(problem, matched.bound), matched.bound)
    if bound.value > matched.violations_lower_bound:
        assert bound.value <= matched.violations + 1e-6, (bound.value, matched.violations)
        matched.bound = bound
        matched.violations_lower_bound, matched.lower_bound_method = bound.value, bound.method
        if matched.violations <= bound.value + 1e-9:
            matched.status = SolveStatus.OPTIMAL
    return matched


def _window_value(problem: Problem, value: float) -> float:
    """The MILP's bound in weight units, less its solver's tolerance, rounded up when the
    weights are integers (so is OPT)."""
    value -= 1e-5 * max(1.0, abs(value))
    if problem.weight_scale == 1:
        return float(max(0, math.ceil(value)))
    return max(0.0, value)


def _gap_fields(name: str, violations: float, matched, released: int) -> dict:
    """The gap between a policy and its matched optimum: exact when that is proven, else
    the range [violations - best found, violations - lower bound]; none when the matched
    optimum's schedule failed replay (it proves nothing)."""
    if not matched.replay_ok or matched.violations is None:
        return {"gap_violations": None, "gap_violations_max": None, "gap_exact": False,
                "proven": False, "gap_pp_min": None, "gap_pp_max": None, "gap_pp": None}
    gap_min = violations - matched.violations
    gap_max = violations - matched.violations_lower_bound
    if gap_min < -TOLERANCE:
        raise NegativeGap(f"{name} has {violations:g} weighted violations, fewer than its "
                          f"service-matched optimum's {matched.violations:g}")
    proven = matched.status.value == "OPTIMAL"
    return {"gap_violations": gap_min, "gap_violations_max": gap_max, "gap_exact": proven,
            "proven": proven, "gap_pp_min": 100 * gap_min / released,
            "gap_pp_max": 100 * gap_max / released,
            "gap_pp": 100 * gap_min / released if proven else None}


def _replay_failures(what: str, outcome) -> list[str]:
    """``what``'s first failed constraint, when its schedule failed replay."""
    if outcome.schedule is None or outcome.replay_ok:
        return []
    return [f"{what}: {outcome.replay_violations[0]}"]


def _cut_by(budget) -> str:
    """Why abandoned work stopped: Ctrl-C (or a signal) or the deadline."""
    interrupted = budget is not None and budget.interrupted.is_set()
    return "interrupted" if interrupted else "cut by the time limit"


def _phase(progress, name: str) -> None:
    if hasattr(progress, "phase"):
        progress.phase(name)


def _llm_stat(metrics: dict, key: str) -> dict | None:
    llms = list(metrics["llm"].values())
    return llms[0][key] if len(llms) == 1 else (None if not llms else
                                                {n: m[key] for n, m in metrics["llm"].items()})


def _pareto(ts: TaskSet, budget_s: float, workers: int, seeds: list,
            replay_failed: list[str]) -> list[dict]:
    """Minimum violations for each cap on every request's TTFT, tightest cap first. Every
    schedule found so far that serves all requests within a cap (policies' firm schedules,
    service-matched optima, the tighter caps' answers) may seed it: the best one does."""
    llm = [t for t in ts.tasks if t.is_llm and t.num_jobs]
    if not llm:
        return []
    alone = min(_first_token_alone(ts, t) for t in llm)
    caps = sorted({int(alone * f) for f in CAP_FACTORS})
    candidates = [(evaluate(ts, s), s) for s in seeds if s is not None]
    candidates = [(m, s) for m, s in candidates if serves_every_request(ts, m)]
    points = []
    for cap in caps:
        fitting = [(m["weighted_violations"], s) for m, s in candidates
                   if max((x["ttft_ms"]["max"] or 0) for x in m["llm"].values()) * 1000 <= cap]
        warm = min(fitting, key=lambda c: c[0])[1] if fitting else None
        out = solve_problem(Problem(ts, ttft_cap_us=cap), budget_s / len(caps), workers,
                            warm=warm, warm_name="the best schedule within the cap",
                            stages=("violations",))
        replay_failed += _replay_failures(f"the optimum under a {cap / 1000:g} ms TTFT cap",
                                          out)
        if out.schedule is not None and out.replay_ok:
            candidates.append((evaluate(ts, out.schedule), out.schedule))
        points.append({"ttft_cap_ms": cap / 1000, "status": out.status.value,
                       "violations": out.violations,
                       "violations_lower_bound": out.violations_lower_bound})
    return points


def _first_token_alone(ts: TaskSet, task) -> int:
    """The request's time to first token with the platform to itself (fastest backends)."""
    j = task.first_job
    segs = ts.job_segments(j)
    first = next(s for s in segs if ts.seg_token[s] == 1)
    total = sum(ts.fastest_us(s) for s in range(segs.start, first + 1))
    pred = int(ts.job_after[j])
    if pred >= 0:
        total += sum(ts.fastest_us(s) for s in ts.job_segments(pred))
    return total
