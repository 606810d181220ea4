"""The required requests of a problem as units of placement, and their latest ends.

A required request waits for its `after` predecessors, which may be shared: N request
tasks `after: rag` make job k of rag the predecessor of N jobs (fan-out), and a
predecessor may wait in turn (chains a -> b -> c). The requests form a forest; a unit is
the path from a root to one leaf. Units overlap where they share predecessors: the shared
segments are placed once, by the first unit placed, and later units start after them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.taskset import NO_DEADLINE
from rtgen_opt.optimisation.construct.board import Board
from rtgen_opt.optimisation.placement import dependents, predecessors_first


@dataclass(frozen=True)
class Unit:
    """A required request with the predecessors it waits for: their segments in chain
    order (the root's first), the job of each, the latest end of each (from every token
    deadline downstream, backwards at the fastest durations) and where the request's
    first-token work ends."""

    job: int
    segs: list[int]
    seg_job: list[int]
    latest_end: list[int]
    first_work: int  # segments [0, first_work) are the first-token work

    @property
    def first_token(self) -> int:
        return self.segs[self.first_work - 1]

    def first_unplaced(self, board: Board) -> int:
        """Index of the first segment not on the board: the segments before it belong to
        predecessors that an earlier unit shares with this one and has placed."""
        return next((i for i, s in enumerate(self.segs) if s not in board.segs),
                    len(self.segs))


def required_jobs(problem: Problem) -> set[int]:
    """The problem's non-optional requests and every request they wait for."""
    ts = problem.ts
    requests = {j for j in problem.job_ids.tolist() if ts.job_deadline_us[j] == NO_DEADLINE}
    required: set[int] = set()
    for j in requests - problem.optional:
        required.update(ts.chain(j, within=requests))
    return required


def units(problem: Problem) -> list[Unit]:
    """Every required request that no other required request waits for, with its
    predecessors, in arrival order."""
    ts = problem.ts
    required = required_jobs(problem)
    latest = latest_ends(problem, required)
    waited_for = {int(ts.job_after[j]) for j in required}
    sinks = sorted((j for j in required if j not in waited_for),
                   key=lambda j: (int(ts.job_release_us[j]), j))
    return [_unit(problem, j, required, latest) for j in sinks]


def latest_ends(problem: Problem, required: set[int]) -> dict[int, int]:
    """Per segment of the required requests, the latest end that still lets every token
    deadline after it be met at the fastest durations: its own due time (first token,
    last segment, end of the run), the next segment of its job, and the first segment of
    every request waiting for its job."""
    ts = problem.ts
    waiting = dependents(ts, sorted(required))
    latest: dict[int, int] = {}
    for job in reversed(predecessors_first(ts, sorted(required))):  # dependents first
        segs = problem.segments(job)
        due = dict.fromkeys(segs, problem.end_us)
        service = problem.token_service(job)
        if service is not None:
            first, last, first_by, last_by = service
            if first_by is not None:
                due[first] = min(due[first], first_by)
            due[last] = min(due[last], last_by)
        after = [latest[f] - ts.fastest_us(f)
                 for f in (problem.segments(d)[0] for d in waiting.get(job, ()))]
        bound = min(after, default=problem.end_us)
        for seg in reversed(segs):
            latest[seg] = bound = min(due[seg], bound)
            bound -= ts.fastest_us(seg)
    return latest


def _unit(problem: Problem, job: int, required: set[int], latest: dict[int, int]) -> Unit:
    ts = problem.ts
    segs: list[int] = []
    seg_job: list[int] = []
    for j in reversed(ts.chain(job, within=required)):
        own = list(problem.segments(j))
        segs += own
        seg_job += [j] * len(own)
    service = problem.token_service(job)
    first_work = len(segs) if service is None else segs.index(service[0]) + 1
    return Unit(job, segs, seg_job, [latest[s] for s in segs], first_work)
