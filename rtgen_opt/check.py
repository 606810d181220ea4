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
  "unknown within the time limit" (not schedulable, said plainly).

Why each analytical test is necessary (a schedulable scenario passes all of them):

* ``job_fits`` — a job whose fastest chain (each segment on its fastest backend) is longer
  than its window from release to deadline misses in every schedule.
* ``backend_load`` — over each hyperperiod window [kH, (k+1)H], the jobs released and due
  inside it must run inside it. Restricted to a set S of backends, the jobs that can only
  meet their deadline on backends of S need at least Σ min_{b in S} work, at most
  Σ_{b in S} instances x H is available: energetic counting, with each job on its cheapest
  usable backend (splitting work across backends only helps the sum).
* ``llm_fits`` — an LLM request's first-token work, at its fastest, must fit between its
  arrival and its give-up time.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from .executor import simulate
from .metrics import evaluate
from .scenario import Scenario
from .taskset import INELIGIBLE, NO_DEADLINE, TaskSet, build_taskset


@dataclass
class Verdict:
    schedulable: bool
    method: str  # analytical test name, "policy:NAME", "optimal"
    reason: str
    proven: bool = True  # False: "unknown within the time limit"

    def as_dict(self, scenario: str) -> dict:
        return {"scenario": scenario, "schedulable": self.schedulable, "method": self.method,
                "reason": self.reason}


# ----------------------------------------------------------------------------- analytical


def job_fits(ts: TaskSet) -> str | None:
    for task in ts.tasks:
        if task.deadline_us is None or not task.num_jobs:
            continue
        j = task.first_job
        fastest = sum(ts.fastest_us(s) for s in ts.job_segments(j))
        if fastest > task.deadline_us:
            return (f"{task.name} ({task.model}) needs {fastest / 1000:.2f} ms on its fastest "
                    f"backend, more than its {task.deadline_us / 1000:.2f} ms deadline: every "
                    "frame misses")
    return None


