"""`check --policy P` for every realization: the exact analysis against enumeration.

Oracles: on job sets small enough (durations of a few µs, jitter of a few µs) every integer
realization is run through the executor. On one backend instance the analysis is exact
(a possible miss <=> some realization misses); on several instances or backends it is
sound (no possible miss => no realization misses). Every "no" carries a witness that the
executor replays to a miss.
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtgen_opt.analysis import schedule_graph, uncertainty, witness_search
from rtgen_opt.analysis.uncertainty import NO, UNKNOWN, YES, check_every_realization
from rtgen_opt.model.realization import Realization
from rtgen_opt.model.taskset import INELIGIBLE
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.tiny import taskset

CLASSIC = ["fcfs-aot", "fcfs-dyn", "edf-aot", "edf-dyn", "ftf"]


def _every_realization_fails(ts, policy) -> bool | None:
    """Does some integer realization miss? None when there are too many to enumerate."""
    if witness_search._count(ts) > witness_search.EXHAUSTIVE_LIMIT:
        return None
    for _how, r in witness_search._exhaustive(ts):
        if witness_search.run(ts, policy, r):
            return True
    return False


def _analysis_misses(ts, policy) -> bool:
    graph = schedule_graph.explore(ts, POLICIES[policy], ts.seg_dur_lo_us, ts.seg_dur_hi_us,
                                   ts.job_jitter_us)
    assert graph.miss is not None or graph.complete
    return graph.miss is not None


@st.composite
def tiny_job_sets(draw, backends=("a",), instances=1):
    """Periodic tasks in µs on a small platform, with duration ranges and jitter drawn
    per task (ranges of at most a few µs, so every realization can be enumerated)."""
    n_tasks = draw(st.integers(1, 3))
    rows, tasks = [], []
    for k in range(n_tasks):
        layers = draw(st.integers(1, 2))
        for b in backends:
            if b != backends[0] and k > 0 and draw(st.booleans()):
                continue  # not every model runs everywhere
            per_layer = draw(st.integers(1, 4))
            rows.append(f"m{k},frame,{b},,{layers},{per_layer * layers / 1000}")
        period = draw(st.integers(6, 14))
        tasks.append({"name": f"t{k}", "model": f"m{k}", "period": f"{period}us",
                      "deadline": f"{draw(st.integers(max(3, period - 4), period))}us",
                      "phase": f"{draw(st.integers(0, 3))}us"})
    platform = {b: instances for b in backends}
    spread = [draw(st.integers(0, 1)) for _ in range(n_tasks)]
    jitter = [draw(st.integers(0, 2)) for _ in range(n_tasks)]
    return rows, tasks, platform, spread, jitter, draw(st.sampled_from(CLASSIC[:4]))


def _build(tmp_path, rows, tasks, platform, spread, jitter, horizon="16us"):
    """The task set, with each task's ranges widened by ``spread`` µs on both sides."""
    ts = taskset(tmp_path, rows, tasks, horizon, platform=platform, after_horizon="stop",
                 on_miss="drop", preemption="none")
    return _widened(ts, spread, jitter)


def _widened(ts, spread, jitter):
    """``ts`` with each task's durations within ±``spread`` µs and its ``jitter``."""
    widen = np.array(spread)[ts.job_task[ts.seg_job]][:, None]
    eligible = ts.seg_dur_us != INELIGIBLE
    lo = np.where(eligible, np.maximum(1, ts.seg_dur_us - widen), INELIGIBLE)
    hi = np.where(eligible, ts.seg_dur_us + widen, INELIGIBLE)
    jit = np.array(jitter, dtype=np.int64)[ts.job_task]
    return dataclasses.replace(ts, seg_dur_lo_us=lo, seg_dur_hi_us=hi, job_jitter_us=jit)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=tiny_job_sets())
def test_on_one_instance_the_analysis_is_exact(tmp_path_factory, case):
    rows, tasks, platform, spread, jitter, policy = case
    ts = _build(tmp_path_factory.mktemp("one"), rows, tasks, platform, spread, jitter)
    truth = _every_realization_fails(ts, policy)
    if truth is None:
        return
    assert _analysis_misses(ts, policy) == truth


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=tiny_job_sets(backends=("a", "b"), instances=1) | tiny_job_sets(instances=2))
def test_on_several_instances_a_yes_is_never_wrong(tmp_path_factory, case):
    rows, tasks, platform, spread, jitter, policy = case
    ts = _build(tmp_path_factory.mktemp("many"), rows, tasks, platform, spread, jitter)
    truth = _every_realization_fails(ts, policy)
    if truth is None:
        return
    if not _analysis_misses(ts, policy):
        assert truth is False, "the analysis said yes, a realization misses"


