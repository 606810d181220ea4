"""What the greedy schedule and the construction share: a placed row, and the `after`
edges among the jobs of a problem (who waits for whom, and an order that puts every
predecessor before the jobs waiting for it).

Each job waits for at most one other (``ts.job_after``), but one job may be waited for by
several (fan-out: N request tasks `after: rag`), and a job that waits may itself be waited
for (chains a -> b -> c). The `after` graph is therefore a forest of trees rooted at the
jobs that wait for nobody.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from rtgen_opt.model.taskset import TaskSet


class Row(NamedTuple):
    """One segment placed on instance ``instance`` of ``backend`` over [start, end)."""

    seg: int
    backend: int
    instance: int
    start: int
    end: int


def dependents(ts: TaskSet, jobs: Iterable[int]) -> dict[int, list[int]]:
    """Per predecessor, the jobs among ``jobs`` that wait for it (in the order given)."""
    out: dict[int, list[int]] = {}
    for job in jobs:
        pred = int(ts.job_after[job])
        if pred >= 0:
            out.setdefault(pred, []).append(int(job))
    return out


def predecessors_first(ts: TaskSet, jobs: list[int]) -> list[int]:
    """``jobs`` in the order given, except that each job's predecessors among ``jobs``
    come just before it (a predecessor shared by several jobs: once, before the first)."""
    members = set(jobs)
    order: list[int] = []
    seen: set[int] = set()
    for job in jobs:
        for j in reversed(ts.chain(job, within=members)):
            if j not in seen:
                seen.add(j)
                order.append(j)
    return order
