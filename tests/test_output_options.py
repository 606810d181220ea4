"""What every command shares in its output: ``-`` is stdout for every output option (and
stdin for the inputs that are files of ours), ``-f csv`` is raw data, ``--quiet`` prints
nothing, a bad ``--set`` names the override, and the tables' number formats."""

from __future__ import annotations

import copy
import io
import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen_opt.output import csv_text
from rtgen_opt.report import formats
from rtgen_opt.report.tables import records_csv
from tests.conftest import BASE_SCENARIO, run_cli
from tests.test_gap_check import small_scenario

SOLVE = ["--workers", "1", "--time-limit", "20s"]


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> str:
    """The shared tiny scenario; the current folder is a fresh one (a file named ``-``
    would appear there)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(copy.deepcopy(BASE_SCENARIO)))
    return str(path)


def sweep_file(tmp_path: Path) -> str:
    data = {"name": "small", "scenario": "tiny.yaml", "horizon": "100ms",
            "grid": {"llm.input_tokens": [32, 64]},
            "run": {"simulate": {"policies": ["fcfs-dyn", "ftf"]}}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def feed_stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))


# ----------------------------------------------------------------------------- - is stdout

# (command line with OUT for the output path, the file name it gets otherwise, the title
# the table shows)
OUTPUTS = {
    "simulate --schedule-out": (["simulate", "{tiny}", "--policy", "ftf", "--schedule-out",
                                 "OUT"], "s.csv", "tiny:"),
    "simulate --witness-out": (["simulate", "{tiny}", "--policy", "ftf", "--samples", "3",
                                "--witness-out", "OUT"], "w.json", "tiny:"),
    "simulate --report": (["simulate", "{tiny}", "--policy", "ftf", "--report", "OUT"],
                          "r.md", "tiny:"),
    "solve --schedule-out": (["solve", "{tiny}", *SOLVE, "--schedule-out", "OUT"], "s.csv",
                             "tiny:"),
    "solve --bound-out": (["solve", "{tiny}", *SOLVE, "--bound-out", "OUT"], "b.json",
                          "tiny:"),
    "solve --model-out": (["solve", "{tiny}", *SOLVE, "--model-out", "OUT"], "m.pbtxt",
                          "tiny:"),
    "gap --report": (["gap", "{small}", "--workers", "1", "--time-limit", "60s", "--report",
                      "OUT"], "g.md", "s drain ("),
    "check --witness-out": (["check", "{tiny}", "--policy", "ftf", "--witness-out", "OUT"],
                            "w.json", "schedulable?"),
    "check --junit": (["check", "{tiny}", "--policy", "ftf", "--junit", "OUT"], "j.xml",
                      "schedulable?"),
    "taskset --taskset-out": (["taskset", "{tiny}", "--taskset-out", "OUT"], "t.json",
                              "Task set of tiny"),
    "sweep --out": (["sweep", "{sweep}", "--no-cache", "--no-report", "--out", "OUT"],
                    "t.csv", "Sweep small"),
}


def _args(template: list[str], paths: dict, out: str) -> list[str]:
    return [out if a == "OUT" else a.format(**paths) for a in template]


@pytest.mark.parametrize("case", list(OUTPUTS))
def test_dash_writes_the_file_to_stdout_and_the_table_to_stderr(case, tiny, tmp_path, capsys):
    template, name, title = OUTPUTS[case]
    paths = {"tiny": tiny, "small": small_scenario(tmp_path), "sweep": sweep_file(tmp_path)}
    code_file, out_file, _ = run_cli(_args(template, paths, str(tmp_path / name)), capsys)
    written = (tmp_path / name).read_text()
    code, out, err = run_cli(_args(template, paths, "-"), capsys)
    assert code == code_file and code in (0, 1), err
    assert title in out_file and title not in out and title in err  # never mixed in
    assert not (tmp_path / "-").exists()
    if case == "sweep --out":  # the same table apart from the wall clock
        def table(text):
            frame = pd.read_csv(io.StringIO(text))
            return frame[[c for c in frame.columns if not c.endswith("wall_s")]]

        pd.testing.assert_frame_equal(table(out), table(written))
    elif case.startswith("solve"):  # two solves on a busy machine may differ: the same kind
        assert out.split("\n", 2)[:2] == written.split("\n", 2)[:2] and len(out) > 100
    else:
        assert out == written.replace(str(tmp_path / name), "-")  # a witness names its file


def test_the_sweep_report_goes_to_stdout(tiny, tmp_path, capsys):
    code, out, err = run_cli(["sweep", sweep_file(tmp_path), "--no-cache", "--out",
                              str(tmp_path / "t.csv"), "--report", "-"], capsys)
    assert code == 0 and out.lstrip().lower().startswith("<!doctype html") and "Sweep" in err
    assert (tmp_path / "t.csv").exists()


def test_one_stdout_at_most_and_one_file_on_it(tiny, capsys):
    code, out, err = run_cli(["simulate", tiny, "--policy", "ftf", "--schedule-out", "-",
                              "--report", "-"], capsys)
    assert code == 2 and not out and "only one output can go to stdout" in err
    code, out, err = run_cli(["simulate", tiny, "--policy", "ftf,edf-dyn", "--schedule-out",
                              "-"], capsys)
    assert code == 2 and not out and "--schedule-out" in err and "one --policy" in err
    code, _, err = run_cli(["db", "profile", "x.onnx", "--out", "-"], capsys)
    assert code == 2 and "--out" in err


@pytest.mark.parametrize("args", [
    ["solve", "{tiny}", *SOLVE, "--schedule-out", "x.json", "--bound-out", "x.json"],
    ["solve", "{tiny}", *SOLVE, "--bound-out", "x.json", "--model-out", "sub/../x.json"],
    ["check", "{tiny}", "--policy", "ftf", "--witness-out", "w.json", "--junit", "./w.json"],
    ["simulate", "{tiny}", "--policy", "ftf", "--samples", "2", "--schedule-out", "s.csv",
     "--witness-out", "s.csv"],
])
def test_two_outputs_to_one_file_are_refused_before_any_work(args, tiny, tmp_path, capsys):
    """The second write replaced the first: --schedule-out x.json --bound-out x.json exited
    0 and the schedule was lost."""
    (tmp_path / "sub").mkdir()
    code, out, err = run_cli([a.format(tiny=tiny) for a in args], capsys)
    options = [a for a in args if a.startswith("--") and a not in SOLVE
               and a not in ("--policy", "--samples")]
    assert code == 2 and not out, err
    assert len(err.strip().splitlines()) == 1 and all(o in err for o in options[-2:]), err
    assert not any(tmp_path.glob("[xws].*"))


@pytest.mark.parametrize("args, needle", [
    (["simulate", "{tiny}", "--policy", "ftf", "--schedule-format", "chrome"],
     "--schedule-format: expected --schedule-out FILE"),
    (["solve", "{tiny}", *SOLVE, "--schedule-format", "chrome"],
     "--schedule-format: expected --schedule-out FILE"),
    (["simulate", "{tiny}", "--policy", "ftf", "--schedule-out", "x.txt"],
     "--schedule-out: expected a file name ending in .csv or .json"),
    (["solve", "{tiny}", *SOLVE, "--schedule-out", "x"],
     "--schedule-out: expected a file name ending in .csv or .json"),
    (["simulate", "{tiny}", "--policy", "ftf", "--schedule-out", "x.csv",
      "--schedule-format", "chrome"], "--schedule-out: expected a file name ending in .json"),
])
def test_a_schedule_format_or_name_that_would_be_ignored_is_refused(args, needle, tiny,
                                                                     tmp_path, capsys):
    """chrome without --schedule-out wrote nothing and said nothing; x.txt got CSV
    unsaid."""
    code, out, err = run_cli([a.format(tiny=tiny) for a in args], capsys)
    assert code == 2 and not out and err.startswith(f"rtgen-opt: error: {needle}"), err
    assert not any(tmp_path.glob("x*"))


def test_dash_reads_a_schedule_a_realization_and_a_certificate_from_stdin(
        tiny, tmp_path, capsys, monkeypatch):
    code, schedule, _ = run_cli(["simulate", tiny, "--policy", "edf-dyn", "--schedule-out",
                                 "-", "-q"], capsys)
    assert code == 0
    feed_stdin(monkeypatch, schedule)
    code, out, err = run_cli(["replay", tiny, "--schedule", "-", "-f", "json"], capsys)
    assert code == 0 and json.loads(out)["valid"], err
    feed_stdin(monkeypatch, "not,a,schedule\n1,2,3\n")
    code, out, err = run_cli(["replay", tiny, "--schedule", "-"], capsys)
    assert code == 2 and err.startswith("rtgen-opt: error: stdin: ") and not out

    code, witness, _ = run_cli(["simulate", tiny, "--policy", "ftf", "--samples", "5",
                                "--witness-out", "-", "-q"], capsys)
    feed_stdin(monkeypatch, witness)
    code, out, err = run_cli(["simulate", tiny, "--policy", "ftf", "--realization", "-",
                              "-f", "json"], capsys)
    assert code == 0 and json.loads(out)["realization"] == "-", err

    code, certificate, _ = run_cli(["solve", tiny, *SOLVE, "--bound-out", "-", "-q"], capsys)
    feed_stdin(monkeypatch, certificate)
    code, out, err = run_cli(["verify-bound", "-", "-f", "json"], capsys)
    assert code == 0 and json.loads(out)["valid"] and json.loads(out)["certificate"] == "stdin"


# ----------------------------------------------------------------------------- CSV is data


def flat(data: dict, prefix: str = "") -> dict:
    """The documented column names: nested keys joined with dots (lists stay whole)."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def assert_raw(text: str, records: list[dict], same=lambda column: True) -> pd.DataFrame:
    """The CSV parses with pandas into the records: every number a number (a numeric
    column, the same value where ``same(column)``: two solver runs on a busy machine may
    differ), no unit or % in a header, a row per record."""
    frame = pd.read_csv(io.StringIO(text))
    assert len(frame) == len(records)
    assert not any("%" in c or " " in c for c in frame.columns), list(frame.columns)
    rows = [flat(r) for r in records]
    for column in frame.columns:
        values = [r.get(column) for r in rows]
        given = [v for v in values if v is not None]
        if given and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                         for v in given):
            assert frame[column].dtype.kind in "iuf", (column, frame[column].tolist())
            if column.endswith("wall_s") or not same(column):  # two runs, two clocks
                continue
            for got, want in zip(frame[column], values):
                assert (want is None or not math.isfinite(want)) if math.isnan(got) \
                    else got == pytest.approx(want, rel=1e-12, abs=1e-12), column
    return frame


