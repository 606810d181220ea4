"""The window bound: a preemptive relaxation around the requests, solved exactly.

Per-tick prices tied to the frames' phase cannot see a request's own deadlines: "500 ms
of decode work before a last-token deadline 620 ms away" costs frames only near that
request, and a periodic price cannot be high there and nowhere else. This bound prices
each request's surroundings on their own, with a small MILP.

1. **Groups.** Each required request's *span* runs from its release to its last due time
   (the end of the run, or a service-matched last-token deadline). Overlapping spans form
   a group; a group's frames are the firm jobs whose windows meet its span, except those
   a required request waits for (`after`): those must run, and count as its work. Groups
   share no frame (a frame meeting two groups goes to the earlier one).
2. **Relaxation of one group** (its frames, every required request): segments may be cut
   and resumed (preemption), a job's segments keep only their own windows (earliest start
   from the release and the fastest work before them; latest end from the deadline, the
   first-token due time for the segments up to token 1, or the last due time, less the
   fastest work after them), transfers take no time. What is kept: a kept frame does each
   segment's work inside the segment's window, **on one backend** (a binary choice per
   segment and backend; a backend whose duration exceeds the window is never chosen); on
   each backend and elementary interval (between consecutive release, deadline and due
   times) the work fits the instances' time less the blocked time; a job — and a request
   with the jobs it waits for, which run before it — runs on one backend at a time.
   Request work is counted in *phases* (runs of segments with the same window bounds'
   source and backends), each split into **duration classes** (segments within 2 % of each
   other on every backend: decode layers, the LM head, prefill layers): a class runs a
   whole number n_b of its segments on each backend b (a segment is never split between
   backends), Σ_b n_b ≥ its segments, and its time there is W_b ≥ n_b × (its shortest
   duration on b). Counted fractionally instead (Σ_b W_b / shortest_b ≥ segments), a layer
   could run partly on the NPU and partly on the GPU: scenario_d's fcfs requests were
   bounded at 10 frames each, now 13.
3. **Rows between frames and requests** (``window_cuts``, each proved there): a segment
   longer than twice a frame's slack cannot use the slack the frame leaves (a 34 ms
   prefill layer among SR frames); whole segments between kept frames come α per frame
   not kept (2 SR frames for such a layer, where step 3 alone counts the slack fluidly:
   1.7); two frames that do not fit side by side on a backend are not both on it; a
   request shares a window with frames only for the time they leave it when all are kept.
4. **Validity.** An optimal schedule of the problem, restricted to a group's frames and
   the requests, is feasible for that group's relaxation (with n_b the class's segments
   run on b and W_b their time there: a frame segment runs on one backend instance
   without interruption, so does a request segment, each taking at least its class's
   shortest duration there, and every row of 3. holds for every schedule),
   and its violations there are the group's frames it drops. The groups' frames are
   disjoint, so the sum over groups of the relaxations' optima — or of any proven lower
   bound on them (the MILP solver's best bound when its node limit stops it) — is **at
   most OPT**. Frames in no group count 0. Where the node limit stops the search, the
   same relaxation with frames free to migrate between backends (fewer binaries, also
   valid: it only relaxes step 2) is solved too and the larger bound kept.

5. **When token 1 comes** (``first_token_leaves``, only where a caller asks for more than
   step 4 gave). The relaxation lets a request's prefill (up to token 1) and its decode
   share an interval's time, each on its own backend; a schedule runs one after the
   other. In any schedule, token 1 is done at some T1 in [its earliest, its latest end],
   and then the first-token work ends by T1 and the decode starts from T1 on. So the
   range of T1 is cut into *leaves*: the relaxation with those narrower windows, for T1 in
   [lo, hi] (prefill ends by hi, decode starts at lo), bounds every schedule whose T1 lies
   there, and the least bound over leaves covering the range bounds them all (a leaf whose
   relaxation is infeasible holds no schedule). The range is cut in four, then the leaf
   with the least bound is halved until a number of solves is spent — deterministic
   (unless the caller's clock stops it). Whole groups only (a part of a cut group would
   bring back in its leaves the phases the cut left out), and a refined value is shared
   only by groups whose leaves are equal too (``_leaf_shape``). With 2,048-token prompts,
   where prefill on the NPU and decode on the GPU overlapped, kill-aware-fast's groups go
   from 59 frames to 64.
6. **Integers.** When a group's frame weights are integers, so is its relaxation's
   optimum: a proven bound is rounded up (less the solver's tolerance).

The MILP solver (SCIP inside OR-Tools, one thread, a node limit: deterministic) reports
its proven dual bound; there is no exportable certificate for it, so a bound chosen from
here is reported without one (``rtgen-opt verify-bound`` checks the Lagrangian and block
certificates only). Groups equal up to a shift of time (requests every 5 s among periodic
frames) are solved once.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ortools.linear_solver import pywraplp

from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE
from rtgen_opt.supervise import interrupted, stoppable

from ..problem import Problem
from .window_cuts import FrameCuts

MAX_NODES = 400  # branch-and-bound nodes per group: a work limit, so the bound is
# deterministic (one thread); scenario_c's fcfs groups are solved exactly well within it
# (74 a request), kill-aware-fast's stop at 41.7 a request (1,000 nodes: 42.1, 5,000: 42.4)
MAX_GROUP_FRAMES = 500  # frames per MILP: larger groups are cut (scenario_c's groups of
# one request hold 150-420 frames; with 2,048-token prompts ftf's and kill-aware's requests
# overlap through the whole run, 7,200 frames, whose MILP does not finish its LP in 20 s)
SAFETY_S = 20.0  # wall-clock cap per group, only for a stalled machine
# step 5: MILPs per group shape when refining over token 1's time, each with this node
# limit, the range first cut in FIRST_CUT leaves, then the least leaf halved (kill-aware-
# fast at 2,048 tokens, 12 solves: 64 in 29 s at 30 nodes, 36 s at 60; 63 in 15 s at the
# root alone, 64 after 20 such in 25 s; halving from the start with 100 nodes: 63)
LEAF_SOLVES = 12
LEAF_NODES = 30
FIRST_CUT = 4


@dataclass(frozen=True)
class Phase:
    """Consecutive request segments counted together: ``count`` of them inside [lo, hi),
    at least ``shortest[b]`` µs each on backend b (absent: not usable)."""

    job: int
    lo: int
    hi: int
    count: int
    shortest: dict[int, int]
    paths: tuple[int, ...]  # the requests whose chains hold this job (one at a time each)


@dataclass(frozen=True)
class WindowBound:
    value: float  # Σ over groups of the proven bounds
    groups: int  # MILPs solved: the groups, a large one counted once per part
    proven_groups: int  # of those, solved to optimality
    wall_s: float
    refined: int = 0  # group shapes whose bound step 5 raised


def window_bound(problem: Problem, nodes: int = MAX_NODES, enough: float | None = None,
                 leaf_solves: int = LEAF_SOLVES,
                 stop: Callable[[], bool] = lambda: False) -> WindowBound | None:
    """The bound of the module docstring, or None when the problem has no required
    request (the other bounds cover frames alone). While the total is below ``enough``,
    the group shapes (most frequent first) are refined over token 1's time (step 5),
    until ``stop()`` says the caller's time is short (the bound so far holds)."""
    started = time.perf_counter()
    phases = request_phases(problem)
    if not phases:
        return None
    ends = request_chains(problem)[1]
    total, proven, groups = 0.0, 0, span_groups(phases)
    # a firm job a required request waits for must run: it is request work (its phases),
    # never a frame the relaxation may drop (counted as both, it was counted twice)
    required = {p.job for p in phases}
    firm = [j for j in _firm_jobs(problem) if j not in required]
    taken: set[int] = set()
    memo: dict[tuple, tuple[float, bool]] = {}
    # parts with equal relaxations *and* equal leaves (step 5 reads more than the shape)
    alike: dict[tuple, list[tuple[list[Phase], list[int]]]] = {}
    parts = 0
    for lo, hi, members in groups:
        if interrupted():
            break
        frames = [j for j in firm if j not in taken and _meets(problem, j, lo, hi)]
        taken.update(frames)
        for chunk, near in _split(problem, members, frames):
            if interrupted():  # Ctrl-C: the parts so far are a valid bound (each is >= 0)
                break
            start = min(p.lo for p in near)
            key = _shape(problem, start, near, chunk)
            if key not in memo:
                memo[key] = best_group_bound(problem, near, chunk, nodes)
            if len(frames) <= MAX_GROUP_FRAMES:  # step 5 refines whole groups only: a
                # part's leaves would bring back the phases its cut left out
                alike.setdefault((key, _leaf_shape(problem, start, near, ends)), []).append(
                    (near, chunk))
            value, exact = memo[key]
            total += value
            proven += exact
            parts += 1
    refined = 0
    # step 5, the most frequent parts first, while the total is short of `enough`
    for (key, _), same in sorted(alike.items(), key=lambda kv: -len(kv[1])):
        if enough is None or total >= enough or interrupted() or stop():
            break
        near, chunk = same[0]
        value = first_token_leaves(problem, near, chunk, memo[key][0], leaf_solves, stop)
        if value > memo[key][0]:
            total += len(same) * (value - memo[key][0])
            refined += 1
    return WindowBound(total, parts, proven, time.perf_counter() - started, refined)


