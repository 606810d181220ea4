"""The schedule-abstraction graph: does a policy meet every deadline in *every* realization?

A realization fixes each job's ready time within [arrival, arrival + jitter] and each
segment's duration within [lo, hi] on the backend it runs on (docs/check.md). Simulating a
few realizations proves nothing: non-preemptive dispatch is not sustainable — a segment
that ends early can let a long LLM layer start just before an urgent frame is ready. This
module explores every dispatch order the executor could take, in the style of the
schedule-abstraction graph (SAG) of Nasri and Brandenburg (RTSS 2017; global and
precedence variants ECRTS 2018/2019), generalised to our platform.

**State.** After some set of segments has been dispatched (in some order): per backend
instance an interval [A-, A+] of the time it becomes free; per job in progress the
interval in which its next segment becomes ready, the backend its previous segment ran on
(transfers, backend costs) and its priority key as an interval (EDF's decode deadline
follows the previous token's time); the finish interval of completed jobs that others wait
for (``after``); the earliest time the next dispatch can happen (dispatch times never
decrease).

**Expansion.** Segment s of a ready job can be the next dispatch, on instance i of backend
b, at a time t in [EST, LST]:

* EST = max(ready-, A-(i), the previous dispatch's EST);
* work conservation: t <= t_wc, the earliest time at which some pending segment is
  certainly ready while one of its eligible instances is certainly free — the executor
  dispatches something by then;
* priority: t < t_high for every pending segment s' of certainly higher priority that is
  certainly placeable at t — certainly ready, and either eligible on b (i is idle at t,
  since s starts there) or with an eligible instance certainly free;
* backend choice (dynamic policies: the idle backend of least nominal cost, ties in
  platform order): t < A+ of every instance of a better backend, and of every instance of
  b with a lower index (the executor takes the first idle instance).

The child state gets [EST + transfer + lo, LST + transfer + hi] as the finish interval of s
(the availability of i and the ready interval of the job's next segment), and every other
interval is raised to at least EST. Each concrete run follows a path of this graph with its
times inside the intervals (induction on dispatches: every rule above only excludes what
the executor cannot do), so if no edge can finish a segment after its deadline, no
realization misses: the **yes is sound**. A "possible miss" is not a proof: the caller
looks for a witness realization (:mod:`rtgen_opt.analysis.witness_search`).

Only runs without a miss matter for the verdict, so exploration stops at the first edge
that may miss: the abort of a late frame (``on_miss: drop``) never has to be modelled.

**Merging.** States with the same dispatched set (a 128-bit Zobrist hash) and the same
backends of the jobs in progress are merged when their availability intervals overlap
(the rule that keeps the analysis exact on one processor; on several it is sound, not
exact); past ``max_width`` states at one depth, all states with the same key are merged
(coarser, still sound). Breadth-first by depth.

Covered: the five classic policies (their priority and backend-choice rules, read through
the policies' own ``priority``), ``preemption: none``, any platform, chains, ``after``
(fan-out and fan-in), transfers, firm or continuing frames, requests (first token by the
give-up time, completion by the end of the drain; with ``slo``, TTFT and — bounded from
above — TPT). Not covered (the caller answers "unknown"): ``preemption: restart``,
policies that place work themselves (kill-aware) or that are not one of the five.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import numpy as np

from rtgen_opt.analysis.analysed_jobs import AnalysedJobs, analysed_jobs
from rtgen_opt.model.taskset import NO_DEADLINE, TaskSet
from rtgen_opt.simulation.policies.classic import Policy

SPLIT_PIECES = 10  # an uncertain token time is split into pieces of tpt / this
MAX_WIDTH = 4096  # states at one depth before same-key states are merged regardless
STATE_BYTES = 600  # rough size of one state, for the reported memory


@dataclass(frozen=True)
class Miss:
    """An edge on which a deadline may be missed: what, where and by how much at most."""

    job: int
    seg: int
    kind: str  # "deadline" | "give-up" | "end of the drain" | "ttft" | "tpt"
    latest_us: int  # the latest finish on that edge (or the TPT bound)
    limit_us: int
    dispatch_order: tuple[int, ...]  # segments dispatched before it, on one path


@dataclass
class GraphResult:
    """What the exploration found: no possible miss (``miss is None``) or the first one,
    and how much work it took."""

    miss: Miss | None
    complete: bool  # every segment dispatched on every path (no time-out)
    states: int = 0  # states expanded
    edges: int = 0
    merged: int = 0
    max_width: int = 0
    depth: int = 0
    wall_s: float = 0.0
    stopped: str | None = None  # why exploration stopped early, if it did

    @property
    def memory_bytes(self) -> int:
        return self.max_width * STATE_BYTES * 2

    def stats(self) -> dict:
        return {"states": self.states, "edges": self.edges, "merged": self.merged,
                "max_width": self.max_width, "depth": self.depth,
                "memory_mb": round(self.memory_bytes / 2**20, 1),
                "wall_s": round(self.wall_s, 3)}


# ----------------------------------------------------------------------------- the state

# A job in progress: (next segment, ready-, ready+, previous backend, edf-, edf+, first
# token-); edf is EDF's deadline as an interval, first token its earliest time.
_SEG, _RLO, _RHI, _PREV, _ELO, _EHI, _FIRST = range(7)


def _widen(a: tuple, b: tuple) -> tuple:
    """Two job entries of the same segment and backend, as one covering both."""
    return (a[_SEG], min(a[_RLO], b[_RLO]), max(a[_RHI], b[_RHI]), a[_PREV],
            min(a[_ELO], b[_ELO]), max(a[_EHI], b[_EHI]), min(a[_FIRST], b[_FIRST]))


@dataclass
class _State:
    """One node of the graph. ``run[i]``: the segment last dispatched on instance i, with
    its priority key interval and its job's entry before that dispatch (to put the job
    back if a more urgent segment evicts it under ``preemption: restart``)."""

    zob: int  # hash of the dispatched set
    count: int  # segments dispatched
    floor: int  # the earliest time of the next dispatch (the last dispatch's EST)
    avail: list[list[int]]  # per instance [A-, A+]
    run: list[tuple | None]  # per instance (job, seg, key-, key+, entry before)
    next_unstarted: int  # position in ``order`` of the first job not started
    started_ahead: frozenset  # started jobs beyond it
    active: dict  # job -> entry (see above)
    finished: dict  # job -> (F-, F+): done jobs that others wait for
    path: tuple = ()  # (seg, parent path): one dispatch order that reaches this state

    def merge_key(self, restart: bool) -> tuple:
        jobs = tuple(sorted((j, a[_PREV]) for j, a in self.active.items()))
        if not restart:
            return self.zob, jobs
        runs = tuple(None if r is None else (r[0], r[1], r[4][_PREV]) for r in self.run)
        return self.zob, jobs, runs

    def overlaps(self, other: _State) -> bool:
        """Merge only what overlaps: instance availability and EDF's deadlines (pieces of
        a split token time stay apart)."""
        if not all(a[0] <= b[1] and b[0] <= a[1] for a, b in zip(self.avail, other.avail)):
            return False
        return all(a[_ELO] <= b[_EHI] and b[_ELO] <= a[_EHI]
                   for job, a in self.active.items() if (b := other.active[job]))

    def absorb(self, other: _State) -> None:
        """Union with a state of the same key: every interval widened to cover both."""
        self.floor = min(self.floor, other.floor)
        for mine, theirs in zip(self.avail, other.avail):
            mine[0], mine[1] = min(mine[0], theirs[0]), max(mine[1], theirs[1])
        for job, entry in other.active.items():
            self.active[job] = _widen(self.active[job], entry)
        for job, (lo, hi) in other.finished.items():
            mine = self.finished[job]
            self.finished[job] = (min(mine[0], lo), max(mine[1], hi))
        for i, (mine, theirs) in enumerate(zip(self.run, other.run)):
            if mine is None or theirs is None or mine[:2] != theirs[:2]:
                self.run[i] = None  # (not restart) forget what ran there: no correlation
            elif mine != theirs:
                self.run[i] = (mine[0], mine[1], min(mine[2], theirs[2]),
                               max(mine[3], theirs[3]), _widen(mine[4], theirs[4]))


def _root(inp: AnalysedJobs) -> _State:
    n_inst = len(inp.inst_backend)
    return _State(0, 0, 0, [[0, 0] for _ in range(n_inst)], [None] * n_inst, 0,
                  frozenset(), {}, {})


def _fresh_entry(inp: AnalysedJobs, job: int) -> tuple:
    """The entry of a job not started yet (ready from its arrival, no previous backend)."""
    edf = inp.edf0[job]
    return (int(inp.ts.job_seg_start[job]), inp.ready_lo[job], inp.ready_hi[job], -1, edf,
            edf, NO_DEADLINE)


# ----------------------------------------------------------------------------- exploration


def explore(ts: TaskSet, policy: Policy, dur_lo: np.ndarray, dur_hi: np.ndarray,
            jitter: np.ndarray, slo: bool = False, deadline: float | None = None,
            max_width: int = MAX_WIDTH, progress=None) -> GraphResult:
    """Explore every dispatch order of ``policy`` over the ranges — states in order of
    their earliest next dispatch, merged while they wait — until a possible miss, every
    path complete, or ``deadline`` (a ``time.monotonic()`` value)."""
    started = time.perf_counter()
    inp = analysed_jobs(ts, policy, dur_lo, dur_hi, jitter, slo)
    restart = ts.preemption == "restart"
    result = GraphResult(None, False)
    pending: dict[tuple, list[_State]] = {}
    heap: list[tuple] = []
    sequence = 0

    def push(state: _State) -> None:
        nonlocal sequence
        key = state.merge_key(restart)
        group = pending.setdefault(key, [])
        for other in group:
            if other.overlaps(state):
                other.absorb(state)
                result.merged += 1
                return
        group.append(state)
        heapq.heappush(heap, (state.floor, state.count, sequence, key, state))
        sequence += 1

    push(_root(inp))
    total, last_report = ts.num_segments, 0.0
    while heap:
        _floor, count, _seq, key, state = heapq.heappop(heap)
        group = pending.get(key)
        if group is None or not any(s is state for s in group):
            continue  # absorbed into another state after it was queued
        group.remove(state)
        if not group:
            del pending[key]
        if count == total:
            continue  # every segment dispatched on this path
        result.states += 1
        result.max_width = max(result.max_width, len(heap))
        result.depth = max(result.depth, count)
        if result.states % 256 == 0:
            if deadline is not None and time.monotonic() > deadline:
                result.stopped = "time limit"
                break
            if len(heap) > max_width:
                result.merged += _merge_all(pending)
                heap = [h for h in heap if any(s is h[4] for s in pending.get(h[3], ()))]
                heapq.heapify(heap)
                if len(heap) > max_width:
                    result.stopped = f"more than {max_width} states waiting"
                    break
            if progress and time.monotonic() - last_report > 1.0:
                last_report = time.monotonic()
                # the deepest path so far: the state at hand may lie on a shallower one,
                # and progress must not seem to go backwards
                progress(f"exact analysis: {result.depth:,} of {total:,} segments "
                         f"dispatched, {len(heap):,} states waiting")
        edges = _expand(inp, state, restart)
        if not edges:
            raise AssertionError("exact analysis: a state with pending work and no "
                                 "possible dispatch")
        for edge in edges:
            result.edges += 1
            child = _child(inp, state, edge)
            if isinstance(child, Miss):
                result.miss = child
                result.wall_s = time.perf_counter() - started
                return result
            for piece in _split_token_time(inp, child, edge):
                push(piece)
    else:
        result.complete = True
    result.wall_s = time.perf_counter() - started
    return result


def _merge_all(pending: dict) -> int:
    merged = 0
    for group in pending.values():
        while len(group) > 1:
            group[0].absorb(group.pop())
            merged += 1
    return merged


# One candidate: job, seg, ready-, ready+, prev backend, key-, key+.
def _candidates(inp: AnalysedJobs, state: _State, restart: bool) -> list[tuple]:
    """Pending segments that could be dispatched next: the next segment of each job in
    progress, and jobs not started whose arrival is no later than the time by which some
    dispatch certainly happens (later ones cannot come first, nor tighten any bound)."""
    cands = []
    for job, a in state.active.items():
        seg = a[_SEG]
        cands.append((job, seg, a[_RLO], a[_RHI], a[_PREV],
                      *inp.keys.key(job, seg, (a[_ELO], a[_EHI]))))
    bound = min((_certain_start(inp, state, c, restart) for c in cands), default=NO_DEADLINE)
    order, started, after = inp.order, state.started_ahead, inp.after
    for pos in range(state.next_unstarted, len(order)):
        job = order[pos]
        if inp.ready_lo[job] > bound:
            break
        if job in started:
            continue
        entry = _fresh_entry(inp, job)
        lo, hi = entry[_RLO], entry[_RHI]
        pred = after[job]
        if pred >= 0:
            if pred not in state.finished:
                continue  # its predecessor is not done yet
            flo, fhi = state.finished[pred]
            lo, hi = max(lo, flo), max(hi, fhi)
        seg = entry[_SEG]
        cand = (job, seg, lo, hi, -1, *inp.keys.key(job, seg, (entry[_ELO], entry[_EHI])))
        cands.append(cand)
        bound = min(bound, _certain_start(inp, state, cand, restart))
    return cands


def _own(inp: AnalysedJobs, state: _State, cand: tuple, inst: int) -> bool:
    """``inst`` last ran what ``cand`` waits for (the previous segment of its job, or the
    last segment of the job it is ``after``): it is idle whenever ``cand`` is ready — the
    correlation that independent intervals would lose."""
    run = state.run[inst]
    if run is None:
        return False
    job, seg = cand[0], cand[1]
    if run[0] == job:
        return run[1] == seg - 1
    return run[0] == inp.after[job] and run[1] == inp.last_seg[run[0]] \
        and seg == inp.first_seg[job]


def _idle_for(inp: AnalysedJobs, state: _State, cand: tuple, inst: int) -> int:
    """From when ``inst`` is certainly idle, as seen by ``cand`` once it is ready."""
    return state.floor if _own(inp, state, cand, inst) else state.avail[inst][1]


def _free_for(inp: AnalysedJobs, state: _State, cand: tuple, inst: int, restart: bool) -> int:
    """From when ``inst`` is certainly available to ``cand``: certainly idle, or (restart)
    certainly running less urgent work, which it would evict."""
    run = state.run[inst]
    if restart and run is not None and run[2] > cand[6]:
        return state.floor
    return _idle_for(inp, state, cand, inst)


def _certain_start(inp: AnalysedJobs, state: _State, cand: tuple, restart: bool) -> int:
    """The earliest time by which ``cand`` is certainly ready with an eligible instance
    certainly available: by then the executor dispatches something."""
    return max(cand[3], min(_free_for(inp, state, cand, i, restart)
                            for b in inp.eligible[cand[1]] for i in inp.backend_insts[b]))


def _expand(inp: AnalysedJobs, state: _State, restart: bool) -> list[tuple]:
    """The edges out of ``state``: (candidate, instance, backend, EST, LST, evicted)."""
    cands = _candidates(inp, state, restart)
    avail, floor = state.avail, state.floor
    t_wc = min(_certain_start(inp, state, c, restart) for c in cands)
    edges = []
    for c in cands:
        job, seg, r_lo, _r_hi, prev, k_lo, _k_hi = c
        elig = inp.eligible[seg]
        lst_c = t_wc
        for h in cands:
            if h[6] < k_lo:  # certainly more urgent: c cannot start once h certainly can
                lst_c = min(lst_c, _blocks(inp, state, h, elig, restart) - 1)
        costs = _costs(inp, job, seg, prev, elig)
        free_for_c = {b: min(_free_for(inp, state, c, i, restart) for i in inp.backend_insts[b])
                      for b in elig}
        for b in elig:
            lst_b = lst_c
            h_elig_b = [h for h in cands if h[6] < k_lo and b in inp.eligible[h[1]]]
            for h in h_elig_b:  # c takes an instance of b at t: available to h too
                lst_b = min(lst_b, h[3] - 1)
            for better in elig:
                if costs[better] < costs[b] or (costs[better] == costs[b] and better < b):
                    lst_b = min(lst_b, free_for_c[better] - 1)
            insts = inp.backend_insts[b]
            for n, i in enumerate(insts):
                if any(_own(inp, state, h, i) for h in h_elig_b):
                    continue  # i is idle only once a more urgent h is ready: h goes first
                lst = lst_b
                for lower in insts[:n]:
                    lst = min(lst, _idle_for(inp, state, c, lower) - 1)
                est = max(r_lo, avail[i][0], floor)
                if est <= lst:
                    edges.append((c, i, b, est, lst, False))
            if restart:
                edges += _evictions(inp, state, c, b, lst_b)
    return edges


def _blocks(inp: AnalysedJobs, state: _State, h: tuple, elig_c: tuple, restart: bool) -> int:
    """From when a more urgent ``h`` is certainly placeable somewhere (the backends c
    itself may use are handled per backend by the caller)."""
    return max(h[3], min(_free_for(inp, state, h, i, restart)
                         for b in inp.eligible[h[1]] for i in inp.backend_insts[b]))


def _evictions(inp: AnalysedJobs, state: _State, c: tuple, b: int, lst_b: int) -> list[tuple]:
    """Restart: c takes an instance of b that runs less urgent work, when no instance of b
    is idle; the evicted segment's job waits again (it restarts from scratch)."""
    insts = inp.backend_insts[b]
    busy_until = min(_idle_for(inp, state, c, i) for i in insts) - 1  # all still busy
    est = max(c[2], state.floor)
    edges = []
    for i in insts:
        run = state.run[i]
        if run is None or run[3] <= c[5] or not _evictable(inp, state, run):
            continue  # nothing there, never less urgent, or certainly finished
        lst = min(lst_b, busy_until)
        if est <= lst:
            edges.append((c, i, b, est, lst, True))
    return edges


