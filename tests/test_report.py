"""Reports: the HTML page of simulate/solve/gap, Markdown, the gap table's ranges, and the
numbers the charts draw (misses, utilization) against independent counts."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.report.gap import gap_rows
from rtgen_opt.report.html import busy_before, missed_jobs
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.conftest import run_cli
from tests.test_gap_check import assert_self_contained_plotly_page, small_scenario


def test_simulate_report_has_a_gantt_per_policy_the_rates_and_the_tradeoff(tmp_path, capsys):
    page = tmp_path / "sim.html"
    code, _, _ = run_cli(["simulate", small_scenario(tmp_path), "--report", str(page)], capsys)
    assert code == 0
    text = page.read_text()
    assert_self_contained_plotly_page(text, figures=len(POLICIES) + 2)
    assert "deadline missed" in text and "busy" in text


def test_solve_report_puts_the_best_policy_beside_the_schedule(tmp_path, capsys):
    page = tmp_path / "solve.html"
    code, out, _ = run_cli(["solve", small_scenario(tmp_path), "--workers", "1",
                            "--report", str(page), "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert_self_contained_plotly_page(page.read_text(), figures=2 + 1)  # 2 Gantts, rates
    assert data["best_policy"]["policy"] in POLICIES and "trace" not in data["best_policy"]
    assert data["proven"] is (data["status"] == "OPTIMAL")
    assert data["gap_violations"] == data["violations"] - data["violations_lower_bound"]


def test_solve_table_never_calls_an_unproven_schedule_optimum(tmp_path, capsys):
    code, out, _ = run_cli(["solve", small_scenario(tmp_path), "--workers", "1"], capsys)
    assert code == 0
    if "OPTIMAL" not in out:
        assert "optimum (proven)" not in out and "best found" in out
    assert "best policy" in out and "lower bound" in out


def test_markdown_reports_of_simulate_and_solve(tmp_path, capsys):
    scenario = small_scenario(tmp_path)
    for command in (["simulate", scenario], ["solve", scenario, "--workers", "1"]):
        page = tmp_path / f"{command[0]}.md"
        code, _, _ = run_cli([*command, "--report", str(page)], capsys)
        text = page.read_text()
        assert code == 0 and text.startswith(f"## {command[0]}: small")
        assert text.count("\n|") >= 3


@pytest.mark.usefixtures("without_plotly")
def test_an_html_report_without_plotly_is_bad_input_naming_the_extra(tmp_path, capsys):
    code, _, err = run_cli(["simulate", small_scenario(tmp_path), "--report",
                            str(tmp_path / "r.html")], capsys)
    assert code == 2 and "rtgen-opt[report]" in err
    assert not (tmp_path / "r.html").exists()


def test_the_misses_drawn_are_the_violations_counted(tmp_path):
    ts = build_taskset(load_scenario(small_scenario(tmp_path)), None)
    for policy in POLICIES:
        schedule = simulate(ts, policy).schedule
        counted = sum(t["violations"] for t in evaluate(ts, schedule)["tasks"].values())
        assert len(missed_jobs(ts, schedule)) == counted, policy


@settings(max_examples=60, deadline=None)
@given(intervals=st.lists(st.tuples(st.integers(0, 50), st.integers(1, 20)), max_size=12),
       at=st.lists(st.integers(0, 80), min_size=1, max_size=6))
def test_busy_before_matches_a_unit_by_unit_count(intervals, at):
    start = np.array([s for s, _ in intervals], dtype=np.int64)
    end = np.array([s + d for s, d in intervals], dtype=np.int64)
    got = busy_before(start, end, np.array(at, dtype=float))
    want = [sum(1 for s, e in zip(start, end) for u in range(s, e) if u < t) for t in at]
    assert np.allclose(got, want)


def _policy(proven: bool, low: float, high: float) -> dict:
    return {"policy": "ftf", "violations": 148.0, "violation_rate": 0.5,
            "matched_optimum": {"status": "OPTIMAL" if proven else "FEASIBLE",
                                "violations": 148.0 - low, "violations_lower_bound":
                                148.0 - high},
            "gap_violations": low, "gap_violations_max": high, "proven": proven,
            "gap_pp_min": low / 2.96, "gap_pp_max": high / 2.96, "ttft_ms": None,
            "tpt_ms": None, "starved": 0}


def test_an_unproven_gap_is_shown_as_a_range_in_every_column():
    data = {"policies": [_policy(False, 0.0, 148.0), _policy(True, 5.0, 5.0)],
            "optimum": {"status": "FEASIBLE", "violations": 10.0,
                        "violations_lower_bound": 0.0}}
    columns, rows = gap_rows(data)
    unproven, proven = (dict(zip(columns, r)) for r in rows[:2])
    assert unproven["gap"] == "0…148" and unproven["gap pp"] == "0.0…50.0"
    assert unproven["matched optimum"] == "0…148" and unproven["proven"] == "no"
    assert proven["gap"] == "5" and proven["proven"] == "yes"
    assert dict(zip(columns, rows[2]))["violations"] == "0…10"


def test_a_policy_that_starves_requests_is_named_so_in_the_gap_table():
    starving = {**_policy(True, 0.0, 0.0), "policy": "edf-dyn", "starved": 12,
                "requests": 12}
    data = {"policies": [starving, _policy(True, 5.0, 5.0)],
            "optimum": {"status": "OPTIMAL", "violations": 10.0,
                        "violations_lower_bound": 10.0}}
    columns, rows = gap_rows(data)
    assert rows[0][0] == "edf-dyn (starves 12/12)" and "starves" not in rows[1][0]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (apt-get install chromium)")
def test_the_page_renders_its_charts_in_a_real_browser_offline(tmp_path, capsys):
    """Headless Chromium without network: Plotly draws every chart (each leaves its
    'main-svg' layers in the DOM) and the console reports no error."""
    page = tmp_path / "sim.html"
    code, _, _ = run_cli(["simulate", small_scenario(tmp_path), "--policy", "ftf",
                          "--report", str(page)], capsys)
    assert code == 0
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    dom, log = done.stdout, done.stderr
    figures = dom.count('id="figure-')
    assert figures == 3  # the Gantt, the rates, the trade-off
    assert dom.count('class="main-svg"') >= figures
    assert "Uncaught" not in log and "ERR_NAME_NOT_RESOLVED" not in log


def test_user_text_in_the_charts_is_literal_never_markup_or_a_template(tmp_path, capsys):
    # Plotly reads tags in names, labels and hover text and substitutes %{...} in hover
    # templates: a task named so must show as text, not a link or another field's value.
    from tests.test_security import BASE_SCENARIO, scenario_file
    from tests.test_sweep_report import figures

    evil = '<a href="http://x">%{y}</a>'
    tasks = [dict(task) for task in BASE_SCENARIO["tasks"]]
    tasks[0]["name"] = evil
    page = tmp_path / "sim.html"
    code, _, err = run_cli(["simulate", str(scenario_file(tmp_path, tasks=tasks)), "--policy",
                            "edf-dyn", "--report", str(page)], capsys)
    assert code == 0, err
    shown = escaped = 0
    for traces, _layout in figures(page.read_text()).values():
        for trace in traces:
            assert "http://x" not in trace.get("hovertemplate", ""), trace["hovertemplate"]
            texts = [trace.get("name", "")] + list(np.ravel(trace.get("text") or [])) + \
                list(np.ravel(trace.get("hovertext") or []))
            for text in map(str, texts):
                assert "<a" not in text, text
                shown += "http://x" in text
                escaped += "&lt;a href=\"http://x\"&gt;%{y}&lt;/a&gt;" in text
    assert shown and shown == escaped


def test_an_open_gap_row_says_which_bound_is_weak_and_a_narrow_one_is_an_answer():
    from rtgen_opt.report.gap import gap_caption, proven_cell

    def row(name, own, low, high, method):
        frames = 1000
        return {"policy": name, "violations": own, "proven": low == high,
                "gap_pp_min": 100 * (own - high) / frames, "gap_pp_max": 100 * (own - low) / frames,
                "matched_optimum": {"violations": high, "violations_lower_bound": low,
                                    "lower_bound_method": method}}
    rows = [row("own", 90, 40, 90, "phase LP"), row("window", 90, 40, 60, "window bound (x)"),
            row("narrow", 90, 50, 58, "phase LP"), row("exact", 90, 60, 60, "phase LP")]
    assert [proven_cell(r) for r in rows] == ["no", "no", "within 1 pp", "yes"]
    caption = gap_caption({"policies": rows}).splitlines()
    assert len(caption) == 3  # the legend, then one line per open row
    assert caption[1].startswith("own: open by 5.0 pp: the upper bound is the policy's own")
    assert caption[2].startswith("window: open by 2.0 pp: the lower bound is the window bound")


def _solved(stages: list[dict]) -> dict:
    return {"status": "OPTIMAL", "proven": True, "released": 100, "violations": 3.0,
            "violations_lower_bound": 3.0, "gap_violations": 0.0, "gap_pp": 0.0,
            "upper_bound_method": None, "lower_bound_method": None, "best_policy": None,
            "stages": stages, "replay_ok": True, "interrupted": False}


def test_solves_status_says_what_is_proven():
    """OPTIMAL is the violations' alone: a later objective the clock left open is named."""
    from rtgen_opt.cli.common import solve_summary_rows

    def status(stages):
        return dict(solve_summary_rows(_solved(stages))[1])["status"]
    violations = {"name": "violations", "status": "OPTIMAL", "value": 3, "bound": 3}
    assert status([violations, {"name": "ttft", "status": "UNKNOWN"}]) == \
        "OPTIMAL: the fewest violations, proven (ttft: not proven)"
    assert status([violations, {"name": "ttft", "status": "OPTIMAL", "value": 9,
                                "bound": 9}]).endswith("(and every later objective)")
    assert status([violations]) == "OPTIMAL: the fewest violations, proven"


def test_a_certificate_for_another_scenario_names_it(tmp_path):
    from rtgen_opt.analysis.certificate_check import same_problem
    from rtgen_opt.errors import InputError

    ts = build_taskset(load_scenario("scenario_a"))
    data = {"scenario": "scenario_c", "horizon_us": ts.horizon_us, "taskset_sha256": "x",
            "semantics": {"granularity": ts.granularity, "on_miss": ts.on_miss,
                          "preemption": "restart" if ts.preemption == "none" else "none"}}
    with pytest.raises(InputError, match="written for scenario_c"):
        same_problem(ts, data, "cert.json")