def _leaf_shape(problem: Problem, lo: int, phases: list[Phase],
                ends: dict[int, np.ndarray]) -> tuple:
    """What step 5 reads of a part's requests beyond its shape, relative to its start: per
    job, its durations, its segments' windows (``ends``: ``request_chains``'), its token
    due times and which job of the part it waits for (the leaves narrow these per segment,
    where the shape holds each phase's bounds only)."""
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


def _split(problem: Problem, phases: list[Phase], frames: list[int]) -> list[tuple]:
    """(frames, phases) of each part of a group: a group of more than MAX_GROUP_FRAMES
    (requests overlapping through the whole run) is cut into runs of that many frames in
    release order, each with the phases whose windows meet its frames' windows — a part
    keeps a subset of the requests, a relaxation, and the parts share no frame."""
    if len(frames) <= MAX_GROUP_FRAMES:
        return [(frames, phases)]
    ts = problem.ts
    frames = sorted(frames, key=lambda j: (int(ts.job_release_us[j]), j))
    parts = []
    for start in range(0, len(frames), MAX_GROUP_FRAMES):
        chunk = frames[start:start + MAX_GROUP_FRAMES]
        lo = min(int(ts.job_release_us[j]) for j in chunk)
        hi = max(int(ts.job_deadline_us[j]) for j in chunk)
        near = [p for p in phases if p.lo < hi and p.hi > lo]
        if near:
            parts.append((chunk, near))
    return parts