def _evictable(inp: AnalysedJobs, state: _State, run: tuple) -> bool:
    """The segment last dispatched on an instance may still be running: its job has not
    moved past it (nor, if it was the job's last, has a job waiting for it started)."""
    job, seg = run[0], run[1]
    entry = state.active.get(job)
    if entry is not None:
        return entry[_SEG] == seg + 1
    if seg != inp.last_seg[job]:
        return False
    return not any(_started(state, inp, d) for d in inp.dependents.get(job, ()))


def _started(state: _State, inp: AnalysedJobs, job: int) -> bool:
    return job in state.active or job in state.started_ahead or \
        inp.position[job] < state.next_unstarted


def _costs(inp: AnalysedJobs, job: int, seg: int, prev: int, elig: tuple[int, ...]) -> dict:
    """The executor's backend cost: nominal duration + transfer from the previous backend."""
    nominal = inp.nominal[seg]
    if prev < 0:
        return {b: nominal[b] for b in elig}
    moves = inp.transfer[inp.job_task[job]][prev]
    return {b: nominal[b] + moves[b] for b in elig}


def _child(inp: AnalysedJobs, state: _State, edge: tuple) -> _State | Miss:
    """The state after ``edge``, or the miss it may cause."""
    (job, seg, _lo, _hi, prev, k_lo, k_hi), inst, b, est, lst, evicts = edge
    transfer = inp.transfer[inp.job_task[job]][prev][b] if 0 <= prev != b else 0
    f_lo = est + transfer + inp.dur_lo[seg][b]
    f_hi = lst + transfer + inp.dur_hi[seg][b]
    path = (seg, state.path)
    for kind, limit in inp.checks[seg]:
        if f_hi > limit:
            return Miss(job, seg, kind, f_hi, limit, _unwind(path))
    entry = state.active.get(job) or _fresh_entry(inp, job)
    first_token = entry[_FIRST]
    token = inp.token[seg]
    if token == 1:
        first_token = f_lo
    elif token > 1 and token == inp.output_tokens[job]:
        miss = _tpt_miss(inp, job, seg, first_token, f_hi, path)
        if miss:
            return miss
    active, finished = dict(state.active), state.finished
    zob, count = state.zob ^ inp.zobrist[seg], state.count + 1
    next_unstarted, ahead = state.next_unstarted, state.started_ahead
    if job not in state.active and not _started(state, inp, job):
        next_unstarted, ahead = _mark_started(inp, next_unstarted, ahead, job)
    if evicts:  # the evicted segment's job waits again, from the eviction on
        victim_job, victim_seg, _k0, _k1, before = state.run[inst]
        active[victim_job] = (victim_seg, est, lst) + before[_PREV:]
        if victim_job in finished:
            finished = {j: f for j, f in finished.items() if j != victim_job}
        zob, count = zob ^ inp.zobrist[victim_seg], count - 1
    if seg == inp.last_seg[job]:
        active.pop(job, None)
        if job in inp.dependents:
            finished = {**finished, job: (f_lo, f_hi)}
    else:
        edf = (entry[_ELO], entry[_EHI])
        if token:
            tpt = inp.tpt[job]
            edf = (f_lo + tpt, f_hi + tpt) if tpt is not None else (inp.deadline[job],) * 2
        active[job] = (seg + 1, f_lo, f_hi, b, edf[0], edf[1], first_token)
    avail = [[max(a, est), max(h, est)] for a, h in state.avail]
    for i, free in enumerate(avail):  # what c waited for ended before c started
        if _own(inp, state, edge[0], i):
            free[1] = max(free[0], min(free[1], lst))
    avail[inst] = [f_lo, f_hi]
    run = list(state.run)
    run[inst] = (job, seg, k_lo, k_hi, entry)
    return _State(zob, count, est, avail, run, next_unstarted, ahead, active, finished, path)


