"""The kill-aware policy: hand-computed decisions, its forecast, and properties."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.result import SolveStatus

from rtgen_opt.evaluation.firm import firm_schedule, serves_every_request
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.evaluation.replay import replay
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import NO_DEADLINE, build_taskset
from rtgen_opt.optimisation.solve import service_matched_problem, solve
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES, KillAware, KillAwareFast
from rtgen_opt.simulation.policies.kill_aware import _misses, home_backends
from tests.test_cpsat import small_scenarios
from tests.test_executor import rows
from tests.test_executor_properties import scenarios
from tests.tiny import taskset

# ------------------------------------------------------------------ hand-computed


def test_a_request_waits_for_the_moment_that_kills_no_frame(tmp_path):
    # f: 6 ms every 10 ms on x (deadline 10). r arrives at 7 with 8 ms of work. Started at
    # 7 it would end at 15 and frame 1 (released 10, deadline 20) could only run 15..21:
    # killed. kill-aware waits for x to fall idle after frame 1 (10..16): r 16..24, and
    # frame 2 (released 20, deadline 30) runs 24..30 — nothing lost. edf-dyn starts r at 7.
    db = ["f,frame,x,,1,6", "r,frame,x,,1,8"]
    tasks = [{"name": "f", "model": "f", "period": "10ms"},
             {"name": "r", "model": "r", "arrivals": {"times": ["7ms"]}}]
    ts = taskset(tmp_path, db, tasks, "30ms", platform={"x": 1}, after_horizon="stop")
    result = simulate(ts, "kill-aware")
    assert rows(ts, result) == [("f", 0, "x", 0, 6, 0), ("f", 0, "x", 10, 16, 0),
                                ("r", 0, "x", 16, 24, 0), ("f", 0, "x", 24, 30, 0)]
    assert evaluate(ts, result.schedule)["violations"] == 0
    assert evaluate(ts, simulate(ts, "edf-dyn").schedule)["violations"] == 1


def test_frames_get_the_backend_only_they_can_use(tmp_path):
    # b meets its deadline only on x; a on x or y. Frame by frame, a (first in task order)
    # would take x; the mapping with the whole task set in view sends a to y.
    db = ["a,frame,x,,1,6", "a,frame,y,,1,8", "b,frame,x,,1,6", "b,frame,y,,1,12"]
    tasks = [{"name": "a", "model": "a", "period": "10ms"},
             {"name": "b", "model": "b", "period": "10ms"}]
    ts = taskset(tmp_path, db, tasks, "50ms", platform={"x": 1, "y": 1})
    x, y = ts.backends.index("x"), ts.backends.index("y")
    assert home_backends(ts) == [y, x]
    assert evaluate(ts, simulate(ts, "kill-aware").schedule)["violations"] == 0


@pytest.mark.parametrize("block, missed", [
    ((3, 8), 1),   # the frame can only run 8..14 > 10
    ((6, 10), 0),  # it runs 0..6 before the block
    ((0, 4), 0),   # it runs 4..10, just in time
    ((0, 5), 1),
])
def test_forecast_counts_the_frames_a_block_kills(block, missed):
    frames = [(0, 10, 6), (10, 20, 6)]  # (release, deadline, work)
    assert _misses(frames, [0], 0, *block) == missed
    assert _misses(frames, [0, 0], 0, *block) == 0  # a second instance takes it


def test_decode_paces_itself_faster_with_a_smaller_pace():
    ts = build_taskset(load_scenario("scenario_c"), Fraction(12))
    tpt = {pace: evaluate(ts, simulate(ts, KillAware(pace)).schedule)["llm"]["llm"]["tpt_ms"]
           for pace in (2.0, 1e9)}
    assert tpt[2.0]["mean"] < tpt[1e9]["mean"]


def test_without_a_budget_decode_kills_nothing_as_at_its_slo():
    # budget 0: decode may not kill a frame even when behind its 3x pace, so it runs only in
    # the frames' slack; on scenario_c that is what kill-aware does at the 100 ms tpt SLO
    # (the slack is enough for it), and kill-aware-fast's faster decode costs frames.
    ts = build_taskset(load_scenario("scenario_c"), Fraction(12))
    runs = [evaluate(ts, simulate(ts, policy).schedule)
            for policy in (KillAware(pace=3.0, budget=0.0), KillAware(), KillAwareFast())]
    assert runs[0]["violations"] == runs[1]["violations"] < runs[2]["violations"]
    assert runs[0]["llm"]["llm"]["tpt_ms"] == runs[1]["llm"]["llm"]["tpt_ms"]
    assert runs[2]["llm"]["llm"]["tpt_ms"]["max"] < runs[1]["llm"]["llm"]["tpt_ms"]["p50"]


def test_a_declared_ttft_brings_the_first_token_forward():
    # scenario_c declares no ttft: kill-aware waits for moments that kill fewer frames
    # (TTFT 831 ms). Declared at 700 ms, the first-token work goes before the frames once
    # it must start to be on time, and every first token comes within it.
    plain, slo = (build_taskset(load_scenario("scenario_c", overrides), Fraction(12))
                  for overrides in ((), ("llm.ttft=700ms",)))
    ttft = [evaluate(ts, simulate(ts, "kill-aware").schedule)["llm"]["llm"]["ttft_ms"]["max"]
            for ts in (plain, slo)]
    assert ttft[1] <= 700 < ttft[0]


class Recording(KillAware):
    """kill-aware that keeps its last run's placement, to read its SLO report."""

    def placement(self, run):
        self.made = super().placement(run)
        return self.made


