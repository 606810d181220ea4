"""The whole `solve` pipeline on the built-in scenarios: the sandwich LB <= UB <= every
policy that serves every request, the schedule replayed, and the status honest."""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path

import pytest

from rtgen_opt.evaluation.firm import serves_every_request
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.formulations.result import SolveStatus
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.evaluation.replay import replay
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.optimisation.solve import best_policy_schedule, solve, solve_problem
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.tiny import taskset


def sandwich(name: str, seconds: int, overrides=(), limit: float = 30.0):
    ts = build_taskset(load_scenario(name, overrides), Fraction(seconds))
    out = solve(ts, limit, workers=1)
    assert out.replay_ok, out.replay_violations[:3]
    assert replay(ts, out.schedule).ok  # and once more, from scratch
    assert out.violations_lower_bound <= out.violations
    assert (out.status.value == "OPTIMAL") == (out.violations_lower_bound >= out.violations)
    for policy in POLICIES:
        metrics = evaluate(ts, simulate(ts, policy).schedule)
        if serves_every_request(ts, metrics):
            assert out.violations <= metrics["weighted_violations"], policy
    return out


def test_scenario_c_one_second_is_bounded_and_replays():
    out = sandwich("scenario_c", 1, limit=20)
    # a request's sixteen 34 ms NPU layers cannot hide among 60 FPS frames
    assert out.violations_lower_bound >= 30


@pytest.mark.slow
@pytest.mark.parametrize("name", ["scenario_a", "scenario_b", "scenario_c", "scenario_d"])
@pytest.mark.parametrize("seconds", [5, 20])
def test_sandwich_on_every_built_in_scenario(name, seconds):
    sandwich(name, seconds)


@pytest.mark.slow
def test_sixty_seconds_of_scenario_c_within_one_percent_of_its_frames():
    out = sandwich("scenario_c", 60)
    frames = sum(t["released"] for t in out.metrics["tasks"].values())
    assert out.violations_lower_bound > 0
    assert out.violations - out.violations_lower_bound <= 0.01 * frames


def test_a_warm_start_at_the_proven_bound_is_proven_optimal_by_cp_sat_at_once():
    """scenario_c's second: kill-aware drops 33, the Lagrangian bound proves 33. CP-SAT,
    given the bound, proves its violations stage (on its own its bound stays at 0 through
    the stage's share); the answer replays and the bound named is the Lagrangian's."""
    ts = build_taskset(load_scenario("scenario_c"), horizon=Fraction(1))
    name, warm, _, _ = best_policy_schedule(ts)
    out = solve_problem(Problem(ts), 20.0, workers=1, warm=warm, warm_name=name,
                        stages=("violations",))
    stage = out.stages[0]
    assert stage["status"] == "OPTIMAL" and stage["bound"] == stage["value"] == 33
    assert out.violations == out.violations_lower_bound == 33
    assert out.lower_bound_method.startswith("Lagrangian")
    assert replay(ts, out.schedule).ok


def test_a_floor_at_or_below_the_optimum_keeps_it():
    """The floor starts the objective's domain at a proven bound and nowhere above: given
    the optimum itself or less, CP-SAT finds the same optimum (a tiny overload, one frame
    of two lost every period)."""
    rows = ["f,frame,a,,1,3", "g,frame,a,,1,3"]
    tasks = [{"name": n, "model": n, "period": "4ms", "deadline": "4ms"} for n in "fg"]
    with tempfile.TemporaryDirectory() as tmp:
        ts = taskset(Path(tmp), rows, tasks, "12ms")
    plain = CpSatModel(Problem(ts)).solve(10, 1, stages=("violations",))
    assert plain.status == SolveStatus.OPTIMAL and plain.violations >= 1
    for floor in (plain.violations, plain.violations - 0.5, 0.0):
        floored = CpSatModel(Problem(ts)).solve(10, 1, stages=("violations",),
                                                violations_floor=floor)
        assert floored.status == SolveStatus.OPTIMAL
        assert floored.violations == floored.violations_lower_bound == plain.violations
