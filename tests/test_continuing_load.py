"""The continuing load: frames go on after the horizon until every request has given up.

Each test here fails on the older model where frames stop at the horizon
(``after_horizon: stop``), which some of them also check, for contrast.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.latency import builtin_dbs, load_db
from rtgen_opt.model.scenario import Arrivals, Scenario, TaskSpec
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.test_cli import run_cli

DB = load_db(builtin_dbs()["ryzen_ai_9_365"])
VISION = ["yolov3", "rcan", "pointpainting-seg"]


# ----------------------------------------------------------------- metrics vs schedule


@st.composite
def small_scenarios(draw):
    """Random frames, maybe an LLM request stream (short give-up times keep runs small)."""
    tasks = []
    for i in range(draw(st.integers(1, 3))):
        fps = draw(st.sampled_from([15, 30, 60, 120]))
        period = Fraction(1, fps)
        tasks.append(TaskSpec(
            name=f"v{i}", model=draw(st.sampled_from(VISION)), kind="periodic", period=period,
            deadline=period * draw(st.sampled_from([Fraction(1, 2), Fraction(1), Fraction(2)])),
            phase=Fraction(draw(st.integers(0, 20)), 1000)))
    if draw(st.booleans()):
        tasks.append(TaskSpec(
            name="llm", model="llama3.2-1b", kind="request", input_tokens=draw(
                st.integers(16, 256)), output_tokens=draw(st.integers(1, 3)),
            arrivals=Arrivals("every", every=Fraction(draw(st.integers(30, 150)), 1000)),
            ttft=draw(st.sampled_from([None, Fraction(1, 10)]))))
    scenario = Scenario(
        name="random", description="", source="hypothesis", db=DB,
        platform={b: draw(st.integers(1, 2)) for b in ("cpu", "gpu", "npu")},
        tasks=tuple(tasks), granularity=draw(st.sampled_from(["layer", "model"])),
        on_miss=draw(st.sampled_from(["drop", "continue"])),
        preemption=draw(st.sampled_from(["none", "restart"])),
        drain=Fraction(draw(st.integers(20, 300)), 1000),
        after_horizon=draw(st.sampled_from(["continue", "stop"])))
    return scenario, Fraction(draw(st.integers(10, 200)), 1000)


def _us(seconds: Fraction) -> int:
    return math.floor(seconds * 10**6 + Fraction(1, 2))  # releases: nearest µs, half up


def _expected_drain_us(scenario: Scenario, horizon: Fraction, finish_us: int = 0) -> int:
    """Until the last request of the horizon gave up (at least one frame deadline), then
    ``finish_us`` more (the longest standalone request latency) for it to complete."""
    frame_deadlines = [math.floor(t.deadline * 10**6) for t in scenario.tasks
                       if t.kind == "periodic"]
    ends = []
    for t in scenario.tasks:
        if t.kind == "request":
            arrivals = [k * t.arrivals.every for k in range(math.ceil(horizon / t.arrivals.every))]
            ends += [_us(a) + _us(scenario.drain) for a in arrivals]
    return max([end - _us(horizon) for end in ends] + frame_deadlines + [0]) + finish_us


def _drain_counts_from_rows(scenario: Scenario, horizon: Fraction, rows, segs_per_job,
                            finish_us: int = 0) -> dict:
    """released / drain_released / drain_violations per periodic task, from the scenario's
    own definition of its frames and the schedule table alone (not from the evaluator)."""
    done_segments, finish = defaultdict(set), defaultdict(int)
    for job, _task, segment, _stage, _backend, _start, end, _instance, aborted in rows:
        if not aborted:
            done_segments[job].add(segment)
            finish[job] = max(finish[job], end)
    release_end = horizon
    if scenario.after_horizon == "continue":
        release_end += Fraction(_expected_drain_us(scenario, horizon, finish_us), 10**6)
    counts, first_job = {}, 0
    for spec, segments in zip(scenario.tasks, segs_per_job):
        if spec.kind == "request":
            first_job += math.ceil(horizon / spec.arrivals.every)
            continue
        released = max(0, math.ceil((release_end - spec.phase) / spec.period))
        drained = late = 0
        for k in range(released):
            release = _us(spec.phase + k * spec.period)
            deadline = release + math.floor(spec.deadline * 10**6)
            job = first_job + k
            missed = len(done_segments[job]) < segments or finish[job] > deadline
            if release >= _us(horizon):
                drained += 1
                late += missed
        counts[spec.name] = {"released": released, "drain_released": drained,
                             "drain_violations": late}
        first_job += released
    return counts


@settings(max_examples=30, deadline=None)
@given(case=small_scenarios(), policy=st.sampled_from(list(POLICIES)))
def test_drain_counts_match_the_schedule_table(case, policy):
    scenario, horizon = case
    ts = build_taskset(scenario, horizon)
    schedule = simulate(ts, policy).schedule
    metrics = evaluate(ts, schedule)
    finish = max([t.standalone_us for t in ts.tasks if t.kind == "request"] + [0])
    expected = _drain_counts_from_rows(scenario, horizon, schedule.to_rows(ts),
                                       [t.segs_per_job for t in ts.tasks], finish)
    for name, counts in expected.items():
        got = metrics["tasks"][name]
        assert {k: got[k] for k in counts} == counts
        assert got["drain_violations"] <= got["violations"]
        if scenario.after_horizon == "stop":
            assert counts["drain_released"] == 0
        else:  # a drain of at least one deadline of every task holds at least one frame
            spec = scenario.task(name)  # (unless its deadline is shorter than its period,
            # or its phase puts its first frame after the whole run)
            assert counts["drain_released"] >= 1 or spec.deadline < spec.period or (
                ts.job_release_us.size == 0 or spec.phase * 10**6 >= ts.horizon_us
                + ts.drain_us)


# ------------------------------------------------------------- acceptance, on scenario_c


def test_simulate_sixty_seconds_counts_the_whole_run(capsys):
    code, out, _ = run_cli(["simulate", "scenario_c", "--horizon", "60s", "--policy", "ftf",
                            "--format", "json"], capsys)
    run = json.loads(out)["runs"][0]
    assert code == 0
    for task in ("sr", "od"):  # frames until 55 + 12.3009 + 1.23009 s: ceil(68.53099 x 60)
        assert run["tasks"][task]["released"] == 4112
        assert run["tasks"][task]["drain_released"] == 4112 - 3600
        assert 0 <= run["tasks"][task]["drain_violations"] <= run["tasks"][task]["violations"]


def _check(args, capsys):
    code, out, err = run_cli(["check", "scenario_c", *args, "--format", "json"], capsys)
    assert "Traceback" not in err
    return code, json.loads(out)


def test_edf_verdict_does_not_depend_on_the_horizon(capsys):
    # EDF (no TTFT deadline) aborts the LLM's prefill at every frame: it starves every
    # request whatever the horizon. With frames stopping at the horizon, the requests of a
    # short run were served once the frames stopped: "schedulable" at 10 s.
    verdicts = {h: _check(["--policy", "edf-dyn", "--horizon", h], capsys)
                for h in ("10s", "20s", "60s")}
    assert {code for code, _ in verdicts.values()} == {1}
    assert all(not v["schedulable"] and "starve" in v["reason"] for _, v in verdicts.values())
    code, old = _check(["--policy", "edf-dyn", "--horizon", "10s", "--set",
                        "after_horizon=stop"], capsys)
    assert code == 0 and old["schedulable"]


def test_check_optimal_on_two_seconds_is_a_proven_no(capsys):
    # Frames go on until the request's give-up time (12.3 s): its prefill must share the
    # NPU (SR's only fast backend) or the GPU (OD's) with 60 FPS frames, and a 34 ms (NPU)
    # or 103 ms (GPU) prefill layer covers at least one whole frame window there.
    code, verdict = _check(["--optimal", "--horizon", "2s", "--time-limit", "20s",
                            "--workers", "1"], capsys)
    assert code == 1 and verdict["schedulable"] is False
    assert "proven lower bound" in verdict["reason"]


@pytest.mark.slow  # a contrast with the older model, not a property of the current one
def test_check_optimal_on_two_seconds_said_yes_when_frames_stopped(capsys):
    code, verdict = _check(["--optimal", "--horizon", "2s", "--time-limit", "20s",
                            "--workers", "1", "--set", "after_horizon=stop"], capsys)
    assert code == 0 and verdict["schedulable"] is True


def test_solve_two_seconds_has_unavoidable_violations_and_shows_the_drain(capsys):
    code, out, _ = run_cli(["solve", "scenario_c", "--horizon", "2s", "--time-limit", "10s",
                            "--workers", "1", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["replay_ok"]
    assert data["violations"] > 0 and data["violations_lower_bound"] >= 1
    for task in ("sr", "od"):  # frames until the request gave up (12.3009 s) and then had
        # its standalone latency (1.23009 s) to finish: ceil(13.53099 x 60)
        assert data["tasks"][task]["released"] == 812
        assert data["tasks"][task]["drain_released"] == 812 - 120


@pytest.mark.parametrize("after_horizon", ["continue", "stop"])
def test_after_horizon_goes_through_set_and_the_taskset_json(after_horizon, capsys):
    code, out, _ = run_cli(["taskset", "scenario_a", "--horizon", "1s", "--set",
                            f"after_horizon={after_horizon}", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["after_horizon"] == after_horizon
    drain_jobs = sum(t["drain_jobs"] for t in data["tasks"].values())
    assert (drain_jobs > 0) == (after_horizon == "continue")
