"""The command line: JSON keys of docs/files-and-output.md, formats, exit codes."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import run_cli


def test_scenarios_list_json(capsys):
    code, out, _ = run_cli(["scenarios", "list", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert [s["name"] for s in data["scenarios"]] == ["scenario_a", "scenario_b", "scenario_c",
                                                      "scenario_d"]
    assert all(set(s) == {"name", "description", "path"} for s in data["scenarios"])


def test_scenarios_show_applies_overrides(capsys):
    code, out, _ = run_cli(["scenarios", "show", "scenario_d", "--set", "llm.input_tokens=32",
                            "--format", "json"], capsys)
    data = json.loads(out)
    llm = data["tasks"][3]
    assert code == 0 and (llm["input_tokens"], llm["output_tokens"]) == (32, 64)
    rag = data["tasks"][2]  # numbers, not the table's "512/-" or "60 FPS"
    assert (rag["input_tokens"], rag["output_tokens"], rag["every_ms"]) == (512, None, 5000)
    assert data["tasks"][0]["fps"] == 30 and data["tasks"][0]["deadline_ms"] == \
        pytest.approx(1000 / 30)


def test_db_show_json_rows_as_stored_with_totals(capsys):
    code, out, _ = run_cli(["db", "show", "--model", "llama3.2-1b", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["db"] == "ryzen_ai_9_365"
    keys = {"model", "stage", "backend", "seq_len", "layers", "latency_ms", "source"}
    assert all(keys <= set(r) for r in data["rows"])
    assert {r["model"] for r in data["rows"]} == {"llama3.2-1b"}
    total = {(r["stage"], r["backend"], r["seq_len"]): r["latency_ms"] for r in data["stages"]}
    assert total["prefill", "gpu", 1024] / total["prefill", "npu", 1024] == pytest.approx(3, rel=.1)
    assert total["decode", "npu", 1024] / total["decode", "gpu", 1024] == pytest.approx(7.5, rel=.1)


def test_db_show_filters_and_csv(capsys):
    code, out, _ = run_cli(["db", "show", "--model", "yolov3", "--backend", "npu", "--format",
                            "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 1 and rows[0]["backend"] == "npu"


def test_db_show_unknown_model_exits_2(capsys):
    code, out, err = run_cli(["db", "show", "--model", "gpt-5"], capsys)
    assert code == 2 and out == "" and "--model" in err


def test_taskset_json_keys(capsys):
    code, out, _ = run_cli(["taskset", "scenario_c", "--horizon", "1s", "--format", "json"],
                           capsys)
    data = json.loads(out)
    assert code == 0
    assert set(data) == {"scenario", "horizon_s", "drain_s", "after_horizon", "hyperperiod_s",
                         "jobs", "segments", "tasks"}
    # frames continue until the request's give-up time, 12.3009 s (see test_taskset)
    assert data["after_horizon"] == "continue" and data["drain_s"] == pytest.approx(12.53099)
    assert data["tasks"]["od"]["jobs"] == 812 and data["tasks"]["sr"]["jobs"] == 812
    assert data["tasks"]["od"]["drain_jobs"] == 812 - 60
    assert data["hyperperiod_s"] == pytest.approx(1 / 60)
    assert data["jobs"] == sum(t["jobs"] for t in data["tasks"].values())
    assert data["segments"] == sum(t["segments"] for t in data["tasks"].values())


def test_taskset_after_horizon_stop_keeps_frames_in_the_horizon(capsys):
    code, out, _ = run_cli(["taskset", "scenario_c", "--horizon", "1s", "--set",
                            "after_horizon=stop", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["after_horizon"] == "stop"
    assert data["tasks"]["od"] == {"jobs": 60, "segments": 60, "drain_jobs": 0}


def test_after_horizon_rejects_an_unknown_value(capsys):
    code, out, err = run_cli(["taskset", "scenario_c", "--horizon", "1s", "--set",
                              "after_horizon=halt"], capsys)
    assert code == 2 and out == "" and "after_horizon" in err and "Traceback" not in err


def test_taskset_set_sweeps_the_prompt_length(capsys):
    segs = {}
    for n in (32, 2048):
        code, out, _ = run_cli(["taskset", "scenario_d", "--horizon", "1s", "--set",
                                f"llm.input_tokens={n}", "--format", "json"], capsys)
        segs[n] = json.loads(out)["tasks"]["llm"]["segments"]
    assert segs[32] == segs[2048] == 16 * 64  # same chain; only durations change


def test_taskset_table_and_export(tmp_path, capsys):
    target = tmp_path / "ts.json"
    code, out, _ = run_cli(["taskset", "scenario_a", "--horizon", "100ms", "--export",
                            str(target)], capsys)
    assert code == 0 and "seg" in out and "hyperperiod" in out
    full = json.loads(target.read_text())
    # 30 FPS frames until the request gave up (10 x 608.313 ms after 0) and had 608.313 ms
    # to finish: ceil(6.691443 x 30) = 201 per task, and the request
    assert len(full["job_release_us"]) == 201 + 201 + 1
    assert full["drain_us"] == 6_691_443 - 100_000 and full["after_horizon"] == "continue"


def test_help_explains_with_an_example(capsys):
    for command in (["taskset"], ["scenarios", "show"], ["db", "show"], ["scenarios", "list"]):
        code, out, _ = run_cli([*command, "--help"], capsys)
        assert code == 0 and "Example: rtgen-opt" in out


def test_installed_console_script_finds_builtin_data_from_any_directory(tmp_path):
    """`pip install .` (non-editable) ships scenarios and the database as package data."""
    import shutil
    import subprocess

    script = shutil.which("rtgen-opt")
    if script is None:
        pytest.skip("rtgen-opt is not installed in this environment")
    proc = subprocess.run([script, "taskset", "scenario_c", "--horizon", "1s", "--format",
                           "json"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tasks"]["llm"]["jobs"] == 1


def test_simulate_json_keys(capsys):
    code, out, _ = run_cli(["simulate", "scenario_c", "--horizon", "1s", "--format", "json"],
                           capsys)
    data = json.loads(out)
    assert code == 0 and data["scenario"] == "scenario_c" and data["horizon_s"] == 1
    assert data["after_horizon"] == "continue" and data["drain_s"] == pytest.approx(12.53099)
    assert [r["policy"] for r in data["runs"]] == ["fcfs-aot", "fcfs-dyn", "edf-aot", "edf-dyn",
                                                   "ftf", "kill-aware", "kill-aware-fast"]
    for run in data["runs"]:
        assert {"policy", "tasks", "violation_rate", "llm", "utilization", "placement",
                "events", "wall_s"} <= set(run)
        assert set(run["tasks"]["od"]) == {"released", "violations", "violation_rate",
                                           "drain_released", "drain_violations"}
        assert run["tasks"]["od"]["released"] == 812 and run["tasks"]["od"]["drain_released"] == 752
        llm = run["llm"]["llm"]
        assert {"requests", "completed", "starved", "ttft_ms", "tpt_ms"} <= set(llm)
        assert set(llm["ttft_ms"]) == {"mean", "p50", "p99", "max"}
        assert set(run["utilization"]) == {"cpu", "gpu", "npu"}


def test_a_task_that_released_nothing_has_no_rate_not_zero(tmp_path, capsys):
    """A phase past the run released no frame of od: the table said "od % 0.0" and JSON
    violation_rate 0.0, a rate of nothing read as perfect service."""
    from tests.conftest import base

    data = base()
    data["tasks"] = [dict(data["tasks"][0], phase="10s")]  # od alone, released never
    path = tmp_path / "late.yaml"
    path.write_text(json.dumps(data))
    args = ["simulate", str(path), "--policy", "ftf"]
    code, out, err = run_cli([*args, "--format", "json"], capsys)
    assert code == 0, err
    [run] = json.loads(out)["runs"]
    assert run["tasks"]["od"]["released"] == 0
    assert run["tasks"]["od"]["violation_rate"] is None and run["violation_rate"] is None
    code, out, _ = run_cli(args, capsys)
    row = next(line for line in out.splitlines() if "ftf" in line)
    assert code == 0 and "0.0" not in row and "-" in row
    code, out, _ = run_cli([*args, "--format", "csv"], capsys)
    [record] = csv.DictReader(io.StringIO(out))
    assert code == 0 and record["tasks.od.violation_rate"] == ""
    code, _, err = run_cli([*args, "--report", str(tmp_path / "r.html"), "-q"], capsys)
    assert code == 0 and (tmp_path / "r.html").exists(), err


def test_simulate_table_shows_the_run_length_and_the_drain_violations(capsys):
    code, out, _ = run_cli(["simulate", "scenario_c", "--horizon", "1s", "--policy", "ftf",
                            "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    code_json, out_json, _ = run_cli(["simulate", "scenario_c", "--horizon", "1s", "--policy",
                                      "ftf", "--format", "json"], capsys)
    tasks = json.loads(out_json)["runs"][0]["tasks"]
    assert code == code_json == 0
    for name, task in tasks.items():  # the CSV: raw counts per task
        assert int(rows[0][f"tasks.{name}.drain_violations"]) == task["drain_violations"]
    expected = (f"{sum(t['drain_violations'] for t in tasks.values())}/"
                f"{sum(t['drain_released'] for t in tasks.values())}")
    code, out, _ = run_cli(["simulate", "scenario_c", "--horizon", "1s", "--policy", "ftf"],
                           capsys)
    assert code == 0 and "1 s + 12.5 s drain" in out and "drain violations" in out
    assert f" {expected} " in out  # the table: violations/released in the drain
    code, out, _ = run_cli(["simulate", "scenario_c", "--horizon", "1s", "--policy", "ftf",
                            "--set", "after_horizon=stop"], capsys)
    assert code == 0 and "drain violations" not in out


def test_simulate_is_deterministic_except_wall_time(capsys):
    outs = []
    for _ in range(2):
        _, out, _ = run_cli(["simulate", "scenario_d", "--horizon", "2s", "--format", "json"],
                            capsys)
        data = json.loads(out)
        for run in data["runs"]:
            run.pop("wall_s")
        outs.append(data)
    assert outs[0] == outs[1]


def test_simulate_traces_replay(tmp_path, capsys):
    trace = tmp_path / "trace.csv"
    code, _, _ = run_cli(["simulate", "scenario_a", "--horizon", "500ms", "--trace", str(trace)],
                         capsys)
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"trace.{p}.csv" for p in ("fcfs-aot", "fcfs-dyn", "edf-aot", "edf-dyn", "ftf",
                                   "kill-aware", "kill-aware-fast"))
    code, out, _ = run_cli(["replay", "scenario_a", "--horizon", "500ms", "--schedule",
                            str(tmp_path / "trace.ftf.csv"), "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["valid"] is True


def test_replay_of_a_broken_schedule_exits_1(tmp_path, capsys):
    trace = tmp_path / "t.json"
    run_cli(["simulate", "scenario_a", "--horizon", "200ms", "--policy", "ftf", "--trace",
             str(trace)], capsys)
    data = json.loads(trace.read_text())
    data["rows"][1][5] -= 40_000  # start before release / overlapping
    data["rows"][1][6] -= 40_000
    trace.write_text(json.dumps(data))
    code, out, _ = run_cli(["replay", "scenario_a", "--horizon", "200ms", "--schedule",
                            str(trace), "--format", "json"], capsys)
    assert code == 1 and json.loads(out)["valid"] is False


def test_unknown_policy_exits_2(capsys):
    code, out, err = run_cli(["simulate", "scenario_a", "--policy", "lifo"], capsys)
    assert code == 2 and out == "" and "--policy" in err and "ftf" in err


def test_policy_is_repeatable_and_comma_separated(capsys):
    import json

    code, out, _err = run_cli(["simulate", "scenario_a", "--horizon", "1s", "--policy", "ftf",
                               "--policy", "edf-dyn,ftf", "-f", "json"], capsys)
    assert code == 0
    assert [r["policy"] for r in json.loads(out)["runs"]] == ["ftf", "edf-dyn"]
    code, _out, err = run_cli(["simulate", "scenario_a", "--horizon", "1s", "--policy",
                               "ftf,,edf-dyn"], capsys)
    assert code == 2 and "--policy" in err


def test_a_starving_policy_is_flagged_in_the_table(capsys):
    code, out, _err = run_cli(["simulate", "scenario_c", "--horizon", "1s", "--policy",
                               "edf-dyn"], capsys)
    assert code == 0 and "edf-dyn (starves 1/1)" in out


def test_request_times_after_the_horizon_are_named_on_stderr(capsys, tmp_path):
    """A time at or after the horizon releases nothing: one warning line naming the task's
    field, the run itself unchanged (JSON on stdout still parses, exit 0); none with
    --quiet; a trace file is named as written; a `start` past the horizon is named too."""
    args = ["simulate", "scenario_c", "--horizon", "5s", "--policy", "ftf", "--format",
            "json", "--set", "rag.arrivals={times: [0s, 100s, 7s]}"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert json.loads(out)["runs"][0]["llm"]["llm"]["requests"] == 1
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1, err  # the llm task follows rag: named once, at rag
    assert "tasks.rag.arrivals.times: 2 of 3" in warnings[0] and "at 7 s" in warnings[0]
    code, _, err = run_cli(args + ["--quiet"], capsys)
    assert code == 0 and err == ""
    code, _, err = run_cli(args[:-1] + ["rag.arrivals={times: [0s, 4s]}"], capsys)
    assert code == 0 and "warning" not in err
    (tmp_path / "trace.csv").write_text("time\n0s\n6s\n")
    code, _, err = run_cli(args[:-1] + [f"rag.arrivals={{file: {tmp_path / 'trace.csv'}}}"],
                           capsys)
    assert code == 0 and "tasks.rag.arrivals.file (" in err and "1 of 2" in err, err
    code, _, err = run_cli(args[:-1] + ["rag.arrivals={every: 1s, start: 5s}"], capsys)
    assert code == 0 and "tasks.rag.arrivals.start: 5 s" in err, err


def test_a_horizon_between_microseconds_warns_only_of_what_is_dropped():
    """The warning compares with the exact horizon, as the expansion does: a request at
    2 s is released by a 2.0000004 s horizon (which rounds to 2 s in µs)."""
    from fractions import Fraction

    from rtgen_opt.cli.common import late_arrivals
    from rtgen_opt.model.scenario import load_scenario

    scenario = load_scenario("scenario_c", ["rag.arrivals={times: [0s, 2s]}"])
    assert late_arrivals(scenario, Fraction(20000004, 10**7)) == []
    assert len(late_arrivals(scenario, Fraction(2))) == 1
