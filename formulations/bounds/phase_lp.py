"""Choosing the prices of the Lagrangian bound: the phase LP.

Where the frames repeat every P µs, tie the prices to the phase: π(b, k) = θ(b, k mod K)
with K = P / D. Over N periods the Lagrangian then reads

    N · [Σ_patterns min(w, min θ·charge) − Σ θ·capacity] + Σ_request segments min θ·charge

and its maximum over θ ≥ 0 is a small LP: one frame *pattern* per frame of one period,
and one row per (request segment type, backend, phase) — inside a long window waiting
costs nothing, so for *choosing* θ each request segment may take any phase (order
dropped). The exact dynamic program of ``lagrangian.py`` then evaluates L at the tiled θ
with the order restored; that value is the bound, whatever this LP did. Solved with GLOP
(inside OR-Tools: no new dependency, and no second HiGHS build in the process).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from ortools.linear_solver import pywraplp

from rtgen_opt.model.taskset import INELIGIBLE, TaskSet

from ..problem import Problem
from .lagrangian import Chain, Prices, relaxed_chains

MAX_PHASES = 1000  # ticks per period in the LP; above it the tick grows (weaker, faster)


def frame_period_us(ts: TaskSet) -> int | None:
    """The period (µs) after which every periodic release repeats exactly, or None."""
    if ts.hyperperiod_s is None:
        return None
    period = Fraction(ts.hyperperiod_s) * 1_000_000
    return int(period.numerator)  # the smallest whole-µs multiple of the hyperperiod


def phase_tick(period_us: int, target_us: int) -> int:
    """The divisor of the period nearest ``target_us`` from below, with at most
    ``MAX_PHASES`` ticks per period."""
    target = max(target_us, math.ceil(period_us / MAX_PHASES))
    divisors = [d for d in range(1, math.isqrt(period_us) + 1) if period_us % d == 0]
    divisors += [period_us // d for d in divisors]
    fitting = [d for d in divisors if d <= target and period_us // d <= MAX_PHASES]
    return max(fitting) if fitting else period_us


def _charges(dur: int, s_min: int, s_max: int, cell: int, d: int) -> list[tuple[int, float]]:
    """(tick, charge) of one placement: see ``lagrangian.segment_cost``."""
    out = [(cell, float(min(dur, (cell + 1) * d - s_max)))]
    k = cell + 1
    while k * d < s_min + dur:
        out.append((k, float(min(d, s_min + dur - k * d))))
        k += 1
    return out


def phase_prices(problem: Problem, tick_us: int = 500) -> tuple[Prices, dict] | None:
    """Prices from the phase LP tiled over the run, and facts about the LP; None when the
    problem's frames have no period (the bound then needs other prices)."""
    ts = problem.ts
    firm, served = relaxed_chains(problem)
    period = frame_period_us(ts)
    if period is None or not firm:
        return None
    d = phase_tick(period, tick_us)
    k_phases = period // d
    starts = np.array([c.earliest[0] for c in firm])
    p0 = (int((starts.min() + starts.max()) // 2) // period) * period
    patterns = [c for c in firm if p0 <= c.earliest[0] < p0 + period]
    if not patterns:
        return None
    periods = len(firm) / len(patterns)

    solver = pywraplp.Solver.CreateSolver("GLOP")
    backends = range(len(ts.backends))
    theta = [[solver.NumVar(0, solver.infinity(), f"theta_{b}_{k}") for k in range(k_phases)]
             for b in backends]
    objective = solver.Objective()
    for b in backends:
        for k in range(k_phases):
            objective.SetCoefficient(theta[b][k], -periods * ts.instances[b] * d)

    def at_most_price(var, dur, b, s_min, s_max, cell):
        row = solver.Constraint(-solver.infinity(), 0)
        row.SetCoefficient(var, 1)
        for tick, amount in _charges(dur, s_min, s_max, cell, d):
            phase = tick % k_phases
            row.SetCoefficient(theta[b][phase],
                               row.GetCoefficient(theta[b][phase]) - amount)

    for n, chain in enumerate(patterns):
        u = solver.NumVar(0, chain.weight, f"u_{n}")
        objective.SetCoefficient(u, periods)
        parts = [u] if len(chain.segments) == 1 else [
            solver.NumVar(0, solver.infinity(), f"v_{n}_{i}") for i in chain.segments]
        if len(parts) > 1:
            link = solver.Constraint(-solver.infinity(), 0)
            link.SetCoefficient(u, 1)
            for v in parts:
                link.SetCoefficient(v, -1)
        _price_segments(problem, chain, parts, d, at_most_price)

    for durations, count in _segment_types(ts, served).items():
        v = solver.NumVar(0, solver.infinity(), "v_request")
        objective.SetCoefficient(v, count)
        for b, dur in enumerate(durations):
            if dur == INELIGIBLE:
                continue
            for k in range(k_phases):
                at_most_price(v, dur, b, k * d, (k + 1) * d - 1, k)
    objective.SetMaximization()
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        return None
    theta_values = np.array([[max(0.0, v.solution_value()) for v in row] for row in theta])
    last = max(c.due for c in firm)
    num_ticks = last // d + 1
    tiled = theta_values[:, np.arange(num_ticks) % k_phases]
    facts = {"tick_us": d, "period_us": period, "phases": k_phases, "patterns": len(patterns),
             "lp_rows": solver.NumConstraints(), "lp_value": objective.Value()}
    return Prices(d, tiled, k_phases), facts


def _price_segments(problem: Problem, chain: Chain, parts, d: int, at_most_price) -> None:
    """Rows v_i <= θ·charge for every placement of each segment of a frame pattern."""
    ts = problem.ts
    durations = ts.seg_dur_us[list(chain.segments)]
    fastest = np.where(durations == INELIGIBLE, np.iinfo(np.int64).max, durations).min(axis=1)
    after = np.concatenate([np.cumsum(fastest[::-1])[::-1][1:], [0]])
    for i, (var, row) in enumerate(zip(parts, durations.tolist())):
        for b, dur in enumerate(row):
            latest = chain.due - int(after[i]) - dur
            if dur == INELIGIBLE or latest < chain.earliest[i]:
                continue
            for cell in range(chain.earliest[i] // d, latest // d + 1):
                at_most_price(var, dur, b, max(chain.earliest[i], cell * d),
                              min(latest, (cell + 1) * d - 1), cell)


def _segment_types(ts: TaskSet, served: list[Chain]) -> dict[tuple[int, ...], int]:
    """Request segments grouped by their durations per backend, with their counts."""
    types: dict[tuple[int, ...], int] = {}
    for chain in served:
        for s in chain.segments:
            key = tuple(int(x) for x in ts.seg_dur_us[s])
            types[key] = types.get(key, 0) + 1
    return types
