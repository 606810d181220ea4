"""`simulate` as a function: one policy's run and its JSON row (the CLI's `runs` entry and
the sweep's row)."""

from __future__ import annotations

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.taskset import TaskSet
from rtgen_opt.simulation.executor import simulate


def simulate_run(ts: TaskSet, policy, label: str, realization=None) -> tuple[dict, object]:
    """(the run's JSON object, the executor's result)."""
    result = simulate(ts, policy, realization)
    return ({"policy": label, **evaluate(ts, result.schedule), "events": result.events,
             "wall_s": round(result.wall_s, 4)}, result)