def test_without_uncertainty_the_analysis_is_the_simulation():
    """Point ranges: one path, the executor's own; the verdict is the simulation's."""
    from rtgen_opt.model.scenario import load_scenario
    from rtgen_opt.model.taskset import build_taskset
    from fractions import Fraction

    for name, sets in [("scenario_c", ["platform.npu=2"]), ("scenario_a", []),
                       ("scenario_b", []), ("scenario_d", ["platform.gpu=2"])]:
        ts = build_taskset(load_scenario(name, sets), Fraction(1))
        for policy in CLASSIC:
            simulated = bool(witness_search.run(ts, policy,
                                                Realization(ts.job_release_us, ts.seg_dur_us)))
            assert _analysis_misses(ts, policy) == simulated, (name, policy)


def test_a_timing_anomaly_is_caught_though_the_longest_durations_pass(tmp_path):
    """One backend, EDF. A (urgent, 2..5 µs) at 0; B (long, 6 µs, lax) ready at 3; C (4 µs,
    deadline 9) ready at 4. A at its longest: C is ready when A ends (5) and runs first:
    5 + 4 = 9, on time. A at 2: the backend idles, B starts at 3 (the only ready job),
    C waits for it: 9 + 4 = 13 > 9, a miss."""
    rows = ["a,frame,x,,1,0.005", "b,frame,x,,1,0.006", "c,frame,x,,1,0.004"]
    tasks = [{"name": "A", "model": "a", "period": "40us", "deadline": "6us"},
             {"name": "B", "model": "b", "period": "40us", "deadline": "30us",
              "phase": "3us"},
             {"name": "C", "model": "c", "period": "40us", "deadline": "5us", "phase": "4us"}]
    ts = taskset(tmp_path, rows, tasks, "40us", after_horizon="stop", preemption="none")
    lo = ts.seg_dur_us.copy()
    lo[0, 0] = 2  # A may take 2..5 µs
    ts = dataclasses.replace(ts, seg_dur_lo_us=lo)
    longest = Realization(ts.job_release_us, ts.seg_dur_hi_us)
    assert not witness_search.run(ts, "edf-dyn", longest)
    answer = check_every_realization(ts, "edf-dyn", time_limit_s=10)
    assert answer.verdict == NO
    assert witness_search.run(ts, "edf-dyn", answer.witness.realization)
    assert answer.witness.realization.dur_us[0, 0] < 5


def test_every_no_carries_a_witness_the_executor_replays(tmp_path):
    rows = ["m,frame,x,,2,0.008"]
    tasks = [{"name": "f", "model": "m", "period": "10us"}]
    ts = taskset(tmp_path, rows, tasks, "40us", after_horizon="stop", preemption="none")
    hi = np.where(ts.seg_dur_us >= 0, ts.seg_dur_us + 3, ts.seg_dur_us)
    ts = dataclasses.replace(ts, seg_dur_hi_us=hi)
    for policy in CLASSIC:
        answer = check_every_realization(ts, policy, time_limit_s=5)
        assert answer.verdict == NO, policy
        assert witness_search.run(ts, policy, answer.witness.realization)


def test_a_policy_outside_the_analysis_never_gets_yes(tmp_path):
    rows = ["m,frame,x,,1,0.003"]
    tasks = [{"name": "f", "model": "m", "period": "10us"}]
    ts = taskset(tmp_path, rows, tasks, "100us", after_horizon="stop", preemption="none")
    hi = np.where(ts.seg_dur_us >= 0, ts.seg_dur_us + 1, ts.seg_dur_us)
    ts = dataclasses.replace(ts, seg_dur_hi_us=hi, job_jitter_us=ts.job_jitter_us + 1)
    answer = check_every_realization(ts, "kill-aware", time_limit_s=2)
    assert answer.verdict in (UNKNOWN, NO) or answer.search.exhaustive


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=tiny_job_sets())
def test_the_margin_brackets_and_is_monotone(tmp_path_factory, case):
    rows, tasks, platform, spread, jitter, policy = case
    ts = _build(tmp_path_factory.mktemp("margin"), rows, tasks, platform, spread, jitter)
    m = uncertainty.margin(ts, policy, time_limit_s=20)
    if m.scaling_proven is not None and m.scaling_refuted is not None:
        assert m.scaling_proven < m.scaling_refuted
    verdicts = sorted(m.probes)
    for (f1, v1), (f2, v2) in itertools.combinations(verdicts, 2):
        if f1 < f2 and v2 == YES:
            assert v1 != NO, (f1, v1, f2, v2)


