"""Properties of the executor on random scenarios, and the EDF utilization bound."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.evaluation.replay import replay
from rtgen_opt.model.latency import builtin_dbs, load_db
from rtgen_opt.model.scenario import Arrivals, Scenario, TaskSpec
from rtgen_opt.model.taskset import NO_DEADLINE, build_taskset
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.tiny import write_db

DB = load_db(builtin_dbs()["ryzen_ai_9_365"])
VISION = ["yolov3", "rcan", "pointpainting-seg"]


@st.composite
def scenarios(draw):
    """Small random scenarios on the default database: frames, maybe a RAG + LLM chain."""
    tasks = []
    for i in range(draw(st.integers(1, 3))):
        fps = draw(st.sampled_from([15, 30, 60]))
        period = Fraction(1, fps)
        tasks.append(TaskSpec(
            name=f"v{i}", model=draw(st.sampled_from(VISION)), kind="periodic", period=period,
            deadline=period * draw(st.sampled_from([Fraction(1, 2), Fraction(1), Fraction(3, 2)])),
            phase=Fraction(draw(st.integers(0, 10)), 1000)))
    if draw(st.booleans()):
        every = Fraction(draw(st.integers(50, 200)), 1000)
        tokens = draw(st.integers(16, 512))
        tasks.append(TaskSpec(name="rag", model="gte-base", kind="request", input_tokens=tokens,
                              arrivals=Arrivals("every", every=every)))
        tasks.append(TaskSpec(
            name="llm", model="llama3.2-1b", kind="request", input_tokens=tokens,
            output_tokens=draw(st.integers(1, 4)), after="rag",
            arrivals=Arrivals("every", every=every),
            ttft=draw(st.sampled_from([None, Fraction(1, 5)])),
            tpt=draw(st.sampled_from([None, Fraction(1, 50)]))))
    platform = {b: draw(st.integers(1, 2)) for b in ("cpu", "gpu", "npu")}
    scenario = Scenario(
        name="random", description="", source="hypothesis", db=DB, platform=platform,
        tasks=tuple(tasks), granularity=draw(st.sampled_from(["layer", "model", "group:4"])),
        on_miss=draw(st.sampled_from(["drop", "continue"])),
        preemption=draw(st.sampled_from(["none", "restart"])),
        drain=draw(st.sampled_from([None, Fraction(1, 2)])))
    return build_taskset(scenario, Fraction(draw(st.integers(20, 250)), 1000))


@settings(max_examples=40, deadline=None)
@given(ts=scenarios(), policy=st.sampled_from(list(POLICIES)))
def test_every_policy_trace_replays_cleanly(ts, policy):
    result = simulate(ts, policy)
    check = replay(ts, result.schedule)
    assert check.ok, check.violations[:5]
    assert check.metrics == evaluate(ts, result.schedule)


@settings(max_examples=15, deadline=None)
@given(ts=scenarios(), policy=st.sampled_from(list(POLICIES)))
def test_identical_runs_give_identical_output(ts, policy):
    a, b = simulate(ts, policy), simulate(ts, policy)
    assert a.events == b.events
    for field in ("seg", "backend", "instance", "start_us", "end_us", "aborted"):
        assert np.array_equal(getattr(a.schedule, field), getattr(b.schedule, field))


@settings(max_examples=30, deadline=None)
@given(ts=scenarios(), policy=st.sampled_from(list(POLICIES)))
def test_under_drop_nothing_of_a_job_runs_past_its_deadline(ts, policy):
    if ts.on_miss != "drop":
        return
    s = simulate(ts, policy).schedule
    deadline = ts.job_deadline_us[ts.seg_job[s.seg]]
    finite = deadline != NO_DEADLINE
    assert np.all(s.end_us[finite] <= deadline[finite])


@settings(max_examples=30, deadline=None)
@given(ts=scenarios(), policy=st.sampled_from(list(POLICIES)))
def test_metrics_account_for_every_job_once(ts, policy):
    m = evaluate(ts, simulate(ts, policy).schedule)
    for task in ts.tasks:
        if task.deadline_us is not None:
            assert m["tasks"][task.name]["released"] == task.num_jobs
            assert 0 <= m["tasks"][task.name]["violations"] <= task.num_jobs
        if task.is_llm:
            llm = m["llm"][task.name]
            assert llm["requests"] == task.num_jobs
            assert llm["completed"] + llm["starved"] <= llm["requests"]
    assert all(0 <= u <= 1 + 1e-9 for u in m["utilization"].values())


# --------------------------------------------------------------- EDF utilization bound
# One backend, layers of exactly 1 ms, integer-ms periods and deadlines = periods: every
# release and completion falls on a whole millisecond, so EDF dispatching at layer
# boundaries is preemptive EDF in discrete time, which meets every deadline iff U <= 1.

UNIT_MODELS = [f"u{k},frame,x,,{k},{k}" for k in range(1, 9)]  # k layers of 1 ms


@pytest.fixture(scope="module")
def unit_db(tmp_path_factory):
    return load_db(write_db(tmp_path_factory.mktemp("unit") / "db", UNIT_MODELS))


def unit_taskset(db, tasks, preemption="none"):
    specs = tuple(TaskSpec(name=f"t{i}", model=f"u{c}", kind="periodic",
                           period=Fraction(t, 1000), deadline=Fraction(t, 1000))
                  for i, (c, t) in enumerate(tasks))
    hyper = math.lcm(*(t for _, t in tasks))
    scenario = Scenario(name="unit", description="", source="test", db=db, platform={"x": 1},
                        tasks=specs, preemption=preemption)
    return build_taskset(scenario, Fraction(hyper, 1000))


task_lists = st.lists(st.tuples(st.integers(1, 8), st.sampled_from([4, 5, 8, 10, 20, 40])),
                      min_size=1, max_size=5).filter(lambda ts: all(c <= t for c, t in ts))


@settings(max_examples=80, deadline=None)
@given(tasks=task_lists.filter(lambda ts: sum(Fraction(c, t) for c, t in ts) <= 1))
def test_edf_meets_every_deadline_when_utilization_is_at_most_one(unit_db, tasks):
    ts = unit_taskset(unit_db, tasks)
    assert evaluate(ts, simulate(ts, "edf-dyn").schedule)["violations"] == 0


@settings(max_examples=40, deadline=None)
@given(tasks=task_lists.filter(lambda ts: sum(Fraction(c, t) for c, t in ts) > 1),
       policy=st.sampled_from(list(POLICIES)))
def test_every_policy_misses_when_utilization_exceeds_one(unit_db, tasks, policy):
    # Over one hyperperiod the demand exceeds the time available before the last deadline.
    ts = unit_taskset(unit_db, tasks)
    assert evaluate(ts, simulate(ts, policy).schedule)["violations"] >= 1



@settings(max_examples=40, deadline=None)
@given(ts=scenarios(), policy=st.sampled_from(list(POLICIES)), below=st.sampled_from([0, 1]))
def test_a_run_stops_early_only_when_it_cannot_qualify(ts, policy, below):
    """``stop_above`` (the warm start's early stop), against the full run with the threshold
    at its own weighted violations or one below: a run that serves every request within
    the threshold is never stopped and is the full run, row for row; under drop, a run
    above the threshold is always stopped."""
    full = simulate(ts, policy)
    metrics = evaluate(ts, full.schedule)
    violations = metrics["weighted_violations"]
    threshold = violations - below
    serves = all(m["served"] == m["requests"] for m in metrics["llm"].values())
    cut = simulate(ts, policy, stop_above=threshold)
    if serves and violations <= threshold:
        assert not cut.stopped
    if not cut.stopped:
        for column in ("seg", "backend", "start_us", "end_us"):
            assert np.array_equal(getattr(cut.schedule, column), getattr(full.schedule, column))
    if ts.on_miss == "drop" and violations > max(threshold, 0):  # (a drop passes it)
        assert cut.stopped


@settings(max_examples=25, deadline=None)
@given(ts=scenarios())
def test_the_warm_start_is_the_best_serving_policy_of_full_runs(ts):
    """Early stops and the run order change nothing: the warm start is the policy with the
    fewest weighted violations among the full runs that serve every request, ties to the
    registry's order."""
    from rtgen_opt.optimisation.solve import best_policy_schedule

    best = (None, math.inf)
    for name in POLICIES:
        metrics = evaluate(ts, simulate(ts, name).schedule)
        if all(m["served"] == m["requests"] for m in metrics["llm"].values()) and (
                metrics["weighted_violations"] < best[1]):
            best = (name, metrics["weighted_violations"])
    name, _, violations, _ = best_policy_schedule(ts)
    assert (name, violations) == best
