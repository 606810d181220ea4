"""The dual value of a bound certificate, recomputed with code that shares nothing with
the bound.

`solve --bound-out` writes the prices behind its lower bound. The bound is valid for any
prices (docs/optimum.md, *Certificates*), so whoever holds the task set can recompute the
dual value from the prices alone and compare it with the claim. This module does that
from the model layer only: its own jobs-into-chains cut, its own charges (each tick's
charge is the smaller overlap of the earliest and latest start in a cell, the interior
ticks of a segment full), its own order-keeping minimum over placements, its own block
damages by brute force. It is deliberately plain; `formulations.bounds` is the fast one.

The relaxation recomputed (the same, specified in docs/optimum.md):

* firm chain: a frame job's segments within [release, deadline], or dropped at its weight;
* served chains: the ``after`` forest of requests cut into paths, each predecessor
  following the dependent whose path is due first (ties: the lower job id); the others
  wait only for its earliest possible end; a path ends with its last request's segments
  up to token 1 (due by the give-up time), or all of them (due by the end of the drain);
* dual value = Σ firm min(weight, cheapest placement) + Σ served cheapest placement
  − Σ price · instances · tick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet

INF = float("inf")


class CertificateInvalid(Exception):
    """The certificate does not prove what it claims: the first discrepancy."""


# ----------------------------------------------------------------------------- chains


@dataclass(frozen=True)
class Path:
    """Segments placed in order: (segment, earliest start, starts a new job)."""

    steps: tuple[tuple[int, int, bool], ...]
    due: int  # the last segment ends by this
    task: int  # transfers between this task's own segments
    weight: float | None  # firm: dropping costs this


def fastest(ts: TaskSet, seg: int) -> int:
    return min(int(d) for d in ts.seg_dur_us[seg] if d != INELIGIBLE)


def first_token_cut(ts: TaskSet, job: int, run_end: int) -> tuple[list[int], int]:
    """A request ending a path: its segments up to token 1 and their due time."""
    segs = list(ts.job_segments(job))
    task = ts.tasks[int(ts.job_task[job])]
    token_one = [s for s in segs if int(ts.seg_token[s]) == 1]
    if not task.is_llm or not token_one:
        return segs, run_end
    due = run_end
    if task.give_up_us is not None:
        due = min(due, int(ts.job_release_us[job]) + task.give_up_us)
    return segs[:segs.index(token_one[0]) + 1], due


def build_paths(ts: TaskSet) -> tuple[list[Path], list[Path]]:
    """(firm paths, served paths) of the plain problem."""
    run_end = ts.horizon_us + ts.drain_us
    firm, requests = [], []
    for job in range(ts.num_jobs):
        deadline = int(ts.job_deadline_us[job])
        if deadline == NO_DEADLINE:
            requests.append(job)
            continue
        at, steps = int(ts.job_release_us[job]), []
        for i, s in enumerate(ts.job_segments(job)):
            steps.append((s, at, i == 0))
            at += fastest(ts, s)
        firm.append(Path(tuple(steps), deadline, int(ts.job_task[job]),
                         ts.tasks[int(ts.job_task[job])].weight))
    dependents: dict[int, list[int]] = {j: [] for j in requests}
    for j in requests:
        if int(ts.job_after[j]) >= 0:
            dependents[int(ts.job_after[j])].append(j)
    cut = {j: first_token_cut(ts, j, run_end) for j in requests}

    def path_due(j):  # the due time at the end of the path through j
        return cut[j][1] if not dependents[j] else min(path_due(c) for c in dependents[j])

    followed_by = {j: min(dependents[j], key=lambda c: (path_due(c), c))
                   for j in requests if dependents[j]}

    def done_by(j):  # the earliest possible end of job j
        pred = int(ts.job_after[j])
        start = max(int(ts.job_release_us[j]), done_by(pred) if pred >= 0 else 0)
        return start + sum(fastest(ts, s) for s in ts.job_segments(j))

    served = []
    for head in requests:
        pred = int(ts.job_after[head])
        if pred >= 0 and followed_by[pred] == head:
            continue  # inside its predecessor's path
        at = done_by(pred) if pred >= 0 else 0
        steps, job = [], head
        while True:
            segs = cut[job][0] if job not in followed_by else list(ts.job_segments(job))
            at = max(at, int(ts.job_release_us[job]))
            for i, s in enumerate(segs):
                steps.append((s, at, i == 0))
                at += fastest(ts, s)
            if job not in followed_by:
                break
            job = followed_by[job]
        served.append(Path(tuple(steps), cut[job][1], int(ts.job_task[job]), None))
    return firm, served


# ----------------------------------------------------------------------------- placements


def cheapest(ts: TaskSet, path: Path, tick: int, cost) -> float:
    """min over the path's placements on the grid of ``tick`` of Σ cost(b, cell, s_min,
    s_max, dur); a segment's start lies in a cell, the next segment's cell at least the one
    holding (this cell's earliest start + duration + transfer). INF when none fits."""
    segs = [s for s, _, _ in path.steps]
    latest_end = [0] * len(segs)
    latest_end[-1] = path.due
    for i in range(len(segs) - 2, -1, -1):
        latest_end[i] = latest_end[i + 1] - fastest(ts, segs[i + 1])
    later = None  # backend -> (first cell, min value from each cell on)
    for i in range(len(segs) - 1, -1, -1):
        seg, earliest, _ = path.steps[i]
        here = {}
        for b in range(len(ts.backends)):
            dur = int(ts.seg_dur_us[seg, b])
            if dur == INELIGIBLE or latest_end[i] - dur < earliest:
                continue
            latest = latest_end[i] - dur
            cells = np.arange(earliest // tick, latest // tick + 1)
            s_min = np.maximum(cells * tick, earliest)
            s_max = np.minimum(cells * tick + tick - 1, latest)
            value = cost(b, cells, s_min, s_max, dur).astype(float)
            if later is not None:
                value = value + _cheapest_next(ts, path, i, b, later, s_min + dur, tick)
            here[b] = (int(cells[0]), np.minimum.accumulate(value[::-1])[::-1])
        if not here:
            return INF
        later = here
    return min(float(v[0]) for _, v in later.values())


def _cheapest_next(ts, path, i, b, later, ends, tick) -> np.ndarray:
    new_job = path.steps[i + 1][2]
    best = np.full(len(ends), INF)
    for b2, (first, from_cell) in later.items():
        gap = 0 if new_job else int(ts.transfer_us[path.task, b, b2])
        index = (ends + gap) // tick - first
        inside = index < len(from_cell)
        best = np.minimum(best, np.where(inside, from_cell[np.clip(index, 0, None)
                                                           .clip(None, len(from_cell) - 1)],
                                         INF))
    return best


def overlap(start, dur, tick_index, tick):
    """Length of [start, start + dur) inside tick ``tick_index`` (arrays)."""
    lo, hi = tick_index * tick, tick_index * tick + tick
    return np.maximum(0, np.minimum(start + dur, hi) - np.maximum(start, lo))


def price_cost(prices: np.ndarray, tick: int):
    """Σ_k π[b, k] · (the smaller overlap of the earliest and latest start with tick k):
    the two edge ticks explicitly, the ticks between them wholly covered by both."""
    padded = np.concatenate([prices, np.zeros((prices.shape[0], 1))], axis=1)
    width = prices.shape[1]
    total = np.concatenate([np.zeros((prices.shape[0], 1)), np.cumsum(prices, axis=1)], axis=1)

    def price(b, k):
        return padded[b, np.minimum(k, width)]

    def cost(b, cells, s_min, s_max, dur):
        last = (s_min + dur - 1) // tick  # the last tick the earliest start reaches
        charge_first = np.minimum(overlap(s_min, dur, cells, tick),
                                  overlap(s_max, dur, cells, tick))
        charge_last = np.minimum(overlap(s_min, dur, last, tick),
                                 overlap(s_max, dur, last, tick))
        value = price(b, cells) * charge_first
        value = value + np.where(last > cells, price(b, last) * charge_last, 0.0)
        lo, hi = np.minimum(cells + 1, width), np.minimum(np.maximum(last, cells + 1), width)
        return value + tick * (total[b, hi] - total[b, lo])

    return cost


def lagrangian_dual(ts: TaskSet, prices: np.ndarray, tick: int) -> float:
    """The dual value the prices prove, recomputed from scratch."""
    firm, served = build_paths(ts)
    cost = price_cost(prices, tick)
    value = sum(min(p.weight, cheapest(ts, p, tick, cost)) for p in firm)
    for p in served:
        v = cheapest(ts, p, tick, cost)
        value += v if v < INF else 0.0  # a request that cannot be served: any bound holds
    capacity = np.array(ts.instances, dtype=float)[:, None] * tick
    return value - float((prices * capacity).sum())


