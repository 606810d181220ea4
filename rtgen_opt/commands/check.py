"""`check` as a function: the verdict and its JSON result, guarded by the time limit. The
CLI and the sweep both call :func:`check_command`."""

from __future__ import annotations

from rtgen_opt.analysis import check as checks
from rtgen_opt.analysis.uncertainty import jitter_ms
from rtgen_opt.model.taskset import TaskSet


def assumptions(execution, ts: TaskSet, latency: str) -> dict:
    """Under which assumptions a `check` answer holds (the JSON's ``assumptions``)."""
    return {"execution": list(execution), "jitter_ms": jitter_ms(ts), "latency": latency,
            "arrivals": "as declared"}


def check_command(ts: TaskSet, policy, time_limit_s: float, workers: int = 0,
                  slo: bool = False, margin: bool = False, execution=(1.0, 1.0),
                  latency: str = "median", progress=None, budget=None
                  ) -> tuple[dict, checks.Verdict]:
    """The verdict (``policy`` None: the solver's question), abandoned at the deadline
    ("unknown") like the command line's; with ``margin``, the critical scaling factor."""
    from rtgen_opt.supervise import Budget, supervise

    own = budget is None
    budget = budget or Budget(time_limit_s)
    with (supervise(budget) if own else _nothing()):
        share = 0.5 if margin else 1.0
        verdict = checks.guarded_check(ts, policy, budget.share(share), workers, slo,
                                       progress=progress, budget=budget)
        if margin and policy is not None and verdict.verdict != checks.UNKNOWN:
            verdict.margin = checks.guarded_margin(ts, policy, budget.share(1.0), slo,
                                                   progress=progress, budget=budget)
    verdict.interrupted = budget.interrupted.is_set()
    data = verdict.as_dict(ts.scenario)
    data["question"] = verdict.question
    data["assumptions"] = assumptions(execution, ts, latency)
    data["witness"] = None
    return data, verdict


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