def _split_token_time(inp: AnalysedJobs, state: _State, edge: tuple) -> list[_State]:
    """A token whose time is uncertain over a long interval sets EDF's deadline for the
    next decode step over the same interval — and the two are one quantity (deadline =
    token + tpt). Kept as independent intervals, an early deadline would meet a late
    dispatch; split the interval into pieces, each with its own ready time, deadline and
    the instance's availability (the union of the pieces is the whole: still sound)."""
    (job, seg, *_), inst = edge[0], edge[1]
    entry = state.active.get(job)
    tpt = inp.tpt[job]
    if (entry is None or not inp.token[seg] or tpt is None or not inp.edf_priority
            or entry[_RLO] // max(1, tpt // SPLIT_PIECES)
            == entry[_RHI] // max(1, tpt // SPLIT_PIECES)):
        return [state]
    width = max(1, tpt // SPLIT_PIECES)
    pieces = []
    # cells of a fixed grid: pieces from different paths are one cell or disjoint, so
    # merging never widens a deadline past a cell
    for cell in range(entry[_RLO] // width, entry[_RHI] // width + 1):
        lo, hi = max(entry[_RLO], cell * width), min(entry[_RHI], (cell + 1) * width - 1)
        piece = _State(state.zob, state.count, state.floor, [list(a) for a in state.avail],
                       list(state.run), state.next_unstarted, state.started_ahead,
                       dict(state.active), state.finished, state.path)
        piece.active[job] = (entry[_SEG], lo, hi, entry[_PREV], lo + tpt, hi + tpt,
                             entry[_FIRST])
        piece.avail[inst] = [lo, hi]  # the segment that emitted the token ran there
        pieces.append(piece)
    return pieces


def _tpt_miss(inp: AnalysedJobs, job: int, seg: int, first_lo: int, last_hi: int,
              path: tuple) -> Miss | None:
    """With ``slo``: TPT = (last token - first token) / (N - 1), bounded from above by the
    latest last token minus the earliest first token."""
    tpt = inp.tpt[job]
    if not inp.slo or tpt is None:
        return None
    span = tpt * (inp.output_tokens[job] - 1)
    if last_hi - first_lo > span:
        return Miss(job, seg, "tpt", last_hi - first_lo, span, _unwind(path))
    return None


def _unwind(path: tuple) -> tuple[int, ...]:
    """The dispatch order of a path kept as nested pairs (seg, parent): O(1) per edge."""
    out = []
    while path:
        seg, path = path
        out.append(seg)
    return tuple(reversed(out))


def _mark_started(inp: AnalysedJobs, pos: int, ahead: frozenset, job: int) -> tuple[int, frozenset]:
    order = inp.order
    if order[pos] != job:
        return pos, ahead | {job}
    pos += 1
    while pos < len(order) and order[pos] in ahead:
        ahead = ahead - {order[pos]}
        pos += 1
    return pos, ahead
