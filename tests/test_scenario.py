"""Scenario files: every malformed input is exit code 2 with one message naming file and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rtgen_opt.errors import InputError
from rtgen_opt.model.scenario import apply_override, builtin_scenarios, load_scenario
from tests.conftest import base, run_cli


def broken(change):
    data = base()
    change(data)
    return data


def task(data, name):
    return next(t for t in data["tasks"] if t["name"] == name)


# (rule, how to break the base scenario, the field the message must name)
RULES = [
    ("unknown top-level key", lambda d: d.update(granularty="layer"), "granularty"),
    ("unknown task key", lambda d: task(d, "od").update(fsp=30), "tasks.od.fsp"),
    ("wrong type for fps", lambda d: task(d, "od").update(fps="fast"), "tasks.od.fps"),
    ("boolean is not a number", lambda d: task(d, "od").update(fps=True), "tasks.od.fps"),
    ("non-positive fps", lambda d: task(d, "od").update(fps=0), "tasks.od.fps"),
    ("negative fps", lambda d: task(d, "od").update(fps=-30), "tasks.od.fps"),
    ("fps and period", lambda d: task(d, "od").update(period="10ms"), "tasks.od.period"),
    ("unknown model", lambda d: task(d, "od").update(model="yolov9"), "tasks.od.model"),
    ("no latency on the platform", lambda d: d.update(platform={"cpu": 1}), "tasks.llm.model"),
    ("dangling after", lambda d: task(d, "llm").update(after="nobody"), "tasks.llm.after"),
    ("self after", lambda d: task(d, "llm").update(after="llm"), "tasks.llm.after"),
    ("cyclic after", lambda d: (task(d, "rag").pop("arrivals"), task(d, "rag").update(after="llm")),
     ".after"),
    ("unparsable duration", lambda d: task(d, "od").update(deadline="16.67 msec"),
     "tasks.od.deadline"),
    ("bare number duration", lambda d: d.update(horizon=60), "horizon"),
    ("zero deadline", lambda d: task(d, "od").update(deadline="0ms"), "tasks.od.deadline"),
    ("negative phase", lambda d: task(d, "od").update(phase="-1ms"), "tasks.od.phase"),
    ("two arrival kinds", lambda d: task(d, "rag").update(arrivals={"every": "1s", "times": ["0s"]}),
     "tasks.rag.arrivals"),
    ("poisson without seed", lambda d: task(d, "rag").update(arrivals={"poisson": 2}),
     "tasks.rag.arrivals.seed"),
    ("empty times", lambda d: task(d, "rag").update(arrivals={"times": []}),
     "tasks.rag.arrivals.times"),
    ("request without arrivals", lambda d: task(d, "rag").pop("arrivals"), "tasks.rag"),
    ("LLM without output_tokens", lambda d: task(d, "llm").pop("output_tokens"),
     "tasks.llm.output_tokens"),
    ("output_tokens on an encoder", lambda d: task(d, "rag").update(output_tokens=3),
     "tasks.rag.output_tokens"),
    ("input_tokens missing", lambda d: task(d, "rag").pop("input_tokens"),
     "tasks.rag.input_tokens"),
    ("input_tokens on a CNN", lambda d: task(d, "od").update(input_tokens=5),
     "tasks.od.input_tokens"),
    ("input_tokens beyond the database", lambda d: task(d, "llm").update(input_tokens=100000),
     "tasks.llm.input_tokens"),
    ("zero output_tokens", lambda d: task(d, "llm").update(output_tokens=0),
     "tasks.llm.output_tokens"),
    ("LLM as periodic task", lambda d: d["tasks"].append({"name": "x", "model": "llama3.2-1b",
                                                          "fps": 1}), "tasks.x.model"),
    ("periodic key on a request", lambda d: task(d, "rag").update(fps=3), "tasks.rag"),
    ("duplicate task name", lambda d: d["tasks"].append({"name": "od", "model": "yolov3",
                                                         "fps": 30}), "tasks.od.name"),
    ("task without kind", lambda d: d["tasks"].append({"name": "x", "model": "yolov3"}),
     "tasks.x"),
    ("empty tasks", lambda d: d.update(tasks=[]), "tasks"),
    ("unknown granularity", lambda d: d.update(granularity="block"), "granularity"),
    ("group of zero", lambda d: d.update(granularity="group:0"), "granularity"),
    ("unknown on_miss", lambda d: d.update(on_miss="skip"), "on_miss"),
    ("unknown preemption", lambda d: d.update(preemption="pause"), "preemption"),
    ("unknown after_horizon", lambda d: d.update(after_horizon="halt"), "after_horizon"),
    ("after_horizon not a text", lambda d: d.update(after_horizon=True), "after_horizon"),
    ("unknown backend", lambda d: d.update(platform={"tpu": 1}), "platform.tpu"),
    ("zero instances", lambda d: d.update(platform={"npu": 0, "gpu": 1}), "platform.npu"),
    ("unknown latency db", lambda d: d.update(latency_db="m4_max"), "latency_db"),
    ("missing latency db", lambda d: d.pop("latency_db"), "latency_db"),
    ("mapping to an unknown backend", lambda d: d.update(mapping={"yolov3": "tpu"}),
     "mapping.yolov3"),
    ("mapping of an unknown stage", lambda d: d.update(mapping={"llama3.2-1b/train": "npu"}),
     "mapping.llama3.2-1b/train"),
    ("mapping where the model cannot run", lambda d: d.update(mapping={"llama3.2-1b": "cpu"}),
     "mapping.llama3.2-1b"),
    ("request after a periodic task", lambda d: task(d, "llm").update(after="od"),
     "tasks.llm.after"),
    ("after and arrivals", lambda d: task(d, "llm").update(arrivals={"every": "1s"}),
     "tasks.llm.arrivals"),
]


@pytest.mark.parametrize("rule, change, field", RULES, ids=[r[0] for r in RULES])
def test_malformed_scenario_exits_2_naming_file_and_field(scenario_file, capsys, rule, change,
                                                          field):
    path = scenario_file(broken(change))
    code, out, err = run_cli(["taskset", path, "--format", "json"], capsys)
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith(f"rtgen-opt: error: {path}: ") and field in err
    assert "expected" in err
    assert err.count("\n") == 1  # one message


def test_yaml_syntax_error_names_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntasks: [\n")
    code, _, err = run_cli(["taskset", str(path)], capsys)
    assert code == 2 and "line" in err and str(path) in err


def test_top_level_must_be_a_mapping(tmp_path, capsys):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    code, _, err = run_cli(["taskset", str(path)], capsys)
    assert code == 2 and "mapping" in err


def test_no_horizon_anywhere_is_an_error(scenario_file, capsys):
    data = base()
    data.pop("horizon")
    code, _, err = run_cli(["taskset", scenario_file(data)], capsys)
    assert code == 2 and "horizon" in err and "--horizon" in err


@pytest.mark.parametrize("args, field", [
    (["--horizon", "60"], "--horizon"), (["--horizon", "0s"], "--horizon"),
    (["--set", "nothing"], "--set"), (["--set", "ghost.fps=3"], "ghost.fps"),
    (["--format", "xml"], "--format"),
])
def test_bad_command_line_values_exit_2(scenario_file, capsys, args, field):
    code, out, err = run_cli(["taskset", scenario_file(), *args], capsys)
    assert code == 2 and out == "" and field in err and "Traceback" not in err


def test_bad_input_through_the_console_script_has_no_traceback(tmp_path):
    """The real entry point, in a subprocess: one line on stderr, exit 2."""
    path = tmp_path / "s.yaml"
    data = base()
    data["tasks"][0]["fps"] = -1
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-c", "from rtgen_opt.cli.app import main; main()",
                           "taskset", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert "tasks.od.fps" in proc.stderr


def test_builtin_scenarios_all_load_and_say_what_they_represent():
    names = builtin_scenarios()
    assert set(names) == {"scenario_a", "scenario_b", "scenario_c", "scenario_d"}
    for name, path in names.items():
        scenario = load_scenario(name)
        assert scenario.name == name and scenario.description
        assert path.read_text().startswith("# Scenario")  # a comment says what it represents


def test_overrides_reach_task_fields_top_level_keys_and_dotted_model_names():
    s = load_scenario("scenario_d", ["llm.input_tokens=2048", "granularity=group:4",
                                     "platform.npu=2", "mapping.llama3.2-1b/prefill=gpu"])
    assert s.task("llm").input_tokens == 2048
    assert s.granularity == "group:4" and s.platform["npu"] == 2
    assert s.mapping[("llama3.2-1b", "prefill")] == "gpu"


def test_override_of_a_nested_field():
    raw = {"tasks": [{"name": "rag", "arrivals": {"every": "5s"}}]}
    apply_override(raw, "rag.arrivals.every=2s")
    assert raw["tasks"][0]["arrivals"]["every"] == "2s"


def test_after_inherits_arrivals():
    s = load_scenario("scenario_c")
    assert s.task("llm").arrivals == s.task("rag").arrivals


def test_period_is_an_alternative_to_fps(scenario_file):
    data = base()
    data["tasks"][0] = {"name": "od", "model": "yolov3", "period": "20ms", "deadline": "15ms",
                        "phase": "1ms", "weight": 2}
    s = load_scenario(scenario_file(data))
    od = s.task("od")
    assert (float(od.period), float(od.deadline), float(od.phase), od.weight) == (
        0.02, 0.015, 0.001, 2)


def test_errors_are_input_errors_with_parts():
    with pytest.raises(InputError) as info:
        load_scenario("no_such_scenario")
    assert info.value.source == "no_such_scenario"


def test_after_horizon_defaults_to_continue_and_is_settable(scenario_file):
    path = scenario_file()
    assert load_scenario(path).after_horizon == "continue"
    assert load_scenario(path, ["after_horizon=stop"]).after_horizon == "stop"
    with pytest.raises(InputError) as info:
        load_scenario(path, ["after_horizon=later"])
    assert info.value.source == "--set after_horizon"  # the override, not the file


def test_arrivals_from_a_request_trace_file(tmp_path):
    """`arrivals: {file: requests.csv}`: thousands of production arrival times, beyond what
    fits in the scenario file itself, relative to the scenario's folder."""
    import yaml

    from rtgen_opt.model.scenario import load_scenario

    times = [f"{k * 0.7:.3f}s" for k in range(5000)]
    (tmp_path / "requests.csv").write_text("time\n" + "\n".join(times) + "\n")
    base = yaml.safe_load((Path(__file__).resolve().parent.parent / "instances"
                           / "scenario_a.yaml").read_text())
    llm = next(t for t in base["tasks"] if "arrivals" in t)
    llm["arrivals"] = {"file": "requests.csv"}
    base["latency_db"] = "ryzen_ai_9_365"
    path = tmp_path / "trace.yaml"
    path.write_text(yaml.safe_dump(base))
    s = load_scenario(str(path))
    arrivals = next(t.arrivals for t in s.tasks if t.arrivals is not None)
    assert arrivals.kind == "times" and len(arrivals.times) == 5000
    assert float(arrivals.times[1]) == pytest.approx(0.7)


