"""`check`: the three-valued contract (yes/no/unknown, exit 0/1/3), the --max-fps bracket,
--slo in optimal mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtgen_opt.formulations.result import SolveStatus

from rtgen_opt.analysis import check as checks
from rtgen_opt.analysis.check import NO, UNKNOWN, YES, Verdict
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.optimisation.solve import SolveOutcome
from tests.conftest import run_cli
from tests.test_gap_check import small_scenario


def _outcome(status, violations, lower) -> SolveOutcome:
    return SolveOutcome(status, None, violations, lower, None, violations is not None, [],
                        None, "direct", 0.1)


@pytest.mark.parametrize("status, violations, lower, verdict, code", [
    (SolveStatus.FEASIBLE, 2.0, 0.0, UNKNOWN, 3),  # a schedule with misses, no proof
    (SolveStatus.UNKNOWN, None, 0.0, UNKNOWN, 3),  # nothing found in time
    (SolveStatus.FEASIBLE, 3.0, 1.0, NO, 1),  # bound >= 1: proven no
    (SolveStatus.INFEASIBLE, None, 0.0, NO, 1),  # no schedule serves every request
])
def test_the_solver_answer_maps_to_one_of_three_verdicts(tmp_path, capsys, monkeypatch,
                                                         status, violations, lower, verdict,
                                                         code):
    import rtgen_opt.optimisation.solve

    monkeypatch.setattr(rtgen_opt.optimisation.solve, "solve",
                        lambda *a, **k: _outcome(status, violations, lower))
    easy = small_scenario(tmp_path, tasks=[{"name": "v", "model": "v", "period": "10ms"}])
    got, out, _ = run_cli(["check", easy, "--format", "json"], capsys)
    data = json.loads(out)
    assert (got, data["verdict"]) == (code, verdict)
    assert data["proven"] is (verdict != UNKNOWN)
    assert data["schedulable"] is {YES: True, NO: False, UNKNOWN: None}[verdict]
    assert data["method"] == "optimal" and data["reason"]


def test_a_schedule_that_failed_replay_is_never_a_verdict(tmp_path, capsys, monkeypatch):
    """Zero violations and a bound of one, from a schedule that failed replay: neither yes
    nor no is proven by it; status REPLAY_FAILED, exit 1, the failed constraint named."""
    import rtgen_opt.optimisation.solve

    failed = SolveOutcome(SolveStatus.REPLAY_FAILED, None, 0.0, 1.0, None, False,
                          [("service: llm request 0 (job 3) completes at 9 us, after the end "
                            "of the drain (8 us)")], None, "direct", 0.1)
    monkeypatch.setattr(rtgen_opt.optimisation.solve, "solve", lambda *a, **k: failed)
    easy = small_scenario(tmp_path, tasks=[{"name": "v", "model": "v", "period": "10ms"}])
    code, out, _ = run_cli(["check", easy, "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 1 and data["status"] == "REPLAY_FAILED"
    assert data["verdict"] == UNKNOWN and data["proven"] is False
    assert "end of the drain" in data["reason"]


def test_the_table_says_yes_no_or_unknown_never_true_or_false(tmp_path, capsys):
    easy = small_scenario(tmp_path, tasks=[{"name": "v", "model": "v", "period": "10ms"}])
    code, out, _ = run_cli(["check", easy, "--workers", "1"], capsys)
    assert code == 0 and "yes" in out and "True" not in out and "False" not in out


def test_slo_is_honoured_by_the_solver(tmp_path, capsys):
    """The request's first token needs 6 ms of prefill alone: a 2 ms TTFT SLO cannot be met,
    which only --slo sees; without it the scenario is schedulable."""
    tasks = [{"name": "v", "model": "v", "period": "10ms"},
             {"name": "llm", "model": "llm", "arrivals": {"times": ["1ms"]},
              "input_tokens": 8, "output_tokens": 3, "ttft": "2ms"}]
    scenario = small_scenario(tmp_path, tasks=tasks)
    code, out, _ = run_cli(["check", scenario, "--workers", "1", "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["verdict"] == YES
    code, out, _ = run_cli(["check", scenario, "--slo", "--workers", "1", "--format", "json"],
                           capsys)
    data = json.loads(out)
    assert (code, data["verdict"], data["proven"]) == (1, NO, True)
    relaxed = small_scenario(tmp_path, tasks=[tasks[0], {**tasks[1], "ttft": "30ms"}])
    code, out, _ = run_cli(["check", relaxed, "--slo", "--workers", "1", "--format", "json"],
                           capsys)
    assert code == 0 and json.loads(out)["verdict"] == YES


def test_slo_with_the_solver_on_a_long_horizon_is_refused(capsys):
    code, _, err = run_cli(["check", "scenario_c", "--horizon", "60s", "--slo"], capsys)
    assert code == 2 and "--slo" in err and "segments" in err


# ----------------------------------------------------------------------------- max-fps


def _fake_check(threshold: float, band: float):
    """Schedulable up to ``threshold`` FPS, refuted above ``threshold + band``, undecided
    between: the oracle the bracket is measured against."""

    def check(ts, policy=None, time_limit_s=0, workers=0, slo=False, progress=None):
        task = ts.tasks[ts.task_index("v")]
        fps = 1e6 / task.period_us
        if fps <= threshold:
            return Verdict(YES, "fake", "")
        if fps > threshold + band:
            return Verdict(NO, "fake", "")
        return Verdict(UNKNOWN, "fake", "")

    return check


@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(threshold=st.floats(1.0, 320.0), band=st.sampled_from([0.0, 0.0, 3.0, 40.0]))
def test_the_bracket_holds_the_true_limit_and_closes_around_the_unknown_band(
        tmp_path_factory, monkeypatch, threshold, band):
    tmp = tmp_path_factory.mktemp("fps")
    scenario = load_scenario(small_scenario(tmp, tasks=[{"name": "v", "model": "v",
                                                         "period": "10ms"}],
                                            platform={"a": 1}))
    monkeypatch.setattr(checks, "check", _fake_check(threshold, band))
    bracket = checks.max_fps(scenario, "v", scenario.horizon, None, 10.0)
    precision = bracket.precision
    # every claim is a verdict the oracle gave
    assert bracket.max_fps_proven is None or bracket.max_fps_proven <= threshold
    assert bracket.min_fps_refuted is None or bracket.min_fps_refuted > threshold + band
    # and the bracket is as tight as the precision allows around the undecided band
    hi = 334.0  # v takes 3 ms: above 1000/3 FPS a frame cannot fit
    if threshold > precision:
        assert bracket.max_fps_proven is not None
        assert bracket.max_fps_proven >= threshold - precision - 1e-3
    if threshold + band + precision < hi:
        assert bracket.min_fps_refuted is not None
        assert bracket.min_fps_refuted <= threshold + band + precision + 1e-3
    if band == 0.0:
        assert bracket.unknown_between is None
    elif bracket.unknown_between is not None:
        low, high = bracket.unknown_between
        assert low <= threshold + 1e-9
        assert high is None or high > threshold + band - 1e-9  # None: nothing refuted


def test_max_fps_json_has_the_bracket_keys(tmp_path, capsys):
    scenario = small_scenario(tmp_path, tasks=[{"name": "v", "model": "v", "period": "10ms"}],
                              platform={"a": 1})
    code, out, _ = run_cli(["check", scenario, "--max-fps", "v", "--workers", "1",
                            "--time-limit", "20s", "--format", "json"], capsys)
    data = json.loads(out)
    assert {"task", "max_fps_proven", "min_fps_refuted", "unknown_between", "tried"} <= set(data)
    assert code == (0 if data["max_fps_proven"] is not None else 3)
    verdicts = {t["fps"]: t["verdict"] for t in data["tried"]}
    assert verdicts[data["max_fps_proven"]] == YES
    assert verdicts[data["min_fps_refuted"]] == NO
    assert not any(v == YES and f > data["min_fps_refuted"] for f, v in verdicts.items())


def test_max_fps_of_an_unknown_task_is_bad_input(tmp_path, capsys):
    code, _, err = run_cli(["check", small_scenario(tmp_path), "--max-fps", "llm"], capsys)
    assert code == 2 and "--max-fps" in err and "periodic" in err


@pytest.mark.parametrize("extra", [["--junit", "j.xml"], ["--witness-out", "w.json"],
                                   ["--margin"]])
def test_max_fps_refuses_the_options_it_would_ignore(tmp_path, capsys, extra):
    """--max-fps brackets a rate: a JUnit file or a witness it never wrote would let a CI
    gate pass on nothing."""
    out = [str(tmp_path / x) if x.endswith(("xml", "json")) else x for x in extra]
    code, _, err = run_cli(["check", small_scenario(tmp_path), "--policy", "ftf",
                            "--max-fps", "v", *out], capsys)
    assert code == 2 and extra[0] in err and "--max-fps" in err
    assert not any((tmp_path / x).exists() for x in ("j.xml", "w.json"))


def test_help_names_option_values_with_words(capsys):
    code, out, _ = run_cli(["check", "--help"], capsys)
    options = out[out.index("Options:"):]
    assert code == 0
    assert "<str>" not in options and "<list[str]>" not in options and "<int>" not in options
    assert "--time-limit DURATION" in options and "--max-fps TASK" in options


__all__ = ["Path"]


def test_an_undecided_search_exits_3_and_says_where_nothing_is_known(tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setattr(checks, "check", lambda *a, **k: Verdict(UNKNOWN, "fake", "no time"))
    scenario = small_scenario(tmp_path, tasks=[{"name": "v", "model": "v", "period": "10ms"}],
                              platform={"a": 1})
    code, out, _ = run_cli(["check", scenario, "--max-fps", "v", "--time-limit", "5s"],
                           capsys)
    assert code == 3 and "unknown from 0 FPS up" in out.replace("\n", " ")
