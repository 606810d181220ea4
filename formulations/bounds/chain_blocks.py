"""The chain-block bound: each chain pays the exact block damage of its own touches.

The block bound (``blocks.py``) prices each touch on its own: a block's damage is not the
sum of its touches' (an NPU prefix and an NPU suffix kill SR frames they share: 2
together, 1 + 2 apart), so no price charges a request what its touches cost *alone*, and
even one request with nothing to share with is bounded below what it must lose. Here the
chain side pays each block's damage for its own touches and the block side keeps only what
touches of *several* chains save together. Blocks, touches, columns and f_B are those of
``blocks.py`` (steps 1-3 there).

1. **Own columns.** In one block a chain leaves at most one prefix and one suffix (they
   both hold an instant of the block's start or end, and a chain runs one segment at a
   time), the prefix ending no later than the suffix starts; or one full touch. This is
   its *own column* c_{i,B}. Each touch of the block's column C_B belongs to exactly one
   chain, so the own columns of the chains touching B partition C_B's touches, into at
   most K_B parts: K_B, the number of served chains whose window [first release, due]
   meets B, bounds the chains that can touch it.
2. **Any costs g.** Pick any real g_B(c) per block and own column (g(∅) = 0). Then

       f_B(C_B) = Σ_i g_B(c_{i,B}) + [f_B(C_B) − Σ_i g_B(c_{i,B})]
               ≥ Σ_i g_B(c_{i,B}) + m_B,
       m_B = min over columns C and partitions of C's touches into ≤ K_B own columns of
             f_B(C) − Σ_parts g_B(part).

   Summed over blocks, with each chain's terms gathered:

       L(g) = Σ_blocks m_B + Σ_served chains min over placements Σ_B g_B(c_{i,B})

   and an optimal schedule's drops in B are at least f_B(C_B) (``blocks.py`` step 4), so
   **L(g) ≤ OPT for every g**: g = f_B makes the chain pay its exact damage alone (where
   K_B = 1, m_B = 0: one request in a block loses exactly what it costs alone); g = λ·c
   (touch prices) gives back the block bound, with m_B restricted to ≤ K_B parts.
3. **The chain program** keeps, beside (segment, backend, cell), the prefix the chain left
   in the block it is in: it pays g(prefix) when it leaves one, then g(prefix + suffix) −
   g(prefix) instead of g(suffix) when a later segment's suffix lies in that block. The
   state passes through segments that touch nothing, and a segment may take it only when
   its suffix's block is one where the previous segment may have started ([s_min, s_max]
   of its cell meets it) or held the prefix: the true placement's prefix is then always
   taken (it is in the block of every start between), and any other taking is a choice
   the minimum may refuse (it keeps the option without the state). A minimum over more
   options is lower: still valid.
4. **Choosing g.** Where K_B = 1, g = f_B (m_B = 0, no program needed for it);
   elsewhere g = λ·c with λ the block bound's LP prices. So the bound is never below
   the block bound at the same λ: per block the chain pays at least its λ·c side (where
   K_B = 1, f_B(c) − λ·c ≥ the block bound's minimum over columns) and m_B ranges over
   fewer partitions. Where every block a chain can use is shared (K_B ≥ 2), as on 60 s of
   scenario_c at OD 30 FPS (requests every 5 s, each may wait 12.3 s), it gives the block
   bound back; pricing what several chains save together beyond that needs g per chain
   (the block side then knows which chain holds which touch), not tried yet.

There is no exportable certificate for it: ``solve`` names it "no certificate" and writes
the block bound's certificate with ``--bound-out``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..problem import Problem
from .blocks import BlockSetup, _choose_prices, _options, block_setup
from .lagrangian import INF, Chain, segment_placements
from .phase_lp import frame_period_us

BIG = 1e18  # "no value" inside the program (finite, so differences stay defined)


@dataclass(frozen=True)
class ChainBlockBound:
    value: float
    blocks: int
    classes: int  # (block type, K) pairs
    single: int  # blocks only one chain can touch


@dataclass
class Costs:
    """g for the own columns of one block class: ``pre[b, a]``, ``suf[b, c]``, ``full[b]``,
    ``pair[b, a, b2, c]`` (prefix level a on touched backend b, suffix level c on b2)."""

    pre: np.ndarray
    suf: np.ndarray
    full: np.ndarray
    pair: np.ndarray


# ----------------------------------------------------------------------------- own damage


def own_damage(setup: BlockSetup, bt) -> Costs:
    """f_B of every own column of a block type (the table of ``blocks.py``)."""
    options = _options(bt)
    index = {(a, c): o for o, (a, c, _, _) in enumerate(options)}
    n, t = bt.levels, len(setup.touched)
    table = setup.tables[bt]
    none = index[(0, n)]

    def f(per_backend: dict[int, tuple[int, int]]) -> float:
        return float(table[tuple(index[per_backend.get(k, (0, n))] for k in range(t))])

    pre, suf = np.zeros((t, n + 1)), np.zeros((t, n + 1))
    full = np.array([f({k: (-1, n)}) for k in range(t)])
    pair = np.zeros((t, n + 1, t, n + 1))
    for k in range(t):
        for a in range(1, n):
            pre[k, a] = f({k: (a, n)})
            suf[k, a] = f({k: (0, a)})
    for k, k2 in itertools.product(range(t), repeat=2):
        for a in range(1, n):
            for c in range(a, n):
                pair[k, a, k2, c] = f({k: (a, c)}) if k == k2 else f({k: (a, n), k2: (0, c)})
    assert index[(0, n)] == none
    return Costs(pre, suf, full, pair)


def block_side(setup: BlockSetup, bt, g: Costs, k_max: int) -> float:
    """m_B: min over columns C and partitions of C's touches into at most ``k_max`` own
    columns of f_B(C) − Σ g(parts) (step 2)."""
    options = _options(bt)
    n, t = bt.levels, len(setup.touched)
    table = setup.tables[bt]
    best = INF
    for column in itertools.product(range(len(options)), repeat=t):
        pres, sufs, fulls = [], [], []
        for k, o in enumerate(column):
            a, c, _, _ = options[o]
            if a == -1:
                fulls.append(k)
                continue
            if a > 0:
                pres.append((k, a))
            if c < n:
                sufs.append((k, c))
        singles = (sum(g.pre[k, a] for k, a in pres) + sum(g.suf[k, c] for k, c in sufs)
                   + sum(g.full[k] for k in fulls))
        touches = len(pres) + len(sufs) + len(fulls)
        paid = -INF
        for matching in _matchings(pres, sufs):  # prefixes paired with later suffixes
            if touches - len(matching) > k_max:
                continue
            value = singles + sum(g.pair[k, a, k2, c] - g.pre[k, a] - g.suf[k2, c]
                                  for (k, a), (k2, c) in matching)
            paid = max(paid, value)
        if paid > -INF:
            best = min(best, float(table[column]) - paid)
    return best


def _matchings(pres, sufs):
    """Every set of disjoint (prefix, suffix) pairs a chain can hold: prefix level ≤
    suffix level (the prefix ends before the suffix starts)."""
    yield ()
    for size in range(1, min(len(pres), len(sufs)) + 1):
        for chosen in itertools.combinations(pres, size):
            for order in itertools.permutations(sufs, size):
                if all(a <= c for (_, a), (_, c) in zip(chosen, order)):
                    yield tuple(zip(chosen, order))


# ----------------------------------------------------------------------------- chains


@dataclass
class _Blocks:
    """The kept blocks in time order and, per block, its class's g."""

    starts: np.ndarray
    ends: np.ndarray
    quantum: np.ndarray
    levels: np.ndarray
    cls: np.ndarray
    costs: list[Costs]  # per class
    stateful: np.ndarray  # per class: does g differ from a sum over single touches?

    def locate(self, x: np.ndarray) -> np.ndarray:
        """Index of the last block starting before x (−1: none)."""
        return np.searchsorted(self.starts, x, "right") - 1

    def inside(self, j: np.ndarray, x: np.ndarray) -> np.ndarray:
        jc = np.clip(j, 0, len(self.starts) - 1)
        return (j >= 0) & (x > self.starts[jc]) & (x < self.ends[jc])


