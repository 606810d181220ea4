"""The solvers against independent oracles: brute force, Moore-Hodgson, the policies
(sandwich), metamorphic relations, and each other; every returned schedule replays cleanly.
Tests taking `engine` run on every engine of `--solvers` (CP-SAT, MILP on CBC and HiGHS)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.formulations.result import SolveStatus

from rtgen_opt.evaluation.firm import firm_schedule, serves_every_request
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.evaluation.replay import replay
from rtgen_opt.optimisation.solve import service_matched_problem
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.conftest import solve_with
from tests.oracles import brute_force_min_violations, moore_hodgson
from tests.tiny import taskset

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def optimum(problem: Problem, limit: float = 20.0, engine: str = "cpsat"):
    result = solve_with(engine, problem, limit)
    if result.schedule is not None:
        check = replay(problem.ts, result.schedule)
        assert check.ok, check.violations[:3]
        assert check.metrics["weighted_violations"] == pytest.approx(result.violations)
    return result


# ------------------------------------------------------------------ random tiny instances

durations = st.integers(1, 8)


@st.composite
def tiny_instances(draw, llm: bool | None = None, max_frames: int = 4):
    """Up to ~6 segments on two backends a and b: one-job frame tasks and maybe an LLM."""
    rows, tasks = [], []
    for i in range(draw(st.integers(1, max_frames))):
        layers = draw(st.integers(1, 2))
        where = draw(st.sampled_from([("a",), ("b",), ("a", "b")]))
        rows += [f"m{i},frame,{b},,{layers},{draw(durations) * layers}" for b in where]
        tasks.append({"name": f"f{i}", "model": f"m{i}", "period": "1s",
                      "phase": f"{draw(st.integers(0, 6))}ms",
                      "deadline": f"{draw(st.integers(2, 24))}ms",
                      "weight": draw(st.sampled_from([1, 1, 2]))})
    if llm if llm is not None else draw(st.booleans()):
        for b in draw(st.sampled_from([("a",), ("a", "b")])):
            p, d = draw(durations), draw(durations)
            rows += [f"llm,prefill,{b},8,1,{p}", f"llm,prefill,{b},64,1,{p}",
                     f"llm,decode,{b},8,1,{d}", f"llm,decode,{b},64,1,{d}"]
        tasks.append({"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 2,
                      "arrivals": {"times": [f"{draw(st.integers(0, 4))}ms"]}})
    settings_ = {"on_miss": draw(st.sampled_from(["drop", "continue"])),
                 "preemption": draw(st.sampled_from(["none", "restart"])),
                 "drain": draw(st.sampled_from(["15ms", "40ms"]))}
    with tempfile.TemporaryDirectory() as tmp:
        return taskset(Path(tmp), rows, tasks, "7ms", **settings_)


@SETTINGS
@given(ts=tiny_instances())
def test_solver_matches_brute_force(engine, ts):
    assume(sum(len(ts.job_segments(j)) for j in range(ts.num_jobs)) <= 6)
    expected = brute_force_min_violations(ts)
    result = optimum(Problem(ts), engine=engine)
    if expected == float("inf"):
        assert result.status == SolveStatus.INFEASIBLE
    else:
        assert result.status == SolveStatus.OPTIMAL
        assert result.violations == expected


job_lists = st.lists(st.tuples(st.integers(1, 10), st.integers(1, 40)), min_size=1, max_size=9)


# 12 examples per engine by default (CBC starts a process per solve), 100 under -m slow.
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=job_lists)
def test_single_backend_equals_moore_hodgson(engine, jobs):
    _single_backend_equals_moore_hodgson(engine, jobs)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=job_lists)
def test_single_backend_equals_moore_hodgson_long(engine, jobs):
    _single_backend_equals_moore_hodgson(engine, jobs)


def _single_backend_equals_moore_hodgson(engine, jobs):
    rows = sorted({f"p{p},frame,x,,1,{p}" for p, _ in jobs})
    tasks = [{"name": f"j{i}", "model": f"p{p}", "period": "1s", "deadline": f"{d}ms"}
             for i, (p, d) in enumerate(jobs)]
    with tempfile.TemporaryDirectory() as tmp:
        ts = taskset(Path(tmp), rows, tasks, "1ms", platform={"x": 1})
    result = optimum(Problem(ts), engine=engine)
    assert result.status == SolveStatus.OPTIMAL
    assert result.violations == moore_hodgson([(p * 1000, d * 1000) for p, d in jobs])


# ------------------------------------------------------------------ sandwich


@st.composite
def small_scenarios(draw):
    """A few frames over 20 ms plus an LLM request: where the policies differ."""
    rows = ["v,frame,a,,1,3", "v,frame,b,,1,5", "w,frame,a,,1,2", "w,frame,b,,1,2",
            "llm,prefill,a,8,2,6", "llm,prefill,a,64,2,6", "llm,prefill,b,8,2,12",
            "llm,prefill,b,64,2,12", "llm,decode,a,8,1,3", "llm,decode,a,64,1,3",
            "llm,decode,b,8,1,1", "llm,decode,b,64,1,1"]
    tasks = [{"name": "v", "model": "v", "period": f"{draw(st.integers(4, 8))}ms"},
             {"name": "w", "model": "w", "period": f"{draw(st.integers(3, 10))}ms",
              "phase": f"{draw(st.integers(0, 3))}ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8,
              "output_tokens": draw(st.integers(1, 3)),
              "arrivals": {"times": [f"{draw(st.integers(0, 10))}ms"]},
              **({"tpt": "4ms"} if draw(st.booleans()) else {})}]
    settings_ = {"on_miss": draw(st.sampled_from(["drop", "continue"])),
                 "preemption": draw(st.sampled_from(["none", "restart"])),
                 "granularity": draw(st.sampled_from(["layer", "model"])),
                 "drain": "60ms"}
    with tempfile.TemporaryDirectory() as tmp:
        return taskset(Path(tmp), rows, tasks, f"{draw(st.integers(10, 20))}ms", **settings_)


@SETTINGS
@given(ts=small_scenarios())
def test_lower_bound_le_optimum_le_every_policy_that_serves_all(ts):
    result = optimum(Problem(ts))
    assume(result.status == SolveStatus.OPTIMAL)
    assert result.violations_lower_bound <= result.violations
    for name in POLICIES:
        trace = simulate(ts, name).schedule
        metrics = evaluate(ts, trace)
        if serves_every_request(ts, metrics):
            assert result.violations <= metrics["weighted_violations"]
            assert replay(ts, firm_schedule(ts, trace)).ok  # the policy's firm schedule


@SETTINGS
@given(ts=small_scenarios(), policy=st.sampled_from(list(POLICIES)))
def test_service_matched_optimum_never_exceeds_the_policy(ts, policy):
    trace = simulate(ts, policy).schedule
    violations = evaluate(ts, trace)["weighted_violations"]
    problem = service_matched_problem(ts, trace)
    hint = firm_schedule(ts, trace)
    result = CpSatModel(problem).solve(20, workers=1, hint=hint, stages=("violations",))
    assert result.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert result.violations_lower_bound <= violations
    if result.status == SolveStatus.OPTIMAL:
        assert result.violations <= violations  # the gap is never negative


# ------------------------------------------------------------------ metamorphic


@SETTINGS
@given(ts=tiny_instances(llm=True, max_frames=3))
def test_adding_a_backend_instance_never_increases_the_optimum(ts):
    from dataclasses import replace

    base = optimum(Problem(ts))
    more = optimum(Problem(replace(ts, instances=(2,) + ts.instances[1:])))
    assume(base.status == more.status == SolveStatus.OPTIMAL)
    assert more.violations <= base.violations


@SETTINGS
@given(ts=tiny_instances(llm=False), tighten=st.integers(1, 5000))
def test_tightening_a_deadline_never_decreases_the_optimum(ts, tighten):
    from dataclasses import replace

    base = optimum(Problem(ts))
    deadlines = ts.job_deadline_us.copy()
    deadlines[0] = max(ts.job_release_us[0] + 1, deadlines[0] - tighten)
    tight = optimum(Problem(replace(ts, job_deadline_us=deadlines)))
    assert tight.violations >= base.violations


@SETTINGS
@given(ts=tiny_instances(llm=True, max_frames=3), k=st.integers(2, 5))
def test_scaling_every_time_by_an_integer_leaves_the_optimum_unchanged(ts, k):
    from dataclasses import replace

    from rtgen_opt.model.taskset import NO_DEADLINE

    scaled = replace(
        ts, horizon_us=k * ts.horizon_us, drain_us=k * ts.drain_us, end_us=k * ts.end_us,
        job_release_us=k * ts.job_release_us, seg_dur_us=k * ts.seg_dur_us,
        transfer_us=k * ts.transfer_us,
        job_deadline_us=[d if d == NO_DEADLINE else k * d for d in ts.job_deadline_us.tolist()],
        tasks=tuple(replace(t, give_up_us=None if t.give_up_us is None else k * t.give_up_us)
                    for t in ts.tasks))
    scaled = replace(scaled, job_deadline_us=__import__("numpy").asarray(scaled.job_deadline_us))
    base, big = optimum(Problem(ts)), optimum(Problem(scaled))
    assume(base.status == big.status == SolveStatus.OPTIMAL)
    assert base.violations == big.violations


def test_warm_start_from_different_hints_stays_correct(tmp_path):
    rows = ["v,frame,a,,1,3", "v,frame,b,,1,5", "w,frame,a,,1,2", "w,frame,b,,1,4"]
    tasks = [{"name": "v", "model": "v", "period": "4ms"},
             {"name": "w", "model": "w", "period": "5ms"}]
    ts = taskset(tmp_path, rows, tasks, "20ms")
    values = set()
    for name in POLICIES:
        hint = firm_schedule(ts, simulate(ts, name).schedule)
        result = CpSatModel(Problem(ts)).solve(10, workers=1, hint=hint, stages=("violations",))
        assert result.status == SolveStatus.OPTIMAL and replay(ts, result.schedule).ok
        values.add(result.violations)
    assert len(values) == 1


# ------------------------------------------------------------------ two formulations agree


@st.composite
def richer_instances(draw):
    """Chains of 1-2 layers, transfers, a RAG -> LLM dependency, 1-2 instances per backend."""
    rows = ["enc,frame,a,8,1,2", "enc,frame,b,8,1,3",
            "llm,prefill,a,8,2,4", "llm,prefill,a,64,2,4", "llm,prefill,b,8,2,9",
            "llm,prefill,b,64,2,9", "llm,decode,b,8,1,1", "llm,decode,b,64,1,1",
            "llm,decode,a,8,1,3", "llm,decode,a,64,1,3"]
    tasks = []
    for i in range(draw(st.integers(1, 3))):
        layers = draw(st.integers(1, 2))
        rows += [f"m{i},frame,a,,{layers},{draw(durations) * layers}",
                 f"m{i},frame,b,,{layers},{draw(durations) * layers}"]
        tasks.append({"name": f"f{i}", "model": f"m{i}", "period": f"{draw(st.integers(5, 12))}ms",
                      "phase": f"{draw(st.integers(0, 3))}ms"})
    tasks.append({"name": "enc", "model": "enc", "input_tokens": 8,
                  "arrivals": {"times": [f"{draw(st.integers(0, 5))}ms"]}})
    tasks.append({"name": "llm", "model": "llm", "after": "enc", "input_tokens": 8,
                  "output_tokens": draw(st.integers(1, 2))})
    with tempfile.TemporaryDirectory() as tmp:
        return taskset(Path(tmp), rows, tasks, "14ms", drain="40ms",
                       platform={"a": draw(st.integers(1, 2)), "b": draw(st.integers(1, 2))},
                       transfers=draw(st.sampled_from([None, ["a,b,1", "b,a,2"]])))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=richer_instances())
def test_cpsat_and_milp_agree(engine, ts):
    if engine == "cpsat":
        return  # compared against itself: nothing to learn
    stages = ("violations", "ttft")
    reference = solve_with("cpsat", Problem(ts), 20, stages=stages)
    other = solve_with(engine, Problem(ts), 20, stages=stages)
    assume(reference.status == other.status == SolveStatus.OPTIMAL)
    assume(all(s["status"] == "OPTIMAL" for s in reference.stages + other.stages))
    assert other.violations == reference.violations
    assert [s["value"] for s in other.stages] == [s["value"] for s in reference.stages]
    assert replay(ts, other.schedule).ok


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=tiny_instances())
def test_time_indexed_encoding_matches_brute_force(ts):
    from rtgen_opt.formulations.milp import TimeIndexedMilp

    assume(sum(len(ts.job_segments(j)) for j in range(ts.num_jobs)) <= 6)
    expected = brute_force_min_violations(ts)
    model = TimeIndexedMilp(Problem(ts), tick_us=1000)  # the data is in whole ms: exact
    assert model.exact
    result = model.solve(20, "cbc", stages=("violations",))
    if expected == float("inf"):
        assert result.status == SolveStatus.INFEASIBLE
    else:
        assert result.status == SolveStatus.OPTIMAL and result.violations == expected
        assert replay(ts, result.schedule).ok
