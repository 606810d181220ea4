"""The task-set size estimate (checked before building) against the task set itself: exact
where the release rule is exact, an upper bound otherwise; and the refusal it leads to."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen_opt import limits
from rtgen_opt.errors import InputError
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.size import check_size, estimate_size
from rtgen_opt.model.taskset import build_taskset
from tests.conftest import base

FPS = st.sampled_from([1, 7.5, 24, 29.97, 30, 60, 144])
GRANULARITY = st.sampled_from(["layer", "model", "group:2", "group:7"])
HORIZON_MS = st.integers(min_value=1, max_value=400)


def scenario(scenario_file, fps, every_ms, tokens, granularity, after_horizon, poisson=None):
    data = base()
    data["tasks"][0]["fps"] = fps
    data["tasks"][1]["arrivals"] = ({"poisson": poisson, "seed": 3} if poisson
                                    else {"every": f"{every_ms}ms"})
    data["tasks"][2]["output_tokens"] = tokens
    data.update(granularity=granularity, after_horizon=after_horizon)
    return load_scenario(scenario_file(data))


@settings(max_examples=40, deadline=None)
@given(fps=FPS, every_ms=st.integers(5, 300), tokens=st.integers(1, 12),
       granularity=GRANULARITY, horizon_ms=HORIZON_MS)
def test_the_estimate_is_exact_when_frames_stop_at_the_horizon(tmp_path_factory, fps,
                                                                 every_ms, tokens,
                                                                 granularity, horizon_ms):
    folder = tmp_path_factory.mktemp("s")
    s = scenario(lambda d: _write(folder, d), fps, every_ms, tokens, granularity, "stop")
    horizon = Fraction(horizon_ms, 1000)
    estimate, ts = estimate_size(s, horizon), build_taskset(s, horizon)
    assert (estimate.jobs, estimate.segments) == (ts.num_jobs, ts.num_segments)


@settings(max_examples=40, deadline=None)
@given(fps=FPS, every_ms=st.integers(5, 300), tokens=st.integers(1, 12),
       granularity=GRANULARITY, horizon_ms=HORIZON_MS,
       poisson=st.one_of(st.none(), st.sampled_from([0.5, 5.0, 40.0])))
def test_the_estimate_bounds_the_continuing_load_and_poisson_arrivals(
        tmp_path_factory, fps, every_ms, tokens, granularity, horizon_ms, poisson):
    folder = tmp_path_factory.mktemp("s")
    s = scenario(lambda d: _write(folder, d), fps, every_ms, tokens, granularity, "continue",
                 poisson)
    horizon = Fraction(horizon_ms, 1000)
    estimate, ts = estimate_size(s, horizon), build_taskset(s, horizon)
    assert estimate.jobs >= ts.num_jobs and estimate.segments >= ts.num_segments


def _write(folder, data) -> str:
    import yaml

    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_a_task_set_over_the_limit_is_refused_with_the_estimate_and_a_suggestion():
    s = load_scenario("scenario_c")
    limits.set_max_memory(limits.parse_size("200MiB", "test"))
    try:
        with pytest.raises(InputError) as info:
            check_size(s, Fraction(3600))
        assert check_size(s, Fraction(1)) is not None  # a small one passes
    finally:
        limits.set_max_memory(None)
    message = str(info.value)
    assert "segments" in message and "--horizon" in message and "--max-memory" in message


@pytest.mark.parametrize("text, size", [("8GiB", 8 * 2**30), ("500MB", 500 * 10**6),
                                        ("1.5GiB", 3 * 2**29), ("209715200", 200 * 2**20)])
def test_memory_sizes_parse(text, size):
    assert limits.parse_size(text, "--max-memory") == size


@pytest.mark.parametrize("text", ["lots", "8 gigs", "-1GiB", "1MiB", "١GiB", "9" * 50])
def test_bad_memory_sizes_are_input_errors(text):
    with pytest.raises(InputError):
        limits.parse_size(text, "--max-memory")


def test_the_environment_sets_the_default_limit(monkeypatch):
    monkeypatch.setenv(limits.MAX_MEMORY_ENV, "3GiB")
    assert limits.max_memory() == 3 * 2**30
