"""Task-set expansion: counts, exact rounding, chains, granularity, JSON round trip."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen_opt.model.latency import builtin_dbs, load_db
from rtgen_opt.model.scenario import Arrivals, Scenario, TaskSpec, load_scenario
from rtgen_opt.model.taskset import (
    DECODE,
    FRAME,
    INELIGIBLE,
    NO_DEADLINE,
    PREFILL,
    TaskSet,
    build_taskset,
)

DB = load_db(builtin_dbs()["ryzen_ai_9_365"])
PLATFORM = {"cpu": 1, "gpu": 1, "npu": 1}


def scenario(*tasks, granularity="layer", mapping=None, after_horizon="continue",
             drain=None) -> Scenario:
    return Scenario(name="t", description="", source="test", db=DB, platform=PLATFORM,
                    tasks=tuple(tasks), granularity=granularity, mapping=mapping or {},
                    after_horizon=after_horizon, drain=drain)


fps_values = st.sampled_from(["7.5", "10", "24", "29.97", "30", "50", "59.94", "60", "120"])
ms = st.integers(0, 50_000).map(lambda us: Fraction(us, 10**6))


@settings(max_examples=60, deadline=None)
@given(fps=fps_values, phase=ms, horizon=st.integers(1, 3_000_000).map(lambda us: Fraction(us, 10**6)),
       deadline_frac=st.fractions(Fraction(1, 10), Fraction(2)),
       after_horizon=st.sampled_from(["continue", "stop"]))
def test_periodic_jobs_count_release_and_deadline(fps, phase, horizon, deadline_frac,
                                                  after_horizon):
    period = 1 / Fraction(fps)
    deadline = period * deadline_frac
    spec = TaskSpec(name="v", model="yolov3", kind="periodic", period=period, deadline=deadline,
                    phase=phase)
    ts = build_taskset(scenario(spec, after_horizon=after_horizon), horizon)
    # no request: the drain is one frame deadline (rounded down to the µs); under `stop`
    # frames are released only in [0, horizon)
    drain = Fraction(math.floor(deadline * 10**6), 10**6)
    release_end = horizon + (drain if after_horizon == "continue" else 0)
    expected = max(0, math.ceil((release_end - phase) * Fraction(fps)))
    assert ts.num_jobs == expected
    assert ts.drain_us == drain * 10**6
    for k in range(ts.num_jobs):  # independent oracle: exact arithmetic, round half up
        exact_us = (phase + k * period) * 10**6
        assert ts.job_release_us[k] == math.floor(exact_us + Fraction(1, 2))
        assert ts.job_deadline_us[k] == ts.job_release_us[k] + math.floor(deadline * 10**6)
    assert ts.job_release_us.dtype == np.int64 and ts.job_deadline_us.dtype == np.int64
    assert np.all(np.diff(ts.job_release_us) > 0)
    assert np.all(ts.job_release_us < release_end * 10**6)
    # the drain jobs are exactly those released at or after the horizon
    in_horizon = max(0, math.ceil((horizon - phase) * Fraction(fps)))
    assert ts.summary()["tasks"]["v"]["drain_jobs"] == ts.num_jobs - in_horizon
    assert np.all(ts.job_deadline_us <= ts.end_us)  # the run covers every frame's deadline


@settings(max_examples=40, deadline=None)
@given(fps=fps_values, phase=ms, horizon_ms=st.integers(1, 3000),
       every_ms=st.integers(50, 2000), start_ms=st.integers(0, 1500),
       give_up_ms=st.integers(1, 4000), after_horizon=st.sampled_from(["continue", "stop"]))
def test_frames_continue_until_every_request_gave_up(fps, phase, horizon_ms, every_ms, start_ms,
                                                     give_up_ms, after_horizon):
    # frames released = ceil((horizon + drain - phase) * fps), where the drain lasts until
    # the last request released in the horizon reached its give-up time (here the scenario's
    # `drain`), at least one frame deadline, and then the request's standalone latency (time
    # to finish); under `stop`, ceil((horizon - phase) * fps)
    period = 1 / Fraction(fps)
    frames = TaskSpec(name="v", model="yolov3", kind="periodic", period=period, deadline=period,
                      phase=phase)
    requests = TaskSpec(name="r", model="gte-base", kind="request", input_tokens=64,
                        arrivals=Arrivals("every", every=Fraction(every_ms, 1000),
                                          start=Fraction(start_ms, 1000)))
    horizon, give_up = Fraction(horizon_ms, 1000), Fraction(give_up_ms, 1000)
    ts = build_taskset(scenario(frames, requests, after_horizon=after_horizon, drain=give_up),
                       horizon)
    arrivals = [Fraction(start_ms + k * every_ms, 1000) for k in range(3000 // every_ms + 1)
                if start_ms + k * every_ms < horizon_ms]
    assert ts.tasks[1].num_jobs == len(arrivals)  # requests: only in the horizon, always
    frame_deadline = Fraction(math.floor(period * 10**6), 10**6)
    finish = Fraction(ts.tasks[1].standalone_us, 10**6)
    drain = max([a + give_up - horizon for a in arrivals] + [frame_deadline]) + finish
    if after_horizon == "continue":
        assert ts.drain_us == drain * 10**6
        expected = math.ceil((horizon + drain - phase) * Fraction(fps))
    else:
        expected = math.ceil((horizon - phase) * Fraction(fps))
    assert ts.tasks[0].num_jobs == max(0, expected)
    in_horizon = max(0, math.ceil((horizon - phase) * Fraction(fps)))
    assert ts.summary()["tasks"]["v"]["drain_jobs"] == max(0, expected) - in_horizon
    assert ts.summary()["tasks"]["r"]["drain_jobs"] == 0
    # every request's give-up time and every frame's deadline lie within the run
    assert all(a + give_up <= Fraction(ts.end_us, 10**6) for a in arrivals)
    assert np.all(ts.job_deadline_us[ts.tasks[0].job_range] <= ts.end_us)


@settings(max_examples=30, deadline=None)
@given(n_in=st.integers(16, 2048), n_out=st.integers(1, 40),
       granularity=st.sampled_from(["layer", "model", "group:3", "group:16", "group:100"]))
def test_llm_request_is_prefill_then_decode_steps(n_in, n_out, granularity):
    spec = TaskSpec(name="llm", model="llama3.2-1b", kind="request", input_tokens=n_in,
                    output_tokens=n_out, arrivals=Arrivals("times", times=(Fraction(0),)))
    ts = build_taskset(scenario(spec, granularity=granularity), Fraction(1))
    layers = DB.stage2layers["llama3.2-1b", "prefill"]
    per_step = math.ceil(layers / Scenario.layers_per_segment(scenario(granularity=granularity),
                                                              layers))
    segs = ts.job_segments(0)
    assert len(segs) == per_step * n_out  # prefill + (n_out - 1) decode steps
    stage = ts.seg_stage[segs.start:segs.stop]
    assert list(stage[:per_step]) == [PREFILL] * per_step
    assert set(stage[per_step:]) <= {DECODE}
    tokens = ts.seg_token[segs.start:segs.stop]
    assert list(tokens[tokens > 0]) == list(range(1, n_out + 1))  # one token per step, in order
    # the LLM never runs on the CPU; decode slows down as the context grows
    dur = ts.seg_dur_us[segs.start:segs.stop]
    assert np.all(dur[:, 0] == INELIGIBLE) and np.all(dur[:, 1:] > 0)
    step_gpu = dur[per_step:, 1].reshape(-1, per_step).sum(axis=1)
    assert np.all(np.diff(step_gpu) >= 0)
    assert ts.job_deadline_us[0] == NO_DEADLINE


@pytest.mark.parametrize("granularity, segments", [("layer", 12), ("model", 1), ("group:5", 3),
                                                   ("group:12", 1), ("group:99", 1)])
def test_granularity_groups_layers_and_rounds_each_segment_up(granularity, segments):
    spec = TaskSpec(name="rag", model="gte-base", kind="request", input_tokens=100,
                    arrivals=Arrivals("times", times=(Fraction(0),)))
    ts = build_taskset(scenario(spec, granularity=granularity), Fraction(1, 30))
    dur = ts.seg_dur_us[list(ts.job_segments(0))]
    assert len(dur) == segments
    exact_us = np.array([float(DB.layer_ms("gte-base", "frame", b, [100]).sum()) * 1000
                         for b in ts.backends])
    assert np.all(dur.sum(axis=0) >= exact_us - 1e-6)  # rounded up, never down
    assert np.all(dur.sum(axis=0) < exact_us + segments)


def test_scenario_c_one_second_matches_hand_count():
    ts = build_taskset(load_scenario("scenario_c"), Fraction(1))
    summary = ts.summary()
    # the request (arrival 0) gives up 10 x its standalone chain (rag + llm, 1230.09 ms)
    # after arrival: 12.3009 s, and may then take its standalone latency to finish. Frames go
    # on until then: drain 12.53099 s, 60 FPS frames in [0, 13.53099 s): ceil(811.86) = 812,
    # of which 812 - 60 = 752 after the horizon
    assert ts.tasks[ts.task_index("llm")].standalone_us == 1_230_090
    assert ts.drain_us == 12_530_990
    assert summary["tasks"]["od"] == {"jobs": 812, "segments": 812, "drain_jobs": 752}
    assert summary["tasks"]["sr"] == {"jobs": 812, "segments": 812, "drain_jobs": 752}
    assert summary["tasks"]["rag"] == {"jobs": 1, "segments": 12, "drain_jobs": 0}
    # prefill + 63 decode steps, 16 layers each
    assert summary["tasks"]["llm"] == {"jobs": 1, "segments": 16 * 64, "drain_jobs": 0}
    assert ts.hyperperiod_s == Fraction(1, 60)
    llm, rag = ts.task_index("llm"), ts.task_index("rag")
    assert ts.job_after[ts.tasks[llm].first_job] == ts.tasks[rag].first_job
    assert ts.job_release_us[ts.tasks[llm].first_job] == 0


def test_scenario_c_one_second_frames_stop_at_the_horizon_under_stop():
    ts = build_taskset(load_scenario("scenario_c", ["after_horizon=stop"]), Fraction(1))
    summary = ts.summary()
    assert summary["after_horizon"] == "stop"
    assert summary["tasks"]["od"] == {"jobs": 60, "segments": 60, "drain_jobs": 0}
    assert summary["tasks"]["sr"] == {"jobs": 60, "segments": 60, "drain_jobs": 0}
    assert summary["tasks"]["llm"] == {"jobs": 1, "segments": 16 * 64, "drain_jobs": 0}


@pytest.mark.parametrize("after_horizon, frames", [("continue", 4112), ("stop", 3600)])
def test_sixty_seconds_of_scenario_c(after_horizon, frames):
    ts = build_taskset(load_scenario("scenario_c", [f"after_horizon={after_horizon}"]),
                       Fraction(60))
    # the last request arrives at 55 s and gives up at 55 + 12.3009 s, then has its
    # standalone latency (1.23009 s) to finish: frames continue until 68.53099 s,
    # ceil(68.53099 x 60) = 4112 per task (512 in the drain); `stop`: 3600
    assert ts.summary()["tasks"]["llm"]["jobs"] == 12 and ts.tasks[0].num_jobs == frames
    # 60 FPS releases do not drift: the 3600th frame is exactly at 59.98333 s
    assert ts.job_release_us[3599] == round(Fraction(3599, 60) * 10**6)
    assert ts.job_release_us[frames - 1] == round(Fraction(frames - 1, 60) * 10**6)


def test_hyperperiod_is_exact_lcm():
    a = TaskSpec(name="a", model="yolov3", kind="periodic", period=Fraction(1, 60),
                 deadline=Fraction(1, 60))
    b = TaskSpec(name="b", model="rcan", kind="periodic", period=Fraction(1, 24),
                 deadline=Fraction(1, 24))
    c = TaskSpec(name="c", model="rcan", kind="periodic", period=1 / Fraction("29.97"),
                 deadline=1 / Fraction("29.97"))
    assert build_taskset(scenario(a, b), Fraction(1)).hyperperiod_s == Fraction(1, 12)
    assert build_taskset(scenario(a, c), Fraction(1)).hyperperiod_s == Fraction(100, 3)


def test_poisson_arrivals_are_seeded():
    def arrivals(seed):
        spec = TaskSpec(name="r", model="gte-base", kind="request", input_tokens=64,
                        arrivals=Arrivals("poisson", rate=20.0, seed=seed))
        return build_taskset(scenario(spec), Fraction(5)).job_release_us

    assert np.array_equal(arrivals(7), arrivals(7))
    assert not np.array_equal(arrivals(7), arrivals(8))
    assert 50 < len(arrivals(7)) < 150  # ~100 expected at 20/s over 5 s


def test_aot_mapping_fastest_stage_backend_unless_the_scenario_says():
    llm = TaskSpec(name="llm", model="llama3.2-1b", kind="request", input_tokens=1024,
                   output_tokens=8, arrivals=Arrivals("times", times=(Fraction(0),)))
    ts = build_taskset(scenario(llm), Fraction(1))
    gpu, npu = ts.backends.index("gpu"), ts.backends.index("npu")
    assert ts.aot_mapping[0][PREFILL] == npu and ts.aot_mapping[0][DECODE] == gpu
    assert ts.aot_mapping[0][FRAME] == -1
    forced = build_taskset(scenario(llm, mapping={("llama3.2-1b", "prefill"): "gpu"}), Fraction(1))
    assert forced.aot_mapping[0][PREFILL] == gpu


@settings(max_examples=25, deadline=None)
@given(fps=fps_values, n_in=st.integers(16, 512), n_out=st.integers(1, 5),
       horizon_ms=st.integers(1, 400), granularity=st.sampled_from(["layer", "model", "group:5"]))
def test_json_round_trip(fps, n_in, n_out, horizon_ms, granularity):
    specs = (
        TaskSpec(name="v", model="rcan", kind="periodic", period=1 / Fraction(fps),
                 deadline=1 / Fraction(fps)),
        TaskSpec(name="rag", model="gte-base", kind="request", input_tokens=n_in,
                 arrivals=Arrivals("every", every=Fraction(1, 10))),
        TaskSpec(name="llm", model="llama3.2-1b", kind="request", input_tokens=n_in,
                 output_tokens=n_out, after="rag", arrivals=Arrivals("every", every=Fraction(1, 10)),
                 tpt=Fraction(1, 10)),
    )
    ts = build_taskset(scenario(*specs, granularity=granularity), Fraction(horizon_ms, 1000))
    again = TaskSet.from_json(ts.to_json())
    assert again.equals(ts)
    assert again.to_json() == ts.to_json()


def test_expansion_is_deterministic():
    a = build_taskset(load_scenario("scenario_d"), Fraction(5))
    b = build_taskset(load_scenario("scenario_d"), Fraction(5))
    assert a.to_json() == b.to_json()