def _json(args, capsys):
    code, out, err = run_cli([*args, "-f", "json"], capsys)
    assert out, err
    return code, json.loads(out)


def _csv(args, capsys):
    code, out, err = run_cli([*args, "-f", "csv"], capsys)
    assert out, err
    return code, out


def test_simulate_solve_check_and_replay_csv_are_their_json_rows(tiny, tmp_path, capsys):
    args = ["simulate", tiny, "--policy", "ftf,edf-dyn", "--samples", "3"]
    assert_raw(_csv(args, capsys)[1], _json(args, capsys)[1]["runs"])
    args = ["solve", tiny, *SOLVE]
    frame = assert_raw(_csv(args, capsys)[1], [_json(args, capsys)[1]],
                       same=lambda c: c in ("released", "horizon_s", "drain_s"))
    assert frame["violations"].dtype.kind == "f" and frame["proven"].dtype == bool
    args = ["check", tiny, "--policy", "ftf"]
    code, out = _csv(args, capsys)
    assert code == 1 and assert_raw(out, [_json(args, capsys)[1]])["proven"].dtype == bool
    trace = tmp_path / "s.csv"
    run_cli(["simulate", tiny, "--policy", "ftf", "--schedule-out", str(trace)], capsys)
    args = ["replay", tiny, "--schedule", str(trace)]
    data = _json(args, capsys)[1]
    metrics = {k: v for k, v in data.items() if k not in ("scenario", "valid")}
    assert_raw(_csv(args, capsys)[1], [{"policy": "replay", **metrics}])


