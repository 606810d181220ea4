"""Looking for a realization under which a policy misses: the witness of a "no".

Non-preemptive schedules break where durations and ready times *combine* badly, not only
at their extremes (a segment that ends early lets a long one start). The search tries, in
order, the realizations most likely to break a schedule — nominal, every duration at its
longest and every job ready at its latest, every duration at its shortest, each backend
slow while the others are fast (and the reverse), then random realizations (uniform, and
corners: each value at an end of its range) — and, when the exact analysis points at a
possible miss, random realizations concentrated on the segments that run around it. On a
tiny task set it enumerates every integer realization instead, which makes the search
complete there.

Every witness is checked by running the executor on it: a witness is a realization that
the executor runs to a miss, nothing less.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.realization import Realization, nominal
from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet
from rtgen_opt.simulation.executor import simulate

EXHAUSTIVE_LIMIT = 20_000  # enumerate every realization when there are at most this many
FOCUS_MARGIN_US = 200_000  # a possible miss: vary the segments this long before it


@dataclass(frozen=True)
class Witness:
    """A realization and what the executor made of it."""

    realization: Realization
    how: str  # which probe found it
    problems: tuple[str, ...]  # the misses, phrased for a person


@dataclass
class SearchReport:
    """How much was tried, for "unknown" answers and the JSON."""

    tried: int = 0
    exhaustive: bool = False  # every realization was run (a "none found" is then a proof)


def problems(ts: TaskSet, metrics: dict, slo: bool = False) -> list[str]:
    """What makes a run fail the check: a frame violation, a starved request, a request
    not complete by the end of the drain (and with ``slo`` a TTFT or TPT above its SLO)."""
    found = [f"{name}: {t['violations']} of {t['released']} frames miss"
             for name, t in metrics["tasks"].items() if t["violations"]]
    for name, llm in metrics["llm"].items():
        if llm["starved"]:
            found.append(f"{name}: {llm['starved']} of {llm['requests']} requests starve")
        unfinished = llm["requests"] - llm["served"] - llm["starved"]
        if unfinished > 0:
            found.append(f"{name}: {unfinished} of {llm['requests']} requests unfinished at "
                         "the end of the drain")
        if slo:
            task = ts.tasks[ts.task_index(name)]
            ttft, tpt = llm["ttft_ms"]["max"], llm["tpt_ms"]["max"]
            if task.ttft_us and (ttft or 0) > task.ttft_us / 1000:
                found.append(f"{name}: TTFT up to {ttft:.1f} ms > SLO {task.ttft_us / 1000:g} ms")
            if task.tpt_us and (tpt or 0) > task.tpt_us / 1000:
                found.append(f"{name}: TPT up to {tpt:.1f} ms > SLO {task.tpt_us / 1000:g} ms")
    return found


def run(ts: TaskSet, policy, realization: Realization, slo: bool = False) -> list[str]:
    """The problems of one realization, as the executor runs it."""
    return problems(ts, evaluate(ts, simulate(ts, policy, realization).schedule), slo)


def search(ts: TaskSet, policy, deadline: float, seed: int = 0, slo: bool = False,
           focus: tuple[int, int] | None = None, report: SearchReport | None = None,
           limit: int | None = None) -> Witness | None:
    """The first realization that fails, trying the probes in order until ``deadline``
    (``time.monotonic()``) or, where the realizations are too many to enumerate, ``limit``
    of them (a count, not the clock: the answer is the same on every machine that gets
    that far). ``focus`` = (from, to) µs: also sample around that window."""
    report = report if report is not None else SearchReport()
    report.exhaustive = _count(ts) <= EXHAUSTIVE_LIMIT
    probes = _exhaustive(ts) if report.exhaustive else itertools.islice(
        _probes(ts, seed, focus), limit)
    earlier = report.tried  # an enumeration starts again from its first realization
    for n, (how, realization) in enumerate(probes, 1):
        if time.monotonic() > deadline:
            report.exhaustive = False
            return None
        report.tried = max(earlier, n) if report.exhaustive else report.tried + 1
        found = run(ts, policy, realization, slo)
        if found:
            return Witness(realization, how, tuple(found))
    return None


def _count(ts: TaskSet) -> int:
    """How many integer realizations there are (capped past the exhaustive limit)."""
    count = 1
    for width in itertools.chain(_duration_widths(ts), (ts.job_jitter_us + 1).tolist()):
        count *= int(width)
        if count > EXHAUSTIVE_LIMIT:
            return count
    return count


def _duration_widths(ts: TaskSet) -> list[int]:
    eligible = ts.seg_dur_us != INELIGIBLE
    return (ts.seg_dur_hi_us - ts.seg_dur_lo_us + 1)[eligible].tolist()


def _exhaustive(ts: TaskSet) -> Iterator[tuple[str, Realization]]:
    eligible = np.argwhere(ts.seg_dur_us != INELIGIBLE)
    ranges = [range(int(ts.seg_dur_lo_us[s, b]), int(ts.seg_dur_hi_us[s, b]) + 1)
              for s, b in eligible]
    ready_ranges = [range(int(r), int(r + j) + 1)
                    for r, j in zip(ts.job_release_us, ts.job_jitter_us)]
    for durations in itertools.product(*ranges):
        dur = ts.seg_dur_us.copy()
        dur[eligible[:, 0], eligible[:, 1]] = durations
        for ready in itertools.product(*ready_ranges):
            yield "exhaustive", Realization(np.array(ready, dtype=np.int64), dur)


def _probes(ts: TaskSet, seed: int, focus) -> Iterator[tuple[str, Realization]]:
    lo, hi = ts.seg_dur_lo_us, ts.seg_dur_hi_us
    early, late = ts.job_release_us, ts.job_release_us + ts.job_jitter_us
    yield "nominal", nominal(ts)
    yield "longest durations, latest ready times", Realization(late.copy(), hi.copy())
    yield "shortest durations, earliest ready times", Realization(early.copy(), lo.copy())
    yield "longest durations, earliest ready times", Realization(early.copy(), hi.copy())
    yield "shortest durations, latest ready times", Realization(late.copy(), lo.copy())
    for b, name in enumerate(ts.backends):
        slow = lo.copy()
        slow[:, b] = hi[:, b]
        yield f"{name} slow, the others fast", Realization(late.copy(), slow)
        fast = hi.copy()
        fast[:, b] = lo[:, b]
        yield f"{name} fast, the others slow", Realization(late.copy(), fast)
    rng = np.random.default_rng(seed)
    window = _window_mask(ts, focus)
    for k in itertools.count():
        kind = k % 4
        if kind == 3 and window is None:
            kind = k % 3
        if kind == 0:
            yield "random", _uniform(ts, rng, np.ones(ts.num_segments, dtype=bool))
        elif kind == 1:
            yield "random ends of ranges", _corners(ts, rng)
        elif kind == 2:
            mostly = hi.copy()
            few = rng.random(ts.num_segments) < 0.05
            mostly[few] = lo[few]
            yield "longest but a few shortest", Realization(late.copy(), mostly)
        else:
            yield "around the possible miss", _uniform(ts, rng, window)


def _uniform(ts: TaskSet, rng: np.random.Generator, which: np.ndarray) -> Realization:
    """Durations uniform in their ranges for the segments in ``which`` (nominal elsewhere),
    ready times uniform."""
    lo, hi = ts.seg_dur_lo_us, ts.seg_dur_hi_us
    dur = np.where(which[:, None], rng.integers(lo, hi + 1), ts.seg_dur_us)
    dur[ts.seg_dur_us == INELIGIBLE] = INELIGIBLE
    ready = ts.job_release_us + rng.integers(0, ts.job_jitter_us + 1)
    return Realization(ready, dur)


def _corners(ts: TaskSet, rng: np.random.Generator) -> Realization:
    pick = rng.random(ts.seg_dur_us.shape) < 0.5
    dur = np.where(pick, ts.seg_dur_lo_us, ts.seg_dur_hi_us)
    late = rng.random(ts.num_jobs) < 0.5
    ready = ts.job_release_us + np.where(late, ts.job_jitter_us, 0)
    return Realization(ready, dur)


def _window_mask(ts: TaskSet, focus) -> np.ndarray | None:
    """The segments of jobs that arrive in the window before a possible miss."""
    if focus is None:
        return None
    start, end = focus
    deadline = np.where(ts.job_deadline_us == NO_DEADLINE, ts.end_us, ts.job_deadline_us)
    jobs = (ts.job_release_us <= end) & (deadline >= start - FOCUS_MARGIN_US)
    return jobs[ts.seg_job]
