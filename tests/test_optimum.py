"""The whole `solve` pipeline on the built-in scenarios: the sandwich LB <= UB <= every
policy that serves every request, the schedule replayed, and the status honest."""

from __future__ import annotations

from fractions import Fraction

import pytest

from rtgen_opt.evaluation.firm import serves_every_request
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.evaluation.replay import replay
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.optimisation.solve import solve
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES


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