def _touch_costs(blocks: _Blocks, k: int, s_min, s_max, dur: int, width: int):
    """Per cell of a segment on touched backend index k: (cost without any state,
    correction per incoming prefix state (states × cells), outgoing prefix state or 0,
    has touches)."""
    u, v = s_max, s_min + dur
    sure = u < v
    m = len(blocks.starts)
    cells = len(u)
    base = np.zeros(cells)
    states = 1 + len(blocks.costs[0].pre) * width
    corr = np.zeros((states, cells))
    touched = np.zeros(cells, dtype=bool)
    out = np.zeros(cells, dtype=np.int64)
    if not m:
        return base, corr, out, touched
    # suffix: the block holding u, the segment running past its end
    j = blocks.locate(u)
    jc = np.clip(j, 0, m - 1)
    crosses = sure & blocks.inside(j, u) & (v >= blocks.ends[jc])
    c = np.where(crosses, -((blocks.starts[jc] - u) // blocks.quantum[jc]), 0)
    is_suf = crosses & (c < blocks.levels[jc])
    cc = np.where(is_suf, c, 0)
    suf_cost = np.array([blocks.costs[z].suf[k] for z in range(len(blocks.costs))])
    base += np.where(is_suf, suf_cost[blocks.cls[jc], cc], 0.0)
    # fulls: blocks with start >= u and end <= v
    first = np.searchsorted(blocks.starts, u, "left")
    last = np.searchsorted(blocks.ends, v, "right") - 1
    full_cost = np.array([blocks.costs[z].full[k] for z in range(len(blocks.costs))])
    cum = np.concatenate([[0.0], np.cumsum(full_cost[blocks.cls])])
    has_full = sure & (last >= first)
    base += np.where(has_full, cum[np.maximum(last, first - 1) + 1] - cum[first], 0.0)
    # prefix: the block holding v, when it starts at or after u
    p = np.searchsorted(blocks.starts, v, "left") - 1
    pc = np.clip(p, 0, m - 1)
    level = np.where(sure & (p >= 0), (v - blocks.starts[pc]) // blocks.quantum[pc], 0)
    is_pre = sure & (p >= 0) & (blocks.starts[pc] >= u) & (v < blocks.ends[pc]) & (level > 0)
    a = np.where(is_pre, np.minimum(level, blocks.levels[pc] - 1), 0)
    pre_cost = np.array([blocks.costs[z].pre[k] for z in range(len(blocks.costs))])
    base += np.where(is_pre, pre_cost[blocks.cls[pc], a], 0.0)
    out = np.where(is_pre, 1 + k * width + a, 0)
    touched = is_suf | has_full | is_pre
    # a suffix taking a prefix state of its block: pay the pair instead of two singles
    for z, g in enumerate(blocks.costs):
        if not blocks.stateful[z]:
            continue
        here = np.nonzero(is_suf & (blocks.cls[jc] == z))[0]
        if not len(here):
            continue
        ch = cc[here]
        for k0 in range(g.pre.shape[0]):
            for a0 in range(1, g.pre.shape[1] - 1):
                delta = g.pair[k0, a0, k, ch] - g.pre[k0, a0] - g.suf[k, ch]
                corr[1 + k0 * width + a0, here] = np.where(a0 <= ch, delta, 0.0)
    return base, corr, out, touched


def _segmented_suffix_min(values: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """For each column t, the row-wise minimum over t' >= t with seg[t'] == seg[t] (seg
    non-decreasing)."""
    out = values.copy()
    n = out.shape[1]
    step = 1
    while step < n:
        same = seg[step:] == seg[:-step]
        if not same.any():
            break
        out[:, :-step] = np.where(same, np.minimum(out[:, :-step], out[:, step:]),
                                  out[:, :-step])
        step *= 2
    return out


def chain_cost(problem: Problem, chain: Chain, d: int, blocks: _Blocks,
               touched: list[int], width: int) -> float:
    """min over the chain's placements of Σ_B g_B(own column): the program of step 3."""
    transfer = problem.ts.transfer_us[chain.task]
    lo, hi = chain.earliest[0], chain.due
    near = (blocks.ends > lo) & (blocks.starts < hi)
    stateful = bool(blocks.stateful[blocks.cls[near]].any()) if near.any() else False
    states = 1 + len(touched) * width if stateful else 1
    nxt = None  # per backend: (first cell, values (states × cells), u block, u inside)
    for i, options in segment_placements(problem, chain, d):
        current = {}
        for b, dur, cells, s_min, s_max in options:
            count = len(cells)
            if b in touched:
                base, corr, out, has = _touch_costs(blocks, touched.index(b), s_min, s_max,
                                                    dur, width)
                corr = corr[:states]
                out = np.minimum(out, states - 1) if states > 1 else np.zeros_like(out)
            else:
                base, corr = np.zeros(count), np.zeros((states, count))
                out, has = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=bool)
            value = base[None, :] + corr
            if nxt is not None:
                gap = 0 if chain.job_breaks[i + 1] else None
                cont = _continuation(nxt, s_min, s_max, dur, transfer[b], gap, d, blocks,
                                     states, out)
                pass_through = ~has
                own = cont[out, np.arange(count)]  # the state this segment leaves
                value = value + np.where(pass_through[None, :], cont, own[None, :])
            ya, yb = blocks.locate(s_min), blocks.locate(s_max)
            current[b] = (int(cells[0]), value, ya, yb)
        if not current:
            return INF
        nxt = current
    best = min(float(v[0].min()) for _, v, _, _ in nxt.values())
    return best if best < BIG / 2 else INF


def _continuation(nxt, s_min, s_max, dur, transfer_row, gap, d, blocks: _Blocks,
                  states: int, out: np.ndarray) -> np.ndarray:
    """(states × cells): the cheapest rest of the chain after a segment at each cell that
    leaves each state. A next segment takes the state only where a block may hold both
    the state and its start (step 3): the giver's blocks are the prefix's own, or those
    meeting this segment's start range [s_min, s_max] (a state passing through it); the
    taker's those meeting its own start range. Else it starts without the state."""
    count = len(s_min)
    cont = np.full((states, count), BIG)
    creator = out > 0
    y1 = np.where(creator, blocks.locate(s_min + dur), blocks.locate(s_min))
    y2 = np.where(creator, y1, blocks.locate(s_max))
    for b, (first_cell, values, ya, yb) in nxt.items():
        g = gap if gap is not None else int(transfer_row[b])
        start = (s_min + dur + g) // d - first_cell
        n = values.shape[1]
        ok = start < n
        idx = np.clip(start, 0, n - 1)
        plain = np.minimum.accumulate(values[0][::-1])[::-1]
        cont[0] = np.minimum(cont[0], np.where(ok, plain[idx], BIG))
        if states == 1:
            continue
        taking = values[1:]
        seg_min = _segmented_suffix_min(taking, ya)
        straddle = int(np.max(yb - ya)) if n else 0  # taker cells meeting several blocks
        for offset in range(int(np.max(y2 - y1)) + 1 if count else 0):
            y = np.minimum(y1 + offset, y2)
            # takers starting in block y: the segmented minimum from the first of them
            lo = np.searchsorted(ya, y, "left")
            at = np.maximum(start, lo)
            atc = np.clip(at, 0, n - 1)
            valid = (at < n) & (ya[atc] == y) & (y >= 0)
            cont[1:] = np.minimum(cont[1:], np.where(valid[None, :], seg_min[:, atc], BIG))
            # takers whose start range reaches into y from an earlier block
            first = np.searchsorted(yb, y, "left")
            for extra in range(straddle):
                at = first + extra
                atc = np.clip(at, 0, n - 1)
                valid = (at < n) & (at >= start) & (ya[atc] < y) & (yb[atc] >= y) & (y >= 0)
                cont[1:] = np.minimum(cont[1:], np.where(valid[None, :], taking[:, atc], BIG))
    cont[1:] = np.minimum(cont[1:], cont[0][None, :])
    return cont


# ----------------------------------------------------------------------------- bound


@dataclass(frozen=True)
class ChainSetup:
    """The block bound's setup, each kept block's K (chains that can touch it) and class."""

    base: BlockSetup
    kept: list  # (start, end, type)
    k_max: int  # K at which a block's partitions are no longer limited
    classes: list  # (type, K) per class
    cls: np.ndarray  # class per kept block
    width: int  # prefix/suffix levels + 1, over all types
    own: dict  # type -> Costs: f_B of own columns


def chain_setup(problem: Problem) -> ChainSetup | None:
    base = block_setup(problem)
    if base is None:
        return None
    kept = [(s, e, bt) for s, e, bt in base.blocks if bt is not None]
    k_max = 2 * len(base.touched)
    firsts = np.array(sorted(c.earliest[0] for c in base.served))
    dues = np.array(sorted(c.due for c in base.served))
    classes: dict = {}
    cls = []
    for s, e, bt in kept:
        k = int(np.searchsorted(firsts, e, "left") - np.searchsorted(dues, s, "right"))
        key = (bt, min(max(k, 1), k_max))
        cls.append(classes.setdefault(key, len(classes)))
    width = max(bt.levels for bt in base.types) + 1
    own = {bt: _padded(own_damage(base, bt), width) for bt in base.types}
    return ChainSetup(base, kept, k_max, list(classes), np.array(cls, dtype=np.int64),
                      width, own)


def _padded(g: Costs, width: int) -> Costs:
    t, n1 = g.pre.shape
    pre, suf = np.zeros((t, width)), np.zeros((t, width))
    pair = np.zeros((t, width, t, width))
    pre[:, :n1], suf[:, :n1], pair[:, :n1, :, :n1] = g.pre, g.suf, g.pair
    return Costs(pre, suf, g.full.copy(), pair)


def price_costs(setup: ChainSetup, bt, lam: dict) -> Costs:
    """g = λ·c: the block bound's prices per touch, own pairs paying the sum."""
    touched, width = setup.base.touched, setup.width
    t = len(touched)
    pre, suf = np.zeros((t, width)), np.zeros((t, width))
    full = np.array([lam.get((bt, b, "full"), 0.0) for b in touched])
    for k, b in enumerate(touched):
        for level in range(1, bt.levels):
            pre[k, level] = lam.get((bt, b, "prefix", level), 0.0)
            suf[k, level] = lam.get((bt, b, "suffix", level), 0.0)
    return Costs(pre, suf, full, pre[:, :, None, None] + suf[None, None, :, :])


def _blocks(setup: ChainSetup, costs: list[Costs]) -> _Blocks:
    stateful = np.array([
        not np.allclose(g.pair, g.pre[:, :, None, None] + g.suf[None, None, :, :])
        for g in costs])
    return _Blocks(np.array([s for s, _, _ in setup.kept], dtype=np.int64),
                   np.array([e for _, e, _ in setup.kept], dtype=np.int64),
                   np.array([bt.quantum for _, _, bt in setup.kept], dtype=np.int64),
                   np.array([bt.levels for _, _, bt in setup.kept], dtype=np.int64),
                   setup.cls, costs, stateful)


def _chain_shapes(problem: Problem, setup: ChainSetup, blocks: _Blocks, tick_us: int):
    """Per served chain, a key equal for chains that cost the same: equal shapes among
    equal blocks, relative to the chain's start (and its start's place in a grid cell)."""
    keys = []
    for chain in setup.base.served:
        lo = chain.earliest[0]
        first = np.searchsorted(blocks.ends, lo, "right")
        last = np.searchsorted(blocks.starts, chain.due, "left")
        keys.append((lo % tick_us, chain.due - lo, chain.task, chain.job_breaks,
                     tuple((i, t - lo) for i, t in chain.milestones),
                     tuple(e - lo for e in chain.earliest),
                     problem.ts.seg_dur_us[list(chain.segments)].tobytes(),
                     (blocks.starts[first:last] - lo).tobytes(),
                     (blocks.ends[first:last] - lo).tobytes(),
                     setup.cls[first:last].tobytes()))
    return keys


def chain_block_value(problem: Problem, setup: ChainSetup, costs: list[Costs],
                      tick_us: int = 500, block_sides: dict | None = None) -> float:
    """L(g) of step 2 for any g (one ``Costs`` per class of ``setup.classes``);
    ``block_sides``: m_B of classes already known (class -> value)."""
    value = 0.0
    for z, (bt, k) in enumerate(setup.classes):
        count = int((setup.cls == z).sum())
        m = (block_sides or {}).get(z)
        value += count * (block_side(setup.base, bt, costs[z], k) if m is None else m)
    blocks = _blocks(setup, costs)
    memo: dict = {}
    for chain, key in zip(setup.base.served, _chain_shapes(problem, setup, blocks, tick_us)):
        if key not in memo:
            memo[key] = chain_cost(problem, chain, tick_us, blocks, setup.base.touched,
                                   setup.width)
        value += memo[key] if memo[key] < INF else 0.0
    return value


def isolated_share(setup: ChainSetup) -> float:
    """The largest share, over the served chains, of the blocks in a chain's window that
    no other chain can touch (K = 1): where the bound can rise above the block bound."""
    single = np.array([k == 1 for _, k in setup.classes])[setup.cls]
    starts = np.array([s for s, _, _ in setup.kept])
    ends = np.array([e for _, e, _ in setup.kept])
    best = 0.0
    for chain in setup.base.served:
        near = (ends > chain.earliest[0]) & (starts < chain.due)
        if near.any():
            best = max(best, float(single[near].mean()))
    return best


def work(problem: Problem, setup: ChainSetup, tick_us: int) -> int:
    """Cells × segments × states of the chain programs, equal chains counted once."""
    blocks = _blocks(setup, [setup.own[bt] for bt, _ in setup.classes])
    states = 1 + len(setup.base.touched) * setup.width
    shapes = {}
    for chain, key in zip(setup.base.served, _chain_shapes(problem, setup, blocks, tick_us)):
        shapes[key] = (chain.due - chain.earliest[0]) // tick_us * len(chain.segments)
    return sum(shapes.values()) * states


def chain_block_bound(problem: Problem, tick_us: int = 500, min_share: float = 0.0,
                      max_work: int | None = None) -> ChainBlockBound | None:
    """L(g) with step 4's g; None where the block bound does not apply, where no chain
    has ``min_share`` of its window's blocks to itself, or above ``max_work``."""
    setup = chain_setup(problem)
    if setup is None or isolated_share(setup) < min_share or (
            max_work is not None and work(problem, setup, tick_us) > max_work):
        return None
    lam: dict = {}
    if any(k > 1 for _, k in setup.classes):
        lam = _choose_prices(problem, setup.base, frame_period_us(problem.ts), tick_us) or {}
    costs = [setup.own[bt] if k == 1 else price_costs(setup, bt, lam)
             for bt, k in setup.classes]
    known = {z: 0.0 for z, (_, k) in enumerate(setup.classes) if k == 1}  # g = f: m_B = 0
    value = chain_block_value(problem, setup, costs, tick_us, known)
    single = int(sum((setup.cls == z).sum() for z in known))
    return ChainBlockBound(value, len(setup.kept), len(setup.classes), single)