def _firm_jobs(problem: Problem) -> list[int]:
    ts = problem.ts
    return [int(j) for j in problem.job_ids if int(ts.job_deadline_us[j]) != NO_DEADLINE]


def _meets(problem: Problem, job: int, lo: int, hi: int) -> bool:
    ts = problem.ts
    return int(ts.job_release_us[job]) < hi and int(ts.job_deadline_us[job]) > lo


def request_phases(problem: Problem, token1: dict[int, tuple[int, int]] | None = None
                   ) -> list[Phase]:
    """The phases of every required request and of the jobs it waits for; ``token1``
    (request -> [lo, hi]) narrows a request's windows to schedules whose first token is
    done within [lo, hi]: its first-token work ends by hi, its decode starts at lo."""
    token1 = token1 or {}
    paths, ends = request_chains(problem, token1)
    return [p for j in sorted(paths)
            for p in _job_phases(problem, j, ends[j], tuple(paths[j]), token1.get(j))]


def request_chains(problem: Problem, token1: dict[int, tuple[int, int]] | None = None
                   ) -> tuple[dict[int, list[int]], dict[int, np.ndarray]]:
    """Per job a required request waits for (itself included): the requests waiting for
    it, and its segments' latest ends (``_latest_ends``, a predecessor's before its
    dependents' latest start)."""
    token1 = token1 or {}
    ts = problem.ts
    in_problem = {int(j) for j in problem.job_ids}
    required = [j for j in sorted(in_problem) if int(ts.job_deadline_us[j]) == NO_DEADLINE
                and j not in problem.optional]
    paths: dict[int, list[int]] = {}  # job -> the required requests waiting for it
    for request in required:
        # its predecessors run before it, one at a time
        for j in ts.chain(request, within=in_problem):
            paths.setdefault(j, []).append(request)
    dependents: dict[int, list[int]] = {j: [] for j in paths}
    for j in paths:
        if int(ts.job_after[j]) in paths:
            dependents[int(ts.job_after[j])].append(j)
    ends: dict[int, np.ndarray] = {}

    def latest_ends(j: int) -> np.ndarray:  # a predecessor ends before its dependents start
        if j not in ends:
            due = min([int(latest_ends(d)[0]) - ts.fastest_us(problem.segments(d)[0])
                       for d in dependents[j]], default=None)
            ends[j] = _latest_ends(problem, j, due, token1.get(j))
        return ends[j]

    for j in sorted(paths):
        latest_ends(j)
    return paths, ends


