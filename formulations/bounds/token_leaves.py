"""The window bound cut by when token 1 comes: leaves over the time of the first token.

The window bound's relaxation (``windows``) lets a request's prefill (its work up to
token 1) and its decode share an interval's time, each on its own backend: at 2,048-token
prompts, prefill on the NPU until 1.52 s while decode ran in the GPU's slack from 0.94 s.
No schedule does that.

1. **Leaves.** In any schedule, token 1 is done at some T1 within [the earliest end, the
   latest end] of the segment emitting it; the first-token work then ends by T1, and the
   decode starts from T1 on. So T1's range is cut into leaves, and for a leaf [lo, hi] the
   group's relaxation is solved again with narrower windows: prefill ends by hi, decode
   starts at lo (plus the fastest decode before each segment). Every schedule whose T1
   lies in the leaf is feasible for that relaxation, so the least bound over leaves that
   cover the range bounds every schedule. A leaf whose relaxation is infeasible holds no
   schedule; a leaf's bound is at least its parent's (it is a restriction of it).
2. **Search.** The range is cut in ``FIRST_CUT``, then the leaf with the least bound is
   halved — along the request whose range in it is widest — until ``LEAF_SOLVES`` MILPs
   (of ``LEAF_NODES`` nodes each) are spent, or every leaf reaches what the caller needs
   (``enough``: the row is then within its tolerance): deterministic, unless the
   caller's clock (``stop``) ends it; the bound so far holds then too.
3. **Which groups.** Whole groups only: a part of a group cut in parts (more than
   ``MAX_GROUP_FRAMES`` frames) holds the phases that meet its frames, and its leaves would
   bring back the others. Groups whose relaxations are equal up to a shift (``windows``'
   memo) share a refined value only when their leaves are equal too (``leaf_shape``: the
   leaves narrow each segment's window, where the memo key holds each phase's bounds):
   sharing on the key alone gave a bound of 2 where the optimum is 1.

With 2,048-token prompts kill-aware-fast's 12 equal groups go from 59 frames to 64 (in 29
s); the leaves left are at 64 and 65. There is no certificate, as for the window bound.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import numpy as np

from rtgen_opt.supervise import interrupted

from ..problem import Problem
from .windows import Phase, WindowBound, group_bound, integral, request_chains, \
    request_phases, window_bound

# kill-aware-fast at 2,048 tokens, 12 solves: 64 in 29 s at 30 nodes, 36 s at 60; 63 in
# 15 s at the root alone, 64 after 20 such in 25 s; halving from the start with 100: 63
LEAF_SOLVES = 12  # MILPs per group shape
LEAF_NODES = 30
FIRST_CUT = 4


def refined_window_bound(problem: Problem, enough: float, leaf_solves: int = LEAF_SOLVES,
                         stop: Callable[[], bool] = lambda: False) -> WindowBound | None:
    """The window bound, its groups (the most frequent shapes first) refined over token
    1's time while the total is below ``enough`` and ``stop()`` is false."""
    bound = window_bound(problem)
    if bound is None:
        return None
    ends = request_chains(problem)[1]
    alike: dict[tuple, list] = {}  # (shape, leaves) -> its parts
    for part in bound.parts:
        if part.whole:
            key = (part.key, leaf_shape(problem, part.start, part.phases, ends))
            alike.setdefault(key, []).append(part)
    total, refined = bound.value, 0
    for same in sorted(alike.values(), key=len, reverse=True):
        if total >= enough or interrupted() or stop():
            break
        first = same[0]
        goal = first.value + (enough - total) / len(same)  # enough for the total
        value = first_token_leaves(problem, first.phases, first.frames, first.value,
                                   leaf_solves, stop, goal)
        if value > first.value:
            total += len(same) * (value - first.value)
            refined += 1
    return WindowBound(total, bound.groups, bound.proven_groups, bound.wall_s, bound.parts,
                       refined)


def first_token_leaves(problem: Problem, phases: list[Phase], frames: list[int],
                       value: float, solves: int = LEAF_SOLVES,
                       stop: Callable[[], bool] = lambda: False,
                       goal: float = math.inf) -> float:
    """One group's bound ``value`` (its relaxation over every time of token 1) raised by
    the leaves of the module docstring; the search ends early once every leaf is at
    least ``goal``."""
    jobs = {p.job for p in phases}
    box = {j: r for j, r in token_one_ranges(problem, phases).items() if r[0] < r[1]}
    if not box:
        return value
    order = itertools.count()  # ties between leaves go by age, never to their boxes
    leaves = [(value, next(order), box)]  # (bound, tie-break, token 1 range per request)
    parts = FIRST_CUT  # the whole range first, then halves
    while solves >= parts and not (interrupted() or stop()):
        bound, _, box = heapq.heappop(leaves)
        if math.isinf(bound):  # every leaf infeasible: keep the group's own bound
            return value
        if bound >= goal:
            heapq.heappush(leaves, (bound, next(order), box))
            break
        job = max(box, key=lambda j: (box[j][1] - box[j][0], -j))
        lo, hi = box[job]
        if hi - lo < parts:
            heapq.heappush(leaves, (bound, next(order), box))
            break
        edges = [lo + (hi - lo) * k // parts for k in range(parts + 1)]
        for piece in itertools.pairwise(edges):
            narrow = {**box, job: piece}
            leaf = [p for p in request_phases(problem, narrow) if p.job in jobs]
            found, _ = group_bound(problem, leaf, frames, LEAF_NODES)
            heapq.heappush(leaves, (max(bound, integral(problem, frames, found)),
                                    next(order), narrow))
        solves -= parts
        parts = 2
    least = min(b for b, _, _ in leaves)
    return value if math.isinf(least) else max(value, least)


def token_one_ranges(problem: Problem, phases: list[Phase]) -> dict[int, tuple[int, int]]:
    """Per request of the group whose first token is scheduled: [earliest, latest] end of
    the segment emitting it (its latest end as the phases have it: a dependent's start
    included)."""
    ranges = {}
    ends = request_chains(problem)[1]
    for job in sorted({p.job for p in phases}):
        service = problem.token_service(job)
        if service is None:
            continue
        segs = list(problem.segments(job))
        cut = segs.index(service[0])
        earliest = int(problem.window(job)[0][cut]) + problem.ts.fastest_us(service[0])
        ranges[job] = (earliest, int(ends[job][cut]))
    return ranges


def leaf_shape(problem: Problem, lo: int, phases: list[Phase],
               ends: dict[int, np.ndarray]) -> tuple:
    """What the leaves read of a group's requests beyond its memo key, relative to its
    start: per job, its durations, its segments' windows (``ends``: ``request_chains``'),
    its token due times and which job of the group it waits for."""
    ts = problem.ts
    jobs = sorted({p.job for p in phases},
                  key=lambda j: (min(p.lo for p in phases if p.job == j), j))
    shape = []
    for job in jobs:
        service = problem.token_service(job)
        segs = list(problem.segments(job))
        due = None if service is None else (
            None if service[2] is None else service[2] - lo, service[3] - lo,
            segs.index(service[0]))
        pred = int(ts.job_after[job])
        shape.append((ts.seg_dur_us[segs].tobytes(), (problem.window(job)[0] - lo).tobytes(),
                      (ends[job] - lo).tobytes(), due,
                      jobs.index(pred) if pred in jobs else -1))
    return tuple(shape)
