"""The block bound: where frames have slack, price whole occupied intervals, not time.

Per-tick prices cannot see the cost of a long LLM layer among frames whose slack is at
least their duration (object detection at 30 FPS: 19.7 ms of slack for 13.6 ms of work):
each frame can dodge any single tick, so the phase LP spreads the layer fractionally and
proves nothing. The damage is not linear in occupied time — a frame dies only once the
room left in its window is shorter than it. This relaxation prices that directly.

1. **Blocks.** Frames whose windows overlap form a block (connected components of the
   windows); no frame window crosses a block boundary.
2. **Touches.** A segment whose start S lies in [s_min, s_max] surely occupies
   [s_max, s_min + p) on its backend. Cut to a block, that interval is a *prefix* (it
   crosses the block's start), a *suffix* (it crosses the end), covers it (*full*), or lies
   inside (ignored: a subset of a surely occupied interval is surely occupied, and the
   empty set is a subset). Prefix lengths are rounded down and suffix starts up to a
   quantum q, for the same reason. On a single-instance backend at most one segment
   crosses each block boundary, so a schedule leaves at most one prefix (or full) and one
   suffix per backend and block: a *column*.
3. **Damage.** f_B(column) = the exact minimum weight of the block's frames that must be
   dropped when the column's intervals are unavailable (the frames alone in the block,
   each on any backend it can use, brute force over assignments and orders).
4. **Prices λ per touch (any real numbers).**

       L(λ) = Σ_blocks min over columns (f_B(column) − λ·column)
            + Σ_served chains min over placements (λ · their touches)

   An optimal schedule's touches form a column in every block, its drops there are at
   least f_B of it (its frames avoid surely occupied time), and each touch is counted once
   on each side, so **L(λ) ≤ OPT for every λ**. Blocks that are too large to enumerate
   (more than ``MAX_FRAMES`` frames, multi-segment frames) are left out: dropping frames
   from the problem only relaxes it.
5. **Choosing λ** by one LP over the block types of one frame period (the block side is
   exactly a min over its columns) and the request segments at every phase (order dropped,
   as in the phase LP). The exact chain program then evaluates L at that λ.

Backends with several instances are not priced here (the bound returns None).
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
from ortools.linear_solver import pywraplp

from rtgen_opt.model.taskset import INELIGIBLE

from ..problem import Problem
from .lagrangian import INF, Chain, chain_minimum, relaxed_chains
from .phase_lp import frame_period_us

MAX_FRAMES = 4  # frames per block enumerated exactly (assignments grow as (backends+1)^n)
# prefix/suffix lengths per block and backend, the finest first: a level below the
# frames' slack (SR at 60 FPS: 2.7 ms of 16.7) sees more damage; the coarser one where the
# finer makes more LP rows than MAX_LP_ROWS (several block types)
LEVELS = (16, 12)
MAX_LP_ROWS = 60_000  # block-side rows of the LP (columns x block types); above: no bound


@dataclass(frozen=True)
class BlockType:
    """Blocks identical up to a shift of time: frames relative to the block's start."""

    length: int
    frames: tuple[tuple[int, int, tuple[int, ...], float], ...]  # release, due, dur, weight
    divisions: int = LEVELS[0]  # the quantum is the length over this, rounded up

    @property
    def quantum(self) -> int:
        return max(1, math.ceil(self.length / self.divisions))

    @property
    def levels(self) -> int:
        """Prefix levels 1..levels-1 (a prefix of at least level·q), suffix levels alike."""
        return math.ceil(self.length / self.quantum)


def find_blocks(firm: list[Chain], problem: Problem) -> list[tuple[int, int, BlockType | None]]:
    """(start, end, type) of each block in time order; type None where it is left out."""
    ts = problem.ts
    order = sorted(range(len(firm)), key=lambda i: firm[i].earliest[0])
    blocks, current, end = [], [], -1
    for i in order + [None]:
        if i is None or (current and firm[i].earliest[0] >= end):
            if current:
                blocks.append(_block(current, ts))
            current, end = [], -1
        if i is not None:
            current.append(firm[i])
            end = max(end, firm[i].due)
    return blocks


