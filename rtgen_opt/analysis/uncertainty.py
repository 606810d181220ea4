"""`check` under timing uncertainty: a policy's verdict for every realization, the margin
it has, and what the optimum can promise (docs/check.md).

Policy mode answers "does P meet every deadline and serve every request for **every**
ready time and duration in their ranges?":

1. a cheap witness search (:mod:`witness_search`): a miss found is a proven "no";
2. the exact analysis (:mod:`schedule_graph`): no possible miss on any path is a proven
   "yes";
3. a possible miss there is not yet a proof: the search looks around it (and, where the
   analysis stopped before the clock did, everywhere); a witness makes it a "no", an
   enumeration of every realization that finishes a "yes", otherwise the answer is
   "unknown" and says what was explored.

A policy the exact analysis does not cover (kill-aware, a user's policy) can only get
"no" (a witness) or "unknown" — never a "yes" that no analysis backs.

Optimal mode answers two narrower questions honestly: "yes" — a time-triggered table
exists that works with every segment at its longest and every job ready at its latest (a
dispatcher that starts each segment at its table time is then safe for every realization,
for these request arrivals); "no" — no schedule exists even with every segment at its
shortest and every job ready at once (then no policy can); otherwise "unknown".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from rtgen_opt.analysis import schedule_graph, witness_search
from rtgen_opt.analysis.analysed_jobs import NotCovered
from rtgen_opt.analysis.schedule_graph import GraphResult
from rtgen_opt.analysis.witness_search import SearchReport, Witness
from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet
from rtgen_opt.simulation.policies.classic import POLICIES

YES, NO, UNKNOWN = "yes", "no", "unknown"
QUICK_SEARCH_SHARE = 0.1  # of the time limit, for the witness search before the analysis
QUICK_SEARCH_MAX_S = 5.0  # (a cap for large task sets: the count below decides elsewhere)
QUICK_SEARCH_REALIZATIONS = 64  # the fixed probes, then random ones: a "yes" of scenario_c
# at 10 s spent 5 s here (about 220 runs, a different number each time) before the analysis


@dataclass
class RobustAnswer:
    """The verdict for every realization, with its evidence."""

    verdict: str
    reason: str
    witness: Witness | None = None
    graph: GraphResult | None = None
    search: SearchReport | None = None

    def explored(self) -> dict:
        """What was explored, for the JSON ("analysis" key)."""
        out = {"realizations_tried": self.search.tried if self.search else 0,
               "every_realization_tried": bool(self.search and self.search.exhaustive)}
        if self.graph is not None:
            out["exact_analysis"] = {**self.graph.stats(), "complete": self.graph.complete,
                                     "stopped": self.graph.stopped}
        return out


def _policy(policy):
    return POLICIES[policy] if isinstance(policy, str) else policy


def check_every_realization(ts: TaskSet, policy, time_limit_s: float = 60.0,
                            slo: bool = False, seed: int = 0, progress=None) -> RobustAnswer:
    """Does ``policy`` meet every deadline (and serve every request) in every
    realization? See the module docstring for the three steps."""
    policy = _policy(policy)
    say = progress or (lambda message: None)
    start = time.monotonic()
    deadline = start + max(0.5, 0.95 * time_limit_s - 0.5)  # answer before the cutoff
    report = SearchReport()
    quick = start + min(QUICK_SEARCH_MAX_S, QUICK_SEARCH_SHARE * time_limit_s)
    say("looking for a realization that misses (witness search)")
    witness = witness_search.search(ts, policy, quick, seed, slo, report=report,
                                    limit=QUICK_SEARCH_REALIZATIONS)
    if witness:
        return _no(witness, report)
    if report.exhaustive:
        return _all_tried(policy, report)
    try:
        say("exact analysis of every dispatch order")
        graph = schedule_graph.explore(ts, policy, ts.seg_dur_lo_us, ts.seg_dur_hi_us,
                                       ts.job_jitter_us, slo, deadline, progress=say)
    except NotCovered as exc:
        return _search_only(ts, policy, deadline, seed, slo, report, str(exc))
    if graph.miss is None and graph.complete:
        return RobustAnswer(YES, f"{policy.name} meets every deadline and serves every request "
                            f"for every realization (exact analysis: {graph.states:,} states "
                            f"explored, {graph.merged:,} merged)", graph=graph, search=report)
    if graph.miss is None:  # the analysis stopped: the time left goes to the search
        witness = witness_search.search(ts, policy, deadline, seed + 1, slo, report=report)
        if witness:
            return _no(witness, report, graph)
        if report.exhaustive:
            return _all_tried(policy, report)
        return RobustAnswer(UNKNOWN, f"not decided: the exact analysis stopped ({graph.stopped}) "
                            f"after {graph.states:,} states and {graph.depth:,} of "
                            f"{ts.num_segments:,} segments; {report.tried:,} realizations "
                            "tried, none misses", graph=graph, search=report)
    miss = graph.miss
    window = (int(ts.job_release_us[miss.job]), miss.limit_us)
    say(f"the analysis finds a possible miss ({_describe(ts, miss)}); looking for a witness")
    witness = witness_search.search(ts, policy, deadline, seed + 1, slo, focus=window,
                                    report=report)
    if witness:
        return _no(witness, report, graph)
    return RobustAnswer(UNKNOWN, f"not decided: the exact analysis finds a possible miss "
                        f"({_describe(ts, miss)}) but none of {report.tried:,} realizations "
                        "tried reproduces it (the analysis over-approximates on several "
                        "backends)", graph=graph, search=report)


def _no(witness: Witness, report: SearchReport, graph: GraphResult | None = None) -> RobustAnswer:
    return RobustAnswer(NO, f"{'; '.join(witness.problems)} (witness: {witness.how} "
                        "realization)", witness, graph, report)


def _all_tried(policy, report: SearchReport) -> RobustAnswer:
    """Every integer realization ran without a miss: a proven "yes"."""
    return RobustAnswer(YES, f"{policy.name} meets every deadline and serves every request "
                        f"in each of the {report.tried:,} realizations (all of them)",
                        search=report)


def _search_only(ts, policy, deadline, seed, slo, report, why) -> RobustAnswer:
    witness = witness_search.search(ts, policy, deadline, seed + 1, slo, report=report)
    if witness:
        return _no(witness, report)
    if report.exhaustive:
        return _all_tried(policy, report)
    return RobustAnswer(UNKNOWN, f"not decided: {why}; {report.tried:,} realizations tried, "
                        "none misses (sampling proves nothing for every realization)",
                        search=report)


def _describe(ts: TaskSet, miss) -> str:
    task = ts.tasks[ts.job_task[miss.job]].name
    index = int(ts.job_index[miss.job])
    return (f"{task} #{index} may end at {miss.latest_us / 1000:.3f} ms, after its "
            f"{miss.kind} {miss.limit_us / 1000:.3f} ms")


# ----------------------------------------------------------------------------- margin


@dataclass(frozen=True)
class Margin:
    """The critical scaling factor bracket: every upper end x ``scaling_proven`` keeps the
    policy schedulable for every realization; x ``scaling_refuted`` it does not."""

    scaling_proven: float | None
    scaling_refuted: float | None
    probes: tuple[tuple[float, str], ...]

    def as_dict(self) -> dict:
        return {"scaling_proven": self.scaling_proven, "scaling_refuted": self.scaling_refuted,
                "probes": [{"factor": f, "verdict": v} for f, v in self.probes]}


MARGIN_STEPS = 7
MARGIN_MAX = 4.0


def scaled(ts: TaskSet, factor: float) -> TaskSet:
    """The task set with every duration's upper end x ``factor`` (rounded up; never below
    the nominal duration, which stays what policies decide with)."""
    eligible = ts.seg_dur_us != INELIGIBLE
    hi = np.ceil(ts.seg_dur_hi_us * factor - 1e-9).astype(np.int64)
    hi = np.where(eligible, np.maximum(hi, ts.seg_dur_us), INELIGIBLE)
    return replace(ts, seg_dur_hi_us=hi)


def margin(ts: TaskSet, policy, time_limit_s: float, slo: bool = False, seed: int = 0,
           progress=None, first: RobustAnswer | None = None) -> Margin:
    """Bracket the critical scaling factor: grow (x1.5) until refuted or shrink until
    proven, then bisect geometrically; an "unknown" probe narrows the search towards the
    proven side without moving the bracket. Each probe is a full check with an equal share
    of what is left of the time limit."""
    say = progress or (lambda message: None)
    end = time.monotonic() + time_limit_s
    proven = refuted = undecided = None
    probes: list[tuple[float, str]] = []
    factor: float | None = 1.0
    for step in range(MARGIN_STEPS):
        if factor is None or time.monotonic() >= end:
            break
        if step == 0 and first is not None:
            verdict = first.verdict
        else:
            say(f"margin: trying {factor:.3f} x the upper ends")
            share = (end - time.monotonic()) / (MARGIN_STEPS - step)
            verdict = check_every_realization(scaled(ts, factor), policy, share, slo,
                                              seed).verdict
        probes.append((round(factor, 4), verdict))
        if verdict == YES:
            proven = factor if proven is None else max(proven, factor)
        elif verdict == NO:
            refuted = factor if refuted is None else min(refuted, factor)
        else:
            undecided = factor if undecided is None else min(undecided, factor)
        factor = _next_factor(proven, refuted, undecided, factor)
    return Margin(proven, refuted, tuple(probes))


def _next_factor(proven, refuted, undecided, last) -> float | None:
    upper = min(x for x in (refuted, undecided, math.inf) if x is not None)
    if proven is not None and upper < math.inf:
        if upper / proven < 1.005:
            return None
        return round(math.sqrt(proven * upper), 4)
    if proven is not None:  # nothing refuted or undecided above: grow
        return None if last >= MARGIN_MAX else min(MARGIN_MAX, last * 1.5)
    if last <= 0.0625:
        return None
    return round(last / 1.5, 4)  # nothing proven yet: shrink (never below the nominal)


# ----------------------------------------------------------------------------- optimal mode


def worst_case_taskset(ts: TaskSet) -> TaskSet:
    """Every segment at its longest, every job ready at its latest (arrival + jitter), its
    deadline, give-up time and TTFT still counted from its arrival: a table that works
    here works, time-triggered, for every realization."""
    jitter = ts.job_jitter_us
    per_task = [int(jitter[t.job_range].max()) if t.num_jobs else 0 for t in ts.tasks]
    tasks = tuple(replace(t, give_up_us=None if t.give_up_us is None else t.give_up_us - j,
                          ttft_us=None if t.ttft_us is None else t.ttft_us - j)
                  for t, j in zip(ts.tasks, per_task))
    return replace(ts, tasks=tasks, seg_dur_us=ts.seg_dur_hi_us.copy(),
                   seg_dur_lo_us=ts.seg_dur_hi_us.copy(),
                   job_release_us=ts.job_release_us + jitter,
                   job_jitter_us=np.zeros_like(jitter))


def best_case_taskset(ts: TaskSet) -> TaskSet:
    """Every segment at its shortest, every job ready at its arrival: if no schedule
    exists here, none exists in any realization."""
    return replace(ts, seg_dur_us=ts.seg_dur_lo_us.copy(), seg_dur_hi_us=ts.seg_dur_lo_us.copy(),
                   job_jitter_us=np.zeros_like(ts.job_jitter_us))


def jitter_ms(ts: TaskSet) -> dict[str, float]:
    """The jitter of each task that has one, in ms (the ``assumptions`` of `check`)."""
    return {t.name: float(ts.job_jitter_us[t.job_range].max()) / 1000 for t in ts.tasks
            if t.num_jobs and ts.job_jitter_us[t.job_range].max() > 0}


__all__ = ["NO_DEADLINE", "YES", "NO", "UNKNOWN", "RobustAnswer", "check_every_realization",
           "Margin", "margin", "scaled", "worst_case_taskset", "best_case_taskset",
           "jitter_ms"]
