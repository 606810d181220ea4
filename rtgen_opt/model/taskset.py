"""Task-set expansion: scenario + latency database + horizon -> jobs and segments.

The one structure both the executor and the formulations consume. It is a handful of
NumPy arrays (structure of arrays), not millions of Python objects:

* jobs, contiguous per task in scenario order: ``job_task``, ``job_index`` (k within its
  task), ``job_release_us``, ``job_deadline_us`` (absolute, ``NO_DEADLINE`` when none),
  ``job_after`` (the job it waits for, or -1) and ``job_seg_start`` (CSR offsets: the
  segments of job j are ``job_seg_start[j]:job_seg_start[j + 1]``, in chain order);
* segments: ``seg_job``, ``seg_stage`` (``FRAME``/``PREFILL``/``DECODE``), ``seg_step``
  (decode step, 0 otherwise), ``seg_token`` (the token emitted when the segment completes:
  1 for the last prefill segment, k + 1 for the last segment of decode step k, else 0) and
  ``seg_dur_us[s, b]`` (integer µs on backend b, ``INELIGIBLE`` where it cannot run).

Timing uncertainty (docs/semantics.md): ``seg_dur_lo_us``/``seg_dur_hi_us`` bound each
segment's actual duration per backend (equal to ``seg_dur_us`` without uncertainty): the
database's ``latency_min_ms``/``latency_max_ms`` where a row has them (split over layers as
the nominal is; min rounded down, max up), else ``floor(lo x nominal)`` and
``ceil(hi x nominal)`` from the scenario's ``execution: [lo, hi]``; never below 1 µs.
``job_jitter_us`` is each job's release jitter (rounded up): it is ready anywhere in
``[release, release + jitter]``.

An LLM request of N output tokens is its prefill (which emits token 1) followed by N - 1
decode steps (step k emits token k + 1 at context length input_tokens + k), so that
TTFT = token 1 - arrival and TPT = (token N - token 1) / (N - 1) (docs/semantics.md).

Rounding (docs/semantics.md): releases to the nearest µs from the exact value (no drift),
durations up, relative deadlines down.
"""

from __future__ import annotations

import json
import math
from collections.abc import Container
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from rtgen_opt.errors import InputError
from rtgen_opt.limits import DRAIN_FACTOR
from rtgen_opt.model.scenario import Scenario, TaskSpec
from rtgen_opt.units import US_PER_S, lcm_fraction, to_us_down, to_us_nearest, to_us_up

FRAME, PREFILL, DECODE = 0, 1, 2
STAGE_NAMES = ("frame", "prefill", "decode")
NO_DEADLINE = np.iinfo(np.int64).max
INELIGIBLE = -1


@dataclass(frozen=True)
class TaskInfo:
    """A task of the task set, with its times in integer µs."""

    name: str
    model: str
    kind: str  # "periodic" | "request"
    is_llm: bool
    weight: float
    first_job: int
    num_jobs: int
    segs_per_job: int
    period_us: float | None = None  # exact period in µs (float, for display/utilization)
    deadline_us: int | None = None  # relative deadline, rounded down
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttft_us: int | None = None
    tpt_us: int | None = None
    after: int | None = None  # task index it waits for
    standalone_us: int = 0  # one job alone on the platform, best backend per segment
    give_up_us: int | None = None  # requests: starved without a first token by arrival + this

    @property
    def job_range(self) -> range:
        return range(self.first_job, self.first_job + self.num_jobs)


