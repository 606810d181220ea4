"""Gap report, Chrome traces and the deployment gate."""

from __future__ import annotations

import json
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.problem import Problem

from rtgen_opt.analysis.check import analytical
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.conftest import run_cli
from tests.tiny import taskset, write_db

GOLDEN = Path(__file__).parent / "golden" / "gap_small.md"
ROWS = ["v,frame,a,,1,3", "v,frame,b,,1,5", "w,frame,a,,1,2", "w,frame,b,,1,4",
        "llm,prefill,a,8,2,6", "llm,prefill,a,64,2,6", "llm,decode,b,8,1,1",
        "llm,decode,b,64,1,1"]


def small_scenario(tmp_path: Path, **changes) -> str:
    db = write_db(tmp_path / "db", ROWS)
    data = {"name": "small", "latency_db": str(db), "horizon": "16ms", "preemption": "restart",
            "drain": "40ms",
            "tasks": [{"name": "v", "model": "v", "period": "4ms"},
                      {"name": "w", "model": "w", "period": "5ms", "deadline": "3ms"},
                      {"name": "llm", "model": "llm", "arrivals": {"times": ["1ms"]},
                       "input_tokens": 8, "output_tokens": 3}]}
    data.update(changes)
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_markdown_report_matches_the_golden_file(tmp_path, capsys):
    report = tmp_path / "gap.md"
    code, _, _ = run_cli(["gap", small_scenario(tmp_path), "--workers", "1", "--time-limit",
                          "60s", "--report", str(report), "--format", "json"], capsys)
    assert code == 0
    text = report.read_text()
    if not GOLDEN.exists():  # first run writes it; review and commit it
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_gap_json_is_never_negative_and_the_html_has_its_charts(tmp_path, capsys):
    report = tmp_path / "gap.html"
    code, out, _ = run_cli(["gap", small_scenario(tmp_path), "--workers", "1", "--time-limit",
                            "60s", "--report", str(report), "--window", "0s..16ms",
                            "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert {"scenario", "horizon_s", "optimum", "policies", "pareto"} <= set(data)
    for p in data["policies"]:
        assert {"policy", "violations", "violation_rate", "starved", "matched_optimum",
                "gap_violations", "ttft_ms", "tpt_ms"} <= set(p)
        # unclamped: exactly the policy's violations minus its matched optimum's
        m = p["matched_optimum"]
        assert p["gap_violations"] == p["violations"] - m["violations"] and m["replay_ok"]
        assert p["violations"] >= p["matched_optimum"]["violations_lower_bound"]
        assert p["gap_pp_min"] <= p["gap_pp_max"] and p["proven"] == p["gap_exact"]
        if p["proven"]:
            assert p["gap_pp"] == p["gap_pp_min"]
        else:  # an unproven gap is a range, never a single number
            assert p["gap_pp"] is None
    front = [p["violations"] for p in data["pareto"]]
    assert front == sorted(front, reverse=True)  # looser caps never cost more

    page = report.read_text()
    assert_self_contained_plotly_page(page, figures=1 + len(POLICIES) + 2)  # + rates, front


def assert_self_contained_plotly_page(page: str, figures: int) -> None:
    """The page embeds Plotly (no script from the network) and draws ``figures`` charts."""

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags = []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, dict(attrs)))

    parser = Collect()
    parser.feed(page)
    scripts = [a for t, a in parser.tags if t == "script"]
    assert scripts and not any("src" in a for a in scripts)  # nothing fetched: works offline
    assert "plotly.js" in page.lower() or "Plotly" in page
    divs = [a["id"] for t, a in parser.tags if t == "div" and a.get("id", "").startswith("figure-")]
    assert len(divs) == figures
    assert page.count("Plotly.newPlot") == figures


def test_chrome_trace_has_one_event_per_executed_segment(tmp_path, capsys):
    trace, table = tmp_path / "t.json", tmp_path / "t.csv"
    scenario = small_scenario(tmp_path)
    run_cli(["simulate", scenario, "--policy", "ftf", "--trace", str(trace),
             "--trace-format", "chrome"], capsys)
    run_cli(["simulate", scenario, "--policy", "ftf", "--trace", str(table)], capsys)
    events = json.loads(trace.read_text())["traceEvents"]
    rows = [line for line in table.read_text().strip().splitlines()
            if not line.startswith("#")][1:]  # the metadata line, then the header
    assert len([e for e in events if e["ph"] == "X"]) == len(rows)
    assert all({"name", "ts", "dur", "pid", "tid"} <= set(e) for e in events if e["ph"] == "X")


