"""Timing uncertainty: the model's ranges, realizations, the executor running them, and
Monte Carlo (docs/semantics.md, *Timing uncertainty*)."""

from __future__ import annotations

import dataclasses
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtgen_opt.analysis.sampling import (draw, miss_lower_bound, miss_upper_bound, run_samples,
                                         sample_metrics)
from rtgen_opt.errors import InputError
from rtgen_opt.evaluation.replay import replay
from rtgen_opt.model.realization import (
    Realization,
    nominal,
    read_realization,
    sample,
    validate,
    write_realization,
)
from rtgen_opt.model.scenario import builtin_scenarios, load_scenario
from rtgen_opt.model.taskset import INELIGIBLE, TaskSet, build_taskset
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.conftest import base, run_cli
from tests.tiny import taskset as tiny_taskset

UNCERTAIN = ("execution=[0.8,1.3]", "od.jitter=2ms")


def _ts(name="scenario_c", overrides=UNCERTAIN, horizon=1) -> TaskSet:
    return build_taskset(load_scenario(name, overrides), Fraction(horizon))


def _same_schedule(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f))
               for f in ("seg", "backend", "instance", "start_us", "end_us", "aborted"))


# ---------------------------------------------------------------------------- the model


def test_ranges_bracket_the_nominal_and_reduce_to_it_without_uncertainty():
    plain, ranged = _ts(overrides=()), _ts()
    assert not plain.has_uncertainty and ranged.has_uncertainty
    assert np.array_equal(plain.seg_dur_lo_us, plain.seg_dur_us)
    assert np.array_equal(plain.seg_dur_hi_us, plain.seg_dur_us)
    eligible = ranged.seg_dur_us != INELIGIBLE
    nom = ranged.seg_dur_us[eligible]
    # floor(0.8 x nominal), ceil(1.3 x nominal), computed here in exact integers
    assert np.array_equal(ranged.seg_dur_lo_us[eligible], np.maximum(1, (8 * nom) // 10))
    assert np.array_equal(ranged.seg_dur_hi_us[eligible], -((-13 * nom) // 10))
    assert (ranged.seg_dur_lo_us[~eligible] == INELIGIBLE).all()
    od = ranged.tasks[ranged.task_index("od")]
    assert set(ranged.job_jitter_us[od.job_range].tolist()) == {2000}
    assert set(np.delete(ranged.job_jitter_us, list(od.job_range)).tolist()) == {0}
    assert TaskSet.from_json(ranged.to_json()).equals(ranged)


def test_database_bounds_take_precedence_and_split_over_layers(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    (db / "latency.csv").write_text(
        "model,stage,backend,seq_len,layers,latency_ms,latency_min_ms,latency_max_ms,source\n"
        "m,frame,cpu,,4,4.0,2.0,8.0,t\n"
        "n,frame,cpu,,2,2.0,,,t\n")
    (tmp_path / "s.yaml").write_text(json.dumps({
        "latency_db": str(db), "execution": [0.5, 1.5], "tasks": [
            {"name": "a", "model": "m", "fps": 10}, {"name": "b", "model": "n", "fps": 10}]}))
    ts = build_taskset(load_scenario(str(tmp_path / "s.yaml")), Fraction(1, 10))
    a, b = (ts.job_segments(t.first_job) for t in ts.tasks)
    # m: 4 layers of 1 ms, database range 0.5..2 ms per layer
    assert ts.seg_dur_us[a.start:a.stop, 0].tolist() == [1000] * 4
    assert ts.seg_dur_lo_us[a.start:a.stop, 0].tolist() == [500] * 4
    assert ts.seg_dur_hi_us[a.start:a.stop, 0].tolist() == [2000] * 4
    # n has no bounds: the scenario's factors
    assert ts.seg_dur_lo_us[b.start:b.stop, 0].tolist() == [500] * 2
    assert ts.seg_dur_hi_us[b.start:b.stop, 0].tolist() == [1500] * 2


BAD_SCENARIO = [  # (change, field named in the message)
    ({"execution": [1.2, 0.9]}, "execution"),
    ({"execution": [0, 1]}, "execution"),
    ({"execution": [-0.1, 1]}, "execution"),
    ({"execution": ["a", 1]}, "execution"),
    ({"execution": [0.9]}, "execution"),
    ({"execution": 1.1}, "execution"),
    ({"execution": [0.9, True]}, "execution"),
    ({"execution": [0.9, 1e9]}, "execution"),
    ({"execution": [0.9, float("nan")]}, "execution"),
    ({"tasks.od.jitter": "-1ms"}, "tasks.od.jitter"),
    ({"tasks.od.jitter": "soon"}, "tasks.od.jitter"),
    ({"tasks.od.jitter": 5}, "tasks.od.jitter"),
]


@pytest.mark.parametrize("change, field", BAD_SCENARIO)
def test_bad_uncertainty_in_a_scenario_exits_2_naming_the_field(change, field, scenario_file,
                                                                capsys):
    data = base()
    for key, value in change.items():
        if key.startswith("tasks."):
            data["tasks"][0][key.split(".")[-1]] = value
        else:
            data[key] = value
    path = scenario_file(data)
    code, out, err = run_cli(["taskset", path, "--horizon", "100ms"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert path in err and field in err


@pytest.mark.parametrize("cells, column", [
    ("4.0,5.0,8.0", "latency_min_ms"),
    ("4.0,1.0,3.0", "latency_max_ms"),
    ("4.0,abc,8.0", "latency_min_ms"),
    ("4.0,-1,8.0", "latency_min_ms"),
])
def test_bad_database_bounds_exit_2_naming_the_column(cells, column, tmp_path, capsys):
    db = tmp_path / "db"
    db.mkdir()
    (db / "latency.csv").write_text(
        "model,stage,backend,seq_len,layers,latency_ms,latency_min_ms,latency_max_ms,source\n"
        f"m,frame,cpu,,4,{cells},t\n")
    (tmp_path / "s.yaml").write_text(json.dumps({"latency_db": str(db), "tasks": [
        {"name": "a", "model": "m", "fps": 10}]}))
    code, _, err = run_cli(["taskset", str(tmp_path / "s.yaml"), "--horizon", "1s"], capsys)
    assert code == 2 and err.count("\n") == 1 and "latency.csv" in err and column in err


def test_p99_above_the_maximum_is_refused(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    (db / "latency.csv").write_text(
        "model,stage,backend,seq_len,layers,latency_ms,latency_p99_ms,latency_max_ms,source\n"
        "m,frame,cpu,,4,4.0,6.0,5.0,t\n")
    (tmp_path / "s.yaml").write_text(json.dumps({"latency_db": str(db), "tasks": [
        {"name": "a", "model": "m", "fps": 10}]}))
    with pytest.raises(InputError, match="latency_max_ms"):
        load_scenario(str(tmp_path / "s.yaml"))


# ---------------------------------------------------------------------------- the executor


NOMINAL_CASES = [(name, policy) for name in builtin_scenarios() for policy in POLICIES]


@pytest.mark.parametrize("name, policy", NOMINAL_CASES)
def test_the_nominal_realization_is_the_plain_run_bit_for_bit(name, policy):
    ts = _ts(name, overrides=(), horizon=Fraction(3, 2))
    plain = simulate(ts, policy)
    again = simulate(ts, policy, nominal(ts))
    assert _same_schedule(plain.schedule, again.schedule) and plain.events == again.events


@pytest.mark.parametrize("policy", list(POLICIES))
def test_a_sampled_realization_runs_with_its_durations_and_ready_times(policy):
    ts = _ts(horizon=1)
    r = sample(ts, np.random.default_rng(3))
    run = simulate(ts, policy, r)
    assert replay(_realized(ts, r), run.schedule).ok


def _realized(ts: TaskSet, r: Realization) -> TaskSet:
    """The task set as the realization made it: replay then checks each completed segment
    ran exactly its actual duration and nothing started before its job was ready (the
    deadlines stay those of the arrivals)."""
    return dataclasses.replace(ts, seg_dur_us=r.dur_us, job_release_us=r.ready_us)


def test_policies_decide_with_nominal_durations_while_segments_take_their_actual_ones(tmp_path):
    # one frame task on a fast gpu (10 ms) and a slow cpu (20 ms); edf-dyn picks the gpu
    ts = tiny_taskset(tmp_path, ["m,frame,gpu,,1,10", "m,frame,cpu,,1,20"],
                      [{"name": "a", "model": "m", "fps": 10}], "100ms",
                      execution=[0.5, 3])
    r = nominal(ts)
    r.dur_us[0] = [50_000, 30_000]  # cpu 50 ms, gpu 30 ms: the gpu is still chosen
    r.ready_us[0] = 5_000
    s = simulate(ts, "edf-dyn", r).schedule
    first = np.flatnonzero(s.seg == 0)[0]
    assert ts.backends[s.backend[first]] == "gpu"
    assert (s.start_us[first], s.end_us[first]) == (5_000, 35_000)


def test_jitter_delays_readiness_but_not_the_deadline(tmp_path):
    ts = tiny_taskset(tmp_path, ["m,frame,cpu,,1,10"],
                      [{"name": "a", "model": "m", "fps": 10, "jitter": "95ms"}], "100ms")
    r = nominal(ts)
    r.ready_us[0] = 95_000  # ready 95 ms after arrival: cannot finish by its 100 ms deadline
    s = simulate(ts, "fcfs-aot", r).schedule
    rows = np.flatnonzero(s.seg == 0)
    assert s.start_us[rows[0]] == 95_000 and s.aborted[rows[0]] and s.end_us[rows[0]] == 100_000


# ---------------------------------------------------------------------------- realizations


def test_validate_names_the_job_or_segment_out_of_range():
    ts = _ts()
    r = nominal(ts)
    r.dur_us[5, 1] = ts.seg_dur_hi_us[5, 1] + 1
    with pytest.raises(InputError, match=r"duration_us\.\d+/\d+"):
        validate(ts, r)
    r = nominal(ts)
    job = ts.tasks[ts.task_index("od")].first_job
    r.ready_us[job] += 2001
    with pytest.raises(InputError, match=rf"ready_us\.{job}"):
        validate(ts, r)


def test_a_written_realization_reads_back_equal_and_only_lists_what_differs(tmp_path):
    ts = _ts()
    r = sample(ts, np.random.default_rng(1))
    path = tmp_path / "r.json"
    write_realization(path, ts, r, "scenario_c", UNCERTAIN)
    assert read_realization(path, ts, "scenario_c", UNCERTAIN).equals(r)
    write_realization(path, ts, nominal(ts), "scenario_c", UNCERTAIN)
    data = json.loads(path.read_text())
    assert data["ready_us"] == {} and data["duration_us"] == {}


@pytest.mark.parametrize("args", [
    ["--horizon", "2s", "--set", UNCERTAIN[0], "--set", UNCERTAIN[1]],  # another horizon
    ["--horizon", "1s", "--set", UNCERTAIN[0]],  # other overrides
])
def test_a_realization_for_another_run_exits_2(args, tmp_path, capsys):
    ts = _ts()
    path = str(tmp_path / "r.json")
    write_realization(path, ts, sample(ts, np.random.default_rng(1)), "scenario_c", UNCERTAIN)
    code, out, err = run_cli(["simulate", "scenario_c", "--policy", "ftf", "--realization",
                              path, *args], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and path in err


def test_a_realization_for_another_scenario_exits_2(tmp_path, capsys):
    ts = _ts("scenario_a", overrides=())
    path = str(tmp_path / "r.json")
    write_realization(path, ts, nominal(ts), "scenario_a", ())
    code, _, err = run_cli(["simulate", "scenario_b", "--horizon", "1s", "--realization",
                            path], capsys)
    assert code == 2 and "scenario" in err and err.count("\n") == 1


@pytest.mark.parametrize("entry", [
    {"duration_us": {"0/0": 1}},  # below the shortest duration
    {"duration_us": {"0/0": {"gpu": 10**9}}},
    {"duration_us": {"0/99999": 5}},  # no such segment
    {"duration_us": {"0/0": "5"}},
    {"ready_us": {"0": -1}},
    {"ready_us": {"x": 3}},
    {"format": "something else"},
    {"version": 2},
    {"extra": 1},
])
def test_out_of_range_or_malformed_realizations_exit_2(entry, tmp_path, capsys):
    ts = _ts()
    path = tmp_path / "r.json"
    write_realization(path, ts, nominal(ts), "scenario_c", UNCERTAIN)
    data = {**json.loads(path.read_text()), **entry}
    path.write_text(json.dumps(data))
    code, out, err = run_cli(["simulate", "scenario_c", "--horizon", "1s", "--set",
                              UNCERTAIN[0], "--set", UNCERTAIN[1], "--realization",
                              str(path)], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1


# ---------------------------------------------------------------------------- Monte Carlo


def test_seeded_samples_are_reproducible_whatever_the_worker_count():
    ts = _ts(horizon=1)
    one = run_samples(ts, "ftf", 45, seed=7, workers=1)
    two = run_samples(ts, "ftf", 45, seed=7, workers=2)
    assert one.samples == two.samples and len(one.samples) == 45 and not one.interrupted
    other = run_samples(ts, "ftf", 45, seed=8, workers=1)
    assert other.samples != one.samples


def test_a_stopped_run_keeps_the_samples_before_the_stop_even_inside_a_chunk():
    # Ctrl-C ends a sampling run between two samples, not at the end of a chunk (a chunk
    # of 60 s runs takes seconds); what it keeps is the exact prefix of the full run.
    ts = _ts(horizon=1)
    full = run_samples(ts, "ftf", 45, seed=7, workers=1)
    asked = iter(range(1000))
    stopped = run_samples(ts, "ftf", 45, seed=7, workers=1, stop=lambda: next(asked) >= 25)
    assert stopped.interrupted and 0 < len(stopped.samples) < 45
    assert len(stopped.samples) % 20 != 0  # stopped inside a chunk
    assert stopped.samples == full.samples[:len(stopped.samples)]


def test_the_witness_file_replays_to_the_recorded_metrics(tmp_path, capsys):
    witness = str(tmp_path / "w.json")
    common = ["simulate", "scenario_c", "--horizon", "1s", "--policy", "edf-dyn", "--set",
              UNCERTAIN[0], "--set", UNCERTAIN[1], "--format", "json"]
    code, out, _ = run_cli([*common, "--samples", "30", "--seed", "3", "--workers", "1",
                            "--witness-out", witness], capsys)
    assert code == 0
    samples = json.loads(out)["runs"][0]["samples"]
    assert samples["n"] == 30 and samples["witness"] == witness
    code, out, _ = run_cli([*common, "--realization", witness], capsys)
    run = json.loads(out)["runs"][0]
    assert code == 0 and run["violations"] == samples["violations"]["max"]
    ts = _ts(horizon=1)
    worst = sample_metrics(ts, POLICIES["edf-dyn"], draw(ts, 3, samples["worst_sample"]))
    assert worst["violations"] == run["violations"]
    assert worst["tasks"] == {t: v["violations"] for t, v in run["tasks"].items()}


def test_sample_json_states_the_distribution_and_the_miss_bound(capsys):
    code, out, _ = run_cli(["simulate", "scenario_a", "--horizon", "1s", "--policy", "ftf",
                              "--set", "execution=[0.9,1.1]", "--samples", "12",
                              "--workers", "1", "--format", "json"], capsys)
    s = json.loads(out)["runs"][0]["samples"]
    assert code == 0 and s["n"] == 12 and s["seed"] == 0
    for key in ("mean", "p50", "p99", "max"):
        assert key in s["violations"] and key in s["starved"]
    k = s["miss"]["samples_with_miss"]
    assert s["miss"]["probability_upper_95"] == pytest.approx(miss_upper_bound(k, 12))
    assert "not a proof" in s["miss"]["statement"]


def test_miss_bound_is_clopper_pearson_and_the_rule_of_three():
    assert miss_upper_bound(0, 300) == pytest.approx(0.01)
    # one-sided Clopper-Pearson: P(X <= k | n, p_upper) = 5 %
    n, k = 50, 4
    p = miss_upper_bound(k, n)
    cdf = sum(math.comb(n, i) * p**i * (1 - p)**(n - i) for i in range(k + 1))
    assert cdf == pytest.approx(0.05, abs=1e-9)



@pytest.mark.parametrize("n, k", [(50, 4), (20, 20), (7, 1)])
def test_miss_lower_bound_is_clopper_pearson(n, k):
    # one-sided: P(X >= k | n, p_lower) = 5 % (the binomial sum, independent of scipy)
    p = miss_lower_bound(k, n)
    tail = sum(math.comb(n, i) * p**i * (1 - p)**(n - i) for i in range(k, n + 1))
    assert tail == pytest.approx(0.05, abs=1e-9)
    assert miss_lower_bound(0, n) == 0.0


def test_the_table_says_at_least_when_every_sample_missed(capsys):
    code, out, _ = run_cli(["simulate", "scenario_c", "--policy", "ftf", "--horizon", "2s",
                            "--set", "execution=[0.9,1.1]", "--samples", "5", "--workers",
                            "1"], capsys)
    assert code == 0 and "5/5" in out and f"≥ {miss_lower_bound(5, 5):.3g}" in out


@pytest.mark.parametrize("args", [
    ["--samples", "0"], ["--samples", "5", "--realization", "x.json"],
    ["--witness-out", "w.json"], ["--samples", "3", "--seed", "-1"],
    ["--samples", "3", "--workers", "-2"],
])
def test_bad_sampling_options_exit_2(args, capsys):
    code, out, _ = run_cli(["simulate", "scenario_a", "--horizon", "1s", *args], capsys)
    assert code == 2 and out == ""


# ---------------------------------------------------------------------------- property


FRAME_ROWS = ["m,frame,cpu,,2,6", "m,frame,gpu,,2,4", "k,frame,gpu,,1,3", "k,frame,npu,,1,5"]


@st.composite
def uncertain_tasksets(draw_):
    tasks = []
    for i in range(draw_(st.integers(1, 3))):
        fps = draw_(st.sampled_from([20, 30, 50, 60]))
        task = {"name": f"t{i}", "model": draw_(st.sampled_from(["m", "k"])), "fps": fps,
                "jitter": f"{draw_(st.integers(0, 8))}ms"}
        if draw_(st.booleans()):
            task["deadline"] = f"{draw_(st.integers(5, 40))}ms"
        tasks.append(task)
    lo = draw_(st.sampled_from([0.3, 0.8, 1.0]))
    hi = draw_(st.sampled_from([1.0, 1.25, 2.0]))
    settings_ = {"execution": [lo, hi],
                 "on_miss": draw_(st.sampled_from(["drop", "continue"])),
                 "preemption": draw_(st.sampled_from(["none", "restart"])),
                 "granularity": draw_(st.sampled_from(["layer", "model"]))}
    return tasks, settings_, draw_(st.integers(0, 2**32))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(case=uncertain_tasksets(), policy=st.sampled_from(list(POLICIES)))
def test_any_sampled_realization_yields_a_valid_schedule(tmp_path_factory, case, policy):
    tasks, extra, seed = case
    ts = tiny_taskset(tmp_path_factory.mktemp("u"), FRAME_ROWS, tasks, "200ms", **extra)
    r = sample(ts, np.random.default_rng(seed))
    validate(ts, r)
    result = replay(_realized(ts, r), simulate(ts, policy, r).schedule)
    assert result.ok, result.violations[:3]


def test_the_html_report_shows_the_sampled_distribution(tmp_path, capsys):
    pytest.importorskip("plotly")
    page = tmp_path / "r.html"
    code, _, _ = run_cli(["simulate", "scenario_a", "--horizon", "1s", "--policy",
                          "ftf", "--set", "execution=[0.8,1.3]",
                          "--samples", "8", "--workers", "1", "--report", str(page)], capsys)
    assert code == 0 and "Sampled realizations" in page.read_text()


def test_the_statement_never_bounds_the_miss_probability_by_one():
    from rtgen_opt.analysis.sampling import _statement

    every = _statement(20, 20)  # all missed: only a lower bound says something
    assert "below 1 " not in every and "at least" in every
    # P(all 20 miss | p) = p^20 = 5 % at the stated lower bound
    low = float(every.split("at least ")[1].split()[0])
    assert low**20 == pytest.approx(0.05, rel=0.02)  # printed to 3 digits
    assert "cannot be bounded below 1" in _statement(0, 3)
    assert "below 0.01 with 95 % confidence (rule of three)" in _statement(0, 300)