def test_the_analysis_stops_at_its_deadline():
    from rtgen_opt.model.scenario import load_scenario
    from rtgen_opt.model.taskset import build_taskset
    from fractions import Fraction

    ts = build_taskset(load_scenario("scenario_c", ["platform.npu=2",
                                                    "execution=[0.9, 1.1]"]), Fraction(10))
    started = time.monotonic()
    graph = schedule_graph.explore(ts, POLICIES["edf-dyn"], ts.seg_dur_lo_us,
                                   ts.seg_dur_hi_us, ts.job_jitter_us,
                                   deadline=time.monotonic() + 0.5)
    assert time.monotonic() - started < 5
    assert graph.miss is not None or graph.stopped == "time limit" or graph.complete


@pytest.mark.parametrize("policy", [
    "edf-dyn",
    # ftf on this very task set (2 s) is the worked example's second line, which
    # tests/test_check_docs.py::test_the_worked_example_runs_as_written decides (a yes,
    # exit 0) by default; a second default run of the same analysis only costs ~9 s.
    pytest.param("ftf", marks=pytest.mark.slow)])
def test_the_worked_example_is_decided(policy):
    """scenario_c with two NPUs, +-10 %: the docs' worked example (2 s here)."""
    from rtgen_opt.model.scenario import load_scenario
    from rtgen_opt.model.taskset import build_taskset
    from fractions import Fraction

    ts = build_taskset(load_scenario("scenario_c", ["platform.npu=2",
                                                    "execution=[0.9, 1.1]"]), Fraction(2))
    answer = check_every_realization(ts, policy, time_limit_s=60)
    assert answer.verdict in (YES, NO)
    if answer.verdict == NO:
        assert witness_search.run(ts, policy, answer.witness.realization)


@pytest.mark.parametrize("name, sets, policy", [
    ("scenario_c", ["platform.npu=2", "execution=[0.9,1.1]"], "edf-dyn"),
    ("scenario_c", ["platform.npu=2", "execution=[0.9,1.1]", "od.jitter=1ms"], "ftf"),
    ("scenario_a", ["execution=[0.95,1.05]", "platform.gpu=2"], "fcfs-dyn"),
    ("scenario_d", ["execution=[0.9,1.1]", "platform.npu=2"], "fcfs-aot"),
])
def test_at_realistic_sizes_a_yes_survives_sampling(name, sets, policy):
    """The analysis at built-in sizes against sampled realizations: a sampled miss beside
    a "yes" would be a bug (whatever the verdict, sampling must not contradict it)."""
    from fractions import Fraction

    from rtgen_opt.model.realization import sample
    from rtgen_opt.model.scenario import load_scenario
    from rtgen_opt.model.taskset import build_taskset

    ts = build_taskset(load_scenario(name, sets), Fraction(1))
    graph = schedule_graph.explore(ts, POLICIES[policy], ts.seg_dur_lo_us, ts.seg_dur_hi_us,
                                   ts.job_jitter_us, deadline=time.monotonic() + 60)
    assert graph.miss is None and graph.complete  # each case was chosen to be a "yes"
    rng = np.random.default_rng(7)
    for _ in range(15):
        assert not witness_search.run(ts, policy, sample(ts, rng)), (name, policy)


# ---------------------------------------------- requests: fan-out, chains, transfers, restart