@dataclass(frozen=True, eq=False)
class TaskSet:
    """Jobs and segments of a scenario over a horizon (see the module docstring)."""

    scenario: str
    horizon_us: int
    hyperperiod_s: Fraction | None
    drain_us: int  # frames keep coming in [horizon, horizon + drain) (continuing load)
    end_us: int  # the end of the run: every job's deadline, every request's give-up time
    after_horizon: str  # "continue" (frames go on through the drain) | "stop"
    granularity: str
    on_miss: str
    preemption: str
    backends: tuple[str, ...]
    instances: tuple[int, ...]
    tasks: tuple[TaskInfo, ...]
    aot_mapping: tuple[tuple[int, ...], ...]  # [task][stage] -> backend index, -1 if n/a
    transfer_us: np.ndarray  # (tasks, backends, backends)
    job_task: np.ndarray
    job_index: np.ndarray
    job_release_us: np.ndarray
    job_deadline_us: np.ndarray
    job_after: np.ndarray
    job_seg_start: np.ndarray
    seg_job: np.ndarray
    seg_stage: np.ndarray
    seg_step: np.ndarray
    seg_token: np.ndarray
    seg_dur_us: np.ndarray
    seg_dur_lo_us: np.ndarray  # shortest actual duration (same shape as seg_dur_us)
    seg_dur_hi_us: np.ndarray  # longest actual duration
    job_jitter_us: np.ndarray  # ready anywhere in [release, release + jitter]

    @property
    def has_uncertainty(self) -> bool:
        """Some duration or ready time is a range rather than a point."""
        return bool(self.job_jitter_us.any()) or not (
            np.array_equal(self.seg_dur_lo_us, self.seg_dur_us)
            and np.array_equal(self.seg_dur_hi_us, self.seg_dur_us))

    @property
    def num_jobs(self) -> int:
        return len(self.job_task)

    @property
    def num_segments(self) -> int:
        return len(self.seg_job)

    @property
    def release_end_us(self) -> int:
        """Periodic releases (and, under ``stop``, all releases) lie before this time."""
        return self.horizon_us + (self.drain_us if self.after_horizon == "continue" else 0)

    @property
    def job_in_drain(self) -> np.ndarray:
        """Mask of the jobs released after the horizon (frames of the continuing load)."""
        return self.job_release_us >= self.horizon_us

    def job_segments(self, job: int) -> range:
        return range(int(self.job_seg_start[job]), int(self.job_seg_start[job + 1]))

    def chain(self, job: int, within: Container[int] | None = None) -> list[int]:
        """``job`` and the jobs it waits for (``after``), nearest first: its predecessor,
        that one's predecessor, ... Given ``within``, the walk stops before the first
        predecessor not in it (``job`` itself is always first)."""
        chain = [job]
        pred = int(self.job_after[job])
        while pred >= 0 and (within is None or pred in within):
            chain.append(pred)
            pred = int(self.job_after[pred])
        return chain

    def fastest_us(self, seg: int) -> int:
        """The segment's shortest duration over the backends that can run it."""
        durations = self.seg_dur_us[seg]
        return int(durations[durations != INELIGIBLE].min())

    def task_index(self, name: str) -> int:
        return next(i for i, t in enumerate(self.tasks) if t.name == name)

    def summary(self) -> dict:
        """The `taskset` JSON (docs/files-and-output.md)."""
        return {
            "scenario": self.scenario,
            "horizon_s": self.horizon_us / US_PER_S,
            "drain_s": self.drain_us / US_PER_S,
            "after_horizon": self.after_horizon,
            "hyperperiod_s": None if self.hyperperiod_s is None else float(self.hyperperiod_s),
            "jobs": self.num_jobs,
            "segments": self.num_segments,
            "tasks": {t.name: {"jobs": t.num_jobs, "segments": t.num_jobs * t.segs_per_job,
                               "drain_jobs": int(self.job_in_drain[t.job_range].sum())}
                      for t in self.tasks},
        }

    # ------------------------------------------------------------------ JSON round trip

    _ARRAYS = ("transfer_us", "job_task", "job_index", "job_release_us", "job_deadline_us",
               "job_after", "job_seg_start", "seg_job", "seg_stage", "seg_step", "seg_token",
               "seg_dur_us", "seg_dur_lo_us", "seg_dur_hi_us", "job_jitter_us")

    def to_json(self) -> str:
        """The complete task set as JSON (arrays as nested lists)."""
        data = {
            "scenario": self.scenario, "horizon_us": self.horizon_us,
            "hyperperiod_s": None if self.hyperperiod_s is None else str(self.hyperperiod_s),
            "drain_us": self.drain_us, "end_us": self.end_us,
            "after_horizon": self.after_horizon, "granularity": self.granularity,
            "on_miss": self.on_miss, "preemption": self.preemption,
            "backends": list(self.backends), "instances": list(self.instances),
            "tasks": [t.__dict__ for t in self.tasks],
            "aot_mapping": [list(m) for m in self.aot_mapping],
        }
        data.update({name: getattr(self, name).tolist() for name in self._ARRAYS})
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> TaskSet:
        data = json.loads(text)
        arrays = {name: np.asarray(data.pop(name), dtype=np.int64) for name in cls._ARRAYS}
        if arrays["transfer_us"].ndim != 3:  # an empty list loses its shape
            arrays["transfer_us"] = arrays["transfer_us"].reshape(
                len(data["tasks"]), len(data["backends"]), len(data["backends"]))
        for name in ("seg_dur_us", "seg_dur_lo_us", "seg_dur_hi_us"):
            if arrays[name].ndim != 2:
                arrays[name] = arrays[name].reshape(0, len(data["backends"]))
        hp = data.pop("hyperperiod_s")
        return cls(
            **{k: v for k, v in data.items() if k not in ("tasks", "aot_mapping", "backends",
                                                          "instances")},
            hyperperiod_s=None if hp is None else Fraction(hp),
            backends=tuple(data["backends"]), instances=tuple(data["instances"]),
            tasks=tuple(TaskInfo(**t) for t in data["tasks"]),
            aot_mapping=tuple(tuple(m) for m in data["aot_mapping"]), **arrays)

    def equals(self, other: TaskSet) -> bool:
        """Field-by-field equality (arrays compared element-wise)."""
        scalars = ("scenario", "horizon_us", "hyperperiod_s", "drain_us", "end_us",
                   "after_horizon", "granularity",
                   "on_miss", "preemption", "backends", "instances", "tasks", "aot_mapping")
        return all(getattr(self, f) == getattr(other, f) for f in scalars) and all(
            np.array_equal(getattr(self, a), getattr(other, a)) for a in self._ARRAYS)


