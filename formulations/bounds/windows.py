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

5. **When token 1 comes**: ``token_leaves`` cuts the relaxation by the time of token 1,
   where a caller asks for more (``window_bound`` gives it the parts to refine).
6. **Integers.** When a group's frame weights are integers, so is its relaxation's
   optimum: a proven bound is rounded up (less the solver's tolerance).

The MILP solver (SCIP inside OR-Tools, one thread, a node limit: deterministic) reports
its proven dual bound; there is no exportable certificate for it, so a bound chosen from
here is reported without one (``rtgen-opt verify-bound`` checks the Lagrangian and block
certificates only). Groups equal up to a shift of time (requests every 5 s among periodic
frames) are solved once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NamedTuple

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


class Part(NamedTuple):
    """One group's MILP (or a part's, of a group cut in parts): its memo key, its start,
    its requests' phases and frames, its proven bound, and whether it is a whole group."""

    key: tuple
    start: int
    phases: list[Phase]
    frames: list[int]
    value: float
    whole: bool


@dataclass(frozen=True)
class WindowBound:
    value: float  # Σ over groups of the proven bounds
    groups: int  # MILPs solved: the groups, a large one counted once per part
    proven_groups: int  # of those, solved to optimality
    wall_s: float
    parts: tuple[Part, ...] = ()  # what ``token_leaves`` may refine
    refined: int = 0  # group shapes whose bound ``token_leaves`` raised


def window_bound(problem: Problem, nodes: int = MAX_NODES) -> WindowBound | None:
    """The bound of the module docstring, or None when the problem has no required
    request (the other bounds cover frames alone)."""
    started = time.perf_counter()
    phases = request_phases(problem)
    if not phases:
        return None
    total, proven, groups = 0.0, 0, span_groups(phases)
    # a firm job a required request waits for must run: it is request work (its phases),
    # never a frame the relaxation may drop (counted as both, it was counted twice)
    required = {p.job for p in phases}
    firm = [j for j in _firm_jobs(problem) if j not in required]
    taken: set[int] = set()
    memo: dict[tuple, tuple[float, bool]] = {}
    parts: list[Part] = []
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
            value, exact = memo[key]
            parts.append(Part(key, start, near, chunk, value,
                              len(frames) <= MAX_GROUP_FRAMES))
            total += value
            proven += exact
    return WindowBound(total, len(parts), proven, time.perf_counter() - started,
                       tuple(parts))


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


def integral(problem: Problem, frames: list[int], value: float) -> float:
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
    return integral(problem, frames, max(0.0, bound)), status == pywraplp.Solver.OPTIMAL


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
