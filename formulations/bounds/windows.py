"""The window bound: a preemptive relaxation around the requests, solved exactly.

Per-tick prices tied to the frames' phase cannot see a request's own deadlines: "500 ms
of decode work before a last-token deadline 620 ms away" costs frames only near that
request, and a periodic price cannot be high there and nowhere else. This bound prices
each request's surroundings on their own, with a small MILP.

1. **Groups.** Each required request's *span* runs from its release to its last due time
   (the end of the run, or a service-matched last-token deadline). Overlapping spans form
   a group; a group's frames are the firm jobs whose windows meet its span. Groups share
   no frame (a frame meeting two groups goes to the earlier one).
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
3. **Segments longer than a frame's slack.** On a single-instance backend b, take the
   frames of one task whose single segment can run on b, with disjoint windows of length
   L_k, slack σ (the largest window length less the duration on b) and span S (first
   window start to last window end), and the request classes whose shortest duration on
   b is at least D > 2σ (W: their work on b inside S). Such a segment cannot lie inside
   the window of a frame kept on b (it would leave less than the frame's duration), so
   it covers no such window and meets one only at its two ends, using at most σ of it at
   each; the segments meeting S are those inside it (at most W / D) and one at each edge
   of S that a class's window crosses (c ≤ 2 edges). Hence W ≤ |S| − Σ_k L_k·on_b(k) +
   2σ (W / D + c), written (1 − 2σ/D) W + Σ_k L_k·on_b(k) ≤ |S| + 2σc. It sees that a
   34 ms prefill layer cannot use the 2.7 ms each SR frame leaves on the NPU.
4. **Validity.** An optimal schedule of the problem, restricted to a group's frames and
   the requests, is feasible for that group's relaxation (with n_b the class's segments
   run on b and W_b their time there: a frame segment runs on one backend instance
   without interruption, so does a request segment, each taking at least its class's
   shortest duration there, and 3. holds for every schedule),
   and its violations there are the group's frames it drops. The groups' frames are
   disjoint, so the sum over groups of the relaxations' optima — or of any proven lower
   bound on them (the MILP solver's best bound when its node limit stops it) — is **at
   most OPT**. Frames in no group count 0. Where the node limit stops the search, the
   same relaxation with frames free to migrate between backends (fewer binaries, also
   valid: it only relaxes step 2) is solved too and the larger bound kept.

The MILP solver (SCIP inside OR-Tools, one thread, a node limit: deterministic) reports
its proven dual bound; there is no exportable certificate for it, so a bound chosen from
here is reported without one (``rtgen-opt verify-bound`` checks the Lagrangian and block
certificates only). Groups equal up to a shift of time (requests every 5 s among periodic
frames) are solved once.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from itertools import product
from dataclasses import dataclass

import numpy as np
from ortools.linear_solver import pywraplp

from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE
from rtgen_opt.supervise import interrupted, stoppable

from ..problem import Problem

MAX_NODES = 200  # branch-and-bound nodes per group: a work limit, so the bound is
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


@dataclass(frozen=True)
class WindowBound:
    value: float  # Σ over groups of the proven bounds
    groups: int  # MILPs solved: the groups, a large one counted once per part
    proven_groups: int  # of those, solved to optimality
    wall_s: float


def window_bound(problem: Problem, nodes: int = MAX_NODES) -> WindowBound | None:
    """The bound of the module docstring, or None when the problem has no required
    request (the other bounds cover frames alone)."""
    started = time.perf_counter()
    phases = request_phases(problem)
    if not phases:
        return None
    total, proven, groups = 0.0, 0, span_groups(phases)
    firm = _firm_jobs(problem)
    taken: set[int] = set()
    memo: dict[tuple, tuple[float, bool]] = {}
    parts = 0
    for lo, hi, members in groups:
        if interrupted():
            break
        frames = [j for j in firm if j not in taken and _meets(problem, j, lo, hi)]
        taken.update(frames)
        for chunk, near in _split(problem, members, frames):
            if interrupted():  # Ctrl-C: the parts so far are a valid bound (each is >= 0)
                break
            key = _shape(problem, min(p.lo for p in near), near, chunk)
            if key not in memo:
                memo[key] = best_group_bound(problem, near, chunk, nodes)
            value, exact = memo[key]
            total += value
            proven += exact
            parts += 1
    return WindowBound(total, parts, proven, time.perf_counter() - started)


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


def request_phases(problem: Problem) -> list[Phase]:
    """The phases of every required request and of the jobs it waits for."""
    ts = problem.ts
    in_problem = set(int(j) for j in problem.job_ids)
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
            ends[j] = _latest_ends(problem, j, due)
        return ends[j]

    return [p for j in sorted(paths)
            for p in _job_phases(problem, j, latest_ends(j), tuple(paths[j]))]


def _latest_ends(problem: Problem, job: int, due: int | None) -> np.ndarray:
    """Latest end of each scheduled segment of ``job``: its window, the first-token and
    last due times, and ``due`` (its dependents' latest start), less the fastest work
    after it."""
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
        if first_by is not None:
            latest_end[:cut + 1] = np.minimum(latest_end[:cut + 1],
                                              first_by - (after[:cut + 1] - after[cut]))
    return latest_end


def _job_phases(problem: Problem, job: int, latest_end: np.ndarray,
                paths: tuple[int, ...]) -> list[Phase]:
    """Runs of segments with the same usable backends, split after token 1, each inside
    [earliest start of its first segment, latest end of its last]."""
    ts = problem.ts
    segs = list(problem.segments(job))
    earliest = problem.window(job)[0]
    service = problem.token_service(job)
    cut = -1 if service is None else segs.index(service[0])  # a phase ends at token 1
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
                ts.seg_dur_us[list(problem.segments(j))].tobytes()) for j in frames)
    return rel, fr, tuple((b, s - lo, e - lo) for b, s, e in problem.blocked)


# ----------------------------------------------------------------------------- the MILP


def best_group_bound(problem: Problem, phases: list[Phase], frames: list[int],
                     nodes: int = MAX_NODES) -> tuple[float, bool]:
    """The group's bound with one backend per frame segment; where the node limit stops
    it, the larger of it and the bound of the smaller model that lets frames migrate
    (both are valid: so is their maximum)."""
    value, exact = group_bound(problem, phases, frames, nodes)
    if not exact and not interrupted():
        value = max(value, group_bound(problem, phases, frames, nodes, one_backend=False)[0])
    return value, exact


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
        return 0.0, False  # the requests cannot be served at all: any bound holds; stay 0
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return 0.0, False
    bound = model.constant + solver.Objective().BestBound()
    return max(0.0, bound), status == pywraplp.Solver.OPTIMAL


def _cuts(problem: Problem, phases: list[Phase], frames: list[int]) -> np.ndarray:
    """The group's elementary intervals: between consecutive window bounds."""
    points = {p.lo for p in phases} | {p.hi for p in phases}
    for j in frames:
        earliest, latest_end = problem.window(j)
        points |= set(int(x) for x in earliest) | set(int(x) for x in latest_end)
    return np.array(sorted(points), dtype=np.int64)


class _GroupMilp:
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

    def add_long_segments(self) -> None:
        """Segments too long for the slack a frame leaves in its window (module docstring,
        3.): one constraint per task, single-instance backend and duration threshold, over
        the frames that meet the windows of the segments at least that long."""
        for b, threshold, frames in self._thresholds(_window_slack):
            slack = _window_slack(frames)
            lo, hi = frames[0][1], frames[-1][2]
            inside = set(self.inside(lo, hi))
            # (1 - 2 slack / D) W + Σ_k L_k on_b(k) <= |S| + 2 slack × edges crossed
            crossed = sum(any(d >= threshold and p_lo < x < p_hi
                              for d, p_lo, p_hi in self.spans[b]) for x in (lo, hi))
            row = self.solver.Constraint(-self.solver.infinity(), hi - lo + 2 * slack * crossed)
            for d, e, w in self.long[b]:
                if d >= threshold and e in inside:
                    row.SetCoefficient(w, 1 - 2 * slack / threshold)
            for on_b, f_lo, f_hi, _ in frames:
                row.SetCoefficient(on_b, f_hi - f_lo)

    def add_gap_counts(self) -> None:
        """Whole segments between kept frames (module docstring, 4.): at most α of them
        per frame not kept on b, over the frames that meet the segments' windows."""
        for b, threshold, frames in self._thresholds(_period_slack):
            period, slack = _period(frames), _period_slack(frames)
            lo, hi = frames[0][1], frames[-1][2]
            counted = [n for d, p_lo, p_hi, n in self.counts[b]
                       if d >= threshold and lo <= p_lo and p_hi <= hi]
            alpha = max((period * r + 2 * slack) // threshold / r
                        for r in range(1, len(frames) + 1))
            # Σ n_b <= α Σ_k (1 - on_b(k))
            row = self.solver.Constraint(-self.solver.infinity(), alpha * len(frames))
            for n in counted:
                row.SetCoefficient(n, 1)
            for on_b, _, _, _ in frames:
                row.SetCoefficient(on_b, alpha)

    def _thresholds(self, slack) -> list[tuple[int, int, list[tuple]]]:
        """(backend b, duration D, frames) for each task on a single-instance backend and
        each request class duration D on b: the task's frames that meet the windows of the
        request segments at least D long on b, where D > 2 × ``slack``(those frames)."""
        ts, made = self.problem.ts, []
        for (_, b), placed in sorted(self.placed.items(), key=lambda item: item[0]):
            every = _disjoint(placed)
            if ts.instances[b] != 1 or not every:
                continue
            for threshold in sorted({d for d, _, _ in self.long.get(b, ())}):
                spans = [(lo, hi) for d, lo, hi in self.spans[b] if d >= threshold]
                lo, hi = min(x for x, _ in spans), max(y for _, y in spans)
                frames = [f for f in every if f[1] < hi and f[2] > lo]
                if frames and threshold > 2 * slack(frames):
                    made.append((b, threshold, frames))
        return made

    def add_conflicts(self) -> None:
        """Two frame segments whose windows' hull is shorter than their durations on a
        single-instance backend are never both on it: on_b(i) + on_b(j) <= 1."""
        ts = self.problem.ts
        for b in range(len(ts.instances)):
            if ts.instances[b] != 1:
                continue
            tasks = sorted(t for t, c in self.placed if c == b)
            for n, t1 in enumerate(tasks):
                for t2 in tasks[n + 1:]:
                    self._conflict_pairs(self.placed[(t1, b)], self.placed[(t2, b)])

    def _conflict_pairs(self, first: list[tuple], second: list[tuple]) -> None:
        """The conflicts between two tasks' frames on one backend (sorted by window)."""
        second = sorted(second, key=lambda f: f[1])
        starts = [f[1] for f in second]
        longest = max(hi - lo for _, lo, hi, _ in second)
        for on_i, lo_i, hi_i, dur_i in first:
            for on_j, lo_j, hi_j, dur_j in second[bisect_left(starts, lo_i - longest):]:
                if lo_j >= hi_i:
                    break
                if hi_j > lo_i and dur_i + dur_j > max(hi_i, hi_j) - min(lo_i, lo_j):
                    row = self.solver.Constraint(-self.solver.infinity(), 1)
                    row.SetCoefficient(on_i, 1)
                    row.SetCoefficient(on_j, 1)

    def add_shared_windows(self) -> None:
        """A request shares a window with frames (module docstring, 5.): R <= free +
        (|W| - free) Σ_f (1 - keep_f), per window and path."""
        owners = {owner for owner, _ in self.own if owner[0] == "path"}
        for (lo, hi), frames in sorted(self.windows.items(), key=lambda item: item[0]):
            intervals = list(self.inside(lo, hi))
            for owner in sorted(owners):
                terms = [w for e in intervals for w in self.own.get((owner, e), ())]
                if not terms:
                    continue
                usable = set().union(*(self.reach[(owner, e)] for e in intervals
                                       if (owner, e) in self.reach))
                free = _free_time(self.problem.ts.instances, hi - lo, usable,
                                  [dur for _, dur in frames])
                if free >= hi - lo:
                    continue
                # R + (|W| - free) Σ_f keep_f <= free + (|W| - free) × frames
                row = self.solver.Constraint(-self.solver.infinity(),
                                             free + (hi - lo - free) * len(frames))
                for w in terms:
                    row.SetCoefficient(w, 1)
                for keep, _ in frames:
                    row.SetCoefficient(keep, hi - lo - free)

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


def _disjoint(placed: list[tuple]) -> list[tuple]:
    """Frames of one task whose windows do not overlap, in time order (all of them when
    the deadline is at most the period)."""
    kept: list[tuple] = []
    for f in sorted(placed, key=lambda f: (f[1], f[2])):
        if not kept or f[1] >= kept[-1][2]:
            kept.append(f)
    return kept


def _window_slack(frames: list[tuple]) -> int:
    """The largest window length less the duration (step 3's σ)."""
    return max(hi - lo - dur for _, lo, hi, dur in frames)


def _period(frames: list[tuple]) -> int:
    """The longest window or distance between consecutive window starts."""
    return max([hi - lo for _, lo, hi, _ in frames]
               + [g[1] - f[1] for f, g in zip(frames, frames[1:])])


def _period_slack(frames: list[tuple]) -> int:
    """The period less the shortest duration (step 4's σ')."""
    return _period(frames) - min(dur for _, _, _, dur in frames)


def _free_time(instances: tuple, length: int, usable: set[int],
               frames: list[dict[int, int]]) -> float:
    """The most time a request on the ``usable`` backends can work in a window of
    ``length`` that also holds every one of ``frames`` (durations per backend), each on one
    backend: at least Σ_b busy_b - (|usable| - 1) × length of it has every usable backend
    busy (busy_b: the time all of b's instances are), over every way to place the frames."""
    best = 0.0
    for placing in product(*(sorted(f.items()) for f in frames)):
        load = dict.fromkeys(range(len(instances)), 0)
        for b, dur in placing:
            load[b] += dur
        if any(load[b] > instances[b] * length for b in load):
            continue  # the frames do not fit side by side on b
        busy = sum(max(0, load[b] - (instances[b] - 1) * length) for b in usable)
        best = max(best, length - max(0, busy - (len(usable) - 1) * length))
    return best


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
