"""The service-matched upper bound, a schedule built window by window around the requests
(and a lower bound beside it).

A service-matched problem (``solve.service_matched_problem``) gives each request a first-
and a last-token deadline: the policy's own. Between the requests there are only frames,
and frames alone are easy (the construction's frame mapping drops none on the built-in
scenarios). So the schedule is cut in time:

1. **Windows.** Each required request's span runs from the earliest release in its chain
   (its `after` predecessors) to its last due time (the end of the run without a token
   deadline); overlapping spans form one window, widened on both sides by the longest
   relative deadline of a frame (the margin). A window's jobs are its requests and the
   frames whose [release, deadline] lies inside (frames in `after` chains stay outside).
2. **Outside the windows** the frames keep the frames-only schedule (``frames_only``).
   Its frames that meet a window without lying inside it are the window's *boundary*: they
   stay, and the window sees them as blocked time. The margin keeps them clear of the
   requests: a boundary frame ends before the earliest release, or starts after the last
   due time, so the policy's own request rows never collide with them.
3. **Inside a window** the best of these schedules of the window's sub-problem, in
   order: the policy's own (its request rows and the frames of it that fit around the
   boundary), the construction (``construct``, honouring the token deadlines, never worse
   than the policy's), then — on windows of at most ``CPSAT_MAX_SEGMENTS`` segments —
   CP-SAT hinted with the best so far, on a deterministic budget: first on the window
   without its boundary (step 5; its answer counts where it keeps clear of the boundary),
   then with it. Each is kept only when it drops less frame weight.
4. **Equal windows are solved once.** Requests every 5 s among frames of a 50 ms pattern
   give windows equal up to a shift of time: everything the window's solve reads (its
   jobs, blocked time, deadlines and the policy's rows, relative to the window's start)
   is the memo key, and the answer is shifted to the next such window.
5. **A lower bound** comes with it: CP-SAT's proven bound on each window *without* its
   boundary frames is at most what an optimal schedule of the whole problem drops among
   the window's frames (restricted to the window's jobs, that schedule is feasible there:
   fewer jobs, no boundary), and the windows share no job, so the sum over the windows
   is at most the optimum. It has no certificate.
   5b. **The first-token part.** Of the same window, only the frames released before its
   last first-token due time, beside its requests cut after token 1 (dropping the decode
   only removes constraints): an optimal schedule restricted to them is feasible there, so
   CP-SAT's bound on that part (one worker, a work limit) also bounds what the window's
   frames lose; the larger of the two counts. It is small (scenario_a: 22 frames and 16
   prefill layers, proven in 0.2 s where the whole window's 550 segments take 16 s) and
   is solved on windows too large for CP-SAT too.

The windows' rows and the frames outside them form one schedule (instances assigned
afterwards), feasible for the whole problem: each window's answer is feasible for its
sub-problem, whose blocked time is everything of the schedule outside it that meets it.
``solve`` replays it against the problem's rules like any other schedule.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.schedule import Schedule, assign_instances
from rtgen_opt.model.taskset import NO_DEADLINE
from rtgen_opt.optimisation.construct import ConstructionFailed, construct, unserved
from rtgen_opt.optimisation.construct.driver import int_weights, weight_dropped
from rtgen_opt.optimisation.construct.frames import Frames, map_frames
from rtgen_opt.optimisation.construct.units import required_jobs
from rtgen_opt.supervise import interrupted

CONSTRUCT_SHARE = 0.3  # of a window's budget, for the construction (the rest: CP-SAT)
# above this many segments a window gets no CP-SAT: on scenario_c's 1,200-segment windows
# it needs 10 s with two workers to gain one frame over the construction, 5 s to prove
# nothing (its bound stays 0); scenario_a's 600-segment windows are proven in 0.1-20 s
CPSAT_MAX_SEGMENTS = 1000
# the first-token part's CP-SAT (step 5b): one worker, so its work limit decides
# (0.05 units a second); scenario_a's parts (22 frames, 16 layers) need 0.06-0.1 units
# (0.2 s), scenario_b's fcfs-dyn parts prove nothing in 0.2 units (1.2 s each)
FIRST_TOKEN_LIMIT_S = 3.0
FIRST_TOKEN_MAX_SEGMENTS = 1000  # scenario_d's parts: 38 frames, a RAG job, 16 layers

Say = Callable[[str], None]
Rows = list[tuple[int, int, int, int]]  # (segment, backend, start, end)


@dataclass(frozen=True)
class Window:
    """[lo, hi): the requests of one group of overlapping spans and the frames inside."""

    lo: int
    hi: int
    jobs: tuple[int, ...]  # requests (with their predecessors) and frames, sorted


class Answer(NamedTuple):
    """A window's rows, what made them, and the window's proven lower bound."""

    rows: Rows
    source: str
    bound: float = 0.0
    exact: bool = False  # the rows drop no more than the bound: optimal here


@dataclass
class MatchedReport:
    """What the windows did, for the progress line and the upper bound's method."""

    windows: int = 0
    solved: int = 0  # distinct windows (the others were shifted copies)
    lower_bound: float = 0.0  # Σ of the windows' bounds (step 5)
    exact: int = 0  # windows whose answer meets their bound
    improved_by: dict[str, int] | None = None  # source -> windows where it was kept
    wall_s: float = 0.0

    def describe(self) -> str:
        kept = ", ".join(f"{source} {n}" for source, n in sorted((self.improved_by or {})
                                                                   .items()))
        return (f"matched windows ({self.windows} around the requests, {self.solved} "
                f"solved, the rest shifted copies; best per window: {kept})")