def token_times(ts, schedule) -> dict[int, dict[int, int]]:
    """Per request job: token -> the time it appeared (from the schedule, not the policy)."""
    times: dict[int, dict[int, int]] = {}
    for seg, end, aborted in zip(schedule.seg, schedule.end_us, schedule.aborted):
        token = int(ts.seg_token[seg])
        if token and not aborted:
            times.setdefault(int(ts.seg_job[seg]), {})[token] = int(end)
    return times


def check_slo_report(ts, policy: Recording, schedule) -> dict:
    """Every SLO the policy reports met is met in the schedule; returns the report."""
    report, measured = policy.made.slo_report(), token_times(ts, schedule)
    for job, entry in report.items():
        info = ts.tasks[ts.job_task[job]]
        tokens = measured.get(job, {})
        if entry["ttft_met"]:
            assert tokens[1] - ts.job_release_us[job] <= info.ttft_us
        if entry["tpt_met"]:
            last = tokens[info.output_tokens]
            assert (last - tokens[1]) / (info.output_tokens - 1) <= info.tpt_us
    return report


@pytest.mark.parametrize("scenario", ["scenario_a", "scenario_b", "scenario_c", "scenario_d"])
def test_every_request_of_the_built_in_scenarios_within_its_tpt_slo(scenario):
    ts = build_taskset(load_scenario(scenario), Fraction(12))
    policy = Recording()
    report = check_slo_report(ts, policy, simulate(ts, policy).schedule)
    requests = [j for t in ts.tasks if t.is_llm for j in t.job_range]
    assert sorted(report) == requests
    assert all(entry["tpt_met"] for entry in report.values())


# ------------------------------------------------------------------ built-in scenarios


VARIANTS = [("scenario_a", ()), ("scenario_b", ()), ("scenario_c", ()), ("scenario_d", ()),
            *(("scenario_c", (f"llm.input_tokens={n}",)) for n in (32, 256, 1024, 2048)),
            ("scenario_c", ("od.fps=30",)), ("scenario_c", ("platform.npu=2",))]


def no_starvation_and_no_more_violations_than_ftf(ts):
    ftf = evaluate(ts, simulate(ts, "ftf").schedule)
    for name in ("kill-aware", "kill-aware-fast"):
        ours = evaluate(ts, simulate(ts, name).schedule)
        assert all(llm["starved"] == 0 for llm in ours["llm"].values()), name
        assert serves_every_request(ts, ours), name
        assert ours["violations"] <= ftf["violations"], name


