"""A Lagrangian lower bound on the time grid: prices on backend time.

**Relaxation.** Keep every firm job (all its segments in order inside [release, deadline],
or dropped at its weight) and cut the served requests into *chains*, each job in exactly
one. A served request (and every request it waits for through ``after``, which must run
for it) belongs to the forest of ``after`` edges (each job waits for at most one). Each
job with dependents keeps the edge to one of them — the one whose path ends soonest — so
the forest falls into paths; a chain is one path: its jobs' segments in order, ending
with the last job's segments up to the one that emits token 1, which must end by the
first-token due time (a request without tokens runs to its end by the end of the run).
Every other dependent heads its own chain and only waits for its predecessor's *earliest
possible* end (its release, after its own predecessors' earliest ends, plus its fastest
durations), which holds in every schedule. Cutting an edge to a release time, dropping
the later segments and the deadlines of the jobs inside a chain only drop constraints —
except where a service-matched problem gives the last token a deadline: then the decode
stays in the chain, with token 1 as a milestone on the way. Because each job lies in one
chain, a predecessor shared by several requests (fan-out) is charged once, as in any
real schedule; chains of ``after`` (a -> b -> c) are one path.

**Grid.** Time is cut into ticks of ``tick_us`` (D). A segment of duration p starting at S
lies in cell ⌊S/D⌋. In tick k it is *charged* the minimum overlap of [S, S + p) with
[kD, (k + 1)D) over every start S its window allows in that cell. The overlap with the
cell's own tick falls with S and with later ticks rises with S, so the minimum sits at
one end of the cell: tick t is charged min(p, (t+1)D − S_max), tick k > t is charged
clip(S_min + p − kD, 0, D). In any real schedule the segments on a backend with c
instances overlap each tick by at most c·D in total, so the charges do too.

**Lagrangian.** For any prices π ≥ 0 on (backend, tick):

    L(π) = Σ_firm jobs min(weight, min over placements of π·charge)
         + Σ_served chains min over placements of π·charge
         − Σ_(backend, tick) π · capacity

An optimal schedule's placements are among those minimised over and its charges fit the
capacities, so **L(π) ≤ OPT for every π ≥ 0**, however π was chosen. Chains are minimised
exactly by a backward dynamic program over (segment, backend, cell) whose transition keeps
the order: the next segment's cell is at least ⌊(S_min + p + transfer)/D⌋. (π, L) is a
certificate: ``certificate.py`` writes it and the tests re-check it independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE

from ..problem import Problem

INF = float("inf")


@dataclass(frozen=True)
class Chain:
    """One relaxed job: segments in order, each with its start window per backend."""

    segments: tuple[int, ...]
    weight: float | None  # firm: dropping costs this; None: must run
    earliest: tuple[int, ...]  # earliest start of each segment (order-independent)
    due: int  # the last segment ends by this
    task: int  # for transfers between its own segments
    job_breaks: tuple[bool, ...]  # True where segment i starts a new job (no transfer)
    milestones: tuple[tuple[int, int], ...] = ()  # (segment index, ends by): token 1

    def latest_ends(self, fastest: np.ndarray) -> np.ndarray:
        """Latest end of each segment: the due time and the milestones, less the fastest
        durations of the segments that must follow before them."""
        ends = np.empty(len(self.segments), dtype=np.int64)
        by_index = dict(self.milestones)
        ends[-1] = min(self.due, by_index.get(len(ends) - 1, self.due))
        for i in range(len(ends) - 2, -1, -1):
            ends[i] = min(ends[i + 1] - int(fastest[i + 1]), by_index.get(i, ends[i + 1]))
        return ends


def relaxed_chains(problem: Problem) -> tuple[list[Chain], list[Chain]]:
    """(firm chains, served chains) of the relaxation (see the module docstring): every job
    in exactly one chain."""
    ts = problem.ts
    firm, requests = [], []
    for job in (int(j) for j in problem.job_ids):
        if int(ts.job_deadline_us[job]) == NO_DEADLINE:
            requests.append(job)
        elif job not in problem.optional:
            firm.append(_chain(problem, job, [job], [list(problem.segments(job))], 0,
                               int(ts.job_deadline_us[job]), ts.tasks[ts.job_task[job]].weight))
    return firm, _served_chains(problem, requests)


def _served_chains(problem: Problem, requests: list[int]) -> list[Chain]:
    """The after-forest of the served requests cut into paths: each predecessor follows
    its most urgent dependent; the others only wait for its earliest possible end."""
    ts = problem.ts
    in_problem = set(requests)
    pred = {j: int(ts.job_after[j]) if int(ts.job_after[j]) in in_problem else -1
            for j in requests}
    served = set()
    for job in requests:  # a served request's predecessors must run too
        if job not in problem.optional:
            served.update(ts.chain(job, within=in_problem))
    children: dict[int, list[int]] = {j: [] for j in served}
    for j in sorted(served):
        if pred[j] >= 0:
            children[pred[j]].append(j)
    ends = {j: _tail(problem, j) for j in served}
    urgency: dict[int, int] = {}

    def due_of(j: int) -> int:  # the due of the path from j along its chosen dependents
        if j not in urgency:
            urgency[j] = (min(due_of(c) for c in children[j]) if children[j]
                          else min([ends[j][1]] + [t for _, t in ends[j][2]]))
        return urgency[j]

    follow = {j: min(children[j], key=lambda c: (due_of(c), c)) for j in served
              if children[j]}
    ready: dict[int, int] = {}

    def ready_at(j: int) -> int:  # earliest end of j's scheduled segments
        if j not in ready:
            start = max(int(ts.job_release_us[j]), ready_at(pred[j]) if pred[j] >= 0 else 0)
            ready[j] = start + sum(ts.fastest_us(s) for s in problem.segments(j))
        return ready[j]

    chains = []
    for head in sorted(j for j in served if pred[j] < 0 or follow[pred[j]] != j):
        members = [head]
        while members[-1] in follow:
            members.append(follow[members[-1]])
        own, due, milestones = ends[members[-1]]
        parts = [list(problem.segments(m)) for m in members[:-1]] + [own]
        offset = sum(len(p) for p in parts[:-1])
        milestones = tuple((offset + i, t) for i, t in milestones)
        start = ready_at(pred[head]) if pred[head] >= 0 else 0
        chains.append(_chain(problem, members[-1], members, parts, start, due, None,
                             milestones))
    return chains


def _tail(problem: Problem, job: int) -> tuple[list[int], int, tuple]:
    """(segments, due, milestones) of a request ending a chain: up to its first token,
    due by then, unless a last-token deadline keeps the decode in (token 1 a milestone)."""
    own = list(problem.segments(job))
    service = problem.token_service(job)
    if service is None:
        return own, problem.end_us, ()
    first_seg, _, first_by, last_by = service
    first_by = problem.end_us if first_by is None else min(first_by, problem.end_us)
    if last_by < problem.end_us:  # a last-token deadline: decode is constrained too
        return own, last_by, ((own.index(first_seg), first_by),)
    return own[:own.index(first_seg) + 1], first_by, ()


def _chain(problem: Problem, job: int, members: list[int], parts: list[list[int]],
           start: int, due: int, weight: float | None, milestones: tuple = ()) -> Chain:
    ts = problem.ts
    segments, earliest, breaks = [], [], []
    at = start
    for member, segs in zip(members, parts):
        at = max(at, int(ts.job_release_us[member]))
        for i, s in enumerate(segs):
            segments.append(s)
            earliest.append(at)
            breaks.append(i == 0)
            at += ts.fastest_us(s)
    return Chain(tuple(segments), weight, tuple(earliest), due,
                 int(ts.job_task[job]), tuple(breaks), milestones)


# ----------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Prices:
    """π[b, k] ≥ 0 per backend and tick of ``tick_us``; ticks past the array cost 0."""

    tick_us: int
    values: np.ndarray  # (backends, ticks), float
    period_ticks: int | None = None  # values repeat with this period (the phase LP's)

    def __post_init__(self):
        if self.tick_us < 1 or (self.values < 0).any() or not np.isfinite(self.values).all():
            raise ValueError("prices must be finite and >= 0 on a tick of >= 1 µs")
        # C[b, k] = Σ_{i<k} π[b, i]: any run of whole ticks costs one subtraction
        padded = np.concatenate([np.zeros((self.values.shape[0], 1)), self.values], axis=1)
        object.__setattr__(self, "cumulative", np.cumsum(padded, axis=1))


def segment_cost(prices: Prices, backend: int, cells: np.ndarray, s_min: np.ndarray,
                 s_max: np.ndarray, dur: int) -> np.ndarray:
    """π·charge of a segment of ``dur`` µs on ``backend`` starting in ``cells`` with starts
    in [s_min, s_max] (arrays, one entry per cell; every start inside its cell)."""
    d = prices.tick_us
    pi, cum = prices.values[backend], prices.cumulative[backend]
    n = len(pi)
    first = np.minimum(dur, (cells + 1) * d - s_max)
    end_tick = (s_min + dur) // d  # the tick holding the segment's earliest end
    last_amount = s_min + dur - end_tick * d
    own = np.where(cells < n, pi[np.minimum(cells, n - 1)], 0.0)
    full_from, full_to = np.minimum(cells + 1, n), np.minimum(np.maximum(end_tick, cells + 1), n)
    middle = d * (cum[full_to] - cum[full_from])
    later = (end_tick > cells) & (end_tick < n)
    tail = np.where(later, pi[np.minimum(end_tick, n - 1)] * last_amount, 0.0)
    return own * first + middle + tail


def _cells(earliest: int, latest: int, d: int):
    """Cells a start in [earliest, latest] can lie in, with each cell's start range."""
    cells = np.arange(earliest // d, latest // d + 1, dtype=np.int64)
    return cells, np.maximum(earliest, cells * d), np.minimum(latest, (cells + 1) * d - 1)


def chain_value(problem: Problem, chain: Chain, prices: Prices) -> float:
    """min over the chain's placements of π·charge (order kept on the grid), or INF."""
    return chain_minimum(problem, chain, prices.tick_us, partial(segment_cost, prices))


def chain_minimum(problem: Problem, chain: Chain, d: int, cost) -> float:
    """min over the chain's placements on the grid of tick ``d`` of the sum of
    ``cost(backend, cells, s_min, s_max, dur)`` over its segments, or INF: a backward
    dynamic program over (segment, backend, cell) whose transition keeps the order."""
    transfer = problem.ts.transfer_us[chain.task]
    nxt = None  # per backend: (first cell, suffix minima of the next segment's values)
    for i, options in segment_placements(problem, chain, d):
        current = {}
        for b, dur, cells, s_min, s_max in options:
            value = cost(b, cells, s_min, s_max, dur)
            if nxt is not None:
                value = value + _best_next(nxt, s_min, dur, transfer[b],
                                           chain.job_breaks[i + 1], d)
            current[b] = (int(cells[0]), np.minimum.accumulate(value[::-1])[::-1])
        if not current:
            return INF
        nxt = current
    return float(min(values[0] for _, values in nxt.values()))


def segment_placements(problem: Problem, chain: Chain, d: int):
    """Per segment of the chain, the last first: (its index, [(backend, duration, cells,
    s_min, s_max)] for every backend that can run it within its window), its start cells
    on the grid of tick ``d`` — what the chain programs minimise over."""
    durations = problem.ts.seg_dur_us[list(chain.segments)]
    fastest = np.where(durations == INELIGIBLE, np.iinfo(np.int64).max, durations).min(axis=1)
    latest_end = chain.latest_ends(fastest)
    for i in range(len(chain.segments) - 1, -1, -1):
        options = []
        for b, dur in enumerate(durations[i].tolist()):
            latest = int(latest_end[i]) - dur
            if dur != INELIGIBLE and latest >= chain.earliest[i]:
                options.append((b, dur, *_cells(chain.earliest[i], latest, d)))
        yield i, options


def _best_next(nxt, s_min, dur, transfer_row, new_job: bool, d: int) -> np.ndarray:
    """For each start range, the cheapest continuation on any backend (suffix minima)."""
    best = np.full(len(s_min), INF)
    for b, (first_cell, suffix) in nxt.items():
        gap = 0 if new_job else int(transfer_row[b])
        cell = (s_min + dur + gap) // d - first_cell
        ok = cell < len(suffix)
        value = np.where(ok, suffix[np.clip(cell, 0, len(suffix) - 1)], INF)
        best = np.minimum(best, value)
    return best


def capacity(problem: Problem, tick_us: int, num_ticks: int) -> np.ndarray:
    """Capacity per (backend, tick): instances × D, less the problem's blocked time."""
    ts = problem.ts
    cap = np.repeat(np.array(ts.instances, dtype=float)[:, None] * tick_us, num_ticks, axis=1)
    for backend, start, end in problem.blocked:
        for k in range(start // tick_us, min(num_ticks, (end - 1) // tick_us + 1)):
            overlap = min(end, (k + 1) * tick_us) - max(start, k * tick_us)
            cap[backend, k] -= max(0, overlap)
    return np.maximum(cap, 0.0)


@dataclass(frozen=True)
class BoundValue:
    value: float  # L(π)
    frames: float  # Σ over firm jobs
    chains: float  # Σ over served chains
    capacity: float  # Σ π · capacity

    def rounded(self, problem: Problem) -> float:
        """In weight units, rounded up when the weights are integers (so is OPT)."""
        if problem.weight_scale == 1:
            return float(max(0, int(np.ceil(self.value - 1e-6))))
        return max(0.0, self.value)


def lagrangian_value(problem: Problem, prices: Prices) -> BoundValue:
    """L(π) of the module docstring: a lower bound on the problem's weighted violations."""
    firm, served = relaxed_chains(problem)
    value = _memoised(problem, prices)
    frames = sum(min(c.weight, value(c)) for c in firm)
    chains = 0.0
    for c in served:
        v = value(c)
        chains += v if v < INF else 0.0  # unservable: any bound holds; stay finite
    cap = capacity(problem, prices.tick_us, prices.values.shape[1])
    paid = float((prices.values * cap).sum())
    return BoundValue(frames + chains - paid, frames, chains, paid)


def _memoised(problem: Problem, prices: Prices):
    """chain_value, computed once per chain shape and phase where the prices repeat: a
    chain shifted by a whole price period, inside the priced range, costs the same."""
    if prices.period_ticks is None:
        return lambda chain: chain_value(problem, chain, prices)
    period = prices.period_ticks * prices.tick_us
    limit = prices.values.shape[1] * prices.tick_us
    ts, memo = problem.ts, {}

    def value(chain: Chain) -> float:
        start = chain.earliest[0]
        if chain.due >= limit:
            return chain_value(problem, chain, prices)
        key = (start % period, chain.due - start, chain.task, chain.job_breaks,
               tuple((i, t - start) for i, t in chain.milestones),
               tuple(e - start for e in chain.earliest),
               ts.seg_dur_us[list(chain.segments)].tobytes())
        if key not in memo:
            memo[key] = chain_value(problem, chain, prices)
        return memo[key]

    return value