class MatchedWindows:
    """``solve_problem``'s ``upper`` for service-matched problems: ``matched_schedule``,
    with the frames-only schedule computed once for every problem of the same task set
    and blocked time (the policies of one `gap` run)."""

    def __init__(self) -> None:
        self._base: tuple[object, tuple, Schedule] | None = None
        self._last: tuple[Problem, MatchedReport] | None = None

    def report_for(self, problem: Problem) -> MatchedReport | None:
        """The report of the windows built for ``problem`` (None: they were not)."""
        return self._last[1] if self._last and self._last[0] is problem else None

    def __call__(self, problem: Problem, budget_s: float, workers: int, seed: int,
                 floor: Schedule | None, say: Say) -> tuple[Schedule | None, str]:
        if self._base is None or self._base[0] is not problem.ts \
                or self._base[1] != problem.blocked:
            self._base = (problem.ts, problem.blocked, frames_only(problem))
        schedule, report = matched_schedule(problem, floor, budget_s, workers, seed,
                                            self._base[2], say)
        self._last = (problem, report)
        return schedule, report.describe()


def frames_only(problem: Problem) -> Schedule:
    """The problem's frames alone (requests left out), mapped and list-scheduled by the
    construction's first step: the schedule outside the windows. It depends on the task
    set and blocked time only, so one serves every service-matched problem of a run."""
    firm = [int(j) for j in problem.job_ids if problem.ts.job_deadline_us[j] != NO_DEADLINE]
    frames_problem = Problem(problem.ts, jobs=np.array(firm, dtype=np.int64),
                             blocked=problem.blocked)
    weights = _weights(frames_problem)
    board, _ = map_frames(frames_problem, weights, Frames.of(frames_problem))
    return board.schedule()


def request_windows(problem: Problem) -> list[Window]:
    """The windows of step 1, in time order (none without a required request)."""
    ts = problem.ts
    required = required_jobs(problem)
    waited_for = {int(ts.job_after[j]) for j in required}
    spans = []
    for job in sorted(required - waited_for):  # a predecessor goes with its dependents
        service = problem.token_service(job)
        chain = _chain(ts, job, required)
        due = problem.end_us if service is None else service[3]
        spans.append((min(int(ts.job_release_us[j]) for j in chain), due, chain))
    margin = _margin(problem)
    groups: list[list] = []
    for lo, hi, chain in sorted(spans, key=lambda s: (s[0], s[1])):
        lo, hi = max(0, lo - margin), hi + margin
        if groups and lo < groups[-1][1]:
            groups[-1][1] = max(groups[-1][1], hi)
            groups[-1][2] |= set(chain)
        else:
            groups.append([lo, hi, set(chain)])
    chained = {int(j) for j in ts.job_after[problem.job_ids] if j >= 0}
    firm = np.array([int(j) for j in problem.job_ids  # frames in `after` chains stay
                     if ts.job_deadline_us[j] != NO_DEADLINE and ts.job_after[j] < 0
                     and int(j) not in chained], dtype=np.int64)
    windows = []
    for lo, hi, requests in groups:
        inside = firm[(ts.job_release_us[firm] >= lo) & (ts.job_deadline_us[firm] <= hi)]
        windows.append(Window(lo, hi, tuple(sorted(requests | set(inside.tolist())))))
    return windows


