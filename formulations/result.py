"""The solver-neutral result that every engine returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from rtgen_opt.model.schedule import Schedule


class SolveStatus(str, Enum):
    OPTIMAL = "OPTIMAL"  # the violations are proven minimal
    FEASIBLE = "FEASIBLE"  # a schedule, not proven optimal: see the lower bound
    INFEASIBLE = "INFEASIBLE"  # no schedule serves every required request
    UNKNOWN = "UNKNOWN"  # no schedule found within the limit
    # the schedule found breaks a constraint of the problem, or the evaluator disagrees
    # with the solver's own count: nothing about it is proven (exit 1)
    REPLAY_FAILED = "REPLAY_FAILED"


@dataclass
class SolveResult:
    status: SolveStatus
    schedule: Schedule | None  # None unless OPTIMAL or FEASIBLE
    violations: float | None  # weighted frame violations of the schedule (1st objective)
    violations_lower_bound: float  # a proven lower bound on them
    wall_s: float
    stages: list[dict] = field(default_factory=list)  # per lexicographic stage: name, status, value, bound
    notes: list[str] = field(default_factory=list)  # how bounds were obtained, tick, ...

    @property
    def proven(self) -> bool:
        return self.status == SolveStatus.OPTIMAL