def test_gap_csv_has_a_row_per_policy_then_the_optimum(tiny, tmp_path, capsys):
    args = ["gap", small_scenario(tmp_path), "--workers", "1", "--time-limit", "60s"]
    data = _json(args, capsys)[1]
    rows = [*data["policies"], {"policy": "optimum", **data["optimum"]}]
    policy_columns = ("violations", "violation_rate", "starved", "ttft_ms", "tpt_ms")
    frame = assert_raw(_csv(args, capsys)[1], rows, same=lambda c: c.startswith(policy_columns))
    assert frame["policy"].tolist()[-1] == "optimum"
    assert json.loads(frame["pareto"].iloc[-1]) == data["pareto"]  # the front, as JSON
    assert frame["gap_pp_min"].dtype.kind == "f"


def test_taskset_db_and_scenario_csv_hold_numbers(tiny, capsys):
    _, data = _json(["taskset", tiny], capsys)
    frame = pd.read_csv(io.StringIO(_csv(["taskset", tiny], capsys)[1]))
    assert frame.columns.tolist() == ["task", "model", "kind", "jobs", "drain_jobs",
                                      "segments_per_job", "period_ms", "deadline_ms",
                                      "standalone_ms", "utilization"]
    assert frame.set_index("task")["jobs"].to_dict() == {
        name: t["jobs"] for name, t in data["tasks"].items()}
    od = frame.set_index("task").loc["od"]
    assert od["period_ms"] == pytest.approx(1000 / 60) and od["deadline_ms"] > 0
    assert od["utilization"] == pytest.approx(od["standalone_ms"] / od["period_ms"])

    args = ["db", "show", "--model", "llama3.2-1b"]
    frame = assert_raw(_csv(args, capsys)[1], _json(args, capsys)[1]["rows"])
    assert frame["latency_ms"].dtype.kind == "f" and frame["seq_len"].dtype.kind in "if"

    args = ["scenarios", "show", tiny]
    data = _json(args, capsys)[1]
    frame = assert_raw(_csv(args, capsys)[1], data["tasks"])
    assert list(frame.columns) == list(data["tasks"][0])  # the JSON's tasks are the CSV's rows
    assert data["horizon_s"] == 0.1 and data["drain_s"] is None
    od = next(t for t in data["tasks"] if t["name"] == "od")
    assert od["fps"] == 60 and od["input_tokens"] is None and od["ttft_slo_ms"] is None
    task = frame.set_index("name")
    assert task.loc["od", "fps"] == 60 and task.loc["llm", "ttft_slo_ms"] == 1000
    assert task.loc["rag", "every_ms"] == 50 and task.loc["llm", "output_tokens"] == 4
    for column in ("fps", "deadline_ms", "weight", "input_tokens", "ttft_slo_ms"):
        assert frame[column].dtype.kind in "if", column
    frame = pd.read_csv(io.StringIO(_csv(["scenarios", "list"], capsys)[1]))
    assert frame.columns.tolist() == ["name", "description", "path"]