def _block(chains: list[Chain], ts) -> tuple[int, int, BlockType | None]:
    start = min(c.earliest[0] for c in chains)
    end = max(c.due for c in chains)
    if len(chains) > MAX_FRAMES or any(len(c.segments) != 1 for c in chains):
        return start, end, None
    frames = tuple(sorted((c.earliest[0] - start, c.due - start,
                           tuple(int(x) for x in ts.seg_dur_us[c.segments[0]]), c.weight)
                          for c in chains))
    return start, end, BlockType(end - start, frames)


# ----------------------------------------------------------------------------- damage


def _options(bt: BlockType) -> list[tuple[int, int, int, int]]:
    """Columns on one backend: (prefix level or -1 for full, suffix level, free from, free
    until), prefix level 0 = none, suffix level ``levels`` = none."""
    q, n = bt.quantum, bt.levels
    options = [(-1, n, 0, 0)]  # a segment covers the block
    for a in range(n):
        for c in range(max(a, 1), n + 1):
            options.append((a, c, a * q, min(bt.length, c * q)))
    return options


def damage_table(bt: BlockType, touched: list[int], num_backends: int) -> np.ndarray:
    """f_B for every column: an array with one axis per touched backend (its options)."""
    options = _options(bt)
    n = len(bt.frames)
    subsets = range(1 << n)
    feasible = {}
    for b in range(num_backends):
        intervals = [(lo, hi) for _, _, lo, hi in options] if b in touched else [
            (0, bt.length)]
        feasible[b] = np.array([[_fits(bt, b, mask, lo, hi) for mask in subsets]
                                for lo, hi in intervals])
    weights = np.array([f[3] for f in bt.frames])
    shape = tuple(len(options) for _ in touched)
    best = np.full(shape, INF)
    for assignment in itertools.product(range(-1, num_backends), repeat=n):
        masks = [sum(1 << i for i, a in enumerate(assignment) if a == b)
                 for b in range(num_backends)]
        if any(not feasible[b][0, masks[b]] for b in range(num_backends) if b not in touched):
            continue
        dropped = float(weights[[a == -1 for a in assignment]].sum())
        ok = np.ones(shape, dtype=bool)
        for axis, b in enumerate(touched):
            column = feasible[b][:, masks[b]]
            ok &= column.reshape([-1 if k == axis else 1 for k in range(len(touched))])
        best = np.where(ok, np.minimum(best, dropped), best)
    return best


def _fits(bt: BlockType, b: int, mask: int, lo: int, hi: int) -> bool:
    """Can the frames of ``mask`` all run on single-instance backend b inside [lo, hi)?
    Exact: every order, each frame as early as it can go."""
    jobs = [bt.frames[i] for i in range(len(bt.frames)) if mask >> i & 1]
    if any(f[2][b] == INELIGIBLE for f in jobs):
        return False
    for order in itertools.permutations(jobs):
        t, ok = lo, True
        for release, due, dur, _ in order:
            t = max(t, release) + dur[b]
            if t > min(due, hi):
                ok = False
                break
        if ok:
            return True
    return False


# ----------------------------------------------------------------------------- touches