def _latest_ends(problem: Problem, job: int, due: int | None,
                 token1: tuple[int, int] | None = None) -> np.ndarray:
    """Latest end of each scheduled segment of ``job``: its window, the first-token and
    last due times (the first token by ``token1``'s end too), and ``due`` (its
    dependents' latest start), less the fastest work after it."""
    ts = problem.ts
    segs = list(problem.segments(job))
    latest_end = problem.window(job)[1].copy()
    fastest = np.array([ts.fastest_us(s) for s in segs], dtype=np.int64)
    after = np.concatenate([np.cumsum(fastest[::-1])[::-1][1:], [0]])
    if due is not None:
        latest_end = np.minimum(latest_end, due - after)
    service = problem.token_service(job)
    if service is not None:
        first_seg, _, first_by, last_by = service
        cut = segs.index(first_seg)
        latest_end = np.minimum(latest_end, last_by - after)
        if token1 is not None:
            first_by = token1[1] if first_by is None else min(first_by, token1[1])
        if first_by is not None:
            latest_end[:cut + 1] = np.minimum(latest_end[:cut + 1],
                                              first_by - (after[:cut + 1] - after[cut]))
    return latest_end


def _job_phases(problem: Problem, job: int, latest_end: np.ndarray,
                paths: tuple[int, ...], token1: tuple[int, int] | None = None
                ) -> list[Phase]:
    """Runs of segments with the same usable backends, split after token 1, each inside
    [earliest start of its first segment, latest end of its last]; with ``token1``, the
    segments after token 1 start from its ``lo`` on."""
    ts = problem.ts
    segs = list(problem.segments(job))
    earliest = problem.window(job)[0]
    service = problem.token_service(job)
    cut = -1 if service is None else segs.index(service[0])  # a phase ends at token 1
    if token1 is not None and cut >= 0:
        fastest = np.array([ts.fastest_us(s) for s in segs[cut + 1:]], dtype=np.int64)
        before = np.concatenate([[0], np.cumsum(fastest)[:-1]])
        earliest = earliest.copy()
        earliest[cut + 1:] = np.maximum(earliest[cut + 1:], token1[0] + before)
    phases, i = [], 0
    while i < len(segs):
        usable = tuple(ts.seg_dur_us[segs[i]] != INELIGIBLE)
        k = i
        while k + 1 < len(segs) and k != cut \
                and tuple(ts.seg_dur_us[segs[k + 1]] != INELIGIBLE) == usable:
            k += 1
        lo, hi = int(earliest[i]), int(latest_end[k])
        for count, shortest in duration_classes(ts.seg_dur_us[segs[i:k + 1]]):
            phases.append(Phase(job, lo, hi, count, shortest, paths))
        i = k + 1
    return phases


CLASS_TOLERANCE = 0.02  # segments within 2 % of a class's shortest durations join it


def duration_classes(durations: np.ndarray) -> list[tuple[int, dict[int, int]]]:
    """(count, shortest duration per usable backend) of each class of segments whose
    durations lie within CLASS_TOLERANCE of each other on every backend: a 2.4 ms LM head
    among 0.5 ms decode layers is counted at 2.4 ms, not at the phase's 0.5 ms."""
    rows, counts = np.unique(durations, axis=0, return_counts=True)
    usable = rows[0] != INELIGIBLE  # the same in every row of a phase
    classes: list[tuple[np.ndarray, int]] = []  # (shortest durations, segments)
    for row, count in zip(rows[:, usable], counts):
        for n, (low, size) in enumerate(classes):
            if (row <= (1 + CLASS_TOLERANCE) * low).all() \
                    and (low <= (1 + CLASS_TOLERANCE) * row).all():
                classes[n] = (np.minimum(low, row), size + int(count))
                break
        else:
            classes.append((row, int(count)))
    backends = np.flatnonzero(usable)
    return [(size, {int(b): int(d) for b, d in zip(backends, low)}) for low, size in classes]


