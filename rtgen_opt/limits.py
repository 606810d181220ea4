"""Input limits, and the size of a task set estimated before it is built.

Two kinds of limit protect every command from hostile or mistaken input:

* **Representable numbers.** Time is integer microseconds in int64 arrays (docs/semantics.md),
  and CP-SAT takes domains up to 2**62. With the bounds below and a task set that passes
  the memory check (at most ~10**7 segments of at most 3.6e9 µs each on one backend), every
  sum the tool forms — a release plus a deadline, a drain of 10 x a chain's standalone
  latency — stays below ~4e17 µs, an order of magnitude inside both. The bounds are far
  above any real scenario: a frame rate of 10**6 FPS, a stage of one hour, a horizon of 11
  days.
* **Memory.** A valid scenario can still expand into more jobs and segments than fit in
  memory (60 s at 60 FPS is thousands of jobs; 10**5 s at 1000 FPS is 10**8). The task
  set's size is estimated from the scenario alone — O(number of tasks), nothing is
  allocated — and refused with a suggestion when the estimate exceeds the memory limit
  (``--max-memory``, or the environment variable ``RTGEN_OPT_MAX_MEMORY``; default: half
  the physical memory, at most 8 GiB).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:  # scenario.py imports the bounds below
    from .scenario import Scenario, TaskSpec

# ------------------------------------------------------------------ representable numbers

MAX_DURATION_S = 10**6  # any duration in a file or on the command line (11.6 days)
MAX_RATE_HZ = 10**6  # fps and Poisson rates: a period of at least 1 µs
MIN_RATE_HZ = Fraction(1, MAX_DURATION_S)  # a period of at most MAX_DURATION_S
MAX_LATENCY_MS = 3_600_000  # one latency-database row (a stage or a layer): one hour
MAX_LAYERS = 100_000
MAX_SEQ_LEN = 10_000_000  # input tokens and database sequence lengths
MAX_OUTPUT_TOKENS = 1_000_000
MAX_INSTANCES = 1_024  # instances of one backend
MAX_TASKS = 1_000
MAX_ARRIVAL_TIMES = 100_000  # explicit `times:` of one task
MAX_WEIGHT = 10**6
MAX_SEED = 2**63 - 1
MAX_NAME_CHARS = 200  # task, model and backend names
MAX_WORKERS = 256  # CP-SAT rejects a model with tens of thousands of workers
MAX_SOLVER_SEED = 2**31 - 1  # CP-SAT's random_seed is an int32

# ------------------------------------------------------------------ file sizes

MAX_SCENARIO_BYTES = 256 * 2**10  # 1,000 tasks take about 60 KiB; parsing YAML is slow
MAX_DB_BYTES = 64 * 2**20
MAX_SCHEDULE_BYTES = 2 * 2**30

# ------------------------------------------------------------------ memory

# Bytes per job and per segment of a task set, with what a command builds from it (the
# executor's state, a schedule, the evaluator). Measured with peak RSS (``/usr/bin/time
# -f %M``) of ``simulate scenario_c --policy edf-dyn`` at 200 s and 2000 s: about 560 B
# per segment; ``taskset`` alone about 160 B. Rounded up.
BYTES_PER_SEGMENT = 700
BYTES_PER_JOB = 400
BASE_BYTES = 100 * 2**20  # the interpreter, NumPy, OR-Tools
MAX_MEMORY_ENV = "RTGEN_OPT_MAX_MEMORY"
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?\s*$",
                   re.ASCII)
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
               "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
DRAIN_FACTOR = 10  # as in taskset.py: a request gives up after 10 x its standalone latency


def parse_size(text: str, source: str) -> int:
    """A memory size like ``8GiB``, ``500MB`` or a number of bytes."""
    match = _SIZE.match(text) if isinstance(text, str) and len(text) < 40 else None
    if not match:
        raise InputError(source, "", "a memory size like 8GiB or 500MB", text)
    value = int(Fraction(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if value < BASE_BYTES:
        raise InputError(source, "", f"at least {BASE_BYTES // 2**20}MiB", text)
    return value


def default_max_memory() -> int:
    """Half the physical memory, at most 8 GiB (``RTGEN_OPT_MAX_MEMORY`` overrides it)."""
    env = os.environ.get(MAX_MEMORY_ENV)
    if env:
        return parse_size(env, MAX_MEMORY_ENV)
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 16 * 2**30
    return min(8 * 2**30, physical // 2)


_max_memory: int | None = None


def set_max_memory(limit: int | None) -> None:
    """Set the memory limit of this process (the CLI's ``--max-memory``)."""
    global _max_memory
    _max_memory = limit


def max_memory() -> int:
    return _max_memory if _max_memory is not None else default_max_memory()


# ------------------------------------------------------------------ the estimate


@dataclass(frozen=True)
class SizeEstimate:
    """Jobs, segments and bytes a task set will take (upper estimates)."""

    jobs: int
    segments: int
    task2segments: dict[str, int]

    @property
    def bytes(self) -> int:
        return BASE_BYTES + self.jobs * BYTES_PER_JOB + self.segments * BYTES_PER_SEGMENT


def estimate_size(scenario: Scenario, horizon: Fraction) -> SizeEstimate:
    """Estimate the task set of ``scenario`` over ``horizon`` seconds without building it.

    Counts are exact for periodic and ``every``/``times`` arrivals over the release window;
    the drain (continuing load) and Poisson arrivals are over-estimated (the give-up time
    from the slowest backend per stage; the mean count plus six standard deviations).
    """
    drain = _drain_upper(scenario) if scenario.after_horizon == "continue" else 0
    jobs = segments = 0
    task2segments = {}
    for spec in scenario.tasks:
        n = _num_jobs(spec, horizon, horizon + drain)
        per_job = _segments_per_job(scenario, spec)
        jobs += n
        segments += n * per_job
        task2segments[spec.name] = n * per_job
    return SizeEstimate(jobs, segments, task2segments)


def check_size(scenario: Scenario, horizon: Fraction | None) -> SizeEstimate | None:
    """Refuse (``InputError``, exit 2) a task set whose estimate exceeds the memory limit."""
    horizon = horizon if horizon is not None else scenario.horizon
    if horizon is None or horizon <= 0:
        return None  # build_taskset names the missing horizon
    estimate = estimate_size(scenario, horizon)
    limit = max_memory()
    if estimate.bytes > limit:
        biggest = max(estimate.task2segments, key=estimate.task2segments.get)
        raise InputError(
            scenario.source, f"horizon {float(horizon):g}s", f"a task set that fits in "
            f"{_gib(limit)} of memory (about {_count(estimate.jobs)} jobs and "
            f"{_count(estimate.segments)} segments need about {_gib(estimate.bytes)}; most "
            f"segments come from task {biggest}): shorten --horizon, lower the rates, coarsen "
            f"granularity (model, group:N) or raise --max-memory")
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