@pytest.mark.parametrize("content, field", [
    ("when\n1s\n", "header"), ("time\n1s,2\n", "line 2"), ("time\nsoon\n", "line 2, time"),
    ("time\n", "rows")])
def test_a_bad_request_trace_is_one_line_naming_the_file(tmp_path, capsys, content, field):
    import yaml

    from tests.conftest import run_cli

    (tmp_path / "r.csv").write_text(content)
    base = yaml.safe_load((Path(__file__).resolve().parent.parent / "instances"
                           / "scenario_a.yaml").read_text())
    next(t for t in base["tasks"] if "arrivals" in t)["arrivals"] = {"file": "r.csv"}
    base["latency_db"] = "ryzen_ai_9_365"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(base))
    code, _out, err = run_cli(["taskset", str(tmp_path / "s.yaml"), "--horizon", "1s"], capsys)
    assert code == 2 and "r.csv" in err and field in err and err.count("\n") == 1


def test_messages_say_what_the_user_wrote(tmp_path, capsys):
    """An empty file, a path that does not exist, `after` with no other task: one line each
    that says so (not 'got NoneType', not only the list of built-in names)."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    code, _, err = run_cli(["simulate", str(empty)], capsys)
    assert code == 2 and "the file is empty" in err
    code, _, err = run_cli(["simulate", str(tmp_path / "missing.yaml")], capsys)
    assert code == 2 and "no such file" in err
    alone = base()
    alone["tasks"] = [dict(task(alone, "od"), after="rag")]
    path = tmp_path / "alone.yaml"
    path.write_text(yaml.safe_dump(alone))
    code, _, err = run_cli(["simulate", str(path)], capsys)
    assert code == 2 and "tasks.od.after" in err and "there is none" in err
