"""The lexicographic driver both engines share: minimise each objective in turn (weighted
violations, then TTFT, then TPT), fix its value as a constraint, go on to the next.

Each stage gets an a priori share of the time limit (``STAGE_SHARES``, not a share of what
is left: runs with one worker then see the same budgets and, on deterministic time, give
the same answer). A stage that finds nothing keeps the previous stage's schedule; when the
first stage finds nothing, its status is the answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rtgen_opt.model.schedule import Schedule

from .result import SolveStatus

# share of the time limit for each lexicographic stage
STAGE_SHARES = {"violations": 0.6, "ttft": 0.25, "tpt": 0.15}
FOUND = (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


@dataclass
class StageAnswer:
    """One stage's solve: its status, and when a schedule was found its integer objective
    value, proven bound, the schedule and extra fields for the stage's report entry."""

    status: SolveStatus
    value: int = 0
    bound: float = 0
    schedule: Schedule | None = None
    report: dict = field(default_factory=dict)


@dataclass
class Lexicographic:
    """The outcome: the first objective's status, value and bound (divided by its scale),
    the last stage's schedule, and one report entry per stage tried."""

    status: SolveStatus
    violations: float | None
    bound: float
    schedule: Schedule | None
    stages: list[dict]

    @property
    def found(self) -> bool:
        return self.schedule is not None


def stage_limit(time_limit_s: float, name: str, names: list[str], minimum_s: float) -> float:
    """A stage's a priori share of ``time_limit_s``, at least ``minimum_s``."""
    return max(minimum_s, time_limit_s * STAGE_SHARES[name]
               / sum(STAGE_SHARES[n] for n in names))


def solve_lexicographic(stages: list[tuple[str, float]], time_limit_s: float,
                        minimum_s: float, solve_stage: Callable[[str, float], StageAnswer],
                        fix: Callable[[str, int, Schedule], None]) -> Lexicographic:
    """Run ``solve_stage(name, limit)`` for each ``(name, scale)`` of ``stages`` in order;
    after a stage that found a schedule, ``fix(name, value, schedule)`` constrains its
    objective to that value (and may hint the schedule to the next stage)."""
    names = [name for name, _ in stages]
    report: list[dict] = []
    primary: tuple[SolveStatus, float, float] | None = None
    best = None
    for name, scale in stages:
        answer = solve_stage(name, stage_limit(time_limit_s, name, names, minimum_s))
        if answer.status not in FOUND:
            report.append({"name": name, "status": answer.status.value})
            if primary is None:
                return Lexicographic(answer.status, None, 0, None, report)
            break  # keep the previous stage's schedule
        report.append({"name": name, "status": answer.status.value, "value": answer.value,
                       "bound": answer.bound, **answer.report})
        if primary is None:
            primary = (answer.status, answer.value / scale, answer.bound / scale)
        fix(name, answer.value, answer.schedule)
        best = answer.schedule
    status, value, bound = primary
    return Lexicographic(status, value, bound, best, report)