def matched_schedule(problem: Problem, floor: Schedule | None, budget_s: float,
                     workers: int = 1, seed: int = 0, base: Schedule | None = None,
                     progress: Say | None = None) -> tuple[Schedule | None, MatchedReport]:
    """The schedule of the module docstring (without a required request: the frames
    alone; None when a window found nothing that serves its requests around its
    boundary, the policy's rows included), and in the report the windows' lower bound.
    ``floor``: a schedule feasible for ``problem`` (the policy's firm schedule); ``base``:
    ``frames_only(problem)`` when already computed. The windows share ``budget_s``
    equally, fixed before the first solve (reproducible with one worker)."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    report = MatchedReport(improved_by={})
    windows = request_windows(problem)
    ts = problem.ts
    base = frames_only(problem) if base is None else base
    owner = np.full(ts.num_jobs, -1)  # job -> its window
    for n, w in enumerate(windows):
        owner[list(w.jobs)] = n
    outside = [r for r in _rows(base) if owner[ts.seg_job[r[0]]] < 0]
    if not windows:  # no required request: the frames alone
        return assign_instances(outside, ts.instances), report
    owns: list[Rows] = [[] for _ in windows]
    for r in _rows(floor) if floor is not None else []:
        if owner[ts.seg_job[r[0]]] >= 0:
            owns[owner[ts.seg_job[r[0]]]].append(r)
    subs = [_sub_problem(problem, w, outside) for w in windows]
    keys = [_shape(sub, w, own) for sub, w, own in zip(subs, windows, owns)]
    each = budget_s / len(set(keys))  # per distinct window
    memo: dict[tuple, tuple[Answer, Window]] = {}  # shape -> answer, window solved
    rows = list(outside)
    for n, (window, sub, own, key) in enumerate(zip(windows, subs, owns, keys)):
        if key not in memo:
            if interrupted():  # Ctrl-C: the windows left keep the policy's own rows
                memo[key] = (_fit(sub, own) or Answer([], "none"), window)
            else:
                relaxed = _sub_problem(problem, window, [])
                memo[key] = (_solve_window(sub, relaxed, own, each, workers, seed), window)
                report.solved += 1
        answer, solved = memo[key]
        if answer.source == "none":  # a window whose requests nothing served
            return None, report
        rows += _shift(ts, answer.rows, solved, window)
        report.lower_bound += answer.bound
        report.exact += answer.exact
        report.improved_by[answer.source] = report.improved_by.get(answer.source, 0) + 1
        say(f"matched window {n + 1}/{len(windows)}: {answer.source}")
    report.windows = len(windows)
    report.wall_s = time.perf_counter() - started
    return assign_instances(rows, ts.instances), report


# ----------------------------------------------------------------------------- windows


def _chain(ts, job: int, required: set[int]) -> list[int]:
    chain = [job]
    while int(ts.job_after[chain[-1]]) in required:
        chain.append(int(ts.job_after[chain[-1]]))
    return chain


def _margin(problem: Problem) -> int:
    """The longest relative deadline of the problem's frames."""
    ts = problem.ts
    ids = problem.job_ids
    firm = ids[ts.job_deadline_us[ids] != NO_DEADLINE]
    return int((ts.job_deadline_us[firm] - ts.job_release_us[firm]).max()) if len(firm) else 0


def _sub_problem(problem: Problem, window: Window, outside: Rows) -> Problem:
    """The window's jobs, with the rows outside it that meet it as blocked time."""
    blocked = [(b, s, e) for _, b, s, e in outside if s < window.hi and e > window.lo]
    blocked += [(b, s, e) for b, s, e in problem.blocked if s < window.hi and e > window.lo]
    jobs = set(window.jobs)
    return Problem(problem.ts, jobs=np.array(window.jobs, dtype=np.int64),
                   blocked=tuple(sorted(blocked)),
                   optional=frozenset(j for j in problem.optional if j in jobs),
                   token_deadlines={j: d for j, d in problem.token_deadlines.items()
                                    if j in jobs},
                   ttft_cap_us=problem.ttft_cap_us, ttft=problem.ttft)


def _shape(sub: Problem, window: Window, own: Rows) -> tuple:
    """Everything a window's solve reads, relative to its start and to the order of its
    jobs (the memo key): equal windows have the same answer, shifted."""
    ts, lo = sub.ts, window.lo
    jobs = tuple(window.jobs)
    first = {j: int(ts.job_seg_start[j]) for j in jobs}
    index = {j: i for i, j in enumerate(jobs)}
    shape_jobs = tuple((int(ts.job_task[j]), int(ts.job_release_us[j]) - lo,
                        int(ts.job_deadline_us[j]) - lo if ts.job_deadline_us[j] != NO_DEADLINE
                        else -1, index.get(int(ts.job_after[j]), -1),
                        ts.seg_dur_us[list(sub.segments(j))].tobytes()) for j in jobs)
    deadlines = tuple(sorted((index[j], _rel(a, lo), _rel(b, lo))
                             for j, (a, b) in sub.token_deadlines.items()))
    rows = tuple(sorted((index[int(ts.seg_job[s])], s - first[int(ts.seg_job[s])], b,
                         st - lo, e - lo) for s, b, st, e in own))
    return (shape_jobs, deadlines, tuple(sorted(index[j] for j in sub.optional)),
            tuple((b, s - lo, e - lo) for b, s, e in sub.blocked),
            min(sub.end_us, window.hi) - lo, sub.ttft_cap_us, rows)