def span_groups(phases: list[Phase]) -> list[tuple[int, int, list[Phase]]]:
    """(lo, hi, phases) of each group of requests whose spans overlap, in time order."""
    spans: dict[int, list[Phase]] = {}
    for p in phases:  # a job shared by several requests goes with the first of them
        spans.setdefault(p.paths[0], []).append(p)
    order = sorted(spans.values(), key=lambda ps: min(p.lo for p in ps))
    groups: list[tuple[int, int, list[Phase]]] = []
    for ps in order:
        lo, hi = min(p.lo for p in ps), max(p.hi for p in ps)
        if groups and lo < groups[-1][1]:
            g_lo, g_hi, members = groups[-1]
            groups[-1] = (g_lo, max(g_hi, hi), members + ps)
        else:
            groups.append((lo, hi, list(ps)))
    return groups


def _shape(problem: Problem, lo: int, members: list[Phase], frames: list[int]) -> tuple:
    """Groups equal up to a shift of time have equal relaxations (memo key): everything
    the MILP reads, relative to the group's start."""
    ts = problem.ts
    paths = sorted({q for p in members for q in p.paths})
    rel = tuple((p.lo - lo, p.hi - lo, p.count, tuple(sorted(p.shortest.items())),
                 tuple(paths.index(q) for q in p.paths)) for p in members)
    fr = tuple((ts.tasks[ts.job_task[j]].weight, int(ts.job_release_us[j]) - lo,
                int(ts.job_deadline_us[j]) - lo,
                ts.seg_dur_us[list(problem.segments(j))].tobytes(),
                # the segments' windows, narrowed by `after` predecessors (which a run's
                # end may cut: the same frame then has a wider window)
                *((w - lo).tobytes() for w in problem.window(j))) for j in frames)
    return rel, fr, tuple((b, s - lo, e - lo) for b, s, e in problem.blocked)


# ----------------------------------------------------------------------------- the MILP


def best_group_bound(problem: Problem, phases: list[Phase], frames: list[int],
                     nodes: int = MAX_NODES) -> tuple[float, bool]:
    """The group's bound with one backend per frame segment; where the node limit stops
    it, the larger of it and the bound of the smaller model that lets frames migrate
    (both are valid: so is their maximum). An infeasible relaxation (the requests cannot
    be served at all) counts 0: any bound would hold, the conservative one is kept."""
    value, exact = group_bound(problem, phases, frames, nodes)
    if not exact and not interrupted():
        value = max(value, group_bound(problem, phases, frames, nodes, one_backend=False)[0])
    return (0.0, False) if math.isinf(value) else (value, exact)


def first_token_leaves(problem: Problem, phases: list[Phase], frames: list[int],
                       value: float, solves: int = LEAF_SOLVES,
                       stop: Callable[[], bool] = lambda: False) -> float:
    """Step 5 of the module docstring: the group's bound ``value`` (its relaxation over
    every time of token 1) raised by cutting token 1's times into leaves; the least leaf
    is cut — along its widest request — until ``solves`` MILPs are spent."""
    jobs = {p.job for p in phases}
    box = {j: r for j, r in _token_one_ranges(problem, phases).items() if r[0] < r[1]}
    if not box:
        return value
    order = itertools.count()  # ties between leaves go by age, never to their boxes
    leaves = [(value, next(order), box)]  # (bound, tie-break, token 1 range per request)
    parts = FIRST_CUT  # the whole range first, then halves
    while solves >= parts and not (interrupted() or stop()):
        bound, _, box = heapq.heappop(leaves)
        if math.isinf(bound):  # every leaf infeasible: keep the group's own bound
            return value
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
            heapq.heappush(leaves, (max(bound, _integral(problem, frames, found)),
                                    next(order), narrow))
        solves -= parts
        parts = 2
    least = min(b for b, _, _ in leaves)
    return value if math.isinf(least) else max(value, least)


def _token_one_ranges(problem: Problem, phases: list[Phase]) -> dict[int, tuple[int, int]]:
    """Per request of the group whose first token is scheduled: [earliest, latest] end of
    the segment emitting it."""
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