def test_sweep_dry_run_csv(tiny, tmp_path, capsys):
    args = ["sweep", sweep_file(tmp_path), "--no-cache", "--dry-run"]
    frame = assert_raw(_csv(args, capsys)[1], [_json(args, capsys)[1]])
    assert json.loads(frame["axes"][0]) == ["llm.input_tokens"]


NUMBER = st.one_of(st.integers(-10**9, 10**9),
                   st.floats(allow_nan=False, allow_infinity=False, width=64))
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00\r"), min_size=1) \
    .filter(lambda t: t.strip() == t)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(NUMBER, st.integers(-5, 5), TEXT), min_size=1, max_size=8))
def test_csv_numbers_stay_numbers_and_texts_stay_inert(rows):
    """Negative numbers are numbers, not formulas to neutralise; a text cell that starts
    like a formula (``-cmd``, ``=1+1``) gets its ``'`` and reads back exactly."""
    text = records_csv([{"x": x, "n": n, "name": name} for x, n, name in rows])
    frame = pd.read_csv(io.StringIO(text), dtype={"name": str}, keep_default_na=False)
    assert frame["x"].dtype.kind in "if" and frame["n"].dtype.kind == "i"
    assert frame["x"].tolist() == pytest.approx([float(x) for x, _, _ in rows])
    assert frame["n"].tolist() == [n for _, n, _ in rows]
    for cell, (_, _, name) in zip(frame["name"], rows):
        assert not cell.startswith(("=", "+", "-", "@")) or cell == name
        assert csv_text(cell) == name