def _rel(t: int | None, lo: int) -> int | None:
    return None if t is None else t - lo


def _shift(ts, rows: Rows, solved: Window, window: Window) -> Rows:
    """Rows found for ``solved``, an equal window, moved onto ``window``: the n-th job of
    one is the n-th of the other, later by the difference of their starts."""
    if solved is window:
        return rows
    delay = window.lo - solved.lo
    to_job = dict(zip(solved.jobs, window.jobs))
    moved = []
    for s, b, st, e in rows:
        job = int(ts.seg_job[s])
        seg = int(ts.job_seg_start[to_job[job]]) + s - int(ts.job_seg_start[job])
        moved.append((seg, b, st + delay, e + delay))
    return moved


# ----------------------------------------------------------------------------- one window


def _solve_window(sub: Problem, relaxed: Problem, own: Rows, budget_s: float,
                  workers: int, seed: int) -> Answer:
    """The best of the policy's rows, the construction and CP-SAT (step 3), and the
    window's lower bound (step 5)."""
    best = _fit(sub, own)
    floor = _schedule(sub, best.rows) if best is not None else None
    try:
        built, _ = construct(sub, CONSTRUCT_SHARE * budget_s, max(1, workers), seed,
                             floor=floor)
        if not unserved(sub, built) and (best is None or _lost(sub, _rows(built))
                                         < _lost(sub, best.rows)):
            best = Answer(_rows(built), "construction")
    except ConstructionFailed:
        pass
    if best is None:  # nothing serves the window's requests around its boundary
        return Answer([], "none")
    if sum(len(sub.segments(int(j))) for j in sub.job_ids) > CPSAT_MAX_SEGMENTS:
        return _bounded(best, sub, relaxed, 0.0, seed)
    each = (1 - CONSTRUCT_SHARE) * budget_s / 2
    found = CpSatModel(relaxed).solve(each, workers, seed, hint=_schedule(sub, best.rows),
                                      stages=("violations",))
    bound = found.violations_lower_bound
    if found.schedule is not None and _fits_boundary(sub, relaxed, found.schedule) \
            and _lost(sub, _rows(found.schedule)) < _lost(sub, best.rows):
        best = Answer(_rows(found.schedule), "CP-SAT")
    if _lost(sub, best.rows) > bound * sub.weight_scale + 1e-9:
        found = CpSatModel(sub).solve(each, workers, seed, hint=_schedule(sub, best.rows),
                                      stages=("violations",))
        if found.schedule is not None and _lost(sub, _rows(found.schedule)) \
                < _lost(sub, best.rows):
            best = Answer(_rows(found.schedule), "CP-SAT")
    return _bounded(best, sub, relaxed, bound, seed)


def _bounded(best: Answer, sub: Problem, relaxed: Problem, bound: float,
             seed: int) -> Answer:
    """``best`` with the window's bound: ``bound``, or the first-token part's where that
    is larger (solved only while ``best`` is not proven optimal)."""
    if _lost(sub, best.rows) > bound * sub.weight_scale + 1e-9:
        bound = max(bound, first_token_bound(relaxed, seed))
    return best._replace(bound=bound,
                         exact=_lost(sub, best.rows) <= bound * sub.weight_scale + 1e-9)


def first_token_bound(relaxed: Problem, seed: int = 0) -> float:
    """CP-SAT's proven bound (one worker, a work limit) on the window's frames released
    before its last first-token due time, beside its requests cut after token 1 (step
    5b); 0 when there is no such part or it is too large."""
    part = first_token_part(relaxed)
    if part is None or sum(len(part.segments(int(j))) for j in part.job_ids) \
            > FIRST_TOKEN_MAX_SEGMENTS:
        return 0.0
    found = CpSatModel(part).solve(FIRST_TOKEN_LIMIT_S, 1, seed, stages=("violations",))
    return found.violations_lower_bound or 0.0