# ---------------------------------------------------------------------------- expansion


def build_taskset(scenario: Scenario, horizon: Fraction | None = None) -> TaskSet:
    """Expand ``scenario`` over ``horizon`` seconds (default: the scenario's own)."""
    horizon = horizon if horizon is not None else scenario.horizon
    if horizon is None:
        raise InputError(scenario.source, "horizon", "a horizon: add `horizon: 60s` to the "
                         "scenario or pass --horizon", "nothing")
    if horizon <= 0:
        raise InputError(scenario.source, "horizon", "a positive duration", str(horizon))
    backends = tuple(scenario.platform)
    names = [t.name for t in scenario.tasks]
    horizon_us = to_us_nearest(horizon)
    after_horizon = scenario.after_horizon

    templates = [_template(scenario, t, backends) for t in scenario.tasks]
    transfer = np.array([[[_transfer_us(scenario, t.model, a, b) for b in backends]
                          for a in backends] for t in scenario.tasks], dtype=np.int64)
    # task timing first (standalone latency, give-up time): the drain depends on it
    timing = [_task_info(spec, names, 0, 0, len(tpl[0]), _standalone_us(tpl[3], tr))
              for spec, tpl, tr in zip(scenario.tasks, templates, transfer)]
    timing = _with_give_up(scenario, [_with_chain_standalone(t, timing) for t in timing])
    requests = {i: _releases(spec, horizon) for i, spec in enumerate(scenario.tasks)
                if spec.kind == "request"}
    drain_us, end_us = _run_length(timing, requests, horizon_us, after_horizon)
    release_end = horizon + (Fraction(drain_us, US_PER_S) if after_horizon == "continue"
                             else 0)
    releases = [requests[i] if i in requests else _releases(spec, release_end)
                for i, spec in enumerate(scenario.tasks)]

    tasks, first = [], 0
    for info, rel in zip(timing, releases):
        tasks.append(TaskInfo(**{**info.__dict__, "first_job": first, "num_jobs": len(rel)}))
        first += len(rel)

    job_task = np.concatenate([np.full(len(r), i, dtype=np.int64)
                               for i, r in enumerate(releases)])
    job_index = np.concatenate([np.arange(len(r), dtype=np.int64) for r in releases])
    job_release = np.concatenate(releases).astype(np.int64)
    rel_deadline = np.array([NO_DEADLINE if t.deadline_us is None else t.deadline_us
                             for t in tasks], dtype=np.int64)[job_task]
    job_deadline = np.where(rel_deadline == NO_DEADLINE, NO_DEADLINE,
                            job_release + np.minimum(rel_deadline, NO_DEADLINE // 2))
    job_after = _after_links(tasks, job_task, job_index)

    segs_per_job = np.array([t.segs_per_job for t in tasks], dtype=np.int64)[job_task]
    job_seg_start = np.concatenate([[0], np.cumsum(segs_per_job)]).astype(np.int64)
    seg_job = np.repeat(np.arange(len(job_task), dtype=np.int64), segs_per_job)
    parts = [[np.tile(tpl[k], (t.num_jobs, 1) if k >= 3 else t.num_jobs)
              for t, tpl in zip(tasks, templates)] for k in range(6)]
    stage, step, token = (np.concatenate(p).astype(np.int64) for p in parts[:3])
    dur, dur_lo, dur_hi = (np.concatenate(p).astype(np.int64).reshape(-1, len(backends))
                           for p in parts[3:])
    jitter = np.array([to_us_up(spec.jitter) for spec in scenario.tasks],
                      dtype=np.int64)[job_task]

    return TaskSet(
        scenario=scenario.name, horizon_us=horizon_us, hyperperiod_s=_hyperperiod(scenario),
        drain_us=drain_us, end_us=end_us, after_horizon=after_horizon,
        granularity=scenario.granularity, on_miss=scenario.on_miss,
        preemption=scenario.preemption, backends=backends,
        instances=tuple(scenario.platform.values()), tasks=tuple(tasks),
        aot_mapping=tuple(_aot_mapping(scenario, spec, tpl, backends)
                          for spec, tpl in zip(scenario.tasks, templates)),
        transfer_us=transfer, job_task=job_task, job_index=job_index,
        job_release_us=job_release, job_deadline_us=job_deadline, job_after=job_after,
        job_seg_start=job_seg_start, seg_job=seg_job, seg_stage=stage, seg_step=step,
        seg_token=token, seg_dur_us=dur, seg_dur_lo_us=dur_lo, seg_dur_hi_us=dur_hi,
        job_jitter_us=jitter)


def _releases(spec: TaskSpec, horizon: Fraction) -> np.ndarray:
    """Release times in µs of the task's jobs within [0, horizon)."""
    if spec.kind == "periodic":
        count = max(0, math.ceil((horizon - spec.phase) / spec.period))
        return _nearest_us(spec.phase, spec.period, count)
    arrivals = spec.arrivals
    if arrivals.kind == "every":
        count = max(0, math.ceil((horizon - arrivals.start) / arrivals.every))
        return _nearest_us(arrivals.start, arrivals.every, count)
    if arrivals.kind == "times":
        return np.array([to_us_nearest(t) for t in arrivals.times if t < horizon],
                        dtype=np.int64)
    rng = np.random.default_rng(arrivals.seed)  # explicit, seeded: runs are reproducible
    times, t = [], float(arrivals.start)
    while True:
        t += rng.exponential(1.0 / arrivals.rate)
        if t >= horizon:
            return np.array(times, dtype=np.int64)
        times.append(int(math.floor(t * US_PER_S + 0.5)))


def _nearest_us(start: Fraction, step: Fraction, count: int) -> np.ndarray:
    """round_half_up((start + k * step) in µs) for k < count, in exact integer arithmetic."""
    a, p = start * US_PER_S, step * US_PER_S
    den = math.lcm(a.denominator, p.denominator)
    x = a.numerator * (den // a.denominator) + np.arange(count, dtype=np.int64) * (
        p.numerator * (den // p.denominator))
    return (2 * x + den) // (2 * den)


def _template(scenario: Scenario, spec: TaskSpec, backends: tuple[str, ...]):
    """Stage, step, token and duration, shortest and longest duration (µs per backend) of
    one job's segments."""
    db, stages, steps, tokens, durations = scenario.db, [], [], [], []
    lows, highs = [], []
    for stage in db.stages(spec.model):
        stage_id = STAGE_NAMES.index(stage)
        layers = db.stage2layers[spec.model, stage]
        group = min(scenario.layers_per_segment(layers), layers)
        starts = np.arange(0, layers, group)
        if stage == "decode":
            lengths = spec.input_tokens + np.arange(1, spec.output_tokens)
        else:
            lengths = [spec.input_tokens or 0]
        shape = (len(lengths), len(starts), len(backends))
        per_step, low, high = (np.full(shape, INELIGIBLE, np.int64) for _ in range(3))
        for b, backend in enumerate(backends):
            if (spec.model, stage, backend) in db.curves and len(lengths):
                # summed per segment without a steps x layers matrix (see Curve.segment_ms)
                seg_ms = db.segment_ms(spec.model, stage, backend, lengths, starts)
                # durations round up; round(…, 6) first so 14.0000000001 ms stays 14000 µs
                per_step[:, :, b] = np.maximum(1, np.ceil(np.round(seg_ms * 1000, 6)))
                low[:, :, b], high[:, :, b] = _duration_range(
                    scenario.execution, per_step[:, :, b], db.segment_bounds_ms(
                        spec.model, stage, backend, lengths, starts, scenario.execution))
        n_steps, n_segs = per_step.shape[:2]
        durations.append(per_step.reshape(-1, len(backends)))
        lows.append(low.reshape(-1, len(backends)))
        highs.append(high.reshape(-1, len(backends)))
        stages.append(np.full(n_steps * n_segs, stage_id))
        step_ids = np.arange(1, n_steps + 1) if stage == "decode" else np.zeros(n_steps, int)
        steps.append(np.repeat(step_ids, n_segs))
        token = np.zeros((n_steps, n_segs), dtype=np.int64)
        if stage != "frame":
            token[:, -1] = step_ids + 1
        tokens.append(token.ravel())
    return (np.concatenate(stages), np.concatenate(steps), np.concatenate(tokens),
            np.concatenate(durations), np.concatenate(lows), np.concatenate(highs))


def _duration_range(execution: tuple[float, float], nominal_us: np.ndarray, bounds):
    """(shortest, longest) µs of segments whose nominal durations are ``nominal_us``:
    ``floor(lo x nominal)``, ``ceil(hi x nominal)``; where the database bounds the layers
    (``bounds``: per side, the segment's sum of the layers' database bounds, or lo/hi x
    the nominal where a layer has none, and whether any layer has one), that sum rounded
    down (min) or up (max). Never below 1 µs."""
    lo, hi = execution
    low = np.floor(np.round(lo * nominal_us, 6))
    high = np.ceil(np.round(hi * nominal_us, 6))
    if bounds is not None:
        for (seg_ms, bounded), out, rounding in zip(bounds, (low, high), (np.floor, np.ceil),
                                                    strict=True):
            seg_us = rounding(np.round(seg_ms * 1000, 6))
            out[bounded] = seg_us[bounded]
    return np.maximum(1, low).astype(np.int64), np.maximum(1, high).astype(np.int64)


def _transfer_us(scenario: Scenario, model: str, src: str, dst: str) -> int:
    return int(math.ceil(round(scenario.db.transfer_ms(model, src, dst) * 1000, 6)))


def _standalone_us(dur: np.ndarray, transfer: np.ndarray) -> int:
    """Shortest chain through the segments, each on its best backend, transfers paid."""
    if len(dur) == 0:
        return 0
    big = np.iinfo(np.int64).max // 4
    d = np.where(dur == INELIGIBLE, big, dur)
    best = d[0].copy()
    for row in d[1:]:
        best = row + np.min(best[:, None] + transfer, axis=0)
    return int(min(best.min(), big))


def _task_info(spec: TaskSpec, names: list[str], first: int, num_jobs: int, segs: int,
               standalone: int) -> TaskInfo:
    us = lambda x: None if x is None else to_us_down(x)  # noqa: E731 (deadlines round down)
    return TaskInfo(
        name=spec.name, model=spec.model, kind=spec.kind,
        is_llm=spec.output_tokens is not None, weight=spec.weight, first_job=first,
        num_jobs=num_jobs, segs_per_job=segs,
        period_us=None if spec.period is None else float(spec.period * US_PER_S),
        deadline_us=us(spec.deadline), input_tokens=spec.input_tokens,
        output_tokens=spec.output_tokens, ttft_us=us(spec.ttft), tpt_us=us(spec.tpt),
        after=None if spec.after is None else names.index(spec.after),
        standalone_us=standalone)


def _with_chain_standalone(task: TaskInfo, tasks: list[TaskInfo]) -> TaskInfo:
    total, current = task.standalone_us, task
    while current.after is not None:
        current = tasks[current.after]
        total += current.standalone_us
    return TaskInfo(**{**task.__dict__, "standalone_us": total})


def _with_give_up(scenario: Scenario, tasks: list[TaskInfo]) -> list[TaskInfo]:
    """How long a request may wait for its first token before it counts as starved and is
    abandoned: the scenario's `drain`, else 10 x its standalone latency (docs/semantics.md). A
    request that feeds another (RAG -> LLM) gives up with it."""
    limits = [None if t.kind != "request" else
              (to_us_nearest(scenario.drain) if scenario.drain is not None
               else DRAIN_FACTOR * t.standalone_us) for t in tasks]
    for i, t in enumerate(tasks):
        if t.after is not None and limits[t.after] is not None and limits[i] is not None:
            limits[t.after] = min(limits[t.after], limits[i])
    return [TaskInfo(**{**t.__dict__, "give_up_us": limit}) for t, limit in zip(tasks, limits)]


def _after_links(tasks: list[TaskInfo], job_task: np.ndarray, job_index: np.ndarray):
    """Job k of a task with `after` waits for job k of that task (if it exists)."""
    after = np.full(len(job_task), -1, dtype=np.int64)
    for t in tasks:
        if t.after is not None:
            pred = tasks[t.after]
            k = np.arange(min(t.num_jobs, pred.num_jobs))
            after[t.first_job + k] = pred.first_job + k
    return after


def _hyperperiod(scenario: Scenario) -> Fraction | None:
    periods = [t.period for t in scenario.tasks if t.kind == "periodic"]
    if not periods:
        return None
    hp = periods[0]
    for p in periods[1:]:
        hp = lcm_fraction(hp, p)
    return hp


def _run_length(tasks: list[TaskInfo], requests: dict[int, np.ndarray], horizon_us: int,
                after_horizon: str) -> tuple[int, int]:
    """(drain, end of the run) in µs (the *continuing load* of docs/semantics.md).

    ``continue``: the drain lasts until every request released in the horizon has passed
    its give-up time — at least one frame deadline, so that every frame of the horizon
    meets all the frames it competes with — and then long enough for the last request to
    finish its chain (its standalone latency). Frames keep being released through all of
    it, so no request work ever runs in time the frames have left; served requests
    complete by its end. The run ends once the last frame reached its deadline.
    ``stop`` (the old model): frames stop at the horizon; the run drains for the longest
    give-up time or deadline.
    """
    frame_deadlines = [t.deadline_us for t in tasks if t.kind == "periodic"
                       and t.deadline_us is not None]
    if after_horizon == "stop":
        limits = [t.give_up_us for t in tasks if t.give_up_us is not None]
        deadlines = [t.deadline_us for t in tasks if t.deadline_us is not None]
        drain = max(limits + deadlines + [0])
        return drain, horizon_us + drain
    request_ends = [int(times.max()) + max(tasks[i].deadline_us or 0, tasks[i].give_up_us or 0)
                    for i, times in requests.items() if len(times)]
    finish = max([t.standalone_us for t in tasks if t.kind == "request"] + [0])
    drain = max([end - horizon_us for end in request_ends] + frame_deadlines + [0]) + finish
    return drain, horizon_us + drain + max(frame_deadlines + [0])


def _aot_mapping(scenario: Scenario, spec: TaskSpec, template, backends) -> tuple[int, ...]:
    """Backend per stage for the AOT policies: the scenario's `mapping`, else the backend
    with the smallest standalone latency of the whole stage (ties: platform order)."""
    stage_ids, _, _, dur = template[:4]
    mapping = []
    for stage_id, stage in enumerate(STAGE_NAMES):
        rows = dur[stage_ids == stage_id]
        if not len(rows):
            mapping.append(-1)
            continue
        fixed = scenario.mapping.get((spec.model, stage))
        if fixed is not None:
            mapping.append(backends.index(fixed))
            continue
        totals = np.where((rows == INELIGIBLE).any(axis=0), np.iinfo(np.int64).max,
                          rows.sum(axis=0))
        mapping.append(int(np.argmin(totals)))
    return tuple(mapping)
