"""The window bound (a preemptive relaxation around the requests, solved as a MILP)
against CP-SAT-proven optima of the same problems: random small scenarios with overlapping
requests, `after` forests (fan-out, chains), token deadlines from policies' traces, TTFT
caps, fractional weights, two instances — and a hand-computed case."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtgen_opt.formulations.bounds.windows import window_bound
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.result import SolveStatus
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.optimisation.solve import service_matched_problem
from rtgen_opt.simulation.executor import simulate
from tests.test_bounds import after_scenarios, proven_optimum, tight_scenarios
from tests.tiny import taskset

POLICIES = st.sampled_from(["fcfs-dyn", "ftf", "kill-aware", "fcfs-aot"])
KINDS = st.sampled_from(["matched", "matched", "plain", "capped"])


def shaped(ts, kind: str, policy: str, cap: int) -> Problem:
    if kind == "matched":
        return service_matched_problem(ts, simulate(ts, policy).schedule)
    return Problem(ts, ttft_cap_us=cap * 1000 if kind == "capped" else None)


def below_the_optimum(problem: Problem) -> None:
    bound = window_bound(problem)
    if bound is None:
        return
    assert bound.value <= proven_optimum(problem) + 1e-6


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=after_scenarios(), kind=KINDS, policy=POLICIES, cap=st.integers(8, 30))
def test_window_bound_never_exceeds_the_optimum(ts, kind, policy, cap):
    below_the_optimum(shaped(ts, kind, policy, cap))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=tight_scenarios(), kind=KINDS, policy=POLICIES, cap=st.integers(8, 30))
def test_window_bound_on_tight_frames_never_exceeds_the_optimum(ts, kind, policy, cap):
    below_the_optimum(shaped(ts, kind, policy, cap))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=st.one_of(after_scenarios(), tight_scenarios()), kind=KINDS, policy=POLICIES,
       cap=st.integers(8, 30))
def test_window_bound_never_exceeds_the_optimum_many(ts, kind, policy, cap):
    below_the_optimum(shaped(ts, kind, policy, cap))


def fast_decode(tmp_path) -> Problem:
    """Frames of 3 ms every 4 ms on the only backend (1 ms of slack each) and a request
    whose 8 decode steps of 1 ms must end within 8 ms of its first token: per-tick phase
    prices see no cost, but 8 ms of work in 8 ms leaves no frame room — two frames die."""
    rows = ["f,frame,a,,1,3", "llm,prefill,a,8,1,1", "llm,prefill,a,64,1,1",
            "llm,decode,a,8,1,1", "llm,decode,a,64,1,1"]
    tasks = [{"name": "f", "model": "f", "period": "4ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 9,
              "arrivals": {"times": ["0ms"]}}]
    ts = taskset(tmp_path, rows, tasks, "40ms", platform={"a": 1}, drain="40ms")
    llm = next(t for t in ts.tasks if t.is_llm).first_job
    return Problem(ts, token_deadlines={llm: (1000, 9000)})


def test_decode_forced_into_its_own_window_costs_frames(tmp_path):
    problem = fast_decode(tmp_path)
    result = CpSatModel(problem).solve(20, workers=1, stages=("violations",))
    assert result.status == SolveStatus.OPTIMAL
    optimum = result.violations
    bound = window_bound(problem)
    assert bound.value == pytest.approx(optimum) and optimum >= 2
