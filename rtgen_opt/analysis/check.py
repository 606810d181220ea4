"""Schedulability checks: can this scenario ship? (`rtgen-opt check`)

"Schedulable" means: no frame misses its deadline and no request starves (and, with
``slo``, every served request meets its TTFT and TPT SLOs).

First the cheap analytical *necessary* conditions, cheapest first, in the style of
SchedCAT (each a function ``(ts) -> reason | None``; a reason means "not schedulable", and
it is phrased for a person). Then, by method:

* ``policy`` — simulate the policy; schedulable iff its trace has no violation and no
  starved request;
* ``optimal`` — ask the solver whether *any* schedule meets every deadline: a schedule
  with no violation proves yes, a lower bound >= 1 proves no; otherwise the answer is
  ``unknown`` — not decided within the time limit (exit 3: a CI gate fails on it, but a
  program can tell it from a proven no).

The necessary conditions live in ``conditions.py``; docs/semantics.md states each with
its proof sketch. A schedule whose replay failed proves nothing: the answer is then
``unknown`` with status REPLAY_FAILED and exit 1 (never a verdict built on it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from fractions import Fraction

from rtgen_opt.analysis.conditions import NECESSARY
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.scenario import Scenario
from rtgen_opt.model.taskset import TaskSet, build_taskset
from rtgen_opt.simulation.executor import simulate

YES, NO, UNKNOWN = "yes", "no", "unknown"
EXIT_CODES = {YES: 0, NO: 1, UNKNOWN: 3}
REPLAY_FAILED = "REPLAY_FAILED"  # a CI gate fails on 1 and 3 (docs/files-and-output.md)


@dataclass
class Verdict:
    """The three-valued answer of `check`: ``yes`` and ``no`` are proven, ``unknown`` is
    "not decided within the time limit" (a CI gate fails on it too, exit 3)."""

    verdict: str  # YES | NO | UNKNOWN
    method: str  # "analytical:NAME", "policy:NAME", "optimal"
    reason: str
    interrupted: bool = False
    status: str | None = None  # "REPLAY_FAILED": the solver's schedule broke a constraint
    question: str | None = None  # which question was answered (timing uncertainty)
    witness: object | None = None  # the Realization that misses, for a policy's "no"
    analysis: dict | None = None  # what was explored to decide
    margin: dict | None = None  # with --margin: the critical scaling factor bracket

    @property
    def schedulable(self) -> bool | None:
        return {YES: True, NO: False}.get(self.verdict)

    @property
    def proven(self) -> bool:
        return self.verdict != UNKNOWN

    @property
    def exit_code(self) -> int:
        return 1 if self.status == REPLAY_FAILED else EXIT_CODES[self.verdict]

    def as_dict(self, scenario: str) -> dict:
        return {"scenario": scenario, "verdict": self.verdict,
                "schedulable": self.schedulable, "proven": self.proven,
                "method": self.method, "reason": self.reason,
                "interrupted": self.interrupted,
                **({"status": self.status} if self.status else {}),
                **({"question": self.question} if self.question else {}),
                **({"analysis": self.analysis} if self.analysis else {}),
                **({"margin": self.margin} if self.margin else {})}


# ----------------------------------------------------------------------------- analytical

ANALYTICAL = NECESSARY


def analytical(ts: TaskSet) -> Verdict | None:
    """The first failing necessary condition, or None when all pass."""
    for name, test in ANALYTICAL.items():
        reason = test(ts)
        if reason:
            return Verdict(NO, f"analytical:{name}", reason)
    return None


# ----------------------------------------------------------------------------- methods


def check_policy(ts: TaskSet, policy, slo: bool = False, time_limit_s: float = 60.0,
                 progress=None) -> Verdict:
    """Does ``policy`` (a name of POLICIES or a Policy object) meet every deadline and
    serve every request in **every** realization of the ranges? Without timing
    uncertainty there is one realization: the simulation decides. With it, the witness
    search and the exact analysis do (``uncertainty.py``)."""
    from rtgen_opt.analysis.uncertainty import check_every_realization

    name = _policy_name(policy)
    answer = check_every_realization(ts, policy, time_limit_s, slo, progress=progress)
    one = not ts.has_uncertainty
    reason = answer.reason
    if one and answer.verdict == YES:
        reason = (f"{name} meets every deadline and serves every request"
                  + (" within its SLOs" if slo else ""))
    elif one and answer.verdict == NO:
        reason = "; ".join(answer.witness.problems)
    return Verdict(answer.verdict, f"policy:{name}", reason,
                   question=f"policy {name}, every realization",
                   witness=answer.witness.realization if answer.witness else None,
                   analysis=None if one else answer.explored())


def _policy_name(policy) -> str:
    return getattr(policy, "name", policy)


def slo_misses(ts: TaskSet, metrics: dict, tpt_only: bool = False) -> list[str]:
    """Each LLM task whose worst TTFT or TPT exceeds its SLO, phrased for a person."""
    problems = []
    for name, llm in metrics["llm"].items():
        task = ts.tasks[ts.task_index(name)]
        ttft, tpt = llm["ttft_ms"]["max"], llm["tpt_ms"]["max"]
        if not tpt_only and task.ttft_us and (ttft or 0) > task.ttft_us / 1000:
            problems.append(f"{name}: TTFT up to {ttft:.0f} ms > SLO {task.ttft_us / 1000:g} ms")
        if task.tpt_us and (tpt or 0) > task.tpt_us / 1000:
            problems.append(f"{name}: TPT up to {tpt:.1f} ms > SLO {task.tpt_us / 1000:g} ms")
    return problems


def check_optimal(ts: TaskSet, time_limit_s: float, workers: int = 0, slo: bool = False,
                  progress=None) -> Verdict:
    """Does *any* schedule meet every deadline (and, with ``slo``, every request's SLOs)?
    A schedule without violation proves yes, a lower bound >= 1 proves no; else unknown."""
    if slo:
        return _check_optimal_slo(ts, time_limit_s, workers, progress)
    from rtgen_opt.optimisation.solve import solve

    out = solve(ts, time_limit_s, workers, progress=progress)
    if out.violations is not None and out.violations == 0 and out.replay_ok:
        return Verdict(YES, "optimal", "a schedule meets every deadline and serves every "
                       "request (found by the solver"
                       f"{', warm start ' + out.warm_start if out.warm_start else ''})")
    return _no_or_unknown(out, "serves every request")


def _no_or_unknown(out, service: str) -> Verdict:
    if out.status.value == REPLAY_FAILED:  # a broken schedule (or model) proves nothing
        return Verdict(UNKNOWN, "optimal", "not decided: the solver's schedule failed "
                       f"replay ({out.replay_violations[0]})", status=REPLAY_FAILED)
    if out.violations_lower_bound >= 1:
        how = getattr(out, "lower_bound_method", None)
        return Verdict(NO, "optimal", f"no schedule can: at least "
                       f"{out.violations_lower_bound:g} weighted frame violations are "
                       "unavoidable (proven lower bound" + (f", {how})" if how else ")"))
    if out.status.value == "INFEASIBLE":
        return Verdict(NO, "optimal", f"no schedule {service}")
    best = "none found" if out.violations is None else f"the best found has {out.violations:g}"
    return Verdict(UNKNOWN, "optimal", f"not decided within the time limit: {best} "
                   "violations and no proof that 0 is impossible")


def _check_optimal_slo(ts: TaskSet, time_limit_s: float, workers: int, progress) -> Verdict:
    """TTFT SLOs are constraints of the problem (each request's first token due by its
    arrival + ttft); TPT, a ratio, is not expressible as a deadline, so it is checked on
    the schedule found: a schedule meeting it proves yes, one missing it proves nothing."""
    from rtgen_opt.errors import InputError
    from rtgen_opt.evaluation.firm import firm_schedule, serves_every_request
    from rtgen_opt.formulations.problem import Problem
    from rtgen_opt.optimisation.solve import DIRECT_SEGMENTS, solve_problem
    from rtgen_opt.simulation.policies.classic import POLICIES

    if ts.num_segments > DIRECT_SEGMENTS:
        raise InputError("--slo", "", f"a task set of at most {DIRECT_SEGMENTS} segments for "
                         f"the solver with SLOs (this one has {ts.num_segments}): a shorter "
                         "--horizon, a coarser granularity, or --policy P")
    due = {j: (int(ts.job_release_us[j]) + task.ttft_us, None)
           for task in ts.tasks if task.is_llm and task.ttft_us for j in task.job_range}
    problem = Problem(ts, token_deadlines=due)
    warm_name, warm, best = None, None, math.inf
    for name in POLICIES:  # the best policy within the TTFT SLOs seeds the search
        trace = simulate(ts, name).schedule
        metrics = evaluate(ts, trace)
        if (serves_every_request(ts, metrics) and not slo_misses(ts, metrics)
                and metrics["weighted_violations"] < best):
            warm_name, warm, best = name, firm_schedule(ts, trace), metrics["weighted_violations"]
    if progress:
        progress(f"solver with the TTFT SLOs as deadlines; warm start: {warm_name or 'none'}")
    out = solve_problem(problem, time_limit_s, workers, warm=warm, warm_name=warm_name,
                        stages=("violations", "ttft", "tpt"))
    if out.violations is not None and out.violations == 0 and out.replay_ok:
        misses = slo_misses(ts, out.metrics, tpt_only=True)
        if not misses:
            return Verdict(YES, "optimal", "a schedule meets every deadline and serves every "
                           "request within its TTFT and TPT SLOs (found by the solver)")
        return Verdict(UNKNOWN, "optimal", "a schedule meets every deadline and TTFT SLO, "
                       f"but {'; '.join(misses)}; the solver does not constrain TPT, so "
                       "whether another schedule meets it is not decided")
    return _no_or_unknown(out, "serves every request within its TTFT SLO")


def check(ts: TaskSet, policy: str | None = None, time_limit_s: float = 60.0,
          workers: int = 0, slo: bool = False, progress=None) -> Verdict:
    """Analytical tests first, then the policy or the solver. The analytical tests assume
    nominal durations: with timing uncertainty they run on the shortest durations and
    earliest ready times (a "no" there holds for every realization)."""
    from rtgen_opt.analysis.uncertainty import best_case_taskset

    verdict = analytical(best_case_taskset(ts) if ts.has_uncertainty else ts)
    if verdict is not None:
        verdict.question = (f"policy {_policy_name(policy)}, every realization" if policy
                            else "time-triggered table, these arrivals")
        return verdict
    if policy is not None:
        return check_policy(ts, policy, slo, time_limit_s, progress)
    if ts.has_uncertainty:
        return check_optimal_uncertain(ts, time_limit_s, workers, slo, progress)
    verdict = check_optimal(ts, time_limit_s, workers, slo, progress)
    verdict.question = "time-triggered table, these arrivals"
    return verdict


def check_optimal_uncertain(ts: TaskSet, time_limit_s: float, workers: int = 0,
                            slo: bool = False, progress=None) -> Verdict:
    """Optimal mode under timing uncertainty: "yes" — a time-triggered table works with
    every segment at its longest and every job ready at its latest; "no" — no schedule
    exists even at the shortest durations and earliest ready times; else "unknown"."""
    from rtgen_opt.analysis.uncertainty import best_case_taskset, worst_case_taskset

    question = "time-triggered table, these arrivals"
    say = progress or (lambda message: None)
    say("the solver, every segment at its longest and every job ready at its latest")
    worst = check_optimal(worst_case_taskset(ts), time_limit_s / 2, workers, slo, progress)
    if worst.verdict == YES:
        return Verdict(YES, "optimal", "a time-triggered table meets every deadline and "
                       "serves every request with every segment at its longest and every job "
                       "ready at its latest: started at its table times, it is safe for every "
                       "realization", question=question, status=worst.status)
    say("the solver, every segment at its shortest and every job ready at once")
    best = check_optimal(best_case_taskset(ts), time_limit_s / 2, workers, slo, progress)
    if best.verdict == NO:
        return Verdict(NO, "optimal", f"even at the shortest durations and earliest ready "
                       f"times: {best.reason}; so no policy can, in any realization",
                       question=question, status=best.status)
    return Verdict(UNKNOWN, "optimal", "not decided: at the longest durations "
                   f"({worst.reason}), at the shortest ({best.reason})", question=question,
                   status=worst.status or best.status)


def guarded_check(ts: TaskSet, policy: str | None = None, time_limit_s: float = 60.0,
                  workers: int = 0, slo: bool = False, progress=None, budget=None) -> Verdict:
    """:func:`check`, abandoned when ``budget``'s deadline passes (or Ctrl-C): an answer
    not found by then is "unknown" — the solver's fixed work (bounds) may otherwise run
    well past its share."""
    from rtgen_opt.supervise import TimeUp, cutoff

    try:
        with cutoff(budget):
            return check(ts, policy, time_limit_s, workers, slo, progress)
    except TimeUp:
        method = f"policy:{_policy_name(policy)}" if policy else "optimal"
        why = "interrupted" if budget.interrupted.is_set() else "the time limit was reached"
        return Verdict(UNKNOWN, method, f"not decided: {why} before an answer")


def guarded_margin(ts: TaskSet, policy, time_limit_s: float, slo: bool = False,
                   progress=None, budget=None) -> dict | None:
    """The critical scaling factor bracket (``uncertainty.margin``) within the budget;
    None when the time ran out first."""
    from rtgen_opt.analysis.uncertainty import margin
    from rtgen_opt.supervise import TimeUp, cutoff

    try:
        with cutoff(budget):
            return margin(ts, policy, time_limit_s, slo, progress=progress).as_dict()
    except TimeUp:
        return None


@dataclass
class FpsBracket:
    """What `check --max-fps` proved: rates tried with their verdicts, and the bracket.

    ``max_fps_proven``: the highest rate tried that is proven schedulable;
    ``min_fps_refuted``: the lowest rate tried that is proven not. Between them (when a
    probe ran out of time) lies the unknown band. Reading it as "every rate below
    max_fps_proven works" assumes that a higher rate is never easier."""

    task: str
    max_fps_proven: float | None
    min_fps_refuted: float | None
    tried: list[tuple[float, Verdict]]
    precision: float
    interrupted: bool = False

    @property
    def unknown_between(self) -> list[float] | None:
        """[low, high]: the band where no verdict was proven, when a probe in it was
        undecided (None when the bracket closed to the precision); high is None when no
        rate was refuted."""
        if not any(v.verdict == UNKNOWN for _, v in self.tried):
            return None
        return [self.max_fps_proven or 0.0, self.min_fps_refuted]

    @property
    def exit_code(self) -> int:
        if self.max_fps_proven is not None:
            return 0
        return 1 if self.min_fps_refuted is not None and self.unknown_between is None else 3

    def as_dict(self, scenario: str, method: str) -> dict:
        return {"scenario": scenario, "task": self.task, "method": method,
                "max_fps_proven": self.max_fps_proven, "min_fps_refuted": self.min_fps_refuted,
                "unknown_between": self.unknown_between, "precision_fps": self.precision,
                "interrupted": self.interrupted,
                "tried": [{"fps": f, "verdict": v.verdict, "method": v.method,
                           "reason": v.reason} for f, v in self.tried]}


def max_fps(scenario: Scenario, task: str, horizon: Fraction, policy: str | None,
            time_limit_s: float, workers: int = 0, precision: float = 0.5, slo: bool = False,
            budget=None, progress=None) -> FpsBracket:
    """Bracket the highest schedulable frame rate of ``task`` (deadline = period).

    The whole search shares ``time_limit_s``: each probe gets an a priori share (so a run
    with one worker is reproducible as long as the clock does not cut it), and the search
    stops when ``budget`` (a :class:`~rtgen_opt.supervise.Budget`) runs out, is
    interrupted, or has less time left than the longest probe so far took. A probe answered
    "unknown" does not move the bracket; the next probes narrow the band around it."""
    say = progress or (lambda m: None)
    spec = scenario.task(task)
    fastest_ms = min(scenario.db.layer_ms(spec.model, "frame", b, [spec.input_tokens or 0]).sum()
                     for b in scenario.platform if (spec.model, "frame", b) in scenario.db.curves)
    lo, hi = 0.0, math.floor(1000 / fastest_ms) + 1.0  # above hi a frame cannot fit its period
    probes = max(2, math.ceil(math.log2(max(2.0, (hi - lo) / precision))) + 2)
    each = time_limit_s / probes
    tried: list[tuple[float, Verdict]] = []
    proven, refuted = None, None

    def probe(fps: float) -> Verdict:
        fps = round(fps, 3)
        period = 1 / Fraction(str(fps))
        changed = replace(spec, period=period, deadline=period)
        s = replace(scenario, tasks=tuple(changed if t.name == task else t
                                          for t in scenario.tasks))
        verdict = guarded_check(build_taskset(s, horizon), policy, each, workers, slo,
                                budget=budget)
        tried.append((fps, verdict))
        say(f"{task} at {fps:g} FPS: {verdict.verdict} ({verdict.method})")
        return verdict

    durations: list[float] = []

    def stopped() -> bool:
        """Out of time, interrupted, or too little time left for another probe: probes
        overrun their share by the solver's fixed work (simulation, bounds), so one is only
        started when the time left covers the longest so far."""
        if budget is None:
            return False
        if budget.expired or budget.interrupted.is_set():
            return True
        if durations and budget.remaining() < max(durations):
            say(f"stopping: {budget.remaining():.0f} s left, a probe took up to "
                f"{max(durations):.0f} s")
            return True
        return False

    start = float(1 / spec.period) if spec.period else (lo + hi) / 2
    candidates = [min(max(start, precision), hi - precision)]
    while candidates and not stopped() and len(tried) < 4 * probes:
        fps = candidates.pop()
        began = time.monotonic()
        verdict = probe(fps)
        durations.append(time.monotonic() - began)
        if verdict.verdict == YES:
            proven = max(proven or 0.0, round(fps, 3))
        elif verdict.verdict == NO:
            refuted = round(fps, 3) if refuted is None else min(refuted, round(fps, 3))
        candidates = _next_probe(tried, proven, refuted, lo, hi, precision)
    return FpsBracket(task, proven, refuted, tried, precision,
                      interrupted=budget is not None and budget.interrupted.is_set())


def _next_probe(tried, proven, refuted, lo, hi, precision) -> list[float]:
    """The middle of the widest open gap of the bracket: between the highest proven rate
    (or the lowest rate worth trying) and the lowest undecided or refuted rate, or between
    the highest undecided rate and the lowest refuted one (or the physical limit)."""
    low = proven if proven is not None else lo
    high = refuted if refuted is not None else hi
    unknown = sorted(f for f, v in tried if v.verdict == UNKNOWN and low < f < high)
    gaps = [(low, unknown[0]), (unknown[-1], high)] if unknown else [(low, high)]
    gaps = [(a, b) for a, b in gaps if b - a > precision]
    if proven is None and refuted is not None and refuted <= precision:
        return []  # even the lowest rate worth trying is refuted
    if not gaps:
        if proven is None and not any(abs(f - precision) < 1e-9 for f, _ in tried) \
                and low < precision < high:
            return [precision]
        if refuted is None and not any(abs(f - hi) < 1e-9 for f, _ in tried):
            return [hi]  # the physical limit: job_fits refutes it at once
        return []
    a, b = max(gaps, key=lambda g: g[1] - g[0])
    return [(a + b) / 2]