@st.composite
def tiny_request_sets(draw):
    """Frames beside an `after` forest of requests — a root with one or two (overlapping)
    arrivals, then tasks each after an earlier one (fan-out when two name the same, chains
    when one names a task that waits) — LLMs with a prefill and decode or one-segment
    encoders, on two backends with or without transfers, under either preemption and
    either on_miss, and every classic policy. Durations in µs, ranges on some tasks only,
    so that every realization can still be enumerated."""
    us = lambda n: f"{n / 1000:g}"  # the database is in ms  # noqa: E731
    rows, tasks = [], []
    period = draw(st.integers(6, 12))
    for b in draw(st.sampled_from([("a",), ("a", "b")])):
        rows.append(f"f,frame,{b},,1,{us(draw(st.integers(1, 4)))}")
    tasks.append({"name": "f", "model": "f", "period": f"{period}us",
                  "deadline": f"{draw(st.integers(3, period))}us",
                  "phase": f"{draw(st.integers(0, 3))}us"})
    for b in ("a", "b"):
        prefill = us(draw(st.integers(1, 4)))
        rows += [f"enc,frame,{b},8,1,{us(draw(st.integers(1, 3)))}",
                 f"llm,prefill,{b},8,1,{prefill}", f"llm,prefill,{b},64,1,{prefill}",
                 f"llm,decode,{b},8,1,{us(draw(st.integers(1, 2)))}",
                 f"llm,decode,{b},64,1,{us(draw(st.integers(1, 2)))}"]
    arrivals = sorted(draw(st.lists(st.integers(0, 8), min_size=1, max_size=2, unique=True)))
    names = ["r0"]
    tasks.append({"name": "r0", "model": draw(st.sampled_from(["enc", "llm"])),
                  "arrivals": {"times": [f"{t}us" for t in arrivals]}})
    for i in range(1, draw(st.integers(1, 3))):
        names.append(f"r{i}")
        tasks.append({"name": f"r{i}", "model": draw(st.sampled_from(["enc", "llm"])),
                      "after": draw(st.sampled_from(names[:-1]))})
    for task in tasks[1:]:
        task["input_tokens"] = 8
        if task["model"] == "llm":
            task["output_tokens"] = draw(st.integers(1, 2))
    spread = [draw(st.integers(0, 1)) for _ in tasks]
    jitter = [draw(st.integers(0, 1)) for _ in tasks]
    settings_ = {"platform": {"a": 1, "b": 1}, "after_horizon": "stop",
                 "on_miss": draw(st.sampled_from(["drop", "continue"])),
                 "preemption": draw(st.sampled_from(["none", "restart"]))}
    transfers = draw(st.sampled_from([None, ["a,b,0.001", "b,a,0.001"]]))
    return rows, tasks, transfers, settings_, spread, jitter, draw(st.sampled_from(CLASSIC))


def _build_requests(tmp_path, rows, tasks, transfers, settings_, spread, jitter):
    ts = taskset(tmp_path, rows, tasks, "20us", transfers=transfers, **settings_)
    return _widened(ts, spread, jitter)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=tiny_request_sets())
def test_with_requests_fan_out_and_transfers_a_yes_is_never_wrong(tmp_path_factory, case):
    *shape, policy = case
    ts = _build_requests(tmp_path_factory.mktemp("req"), *shape)
    truth = _every_realization_fails(ts, policy)
    if truth is None:
        return
    if not _analysis_misses(ts, policy):
        assert truth is False, "the analysis said yes, a realization misses"


def test_the_quick_search_is_bounded_by_a_count_not_the_clock():
    """Too many realizations to enumerate: the search before the analysis stops after its
    count, whatever the time left (``realizations_tried`` was a different number on every
    run when 5 s of the clock bounded it)."""
    from fractions import Fraction

    from rtgen_opt.model.scenario import load_scenario
    from rtgen_opt.model.taskset import build_taskset

    ts = build_taskset(load_scenario("scenario_c", ["platform.npu=2",
                                                    "execution=[0.9, 1.1]"]), Fraction(1))
    report = witness_search.SearchReport()
    found = witness_search.search(ts, POLICIES["ftf"], time.monotonic() + 600, report=report,
                                  limit=7)
    assert found is None and report.tried == 7 and not report.exhaustive


def test_an_enumeration_finished_after_the_quick_search_is_a_yes(tmp_path, monkeypatch):
    """A policy outside the exact analysis on a task set small enough to enumerate: when
    the quick search gets no time, the search after it enumerates every realization and
    answers "yes" (it said "unknown"), counting each realization once. The count is
    checked against the enumeration itself."""
    rows = ["m,frame,x,,1,0.003"]
    tasks = [{"name": "f", "model": "m", "period": "10us"}]
    ts = taskset(tmp_path, rows, tasks, "30us", after_horizon="stop", preemption="none")
    hi = np.where(ts.seg_dur_us >= 0, ts.seg_dur_us + 1, ts.seg_dur_us)
    ts = dataclasses.replace(ts, seg_dur_hi_us=hi)
    assert _every_realization_fails(ts, POLICIES["kill-aware"]) is False
    monkeypatch.setattr(uncertainty, "QUICK_SEARCH_MAX_S", 0.0)
    answer = check_every_realization(ts, "kill-aware", time_limit_s=30)
    assert answer.verdict == YES and answer.search.exhaustive
    assert answer.search.tried == sum(1 for _ in witness_search._exhaustive(ts))