# ----------------------------------------------------------------------------- --quiet

QUIET = {
    "taskset": (["taskset", "{tiny}"], 0),
    "simulate": (["simulate", "{tiny}", "--policy", "ftf", "--samples", "2"], 0),
    "solve": (["solve", "{tiny}", *SOLVE], 0),
    "check": (["check", "{tiny}", "--policy", "ftf"], 1),
    "gap": (["gap", "{small}", "--workers", "1", "--time-limit", "60s"], 0),
    "scenarios list": (["scenarios", "list"], 0),
    "scenarios show": (["scenarios", "show", "{tiny}"], 0),
    "db show": (["db", "show"], 0),
    "sweep": (["sweep", "{sweep}", "--no-cache", "--no-report", "--out", "t.csv"], 0),
    "sweep --dry-run": (["sweep", "{sweep}", "--dry-run"], 0),
    "schema": (["schema", "scenario"], 0),
}


@pytest.mark.parametrize("case", list(QUIET))
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_quiet_prints_nothing_and_keeps_the_exit_code(case, fmt, tiny, tmp_path, capsys):
    template, expected = QUIET[case]
    paths = {"tiny": tiny, "small": small_scenario(tmp_path), "sweep": sweep_file(tmp_path)}
    args = [a.format(**paths) for a in template]
    code, out, err = run_cli([*args, "-q", *(["-f", fmt] if case != "schema" else [])],
                             capsys)
    assert (code, out, err) == (expected, "", "")


def test_quiet_still_writes_the_files_asked_for(tiny, tmp_path, capsys):
    code, out, err = run_cli(["simulate", tiny, "--policy", "ftf", "--quiet",
                              "--schedule-out", "-", "--report", str(tmp_path / "r.md")],
                             capsys)
    assert code == 0 and not err and out.startswith("# rtgen-opt schedule")
    assert (tmp_path / "r.md").read_text().startswith("## simulate")
    code, out, err = run_cli(["replay", tiny, "--schedule", str(tmp_path / "nothing.csv"),
                              "-q"], capsys)
    assert code == 2 and not out and err.startswith("rtgen-opt: error:")  # errors stay


def test_replay_quiet_keeps_exit_1_for_an_invalid_schedule(tiny, tmp_path, capsys):
    trace = tmp_path / "s.csv"
    run_cli(["simulate", tiny, "--policy", "ftf", "--schedule-out", str(trace)], capsys)
    lines = trace.read_text().splitlines()
    head, row = lines[:2], lines[2].split(",")
    row[6] = str(int(row[5]) + 1)  # the first segment ends far too early
    trace.write_text("\n".join([*head, ",".join(row), *lines[3:]]) + "\n")
    code, out, err = run_cli(["replay", tiny, "--schedule", str(trace), "-q"], capsys)
    assert (code, out, err) == (1, "", "")
    code, out, _ = run_cli(["replay", tiny, "--schedule", str(trace), "-f", "csv"], capsys)
    assert code == 1 and out.startswith("violation\n")