def _integral(problem: Problem, frames: list[int], value: float) -> float:
    """A group's proven bound, rounded up when its frames' weights are integers (then so
    is its relaxation's optimum), less the solver's tolerance."""
    if math.isinf(value):
        return value
    ts = problem.ts
    if all(float(ts.tasks[ts.job_task[j]].weight).is_integer() for j in frames):
        return float(math.ceil(value - 1e-6 * max(1.0, abs(value))))
    return value


def group_bound(problem: Problem, phases: list[Phase], frames: list[int],
                nodes: int = MAX_NODES, one_backend: bool = True) -> tuple[float, bool]:
    """(proven lower bound, solved to optimality) of one group's relaxation; with
    ``one_backend`` each frame segment runs on one backend (a binary choice), else its
    work may be split across backends."""
    cuts = _cuts(problem, phases, frames)
    solver = pywraplp.Solver.CreateSolver("SCIP")
    solver.SetTimeLimit(int(1000 * SAFETY_S))
    solver.SetNumThreads(1)
    # SCIP would catch Ctrl-C itself and swallow it; the supervisor stops it instead
    solver.SetSolverSpecificParametersAsString(
        f"limits/nodes = {nodes}\nmisc/catchctrlc = FALSE\n")
    model = _GroupMilp(problem, solver, cuts)
    for j in frames:
        model.add_frame(j, one_backend)
    for p in phases:
        model.add_phase(p)
    model.add_capacity()
    model.add_long_segments()
    model.add_gap_counts()
    model.add_conflicts()
    model.add_shared_windows()
    solver.Objective().SetMinimization()
    with stoppable(solver.InterruptSolve):  # an interrupted search's bound still holds
        status = solver.Solve()
    if status == pywraplp.Solver.INFEASIBLE:
        return math.inf, True  # no schedule meets these windows
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return 0.0, False
    bound = model.constant + solver.Objective().BestBound()
    return _integral(problem, frames, max(0.0, bound)), status == pywraplp.Solver.OPTIMAL


def _cuts(problem: Problem, phases: list[Phase], frames: list[int]) -> np.ndarray:
    """The group's elementary intervals: between consecutive window bounds."""
    points = {p.lo for p in phases} | {p.hi for p in phases}
    for j in frames:
        earliest, latest_end = problem.window(j)
        points |= {int(x) for x in earliest} | {int(x) for x in latest_end}
    return np.array(sorted(points), dtype=np.int64)