def first_token_part(relaxed: Problem) -> Problem | None:
    """The window's requests up to their first token, and the frames released before the
    last first-token due time among them (None: no request with a first token here)."""
    ts = relaxed.ts
    jobs = [int(j) for j in relaxed.job_ids]
    requests = [j for j in jobs if ts.job_deadline_us[j] == NO_DEADLINE]
    services = {j: relaxed.token_service(j) for j in requests}
    services = {j: s for j, s in services.items() if s is not None and s[2] is not None}
    if not services:
        return None
    due = max(s[2] for s in services.values())
    frames = [j for j in jobs if ts.job_deadline_us[j] != NO_DEADLINE
              and ts.job_release_us[j] < due]
    prefix = {j: s[0] - ts.job_segments(j).start + 1 for j, s in services.items()}
    return Problem(ts, jobs=np.array(sorted(frames + requests), dtype=np.int64),
                   blocked=relaxed.blocked, optional=relaxed.optional,
                   token_deadlines=relaxed.token_deadlines,
                   ttft_cap_us=relaxed.ttft_cap_us, ttft=relaxed.ttft, prefix=prefix)


def _fits_boundary(sub: Problem, relaxed: Problem, schedule: Schedule) -> bool:
    """``schedule`` (of the relaxed window) keeps clear of the boundary's rows."""
    boundary = set(sub.blocked) - set(relaxed.blocked)
    rows = _rows(schedule)
    return all(_load([(s, e) for _, c, s, e in rows if c == b], lo, hi) == 0
               for b, lo, hi in boundary)


def _fit(sub: Problem, own: Rows) -> Answer | None:
    """The policy's rows in the window: its request rows (None when one collides with
    blocked time) and its frames that fit beside them and the boundary."""
    ts = sub.ts
    busy = {b: _Busy() for b in range(len(ts.instances))}
    for b, s, e in sub.blocked:
        busy[b].add(s, e)
    requests = [r for r in own if ts.job_deadline_us[ts.seg_job[r[0]]] == NO_DEADLINE]
    for _, b, s, e in requests:
        if busy[b].load(s, e) >= ts.instances[b]:
            return None
        busy[b].add(s, e)
    kept = list(requests)
    frames: dict[int, Rows] = {}
    for r in own:
        if ts.job_deadline_us[ts.seg_job[r[0]]] != NO_DEADLINE:
            frames.setdefault(int(ts.seg_job[r[0]]), []).append(r)
    for job in sorted(frames):
        rows = frames[job]
        if len(rows) == len(sub.segments(job)) and all(
                busy[b].load(s, e) < ts.instances[b] for _, b, s, e in rows):
            for _, b, s, e in rows:
                busy[b].add(s, e)
            kept += rows
    return Answer(kept, "policy")


class _Busy:
    """One backend's busy intervals, sorted by start: a load query looks only at those
    that can reach it (a window's rows number in the tens of thousands)."""

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.longest = 0

    def add(self, s: int, e: int) -> None:
        i = bisect.bisect_right(self.starts, s)
        self.starts.insert(i, s)
        self.ends.insert(i, e)
        self.longest = max(self.longest, e - s)

    def load(self, s: int, e: int) -> int:
        """The most intervals running at once within [s, e)."""
        lo = bisect.bisect_left(self.starts, s - self.longest)
        hi = bisect.bisect_left(self.starts, e)
        near = [(a, z) for a, z in zip(self.starts[lo:hi], self.ends[lo:hi]) if z > s]
        return _load(near, s, e)


def _load(intervals: list[tuple[int, int]], s: int, e: int) -> int:
    """The most intervals in ``intervals`` running at once within [s, e)."""
    points = sorted([(max(a, s), 1) for a, z in intervals if a < e and z > s]
                    + [(min(z, e), -1) for a, z in intervals if a < e and z > s],
                    key=lambda p: (p[0], p[1]))
    most = now = 0
    for _, step in points:
        now += step
        most = max(most, now)
    return most


def _lost(sub: Problem, rows: Rows) -> float:
    """The frame weight of the window that ``rows`` leaves out."""
    return weight_dropped(sub, _schedule(sub, rows), _weights(sub))


def _rows(schedule: Schedule) -> Rows:
    done = schedule.done
    return list(zip(schedule.seg[done].tolist(), schedule.backend[done].tolist(),
                    schedule.start_us[done].tolist(), schedule.end_us[done].tolist()))


def _schedule(sub: Problem, rows: Rows) -> Schedule:
    return assign_instances(rows, sub.ts.instances)


def _weights(problem: Problem) -> np.ndarray:
    return int_weights(problem, problem.weight_scale)