# ----------------------------------------------------------------------------- --set


@pytest.mark.parametrize("assignment, key", [
    ("llm.input_tokens=abc", "llm.input_tokens"),
    ("platform.npu=-1", "platform.npu"),
    ("granularity=fine", "granularity"),
    ("llm.arrivals.every=soon", "llm.arrivals.every"),
])
def test_a_bad_set_is_blamed_on_the_override_not_the_installed_file(assignment, key, capsys):
    code, out, err = run_cli(["simulate", "scenario_a", "--horizon", "1s", "--set",
                              assignment], capsys)
    assert code == 2 and not out
    assert err.startswith(f"rtgen-opt: error: --set {key}: expected "), err
    assert "scenario_a.yaml" not in err and err.count("\n") == 1


def test_horizon_and_set_horizon_that_differ_are_refused(tiny, capsys):
    """--horizon 2s --set horizon=5s quietly used 2 s."""
    code, out, err = run_cli(["taskset", tiny, "--horizon", "50ms", "--set", "horizon=80ms"],
                             capsys)
    assert code == 2 and not out
    assert err.startswith("rtgen-opt: error: --horizon:") and "--set horizon=80ms" in err
    code, _, err = run_cli(["simulate", tiny, "--policy", "ftf", "--horizon", "50ms",
                            "--set", "horizon=0.05s"], capsys)
    assert code == 0, err  # the same duration, said twice


def test_an_error_an_override_caused_elsewhere_says_which_applied(capsys):
    code, _, err = run_cli(["taskset", "scenario_a", "--set", "platform={cpu: 1}"], capsys)
    assert code == 2 and "(the scenario after --set platform={cpu: 1})" in err


@pytest.mark.parametrize("args, message", [
    (["simulate", "scenario_a", "--horizon", "-1s"],
     "--horizon: expected a positive duration (no minus sign), got '-1s'"),
    (["solve", "scenario_a", "--time-limit", "-5s"],
     "--time-limit: expected a positive duration (no minus sign), got '-5s'"),
    (["taskset", "scenario_a", "--set", "horizon=-2s"],
     "--set horizon: expected a positive duration (no minus sign), got '-2s'"),
    (["taskset", "scenario_a", "--set", "seg.fps=-1e3"],
     "--set seg.fps: expected a positive number, got -1000.0"),
])
def test_a_message_states_the_real_limit(args, message, capsys):
    """"-1s" was "expected a duration with a unit", and "1e3" (a number to everyone but
    YAML 1.1) "expected a positive number, got '1e3'"."""
    code, out, err = run_cli(args, capsys)
    assert code == 2 and not out and err == f"rtgen-opt: error: {message}\n"