@dataclass
class _Touches:
    """The blocks of a run and, per touched backend, the price of every touch of each."""

    starts: np.ndarray
    ends: np.ndarray
    quantum: np.ndarray
    levels: np.ndarray
    full: dict[int, np.ndarray]  # backend -> λ_full per block
    prefix: dict[int, np.ndarray]  # backend -> (blocks, max levels + 1) λ per prefix level
    suffix: dict[int, np.ndarray]  # backend -> (blocks, max levels + 1) λ per suffix level

    def cost(self, b: int, s_min: np.ndarray, s_max: np.ndarray, dur: int) -> np.ndarray:
        """λ of the touches of segments surely occupying [s_max, s_min + dur) on b."""
        if b not in self.full or not len(self.starts):
            return np.zeros(len(s_min))
        u, v = s_max, s_min + dur
        total = np.zeros(len(u))
        sure = u < v
        # full: blocks with start >= u and end <= v
        first = np.searchsorted(self.starts, u, "left")
        last = np.searchsorted(self.ends, v, "right") - 1
        cum = np.concatenate([[0.0], np.cumsum(self.full[b])])
        total += np.where(sure & (last >= first), cum[np.maximum(last, first - 1) + 1]
                          - cum[first], 0.0)
        # prefix: the block holding v, when it starts at or after u
        k = np.searchsorted(self.starts, v, "left") - 1
        kc = np.clip(k, 0, len(self.starts) - 1)
        is_prefix = sure & (k >= 0) & (self.starts[kc] >= u) & (v < self.ends[kc])
        level = np.where(is_prefix, (v - self.starts[kc]) // self.quantum[kc], 0)
        total += np.where(is_prefix, self.prefix[b][kc, np.minimum(level, self.levels[kc] - 1)],
                          0.0)
        # suffix: the block holding u, when the segment runs past its end
        j = np.searchsorted(self.starts, u, "right") - 1
        jc = np.clip(j, 0, len(self.starts) - 1)
        is_suffix = sure & (j >= 0) & (u > self.starts[jc]) & (u < self.ends[jc]) & (
            v >= self.ends[jc])
        c = np.where(is_suffix, -((self.starts[jc] - u) // self.quantum[jc]), 0)
        total += np.where(is_suffix & (c < self.levels[jc]),
                          self.suffix[b][jc, np.minimum(c, self.levels[jc])], 0.0)
        return total


# ----------------------------------------------------------------------------- bound


@dataclass(frozen=True)
class BlockBound:
    value: float
    blocks: int
    types: int
    left_out: int  # blocks too large to enumerate
    certificate: dict | None = None  # λ, blocks and damages, for `verify-bound`


def block_bound(problem: Problem, tick_us: int = 500) -> BlockBound | None:
    """L(λ) of the module docstring with λ from the LP; None where it does not apply."""
    setup = block_setup(problem)
    if setup is None:
        return None
    period = frame_period_us(problem.ts)
    lam = _choose_prices(problem, setup, period, tick_us)
    if lam is None:
        return None
    return block_value(problem, setup, lam, tick_us)


@dataclass(frozen=True)
class BlockSetup:
    """What the bound needs besides λ: blocks, their types and damage tables."""

    served: list
    blocks: list
    types: list
    tables: dict
    counts: dict
    touched: list[int]


def block_setup(problem: Problem) -> BlockSetup | None:
    ts = problem.ts
    if any(k > 1 for k in ts.instances) or frame_period_us(ts) is None:
        return None
    firm, served = relaxed_chains(problem)
    if not firm or not served:
        return None
    blocks = find_blocks(firm, problem)
    touched = _touched_backends(problem, served, blocks)
    types = sorted({bt for _, _, bt in blocks if bt is not None}, key=repr)
    if not touched or not types:
        return None
    for divisions in LEVELS:  # the finest levels that keep the LP small
        types = [replace(bt, divisions=divisions) for bt in types]
        if sum(len(_options(bt)) ** len(touched) for bt in types) <= MAX_LP_ROWS:
            break
    else:
        return None  # too many block types for one LP in seconds: keep the phase bound
    blocks = [(s, e, None if bt is None else replace(bt, divisions=divisions))
              for s, e, bt in blocks]
    tables = {bt: damage_table(bt, touched, len(ts.backends)) for bt in types}
    counts = {bt: sum(1 for _, _, t in blocks if t == bt) for bt in types}
    return BlockSetup(served, blocks, types, tables, counts, touched)


def block_value(problem: Problem, setup: BlockSetup, lam: dict, tick_us: int) -> BlockBound:
    """L(λ) for any real λ (keys (type, backend, "full"|"prefix"|"suffix"[, level]))."""
    touches = _touches(setup.blocks, lam, setup.touched)
    value = 0.0
    for bt in setup.types:
        value += setup.counts[bt] * float(
            (setup.tables[bt] - _column_prices(bt, lam, setup.touched)).min())
    cost = lambda b, cells, s_min, s_max, dur: touches.cost(b, s_min, s_max, dur)  # noqa
    type_ids = {bt: i for i, bt in enumerate(setup.types)}
    kinds = np.array([type_ids[bt] for _, _, bt in setup.blocks if bt is not None])
    memo: dict = {}
    for chain in setup.served:
        # a chain's value depends only on the blocks around it, relative to its start (and
        # its start's place in a grid cell): equal shapes among equal blocks are solved once
        lo = chain.earliest[0]
        first = np.searchsorted(touches.ends, lo, "right")
        last = np.searchsorted(touches.starts, chain.due, "left")
        key = (lo % tick_us, chain.due - lo, chain.task, chain.job_breaks,
               tuple((i, t - lo) for i, t in chain.milestones),
               tuple(e - lo for e in chain.earliest),
               problem.ts.seg_dur_us[list(chain.segments)].tobytes(),
               (touches.starts[first:last] - lo).tobytes(),
               (touches.ends[first:last] - lo).tobytes(), kinds[first:last].tobytes())
        if key not in memo:
            memo[key] = chain_minimum(problem, chain, tick_us, cost)
        value += memo[key] if memo[key] < INF else 0.0
    left_out = sum(1 for _, _, bt in setup.blocks if bt is None)
    return BlockBound(value, len(setup.blocks), len(setup.types), left_out,
                      block_certificate(problem, setup, lam, tick_us))


def block_certificate(problem: Problem, setup: BlockSetup, lam: dict, tick_us: int) -> dict:
    """The block bound's part of a certificate: per block type its frames, λ per touch and
    damage per column; the blocks as (start, type)."""
    names = problem.ts.backends
    type_ids = {bt: i for i, bt in enumerate(setup.types)}
    types = []
    for bt in setup.types:
        types.append({
            "length": bt.length, "quantum": bt.quantum, "levels": bt.levels,
            "frames": [[r, d, list(dur), w] for r, d, dur, w in bt.frames],
            "full": {names[b]: lam.get((bt, b, "full"), 0.0) for b in setup.touched},
            "prefix": {names[b]: [lam.get((bt, b, "prefix", a), 0.0)
                                  for a in range(bt.levels)] for b in setup.touched},
            "suffix": {names[b]: [lam.get((bt, b, "suffix", c), 0.0)
                                  for c in range(bt.levels + 1)] for b in setup.touched},
            "damage": [float(x) for x in setup.tables[bt].ravel()]})
    return {"tick_us": tick_us, "touched": [names[b] for b in setup.touched],
            "types": types,
            "blocks": [[s, type_ids[bt]] for s, _, bt in setup.blocks if bt is not None]}


def _touched_backends(problem: Problem, served, blocks) -> list[int]:
    """At most two backends to price touches on: where requests can run and frames can
    meet their deadlines (touches elsewhere change no frame's fate). Ignoring touches on a
    backend is valid: the chains then pay nothing there."""
    ts = problem.ts
    requests = {b for c in served for s in c.segments
                for b, d in enumerate(ts.seg_dur_us[s].tolist()) if d != INELIGIBLE}
    frames: dict[int, int] = {}
    for _, _, bt in blocks:
        for release, due, dur, _ in (bt.frames if bt is not None else ()):
            for b, d in enumerate(dur):
                if d != INELIGIBLE and d <= due - release:
                    frames[b] = frames.get(b, 0) + 1
    ranked = sorted(requests & set(frames), key=lambda b: (-frames[b], b))
    return sorted(ranked[:2])


def _column_prices(bt: BlockType, lam: dict, touched: list[int]) -> np.ndarray:
    """λ·column for every column of the damage table."""
    options = _options(bt)
    per_backend = []
    for b in touched:
        row = []
        for a, c, _, _ in options:
            price = lam.get((bt, b, "full"), 0.0) if a == -1 else (
                lam.get((bt, b, "prefix", a), 0.0) + lam.get((bt, b, "suffix", c), 0.0))
            row.append(price)
        per_backend.append(np.array(row))
    total = np.zeros(tuple(len(options) for _ in touched))
    for axis, row in enumerate(per_backend):
        total = total + row.reshape([-1 if k == axis else 1 for k in range(len(touched))])
    return total


def _touches(blocks, lam: dict, touched: list[int]) -> _Touches:
    kept = [(s, e, bt) for s, e, bt in blocks if bt is not None]
    width = max(bt.levels for _, _, bt in kept) + 1
    types = list(dict.fromkeys(bt for _, _, bt in kept))  # λ per type, then per block
    of_type = {bt: i for i, bt in enumerate(types)}
    kind = np.array([of_type[bt] for _, _, bt in kept], dtype=np.int64)
    full, prefix, suffix = {}, {}, {}
    for b in touched:
        full[b] = np.array([lam.get((bt, b, "full"), 0.0) for bt in types])[kind]
        prefix[b] = np.array([[lam.get((bt, b, "prefix", a), 0.0) for a in range(width)]
                              for bt in types])[kind]
        suffix[b] = np.array([[lam.get((bt, b, "suffix", c), 0.0) for c in range(width)]
                              for bt in types])[kind]
    return _Touches(np.array([s for s, _, _ in kept], dtype=np.int64),
                    np.array([e for _, e, _ in kept], dtype=np.int64),
                    np.array([bt.quantum for _, _, bt in kept], dtype=np.int64),
                    np.array([bt.levels for _, _, bt in kept], dtype=np.int64),
                    full, prefix, suffix)


def _choose_prices(problem: Problem, setup: BlockSetup, period: int, tick_us: int
                   ) -> dict | None:
    """λ by one LP: the block side over all columns of each type, the request segments at
    every phase of one period in the middle of the run (order dropped)."""
    ts = problem.ts
    served, blocks, types, touched = setup.served, setup.blocks, setup.types, setup.touched
    tables, counts = setup.tables, setup.counts
    solver = pywraplp.Solver.CreateSolver("GLOP")
    objective = solver.Objective()
    lam: dict = {}

    def var(key, bt):
        if key not in lam:
            bound = sum(f[3] for f in bt.frames) + 1.0
            lam[key] = solver.NumVar(-bound, bound, f"lambda_{len(lam)}")
        return lam[key]

    for bt in types:
        z = solver.NumVar(-solver.infinity(), solver.infinity(), "z")
        objective.SetCoefficient(z, counts[bt])
        options = _options(bt)
        for index in itertools.product(range(len(options)), repeat=len(touched)):
            row = solver.Constraint(-solver.infinity(), float(tables[bt][index]))
            row.SetCoefficient(z, 1)
            for b, o in zip(touched, index):
                a, c, _, _ = options[o]
                keys = [(bt, b, "full")] if a == -1 else (
                    ([(bt, b, "prefix", a)] if a > 0 else [])
                    + ([(bt, b, "suffix", c)] if c < bt.levels else []))
                for key in keys:
                    v = var(key, bt)
                    row.SetCoefficient(v, row.GetCoefficient(v) + 1)
    kept = [(s, e, bt) for s, e, bt in blocks if bt is not None]
    starts = np.array([s for s, _, _ in kept])
    p0 = (int(np.median(starts)) // period) * period
    near = _Near(kept)
    seg_types: dict[tuple[int, ...], int] = {}
    for chain in served:
        for s in chain.segments:
            key = tuple(int(x) for x in ts.seg_dur_us[s])
            seg_types[key] = seg_types.get(key, 0) + 1
    for durations, mult in seg_types.items():
        v = solver.NumVar(-solver.infinity(), solver.infinity(), "v")
        objective.SetCoefficient(v, mult)
        for b, dur in enumerate(durations):
            if dur == INELIGIBLE:
                continue
            for cell in range(p0 // tick_us, (p0 + period) // tick_us):
                row = solver.Constraint(-solver.infinity(), 0)
                row.SetCoefficient(v, 1)
                if b not in touched:
                    continue
                u, end = cell * tick_us + tick_us - 1, cell * tick_us + dur
                for key, bt in _touch_keys(near.meeting(u, end), b, u, end):
                    x = var(key, bt)
                    row.SetCoefficient(x, row.GetCoefficient(x) - 1)
    objective.SetMaximization()
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        return None
    return {key: x.solution_value() for key, x in lam.items()}


class _Near:
    """The kept blocks (disjoint, in time order) meeting an interval, by bisection."""

    def __init__(self, kept: list) -> None:
        self.kept = kept
        self.starts = [s for s, _, _ in kept]
        self.ends = [e for _, e, _ in kept]

    def meeting(self, u: int, v: int) -> list:
        return self.kept[bisect.bisect_right(self.ends, u):bisect.bisect_left(self.starts, v)]


def _touch_keys(kept, b: int, u: int, v: int):
    """The touches (λ keys) of a segment surely occupying [u, v) on b (slow, for the LP)."""
    if u >= v:
        return
    for start, end, bt in kept:
        if end <= u or start >= v:
            continue
        if start >= u and end <= v:
            yield (bt, b, "full"), bt
        elif start >= u:  # crosses the start, ends inside
            level = (v - start) // bt.quantum
            if level > 0:
                yield (bt, b, "prefix", min(level, bt.levels - 1)), bt
        elif end <= v:  # starts inside, crosses the end
            level = -((start - u) // bt.quantum)
            if level < bt.levels:
                yield (bt, b, "suffix", level), bt