@pytest.mark.parametrize("scenario, overrides", VARIANTS)
def test_no_request_starves_and_no_more_violations_than_ftf(scenario, overrides):
    no_starvation_and_no_more_violations_than_ftf(
        build_taskset(load_scenario(scenario, overrides), Fraction(12)))


@pytest.mark.slow
@pytest.mark.parametrize("scenario, overrides", VARIANTS)
def test_no_request_starves_and_no_more_violations_than_ftf_over_60s(scenario, overrides):
    no_starvation_and_no_more_violations_than_ftf(
        build_taskset(load_scenario(scenario, overrides)))  # its own horizon, 60 s


@pytest.mark.slow
def test_scenario_c_over_60s_near_the_optimum_within_its_tpt_slo():
    # the target: at most 1.02 x the proven lower bound of the plain optimum (394)
    ts = build_taskset(load_scenario("scenario_c"))
    policy = Recording()
    schedule = simulate(ts, policy).schedule
    metrics = evaluate(ts, schedule)
    assert metrics["violations"] <= 402
    assert metrics["llm"]["llm"]["starved"] == 0
    assert metrics["llm"]["llm"]["tpt_ms"]["max"] <= 100
    assert all(entry["tpt_met"] for entry in check_slo_report(ts, policy, schedule).values())


# ------------------------------------------------------------------ properties


@settings(max_examples=60, deadline=None)
@given(ts=scenarios())
def test_kill_aware_traces_replay_cleanly(ts):
    result = simulate(ts, "kill-aware")
    check = replay(ts, result.schedule)
    assert check.ok, check.violations[:5]
    assert check.metrics == evaluate(ts, result.schedule)


@settings(max_examples=30, deadline=None)
@given(ts=scenarios())
def test_kill_aware_is_deterministic_and_firm(ts):
    a, b = simulate(ts, "kill-aware"), simulate(ts, "kill-aware")
    for field in ("seg", "backend", "instance", "start_us", "end_us", "aborted"):
        assert np.array_equal(getattr(a.schedule, field), getattr(b.schedule, field))
    if ts.on_miss == "drop":
        s = a.schedule
        deadline = ts.job_deadline_us[ts.seg_job[s.seg]]
        finite = deadline != NO_DEADLINE
        assert np.all(s.end_us[finite] <= deadline[finite])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=small_scenarios())
def test_never_below_its_service_matched_optimum(ts):
    trace = simulate(ts, "kill-aware").schedule
    violations = evaluate(ts, trace)["weighted_violations"]
    result = CpSatModel(service_matched_problem(ts, trace)).solve(
        20, workers=1, hint=firm_schedule(ts, trace), stages=("violations",))
    assert result.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert result.violations_lower_bound <= violations
    if result.status == SolveStatus.OPTIMAL:
        assert result.violations <= violations


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=small_scenarios(), name=st.sampled_from(["kill-aware", "kill-aware-fast"]))
def test_never_below_the_proven_bound_of_the_plain_optimum(ts, name):
    # the sandwich: a policy that serves every request leaves a firm schedule feasible for
    # solve, so the proven lower bound of the plain optimum is below its violations
    metrics = evaluate(ts, simulate(ts, name).schedule)
    if serves_every_request(ts, metrics):
        bound = solve(ts, time_limit_s=10, workers=1).violations_lower_bound
        assert bound <= metrics["weighted_violations"]


@settings(max_examples=40, deadline=None)
@given(ts=scenarios(), name=st.sampled_from(["kill-aware", "kill-aware-fast"]))
def test_serves_every_request_when_ftf_does(ts, name):
    if serves_every_request(ts, evaluate(ts, simulate(ts, "ftf").schedule)):
        assert serves_every_request(ts, evaluate(ts, simulate(ts, name).schedule))


@settings(max_examples=40, deadline=None)
@given(ts=scenarios())
def test_every_slo_it_reports_met_is_met(ts):
    policy = Recording()
    check_slo_report(ts, policy, simulate(ts, policy).schedule)


def test_both_variants_are_registered():
    assert isinstance(POLICIES["kill-aware"], KillAware)
    assert isinstance(POLICIES["kill-aware-fast"], KillAwareFast)