def backend_load(ts: TaskSet) -> str | None:
    if ts.hyperperiod_s is None:
        return None
    hyper = int(ts.hyperperiod_s * 1_000_000)
    firm = np.flatnonzero(ts.job_deadline_us != NO_DEADLINE)
    if hyper <= 0 or not len(firm):
        return None
    names = ts.backends
    for k in range(max(1, ts.horizon_us // hyper)):
        a, b = k * hyper, (k + 1) * hyper
        inside = firm[(ts.job_release_us[firm] >= a) & (ts.job_deadline_us[firm] <= b)]
        if not len(inside):
            continue
        work = {j: _work(ts, j) for j in inside.tolist()}  # backend -> chain time, usable only
        for size in range(1, len(names) + 1):
            for subset in itertools.combinations(range(len(names)), size):
                bound = [j for j, w in work.items() if w and set(w) <= set(subset)]
                need = sum(min(work[j][b_] for b_ in subset if b_ in work[j]) for j in bound)
                have = sum(ts.instances[b_] for b_ in subset) * hyper
                if need > have:
                    where = "+".join(names[b_] for b_ in subset)
                    tasks = sorted({ts.tasks[ts.job_task[j]].name for j in bound})
                    only = ("the only backend fast enough for them" if size == 1 else
                            "the only backends fast enough for them")
                    return (f"{', '.join(tasks)} need {100 * need / have:.0f} % of the "
                            f"{where} ({only}) in every {hyper / 1000:g} ms hyperperiod, "
                            "even alone")
        break  # periodic: one hyperperiod tells for all (requests are checked apart)
    return None


def llm_fits(ts: TaskSet) -> str | None:
    for task in ts.tasks:
        if not task.is_llm or not task.num_jobs or task.give_up_us is None:
            continue
        j = task.first_job
        segs = ts.job_segments(j)
        first = segs.start + int(np.flatnonzero(ts.seg_token[segs.start:segs.stop] == 1)[0])
        need = sum(ts.fastest_us(s) for s in range(segs.start, first + 1))
        pred = int(ts.job_after[j])
        if pred >= 0:
            need += sum(ts.fastest_us(s) for s in ts.job_segments(pred))
        if need > task.give_up_us:
            return (f"{task.name} needs {need / 1000:.0f} ms to its first token at best, "
                    f"longer than its {task.give_up_us / 1000:.0f} ms drain limit")
    return None


def _work(ts: TaskSet, job: int) -> dict[int, int]:
    """Chain time on each backend that can run every segment within the job's window."""
    window = int(ts.job_deadline_us[job] - ts.job_release_us[job])
    segs = list(ts.job_segments(job))
    out = {}
    for b in range(len(ts.backends)):
        d = ts.seg_dur_us[segs, b]
        if np.all(d != INELIGIBLE) and d.sum() <= window:
            out[b] = int(d.sum())
    return out


ANALYTICAL = {"job_fits": job_fits, "llm_fits": llm_fits, "backend_load": backend_load}


def analytical(ts: TaskSet) -> Verdict | None:
    """The first failing necessary condition, or None when all pass."""
    for name, test in ANALYTICAL.items():
        reason = test(ts)
        if reason:
            return Verdict(False, f"analytical:{name}", reason)
    return None


# ----------------------------------------------------------------------------- methods


def check_policy(ts: TaskSet, policy: str, slo: bool = False) -> Verdict:
    metrics = evaluate(ts, simulate(ts, policy).schedule)
    problems = [f"{n}: {t['violations']} of {t['released']} frames miss"
                for n, t in metrics["tasks"].items() if t["violations"]]
    for name, llm in metrics["llm"].items():
        if llm["starved"]:
            problems.append(f"{name}: {llm['starved']} of {llm['requests']} requests starve")
        task = ts.tasks[ts.task_index(name)]
        if slo and task.ttft_us and (llm["ttft_ms"]["max"] or 0) > task.ttft_us / 1000:
            problems.append(f"{name}: TTFT up to {llm['ttft_ms']['max']:.0f} ms > SLO "
                            f"{task.ttft_us / 1000:g} ms")
        if slo and task.tpt_us and (llm["tpt_ms"]["max"] or 0) > task.tpt_us / 1000:
            problems.append(f"{name}: TPT up to {llm['tpt_ms']['max']:.1f} ms > SLO "
                            f"{task.tpt_us / 1000:g} ms")
    if problems:
        return Verdict(False, f"policy:{policy}", "; ".join(problems))
    return Verdict(True, f"policy:{policy}", f"{policy} meets every deadline and serves every "
                   "request" + (" within its SLOs" if slo else ""))


def check_optimal(ts: TaskSet, time_limit_s: float, workers: int = 0) -> Verdict:
    from .solve import solve

    out = solve(ts, time_limit_s, workers)
    if out.violations is not None and out.violations == 0 and out.replay_ok:
        return Verdict(True, "optimal", "a schedule meets every deadline and serves every "
                       f"request (found by the solver{', warm start ' + out.warm_start if out.warm_start else ''})")
    if out.violations_lower_bound >= 1:
        return Verdict(False, "optimal", f"no schedule can: at least "
                       f"{out.violations_lower_bound:g} weighted frame violations are "
                       "unavoidable (proven lower bound)")
    if out.status.value == "INFEASIBLE":
        return Verdict(False, "optimal", "no schedule serves every request")
    best = "none found" if out.violations is None else f"the best found has {out.violations:g}"
    return Verdict(False, "optimal", f"unknown within the time limit: {best} violations and "
                   "no proof that 0 is impossible", proven=False)


def check(ts: TaskSet, policy: str | None = None, time_limit_s: float = 60.0,
          workers: int = 0, slo: bool = False) -> Verdict:
    """Analytical tests first, then the policy or the solver."""
    verdict = analytical(ts)
    if verdict is not None:
        return verdict
    if policy is not None:
        return check_policy(ts, policy, slo)
    return check_optimal(ts, time_limit_s, workers)


def max_fps(scenario: Scenario, task: str, horizon: Fraction, policy: str | None,
            time_limit_s: float, workers: int = 0, precision: float = 0.5
            ) -> tuple[float | None, list[tuple[float, bool]]]:
    """The highest frame rate of ``task`` that stays schedulable, by bisection (assumes a
    higher rate is never easier). None when even the lowest tried rate is not."""
    spec = scenario.task(task)
    fastest_ms = min(scenario.db.layer_ms(spec.model, "frame", b, [spec.input_tokens or 0]).sum()
                     for b in scenario.platform if (spec.model, "frame", b) in scenario.db.curves)
    lo, hi = 0.0, math.floor(1000 / fastest_ms) + 1.0  # above hi a frame cannot fit its period
    tried = []

    def ok(fps: float) -> bool:
        period = 1 / Fraction(str(round(fps, 3)))
        changed = replace(spec, period=period, deadline=period)
        s = replace(scenario, tasks=tuple(changed if t.name == task else t
                                          for t in scenario.tasks))
        verdict = check(build_taskset(s, horizon), policy, time_limit_s, workers)
        tried.append((round(fps, 3), verdict.schedulable))
        return verdict.schedulable

    if not ok(precision):
        return None, tried
    lo = precision
    while hi - lo > precision:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return round(lo, 3), tried