class _GroupMilp(FrameCuts):
    """One group's relaxation: work variables per (job, backend, elementary interval)."""

    def __init__(self, problem: Problem, solver: pywraplp.Solver, cuts: np.ndarray):
        self.problem, self.solver, self.cuts = problem, solver, cuts
        self.lengths = np.diff(cuts)
        self.load: dict[tuple, list] = {}  # (backend, interval) -> work variables
        self.own: dict[tuple, list] = {}  # (owner, interval) -> work: one backend at a time
        self.constant = 0.0  # the frames' weights: objective = constant - kept weight
        # (task, backend) -> (on b: 0/1, window start, end, duration) of one-segment frames
        self.placed: dict[tuple[int, int], list[tuple]] = {}
        self.long: dict[int, list[tuple]] = {}  # backend -> (shortest, interval, work)
        self.spans: dict[int, list[tuple[int, int, int]]] = {}  # backend -> (shortest, lo, hi)
        self.counts: dict[int, list[tuple]] = {}  # backend -> (shortest, lo, hi, n_b)
        self.reach: dict[tuple, set[int]] = {}  # (owner, interval) -> backends it works on
        # window -> (keep, {backend: duration}) of the one-segment frames with that window
        self.windows: dict[tuple[int, int], list[tuple]] = {}

    def inside(self, lo: int, hi: int) -> range:
        """The elementary intervals within [lo, hi)."""
        return range(int(np.searchsorted(self.cuts, lo)), int(np.searchsorted(self.cuts, hi)))

    def work(self, backend: int, owners: list[tuple], lo: int, hi: int) -> list:
        """Fresh work variables of one job on ``backend`` in each interval of [lo, hi)."""
        made = []
        for e in self.inside(lo, hi):
            w = self.solver.NumVar(0, float(self.lengths[e]), "")
            self.load.setdefault((backend, e), []).append(w)
            for owner in owners:
                self.own.setdefault((owner, e), []).append(w)
                self.reach.setdefault((owner, e), set()).add(backend)
            made.append(w)
        return made

    def add_frame(self, job: int, one_backend: bool) -> None:
        """A kept frame does each segment's whole work inside the segment's window:
        Σ_b work_b / duration_b = keep, on one backend (binary) when ``one_backend``. A
        backend whose duration exceeds the window is never used."""
        ts, solver = self.problem.ts, self.solver
        weight = ts.tasks[ts.job_task[job]].weight
        self.constant += weight
        keep = solver.BoolVar("")
        solver.Objective().SetCoefficient(keep, -weight)
        earliest, latest_end = self.problem.window(job)
        for k, s in enumerate(self.problem.segments(job)):
            lo, hi = int(earliest[k]), int(latest_end[k])
            usable = [(b, int(d)) for b, d in enumerate(ts.seg_dur_us[s])
                      if INELIGIBLE < d <= hi - lo]
            if len(earliest) == 1:
                self.windows.setdefault((lo, hi), []).append((keep, dict(usable)))
            done = solver.Constraint(0, 0)  # Σ_b (picked or fraction on b) = keep
            done.SetCoefficient(keep, -1)
            for b, dur in usable:
                terms = self.work(b, [("frame", job)], lo, hi)
                on_b = keep if len(usable) == 1 else None
                if one_backend and len(usable) > 1:
                    pick = on_b = solver.BoolVar("")
                    done.SetCoefficient(pick, 1)
                    row = solver.Constraint(0, 0)  # Σ_e work = duration × picked
                    row.SetCoefficient(pick, -dur)
                    for w in terms:
                        row.SetCoefficient(w, 1)
                else:
                    for w in terms:
                        done.SetCoefficient(w, 1.0 / dur)
                if on_b is not None and len(earliest) == 1:
                    self.placed.setdefault((int(ts.job_task[job]), b), []).append(
                        (on_b, lo, hi, dur))

    def add_phase(self, p: Phase) -> None:
        """n_b whole segments of the phase's class run on b (an integer: a segment is
        never split between backends), taking time W_b >= n_b × shortest_b there."""
        row = self.solver.Constraint(p.count, self.solver.infinity())  # Σ_b n_b >= count
        owners = [("path", q) for q in p.paths]
        for b, shortest in p.shortest.items():
            n_b = self.solver.IntVar(0, p.count, "")
            row.SetCoefficient(n_b, 1)
            fits = self.solver.Constraint(0, self.solver.infinity())  # W_b - n_b × shortest
            fits.SetCoefficient(n_b, -shortest)
            for e, w in zip(self.inside(p.lo, p.hi), self.work(b, owners, p.lo, p.hi)):
                fits.SetCoefficient(w, 1)
                self.long.setdefault(b, []).append((shortest, e, w))
            self.spans.setdefault(b, []).append((shortest, p.lo, p.hi))
            self.counts.setdefault(b, []).append((shortest, p.lo, p.hi, n_b))

    def add_capacity(self) -> None:
        """Each backend's work in each interval fits its free time; each job (or request
        with the jobs it waits for) works at most the interval's length."""
        solver = self.solver
        capacity = _capacity(self.problem, self.cuts)
        for (b, e), terms in self.load.items():
            row = solver.Constraint(-solver.infinity(), float(capacity[b, e]))
            for w in terms:
                row.SetCoefficient(w, 1)
        for (_, e), terms in self.own.items():
            row = solver.Constraint(-solver.infinity(), float(self.lengths[e]))
            for w in terms:
                row.SetCoefficient(w, 1)


def _capacity(problem: Problem, cuts: np.ndarray) -> np.ndarray:
    """Instances × length of each elementary interval, less the blocked time in it."""
    ts = problem.ts
    lengths = np.diff(cuts).astype(float)
    cap = np.array(ts.instances, dtype=float)[:, None] * lengths[None, :]
    for b, start, end in problem.blocked:
        for e in range(len(lengths)):
            overlap = min(end, int(cuts[e + 1])) - max(start, int(cuts[e]))
            if overlap > 0:
                cap[b, e] -= overlap
    return np.maximum(cap, 0.0)