def test_check_exit_codes(tmp_path, capsys):
    scenario = small_scenario(tmp_path)
    code, out, _ = run_cli(["check", scenario, "--policy", "edf-dyn", "--format", "json"],
                           capsys)
    verdict = json.loads(out)
    assert {"scenario", "verdict", "schedulable", "proven", "method", "reason"} <= set(verdict)
    assert (code, verdict["verdict"], verdict["schedulable"]) in ((0, "yes", True),
                                                                   (1, "no", False))
    easy = small_scenario(tmp_path, tasks=[{"name": "v", "model": "v", "period": "10ms"}])
    code, out, _ = run_cli(["check", easy, "--optimal", "--workers", "1", "--format", "json"],
                           capsys)
    assert code == 0 and json.loads(out)["schedulable"] is True
    assert json.loads(out)["verdict"] == "yes" and json.loads(out)["proven"] is True
    hard = small_scenario(tmp_path, tasks=[{"name": "v", "model": "v", "period": "2ms"}])
    code, out, _ = run_cli(["check", hard, "--format", "json"], capsys)
    verdict = json.loads(out)
    assert code == 1 and verdict["schedulable"] is False
    assert verdict["method"].startswith("analytical")
    code, out, err = run_cli(["check", scenario, "--policy", "sjf"], capsys)
    assert code == 2 and "--policy" in err


def test_max_fps_bisects_to_the_highest_schedulable_rate(tmp_path, capsys):
    scenario = small_scenario(tmp_path, tasks=[{"name": "v", "model": "v", "period": "10ms"}],
                              platform={"a": 1})
    code, out, _ = run_cli(["check", scenario, "--policy", "edf-dyn", "--max-fps", "v",
                            "--format", "json"], capsys)
    data = json.loads(out)
    # v takes 3 ms on its only backend: schedulable up to 333 FPS, not beyond
    assert code == 0 and 333.3 - 0.5 <= data["max_fps_proven"] <= 333.4
    assert 333.3 < data["min_fps_refuted"] <= data["max_fps_proven"] + 0.5
    assert data["unknown_between"] is None  # a policy always decides


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(periods=st.lists(st.integers(2, 8), min_size=1, max_size=3),
       platform=st.sampled_from([{"a": 1}, {"b": 1}, {"a": 1, "b": 1}]))
def test_an_analytical_no_means_the_solver_bound_is_at_least_one(periods, platform):
    tasks = [{"name": f"t{i}", "model": "v" if i % 2 else "w", "period": f"{p}ms"}
             for i, p in enumerate(periods)]
    with tempfile.TemporaryDirectory() as tmp:
        ts = taskset(Path(tmp), ROWS, tasks, "40ms", platform=platform)
    verdict = analytical(ts)
    if verdict is not None:
        result = CpSatModel(Problem(ts)).solve(20, workers=1, stages=("violations",))
        assert result.violations_lower_bound >= 1, verdict.reason


def test_a_negative_gap_is_an_internal_error_never_a_zero(tmp_path, capsys, monkeypatch):
    """A matched optimum with more violations than the policy it is matched to is a bug
    (the policy's own firm schedule is feasible for it): exit 70 with both numbers."""
    import rtgen_opt.analysis.gap as gap_module
    from rtgen_opt.optimisation.solve import solve_problem

    def worse(problem, *args, **kwargs):
        out = solve_problem(problem, *args, **kwargs)
        out.violations += 7
        out.violations_lower_bound = 0.0
        out.status = out.status.__class__.FEASIBLE
        return out

    monkeypatch.setattr(gap_module, "solve_problem", worse)
    code, _, err = run_cli(["gap", small_scenario(tmp_path), "--workers", "1",
                            "--time-limit", "20s", "--format", "json"], capsys)
    assert code == 70 and "NegativeGap" in err and "fewer than" in err, err


def test_a_matched_optimum_that_fails_replay_gives_no_gap_and_exit_1(tmp_path, capsys,
                                                                     monkeypatch):
    import rtgen_opt.optimisation.solve as solve_module
    from rtgen_opt.evaluation.replay import ReplayResult

    real = solve_module.replay
    calls = []

    def broken(ts, schedule, service=None):  # every schedule after the plain optimum's
        calls.append(1)
        return real(ts, schedule, service) if len(calls) == 1 else \
            ReplayResult(["chain: made up for the test"], None)

    monkeypatch.setattr(solve_module, "replay", broken)
    code, out, err = run_cli(["gap", small_scenario(tmp_path), "--workers", "1",
                              "--time-limit", "20s", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 1 and "REPLAY_FAILED" in err and "made up for the test" in err
    assert data["optimum"]["replay_ok"] is True
    for p in data["policies"]:
        assert p["matched_optimum"]["status"] == "REPLAY_FAILED"
        assert p["gap_violations"] is None and p["proven"] is False
    assert all(point["status"] == "REPLAY_FAILED" for point in data["pareto"])
