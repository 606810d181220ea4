"""The long-horizon machinery, checked against the direct optimum on instances small
enough for both: LB(bounds) <= OPT(direct) <= UB(construction) <= every serving policy."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.formulations.result import SolveStatus

from rtgen_opt.evaluation.firm import serves_every_request
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.optimisation import solve as solve_module
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.tiny import taskset

ROWS = ["v,frame,a,,1,3", "v,frame,b,,1,5", "w,frame,a,,1,2", "w,frame,b,,1,4",
        "llm,prefill,a,8,2,6", "llm,prefill,a,64,2,6", "llm,prefill,b,8,2,14",
        "llm,prefill,b,64,2,14", "llm,decode,a,8,1,3", "llm,decode,a,64,1,3",
        "llm,decode,b,8,1,1", "llm,decode,b,64,1,1"]


@st.composite
def scenarios(draw):
    tasks = [{"name": "v", "model": "v", "period": f"{draw(st.integers(4, 7))}ms"},
             {"name": "w", "model": "w", "period": f"{draw(st.integers(3, 8))}ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 3,
              "arrivals": {"every": f"{draw(st.integers(8, 15))}ms"}}]
    with tempfile.TemporaryDirectory() as tmp:
        return taskset(Path(tmp), ROWS, tasks, f"{draw(st.integers(15, 30))}ms",
                       drain=f"{draw(st.integers(30, 60))}ms",
                       preemption=draw(st.sampled_from(["none", "restart"])))


# Each example solves twice (direct, then the decomposition): 8 by default, 40 under -m slow.
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=scenarios())
def test_window_bounds_sandwich_the_direct_optimum(ts):
    _window_bounds_sandwich_the_direct_optimum(ts)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=scenarios())
def test_window_bounds_sandwich_the_direct_optimum_long(ts):
    _window_bounds_sandwich_the_direct_optimum(ts)


def _window_bounds_sandwich_the_direct_optimum(ts):
    direct = CpSatModel(Problem(ts)).solve(20, workers=1, stages=("violations",))
    assume(direct.status == SolveStatus.OPTIMAL)
    original = solve_module.DIRECT_SEGMENTS
    solve_module.DIRECT_SEGMENTS = 0  # force the decomposition
    try:
        out = solve_module.solve(ts, time_limit_s=20, workers=1)
    finally:
        solve_module.DIRECT_SEGMENTS = original
    assert out.method == "construction" and out.replay_ok, out.replay_violations[:3]
    assert out.violations_lower_bound <= direct.violations <= out.violations
    for name in POLICIES:
        metrics = evaluate(ts, simulate(ts, name).schedule)
        if serves_every_request(ts, metrics):
            assert out.violations <= metrics["weighted_violations"]
