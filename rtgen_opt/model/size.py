"""The size of a task set, estimated from the scenario before anything is allocated, and
the memory check that refuses a task set which would not fit (``--max-memory``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from rtgen_opt.errors import InputError
from rtgen_opt.limits import BASE_BYTES, BYTES_PER_JOB, BYTES_PER_SEGMENT, DRAIN_FACTOR, max_memory
from rtgen_opt.model.scenario import Scenario, TaskSpec

# Bytes per segment of one job's template, per backend and beyond: every task's first job
# is built whole (durations, bounds, stage, step and token per segment, then joined), even
# a task with no job in the horizon. Measured with peak RSS of `build_taskset` on an LLM of
# 4 million segments per job: 84 B with one backend, 178 B with three. Rounded up.
TEMPLATE_BYTES = 64
TEMPLATE_BYTES_PER_BACKEND = 48


@dataclass(frozen=True)
class SizeEstimate:
    """Jobs, segments and bytes a task set will take (upper estimates)."""

    jobs: int
    segments: int
    task2segments: dict[str, int]
    task2bytes: dict[str, int] = field(default_factory=dict)  # each task's share of bytes

    @property
    def bytes(self) -> int:
        return BASE_BYTES + sum(self.task2bytes.values())


def estimate_size(scenario: Scenario, horizon: Fraction) -> SizeEstimate:
    """Estimate the task set of ``scenario`` over ``horizon`` seconds without building it.

    Counts are exact for periodic and ``every``/``times`` arrivals over the release window;
    the drain (continuing load) and Poisson arrivals are over-estimated (the give-up time
    from the slowest backend per stage; the mean count plus six standard deviations). The
    bytes count each task's jobs and segments and its one-job template (``TEMPLATE_BYTES``:
    an LLM's output_tokens x layers segments, built even when no job falls in the horizon).
    """
    drain = _drain_upper(scenario) if scenario.after_horizon == "continue" else 0
    per_template = TEMPLATE_BYTES + TEMPLATE_BYTES_PER_BACKEND * len(scenario.platform)
    jobs = segments = 0
    task2segments, task2bytes = {}, {}
    for spec in scenario.tasks:
        n = _num_jobs(spec, horizon, horizon + drain)
        per_job = _segments_per_job(scenario, spec)
        jobs += n
        segments += n * per_job
        task2segments[spec.name] = n * per_job
        task2bytes[spec.name] = (n * BYTES_PER_JOB + n * per_job * BYTES_PER_SEGMENT
                                 + per_job * per_template)
    return SizeEstimate(jobs, segments, task2segments, task2bytes)


def check_size(scenario: Scenario, horizon: Fraction | None) -> SizeEstimate | None:
    """Refuse (``InputError``, exit 2) a task set whose estimate exceeds the memory limit,
    naming the task that takes the most and what makes it large."""
    horizon = horizon if horizon is not None else scenario.horizon
    if horizon is None or horizon <= 0:
        return None  # build_taskset names the missing horizon
    estimate = estimate_size(scenario, horizon)
    limit = max_memory()
    if estimate.bytes > limit:
        biggest = max(estimate.task2bytes, key=estimate.task2bytes.get)
        per_job = _segments_per_job(scenario, scenario.task(biggest))
        raise InputError(
            scenario.source, f"horizon {float(horizon):g}s", f"a task set that fits in "
            f"{_gib(limit)} of memory (about {_count(estimate.jobs)} jobs and "
            f"{_count(estimate.segments)} segments need about {_gib(estimate.bytes)}; most "
            f"of it is task {biggest}: {_count(estimate.task2segments[biggest])} segments, "
            f"{_count(per_job)} per job): shorten --horizon, lower the rates, coarsen "
            f"granularity (model, group:N), shorten output_tokens or raise --max-memory")
    return estimate


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**7 else f"{n / 1e6:,.0f} million"


def _num_jobs(spec: TaskSpec, horizon: Fraction, release_end: Fraction) -> int:
    if spec.kind == "periodic":
        return max(0, math.ceil((release_end - spec.phase) / spec.period))
    arrivals = spec.arrivals
    if arrivals is None:
        return 0
    if arrivals.kind == "every":
        return max(0, math.ceil((horizon - arrivals.start) / arrivals.every))
    if arrivals.kind == "times":
        return sum(1 for t in arrivals.times if t < horizon)
    mean = max(0.0, float(horizon - arrivals.start)) * arrivals.rate
    return math.ceil(mean + 6 * math.sqrt(mean) + 1)


def _segments_per_job(scenario: Scenario, spec: TaskSpec) -> int:
    db, total = scenario.db, 0
    for stage in db.stages(spec.model):
        layers = db.stage2layers[spec.model, stage]
        per_step = math.ceil(layers / min(scenario.layers_per_segment(layers), layers))
        steps = max(0, (spec.output_tokens or 1) - 1) if stage == "decode" else 1
        total += per_step * steps
    return total


def _drain_upper(scenario: Scenario) -> Fraction:
    """An upper estimate of the drain: the longest give-up time or relative deadline."""
    deadlines = [t.deadline for t in scenario.tasks if t.deadline is not None]
    if scenario.drain is not None:
        return max([scenario.drain] + deadlines)
    by_name = {t.name: t for t in scenario.tasks}
    give_ups = []
    for spec in scenario.tasks:
        if spec.kind != "request":
            continue
        chain, current, seen = Fraction(0), spec, set()
        while current is not None and current.name not in seen:
            seen.add(current.name)
            chain += _standalone_upper_s(scenario, current)
            current = by_name.get(current.after) if current.after else None
        give_ups.append(DRAIN_FACTOR * chain)
    return max(give_ups + deadlines + [Fraction(0)])


def _standalone_upper_s(scenario: Scenario, spec: TaskSpec) -> Fraction:
    """One job alone, each stage on its fastest backend of the platform, decode steps at
    their slowest context (transfers ignored: the estimate is within a small factor)."""
    db, total_ms = scenario.db, 0.0
    for stage in db.stages(spec.model):
        steps = max(0, (spec.output_tokens or 1) - 1) if stage == "decode" else 1
        if not steps:
            continue
        best = math.inf
        for backend in scenario.platform:
            curve = db.curves.get((spec.model, stage, backend))
            if curve is None:
                continue
            per_step = float(curve.layer_ms.sum(axis=1).max())  # the slowest listed length
            best = min(best, per_step)
        if math.isfinite(best):
            total_ms += best * steps
    return Fraction(total_ms) / 1000