def test_an_exponent_is_a_number_in_set_and_in_files(tiny, capsys):
    code, out, err = run_cli(["taskset", tiny, "--set", "od.fps=1e2", "-f", "json"], capsys)
    assert code == 0, err
    _, plain, _ = run_cli(["taskset", tiny, "--set", "od.fps=100", "-f", "json"], capsys)
    assert json.loads(out)["tasks"]["od"] == json.loads(plain)["tasks"]["od"]
    data = yaml.safe_load(Path(tiny).read_text())
    data["tasks"][0]["fps"] = "1.0e2"  # as the user types it in the file: `fps: 1.0e2`
    Path(tiny).write_text(yaml.safe_dump(data).replace("'1.0e2'", "1.0e2"))
    code, out, err = run_cli(["taskset", tiny, "-f", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["tasks"]["od"] == json.loads(plain)["tasks"]["od"]


def test_replaying_a_chrome_trace_names_the_option_that_exists(tiny, tmp_path, capsys):
    trace = tmp_path / "t.json"
    run_cli(["simulate", tiny, "--policy", "ftf", "--schedule-out", str(trace),
             "--schedule-format", "chrome"], capsys)
    code, _, err = run_cli(["replay", tiny, "--schedule", str(trace)], capsys)
    assert code == 2 and "--schedule-format table" in err and "--trace-format" not in err


# ----------------------------------------------------------------------------- check --optimal


def test_check_optimal_is_the_default_said_aloud_and_refuses_a_policys_options(tiny, capsys):
    code, explicit = _json(["check", tiny, "--optimal", *SOLVE], capsys)
    code_default, default = _json(["check", tiny, *SOLVE], capsys)
    assert code == code_default and explicit["method"] == default["method"]
    assert explicit["question"] == default["question"]
    for extra in (["--policy", "ftf"], ["--witness-out", "w.json"], ["--margin"]):
        code, out, err = run_cli(["check", tiny, "--optimal", *extra], capsys)
        assert code == 2 and not out and "--optimal" in err, extra


# ----------------------------------------------------------------------------- gap, formats


def test_gap_table_shows_the_pareto_front(tmp_path, capsys):
    code, out, _ = run_cli(["gap", small_scenario(tmp_path), "--workers", "1",
                            "--time-limit", "60s"], capsys)
    _, data = _json(["gap", small_scenario(tmp_path), "--workers", "1", "--time-limit",
                     "60s"], capsys)
    assert code == 0 and "Pareto front" in out and "TTFT cap ms" in out
    front = out[out.index("Pareto front"):]
    for point in data["pareto"]:
        assert f" {point['ttft_cap_ms']:.1f} " in front


def test_the_number_formats():
    assert formats.pct(0.008929) == "0.9" and formats.pct(None) is None
    assert formats.ms(7.638) == "7.6" and formats.ms_unit(16.6667) == "16.7 ms"
    assert formats.count(1642.0) == "1642" and formats.count(2.5) == "2.5"
    assert formats.fps(29.97003) == "29.97 FPS" and formats.fps(60.0) == "60 FPS"
    assert formats.pp(0.01) == "< 0.1" and formats.pp(4.35) == "4.3"
    assert formats.metric("llm.llm.ttft_ms.mean", 324.005) == "324.0"
    assert formats.metric("violation_rate", 0.008929) == "0.9"
    assert formats.metric_header("violation_rate") == "violation_rate %"
    assert formats.metric("violations", 12.0) == "12"
    assert formats.metric("placement.od.frame.npu", 0.25) == "25.0"
    assert formats.metric("tasks.separate.violations", 3) == "3"  # a name is not a unit
    assert formats.metric("samples.miss.probability_upper_95", 0.5) == "50.0"


def test_tables_follow_the_formats(tiny, tmp_path, capsys):
    code, out, _ = run_cli(["taskset", "scenario_c", "--horizon", "1s"], capsys)
    assert code == 0 and "16.7" in out and "7.6" in out
    assert "16.6667" not in out and "7.638" not in out
    code, out, _ = run_cli(["db", "show", "--model", "llama3.2-1b", "--stage", "prefill",
                            "--backend", "gpu"], capsys)
    assert code == 0 and " 34.6 " in out and " 1641.5 " in out and "34.62" not in out
    code, out, _ = run_cli(["sweep", sweep_file(tmp_path), "--dry-run"], capsys)
    assert code == 0 and "['" not in out and "llm.input_tokens" in out
    code, out, _ = run_cli(["sweep", sweep_file(tmp_path), "--no-cache", "--no-report",
                            "--out", str(tmp_path / "t.csv")], capsys)
    assert code == 0 and "llm.input_tokens" in out and "…" not in out  # headers whole
    assert "violation_rate %" in out
